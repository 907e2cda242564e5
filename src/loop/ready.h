/* SPDX-License-Identifier: MIT */
/*
 * Internal: the loop's ready queue, a FIFO of slot indexes (loop.h tells what an index
 * names), in blocks that are linked rather than reallocated: growing it copies nothing.
 */
#ifndef FUT_LOOP_READY_H
#define FUT_LOOP_READY_H

#include <stddef.h>
#include <stdint.h>

#include "futures.h"

#define FUT_READY_BLOCK 4096

struct fut_ready_block {
    struct fut_ready_block *next;
    uint32_t v[FUT_READY_BLOCK];
};

struct fut_ready {
    struct fut_ready_block *head, *tail;   /* pop from head[head_pos], push at tail[tail_pos] */
    size_t head_pos, tail_pos, n;
    struct fut_ready_block *spare;         /* emptied blocks kept for reuse */
    size_t n_spare;
};

/* Makes room for `more` pushes that then cannot fail: 0 or FUT_ENOMEM. */
int  fut__ready_reserve(struct fut_ready *q, size_t more);
void fut__ready_destroy(struct fut_ready *q);
/* Keeps an emptied block for reuse, or frees it. */
void fut__ready_recycle(struct fut_ready *q, struct fut_ready_block *b);

/* The push and the pop are the loop's hot path: inline. */

/* 0 or FUT_ENOMEM. */
static inline int fut__ready_push(struct fut_ready *q, uint32_t entry)
{
    if (!q->tail || q->tail_pos == FUT_READY_BLOCK) {
        if (!q->spare && fut__ready_reserve(q, 1) != 0)
            return FUT_ENOMEM;
        struct fut_ready_block *b = q->spare;
        q->spare = b->next;
        q->n_spare--;
        b->next = NULL;
        if (q->tail)
            q->tail->next = b;
        else
            q->head = b;
        q->tail = b;
        q->tail_pos = 0;
    }
    q->tail->v[q->tail_pos++] = entry;
    q->n++;
    return 0;
}

/* The oldest entry; the queue must not be empty.
 * Invariant: n == 0 exactly when head == tail and head_pos == tail_pos (a block becomes
 * the tail only as something is pushed into it). */
static inline uint32_t fut__ready_pop(struct fut_ready *q)
{
    uint32_t entry = q->head->v[q->head_pos++];
    if (--q->n == 0) {
        q->head_pos = q->tail_pos = 0;  /* empty: reuse the block from its start */
    } else if (q->head_pos == FUT_READY_BLOCK) {
        struct fut_ready_block *done = q->head;
        q->head = done->next;
        q->head_pos = 0;
        fut__ready_recycle(q, done);
    }
    return entry;
}

#endif
