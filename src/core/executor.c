/* The executor interface: argument checks and the task's future, shared by every backend. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/executor.h"
#include "core/future_cache.h"

int fut__cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int fut__pool_options_check(const fut_pool_options *opts)
{
    if (!opts)
        return 0;
    if (opts->max_workers < 0 || opts->max_tasks_per_child < 0)
        return FUT_EINVAL;
    /* NaN, negative or infinite timeouts are not durations */
    if (!(opts->task_timeout >= 0) || opts->task_timeout > 1e9)
        return FUT_EINVAL;
    return 0;
}

int fut_executor_max_workers(const fut_executor *ex)
{
    return ex ? ex->max_workers : FUT_EINVAL;
}

static fut_future *submit(fut_executor *ex, fut_fn fn, fut_future *f)
{
    f->part.task.fn = fn;
    int rc = ex->ops->submit(ex, f);
    if (rc == 0)
        return f;
    fut_future_unref(f);
    errno = -rc;
    return NULL;
}

fut_future *fut_submit(fut_executor *ex, fut_fn fn, void *arg)
{
    if (!ex || !fn) {
        errno = EINVAL;
        return NULL;
    }
    fut_future *f = fut__future_alloc();
    if (!f)
        return NULL;
    f->part_kind = FUT_PART_TASK;
    f->part.task.arg = arg;
    return submit(ex, fn, f);
}

fut_future *fut_submit_copy(fut_executor *ex, fut_fn fn, const void *arg, size_t len)
{
    if (!ex || !fn || (!arg && len)) {
        errno = EINVAL;
        return NULL;
    }
    fut_future *f = fut__future_alloc();
    if (!f)
        return NULL;
    f->part_kind = FUT_PART_TASK;
    if (len) {
        char *copy = len < SIZE_MAX - FUT_ARG_COPY_HEADER ? malloc(FUT_ARG_COPY_HEADER + len) : NULL;
        if (!copy) {
            fut_future_unref(f);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(copy, &len, sizeof len);
        memcpy(copy + FUT_ARG_COPY_HEADER, arg, len);
        f->part.task.arg = copy + FUT_ARG_COPY_HEADER;
        fut__future_set_flag(f, FUT_FLAG_ARG_COPIED);
    }
    return submit(ex, fn, f);
}

int fut_shutdown(fut_executor *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return FUT_EINVAL;
    return ex->ops->shutdown(ex, wait, cancel_futures);
}

void fut_executor_free(fut_executor *ex)
{
    if (!ex)
        return;
    ex->ops->shutdown(ex, true, false);
    ex->ops->destroy(ex);
    fut__future_cache_trim();
}
