/* SPDX-License-Identifier: MIT */
/*
 * Internal: framed messages between the process pool's parent and its workers.
 *
 * Every message is a fixed header followed by `len` payload bytes. The parent side is
 * nonblocking: a fut__wire_in accumulates partial reads (small messages through a staging
 * buffer, large payloads straight into their destination) and a fut__wire_out remembers
 * how much of one message has been written. Workers use the same reader with a blocking
 * socket. Every send uses MSG_NOSIGNAL: no SIGPIPE ever reaches the process.
 */
#ifndef FUT_WIRE_H
#define FUT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum fut__wire_type {
    FUT_WIRE_TASK = 1,             /* parent -> worker: a = fn, b = arg value, payload = arg copy */
    FUT_WIRE_READY,                /* worker -> parent: the initializer succeeded */
    FUT_WIRE_INIT_FAILED,          /* worker -> parent: code = the initializer's return value */
    FUT_WIRE_START,                /* worker -> parent: the oldest unstarted task starts now */
    FUT_WIRE_RESULT,               /* worker -> parent: a = the plain result */
    FUT_WIRE_BYTES,                /* worker -> parent: payload = a fut_bytes result */
    FUT_WIRE_RAISE,                /* worker -> parent: code, b = has message, payload = message */
};

struct fut__wire_header {
    uint32_t type;
    int32_t code;
    uint64_t len;                  /* payload bytes that follow */
    uint64_t a, b;
    uint64_t seq;                  /* TASK: numbers the task; START and outcomes echo it, so
                                      the parent can reject one for a task it did not hand */
};

/* Where a payload goes: returns a buffer of h->len bytes, or NULL to discard the payload
 * (the message is still delivered, with discarded set). */
typedef void *(*fut__wire_alloc_fn)(void *ctx, const struct fut__wire_header *h);

#define FUT_WIRE_STAGING 32768

struct fut__wire_in {
    fut__wire_alloc_fn alloc;
    void *ctx;
    size_t start, end;             /* unparsed bytes are staging[start, end) */
    bool have_header;
    bool discarded;                /* the current payload is being dropped */
    struct fut__wire_header header;
    char *payload;
    size_t got;                    /* payload bytes received so far */
    char staging[FUT_WIRE_STAGING];
};

/* Parses the next complete message out of what has been read (no I/O): returns true and
 * fills *h and *payload (NULL when len is 0 or the payload was discarded). */
bool fut__wire_in_next(struct fut__wire_in *in, struct fut__wire_header *h, void **payload);

/* One recv with these flags: > 0 bytes read, 0 end of file, or -errno (-EAGAIN when it
 * would block). */
long fut__wire_in_fill(int fd, struct fut__wire_in *in, int flags);

/* Frees a payload that was allocated but never delivered (the connection died mid-message).
 * free_fn releases what alloc returned. */
void fut__wire_in_abandon(struct fut__wire_in *in, void (*free_fn)(void *ctx, const struct fut__wire_header *h, void *p));

/* One message being written without blocking. */
struct fut__wire_out {
    struct fut__wire_header header;
    const void *payload;
    size_t done;                   /* bytes of header + payload already sent */
    bool busy;
};

void fut__wire_out_start(struct fut__wire_out *out, const struct fut__wire_header *h, const void *payload);

/* Sends what it can: 1 the message is complete, 0 it would block, or -errno. */
int fut__wire_out_flush(int fd, struct fut__wire_out *out);

/* Blocking send of the whole iovec array, retrying partial writes and EINTR: 0 or -errno. */
int fut__wire_send_all(int fd, struct iovec *iov, int n);

#endif
