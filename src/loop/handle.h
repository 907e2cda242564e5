/* SPDX-License-Identifier: MIT */
/*
 * Internal: the table behind fut_handle. A handle names its loop, a slot and the slot's
 * generation, so cancelling by handle is O(1), a stale handle (its callback ran or was
 * cancelled, the slot since reused) is recognised, a handle of another loop is refused,
 * and memory is bounded by the callbacks pending at once.
 *
 *   handle = tag << 63 | loop id << 51 | generation << 32 | slot index
 *            loop id in [1, 4096), generation in [1, 2^19), slot index < 2^31
 *
 * The tag tells the loop's two tables apart (see loop.h). Loop ids are handed out in turn,
 * so two loops alive at once share one only after 4095 loops were created in between. A
 * generation is never 0, so neither is a handle. After 2^19 reuses of one slot its
 * generations wrap around; a handle kept that long could then name a newer callback.
 */
#ifndef FUT_LOOP_HANDLE_H
#define FUT_LOOP_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "futures.h"

#define FUT_SLOT_NONE UINT32_MAX

enum fut_slot_state {
    FUT_SLOT_FREE,                 /* not pending: ran, was cancelled, or never used */
    FUT_SLOT_READY,                /* in the ready queue (or the threadsafe inbox) */
    FUT_SLOT_TIMER,                /* in the timer heap */
    FUT_SLOT_CANCELLED,            /* cancelled; still queued until the loop drops it */
};

/* 24 bytes: a million pending callbacks are 24 MB of memory touched, which costs more
 * than running them. */
struct fut_slot {
    union {
        struct {                   /* pending (READY, TIMER, CANCELLED) */
            fut_callback cb;
            void *arg;
        };
        uint32_t next_free;        /* FREE: the free list */
    };
    uint32_t gen;                  /* generation of the last handle issued from this slot */
    uint8_t state;                 /* enum fut_slot_state */
    bool owned;                    /* the library's own callback, whose argument owns
                                      something: fut_loop_free runs it rather than drop it */
};

/* Slots live in fixed-size chunks that never move: growing the table copies nothing (a
 * fresh page costs enough already) and a slot's address stays valid while it is in use. */
#define FUT_SLOT_CHUNK_SHIFT 10
#define FUT_SLOT_CHUNK (1U << FUT_SLOT_CHUNK_SHIFT)

struct fut_slot_table {
    struct fut_slot **chunks;
    uint32_t n_chunks, chunks_cap;
    uint32_t used;                 /* slots [0 .. used) have been issued at least once */
    uint32_t free_head;            /* LIFO free list: the slot freed last is warm in cache */
    /* Once no slot is pending, slots [reissue .. used) are free outside the list and are
     * issued again in order: a burst of callbacks then walks memory forwards, as the
     * ready queue runs them, instead of chasing the list's links. */
    uint32_t reissue;
    uint32_t pending;              /* slots taken and not freed */
    uint64_t tag;                  /* 0 or 1ULL << 63, with the loop id */
};

static inline struct fut_slot *fut__slot(const struct fut_slot_table *t, uint32_t index)
{
    return &t->chunks[index >> FUT_SLOT_CHUNK_SHIFT][index & (FUT_SLOT_CHUNK - 1)];
}

/* A handle: tag bit 63, loop id in bits 51..62, generation in bits 32..50, slot index
 * in bits 0..30. */
#define FUT_SLOT_GEN_LIMIT (1U << 19)
#define FUT_LOOP_ID_SHIFT 51
#define FUT_LOOP_ID_LIMIT (1U << 12)

/* tag: 0 or 1ULL << 63; loop_id in [1, FUT_LOOP_ID_LIMIT) */
void fut__slots_init(struct fut_slot_table *t, uint64_t tag, uint32_t loop_id);
void fut__slots_destroy(struct fut_slot_table *t);
/* Adds a chunk of slots: 0 or FUT_ENOMEM. */
int  fut__slots_grow(struct fut_slot_table *t);

/* Taking and freeing a slot are the loop's hot path: inline. */

/* Takes a slot in `state` for cb(arg); returns its index and sets *h, or FUT_SLOT_NONE
 * (out of memory). */
static inline uint32_t fut__slots_alloc(struct fut_slot_table *t, fut_callback cb, void *arg,
                                        enum fut_slot_state state, bool owned, fut_handle *h)
{
    uint32_t i;
    struct fut_slot *s;
    if (t->free_head != FUT_SLOT_NONE) {
        i = t->free_head;
        s = fut__slot(t, i);
        t->free_head = s->next_free;
    } else if (t->reissue < t->used) {
        i = t->reissue++;
        s = fut__slot(t, i);
    } else {
        if (t->used == t->n_chunks * FUT_SLOT_CHUNK && fut__slots_grow(t) != 0)
            return FUT_SLOT_NONE;
        i = t->used++;
        t->reissue = t->used;
        s = fut__slot(t, i);
        s->gen = 0;
    }
    s->gen = s->gen + 1 < FUT_SLOT_GEN_LIMIT ? s->gen + 1 : 1;
    t->pending++;
    s->cb = cb;
    s->arg = arg;
    s->state = (uint8_t)state;
    s->owned = owned;
    *h = t->tag | (uint64_t)s->gen << 32 | i;
    return i;
}

static inline void fut__slots_free(struct fut_slot_table *t, uint32_t index)
{
    struct fut_slot *s = fut__slot(t, index);
    s->state = FUT_SLOT_FREE;
    if (--t->pending == 0) {
        t->free_head = FUT_SLOT_NONE;  /* every slot is free: reissue them in order */
        t->reissue = 0;
        return;
    }
    s->next_free = t->free_head;
    t->free_head = index;
}
/* The slot a pending handle names: 0 and *index when it is READY or TIMER; FUT_ENOENT when
 * it was issued but is no longer pending, or by another loop; FUT_EINVAL when no loop
 * issued it. */
int  fut__slots_find(const struct fut_slot_table *t, fut_handle h, uint32_t *index);

#endif
