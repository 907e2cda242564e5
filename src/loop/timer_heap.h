/* SPDX-License-Identifier: MIT */
/* Internal: the loop's timers, a binary min-heap ordered by (time, sequence number). */
#ifndef FUT_TIMER_HEAP_H
#define FUT_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The key lives in the heap itself, so sifting touches only this array. */
struct fut_timer {
    double when;                   /* CLOCK_MONOTONIC seconds */
    uint64_t seq;                  /* scheduling order: breaks ties in `when` */
    uint32_t slot;                 /* the handle's slot in the loop's handle table */
};

struct fut_timer_heap {
    struct fut_timer *v;
    size_t n, cap;
};

void fut__timer_heap_destroy(struct fut_timer_heap *h);
/* 0 or FUT_ENOMEM. */
int  fut__timer_heap_push(struct fut_timer_heap *h, struct fut_timer t);
/* Removes and returns the earliest timer; the heap must not be empty. */
struct fut_timer fut__timer_heap_pop(struct fut_timer_heap *h);
/* Keeps only the timers for which keep() is true, then restores the heap order: O(n). */
void fut__timer_heap_filter(struct fut_timer_heap *h,
                            bool (*keep)(void *ctx, const struct fut_timer *t), void *ctx);

static inline const struct fut_timer *fut__timer_heap_top(const struct fut_timer_heap *h)
{
    return h->n ? &h->v[0] : NULL;
}

#endif
