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
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/backend.h"
#include "core/executor.h"
#include "mpi/mpi_pool.h"
#include "mpi/objects.h"

enum send_kind { SEND_NONE, SEND_OBJECT, SEND_HEADER, SEND_DATA, SEND_STOP };

struct link {
    int rank;
    bool ready;                    /* READY came: tasks may go */
    bool init_failed;
    bool stop_sent, stopped;       /* STOP went out; STOPPED came back */
    fut_future *tasks[2];          /* tasks[0] is the oldest; all are RUNNING */
    uint64_t seqs[2];
    int n_tasks;
    int n_sent;                    /* tasks[0 .. n_sent) are sent in full */
    uint32_t objects_sent;         /* objects 0 .. objects_sent) are described to it */

    enum send_kind sending;
    const char *send_data;         /* the payload being sent in pieces */
    size_t send_len, send_done, send_piece;
    struct fut__mpi_message *send_buf;

    bool receiving_data;           /* recv_reqs[i] is a payload piece, not a header */
    struct fut__wire_header reply; /* the reply whose payload is arriving */
    char *recv_data;
    size_t recv_len, recv_done, recv_piece;
    struct fut__mpi_message *recv_buf;
};

struct mpi_pool {
    fut_executor base;
    MPI_Comm comm;
    const struct fut_backend_hooks *hooks;
    struct fut__mpi_objects objects;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct fut_list queue;         /* of futures, through their task part */
    bool shutdown, broken, sleeping;
    char *broken_message;          /* why, for the futures failed by it */

    /* progress thread only */
    struct link *links;
    int n_links;
    MPI_Request *send_reqs, *recv_reqs;
    int *indices;
    MPI_Status *statuses;
    uint64_t next_seq;
    bool mpi_failed;               /* an MPI call failed: no more MPI calls */

    struct fut_joinable_thread progress;
};

/* ---- completing futures (never under lock) --------------------------------------------- */

static void finish(struct mpi_pool *pool, fut_future *f, void *result, bool is_bytes, int code, char *message)
{
    pool->hooks->future_finish(f, result, is_bytes, code, message);
    fut_future_unref(f);
}

static void fail(struct mpi_pool *pool, fut_future *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct mpi_pool *pool, fut_future *f, int code, const char *fmt, ...)
{
    char *message = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    finish(pool, f, NULL, false, code, message);
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
            fail(pool, f, FUT_EBROKEN, "%s", copy ? copy : "the MPI executor is broken");
        else
            fut_future_unref(f);
    }
    free(copy);
}

static void set_broken(struct mpi_pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_broken(struct mpi_pool *pool, const char *fmt, ...)
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
static void mpi_failure(struct mpi_pool *pool, int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    pool->mpi_failed = true;
    set_broken(pool, "MPI executor: %s failed: %s", what, text);
    for (int i = 0; i < pool->n_links; i++) {
        struct link *l = &pool->links[i];
        for (int t = 0; t < l->n_tasks; t++)
            fail(pool, l->tasks[t], FUT_EBROKEN, "MPI executor: %s failed: %s", what, text);
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

/* ---- sends ------------------------------------------------------------------------------ */

static int post_send(struct mpi_pool *pool, int i, const void *buf, size_t len, int tag)
{
    int rc = MPI_Isend(buf, (int)len, MPI_BYTE, pool->links[i].rank, tag, pool->comm, &pool->send_reqs[i]);
    if (rc != MPI_SUCCESS)
        mpi_failure(pool, rc, "MPI_Isend");
    return rc;
}

/* Large payloads travel in pieces of at most FUT_MPI_PIECE bytes (an MPI count is an int). */
static size_t next_piece(size_t len, size_t done)
{
    return len - done < FUT_MPI_PIECE ? len - done : FUT_MPI_PIECE;
}

static int send_next_piece(struct mpi_pool *pool, int i)
{
    struct link *l = &pool->links[i];
    l->send_piece = next_piece(l->send_len, l->send_done);
    l->sending = SEND_DATA;
    return post_send(pool, i, l->send_data + l->send_done, l->send_piece, FUT_MPI_TAG_DATA);
}

static bool is_map_chunk(struct mpi_pool *pool, const fut_future *f)
{
    return f->part.task.fn == pool->hooks->map_chunk &&
           fut__task_arg_len(f) >= sizeof(struct fut__map_request);
}

/* Names a task's functions: 0 or a negative code. */
static int name_task(struct mpi_pool *pool, const fut_future *f, struct fut__mpi_message *m)
{
    int rc = fut__mpi_objects_name(&pool->objects, (uintptr_t)f->part.task.fn, &m->fn_object,
                                   &m->fn_offset);
    m->map_object = FUT_MPI_NO_OBJECT;
    m->map_offset = 0;
    if (rc == 0 && is_map_chunk(pool, f)) {
        const struct fut__map_request *request = f->part.task.arg;
        rc = fut__mpi_objects_name(&pool->objects, (uintptr_t)request->fn, &m->map_object, &m->map_offset);
    }
    return rc;
}

/* Removes tasks[t] of link l (a task that cannot be sent). */
static fut_future *link_take(struct link *l, int t)
{
    fut_future *f = l->tasks[t];
    for (int k = t; k + 1 < l->n_tasks; k++) {
        l->tasks[k] = l->tasks[k + 1];
        l->seqs[k] = l->seqs[k + 1];
    }
    l->n_tasks--;
    return f;
}

/* Starts the next send of link i when none is in flight: true if one started. */
static bool start_send(struct mpi_pool *pool, int i, bool stopping)
{
    struct link *l = &pool->links[i];
    if (l->sending != SEND_NONE || l->stopped)
        return false;
    while (l->n_sent < l->n_tasks) {
        fut_future *f = l->tasks[l->n_sent];
        struct fut__mpi_message *m = l->send_buf;
        memset(m, 0, sizeof *m);
        int rc = name_task(pool, f, m);
        if (rc) {
            fail(pool, link_take(l, l->n_sent), rc, "MPI executor: cannot name the task's function");
            continue;
        }
        uint32_t needed = m->fn_object;
        if (m->map_object != FUT_MPI_NO_OBJECT && m->map_object > needed)
            needed = m->map_object;
        if (l->objects_sent <= needed) {
            const struct fut__mpi_object *o = fut__mpi_objects_get(&pool->objects, l->objects_sent);
            if (o->wire_len > FUT_MPI_INLINE) {
                fail(pool, link_take(l, l->n_sent), FUT_EINVAL, "MPI executor: object path too long");
                continue;
            }
            m->wire.type = FUT_MPI_OBJECT;
            m->wire.code = (int32_t)l->objects_sent++;
            m->wire.len = o->wire_len;
            memcpy(m->payload, o->wire, o->wire_len);
            l->sending = SEND_OBJECT;
            post_send(pool, i, m, sizeof *m + o->wire_len, FUT_MPI_TAG_TASK);
            return true;
        }
        m->wire.type = FUT_WIRE_TASK;
        m->seq = l->seqs[l->n_sent];
        m->wire.len = fut__task_arg_len(f);
        m->wire.b = (uint64_t)(uintptr_t)f->part.task.arg;
        size_t inline_len = m->wire.len <= FUT_MPI_INLINE ? m->wire.len : 0;
        if (inline_len)
            memcpy(m->payload, f->part.task.arg, inline_len);
        l->sending = SEND_HEADER;
        l->send_data = m->wire.len > FUT_MPI_INLINE ? f->part.task.arg : NULL;
        l->send_len = m->wire.len;
        l->send_done = 0;
        post_send(pool, i, m, sizeof *m + inline_len, FUT_MPI_TAG_TASK);
        return true;
    }
    if (stopping && l->n_tasks == 0 && !l->stop_sent) {
        memset(l->send_buf, 0, sizeof *l->send_buf);
        l->send_buf->wire.type = FUT_MPI_STOP;
        l->stop_sent = true;
        l->sending = SEND_STOP;
        post_send(pool, i, l->send_buf, sizeof *l->send_buf, FUT_MPI_TAG_TASK);
        return true;
    }
    return false;
}

static void send_completed(struct mpi_pool *pool, int i)
{
    struct link *l = &pool->links[i];
    enum send_kind kind = l->sending;
    l->sending = SEND_NONE;
    if (kind == SEND_HEADER && l->send_data) {
        send_next_piece(pool, i);
    } else if (kind == SEND_DATA) {
        l->send_done += l->send_piece;
        if (l->send_done < l->send_len)
            send_next_piece(pool, i);
        else
            l->n_sent++;
    } else if (kind == SEND_HEADER) {
        l->n_sent++;
    }
}

/* ---- receives --------------------------------------------------------------------------- */

static int post_recv(struct mpi_pool *pool, int i, void *buf, size_t len, int tag)
{
    int rc = MPI_Irecv(buf, (int)len, MPI_BYTE, pool->links[i].rank, tag, pool->comm, &pool->recv_reqs[i]);
    if (rc != MPI_SUCCESS)
        mpi_failure(pool, rc, "MPI_Irecv");
    return rc;
}

static int post_header_recv(struct mpi_pool *pool, int i)
{
    struct link *l = &pool->links[i];
    l->receiving_data = false;
    return post_recv(pool, i, l->recv_buf, FUT_MPI_MESSAGE_MAX, FUT_MPI_TAG_REPLY);
}

static int post_piece_recv(struct mpi_pool *pool, int i)
{
    struct link *l = &pool->links[i];
    l->recv_piece = next_piece(l->recv_len, l->recv_done);
    l->receiving_data = true;
    return post_recv(pool, i, l->recv_data + l->recv_done, l->recv_piece, FUT_MPI_TAG_DATA);
}

/* A rank broke the protocol: its tasks fail, it gets no more work and no STOP (its
 * receive stays unposted: nothing it sends is trusted again). */
static void link_lied(struct mpi_pool *pool, int i, const char *what)
{
    struct link *l = &pool->links[i];
    for (int t = 0; t < l->n_tasks; t++)
        fail(pool, l->tasks[t], FUT_EBROKEN, "MPI executor: rank %d %s", l->rank, what);
    l->n_tasks = l->n_sent = 0;
    l->ready = false;
    l->init_failed = true;
    l->stopped = true;
    free(l->recv_data);
    l->recv_data = NULL;
}

/* The reply to tasks[0] is complete: finish its future. */
static void complete_oldest(struct mpi_pool *pool, struct link *l, const struct fut__wire_header *m, char *data)
{
    fut_future *f = link_take(l, 0);
    l->n_sent--;
    switch (m->type) {
    case FUT_WIRE_RESULT:
        finish(pool, f, (void *)(uintptr_t)m->a, false, 0, NULL);
        break;
    case FUT_WIRE_BYTES:
        finish(pool, f, data, true, 0, NULL);
        break;
    default:  /* FUT_WIRE_RAISE: data is the message, NUL-terminated */
        finish(pool, f, NULL, false, m->code ? m->code : FUT_EINVAL, m->b ? data : NULL);
        if (!m->b)
            free(data);
        break;
    }
}

/* A payload buffer for a reply of len bytes: a fut_bytes buffer for results, a string
 * for messages. */
static char *reply_buffer(const struct fut__mpi_message *m)
{
    if (m->wire.type == FUT_WIRE_BYTES)
        return fut_bytes_new(m->wire.len);
    char *s = malloc(m->wire.len + 1);
    if (s)
        s[m->wire.len] = '\0';
    return s;
}

static void header_received(struct mpi_pool *pool, int i, int count)
{
    struct link *l = &pool->links[i];
    const struct fut__mpi_message *m = l->recv_buf;
    size_t inline_len = m->wire.len <= FUT_MPI_INLINE ? m->wire.len : 0;
    if ((size_t)count < sizeof *m || (size_t)count != sizeof *m + inline_len) {
        link_lied(pool, i, "sent a malformed reply");
        return;
    }
    switch (m->wire.type) {
    case FUT_WIRE_READY:
        l->ready = true;
        post_header_recv(pool, i);
        return;
    case FUT_WIRE_INIT_FAILED:
        l->init_failed = true;
        set_broken(pool, "MPI executor: the initializer failed on rank %d (returned %d)", l->rank, m->wire.code);
        post_header_recv(pool, i);
        return;
    case FUT_MPI_STOPPED:
        l->stopped = true;
        return;
    case FUT_WIRE_RESULT:
    case FUT_WIRE_BYTES:
    case FUT_WIRE_RAISE:
        break;
    default:
        link_lied(pool, i, "sent a message of unknown type");
        return;
    }
    if (l->n_tasks == 0 || m->seq != l->seqs[0] || (l->n_sent == 0 && l->sending == SEND_NONE)) {
        link_lied(pool, i, "answered a task it was not given");
        return;
    }
    if (l->n_sent == 0) {
        /* The rank has the whole task, but MPI has not yet told us that our last send of
         * it (the header or the last piece) is complete: it is, wait for it to say so
         * before the argument is freed with the future. */
        int rc = MPI_Wait(&pool->send_reqs[i], MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            mpi_failure(pool, rc, "MPI_Wait");
            return;
        }
        l->sending = SEND_NONE;
        l->n_sent = 1;
    }
    if (m->wire.type == FUT_WIRE_RESULT && m->wire.len) {
        link_lied(pool, i, "sent a malformed reply");
        return;
    }
    char *data = NULL;
    if (m->wire.type != FUT_WIRE_RESULT && !(data = reply_buffer(m))) {
        if (inline_len == m->wire.len) {  /* nothing more to drain: fail this task alone */
            fut_future *f = link_take(l, 0);
            l->n_sent--;
            fail(pool, f, FUT_ENOMEM, "MPI executor: no memory for a %llu-byte reply",
                 (unsigned long long)m->wire.len);
            post_header_recv(pool, i);
            return;
        }
        link_lied(pool, i, "sent a reply larger than the root's free memory");
        return;
    }
    if (inline_len || m->wire.len == 0) {
        if (inline_len)
            memcpy(data, m->payload, inline_len);
        complete_oldest(pool, l, &m->wire, data);
        post_header_recv(pool, i);
        return;
    }
    l->reply = m->wire;
    l->recv_data = data;
    l->recv_len = m->wire.len;
    l->recv_done = 0;
    post_piece_recv(pool, i);
}

static void piece_received(struct mpi_pool *pool, int i)
{
    struct link *l = &pool->links[i];
    l->recv_done += l->recv_piece;
    if (l->recv_done < l->recv_len) {
        post_piece_recv(pool, i);
        return;
    }
    char *data = l->recv_data;
    l->recv_data = NULL;
    complete_oldest(pool, l, &l->reply, data);
    post_header_recv(pool, i);
}

/* ---- the progress thread ---------------------------------------------------------------- */

/* One round of MPI work: true if anything happened. */
static bool progress(struct mpi_pool *pool, bool stopping)
{
    bool happened = false;
    int n = pool->n_links, count = 0;
    for (int i = 0; i < n && !pool->mpi_failed; i++)
        happened |= start_send(pool, i, stopping);
    if (pool->mpi_failed)
        return true;
    /* a real status array: MPICH declares the parameter with an access attribute that
     * MPI_STATUSES_IGNORE trips in gcc */
    int rc = MPI_Testsome(n, pool->send_reqs, &count, pool->indices, pool->statuses);
    if (rc != MPI_SUCCESS) {
        mpi_failure(pool, rc, "MPI_Testsome");
        return true;
    }
    for (int k = 0; k < count && count != MPI_UNDEFINED; k++) {
        send_completed(pool, pool->indices[k]);
        happened = true;
    }
    rc = MPI_Testsome(n, pool->recv_reqs, &count, pool->indices, pool->statuses);
    if (rc != MPI_SUCCESS) {
        mpi_failure(pool, rc, "MPI_Testsome");
        return true;
    }
    for (int k = 0; k < count && count != MPI_UNDEFINED && !pool->mpi_failed; k++) {
        int i = pool->indices[k], bytes = 0;
        MPI_Get_count(&pool->statuses[k], MPI_BYTE, &bytes);
        if (pool->links[i].receiving_data)
            piece_received(pool, i);
        else
            header_received(pool, i, bytes);
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
        if (post_header_recv(pool, i) != MPI_SUCCESS)
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
    int rc = name_task(pool, f, &names);  /* a stack or heap address is no function */
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
