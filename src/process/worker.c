/* SPDX-License-Identifier: MIT */
/*
 * The worker loop. The socket is blocking on this side: the parent's dispatcher never
 * blocks, so a worker writing a large result while the parent writes it a large argument
 * cannot deadlock (the parent keeps reading).
 */
#include <stdio.h>
#include <stdio_ext.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "process/worker.h"
#include "core/clock.h"
#include "core/spin.h"
#include "core/task_context.h"
#include "process/wire.h"

struct worker_process {
    int fd;
    pid_t self;                    /* the process the fork server forked */
    unsigned safe;                 /* FUT_WORKER_ flags */
    _Atomic uint64_t *claim;       /* this worker's claim word (worker.h) */
    const struct fut__worker_config *config;
    struct fut__wire_in in;
    struct fut__wire_header pending_header;   /* a task read ahead, not started yet */
    void *pending_payload;
    bool has_pending;
};

static void *alloc_payload(void *ctx, const struct fut__wire_header *h)
{
    (void)ctx;
    return malloc(h->len);  /* NULL: the task fails with FUT_ENOMEM */
}

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

static int send_header(int fd, uint32_t type, int32_t code, uint64_t seq)
{
    struct fut__wire_header h = { .type = type, .code = code, .seq = seq };
    struct iovec iov = { &h, sizeof h };
    return fut__wire_send_all(fd, &iov, 1);
}

struct task_poll {
    struct worker_process *w;
    struct fut__wire_header *h;
    void **payload;
    bool got;                      /* *h and *payload hold a whole task */
    long fill;                     /* the last fut__wire_in_fill: bytes, 0 (end of file) or -errno */
};

/* The brief poll's check: a whole task parsed, or the socket ended or failed. */
static bool task_arrived(void *arg)
{
    struct task_poll *p = arg;
    if ((p->got = fut__wire_in_next(&p->w->in, p->h, p->payload)))
        return true;
    p->fill = fut__wire_in_fill(p->w->fd, &p->w->in, MSG_DONTWAIT);
    return p->fill <= 0 && p->fill != -EAGAIN;
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
    struct task_poll p = { w, h, payload, false, -EAGAIN };
    fut__spin_until(task_arrived, &p, FUT_FOREVER);
    for (;;) {
        if (p.got)
            return true;
        if (p.fill == 0)
            return false;
        if (p.fill < 0 && p.fill != -EAGAIN)
            leave(FUT_WORKER_EXIT_IO);
        p.got = fut__wire_in_next(&w->in, h, payload);
        if (!p.got)
            p.fill = fut__wire_in_fill(w->fd, &w->in, 0);
    }
}

/* Whether this worker may start the task: false when the parent took it back. */
static bool claim_task(struct worker_process *w, const struct fut__wire_header *h)
{
    uint64_t offered = FUT_CLAIM(h->seq, FUT_CLAIM_OFFERED);
    if (atomic_compare_exchange_strong(w->claim, &offered, FUT_CLAIM(h->seq, FUT_CLAIM_STARTED)))
        return true;
    return offered != FUT_CLAIM(h->seq, FUT_CLAIM_REVOKED);  /* not offered: ours */
}

/* Whether the next task has already arrived in full (no blocking) and is ours to run;
 * tasks taken back are dropped on the way. */
static bool peek_task(struct worker_process *w)
{
    while (!w->has_pending && fut__wire_in_next(&w->in, &w->pending_header, &w->pending_payload)) {
        w->has_pending = claim_task(w, &w->pending_header);
        if (!w->has_pending)
            free(w->pending_payload);
        else
            w->pending_header.code = 2;  /* marks it claimed */
    }
    return w->has_pending;
}

/* Sends the outcome, followed by START of the next task when it is already here: one
 * system call for both. */
static void send_outcome(struct worker_process *w, struct fut_task_outcome *out, uint64_t out_seq, bool last)
{
    struct fut__wire_header h = { .seq = out_seq }, start = { .type = FUT_WIRE_START };
    struct iovec iov[3];
    int n = 1;
    iov[0] = (struct iovec){ &h, sizeof h };
    if (out->code) {
        h.type = FUT_WIRE_RAISE;
        h.code = out->code;
        h.b = out->message != NULL;
        h.len = out->message ? strlen(out->message) : 0;
        iov[n++] = (struct iovec){ out->message, h.len };
    } else if (out->result_is_bytes) {
        h.type = FUT_WIRE_BYTES;
        h.len = fut_bytes_len(out->result);
        iov[n++] = (struct iovec){ out->result, h.len };
    } else {
        h.type = FUT_WIRE_RESULT;
        h.a = (uint64_t)(uintptr_t)out->result;
    }
    bool announce = !last && peek_task(w);
    if (announce) {
        start.seq = w->pending_header.seq;
        iov[n++] = (struct iovec){ &start, sizeof start };
    }
    int rc = fut__wire_send_all(w->fd, iov, n);
    if (out->result_is_bytes)
        fut_bytes_free(out->result);
    free(out->message);
    if (rc)
        leave(FUT_WORKER_EXIT_IO);
    if (announce)
        w->pending_header.code = 1;  /* marks it announced */
}

static void run_task(struct worker_process *w, const struct fut__wire_header *h, void *payload, bool last)
{
    struct fut_task_outcome out = { 0 };
    if (h->code != 1 && send_header(w->fd, FUT_WIRE_START, 0, h->seq) != 0)
        leave(FUT_WORKER_EXIT_IO);
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
     * to the wrong futures. The copy leaves at once, without a word on the channel. */
    if (getpid() != w->self)
        _exit(FUT_WORKER_EXIT_FORKED);
    free(payload);
    /* what the task printed reaches the terminal before its result reaches the parent */
    if (w->safe & FUT_WORKER_FLUSH_STDOUT)
        fflush(stdout);
    if (w->safe & FUT_WORKER_FLUSH_STDERR)
        fflush(stderr);
    send_outcome(w, &out, h->seq, last);
}

_Noreturn void fut__worker_main(int fd, const struct fut__worker_config *config, pid_t fork_server,
                                unsigned serial, unsigned safe, int slot)
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

    static struct worker_process w;  /* the staging buffer is large: not on the stack */
    w.fd = fd;
    w.self = getpid();
    w.safe = safe;
    w.claim = &config->claims[slot];
    w.config = config;
    w.in.alloc = alloc_payload;
    w.in.ctx = &w;
    if (config->initializer) {
        int rc = config->initializer(config->initarg);
        if (rc != 0) {
            send_header(fd, FUT_WIRE_INIT_FAILED, rc, 0);
            leave(FUT_WORKER_EXIT_INIT);
        }
    }
    if (send_header(fd, FUT_WIRE_READY, 0, 0) != 0)
        leave(FUT_WORKER_EXIT_IO);
    struct fut__wire_header h;
    void *payload;
    for (long done = 0; read_task(&w, &h, &payload);) {
        if (h.code == 0 && !claim_task(&w, &h)) {
            free(payload);  /* taken back for another worker */
            continue;
        }
        done++;
        bool last = config->max_tasks > 0 && done >= config->max_tasks;
        run_task(&w, &h, payload, last);
        if (last)
            break;
    }
    leave(FUT_WORKER_EXIT_OK);
}
