/* SPDX-License-Identifier: MIT */
/* The executor interface: argument checks and the task's future, shared by every backend. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/annotate.h"
#include "core/bytes_shared.h"
#include "core/executor.h"
#include "core/fork.h"
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

void fut__executor_init(fut_executor *ex, const struct fut_executor_ops *ops, int max_workers)
{
    ex->ops = ops;
    ex->max_workers = max_workers;
    ex->fork_generation = fut__fork_generation();
    struct fut_executor_counters *c = &ex->counters;  /* relaxed atomics, read by anyone */
    FUT_ATOMIC_VAR(&c->submitted);
    FUT_ATOMIC_VAR(&c->started);
    FUT_ATOMIC_VAR(&c->completed);
    FUT_ATOMIC_VAR(&c->failed);
    FUT_ATOMIC_VAR(&c->cancelled);
    atomic_init(&ex->tallies, NULL);
}

void fut__executor_add_tally(fut_executor *ex, struct fut_task_tally *tally)
{
    FUT_ATOMIC_VAR(&tally->started);
    FUT_ATOMIC_VAR(&tally->completed);
    FUT_ATOMIC_VAR(&tally->failed);
    tally->next = atomic_load_explicit(&ex->tallies, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&ex->tallies, &tally->next, tally,
                                                  memory_order_release, memory_order_relaxed))
        ;
}

int fut_executor_max_workers(const fut_executor *ex)
{
    return ex ? ex->max_workers : FUT_EINVAL;
}

/* A future whose task part holds fn(arg); NULL with errno set. */
static fut_future *new_task(fut_fn fn, void *arg)
{
    fut_future *f = fut__future_alloc();
    if (!f)
        return NULL;
    fut__future_set_kind(f, FUT_PART_TASK);
    f->part.task.fn = fn;
    f->part.task.arg = arg;
    return f;
}

/*
 * Hands f to the executor, or releases it: the caller's new reference, or NULL. Counted
 * as submitted before the backend sees it, so that no count of its outcome can run ahead
 * of it; a rejected submit takes its count back.
 */
static fut_future *submit(fut_executor *ex, fut_future *f, uint32_t items)
{
    f->task_counters = &ex->counters;
    if (fut__inherited(ex->fork_generation)) {
        fut_future_unref(f);  /* the pool's threads or processes stayed in the parent */
        errno = ENOTRECOVERABLE;
        return NULL;
    }
    fut__count(&ex->counters.submitted, items);
    int rc = ex->ops->submit(ex, f);
    if (rc == 0)
        return f;
    atomic_fetch_sub_explicit(&ex->counters.submitted, items, memory_order_relaxed);
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
    fut_future *f = new_task(fn, arg);
    return f ? submit(ex, f, 1) : NULL;
}

_Static_assert(FUT_ARG_COPY_HEADER <= FUT_ARG_COPY_ROOM, "a sealed copy has room for the header");

fut_future *fut_submit_copy(fut_executor *ex, fut_fn fn, const void *arg, size_t len)
{
    return fut__submit_items(ex, fn, arg, len, 1);
}

fut_future *fut__submit_items(fut_executor *ex, fut_fn fn, const void *arg, size_t len,
                              uint32_t items)
{
    if (!ex || !fn || (!arg && len)) {
        errno = EINVAL;
        return NULL;
    }
    /* the copy's length sits in front of the bytes the task sees (FUT_ARG_COPY_HEADER) */
    char *copy = NULL;
    bool sealed = false;
    if (len) {
        if (ex->ops->sealed_arg_copies && len >= FUT_BYTES_SHARED_MIN &&
            (copy = fut__arg_copy_new(len)))
            sealed = true;
        else if (len < SIZE_MAX - FUT_ARG_COPY_HEADER && (copy = malloc(FUT_ARG_COPY_HEADER + len)))
            copy += FUT_ARG_COPY_HEADER;
        if (!copy) {
            errno = ENOMEM;
            return NULL;
        }
        memcpy(copy - FUT_ARG_COPY_HEADER, &len, sizeof len);
        memcpy(copy - FUT_ARG_COPY_HEADER + FUT_ARG_COPY_ITEMS, &items, sizeof items);
        memcpy(copy, arg, len);
    }
    fut_future *f = new_task(fn, copy);
    if (!f) {
        fut__free_arg_copy(copy, sealed);
        return NULL;
    }
    if (copy)
        fut__future_set_flag(f, sealed ? FUT_FLAG_ARG_COPIED | FUT_FLAG_ARG_SEALED : FUT_FLAG_ARG_COPIED);
    return submit(ex, f, items);
}

int fut_shutdown(fut_executor *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return FUT_EINVAL;
    if (fut__inherited(ex->fork_generation))
        return FUT_EBROKEN;  /* nothing of it runs in this process */
    return ex->ops->shutdown(ex, wait, cancel_futures);
}

void fut_executor_free(fut_executor *ex)
{
    if (!ex)
        return;
    if (fut__inherited(ex->fork_generation)) {
        if (ex->ops->forget)
            ex->ops->forget(ex);
        return;
    }
    ex->ops->shutdown(ex, true, false);
    ex->ops->destroy(ex);
    fut__future_cache_trim();
}

/* ---- fut_executor_get_stats --------------------------------------------------------- */

static uint64_t load(const atomic_uint_least64_t *counter)
{
    return atomic_load_explicit((atomic_uint_least64_t *)counter, memory_order_relaxed);
}

static size_t difference(uint64_t a, uint64_t b)
{
    return a > b ? (size_t)(a - b) : 0;  /* counters read apart may cross for a moment */
}

int fut_executor_get_stats(const fut_executor *ex, fut_executor_stats *out, size_t size)
{
    if (!ex || (!out && size))
        return FUT_EINVAL;
    if (size == 0)
        return 0;
    fut_executor_stats s = { 0 };
    const struct fut_executor_counters *c = &ex->counters;
    struct fut_task_tally *tallies = atomic_load_explicit(&((fut_executor *)ex)->tallies,
                                                          memory_order_acquire);
    /* outcomes first, then starts, then submits: each is counted after the one before it,
     * so reading in this order keeps queued and running from going negative (sums wrap:
     * fut_map moves items from one tally's completed to the shared failed) */
    s.completed = load(&c->completed);
    s.failed = load(&c->failed);
    for (const struct fut_task_tally *t = tallies; t; t = t->next) {
        s.completed += load(&t->completed);
        s.failed += load(&t->failed);
    }
    s.cancelled = load(&c->cancelled);
    uint64_t started = load(&c->started);
    for (const struct fut_task_tally *t = tallies; t; t = t->next)
        started += load(&t->started);
    s.submitted = load(&c->submitted);
    s.running = difference(started, s.completed + s.failed);
    s.queued = difference(s.submitted, started + s.cancelled);
    if (ex->ops->stats && !fut__inherited(ex->fork_generation))
        ex->ops->stats(ex, &s.workers, &s.idle);
    if (s.idle > s.workers)
        s.idle = s.workers;
    /* an older caller's smaller struct gets the fields it knows; a newer caller's larger
     * one gets ours and zeroes after them */
    if (size <= sizeof s) {
        memcpy(out, &s, size);
    } else {
        memcpy(out, &s, sizeof s);
        memset((char *)out + sizeof s, 0, size - sizeof s);
    }
    return 0;
}
