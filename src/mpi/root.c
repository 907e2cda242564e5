/* SPDX-License-Identifier: MIT */
/*
 * The MPI executor on its root rank.
 *
 * Threads: user threads submit; ONE progress thread makes every MPI call of the executor,
 * so the program needs only MPI_THREAD_SERIALIZED (the progress thread and the thread that
 * created the executor never call MPI at the same time: creation is over before the
 * progress thread starts).
 *
 * Submitting names the task's function (objects.c: FUT_EINVAL for an address outside every
 * loaded object), appends the future to `queue` under `lock` and signals `wake` when the
 * progress thread sleeps. The progress thread owns the links (one per worker rank): it
 * hands queued tasks to ranks, at most two per rank (the one it runs and one ahead, the
 * second only when no rank is idle), drives the nonblocking sends and receives, and
 * completes the futures without holding `lock` (a done callback may submit).
 *
 * Sleeping: with no MPI work outstanding (no task on a rank, no send, every rank ready) the
 * progress thread waits on `wake` without a timeout, so an idle executor costs no CPU.
 * While a rank has work it polls with MPI_Test*, spinning for FUT_MPI_SPIN_SECONDS after
 * the last event, then sleeping on `wake` for 10 us doubling up to 1 ms (10 ms after 50 ms
 * without an event); a submit cuts a sleep short.
 *
 * Per rank, at most one send is in flight (an object description, a task's header, or one
 * piece of its payload) and one receive (a reply header, or one piece of a reply's
 * payload). Replies come in task order; each carries its task's sequence number.
 *
 * Lock order: `lock` is a leaf; the objects table has its own leaf lock.
 *
 * The traffic with each rank (sends, receives, pieces) is in link.c (mpi/root.h).
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/root.h"

/* ---- completing futures (never under lock) --------------------------------------------- */

void fut__mpi_finish(struct mpi_pool *pool, fut_future *f, void *result, bool is_bytes, int code, char *message)
{
    pool->hooks->future_finish(f, result, is_bytes, code, message);
    fut_future_unref(f);
}

void fut__mpi_fail(struct mpi_pool *pool, fut_future *f, int code, const char *fmt, ...)
{
    char *message = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    fut__mpi_finish(pool, f, NULL, false, code, message);
}

/* Fails every queued future with FUT_EBROKEN (the pool is broken). */
static void fail_queued(struct mpi_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    struct fut_list queued = fut_list_take(&pool->queue);
    const char *why = pool->broken_message ? pool->broken_message : "the MPI executor is broken";
    char *copy = strdup(why);
    pthread_mutex_unlock(&pool->lock);
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &queued) {
        fut_future *f = fut__task_of(node);
        if (fut_set_running_or_notify_cancel(f) == 1)
            fut__mpi_fail(pool, f, FUT_EBROKEN, "%s", copy ? copy : "the MPI executor is broken");
        else
            fut_future_unref(f);
    }
    free(copy);
}

void fut__mpi_set_broken(struct mpi_pool *pool, const char *fmt, ...)
{
    char *message = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    pthread_mutex_lock(&pool->lock);
    if (!pool->broken) {
        pool->broken = true;
        pool->broken_message = message;
        message = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    free(message);
    fail_queued(pool);
}

/* An MPI call failed: fail everything the ranks hold and make no more MPI calls. */
void fut__mpi_failure(struct mpi_pool *pool, int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    pool->mpi_failed = true;
    fut__mpi_set_broken(pool, "MPI executor: %s failed: %s", what, text);
    for (int i = 0; i < pool->n_links; i++) {
        struct link *l = &pool->links[i];
        for (int t = 0; t < l->n_tasks; t++)
            fut__mpi_fail(pool, l->tasks[t], FUT_EBROKEN, "MPI executor: %s failed: %s", what, text);
        l->n_tasks = l->n_sent = 0;
        l->stopped = true;
    }
}

/* ---- scheduling (under lock) ------------------------------------------------------------ */

static fut_future *queue_pop_locked(struct mpi_pool *pool)
{
    struct fut_list_node *node = fut_list_pop_front(&pool->queue);
    return node ? fut__task_of(node) : NULL;
}

/* Hands queued tasks to ranks: idle ranks first, then one ahead on busy ones. Cancelled
 * futures met on the way are returned through *dropped (unreferenced after unlock). */
static void assign_locked(struct mpi_pool *pool, struct fut_list *dropped)
{
    for (int ahead = 0; ahead < 2; ahead++) {
        for (int i = 0; i < pool->n_links && !fut_list_empty(&pool->queue); i++) {
            struct link *l = &pool->links[i];
            while (l->ready && !l->stop_sent && l->n_tasks == ahead && !fut_list_empty(&pool->queue)) {
                fut_future *f = queue_pop_locked(pool);
                if (fut_set_running_or_notify_cancel(f) != 1) {
                    fut_list_push_back(dropped, &f->part.task.node);
                    continue;
                }
                l->tasks[l->n_tasks] = f;
                l->seqs[l->n_tasks++] = pool->next_seq++;
            }
        }
    }
}

static bool link_busy(const struct link *l)
{
    return l->n_tasks > 0 || l->sending != SEND_NONE || l->receiving_data ||
           (!l->ready && !l->init_failed && !l->stop_sent) || (l->stop_sent && !l->stopped);
}

/* ---- the progress thread ---------------------------------------------------------------- */

/* One round of MPI work: true if anything happened. */
static bool progress(struct mpi_pool *pool, bool stopping)
{
    bool happened = false;
    int n = pool->n_links, count = 0;
    for (int i = 0; i < n && !pool->mpi_failed; i++)
        happened |= fut__mpi_link_start_send(pool, i, stopping);
    if (pool->mpi_failed)
        return true;
    /* a real status array: MPICH declares the parameter with an access attribute that
     * MPI_STATUSES_IGNORE trips in gcc */
    int rc = MPI_Testsome(n, pool->send_reqs, &count, pool->indices, pool->statuses);
    if (rc != MPI_SUCCESS) {
        fut__mpi_failure(pool, rc, "MPI_Testsome");
        return true;
    }
    for (int k = 0; k < count && count != MPI_UNDEFINED; k++) {
        fut__mpi_link_send_completed(pool, pool->indices[k]);
        happened = true;
    }
    rc = MPI_Testsome(n, pool->recv_reqs, &count, pool->indices, pool->statuses);
    if (rc != MPI_SUCCESS) {
        fut__mpi_failure(pool, rc, "MPI_Testsome");
        return true;
    }
    for (int k = 0; k < count && count != MPI_UNDEFINED && !pool->mpi_failed; k++) {
        int i = pool->indices[k], bytes = 0;
        MPI_Get_count(&pool->statuses[k], MPI_BYTE, &bytes);
        if (pool->links[i].receiving_data)
            fut__mpi_link_piece_received(pool, i);
        else
            fut__mpi_link_header_received(pool, i, bytes);
        happened = true;
    }
    return happened;
}

static void sleep_on_wake(struct mpi_pool *pool, double seconds)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    long ns = at.tv_nsec + (long)(seconds * 1e9);
    at.tv_sec += ns / 1000000000L;
    at.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(&pool->wake, &pool->lock, &at);
}

static void *progress_main(void *arg)
{
    struct mpi_pool *pool = arg;
    for (int i = 0; i < pool->n_links; i++)
        if (fut__mpi_link_post_header_recv(pool, i) != MPI_SUCCESS)
            break;
    double quiet_since = fut__mpi_now(), backoff = FUT_MPI_BACKOFF_MIN;
    for (;;) {
        struct fut_list dropped = { 0 };
        pthread_mutex_lock(&pool->lock);
        if (!pool->broken && !pool->mpi_failed)
            assign_locked(pool, &dropped);
        bool stopping = pool->shutdown && fut_list_empty(&pool->queue);
        bool busy = false, all_stopped = true;
        for (int i = 0; i < pool->n_links; i++) {
            busy |= link_busy(&pool->links[i]);
            all_stopped &= pool->links[i].stopped;
        }
        if (pool->mpi_failed || (stopping && all_stopped)) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        if (!busy && !stopping && fut_list_empty(&dropped)) {
            pool->sleeping = true;
            pthread_cond_wait(&pool->wake, &pool->lock);
            pool->sleeping = false;
            pthread_mutex_unlock(&pool->lock);
            quiet_since = fut__mpi_now();
            backoff = FUT_MPI_BACKOFF_MIN;
            continue;
        }
        pthread_mutex_unlock(&pool->lock);
        struct fut_list_node *node, *next;
        fut_list_for_each_safe(node, next, &dropped)
            fut_future_unref(fut__task_of(node));
        if (progress(pool, stopping)) {
            quiet_since = fut__mpi_now();
            backoff = FUT_MPI_BACKOFF_MIN;
            continue;
        }
        if (fut__mpi_now() - quiet_since < FUT_MPI_SPIN_SECONDS) {
            sched_yield();
            continue;
        }
        pthread_mutex_lock(&pool->lock);
        pool->sleeping = true;
        sleep_on_wake(pool, backoff);
        pool->sleeping = false;
        pthread_mutex_unlock(&pool->lock);
        backoff = fut__mpi_backoff_next(backoff, fut__mpi_now() - quiet_since);
    }
    if (!pool->mpi_failed)
        MPI_Comm_free(&pool->comm);
    fail_queued(pool);  /* an MPI failure leaves queued work behind */
    return NULL;
}

/* ---- executor ops ----------------------------------------------------------------------- */

static int mpi_submit(fut_executor *ex, fut_future *f)
{
    struct mpi_pool *pool = (struct mpi_pool *)ex;
    struct fut__mpi_message names;
    int rc = fut__mpi_link_name_task(pool, f, &names);  /* a stack or heap address is no function */
    if (rc)
        return rc;
    pthread_mutex_lock(&pool->lock);
    if (pool->shutdown) {
        rc = FUT_ESHUTDOWN;
    } else if (pool->broken) {
        rc = FUT_EBROKEN;
    } else {
        fut_future_ref(f);
        fut_list_push_back(&pool->queue, &f->part.task.node);
        if (pool->sleeping)
            pthread_cond_signal(&pool->wake);
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

static int mpi_shutdown(fut_executor *ex, bool wait, bool cancel_futures)
{
    struct mpi_pool *pool = (struct mpi_pool *)ex;
    pthread_mutex_lock(&pool->lock);
    pool->shutdown = true;
    struct fut_list cancelled = { 0 };
    if (cancel_futures)
        cancelled = fut_list_take(&pool->queue);
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    fut__executor_cancel_queued(cancelled);
    if (wait)
        fut__join_once(&pool->progress);
    return 0;
}

static void free_links(struct mpi_pool *pool)
{
    for (int i = 0; pool->links && i < pool->n_links; i++) {
        free(pool->links[i].send_buf);
        free(pool->links[i].recv_buf);
        free(pool->links[i].recv_data);
    }
    free(pool->links);
    free(pool->send_reqs);
    free(pool->recv_reqs);
    free(pool->indices);
    free(pool->statuses);
}

static void mpi_destroy(fut_executor *ex)
{
    struct mpi_pool *pool = (struct mpi_pool *)ex;
    fut__join_once(&pool->progress);
    fut__mpi_live_remove(ex);
    free_links(pool);
    fut__mpi_objects_destroy(&pool->objects);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->progress.lock);
    free(pool->broken_message);
    free(pool);
}

static const struct fut_executor_ops mpi_pool_ops = {
    .submit = mpi_submit,
    .shutdown = mpi_shutdown,
    .destroy = mpi_destroy,
    /* A chunk costs a round trip through the progress thread and MPI (tens of
     * microseconds on one machine, more across a network): large chunks, few per rank. */
    .chunks_per_worker = 4,
    .max_chunksize = 8192,
};

static int init_links(struct mpi_pool *pool, int root, int size)
{
    int n = pool->base.max_workers;
    pool->links = calloc((size_t)n, sizeof *pool->links);
    pool->send_reqs = malloc((size_t)n * sizeof *pool->send_reqs);
    pool->recv_reqs = malloc((size_t)n * sizeof *pool->recv_reqs);
    pool->indices = malloc((size_t)n * sizeof *pool->indices);
    pool->statuses = malloc((size_t)n * sizeof *pool->statuses);
    if (!pool->links || !pool->send_reqs || !pool->recv_reqs || !pool->indices || !pool->statuses)
        return FUT_ENOMEM;
    pool->n_links = n;
    for (int i = 0, rank = 0; i < n; i++, rank++) {
        if (rank == root)
            rank++;
        struct link *l = &pool->links[i];
        l->rank = rank;
        pool->send_reqs[i] = pool->recv_reqs[i] = MPI_REQUEST_NULL;
        l->send_buf = malloc(FUT_MPI_MESSAGE_MAX);
        l->recv_buf = malloc(FUT_MPI_MESSAGE_MAX);
        if (!l->send_buf || !l->recv_buf)
            return FUT_ENOMEM;
    }
    (void)size;
    return 0;
}

int fut__mpi_root_start(MPI_Comm comm, int root, const struct fut__mpi_config *config, fut_executor **out)
{
    struct mpi_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return FUT_ENOMEM;
    int size = 0;
    MPI_Comm_size(comm, &size);
    pool->comm = comm;
    pool->hooks = fut_backend_hooks();
    pool->hooks->executor_init(&pool->base, &mpi_pool_ops, config->workers);
    fut__mpi_objects_init(&pool->objects);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->progress.lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->wake, &attr);
    pthread_condattr_destroy(&attr);
    int rc = init_links(pool, root, size);
    if (rc == 0 && pthread_create(&pool->progress.thread, NULL, progress_main, pool) != 0)
        rc = FUT_ENOMEM;
    if (rc) {
        /* the workers wait for tasks: tell them to stop before giving up */
        struct fut__mpi_message stop = { .wire.type = FUT_MPI_STOP };
        for (int i = 0, rank = 0; i < config->workers; i++, rank++) {
            if (rank == root)
                rank++;
            MPI_Send(&stop, sizeof stop, MPI_BYTE, rank, FUT_MPI_TAG_TASK, comm);
        }
        free_links(pool);
        fut__mpi_objects_destroy(&pool->objects);
        pthread_mutex_destroy(&pool->lock);
        pthread_mutex_destroy(&pool->progress.lock);
        pthread_cond_destroy(&pool->wake);
        free(pool);
        MPI_Comm_free(&comm);
        return rc;
    }
    fut__mpi_live_add(&pool->base);
    *out = &pool->base;
    return 0;
}
