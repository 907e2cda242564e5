/* Internal: the executor interface every backend (thread pool, process pool) implements. */
#ifndef FUT_EXECUTOR_H
#define FUT_EXECUTOR_H

#include "core/future.h"

struct fut_executor_ops {
    /* Queue f (its task part is set); on success the executor holds a reference
     * until f is done. Returns 0, FUT_ESHUTDOWN, FUT_EBROKEN or FUT_ENOMEM. */
    int  (*submit)(fut_executor *ex, fut_future *f);
    int  (*shutdown)(fut_executor *ex, bool wait, bool cancel_futures);
    /* Called after shutdown(wait=true): release everything. */
    void (*destroy)(fut_executor *ex);
    /* fut_map's chunk size when the caller passes 0: n / (max_workers * chunks_per_worker),
     * at least 1, at most max_chunksize. */
    size_t chunks_per_worker;
    size_t max_chunksize;
};

struct fut_executor {
    const struct fut_executor_ops *ops;
    int max_workers;
    double task_timeout;           /* > 0: each task's time limit (fut_map sends items alone) */
};

/* Validated options with defaults applied. */
int fut__pool_options_check(const fut_pool_options *opts);
int fut__cpu_count(void);

#endif
