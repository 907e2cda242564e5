/* SPDX-License-Identifier: MIT */
/*
 * The MPI executor on a worker rank: a loop on the thread that called fut_mpi_pool_new.
 *
 * It receives one message at a time from the root (object descriptions, tasks, STOP), runs
 * each task and sends its outcome before it receives the next, so the task handed ahead
 * waits in MPI's buffers (or in the root's pending send) while this one runs. Waiting
 * uses MPI_Test with backoff (mpi_pool.c), so an idle worker rank does not spin a core.
 *
 * Isolation: with task_timeout or max_tasks_per_child, tasks run in a process pool of one
 * worker forked inside this rank, so a task that crashes or overruns fails alone
 * (FUT_EBROKEN / FUT_ETIMEDOUT) and the rank serves on. The initializer runs once, in the
 * rank, before that pool forks: its children inherit what it set up.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/future.h"
#include "mpi/mpi_pool.h"
#include "mpi/objects.h"

struct worker {
    MPI_Comm comm;
    int root, rank;
    const struct fut_backend_hooks *hooks;
    struct fut__mpi_resolver resolver;
    fut_executor *isolation;       /* the in-rank process pool, or NULL */
    struct fut__mpi_message *buf;  /* FUT_MPI_MESSAGE_MAX bytes */
};

static int send_message(struct worker *w, struct fut__mpi_message *m, const void *payload)
{
    size_t len = m->wire.len;
    bool inline_payload = len <= FUT_MPI_INLINE;
    int rc;
    if (inline_payload && len) {
        struct fut__mpi_message *full = w->buf;  /* the task is over: its buffer is free */
        if (full != m)
            *full = *m;
        memmove(full->payload, payload, len);
        rc = MPI_Send(full, (int)(sizeof *m + len), MPI_BYTE, w->root, FUT_MPI_TAG_REPLY, w->comm);
    } else {
        rc = MPI_Send(m, (int)sizeof *m, MPI_BYTE, w->root, FUT_MPI_TAG_REPLY, w->comm);
    }
    for (size_t done = 0; rc == MPI_SUCCESS && !inline_payload && done < len;) {
        size_t piece = len - done < FUT_MPI_PIECE ? len - done : FUT_MPI_PIECE;
        rc = MPI_Send((const char *)payload + done, (int)piece, MPI_BYTE, w->root, FUT_MPI_TAG_DATA, w->comm);
        done += piece;
    }
    return rc == MPI_SUCCESS ? 0 : FUT_EBROKEN;
}

static int send_type(struct worker *w, uint32_t type, int32_t code)
{
    struct fut__mpi_message m = { .wire = { .type = type, .code = code } };
    return send_message(w, &m, NULL);
}

/* Receives the payload pieces of a task (len > FUT_MPI_INLINE) into a new buffer. With no
 * memory for it, the pieces are still drained (in a bounded scratch) and NULL returned. */
static int receive_payload(struct worker *w, size_t len, char **out)
{
    char *data = malloc(len);
    char *scratch = NULL;
    int rc = MPI_SUCCESS;
    for (size_t done = 0; rc == MPI_SUCCESS && done < len;) {
        size_t piece = len - done < FUT_MPI_PIECE ? len - done : FUT_MPI_PIECE;
        char *dst = data ? data + done : scratch;
        if (!dst && !(dst = scratch = malloc(piece)))
            return FUT_EBROKEN;
        MPI_Request request;
        rc = MPI_Irecv(dst, (int)piece, MPI_BYTE, w->root, FUT_MPI_TAG_DATA, w->comm, &request);
        if (rc == MPI_SUCCESS)
            rc = fut__mpi_wait(&request, MPI_STATUS_IGNORE);
        done += piece;
    }
    free(scratch);
    if (rc != MPI_SUCCESS) {
        free(data);
        return FUT_EBROKEN;
    }
    *out = data;
    return 0;
}

static void set_message(struct fut_task_outcome *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_message(struct fut_task_outcome *out, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->code = code;
    if (vasprintf(&out->message, fmt, ap) < 0)
        out->message = NULL;
    va_end(ap);
}

/* Translates the task's functions to this rank's addresses: 0, or fills out. */
static int resolve_task(struct worker *w, const struct fut__mpi_message *m, void *arg, fut_fn *fn,
                        struct fut_task_outcome *out)
{
    uintptr_t address;
    int rc = fut__mpi_resolver_find(&w->resolver, m->fn_object, m->fn_offset, &address, &out->message);
    if (rc == 0 && m->map_object != FUT_MPI_NO_OBJECT) {
        struct fut__map_request *request = arg;
        uintptr_t item_fn;
        if (!arg || m->wire.len < sizeof *request ||
            m->wire.len < sizeof *request + request->count * sizeof(void *)) {
            set_message(out, FUT_EBROKEN, "rank %d: a map chunk arrived truncated", w->rank);
            return out->code;
        }
        rc = fut__mpi_resolver_find(&w->resolver, m->map_object, m->map_offset, &item_fn, &out->message);
        request->fn = (fut_fn)item_fn;
        request->owner = 0;  /* never this process: bytes results travel in the reply */
    }
    if (rc) {
        out->code = rc;
        return rc;
    }
    *fn = (fut_fn)address;
    return 0;
}

/* Runs fn in the in-rank process pool and takes its outcome. */
static void run_isolated(struct worker *w, fut_fn fn, const struct fut__mpi_message *m, void *arg,
                         struct fut_task_outcome *out)
{
    fut_future *f = m->wire.len ? fut_submit_copy(w->isolation, fn, arg, m->wire.len)
                                : fut_submit(w->isolation, fn, (void *)(uintptr_t)m->wire.b);
    if (!f) {
        set_message(out, -errno, "rank %d: the isolation pool refused the task: %s", w->rank,
                    fut_strerror(-errno));
        return;
    }
    void *value = NULL;
    int rc = fut_result(f, FUT_FOREVER, &value);
    if (rc) {
        out->code = rc;
        const char *message = fut_exception_message(f);
        out->message = message ? strdup(message) : NULL;
    } else if (fut__future_flag(f, FUT_FLAG_RESULT_IS_BYTES)) {
        out->result = fut_bytes_dup(value, fut_bytes_len(value));
        out->result_is_bytes = out->result != NULL;
        if (!out->result)
            set_message(out, FUT_ENOMEM, "rank %d: no memory for the task's result", w->rank);
    } else {
        out->result = value;
    }
    fut_future_unref(f);
}

static int run_task(struct worker *w)
{
    struct fut__mpi_message m = *w->buf;
    struct fut_task_outcome out = { 0 };
    char *large = NULL;
    void *arg = m.wire.len ? (void *)w->buf->payload : (void *)(uintptr_t)m.wire.b;
    if (m.wire.len > FUT_MPI_INLINE) {
        if (receive_payload(w, m.wire.len, &large) != 0)
            return FUT_EBROKEN;
        arg = large;
        if (!large)
            set_message(&out, FUT_ENOMEM, "rank %d: no memory for a %llu-byte argument", w->rank,
                        (unsigned long long)m.wire.len);
    }
    fut_fn fn = NULL;
    if (!out.code && resolve_task(w, &m, arg, &fn, &out) == 0) {
        if (w->isolation)
            run_isolated(w, fn, &m, arg, &out);
        else
            w->hooks->task_call(fn, arg, &out);
    }
    free(large);
    /* what the task printed leaves before its result reaches the root */
    fflush(stdout);
    fflush(stderr);

    struct fut__mpi_message reply = { .seq = m.seq };
    const void *payload = NULL;
    if (out.code) {
        reply.wire.type = FUT_WIRE_RAISE;
        reply.wire.code = out.code;
        reply.wire.b = out.message != NULL;
        reply.wire.len = out.message ? strlen(out.message) : 0;
        payload = out.message;
    } else if (out.result_is_bytes) {
        reply.wire.type = FUT_WIRE_BYTES;
        reply.wire.len = fut_bytes_len(out.result);
        payload = out.result;
    } else {
        reply.wire.type = FUT_WIRE_RESULT;
        reply.wire.a = (uint64_t)(uintptr_t)out.result;
    }
    int rc = send_message(w, &reply, payload);
    if (out.result_is_bytes)
        fut_bytes_free(out.result);
    free(out.message);
    return rc;
}

/* Receives the next message from the root into w->buf: its size, or -1. */
static int receive(struct worker *w)
{
    MPI_Request request;
    MPI_Status status;
    int count = -1;
    if (MPI_Irecv(w->buf, (int)FUT_MPI_MESSAGE_MAX, MPI_BYTE, w->root, FUT_MPI_TAG_TASK, w->comm, &request) !=
            MPI_SUCCESS ||
        fut__mpi_wait(&request, &status) != MPI_SUCCESS)
        return -1;
    MPI_Get_count(&status, MPI_BYTE, &count);
    return count;
}

static int add_object(struct worker *w, size_t count)
{
    const struct fut__mpi_message *m = w->buf;
    size_t len = m->wire.len;
    if (count != sizeof *m + len || len > FUT_MPI_INLINE)
        return FUT_EBROKEN;
    struct fut__mpi_object_wire *wire = malloc(len);
    if (!wire)
        return FUT_ENOMEM;
    memcpy(wire, m->payload, len);
    int rc = fut__mpi_resolver_add(&w->resolver, (uint32_t)m->wire.code, wire, len);
    if (rc)
        free(wire);
    return rc;
}

/* Serves until STOP; false when MPI failed (or the root broke the protocol). */
static bool serve(struct worker *w)
{
    for (;;) {
        int count = receive(w);
        if (count < (int)sizeof(struct fut__mpi_message))
            return false;
        const struct fut__mpi_message *m = w->buf;
        size_t inline_len = m->wire.len <= FUT_MPI_INLINE ? m->wire.len : 0;
        switch (m->wire.type) {
        case FUT_MPI_STOP:
            return true;
        case FUT_MPI_OBJECT:
            if (add_object(w, (size_t)count) != 0)
                return false;
            break;
        case FUT_WIRE_TASK:
            if ((size_t)count != sizeof *m + inline_len || run_task(w) != 0)
                return false;
            break;
        default:
            return false;
        }
    }
}

static int start(struct worker *w, const struct fut__mpi_config *config, const fut_pool_options *opts)
{
    if (opts && opts->initializer) {
        int rc = opts->initializer(opts->initarg);
        if (rc != 0)
            return rc;
    }
    if (config->task_timeout > 0 || config->max_tasks_per_child > 0) {
        fut_pool_options isolation = {
            .max_workers = 1,
            .max_tasks_per_child = config->max_tasks_per_child,
            .task_timeout = config->task_timeout,
        };
        if (!(w->isolation = fut_process_pool_new(&isolation)))
            return -errno;
    }
    return 0;
}

int fut__mpi_worker_run(MPI_Comm comm, int root, const struct fut__mpi_config *config,
                        const fut_pool_options *opts)
{
    struct worker w = { .comm = comm, .root = root, .hooks = fut_backend_hooks() };
    MPI_Comm_rank(comm, &w.rank);
    w.resolver.rank = w.rank;
    w.buf = malloc(FUT_MPI_MESSAGE_MAX);
    int started = w.buf ? start(&w, config, opts) : FUT_ENOMEM;
    bool ok = send_type(&w, started ? FUT_WIRE_INIT_FAILED : FUT_WIRE_READY, started) == 0;
    /* a rank whose initializer failed gets no task: it waits for STOP all the same */
    ok = ok && w.buf && serve(&w);
    ok = ok && send_type(&w, FUT_MPI_STOPPED, 0) == 0;
    fut_executor_free(w.isolation);
    fut__mpi_resolver_destroy(&w.resolver);
    free(w.buf);
    MPI_Comm_free(&comm);
    return ok ? 0 : FUT_EBROKEN;
}
