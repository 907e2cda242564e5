/* SPDX-License-Identifier: MIT */
/* Single-producer single-consumer byte rings in a shared mapping (see ring.h). */
#include <errno.h>
#include <string.h>

#include "process/ring.h"

void fut__ring_attach(void *base, struct fut__ring *to_worker, struct fut__ring *to_parent)
{
    struct fut__channel_control *control = base;
    unsigned char *data = (unsigned char *)base + FUT_RING_CONTROL;
    *to_worker = (struct fut__ring){ &control->to_worker, data, 0 };
    *to_parent = (struct fut__ring){ &control->to_parent, data + FUT_RING_CAPACITY, 0 };
}

int fut__ring_room(const struct fut__ring *r, uint64_t *room)
{
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
    uint64_t used = r->pos - head;
    if (used > FUT_RING_CAPACITY)
        return -EPROTO;
    *room = FUT_RING_CAPACITY - used;
    return 0;
}

static void copy_in(struct fut__ring *r, uint64_t at, const void *src, size_t n)
{
    uint64_t offset = at % FUT_RING_CAPACITY;
    size_t first = FUT_RING_CAPACITY - offset < n ? (size_t)(FUT_RING_CAPACITY - offset) : n;
    memcpy(r->data + offset, src, first);
    memcpy(r->data, (const unsigned char *)src + first, n - first);
}

void fut__ring_put(struct fut__ring *r, const struct fut__wire_header *h, const void *payload,
                   uint64_t inline_len)
{
    copy_in(r, r->pos, h, sizeof *h);
    if (inline_len)
        copy_in(r, r->pos + sizeof *h, payload, (size_t)inline_len);
    r->pos += fut__ring_msg_size(inline_len);
    atomic_store_explicit(&r->ctl->tail, r->pos, memory_order_release);
}

bool fut__ring_take_sleeper(struct fut__ring *r)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&r->ctl->sleeping, memory_order_relaxed))
        return false;
    return atomic_exchange_explicit(&r->ctl->sleeping, 0, memory_order_relaxed) != 0;
}

int fut__ring_avail(const struct fut__ring *r, uint64_t *avail)
{
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    uint64_t n = tail - r->pos;
    if (n > FUT_RING_CAPACITY)
        return -EPROTO;
    *avail = n;
    return 0;
}

void fut__ring_copy_out(const struct fut__ring *r, uint64_t off, void *dst, size_t n)
{
    uint64_t offset = (r->pos + off) % FUT_RING_CAPACITY;
    size_t first = FUT_RING_CAPACITY - offset < n ? (size_t)(FUT_RING_CAPACITY - offset) : n;
    memcpy(dst, r->data + offset, first);
    memcpy((unsigned char *)dst + first, r->data, n - first);
}

void fut__ring_consume(struct fut__ring *r, uint64_t n)
{
    r->pos += n;
    atomic_store_explicit(&r->ctl->head, r->pos, memory_order_release);
}

bool fut__ring_prepare_sleep(struct fut__ring *r)
{
    atomic_store_explicit(&r->ctl->sleeping, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t avail;
    if (fut__ring_avail(r, &avail) == 0 && avail == 0)
        return true;
    fut__ring_awake(r);
    return false;
}

void fut__ring_awake(struct fut__ring *r)
{
    atomic_store_explicit(&r->ctl->sleeping, 0, memory_order_relaxed);
}
