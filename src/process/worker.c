/* SPDX-License-Identifier: MIT */
/*
 * The worker loop. Tasks come in the channel's ring (ring.h), START and outcomes go out in
 * the other; the socket (blocking on this side) carries only records: wake-ups, the
 * descriptors of large payloads, spares. Neither side ever waits for room in a ring, so a
 * worker writing a large result while the parent writes it a large argument cannot
 * deadlock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "process/worker.h"
#include "core/clock.h"
#include "core/fork.h"
#include "core/spin.h"
#include "core/task_context.h"
#include "core/bytes_shared.h"
#include "process/ring.h"
#include "process/wire.h"

/* How often an idle worker looks at the shared memory it keeps for reuse. */
#define FUT_WORKER_TRIM_MS 600

struct worker_process {
    int fd;                        /* records only (wire.h); blocking */
    unsigned generation;           /* the fork generation (core/fork.h) it started in */
    unsigned safe;                 /* FUT_WORKER_ flags */
    _Atomic uint64_t *claim;       /* this worker's claim word (worker.h) */
    const struct fut__worker_config *config;
    struct fut__ring in;           /* tasks from the parent */
    struct fut__ring out;          /* START and outcomes to the parent */
    struct fut__wire_fds fds;      /* payload descriptors received, not yet claimed */
    uint64_t spares_due, spares_taken; /* SPARE records announced by tasks, and taken */
    struct fut__wire_header pending_header;   /* a task read ahead, not started yet */
    void *pending_payload;
    bool has_pending;
};

/* Distinct streams per worker: pid, a serial number from the fork server, and the clock. */
static void reseed(unsigned serial)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long seed = (unsigned long)getpid() * 2654435761UL ^ (unsigned long)serial * 40503UL ^
                         (unsigned long)ts.tv_nsec ^ (unsigned long)ts.tv_sec << 20;
    srand((unsigned)seed);
    srandom((unsigned)(seed >> 7) ^ (unsigned)seed);
    srand48((long)seed);
}

static _Noreturn void leave(int status)
{
    _exit(status);
}

/* ---- the socket: records ---------------------------------------------------------------- */

/* Takes one record, blocking when block: false when there was none (not blocking). End of
 * file (the parent is gone) ends the worker. */
static bool take_record(struct worker_process *w, bool block)
{
    uint32_t kind;
    int fd;
    int rc = fut__wire_record_recv(w->fd, &kind, &fd, block ? 0 : MSG_DONTWAIT);
    if (rc == -EAGAIN && !block)
        return false;
    if (rc == 0)
        leave(FUT_WORKER_EXIT_OK);
    if (rc < 0)
        leave(FUT_WORKER_EXIT_IO);
    if (kind == FUT_RECORD_FD && fut__wire_fds_push(&w->fds, fd) != 0)
        leave(FUT_WORKER_EXIT_IO);
    if (kind == FUT_RECORD_SPARE) {
        fut__bytes_spare_add(fd);
        w->spares_taken++;
    }
    return true;
}

/* The descriptor sent ahead of the message being read: already queued on the socket. */
static int next_payload_fd(struct worker_process *w)
{
    while (w->fds.n == 0)
        take_record(w, true);
    return fut__wire_fds_pop(&w->fds);
}

/* ---- the rings ------------------------------------------------------------------------ */

static void free_task_payload(const struct fut__wire_header *h, void *payload)
{
    if (h->type & FUT_WIRE_SEALED)
        fut__arg_copy_unmap(payload, (size_t)h->len);
    else if (h->type & FUT_WIRE_SHARED)
        fut_bytes_free(payload);
    else
        free(payload);
}

/* Whether this worker may start the task: false when the parent took it back. */
static bool claim_task(struct worker_process *w, const struct fut__wire_header *h)
{
    uint64_t offered = FUT_CLAIM(h->seq, FUT_CLAIM_OFFERED);
    if (atomic_compare_exchange_strong(w->claim, &offered, FUT_CLAIM(h->seq, FUT_CLAIM_STARTED)))
        return true;
    return offered != FUT_CLAIM(h->seq, FUT_CLAIM_REVOKED);  /* not offered: ours */
}

/*
 * Reads the next task that is ours when one is in the ring (no blocking on the ring; a
 * large payload's descriptor is already on its way); tasks taken back are dropped. The
 * claim is settled BEFORE the message is released: the parent reuses the claim word for
 * its next offer only once this worker's head has passed a message it took back, so the
 * word still tells about that message here. *payload is NULL when it could not be had
 * (memory): the task then fails with FUT_ENOMEM.
 */
static bool take_task(struct worker_process *w, struct fut__wire_header *h, void **payload)
{
    for (;;) {
        uint64_t avail;
        if (fut__ring_avail(&w->in, &avail) != 0)
            leave(FUT_WORKER_EXIT_IO);
        if (avail == 0)
            return false;
        fut__ring_copy_out(&w->in, 0, h, sizeof *h);
        bool in_fd = h->type & FUT_WIRE_IN_FD;
        uint64_t size = fut__ring_msg_size(in_fd ? 0 : h->len);
        if ((h->type & FUT_WIRE_TYPE_MASK) != FUT_WIRE_TASK || size > avail)
            leave(FUT_WORKER_EXIT_IO);
        bool ours = claim_task(w, h);
        *payload = NULL;
        if (in_fd) {
            int fd = next_payload_fd(w);
            if (!ours) {
                close(fd);
            } else if (h->type & FUT_WIRE_SEALED) {
                *payload = fut__arg_copy_map(fd, (size_t)h->len);  /* takes fd */
            } else if (h->type & FUT_WIRE_SHARED) {
                *payload = fut__bytes_from_fd(fd, (size_t)h->len);  /* takes fd */
            } else {
                if ((*payload = malloc((size_t)h->len)) && fut__wire_payload_read(fd, *payload, (size_t)h->len)) {
                    free(*payload);
                    *payload = NULL;
                }
                close(fd);
            }
        } else if (ours && h->len && (*payload = malloc((size_t)h->len))) {
            fut__ring_copy_out(&w->in, sizeof *h, *payload, (size_t)h->len);
        }
        /* a spare announced by the message is queued too: taken now, so that records
         * never pile up on the socket of a worker that is never idle */
        if (h->type & FUT_WIRE_SPARE)
            w->spares_due++;
        while (w->spares_taken < w->spares_due)
            take_record(w, true);
        fut__ring_consume(&w->in, size);
        if (ours) {
            h->code = 2;  /* marks it claimed */
            return true;
        }
    }
}

static bool ring_has_task(void *arg)
{
    struct worker_process *w = arg;
    uint64_t avail;
    return fut__ring_avail(&w->in, &avail) != 0 || avail > 0;
}

/* Writes one message for the parent. The ring holds everything a worker may have
 * unread (READY, then START and outcome of two tasks at most, inline payloads below
 * FUT_WIRE_INLINE_MAX): no room is a broken invariant, never a reason to wait. */
static void put(struct worker_process *w, const struct fut__wire_header *h, const void *payload, uint64_t inline_len)
{
    uint64_t room;
    if (fut__ring_room(&w->out, &room) != 0 || room < fut__ring_msg_size(inline_len))
        leave(FUT_WORKER_EXIT_IO);
    fut__ring_put(&w->out, h, payload, inline_len);
}

/* After publishing: wakes the parent's dispatcher if it sleeps. */
static void wake_parent(struct worker_process *w)
{
    if (fut__ring_take_sleeper(&w->out) && fut__wire_record_send(w->fd, FUT_RECORD_WAKE, -1, 0) != 0)
        leave(FUT_WORKER_EXIT_IO);
}

static void send_header(struct worker_process *w, uint32_t type, int32_t code, uint64_t seq)
{
    struct fut__wire_header h = { .type = type, .code = code, .seq = seq };
    put(w, &h, NULL, 0);
    wake_parent(w);
}

/* Blocks until a whole task has arrived: true, or false at end of file. */
static bool read_task(struct worker_process *w, struct fut__wire_header *h, void **payload)
{
    if (w->has_pending) {
        *h = w->pending_header;
        *payload = w->pending_payload;
        w->has_pending = false;
        return true;
    }
    /* Poll briefly before blocking: a task sent right after our last result (a caller
     * waiting on each result in turn) arrives within microseconds, and sleeping then
     * being woken costs more than that. */
    fut__spin_until(ring_has_task, w, FUT_FOREVER);
    for (;;) {
        if (take_task(w, h, payload))
            return true;
        if (!fut__ring_prepare_sleep(&w->in))
            continue;
        /* shared memory kept for reuse goes back to the system once idle: wake up for it */
        struct pollfd idle = { w->fd, POLLIN, 0 };
        if (!fut__bytes_shared_trim() || poll(&idle, 1, FUT_WORKER_TRIM_MS) != 0)
            take_record(w, true);  /* a wake-up, a descriptor, or end of file (we leave) */
        fut__ring_awake(&w->in);
    }
}

/* Whether the next task has already arrived in full (no blocking) and is ours to run;
 * tasks taken back are dropped on the way. */
static bool peek_task(struct worker_process *w)
{
    if (!w->has_pending)
        w->has_pending = take_task(w, &w->pending_header, &w->pending_payload);
    return w->has_pending;
}

/* A large bytes result as a descriptor: its own memfd when it is a shared buffer already,
 * else a copy in a new one. The result is gone either way; -1 when no memfd could be
 * had. */
static int result_fd(void *result, size_t len, uint32_t *flags)
{
    *flags = FUT_WIRE_IN_FD | FUT_WIRE_SHARED;
    if (fut__bytes_fd(result) >= 0) {
        int fd = fut__bytes_release_fd(result);
        if (fd >= 0)
            return fd;
    }
    int fd = -1;
    void *shared = fut__bytes_new_shared(len);
    if (shared) {
        memcpy(shared, result, len);
        if ((fd = fut__bytes_release_fd(shared)) < 0)
            fut_bytes_free(shared);
    }
    if (fd < 0) {
        *flags = FUT_WIRE_IN_FD;
        fd = fut__wire_payload_fd(result, len);
    }
    fut_bytes_free(result);
    return fd < 0 ? -1 : fd;
}

/* Sends the outcome, followed by START of the next task when it is already here: one
 * wake-up (at most) for both. */
static void send_outcome(struct worker_process *w, struct fut_task_outcome *out, uint64_t out_seq, bool last)
{
    struct fut__wire_header h = { .seq = out_seq };
    const void *payload = NULL;
    uint64_t inline_len = 0;
    void *result = out->result_is_bytes ? out->result : NULL;
    if (result && !fut__wire_inline(fut_bytes_len(result))) {
        uint32_t flags;
        size_t len = fut_bytes_len(result);
        int fd = result_fd(result, len, &flags);
        result = NULL;
        if (fd >= 0) {
            /* the descriptor first: queued at the parent before the message is visible */
            int rc = fut__wire_record_send(w->fd, FUT_RECORD_FD, fd, 0);
            close(fd);
            if (rc != 0)
                leave(FUT_WORKER_EXIT_IO);
            h.type = FUT_WIRE_BYTES | flags;
            h.len = len;
        } else {
            out->code = FUT_ENOMEM;
            free(out->message);
            if (asprintf(&out->message, "no shared memory in the worker for a %zu-byte result", len) < 0)
                out->message = NULL;
        }
    }
    if (out->code) {
        h.type = FUT_WIRE_RAISE;
        h.code = out->code;
        h.b = out->message != NULL;
        h.len = out->message ? strnlen(out->message, FUT_WIRE_MESSAGE_MAX) : 0;
        payload = out->message;
        inline_len = h.len;
    } else if (result) {
        h.type = FUT_WIRE_BYTES;
        h.len = fut_bytes_len(result);
        payload = result;
        inline_len = h.len;
    } else if (!h.type) {
        h.type = FUT_WIRE_RESULT;
        h.a = (uint64_t)(uintptr_t)out->result;
    }
    /* the next task is looked at (a task taken back is dropped) before the parent can
     * see this outcome: see take_task */
    bool announce = !last && peek_task(w);
    put(w, &h, payload, inline_len);
    if (result)
        fut_bytes_free(result);
    free(out->message);
    if (announce) {
        struct fut__wire_header start = { .type = FUT_WIRE_START, .seq = w->pending_header.seq };
        put(w, &start, NULL, 0);
        w->pending_header.code = 1;  /* marks it announced */
    }
    wake_parent(w);
}

static void run_task(struct worker_process *w, const struct fut__wire_header *h, void *payload, bool last)
{
    struct fut_task_outcome out = { 0 };
    if (h->code != 1)
        send_header(w, FUT_WIRE_START, 0, h->seq);
    fut_fn fn = (fut_fn)(uintptr_t)h->a;
    if (h->len && !payload) {
        out.code = FUT_ENOMEM;
        if (asprintf(&out.message, "no memory in the worker for a %llu-byte argument",
                     (unsigned long long)h->len) < 0)
            out.message = NULL;
    } else {
        fut__task_call(fn, h->len ? payload : (void *)(uintptr_t)h->b, &out);
    }
    /* A task that forked and whose child returned here (rather than _exit) must not leave
     * two processes reading tasks and writing outcomes on one channel: results would go
     * to the wrong futures. The copy leaves at once, without a word on the channel. The
     * fork generation tells (it moves in every fork(2) child) without the system call per
     * task that getpid costs. */
    if (fut__inherited(w->generation))
        _exit(FUT_WORKER_EXIT_FORKED);
    free_task_payload(h, payload);
    /* what the task printed reaches the terminal before its result reaches the parent */
    if (w->safe & FUT_WORKER_FLUSH_STDOUT)
        fflush(stdout);
    if (w->safe & FUT_WORKER_FLUSH_STDERR)
        fflush(stderr);
    send_outcome(w, &out, h->seq, last);
}

_Noreturn void fut__worker_main(int fd, void *channel, const struct fut__worker_config *config,
                                pid_t fork_server, unsigned serial, unsigned safe, int slot)
{
    /* second line of defence: the fork server kills its workers when the parent goes away */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, FUT_WORKER_NAME);  /* before the initializer, which may rename it */
    if (getppid() != fork_server)
        leave(FUT_WORKER_EXIT_OK);
    sigaction(SIGCHLD, &config->sigchld, NULL);
    sigprocmask(SIG_SETMASK, &config->sigmask, NULL);
    /* output the parent had buffered at pool creation is the parent's to write: flushing
     * it after a task would print it once more per worker */
    __fpurge(stdout);
    __fpurge(stderr);
    if (safe & FUT_WORKER_RESEED)
        reseed(serial);

    /* large fut_bytes results are made in shared memory: they cross without a copy */
    fut__bytes_share_large(true);
    static struct worker_process w;
    w.fd = fd;
    fut__ring_attach(channel, &w.in, &w.out);
    w.generation = fut__fork_generation();
    w.safe = safe;
    w.claim = &config->claims[slot];
    w.config = config;
    if (config->initializer) {
        int rc = config->initializer(config->initarg);
        if (rc != 0) {
            send_header(&w, FUT_WIRE_INIT_FAILED, rc, 0);
            leave(FUT_WORKER_EXIT_INIT);
        }
    }
    send_header(&w, FUT_WIRE_READY, 0, 0);
    struct fut__wire_header h;
    void *payload;
    for (long done = 0; read_task(&w, &h, &payload);) {
        done++;
        bool last = config->max_tasks > 0 && done >= config->max_tasks;
        run_task(&w, &h, payload, last);
        if (last)
            break;
    }
    leave(FUT_WORKER_EXIT_OK);
}
