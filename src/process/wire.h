/* SPDX-License-Identifier: MIT */
/*
 * Internal: the messages between the process pool's parent and its workers.
 *
 * Messages (a fixed header, then `len` payload bytes) travel in the worker's shared
 * rings (ring.h). A payload shorter than FUT_WIRE_INLINE_MAX travels inline, in the ring;
 * a larger one travels as a memfd (FUT_WIRE_IN_FD), sent on the worker's socket as an
 * FD record BEFORE its ring message is published, so that the receiver finds it queued
 * when it reads the message.
 *
 * The socket (SOCK_SEQPACKET) carries only records: WAKE (the peer slept, see ring.h),
 * FD (one memfd, SCM_RIGHTS: a payload) and SPARE (one memfd the worker may reuse for a
 * large result). Its end of file still means that the peer is gone. Every send uses
 * MSG_NOSIGNAL: no SIGPIPE ever reaches the process.
 */
#ifndef FUT_WIRE_H
#define FUT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytes_shared.h"

enum fut__wire_type {
    FUT_WIRE_TASK = 1,             /* parent -> worker: a = fn, b = arg value, payload = arg copy */
    FUT_WIRE_READY,                /* worker -> parent: the initializer succeeded */
    FUT_WIRE_INIT_FAILED,          /* worker -> parent: code = the initializer's return value */
    FUT_WIRE_START,                /* worker -> parent: the oldest unstarted task starts now */
    FUT_WIRE_RESULT,               /* worker -> parent: a = the plain result */
    FUT_WIRE_BYTES,                /* worker -> parent: payload = a fut_bytes result */
    FUT_WIRE_RAISE,                /* worker -> parent: code, b = has message, payload = message */
};

/* Flags or'ed into the type: where the payload is. */
#define FUT_WIRE_TYPE_MASK 0xffu
#define FUT_WIRE_IN_FD 0x100u      /* the payload is in the next FD record: a plain memfd
                                      holding len bytes at offset 0 */
#define FUT_WIRE_SHARED 0x200u     /* with IN_FD: the memfd is a shared fut_bytes buffer
                                      (core/bytes_shared.h), mapped rather than read */
#define FUT_WIRE_SEALED 0x800u    /* TASK with IN_FD: the memfd is the parent's sealed copy
                                      (fut__arg_copy_new), mapped privately */
#define FUT_WIRE_SPARE 0x400u      /* TASK: a SPARE record was sent before it (the worker
                                      takes it before it runs the task) */

/* Payloads shorter than this ride in the ring; messages of fut_raise are cut to
 * FUT_WIRE_MESSAGE_MAX bytes. */
#define FUT_WIRE_INLINE_MAX FUT_BYTES_SHARED_MIN
#define FUT_WIRE_MESSAGE_MAX 4096

struct fut__wire_header {
    uint32_t type;
    int32_t code;
    uint64_t len;                  /* payload bytes */
    uint64_t a, b;
    uint64_t seq;                  /* TASK: numbers the task; START and outcomes echo it, so
                                      the parent can reject one for a task it did not hand */
};

/* Whether a payload of len bytes rides in the ring. */
static inline bool fut__wire_inline(uint64_t len)
{
    return len < FUT_WIRE_INLINE_MAX;
}

/* ---- socket records ---- */

enum fut__wire_record_kind {
    FUT_RECORD_WAKE = 1,
    FUT_RECORD_FD,                 /* one descriptor attached: a payload */
    FUT_RECORD_SPARE,              /* one descriptor attached: memory to reuse */
};

struct fut__wire_record {
    uint32_t kind;
    uint32_t zero;
};

/* Sends one record (fd attached when >= 0): 0 or -errno. flags: MSG_DONTWAIT or 0. */
int fut__wire_record_send(int sock, uint32_t kind, int fd, int flags);

/* Receives one record: 1 with *kind and *fd (-1 when none came), 0 at end of file, or
 * -errno (-EAGAIN: nothing yet; -EPROTO: a record of the wrong size or shape, its
 * descriptors already closed). Descriptors arrive close-on-exec. */
int fut__wire_record_recv(int sock, uint32_t *kind, int *fd, int flags);

/* Descriptors received in FD records and not yet claimed by their ring message. */
#define FUT_WIRE_FD_QUEUE 8
struct fut__wire_fds {
    int fd[FUT_WIRE_FD_QUEUE];
    int n;
};

/* Appends fd: 0, or -EPROTO when the queue is full (fd is closed). */
int fut__wire_fds_push(struct fut__wire_fds *q, int fd);
/* The oldest descriptor, or -1 when there is none. */
int fut__wire_fds_pop(struct fut__wire_fds *q);
void fut__wire_fds_close(struct fut__wire_fds *q);

/* ---- payloads in memfds ---- */

/* A new memfd holding the len bytes at p: the descriptor, or -errno. */
int fut__wire_payload_fd(const void *p, size_t len);
/* Reads len bytes from offset 0 of fd into dst: 0, or -errno (-EPROTO when the file is
 * shorter). */
int fut__wire_payload_read(int fd, void *dst, size_t len);

#endif
