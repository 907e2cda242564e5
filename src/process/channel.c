/* SPDX-License-Identifier: MIT */
/*
 * The parent's end of each worker's channel (ring.h): handed tasks go out as FUT_WIRE_TASK
 * messages in its ring (at once: a write never waits), START and outcome messages come in
 * and complete the futures; large payloads come and go as descriptors on its socket; a
 * worker's exit settles what it held. Dispatcher thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
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

static void free_payload(const struct fut__wire_header *h, void *p)
{
    if (!p)
        return;
    if ((h->type & FUT_WIRE_TYPE_MASK) == FUT_WIRE_BYTES)
        fut_bytes_free(p);
    else
        free(p);
}

static void close_worker_fd(struct process_pool *pool, struct pool_worker *w)
{
    if (w->fd < 0)
        return;
    fut__poller_set(&pool->poller, w->fd, FUT_POLL_READABLE, 0);
    fut__fd_registry_close(w->fd);
    w->fd = -1;
    w->doomed = true;
}

/* ---- tasks out ----------------------------------------------------------------------- */

bool fut__channel_has_room(struct process_pool *pool, struct pool_worker *w)
{
    uint64_t room;
    if (fut__ring_room(&w->to_worker, &room) != 0) {
        protocol_error(pool, w, "an impossible position in its ring");
        return false;
    }
    return room >= fut__ring_msg_size(FUT_WIRE_INLINE_MAX - 1);
}

bool fut__channel_consumed(struct process_pool *pool, struct pool_worker *w, uint64_t pos)
{
    uint64_t room;
    if (fut__ring_room(&w->to_worker, &room) != 0) {
        protocol_error(pool, w, "an impossible position in its ring");
        return false;
    }
    /* head = tail - used; consumed up to pos when pos <= head */
    return w->to_worker.pos - pos >= FUT_RING_CAPACITY - room;
}

/* A large argument in a memfd: a shared buffer when the platform has them (the worker
 * maps it), else a plain memfd (the worker reads it). The descriptor, or a FUT_ code. */
static int argument_fd(const void *arg, size_t len, uint32_t *flags)
{
    void *shared = fut__bytes_new_shared(len);
    if (shared) {
        memcpy(shared, arg, len);
        int fd = fut__bytes_release_fd(shared);
        if (fd >= 0) {
            *flags = FUT_WIRE_IN_FD | FUT_WIRE_SHARED;
            return fd;
        }
        fut_bytes_free(shared);
    }
    int fd = fut__wire_payload_fd(arg, len);
    *flags = FUT_WIRE_IN_FD;
    return fd >= 0 ? fd : FUT_ENOMEM;
}

static void wake_worker(struct pool_worker *w)
{
    /* EAGAIN: records it has not read yet will wake it; EPIPE: it is gone */
    if (fut__ring_take_sleeper(&w->to_worker) && w->fd >= 0)
        fut__wire_record_send(w->fd, FUT_RECORD_WAKE, -1, MSG_DONTWAIT);
}

int fut__channel_send(struct process_pool *pool, struct pool_worker *w, fut_future *f, uint64_t seq)
{
    const struct fut_task_part *task = &f->part.task;
    bool copied = fut__future_flag(f, FUT_FLAG_ARG_COPIED);
    struct fut__wire_header h = {
        .type = FUT_WIRE_TASK,
        .seq = seq,
        .len = fut__task_arg_len(f),
        .a = (uint64_t)(uintptr_t)task->fn,
        .b = (uint64_t)(uintptr_t)task->arg,
    };
    uint64_t inline_len = copied ? h.len : 0;
    /* memory the user freed, offered for the worker's next large result: pages both
     * processes have already touched (core/bytes_shared.h) */
    int spare = w->fd >= 0 ? fut__bytes_spare_take() : -1;
    if (spare >= 0) {
        if (fut__wire_record_send(w->fd, FUT_RECORD_SPARE, spare, MSG_DONTWAIT) == 0)
            h.type |= FUT_WIRE_SPARE;
        close(spare);
    }
    if (copied && !fut__wire_inline(h.len)) {
        /* a sealed copy goes as it is (the worker cannot change it: it can be sent again
         * if the task comes back); another is copied into a memfd of its own */
        bool sealed = fut__future_flag(f, FUT_FLAG_ARG_SEALED);
        uint32_t flags = FUT_WIRE_IN_FD | FUT_WIRE_SEALED;  /* else argument_fd's */
        int fd = sealed ? fut__arg_copy_fd(task->arg)
                        : argument_fd(task->arg, (size_t)h.len, &flags);
        if (fd < 0)
            return fd;
        /* the descriptor first: it is queued at the worker before the message is visible */
        int rc = w->fd >= 0 ? fut__wire_record_send(w->fd, FUT_RECORD_FD, fd, MSG_DONTWAIT) : -EPIPE;
        if (!sealed)
            close(fd);
        if (rc != 0) {
            /* gone, or a socket it never reads: the task goes back to the queue */
            if (rc != -EPIPE && rc != -ECONNRESET)
                protocol_error(pool, w, "a socket it does not read");
            w->doomed = true;
            return FUT_EBROKEN;
        }
        h.type |= flags;
        inline_len = 0;
    }
    fut__ring_put(&w->to_worker, &h, task->arg, inline_len);
    wake_worker(w);
    (void)pool;
    return 0;
}

static void pop_slot(struct pool_worker *w)
{
    w->slots[0] = w->slots[1];
    w->slots[1] = NULL;
    w->seqs[0] = w->seqs[1];
    w->ends[0] = w->ends[1];
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
        free_payload(h, payload);
        protocol_error(pool, w, "an outcome for a task it was not running");
        return;
    }
    pop_slot(w);
    pool->last_result_at = fut__now();
    if (!f) {
        free_payload(h, payload);  /* abandoned: it already timed out */
        return;
    }
    if (h->len && !payload) {
        char message[128];
        snprintf(message, sizeof message, "a result of %llu bytes does not fit in memory",
                 (unsigned long long)h->len);
        fut__future_fail(f, FUT_ENOMEM, message);
    } else if (h->type == FUT_WIRE_RESULT) {
        fut__future_finish(f, (void *)(uintptr_t)h->a, false, 0, NULL);
    } else if (h->type == FUT_WIRE_BYTES) {
        void *bytes = payload ? payload : fut_bytes_new(0);
        if (bytes) {
            fut__bytes_claim(bytes);  /* the future owns it, no task may return it */
            fut__future_finish(f, bytes, true, 0, NULL);
        } else {
            fut__future_fail(f, FUT_ENOMEM, "no memory for an empty bytes result");
        }
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
        free_payload(h, payload);  /* killed already: nothing it says counts */
        return;
    }
    if ((h->type == FUT_WIRE_READY || h->type == FUT_WIRE_INIT_FAILED) == w->ready) {
        free_payload(h, payload);
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
    free_payload(h, payload);
}

/* ---- messages in ---------------------------------------------------------------------- */

/* The descriptor of a payload the worker sent before its message: -1 when there is none
 * (it lied). */
static int take_payload_fd(struct process_pool *pool, struct pool_worker *w)
{
    if (w->fds.n == 0)
        fut__channel_read_socket(pool, w);
    return fut__wire_fds_pop(&w->fds);
}

/* The payload of a BYTES message in a descriptor: the buffer, NULL with *why set when the
 * worker lied, NULL alone when memory ran out. */
static void *bytes_from_fd(struct process_pool *pool, struct pool_worker *w, const struct fut__wire_header *h,
                           const char **why)
{
    int fd = take_payload_fd(pool, w);
    if (fd < 0) {
        *why = "a message without its descriptor";
        return NULL;
    }
    if (h->len > largest_result() || h->len > SIZE_MAX / 2) {
        close(fd);
        *why = "a message of an impossible length";
        return NULL;
    }
    if (h->type & FUT_WIRE_SHARED) {
        void *b = fut__bytes_from_fd(fd, (size_t)h->len);  /* takes fd */
        if (!b && errno == EPROTO)
            *why = "a shared buffer smaller than its length";
        return b;
    }
    void *b = fut_bytes_new((size_t)h->len);
    int rc = b ? fut__wire_payload_read(fd, b, (size_t)h->len) : 0;
    close(fd);
    if (rc != 0) {
        fut_bytes_free(b);
        *why = "a payload file smaller than its length";
        return NULL;
    }
    return b;
}

/* The inline payload bytes a message of this header may carry, or -1 when the header is
 * impossible (a type, flag or length no message of ours has). */
static int64_t inline_length(const struct fut__wire_header *h)
{
    uint32_t type = h->type & FUT_WIRE_TYPE_MASK, flags = h->type & ~FUT_WIRE_TYPE_MASK;
    switch (type) {
    case FUT_WIRE_BYTES:
        if (flags == (FUT_WIRE_IN_FD | FUT_WIRE_SHARED) || flags == FUT_WIRE_IN_FD)
            return fut__wire_inline(h->len) ? -1 : 0;
        return flags == 0 && fut__wire_inline(h->len) ? (int64_t)h->len : -1;
    case FUT_WIRE_RAISE:
        return flags == 0 && h->len <= FUT_WIRE_MESSAGE_MAX ? (int64_t)h->len : -1;
    case FUT_WIRE_READY:
    case FUT_WIRE_INIT_FAILED:
    case FUT_WIRE_START:
    case FUT_WIRE_RESULT:
        return flags == 0 && h->len == 0 ? 0 : -1;
    default:
        return -1;
    }
}

/*
 * Reads one message from w's ring: true when one was handled. Everything in the ring is
 * the worker's to write, so the header is copied out once and only the copy is used; a
 * position, type or length that no honest worker writes is a protocol error.
 */
static bool read_message(struct process_pool *pool, struct pool_worker *w)
{
    uint64_t avail;
    struct fut__wire_header h;
    const char *why = NULL;
    if (fut__ring_avail(&w->to_parent, &avail) != 0) {
        protocol_error(pool, w, "an impossible position in its ring");
        return false;
    }
    if (avail == 0)
        return false;
    if (avail < sizeof h) {
        protocol_error(pool, w, "a message cut short in its ring");
        return false;
    }
    fut__ring_copy_out(&w->to_parent, 0, &h, sizeof h);
    int64_t inline_len = inline_length(&h);
    if (inline_len < 0) {
        protocol_error(pool, w, "a message of an unknown type or an impossible length");
        return false;
    }
    uint64_t size = fut__ring_msg_size((uint64_t)inline_len);
    if (size > avail) {
        protocol_error(pool, w, "a message cut short in its ring");
        return false;
    }
    void *payload = NULL;
    uint32_t type = h.type & FUT_WIRE_TYPE_MASK;
    if (type == FUT_WIRE_BYTES && inline_len == 0 && h.len > 0) {
        payload = bytes_from_fd(pool, w, &h, &why);
    } else if (type == FUT_WIRE_BYTES && inline_len > 0) {
        if ((payload = fut_bytes_new((size_t)inline_len)))
            fut__ring_copy_out(&w->to_parent, sizeof h, payload, (size_t)inline_len);
    } else if (type == FUT_WIRE_RAISE && inline_len > 0) {
        char *message = malloc((size_t)inline_len + 1);
        if (message) {
            fut__ring_copy_out(&w->to_parent, sizeof h, message, (size_t)inline_len);
            message[inline_len] = '\0';
        }
        payload = message;
    }
    fut__ring_consume(&w->to_parent, size);
    if (why) {
        protocol_error(pool, w, why);
        return false;
    }
    h.type = type;
    handle_message(pool, w, &h, payload);
    return true;
}

void fut__channel_read(struct process_pool *pool, struct pool_worker *w)
{
    while (!w->fault && w->map && read_message(pool, w))
        ;
}

bool fut__channel_pending(const struct pool_worker *w)
{
    uint64_t avail;
    return w->map && !w->fault && (fut__ring_avail(&w->to_parent, &avail) != 0 || avail > 0);
}

void fut__channel_read_socket(struct process_pool *pool, struct pool_worker *w)
{
    while (w->fd >= 0) {
        uint32_t kind;
        int fd;
        int rc = fut__wire_record_recv(w->fd, &kind, &fd, MSG_DONTWAIT);
        if (rc == -EAGAIN)
            return;
        if (rc == -EPROTO || (rc == 1 && kind == FUT_RECORD_SPARE)) {
            if (fd >= 0)
                close(fd);
            protocol_error(pool, w, "a stray record on its socket");
            continue;
        }
        if (rc <= 0) {
            /* end of file: the exit status follows. A worker still alive without its
             * socket could never be woken: it is killed (nothing if it is exiting). */
            close_worker_fd(pool, w);
            fut__fork_client_kill(pool, w);
            return;
        }
        if (kind == FUT_RECORD_FD && fut__wire_fds_push(&w->fds, fd) != 0)
            protocol_error(pool, w, "more descriptors than messages");
    }
}

bool fut__channel_prepare_sleep(struct process_pool *pool)
{
    for (struct pool_worker *w = pool->workers; w; w = w->next) {
        if (w->map && !w->fault && !fut__ring_prepare_sleep(&w->to_parent)) {
            fut__channel_awake(pool);
            return false;
        }
    }
    return true;
}

void fut__channel_awake(struct process_pool *pool)
{
    for (struct pool_worker *w = pool->workers; w; w = w->next)
        if (w->map)
            fut__ring_awake(&w->to_parent);
}

struct pool_worker *fut__channel_open(struct process_pool *pool, pid_t pid, int fd, void *map)
{
    struct pool_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->pool = pool;
    w->pid = pid;
    w->fd = fd;
    w->map = map;
    fut__ring_attach(map, &w->to_worker, &w->to_parent);
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

/* The fork server reported w's exit: settle its tasks and free it. */
void fut__channel_worker_exited(struct process_pool *pool, struct pool_worker *w, int status)
{
    /* what it wrote before dying is all there is: its descriptors first, then its ring
     * (a message it had not published is not there) */
    fut__channel_read_socket(pool, w);
    fut__channel_read(pool, w);
    close_worker_fd(pool, w);
    fut__wire_fds_close(&w->fds);
    munmap(w->map, FUT_CHANNEL_MAP_SIZE);
    w->map = NULL;
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
        /* a worker that broke the protocol is not believed about its START either: its
         * task (most likely the culprit) fails rather than going back to the queue */
        if (i == 0 && (w->head_started || w->fault)) {
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
