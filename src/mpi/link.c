/* SPDX-License-Identifier: MIT */
/*
 * The MPI root's traffic with one worker rank (a link): per rank at most one send in flight
 * (an object description, a task's header, or one piece of its payload) and one receive (a
 * reply header, or one piece of a reply's payload). Replies come in task order, each with
 * its task's sequence number; a rank that breaks the protocol is cut off (link_lied).
 * Progress thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/root.h"

/* ---- sends ------------------------------------------------------------------------------ */

static int post_send(struct mpi_pool *pool, int i, const void *buf, size_t len, int tag)
{
    int rc = MPI_Isend(buf, (int)len, MPI_BYTE, pool->links[i].rank, tag, pool->comm, &pool->send_reqs[i]);
    if (rc != MPI_SUCCESS)
        fut__mpi_failure(pool, rc, "MPI_Isend");
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
int fut__mpi_link_name_task(struct mpi_pool *pool, const fut_future *f, struct fut__mpi_message *m)
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
bool fut__mpi_link_start_send(struct mpi_pool *pool, int i, bool stopping)
{
    struct link *l = &pool->links[i];
    if (l->sending != SEND_NONE || l->stopped)
        return false;
    while (l->n_sent < l->n_tasks) {
        fut_future *f = l->tasks[l->n_sent];
        struct fut__mpi_message *m = l->send_buf;
        memset(m, 0, sizeof *m);
        int rc = fut__mpi_link_name_task(pool, f, m);
        if (rc) {
            fut__mpi_fail(pool, link_take(l, l->n_sent), rc, "MPI executor: cannot name the task's function");
            continue;
        }
        uint32_t needed = m->fn_object;
        if (m->map_object != FUT_MPI_NO_OBJECT && m->map_object > needed)
            needed = m->map_object;
        if (l->objects_sent <= needed) {
            const struct fut__mpi_object *o = fut__mpi_objects_get(&pool->objects, l->objects_sent);
            if (o->wire_len > FUT_MPI_INLINE) {
                fut__mpi_fail(pool, link_take(l, l->n_sent), FUT_EINVAL, "MPI executor: object path too long");
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

void fut__mpi_link_send_completed(struct mpi_pool *pool, int i)
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
        fut__mpi_failure(pool, rc, "MPI_Irecv");
    return rc;
}

int fut__mpi_link_post_header_recv(struct mpi_pool *pool, int i)
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
        fut__mpi_fail(pool, l->tasks[t], FUT_EBROKEN, "MPI executor: rank %d %s", l->rank, what);
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
        fut__mpi_finish(pool, f, (void *)(uintptr_t)m->a, false, 0, NULL);
        break;
    case FUT_WIRE_BYTES:
        fut__mpi_finish(pool, f, data, true, 0, NULL);
        break;
    default:  /* FUT_WIRE_RAISE: data is the message, NUL-terminated */
        fut__mpi_finish(pool, f, NULL, false, m->code ? m->code : FUT_EINVAL, m->b ? data : NULL);
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

void fut__mpi_link_header_received(struct mpi_pool *pool, int i, int count)
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
        fut__mpi_link_post_header_recv(pool, i);
        return;
    case FUT_WIRE_INIT_FAILED:
        l->init_failed = true;
        fut__mpi_set_broken(pool, "MPI executor: the initializer failed on rank %d (returned %d)", l->rank, m->wire.code);
        fut__mpi_link_post_header_recv(pool, i);
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
            fut__mpi_failure(pool, rc, "MPI_Wait");
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
            fut__mpi_fail(pool, f, FUT_ENOMEM, "MPI executor: no memory for a %llu-byte reply",
                 (unsigned long long)m->wire.len);
            fut__mpi_link_post_header_recv(pool, i);
            return;
        }
        link_lied(pool, i, "sent a reply larger than the root's free memory");
        return;
    }
    if (inline_len || m->wire.len == 0) {
        if (inline_len)
            memcpy(data, m->payload, inline_len);
        complete_oldest(pool, l, &m->wire, data);
        fut__mpi_link_post_header_recv(pool, i);
        return;
    }
    l->reply = m->wire;
    l->recv_data = data;
    l->recv_len = m->wire.len;
    l->recv_done = 0;
    post_piece_recv(pool, i);
}

void fut__mpi_link_piece_received(struct mpi_pool *pool, int i)
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
    fut__mpi_link_post_header_recv(pool, i);
}
