/* SPDX-License-Identifier: MIT */
/*
 * The thread pool.
 *
 * Submitting pushes the task's future onto a lock-free stack (`incoming`); workers move
 * that stack, reversed into FIFO order, onto their own queue under `queue_lock`, which
 * only workers take. A submitter therefore never contends with workers for a lock.
 *
 * A worker that finds nothing to do spins briefly, then parks on `park_cond`. A submitter
 * wakes a parked worker only if one is parked and no spinning worker will see the task.
 * Workers start on demand: a submit starts a thread only when the tasks waiting outnumber
 * the idle workers (Python's rule: reuse idle workers before starting new ones).
 *
 * A worker parked for IDLE_TRIM_SECONDS gives the memory of freed futures back
 * (fut__future_cache_trim): a second after a batch, an idle pool holds none. While
 * futures are alive (and may be freed later) it trims again after twice the time, up to
 * IDLE_TRIM_MAX_SECONDS, then sleeps until woken.
 *
 * Lock order: shutdown_lock, then threads_lock; queue_lock and park_lock are leaves.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/annotate.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/future_cache.h"
#include "core/spin.h"
#include "core/task_context.h"

#define DEFAULT_PREFIX "futures"

#define CACHE_LINE 64
#define IDLE_TRIM_SECONDS 0.5  /* with the spin before parking, well within a second */
#define IDLE_TRIM_MAX_SECONDS 8

/* Fields are grouped by who writes them, one cache line per group, so that a submitter
 * and the workers do not invalidate each other's lines more than the hand-off needs. */
struct thread_pool {
    struct fut_executor base;
    int (*initializer)(void *arg);
    void *initarg;
    char *name_prefix;
    atomic_bool shutdown;             /* no new submits */
    atomic_bool closing;              /* workers exit once the queue is empty */
    atomic_bool broken;
    atomic_int n_threads;
    atomic_int alive;                 /* started and not yet returned (for the statistics) */

    /* written by submitters (and `incoming` by a worker once per drain, not per task):
     * the tasks queued and not taken yet are pushed - taken (see pending()) */
    _Alignas(CACHE_LINE) _Atomic(struct fut_list_node *) incoming;  /* submitted, newest first */
    atomic_size_t pushed;             /* tasks ever queued */

    /* submits between their shutdown check and push: read only by a shutdown */
    _Alignas(CACHE_LINE) atomic_int active_submits;

    /* written by workers */
    _Alignas(CACHE_LINE) atomic_int idle;   /* workers not holding a task */
    pthread_mutex_t queue_lock;       /* the workers' FIFO */
    struct fut_list queue;            /* of futures, through their task part */
    atomic_size_t taken;              /* tasks ever taken off the queue: under queue_lock */

    /* the slow paths: parking, starting and joining threads */
    _Alignas(CACHE_LINE) pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    atomic_int parked;                /* parked workers not yet claimed by a wake */
    atomic_int spinning;              /* 0 or 1: at most one idle worker spins at a time */
    int wake_tokens;                  /* wakes sent and not yet consumed, under park_lock */
    pthread_mutex_t threads_lock;     /* threads[], n_threads */
    pthread_t *threads;               /* grown as threads start: max_workers may be huge */
    bool *joined;                     /* under shutdown_lock */
    int threads_cap;                  /* entries in threads[] and joined[] */
    pthread_mutex_t shutdown_lock;    /* serialises shutdowns */
};

/* A worker's own memory: its statistics tally (core/executor.h) on a cache line of its
 * own. Linked into the pool's tallies when it starts, freed with the pool. */
struct pool_worker {
    _Alignas(CACHE_LINE) struct fut_task_tally tally;
    struct thread_pool *pool;
    int index;
};

static void free_workers(struct thread_pool *pool)
{
    struct fut_task_tally *t = atomic_load(&pool->base.tallies), *next;
    for (; t; t = next) {
        next = t->next;
        free(fut_container_of(t, struct pool_worker, tally));
    }
}

/* ---- the queue ---------------------------------------------------------------------- */

/* Queued tasks no worker has taken yet. Two counters, each written on one side only, so
 * that a submit and a worker's pop do not pass one cache line back and forth per task.
 * `taken` is read first: it never exceeds `pushed`, which only grows. */
static size_t pending(struct thread_pool *pool)
{
    size_t taken = atomic_load(&pool->taken);
    return atomic_load(&pool->pushed) - taken;
}

/* Under queue_lock, its only writer: a plain store. */
static void count_taken_locked(struct thread_pool *pool, size_t n)
{
    atomic_store(&pool->taken, atomic_load_explicit(&pool->taken, memory_order_relaxed) + n);
}

/* A Treiber stack through the futures' queue nodes: submitters never take a lock. */
static void push_incoming(struct thread_pool *pool, fut_future *f)
{
    struct fut_list_node *node = &f->part.task.node;
    struct fut_list_node *head = atomic_load_explicit(&pool->incoming, memory_order_relaxed);
    do {
        node->next = head;
        FUT_HAPPENS_BEFORE(&pool->incoming);
    } while (!atomic_compare_exchange_weak_explicit(&pool->incoming, &head, node,
                                                    memory_order_release, memory_order_relaxed));
}

/* Moves the incoming stack onto the FIFO, oldest first. Called under queue_lock. */
static void drain_incoming_locked(struct thread_pool *pool)
{
    struct fut_list_node *stack = atomic_exchange_explicit(&pool->incoming, NULL,
                                                           memory_order_acquire);
    FUT_HAPPENS_AFTER(&pool->incoming);
    struct fut_list oldest_first = { NULL, stack };
    while (stack) {
        struct fut_list_node *next = stack->next;
        stack->next = oldest_first.head;
        oldest_first.head = stack;
        stack = next;
    }
    fut_list_splice_back(&pool->queue, &oldest_first);
}

static fut_future *pop_task(struct thread_pool *pool)
{
    pthread_mutex_lock(&pool->queue_lock);
    if (fut_list_empty(&pool->queue))
        drain_incoming_locked(pool);
    struct fut_list_node *node = fut_list_pop_front(&pool->queue);
    if (node) {
        /* busy before the task leaves `pending`: a submit that sees it taken also sees
         * this worker busy (needs_thread), else it could count the worker idle and start
         * no thread for the next task while this one holds the worker for good */
        atomic_fetch_sub(&pool->idle, 1);
        count_taken_locked(pool, 1);
    }
    pthread_mutex_unlock(&pool->queue_lock);
    return node ? fut__task_of(node) : NULL;
}

/* Takes every queued task off the queue, in FIFO order. */
static struct fut_list take_all_tasks(struct thread_pool *pool)
{
    pthread_mutex_lock(&pool->queue_lock);
    drain_incoming_locked(pool);
    struct fut_list all = fut_list_take(&pool->queue);
    size_t n = 0;
    for (struct fut_list_node *node = all.head; node; node = node->next)
        n++;
    count_taken_locked(pool, n);
    pthread_mutex_unlock(&pool->queue_lock);
    return all;
}

/* ---- parking ------------------------------------------------------------------------ */

static bool work_or_closing(void *arg)
{
    struct thread_pool *pool = arg;
    return pending(pool) > 0 ||
           atomic_load_explicit(&pool->closing, memory_order_relaxed);
}

/*
 * A parked worker counts itself in `parked` before it checks for work; a submitter counts
 * its task in `pushed` before it checks `parked`. Both are sequentially consistent, so at
 * least one of them sees the other: no wake-up is lost.
 */
static void park(struct thread_pool *pool)
{
    pthread_mutex_lock(&pool->park_lock);
    atomic_fetch_add(&pool->parked, 1);
    if (pending(pool) > 0 || atomic_load(&pool->closing)) {
        atomic_fetch_sub(&pool->parked, 1);
        pthread_mutex_unlock(&pool->park_lock);
        return;
    }
    double trim_after = IDLE_TRIM_SECONDS;  /* 0: no more trims this idle spell */
    while (pool->wake_tokens == 0 && !atomic_load(&pool->closing)) {
        if (trim_after == 0) {
            pthread_cond_wait(&pool->park_cond, &pool->park_lock);
            continue;
        }
        struct fut_deadline idle = fut__deadline_after(trim_after);
        if (pthread_cond_timedwait(&pool->park_cond, &pool->park_lock, &idle.at) == ETIMEDOUT) {
            pthread_mutex_unlock(&pool->park_lock);
            bool live = fut__future_cache_trim();
            pthread_mutex_lock(&pool->park_lock);
            trim_after = live && trim_after < IDLE_TRIM_MAX_SECONDS ? 2 * trim_after : 0;
        }
    }
    if (pool->wake_tokens > 0)
        pool->wake_tokens--;        /* the waker already took us off `parked` */
    else
        atomic_fetch_sub(&pool->parked, 1);
    pthread_mutex_unlock(&pool->park_lock);
}

static void wake_one(struct thread_pool *pool)
{
    if (atomic_load(&pool->parked) == 0)
        return;
    pthread_mutex_lock(&pool->park_lock);
    if (atomic_load(&pool->parked) > 0) {
        atomic_fetch_sub(&pool->parked, 1);
        pool->wake_tokens++;
        pthread_cond_signal(&pool->park_cond);
    }
    pthread_mutex_unlock(&pool->park_lock);
}

static void wake_all_for_close(struct thread_pool *pool)
{
    pthread_mutex_lock(&pool->park_lock);
    atomic_store(&pool->closing, true);
    pthread_cond_broadcast(&pool->park_cond);
    pthread_mutex_unlock(&pool->park_lock);
}

/* ---- workers ------------------------------------------------------------------------ */

/*
 * At most one idle worker spins (as Go's scheduler does): more would only burn the cores
 * the submitters and busy workers need. A spinner that finds work hands the spinning role
 * on by waking a parked worker when more tasks are queued, so parallelism ramps up.
 */
static bool spin_for_work(struct thread_pool *pool)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pool->spinning, &expected, 1))
        return false;
    bool found = fut__spin_until(work_or_closing, pool, FUT_FOREVER);
    atomic_store(&pool->spinning, 0);
    if (found && pending(pool) > 1)
        wake_one(pool);
    return found;
}

static fut_future *next_task(struct thread_pool *pool)
{
    for (;;) {
        fut_future *f = pop_task(pool);
        if (f)
            return f;
        if (atomic_load(&pool->closing))
            return NULL;
        /* nothing to run while a batch's futures are being made: take the faults of the
         * memory the submitter fills next (future_cache.c), a step at a time */
        if (fut__future_cache_prefault())
            continue;
        if (!spin_for_work(pool))
            park(pool);
    }
}

static void run_task(struct pool_worker *w, fut_future *f)
{
    struct thread_pool *pool = w->pool;
    if (fut__task_start(f, &w->tally) == 1) {
        struct fut_task_outcome out;
        fut__task_call(f->part.task.fn, f->part.task.arg, &out);
        /* idle again before the result is published, so that a submit made by whoever
         * waited on this result reuses this worker instead of starting another */
        atomic_fetch_add(&pool->idle, 1);
        fut__task_finish(f, &w->tally, out.result, out.result_is_bytes, out.code, out.message);
    } else {
        atomic_fetch_add(&pool->idle, 1);
    }
    fut_future_unref(f);  /* the executor's reference */
}

static void fail_all(struct fut_list list, int code, const char *message)
{
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &list) {
        fut_future *f = fut__task_of(node);
        if (fut_set_running_or_notify_cancel(f) == 1)
            fut__future_fail(f, code, message);
        fut_future_unref(f);
    }
}

static void wait_for_submitters(struct thread_pool *pool)
{
    while (atomic_load(&pool->active_submits) > 0)
        sched_yield();
}

static void break_pool(struct thread_pool *pool)
{
    atomic_store(&pool->broken, true);
    wait_for_submitters(pool);
    fail_all(take_all_tasks(pool), FUT_EBROKEN,
             "a thread initializer failed, the thread pool is not usable anymore");
    wake_all_for_close(pool);
}

static void set_thread_name(struct thread_pool *pool, int index)
{
    char suffix[16], name[16];
    int suffix_len = snprintf(suffix, sizeof suffix, "_%d", index);
    /* Linux thread names are at most 15 bytes: shorten the prefix, keep the number */
    size_t keep = strlen(pool->name_prefix);
    if (keep > sizeof name - 1 - (size_t)suffix_len)
        keep = sizeof name - 1 - (size_t)suffix_len;
    memcpy(name, pool->name_prefix, keep);
    memcpy(name + keep, suffix, (size_t)suffix_len + 1);
    pthread_setname_np(pthread_self(), name);
}

/* The pool whose worker the calling thread is, if any: its tasks cannot wait for it. */
static _Thread_local struct thread_pool *current_pool;

/* An exiting worker was idle: it leaves both counts (read by thread_pool_stats only). */
static void worker_exit(struct thread_pool *pool)
{
    atomic_fetch_sub_explicit(&pool->idle, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&pool->alive, 1, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct pool_worker *w = arg;
    struct thread_pool *pool = w->pool;
    current_pool = pool;
    set_thread_name(pool, w->index);
    if (pool->initializer && pool->initializer(pool->initarg) != 0) {
        break_pool(pool);
        worker_exit(pool);
        return NULL;
    }
    fut_future *f;
    while ((f = next_task(pool)))
        run_task(w, f);
    worker_exit(pool);
    return NULL;
}

/* Starts a worker if the waiting tasks (plus `coming`, about to be queued) outnumber
 * the idle workers. */
static bool needs_thread(struct thread_pool *pool, size_t coming)
{
    /* the thread count rarely changes: test it first and leave `idle` alone */
    return atomic_load_explicit(&pool->n_threads, memory_order_relaxed) < pool->base.max_workers &&
           pending(pool) + coming > (size_t)atomic_load(&pool->idle);
}

/* Under threads_lock. Only submits grow the arrays, and a shutdown reads them after the
 * last submit has left (wait_for_submitters), so they never move under a reader. */
static int grow_thread_arrays(struct thread_pool *pool)
{
    int cap = pool->threads_cap ? pool->threads_cap : 8;
    while (cap <= pool->threads_cap)
        cap = cap > INT_MAX / 2 ? INT_MAX : cap * 2;
    if (cap > pool->base.max_workers)
        cap = pool->base.max_workers;
    pthread_t *threads = realloc(pool->threads, (size_t)cap * sizeof *threads);
    if (!threads)
        return FUT_ENOMEM;
    pool->threads = threads;
    bool *joined = realloc(pool->joined, (size_t)cap * sizeof *joined);
    if (!joined)
        return FUT_ENOMEM;
    memset(joined + pool->threads_cap, 0, (size_t)(cap - pool->threads_cap) * sizeof *joined);
    pool->joined = joined;
    pool->threads_cap = cap;
    return 0;
}

static int adjust_thread_count(struct thread_pool *pool, size_t coming)
{
    if (!needs_thread(pool, coming))
        return 0;
    int rc = 0;
    pthread_mutex_lock(&pool->threads_lock);
    int n = atomic_load(&pool->n_threads);
    if (!needs_thread(pool, coming))
        goto out;
    if (n == pool->threads_cap && (rc = grow_thread_arrays(pool)) != 0)
        goto out;
    struct pool_worker *w = aligned_alloc(CACHE_LINE, sizeof *w);
    if (!w) {
        rc = FUT_ENOMEM;
        goto out;
    }
    memset(w, 0, sizeof *w);
    w->pool = pool;
    w->index = n;
    /* linked before it can count; a worker that fails to start stays linked, at zero */
    fut__executor_add_tally(&pool->base, &w->tally);
    atomic_fetch_add(&pool->idle, 1);
    atomic_fetch_add_explicit(&pool->alive, 1, memory_order_relaxed);
    int err = pthread_create(&pool->threads[n], NULL, worker_main, w);
    if (err) {
        atomic_fetch_sub(&pool->idle, 1);
        atomic_fetch_sub_explicit(&pool->alive, 1, memory_order_relaxed);
        rc = -err;
        goto out;
    }
    atomic_store(&pool->n_threads, n + 1);
out:
    pthread_mutex_unlock(&pool->threads_lock);
    return rc;
}

/* ---- the executor interface ------------------------------------------------------- */

static int thread_pool_submit(fut_executor *ex, fut_future *f)
{
    struct thread_pool *pool = (struct thread_pool *)ex;
    int rc = 0;
    atomic_fetch_add(&pool->active_submits, 1);
    if (atomic_load(&pool->shutdown)) {
        rc = FUT_ESHUTDOWN;
        goto out;
    }
    if (atomic_load(&pool->broken)) {
        rc = FUT_EBROKEN;
        goto out;
    }
    /* Without any worker a queued task would never run: start the first one up front. */
    if (atomic_load(&pool->n_threads) == 0 && (rc = adjust_thread_count(pool, 1)) != 0)
        goto out;
    /* the executor's reference: f is still the submitter's alone (core/executor.c), so a
     * store will do */
    atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
    /* counted before it is visible, so `taken` never runs ahead of it */
    atomic_fetch_add(&pool->pushed, 1);
    push_incoming(pool, f);
    adjust_thread_count(pool, 0);  /* failure is fine: the workers we have will run it */
    if (atomic_load(&pool->spinning) == 0)
        wake_one(pool);
out:
    atomic_fetch_sub(&pool->active_submits, 1);
    return rc;
}

/*
 * Only the joins are serialised (shutdown_lock): setting the flag, cancelling and waking
 * never wait, so a task of this pool may shut it down while another thread is inside
 * fut_shutdown(wait) or fut_executor_free joining that task's thread. Such a task does
 * not wait itself (it would wait for its own thread): a later wait, or the free, does.
 */
static int thread_pool_shutdown(fut_executor *ex, bool wait, bool cancel_futures)
{
    struct thread_pool *pool = (struct thread_pool *)ex;
    atomic_store(&pool->shutdown, true);
    /* after this no submit can push: the queue only shrinks */
    wait_for_submitters(pool);
    if (cancel_futures)
        fut__executor_cancel_queued(take_all_tasks(pool));
    wake_all_for_close(pool);
    if (!wait || current_pool == pool)
        return 0;
    pthread_mutex_lock(&pool->shutdown_lock);
    pthread_mutex_lock(&pool->threads_lock);
    int n = atomic_load(&pool->n_threads);
    pthread_mutex_unlock(&pool->threads_lock);
    for (int i = 0; i < n; i++) {
        if (pool->joined[i])
            continue;
        pthread_join(pool->threads[i], NULL);
        pool->joined[i] = true;
    }
    pthread_mutex_unlock(&pool->shutdown_lock);
    return 0;
}

static void thread_pool_destroy(fut_executor *ex)
{
    struct thread_pool *pool = (struct thread_pool *)ex;
    pthread_mutex_destroy(&pool->queue_lock);
    pthread_mutex_destroy(&pool->park_lock);
    pthread_cond_destroy(&pool->park_cond);
    pthread_mutex_destroy(&pool->threads_lock);
    pthread_mutex_destroy(&pool->shutdown_lock);
    free_workers(pool);
    free(pool->threads);
    free(pool->joined);
    free(pool->name_prefix);
    free(pool);
}

/* In a forked child: the queued futures and the memory go, nothing else is touched (the
 * workers and whatever locks they held stayed in the parent; core/executor.h). */
static void thread_pool_forget(fut_executor *ex)
{
    struct thread_pool *pool = (struct thread_pool *)ex;
    struct fut_list_node *node = atomic_load(&pool->incoming), *next;
    for (; node; node = next) {
        next = node->next;
        fut_future_unref(fut__task_of(node));
    }
    fut_list_for_each_safe(node, next, &pool->queue)
        fut_future_unref(fut__task_of(node));
    free_workers(pool);
    free(pool->threads);
    free(pool->joined);
    free(pool->name_prefix);
    free(pool);
}

static void thread_pool_stats(const fut_executor *ex, size_t *workers, size_t *idle)
{
    struct thread_pool *pool = (struct thread_pool *)ex;
    int alive = atomic_load_explicit(&pool->alive, memory_order_relaxed);
    int idle_now = atomic_load_explicit(&pool->idle, memory_order_relaxed);
    *workers = alive > 0 ? (size_t)alive : 0;
    *idle = idle_now > 0 ? (size_t)idle_now : 0;  /* capped at workers by the caller */
}

static const struct fut_executor_ops thread_pool_ops = {
    .submit = thread_pool_submit,
    .shutdown = thread_pool_shutdown,
    .destroy = thread_pool_destroy,
    /* a few chunks per worker keeps them balanced; 256 items amortise a task's cost */
    .chunks_per_worker = 4,
    .max_chunksize = 256,
    .stats = thread_pool_stats,
    .forget = thread_pool_forget,
};

fut_executor *fut_thread_pool_new(const fut_pool_options *opts)
{
    int rc = fut__pool_options_check(opts);
    if (rc) {
        errno = -rc;
        return NULL;
    }
    struct thread_pool *pool = aligned_alloc(CACHE_LINE, sizeof *pool);
    if (!pool)
        goto fail;
    memset(pool, 0, sizeof *pool);
    int cpus = fut__cpu_count();
    fut__executor_init(&pool->base, &thread_pool_ops,
                       opts && opts->max_workers ? opts->max_workers
                                                 : (cpus + 4 < 32 ? cpus + 4 : 32));
    if (opts) {
        pool->initializer = opts->initializer;
        pool->initarg = opts->initarg;
    }
    const char *prefix = opts && opts->thread_name_prefix ? opts->thread_name_prefix : DEFAULT_PREFIX;
    pool->name_prefix = strdup(prefix);
    if (!pool->name_prefix)
        goto fail;
    pthread_mutex_init(&pool->queue_lock, NULL);
    pthread_mutex_init(&pool->park_lock, NULL);
    pthread_condattr_t monotonic;  /* park's idle deadline is a CLOCK_MONOTONIC one */
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->park_cond, &monotonic);
    pthread_condattr_destroy(&monotonic);
    pthread_mutex_init(&pool->threads_lock, NULL);
    pthread_mutex_init(&pool->shutdown_lock, NULL);
    return &pool->base;
fail:
    if (pool) {
        free(pool->name_prefix);
        free(pool->threads);
        free(pool->joined);
        free(pool);
    }
    errno = ENOMEM;
    return NULL;
}
