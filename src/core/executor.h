/* SPDX-License-Identifier: MIT */
/* Internal: the executor interface every backend (thread pool, process pool) implements. */
#ifndef FUT_EXECUTOR_H
#define FUT_EXECUTOR_H

#include "core/future.h"

/*
 * Totals of an executor, in task items (a fut_map chunk of N items counts N), reported by
 * fut_executor_get_stats:
 *   submitted  accepted by the backend's submit
 *   started    PENDING -> RUNNING (or straight to FINISHED: a task failed unstarted)
 *   completed, failed, cancelled   done, by outcome
 * queued = submitted - started - cancelled, running = started - completed - failed.
 *
 * Each is the sum of the shared counters below and of the executor's tallies. Whoever
 * makes a change counts it before the change shows (before the future's state is
 * published), so that whoever sees a state finds it counted:
 * - an executor's own thread that starts and finishes its tasks (a thread pool's worker)
 *   counts in a tally of its own, with plain stores: no read-modify-write, no cache line
 *   shared with another worker (fut__task_start, fut__task_finish);
 * - anyone else (fut_cancel from any thread, fut_set_running_or_notify_cancel and
 *   fut_set_exception from a backend's dispatcher, fut_map's recount) counts in the shared
 *   counters with relaxed atomic adds, found through the task's task_counters word
 *   (core/future.h) while it is pending or running.
 * Readers get each counter's own latest value, not a snapshot.
 */
struct fut_executor_counters {
    atomic_uint_least64_t submitted;                       /* by submitters */
    char pad[64];                                          /* apart from the others */
    atomic_uint_least64_t started, completed, failed, cancelled;
};

/* One thread's counts: written by that thread alone, read by anyone (relaxed). A tally
 * joins its executor's list once and stays until the executor is destroyed. */
struct fut_task_tally {
    atomic_uint_least64_t started, completed, failed;
    struct fut_task_tally *next;
};

/* Adds to a counter only its owner thread writes: a relaxed load and store, no lock prefix. */
static inline void fut__tally_add(atomic_uint_least64_t *counter, uint64_t n)
{
    uint64_t now = atomic_load_explicit(counter, memory_order_relaxed);
    atomic_store_explicit(counter, now + n, memory_order_relaxed);
}

struct fut_executor_ops {
    /* Queue f (its task part is set; f is new, and the caller's reference is its only
     * one until submit returns); on success the executor holds a reference
     * until f is done. Returns 0, FUT_ESHUTDOWN, FUT_EBROKEN or FUT_ENOMEM. */
    int  (*submit)(fut_executor *ex, fut_future *f);
    int  (*shutdown)(fut_executor *ex, bool wait, bool cancel_futures);
    /* Called after shutdown(wait=true): release everything. */
    void (*destroy)(fut_executor *ex);
    /* fut_map's chunk size when the caller passes 0: n / (max_workers * chunks_per_worker),
     * at least 1, at most max_chunksize. */
    size_t chunks_per_worker;
    size_t max_chunksize;
    /* fut_submit_copy arguments of FUT_BYTES_SHARED_MIN bytes or more are copied into
     * sealed memfds (core/bytes_shared.h, fut__arg_copy_new) when the system allows it:
     * for a backend that sends them to another process as they are. */
    bool sealed_arg_copies;
    /* Optional (NULL: reported as 0): the backend's own fields of fut_executor_get_stats,
     * `workers` and `idle`, read without blocking (relaxed atomics, no lock); 0 once the
     * executor has shut down and its workers have exited. The core fills the rest. */
    void (*stats)(const fut_executor *ex, size_t *workers, size_t *idle);
    /* fut_executor_free in a forked child (core/fork.h): release the executor's memory
     * and descriptors without joining, killing, waiting for or signalling anything (its
     * threads do not exist here, its processes are the parent's), without taking its
     * locks (a vanished thread may hold them) and without epoll_ctl (the epoll set is
     * shared with the parent). NULL: the memory is left as it is. */
    void (*forget)(fut_executor *ex);
};

struct fut_executor {
    const struct fut_executor_ops *ops;
    int max_workers;
    double task_timeout;           /* > 0: each task's time limit (fut_map sends items alone) */
    unsigned fork_generation;      /* made in (core/fork.h): set by fut__executor_init */
    _Atomic(struct fut_task_tally *) tallies;   /* newest first; see fut__executor_add_tally */
    /* written by workers on every task: kept off the line of the read-mostly fields above
     * and of the backend's fields below (no alignment: backends allocate with malloc) */
    char pad_before[64];
    struct fut_executor_counters counters;
    char pad_after[64];
};

/* The shared counters a task future's changes count in, while it is pending or running. */
static inline struct fut_executor_counters *fut__task_counters(fut_future *f)
{
    return fut__future_kind(f) == FUT_PART_TASK ? f->task_counters : NULL;
}

static inline void fut__count(atomic_uint_least64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* fut_submit_copy for a task that stands for `items` tasks in the statistics (fut_map). */
fut_future *fut__submit_items(fut_executor *ex, fut_fn fn, const void *arg, size_t len,
                              uint32_t items);

/* Fills the core's part of a new executor (every backend calls it). */
void fut__executor_init(fut_executor *ex, const struct fut_executor_ops *ops, int max_workers);

/*
 * shutdown(cancel_futures): cancels every future of `queued` (tasks an executor took off
 * its queue) and drops the executor's reference to each. A task already handed to a
 * worker once (a process pool's requeued task) is running, not pending: it fails with
 * FUT_ECANCELLED instead. Inline: libfutures-mpi uses it too (public calls only).
 */
static inline void fut__executor_cancel_queued(struct fut_list queued)
{
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &queued) {
        fut_future *f = fut__task_of(node);
        if (fut__future_flag(f, FUT_FLAG_REQUEUED)) {
            /* public calls only: with no memory for the words, the outcome without them */
            if (fut_set_exception(f, FUT_ECANCELLED, "cancelled by shutdown before it started") == FUT_ENOMEM)
                fut_set_exception(f, FUT_ECANCELLED, NULL);
        } else {
            fut_cancel(f);
            fut_set_running_or_notify_cancel(f);
        }
        fut_future_unref(f);
    }
}

/*
 * An executor's background thread (the process pool's dispatcher, the MPI root's progress
 * thread), joined once by whichever of fut_shutdown(wait) and fut_executor_free comes
 * first. Never by itself: a done callback runs on that thread and may shut its own
 * executor down, which then returns without waiting (`lock` is held by the joining
 * thread for as long as the join takes). Inline for libfutures-mpi, like the above.
 */
struct fut_joinable_thread {
    pthread_t thread;              /* set once, before any callback can run */
    pthread_mutex_t lock;
    bool joined;
};

static inline void fut__join_once(struct fut_joinable_thread *j)
{
    if (pthread_equal(j->thread, pthread_self()))
        return;
    pthread_mutex_lock(&j->lock);
    if (!j->joined) {
        pthread_join(j->thread, NULL);
        j->joined = true;
    }
    pthread_mutex_unlock(&j->lock);
}

/* Links a zeroed tally into ex's statistics. The caller keeps its memory until the
 * executor is destroyed (or forgotten) and frees it then; the list is never shortened. */
void fut__executor_add_tally(fut_executor *ex, struct fut_task_tally *tally);

/* Validated options with defaults applied. */
int fut__pool_options_check(const fut_pool_options *opts);
int fut__cpu_count(void);

#endif
