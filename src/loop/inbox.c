/* SPDX-License-Identifier: MIT */
/*
 * The loop's inbox: callbacks queued from other threads (call_soon_threadsafe, loop
 * futures completed elsewhere), in arrival order, under core->lock, with their own handle
 * table (ts_slots). The loop moves the inbox into its ready queue at the start of each
 * iteration and after waking up; a poster writes the eventfd only while the loop sleeps
 * (or is embedded in another loop, which polls our fd). See loop.c for why no wake-up is
 * lost.
 */
#include <stdlib.h>
#include <unistd.h>

#include "core/annotate.h"
#include "loop/loop.h"

static void fail_handle(int err, fut_handle *h)
{
    errno = err;
    *h = 0;
}

/* Wakes the loop out of epoll_wait. Called under core->lock, so the fd is still open. */
static void wake(fut_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway */
    if (write(loop->wake_fd, &one, sizeof one) < 0)
        return;
}

static int inbox_push(fut_loop *loop, fut_callback cb, void *arg, bool owned, fut_handle *h)
{
    if (loop->inbox_n == loop->inbox_cap) {
        size_t cap = loop->inbox_cap ? loop->inbox_cap * 2 : 256;
        uint32_t *v = realloc(loop->inbox, cap * sizeof *v);
        if (!v)
            return FUT_ENOMEM;
        loop->inbox = v;
        loop->inbox_cap = cap;
    }
    uint32_t i = fut__slots_alloc(&loop->ts_slots, cb, arg, FUT_SLOT_READY, owned, h);
    if (i == FUT_SLOT_NONE)
        return FUT_ENOMEM;
    loop->inbox[loop->inbox_n++] = i;
    atomic_store(&loop->inbox_count, loop->inbox_n);
    if (atomic_load(&loop->sleeping) || atomic_load(&loop->embedded))
        wake(loop);
    return 0;
}

fut_handle fut__loop_post(struct fut_loop_core *core, fut_callback cb, void *arg, bool owned)
{
    fut_handle h = 0;
    int rc = FUT_ESHUTDOWN;
    pthread_mutex_lock(&core->lock);
    if (core->loop && fut__loop_inherited(core->loop))
        rc = FUT_EBROKEN;
    else if (core->loop)
        rc = inbox_push(core->loop, cb, arg, owned, &h);
    pthread_mutex_unlock(&core->lock);
    if (rc)
        fail_handle(-rc, &h);
    return h;
}

/* Against fut_loop_free: the call counts itself in flight, then looks at `freed`; free
 * sets `freed`, then waits for the calls in flight (both sequentially consistent, so one
 * of the two sees the other). A call that saw `freed` clear is waited for; one that sees
 * it set touches nothing but the loop record, which free keeps (quarantined). */
fut_handle fut_loop_call_soon_threadsafe(fut_loop *loop, fut_callback cb, void *arg)
{
    if (!loop || !cb) {
        errno = EINVAL;
        return 0;
    }
    atomic_fetch_add(&loop->ts_in_flight, 1);
    fut_handle h = 0;
    if (atomic_load(&loop->freed))
        errno = ESHUTDOWN;
    else if (fut__loop_core_is_current(loop->core))
        /* From the loop's own thread the callback keeps its place in line with
         * call_soon's (one FIFO, as in asyncio): the inbox would run it after those
         * queued later. (Checked in flight: free clears loop->core.) */
        h = fut__loop_call_soon(loop, cb, arg, false);
    else
        h = fut__loop_post(loop->core, cb, arg, false);
    FUT_HAPPENS_BEFORE(&loop->ts_in_flight);  /* to fut_loop_free's wait (helgrind, DRD) */
    atomic_fetch_sub(&loop->ts_in_flight, 1);
    return h;
}

/* Moves the inbox into the ready queue, in arrival order. */
void fut__inbox_drain(fut_loop *loop)
{
    size_t n = atomic_load_explicit(&loop->inbox_count, memory_order_relaxed);
    /* reserve first, mostly outside the lock: a failure leaves the inbox for the next try */
    if (n == 0 || fut__ready_reserve(&loop->ready, n + FUT_READY_BLOCK) != 0)
        return;
    pthread_mutex_lock(&loop->core->lock);
    n = loop->inbox_n;
    if (fut__ready_reserve(&loop->ready, n) != 0) {
        pthread_mutex_unlock(&loop->core->lock);
        return;
    }
    uint32_t *taken = loop->inbox;
    size_t taken_cap = loop->inbox_cap;
    loop->inbox = loop->inbox_spare;
    loop->inbox_cap = loop->spare_cap;
    loop->inbox_n = 0;
    atomic_store(&loop->inbox_count, 0);
    pthread_mutex_unlock(&loop->core->lock);
    for (size_t k = 0; k < n; k++)
        fut__ready_push(&loop->ready, taken[k] | FUT_READY_TS);  /* reserved: cannot fail */
    loop->inbox_spare = taken;
    loop->spare_cap = taken_cap;
}

int fut__inbox_cancel(fut_loop *loop, fut_handle h)
{
    uint32_t i;
    pthread_mutex_lock(&loop->core->lock);
    int rc = fut__slots_find(&loop->ts_slots, h, &i);
    if (rc == 0)
        fut__slot(&loop->ts_slots, i)->state = FUT_SLOT_CANCELLED;
    pthread_mutex_unlock(&loop->core->lock);
    return rc;
}

bool fut__inbox_nonempty(void *loop)
{
    return atomic_load_explicit(&((fut_loop *)loop)->inbox_count, memory_order_relaxed) > 0;
}

bool fut__inbox_run(fut_loop *loop, uint32_t i)
{
    pthread_mutex_lock(&loop->core->lock);
    struct fut_slot *s = fut__slot(&loop->ts_slots, i);
    fut_callback cb = s->state == FUT_SLOT_READY ? s->cb : NULL;
    void *arg = s->arg;
    fut__slots_free(&loop->ts_slots, i);
    pthread_mutex_unlock(&loop->core->lock);
    if (cb)
        cb(arg);
    return cb != NULL;
}
