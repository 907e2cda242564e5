/* SPDX-License-Identifier: MIT */
/*
 * Internal: the process pool's shared-memory channel, one per worker.
 *
 * A memfd of FUT_CHANNEL_MAP_SIZE bytes, made by the fork server before it forks the
 * worker (which inherits the mapping) and passed to the parent with the worker's socket:
 *
 *   page 0   the control page: one fut__ring_ctl per direction
 *   then     FUT_RING_CAPACITY bytes of parent -> worker messages,
 *            FUT_RING_CAPACITY bytes of worker -> parent messages
 *
 * Each direction is a single-producer single-consumer ring of bytes. `tail` (written by
 * the producer) and `head` (by the consumer) are byte counts that only grow, on cache
 * lines of their own; a store of either is a release, a load an acquire. A message is a
 * struct fut__wire_header and, when it is carried inline, its payload, padded to 8 bytes;
 * it may wrap around the end of the data area. The producer publishes tail only after a
 * whole message is written, so the consumer never sees half of one.
 *
 * Each side keeps its own position (pos) privately and never reads back a value it
 * wrote: the parent trusts nothing the worker wrote in the mapping. Every load of the
 * peer's counter is checked (0 <= tail - head <= capacity); a counter out of bounds is a
 * protocol error (-EPROTO), never a read outside the ring.
 *
 * Sleeping: `sleeping` is the consumer's word. A consumer about to block stores 1, fences
 * (sequentially consistent), and looks at the ring once more before it blocks on the
 * socket; a producer, after publishing, fences and, when the word is 1, clears it and
 * sends one wake-up record on the socket. One of the two always sees the other (Dekker's
 * pattern), so no message is missed and a busy channel makes no system call.
 */
#ifndef FUT_PROCESS_RING_H
#define FUT_PROCESS_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "process/wire.h"

#define FUT_RING_CAPACITY ((uint64_t)256 * 1024)
#define FUT_RING_CONTROL 4096
#define FUT_CHANNEL_MAP_SIZE ((size_t)(FUT_RING_CONTROL + 2 * FUT_RING_CAPACITY))
/* The name of the memfd (/proc/PID/maps shows "/memfd:fut-ring (deleted)"). */
#define FUT_CHANNEL_MEMFD_NAME "fut-ring"

struct fut__ring_ctl {
    alignas(64) _Atomic uint64_t tail;   /* producer: bytes published */
    alignas(64) _Atomic uint64_t head;   /* consumer: bytes consumed */
    alignas(64) _Atomic uint32_t sleeping; /* consumer: 1 while it blocks on the socket */
};

struct fut__channel_control {
    struct fut__ring_ctl to_worker;
    struct fut__ring_ctl to_parent;
};

_Static_assert(sizeof(struct fut__channel_control) <= FUT_RING_CONTROL, "control page");

/* One side's view of one direction. */
struct fut__ring {
    struct fut__ring_ctl *ctl;
    unsigned char *data;
    uint64_t pos;                  /* producer: its tail; consumer: its head */
};

/* The two rings of a channel mapped at base, seen from the parent (to_worker is the ring
 * it produces) or from the worker. */
void fut__ring_attach(void *base, struct fut__ring *to_worker, struct fut__ring *to_parent);

/* Bytes a message with an inline payload of len bytes takes. */
static inline uint64_t fut__ring_msg_size(uint64_t inline_len)
{
    return (sizeof(struct fut__wire_header) + inline_len + 7) & ~(uint64_t)7;
}

/* Producer: free bytes in *room, or -EPROTO when the peer's head is impossible. */
int fut__ring_room(const struct fut__ring *r, uint64_t *room);
/* Producer: writes one message (payload inline_len bytes, may be 0) at pos and publishes
 * it. The caller made sure there is room. */
void fut__ring_put(struct fut__ring *r, const struct fut__wire_header *h, const void *payload,
                   uint64_t inline_len);
/* Producer, after publishing: whether the consumer sleeps (the word is then cleared, and
 * the caller owes it one wake-up). */
bool fut__ring_take_sleeper(struct fut__ring *r);

/* Consumer: bytes published and not consumed in *avail, or -EPROTO when the peer's tail
 * is impossible. Loads the tail once. */
int fut__ring_avail(const struct fut__ring *r, uint64_t *avail);
/* Consumer: copies n bytes starting off bytes past pos (off + n <= avail). */
void fut__ring_copy_out(const struct fut__ring *r, uint64_t off, void *dst, size_t n);
/* Consumer: releases n bytes (a whole message) to the producer. */
void fut__ring_consume(struct fut__ring *r, uint64_t n);
/* Consumer: announces that it is about to block; returns false (and withdraws) when the
 * ring is not empty (or its tail is impossible). */
bool fut__ring_prepare_sleep(struct fut__ring *r);
/* Consumer: marks itself awake again. */
void fut__ring_awake(struct fut__ring *r);

#endif
