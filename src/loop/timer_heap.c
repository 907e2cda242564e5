/* SPDX-License-Identifier: MIT */
/*
 * The timer heap: an implicit binary heap in one array. Invariant: no entry is earlier
 * than its parent, by (when, seq); seq is unique, so the order is total and timers due
 * at the same time come out in the order they were scheduled.
 */
#include <stdlib.h>

#include "futures.h"
#include "loop/timer_heap.h"

static bool earlier(const struct fut_timer *a, const struct fut_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(struct fut_timer *v, size_t i)
{
    struct fut_timer t = v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&t, &v[parent]))
            break;
        v[i] = v[parent];
        i = parent;
    }
    v[i] = t;
}

static void sift_down(struct fut_timer *v, size_t n, size_t i)
{
    struct fut_timer t = v[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && earlier(&v[child + 1], &v[child]))
            child++;
        if (!earlier(&v[child], &t))
            break;
        v[i] = v[child];
        i = child;
    }
    v[i] = t;
}

void fut__timer_heap_destroy(struct fut_timer_heap *h)
{
    free(h->v);
    *h = (struct fut_timer_heap){ 0 };
}

int fut__timer_heap_push(struct fut_timer_heap *h, struct fut_timer t)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct fut_timer *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return FUT_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n] = t;
    sift_up(h->v, h->n++);
    return 0;
}

struct fut_timer fut__timer_heap_pop(struct fut_timer_heap *h)
{
    struct fut_timer top = h->v[0];
    if (--h->n > 0) {
        h->v[0] = h->v[h->n];
        sift_down(h->v, h->n, 0);
    }
    return top;
}

void fut__timer_heap_filter(struct fut_timer_heap *h,
                            bool (*keep)(void *ctx, const struct fut_timer *t), void *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < h->n; i++)
        if (keep(ctx, &h->v[i]))
            h->v[kept++] = h->v[i];
    h->n = kept;
    for (size_t i = kept / 2; i-- > 0;)
        sift_down(h->v, kept, i);
}
