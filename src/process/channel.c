/* SPDX-License-Identifier: MIT */
/*
 * The parent's end of each worker's socket: handed tasks go out as FUT_WIRE_TASK messages
 * (as much as the nonblocking socket takes), START and outcome messages come in and
 * complete the futures; a worker's exit settles what it held. Dispatcher thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/task_context.h"
#include "process/fd_registry.h"
#include "process/pool.h"

/* A bound on sizes read from the wire: a result larger than the machine's memory cannot
 * be real, and trying to allocate it (a forged header) would only hurt. */
static uint64_t largest_result(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return (uint64_t)1 << 40;
    return (uint64_t)pages * (uint64_t)page;
}

static void protocol_error(struct process_pool *pool, struct pool_worker *w, const char *why);

/* Where a payload goes. A length no real message has (a forged header) is a protocol
 * error at once: waiting for its payload would wait for ever. */
static void *alloc_payload(void *ctx, const struct fut__wire_header *h)
{
    struct pool_worker *w = ctx;
    if (h->type == FUT_WIRE_BYTES && h->len <= largest_result() && h->len <= SIZE_MAX / 2)
        return fut_bytes_new((size_t)h->len);  /* NULL (no memory): the task fails, ENOMEM */
    if (h->type == FUT_WIRE_RAISE && h->len < (1u << 30)) {
        char *message = malloc((size_t)h->len + 1);
        if (message)
            message[h->len] = '\0';
        return message;
    }
    protocol_error(w->pool, w, "a message of an impossible length");
    return NULL;
}

static void free_payload(void *ctx, const struct fut__wire_header *h, void *p)
{
    (void)ctx;
    if (h->type == FUT_WIRE_BYTES)
        fut_bytes_free(p);
    else
        free(p);
}

static void update_events(struct process_pool *pool, struct pool_worker *w)
{
    bool want = w->out.busy;
    if (w->fd < 0 || want == w->want_out)
        return;
    unsigned mask = FUT_POLL_READABLE | (want ? FUT_POLL_WRITABLE : 0);
    fut__poller_set(&pool->poller, w->fd, FUT_POLL_READABLE, mask);
    w->want_out = want;
}

static void close_worker_fd(struct process_pool *pool, struct pool_worker *w)
{
    if (w->fd < 0)
        return;
    fut__poller_set(&pool->poller, w->fd, FUT_POLL_READABLE, 0);
    fut__fd_registry_close(w->fd);
    w->fd = -1;
    w->doomed = true;
    w->out.busy = false;
    fut__wire_in_abandon(&w->in, free_payload);
}

/* Writes as much of the queue of slots as the socket takes. */
void fut__channel_flush(struct process_pool *pool, struct pool_worker *w)
{
    while (w->fd >= 0 && !w->write_failed) {
        if (!w->out.busy) {
            if (w->n_sent >= w->n_slots)
                break;
            uint64_t seq = w->seqs[w->n_sent];
            const fut_future *f = w->slots[w->n_sent++];
            const struct fut_task_part *task = &f->part.task;
            bool copied = fut__future_flag(f, FUT_FLAG_ARG_COPIED);
            struct fut__wire_header h = {
                .type = FUT_WIRE_TASK,
                .seq = seq,
                .len = fut__task_arg_len(f),
                .a = (uint64_t)(uintptr_t)task->fn,
                .b = (uint64_t)(uintptr_t)task->arg,
            };
            fut__wire_out_start(&w->out, &h, copied ? task->arg : NULL);
        }
        int rc = fut__wire_out_flush(w->fd, &w->out);
        if (rc == 0)
            break;
        if (rc < 0) {
            /* the worker is gone; what it wrote before (a START, a result) must still be
             * read, so the socket stays open until its exit status comes */
            w->write_failed = true;
            w->doomed = true;
            w->out.busy = false;
            break;
        }
    }
    update_events(pool, w);
}

static void pop_slot(struct pool_worker *w)
{
    w->slots[0] = w->slots[1];
    w->slots[1] = NULL;
    w->seqs[0] = w->seqs[1];
    w->n_slots--;
    w->n_sent--;
    w->head_started = false;
}

/* The worker broke the protocol (a forged or stray message: a task writing on the
 * channel, a process that is not the worker): it is killed, and what it held fails with
 * the reason when its exit is reported. Nothing it says from now on is believed. */
static void protocol_error(struct process_pool *pool, struct pool_worker *w, const char *why)
{
    if (!w->fault)
        w->fault = why;
    fut__fork_client_kill(pool, w);
}

static void complete_head(struct process_pool *pool, struct pool_worker *w, const struct fut__wire_header *h,
                          void *payload)
{
    fut_future *f = w->n_slots ? w->slots[0] : NULL;
    if (w->n_slots == 0 || w->n_sent == 0 || !w->head_started || h->seq != w->seqs[0]) {
        free_payload(NULL, h, payload);
        protocol_error(pool, w, "an outcome for a task it was not running");
        return;
    }
    pop_slot(w);
    pool->last_result_at = fut__now();
    if (!f) {
        free_payload(NULL, h, payload);  /* abandoned: it already timed out */
        return;
    }
    if (h->len && !payload) {
        char message[128];
        snprintf(message, sizeof message, "a result of %llu bytes does not fit in memory",
                 (unsigned long long)h->len);
        fut_set_exception(f, FUT_ENOMEM, message);
    } else if (h->type == FUT_WIRE_RESULT) {
        fut__future_finish(f, (void *)(uintptr_t)h->a, false, 0, NULL);
    } else if (h->type == FUT_WIRE_BYTES) {
        void *bytes = payload ? payload : fut_bytes_new(0);
        if (bytes) {
            fut__bytes_claim(bytes);  /* the future owns it, no task may return it */
            fut__future_finish(f, bytes, true, 0, NULL);
        }
        else
            fut_set_exception(f, FUT_ENOMEM, "no memory for an empty bytes result");
    } else {
        char *message = payload;
        if (h->b && !message)
            message = strdup("");  /* fut_raise with an empty message */
        if (!h->b) {
            free(message);
            message = NULL;
        }
        fut__future_finish(f, NULL, false, h->code ? h->code : FUT_EINVAL, message);
    }
    fut_future_unref(f);
}

static void handle_message(struct process_pool *pool, struct pool_worker *w, const struct fut__wire_header *h,
                           void *payload)
{
    if (w->fault) {
        free_payload(NULL, h, payload);  /* killed already: nothing it says counts */
        return;
    }
    if ((h->type == FUT_WIRE_READY || h->type == FUT_WIRE_INIT_FAILED) == w->ready) {
        free_payload(NULL, h, payload);
        protocol_error(pool, w, w->ready ? "a second READY or INIT_FAILED" : "a message before READY");
        return;
    }
    switch (h->type) {
    case FUT_WIRE_READY:
        w->ready = true;
        break;
    case FUT_WIRE_INIT_FAILED: {
        char message[128];
        snprintf(message, sizeof message,
                 "the initializer failed in worker %d (returned %d): the process pool is broken",
                 (int)w->pid, (int)h->code);
        fut__pool_break(pool, message);
        break;
    }
    case FUT_WIRE_START:
        if (w->n_sent == 0 || w->head_started || h->seq != w->seqs[0]) {
            protocol_error(pool, w, "a START for a task it was not given");
            break;
        }
        w->head_started = true;
        if (pool->task_timeout > 0)
            w->started_at = fut__now();
        break;
    case FUT_WIRE_RESULT:
    case FUT_WIRE_BYTES:
    case FUT_WIRE_RAISE:
        complete_head(pool, w, h, payload);
        return;
    default:
        protocol_error(pool, w, "a message of an unknown type");
        break;
    }
    free_payload(NULL, h, payload);
}

/* Reads and handles everything the worker has written so far. */
static void read_worker_until(struct process_pool *pool, struct pool_worker *w, bool drained_ok)
{
    while (w->fd >= 0) {
        struct fut__wire_header h;
        void *payload;
        while (w->fd >= 0 && fut__wire_in_next(&w->in, &h, &payload))
            handle_message(pool, w, &h, payload);
        if (w->fd < 0)
            return;
        size_t room = sizeof w->in.staging - w->in.end;
        long n = fut__wire_in_fill(w->fd, &w->in, 0);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            close_worker_fd(pool, w);  /* end of file: the exit status follows */
            return;
        }
        if ((size_t)n < room && drained_ok) {
            /* a short read emptied the socket: skip the recv that would say EAGAIN
             * (epoll is level-triggered, anything newer wakes us again) */
            while (fut__wire_in_next(&w->in, &h, &payload))
                handle_message(pool, w, &h, payload);
            return;
        }
    }
}

struct pool_worker *fut__channel_open(struct process_pool *pool, pid_t pid, int fd)
{
    struct pool_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->pool = pool;
    w->pid = pid;
    w->fd = fd;
    w->in.alloc = alloc_payload;
    w->in.ctx = w;
    if (fut__poller_set(&pool->poller, fd, 0, FUT_POLL_READABLE) != 0) {
        free(w);
        return NULL;
    }
    w->next = pool->workers;
    pool->workers = w;
    pool->n_workers++;
    return w;
}

static void describe_status(char *buf, size_t size, pid_t pid, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "worker %d terminated by signal %d (%s)", (int)pid, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
}

void fut__channel_read(struct process_pool *pool, struct pool_worker *w)
{
    read_worker_until(pool, w, true);
}

/* The fork server reported w's exit: settle its tasks and free it. */
void fut__channel_worker_exited(struct process_pool *pool, struct pool_worker *w, int status)
{
    read_worker_until(pool, w, false);  /* what it wrote before dying is all there is */
    close_worker_fd(pool, w);
    char message[256];
    describe_status(message, sizeof message, w->pid, status);
    if (w->fault) {
        size_t used = strlen(message);
        snprintf(message + used, sizeof message - used,
                 " (killed: it broke the pool's protocol with %s)", w->fault);
    }
    if (!w->ready && pool->config.initializer && !pool->broken) {
        char why[320];
        snprintf(why, sizeof why, "%s before its initializer finished: the process pool is broken",
                 message);
        fut__pool_break(pool, why);
    }
    fut_future *requeue[2] = { NULL, NULL };
    int n_requeue = 0;
    for (int i = 0; i < w->n_slots; i++) {
        fut_future *f = w->slots[i];
        if (!f)
            continue;
        if (i == 0 && w->head_started) {
            fut__pool_fail_future(f, FUT_EBROKEN, message);
        } else {
            fut__future_set_flag(f, FUT_FLAG_REQUEUED);
            requeue[n_requeue++] = f;
        }
    }
    pthread_mutex_lock(&pool->lock);
    bool broken = pool->broken;
    for (int i = n_requeue - 1; i >= 0 && !broken; i--)
        fut__pool_queue_push_locked(pool, requeue[i], true);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < n_requeue && broken; i++)
        fut__pool_fail_future(requeue[i], FUT_EBROKEN, pool->broken_message);

    struct pool_worker **p = &pool->workers;
    while (*p != w)
        p = &(*p)->next;
    *p = w->next;
    pool->n_workers--;
    free(w);
}
