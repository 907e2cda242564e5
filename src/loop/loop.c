/* SPDX-License-Identifier: MIT */
/*
 * The event loop: a ready queue, a timer heap and epoll, driven by one thread.
 *
 * One iteration (run_once), as asyncio's BaseEventLoop._run_once:
 *   1. Move the inbox (callbacks queued from other threads) into the ready queue.
 *   2. Poll: epoll_wait for at most the time to the nearest timer; not at all if a
 *      callback is ready or the loop is stopping.
 *   3. Move the inbox again, then every due timer, into the ready queue.
 *   4. Run what was ready before the timers moved, then the fd callbacks, then the due
 *      timers: exactly those. Whatever they schedule waits for the next iteration, so a
 *      callback that reschedules itself cannot starve the poll.
 *
 * Handles name slots in a table (loop_handle.h); the ready queue and the timer heap hold
 * slot indexes. Cancelling marks the slot; the queue drops it when it comes out. Cancelled
 * timers are dropped from the top of the heap as they surface, and the heap is compacted
 * once they are the majority, so memory stays bounded by the live timers.
 *
 * Waking up: other threads append to the inbox under core->lock and write the eventfd
 * only while the loop sleeps (`sleeping`). The loop sets `sleeping` before it checks the
 * inbox one last time and polls; a poster counts its callback before it reads `sleeping`.
 * Both are sequentially consistent, so one of them sees the other: no wake-up is lost.
 */
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/annotate.h"
#include "core/clock.h"
#include "loop/loop.h"
#include "core/spin.h"

#define MAX_POLL_MS (86400 * 1000)     /* sleep at most a day at a time, as asyncio */
#define COMPACT_MIN 64                 /* cancelled timers tolerated before compacting */

/* The loop this thread is running, if any: tells the loop thread from the others. */
static _Thread_local fut_loop *current_loop __attribute__((tls_model("initial-exec")));

static void fail_handle(int err, fut_handle *h)
{
    errno = err;
    *h = 0;
}

/* ---- scheduling --------------------------------------------------------------------- */

fut_handle fut__loop_call_soon(fut_loop *loop, fut_callback cb, void *arg, bool owned)
{
    fut_handle h = 0;
    uint32_t i = fut__slots_alloc(&loop->slots, cb, arg, FUT_SLOT_READY, owned, &h);
    if (i == FUT_SLOT_NONE) {
        fail_handle(ENOMEM, &h);
    } else if (fut__ready_push(&loop->ready, i) != 0) {
        fut__slots_free(&loop->slots, i);
        fail_handle(ENOMEM, &h);
    }
    return h;
}

static fut_handle call_at(fut_loop *loop, double when, fut_callback cb, void *arg, bool owned)
{
    fut_handle h = 0;
    uint32_t i = fut__slots_alloc(&loop->slots, cb, arg, FUT_SLOT_TIMER, owned, &h);
    if (i == FUT_SLOT_NONE) {
        fail_handle(ENOMEM, &h);
        return h;
    }
    struct fut_timer t = { .when = when, .seq = loop->timer_seq++, .slot = i };
    if (fut__timer_heap_push(&loop->timers, t) != 0) {
        fut__slots_free(&loop->slots, i);
        fail_handle(ENOMEM, &h);
    }
    return h;
}

fut_handle fut_loop_call_soon(fut_loop *loop, fut_callback cb, void *arg)
{
    if (!loop || !cb) {
        errno = EINVAL;
        return 0;
    }
    return fut__loop_call_soon(loop, cb, arg, false);
}

fut_handle fut_loop_call_at(fut_loop *loop, double when, fut_callback cb, void *arg)
{
    if (!loop || !cb || isnan(when)) {
        errno = EINVAL;
        return 0;
    }
    return call_at(loop, when, cb, arg, false);
}

fut_handle fut_loop_call_later(fut_loop *loop, double delay, fut_callback cb, void *arg)
{
    if (!loop || !cb || isnan(delay)) {
        errno = EINVAL;
        return 0;
    }
    /* not clamped: call_later(-2) runs before call_later(-1), as in asyncio */
    return call_at(loop, fut__now() + delay, cb, arg, false);
}

fut_handle fut__loop_call_soon_owned(fut_loop *loop, fut_callback cb, void *arg)
{
    return fut__loop_call_soon(loop, cb, arg, true);
}

fut_handle fut__loop_call_later_owned(fut_loop *loop, double delay, fut_callback cb, void *arg)
{
    return call_at(loop, fut__now() + delay, cb, arg, true);
}

/* ---- cancelling --------------------------------------------------------------------- */

static bool keep_timer(void *ctx, const struct fut_timer *t)
{
    struct fut_slot_table *slots = ctx;
    if (fut__slot(slots, t->slot)->state != FUT_SLOT_CANCELLED)
        return true;
    fut__slots_free(slots, t->slot);
    return false;
}

static void cancel_timer(fut_loop *loop, struct fut_slot *s)
{
    s->state = FUT_SLOT_CANCELLED;
    loop->timers_cancelled++;
    if (loop->timers_cancelled > COMPACT_MIN && loop->timers_cancelled * 2 > loop->timers.n) {
        fut__timer_heap_filter(&loop->timers, keep_timer, &loop->slots);
        loop->timers_cancelled = 0;
    }
}

int fut_loop_cancel(fut_loop *loop, fut_handle h)
{
    if (!loop || h == 0)
        return FUT_EINVAL;
    if (h & FUT_LOOP_TS_TAG)
        return fut__inbox_cancel(loop, h);
    uint32_t i;
    int rc = fut__slots_find(&loop->slots, h, &i);
    if (rc)
        return rc;
    struct fut_slot *s = fut__slot(&loop->slots, i);
    if (s->state == FUT_SLOT_TIMER)
        cancel_timer(loop, s);
    else
        s->state = FUT_SLOT_CANCELLED;  /* the ready queue drops it */
    return 0;
}

/* ---- one iteration ------------------------------------------------------------------ */

static void drop_cancelled_timers(fut_loop *loop)
{
    const struct fut_timer *t;
    while ((t = fut__timer_heap_top(&loop->timers)) &&
           fut__slot(&loop->slots, t->slot)->state == FUT_SLOT_CANCELLED) {
        fut__slots_free(&loop->slots, fut__timer_heap_pop(&loop->timers).slot);
        loop->timers_cancelled--;
    }
}

/* Seconds to the next live timer, 0 when one is due, -1 when none is scheduled. */
static double next_timer_delay(fut_loop *loop)
{
    drop_cancelled_timers(loop);
    const struct fut_timer *t = fut__timer_heap_top(&loop->timers);
    if (!t)
        return -1;
    double delay = t->when - fut__now();
    return delay > 0 ? delay : 0;
}

static int poll_timeout_ms(fut_loop *loop)
{
    if (loop->ready.n || atomic_load_explicit(&loop->stopping, memory_order_relaxed))
        return 0;
    double delay = next_timer_delay(loop);
    if (delay <= 0)
        return (int)delay;  /* -1: no timer, 0: one is due */
    /* rounded up: waking early would only spin through an empty iteration */
    return delay * 1e3 >= MAX_POLL_MS ? MAX_POLL_MS : (int)ceil(delay * 1e3);
}

/* Waits for fds, the timeout or the inbox; returns the number of fd events. */
static int poll_io(fut_loop *loop, int timeout)
{
    /* An executor's completion due from another thread is usually microseconds away:
     * watching the inbox that long is far cheaper than sleeping and being woken. */
    if (timeout != 0 && atomic_load(&loop->core->bridges) > 0 &&
        fut__spin_until(fut__inbox_nonempty, loop, timeout < 0 ? FUT_FOREVER : timeout / 1e3))
        timeout = 0;
    if (timeout != 0) {
        atomic_store(&loop->sleeping, true);
        if (atomic_load(&loop->inbox_count) > 0)
            timeout = 0;
    } else if (loop->n_watched == 0 && !atomic_load_explicit(&loop->embedded,
                                                              memory_order_relaxed)) {
        /* nothing to poll and no time to wait: skip the system call (embedded, the poll
         * also resets the eventfd, which an outer loop watches) */
        return 0;
    }
    int n = fut__poller_wait(&loop->poller, loop->events, timeout);
    atomic_store(&loop->sleeping, false);
    return n;  /* 0 on EINTR: an empty iteration */
}

static void move_due_timers(fut_loop *loop)
{
    if (!fut__timer_heap_top(&loop->timers))
        return;  /* no clock read: an iteration of ready callbacks (tasks) only */
    double now = fut__now();
    const struct fut_timer *t;
    while ((t = fut__timer_heap_top(&loop->timers)) && t->when <= now) {
        struct fut_slot *s = fut__slot(&loop->slots, t->slot);
        if (s->state == FUT_SLOT_CANCELLED) {
            fut__slots_free(&loop->slots, fut__timer_heap_pop(&loop->timers).slot);
            loop->timers_cancelled--;
            continue;
        }
        if (fut__ready_push(&loop->ready, t->slot) != 0)
            return;  /* out of memory: the timer stays due for the next iteration */
        s->state = FUT_SLOT_READY;
        fut__timer_heap_pop(&loop->timers);
    }
}

/* The slot is freed before the call: cancelling the handle from inside says ENOENT.
 * Returns whether a callback ran (a cancelled one does not). */
static bool run_entry(fut_loop *loop, uint32_t entry)
{
    if (entry & FUT_READY_TS)
        return fut__inbox_run(loop, entry & ~FUT_READY_TS);
    struct fut_slot *s = fut__slot(&loop->slots, entry);
    fut_callback cb = s->state == FUT_SLOT_READY ? s->cb : NULL;
    void *arg = s->arg;
    fut__slots_free(&loop->slots, entry);
    if (cb)
        cb(arg);
    return cb != NULL;
}

/* One iteration, polling at most max_ms (-1: no cap); returns the callbacks it ran. */
static int run_once(fut_loop *loop, int max_ms)
{
    fut__inbox_drain(loop);
    int timeout = poll_timeout_ms(loop);
    if (max_ms >= 0 && (timeout < 0 || timeout > max_ms))
        timeout = max_ms;
    int n_events = poll_io(loop, timeout);
    fut__inbox_drain(loop);
    size_t ready_before = loop->ready.n;
    move_due_timers(loop);
    size_t due = loop->ready.n - ready_before;
    int ran = 0;
    while (ready_before--)
        ran += run_entry(loop, fut__ready_pop(&loop->ready));
    ran += fut__loop_run_io_events(loop, n_events);
    while (due--)
        ran += run_entry(loop, fut__ready_pop(&loop->ready));
    return ran;
}

/* ---- running ------------------------------------------------------------------------ */

/* Claims the loop for this thread: false if it already runs (nested, or another thread). */
static bool begin_run(fut_loop *loop)
{
    bool idle = false;
    if (!atomic_compare_exchange_strong(&loop->running, &idle, true))
        return false;
    loop->outer = current_loop;
    current_loop = loop;
    return true;
}

static void end_run(fut_loop *loop)
{
    atomic_store_explicit(&loop->stopping, false, memory_order_relaxed);
    current_loop = loop->outer;
    atomic_store(&loop->running, false);
}

static void run_until_stopped(fut_loop *loop)
{
    do
        run_once(loop, -1);
    while (!atomic_load_explicit(&loop->stopping, memory_order_relaxed));
}

int fut_loop_run_forever(fut_loop *loop)
{
    if (!loop)
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    if (!begin_run(loop))
        return FUT_ESTATE;
    run_until_stopped(loop);
    end_run(loop);
    return 0;
}

int fut_loop_run_until_complete(fut_loop *loop, fut_future *f)
{
    if (!loop || !f)
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    if (!begin_run(loop))
        return FUT_ESTATE;
    int rc;
    fut_future *target = fut__loop_wrap(loop, f);  /* foreign futures: a loop future */
    if (!target) {
        rc = -errno;
        goto out;
    }
    /* Runs one iteration after f is done, as asyncio; `until` tells a stale callback, left
     * on f by an earlier run that was stopped first, from this run's. */
    rc = fut_add_done_callback(target, fut__loop_stop_when_done, NULL);
    if (rc == 0) {
        loop->until = target;
        run_until_stopped(loop);
        loop->until = NULL;
        rc = fut_done(target) ? 0 : FUT_ESTATE;
    }
    fut_future_unref(target);
out:
    end_run(loop);
    return rc;
}

void fut_loop_stop(fut_loop *loop)
{
    if (loop)
        atomic_store_explicit(&loop->stopping, true, memory_order_relaxed);
}

bool fut_loop_is_running(fut_loop *loop)
{
    return loop && atomic_load(&loop->running);
}

double fut_loop_time(fut_loop *loop)
{
    return loop ? fut__now() : -1;
}

/* ---- embedding: an outer loop drives this one (libuv's backend fd and timeout) ------- */

int fut_loop_fd(fut_loop *loop)
{
    if (!loop)
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    /* from now on a post writes the eventfd even while we do not sleep in epoll */
    atomic_store(&loop->embedded, true);
    return loop->poller.epfd;
}

double fut_loop_timeout(fut_loop *loop)
{
    if (!loop)
        return 0;
    if (loop->ready.n || atomic_load(&loop->inbox_count) > 0)
        return 0;
    return next_timer_delay(loop);
}

int fut_loop_run_once(fut_loop *loop, double timeout)
{
    if (!loop || isnan(timeout))
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    if (!begin_run(loop))
        return FUT_ESTATE;
    int max_ms = -1;
    if (timeout >= 0)  /* rounded up, as poll_timeout_ms: 1 us waits 1 ms, not 0 */
        max_ms = timeout * 1e3 >= MAX_POLL_MS ? MAX_POLL_MS : (int)ceil(timeout * 1e3);
    int ran = run_once(loop, max_ms);
    end_run(loop);
    return ran;
}

fut_loop *fut_loop_current(void)
{
    return current_loop;
}

bool fut__loop_core_is_current(const struct fut_loop_core *core)
{
    return current_loop && current_loop->core == core;
}

/* ---- creating and freeing ----------------------------------------------------------- */

static struct fut_loop_core *core_new(fut_loop *loop)
{
    struct fut_loop_core *core = calloc(1, sizeof *core);
    if (!core)
        return NULL;
    atomic_init(&core->refs, 1);
    core->dispatcher = (struct fut_callback_dispatcher){
        .dispatch = fut__loop_dispatch,
        .release = fut__loop_dispatch_release,
        .context = core,
    };
    pthread_mutex_init(&core->lock, NULL);
    core->loop = loop;
    return core;
}

void fut__loop_core_release(struct fut_loop_core *core)
{
    if (atomic_fetch_sub_explicit(&core->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&core->lock);
    free(core);
}

static int open_fds(fut_loop *loop)
{
    int rc = fut__poller_open(&loop->poller, FUT_LOOP_EVENTS);
    if (rc)
        return rc;
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0)
        return -errno;
    return fut__poller_set(&loop->poller, loop->wake_fd, 0, FUT_POLL_READABLE);
}

static void close_fds(fut_loop *loop)
{
    fut__poller_close(&loop->poller);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
}

fut_loop *fut_loop_new(void)
{
    fut_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        errno = ENOMEM;
        return NULL;
    }
    loop->poller.epfd = loop->wake_fd = -1;
    loop->fork_generation = fut__fork_generation();
    static atomic_uint next_loop_id;
    uint32_t loop_id = atomic_fetch_add(&next_loop_id, 1) % (FUT_LOOP_ID_LIMIT - 1) + 1;
    fut__slots_init(&loop->slots, 0, loop_id);
    fut__slots_init(&loop->ts_slots, FUT_LOOP_TS_TAG, loop_id);
    int rc = open_fds(loop);
    if (rc)
        goto fail;
    if (!(loop->core = core_new(loop))) {
        rc = FUT_ENOMEM;
        goto fail;
    }
    return loop;
fail:
    close_fds(loop);
    free(loop);
    errno = -rc;
    return NULL;
}

/* Takes the next queued callback (ready queue, then heap) off the loop: false when none.
 * Its slot is freed; *cb is NULL when it was cancelled or is not the library's own. */
static bool take_pending(fut_loop *loop, fut_callback *cb, void **arg)
{
    struct fut_slot_table *table = &loop->slots;
    uint32_t i;
    fut__inbox_drain(loop);
    if (loop->ready.n) {
        i = fut__ready_pop(&loop->ready);
        if (i & FUT_READY_TS) {
            table = &loop->ts_slots;  /* no poster can reach a dead loop: no lock needed */
            i &= ~FUT_READY_TS;
        }
    } else if (loop->timers.n) {
        i = fut__timer_heap_pop(&loop->timers).slot;
    } else {
        return false;
    }
    struct fut_slot *s = fut__slot(table, i);
    bool live = s->state == FUT_SLOT_READY || s->state == FUT_SLOT_TIMER;
    *cb = live && s->owned ? s->cb : NULL;
    *arg = s->arg;
    fut__slots_free(table, i);
    return true;
}

/*
 * Drops every pending callback, except the library's own that own something (a
 * reference, a callback list): those run, and see that the loop is gone. Running them may
 * complete futures, whose callbacks now run inline, and which may schedule more: hence
 * the loop until nothing is left.
 */
static void drop_pending(fut_loop *loop)
{
    fut_callback cb;
    void *arg;
    while (take_pending(loop, &cb, &arg))
        if (cb)
            cb(arg);
}

/*
 * Freed loops' records stay allocated for a while (the last QUARANTINE of them, in a FIFO):
 * a fut_loop_call_soon_threadsafe that races fut_loop_free reads `freed` from memory that
 * is still there and returns ESHUTDOWN. The records are emptied (everything they pointed
 * to is freed); a record is never reused for another loop, so a late call cannot cross
 * into a new loop. Calls that begin after fut_loop_free returned remain undefined.
 */
#define QUARANTINE 64
static pthread_mutex_t quarantine_lock = PTHREAD_MUTEX_INITIALIZER;
static fut_loop *quarantine[QUARANTINE];
static size_t quarantine_next;

static void quarantine_loop(fut_loop *loop)
{
    pthread_mutex_lock(&quarantine_lock);
    fut_loop *oldest = quarantine[quarantine_next];
    quarantine[quarantine_next] = loop;
    quarantine_next = (quarantine_next + 1) % QUARANTINE;
    pthread_mutex_unlock(&quarantine_lock);
    if (oldest) {
        while (atomic_load(&oldest->ts_in_flight) > 0)
            sched_yield();
        FUT_HAPPENS_AFTER(&oldest->ts_in_flight);
        free(oldest);
    }
}

void fut_loop_free(fut_loop *loop)
{
    if (!loop)
        return;
    if (fut__loop_inherited(loop)) {
        /* a forked child: whoever ran it or held its lock stayed in the parent */
        pthread_mutex_init(&loop->core->lock, NULL);
        atomic_store(&loop->running, false);
    }
    if (atomic_load(&loop->running))
        return;  /* freeing a running loop would pull it from under its own thread */
    if (loop->tasks_close && !fut__loop_inherited(loop))
        loop->tasks_close(loop);  /* cancels and runs every unfinished task (task/) */
    atomic_store(&loop->freed, true);
    while (atomic_load(&loop->ts_in_flight) > 0)
        sched_yield();  /* a call that saw `freed` clear: it posts (or fails) in moments */
    FUT_HAPPENS_AFTER(&loop->ts_in_flight);  /* every such call's accesses came before */
    pthread_mutex_lock(&loop->core->lock);
    loop->core->loop = NULL;  /* from now on its futures run their callbacks inline */
    pthread_mutex_unlock(&loop->core->lock);
    fut__loop_free_executor(loop);
    fut__loop_signals_free(loop);
    drop_pending(loop);
    close_fds(loop);
    fut__slots_destroy(&loop->slots);
    fut__slots_destroy(&loop->ts_slots);
    fut__timer_heap_destroy(&loop->timers);
    fut__ready_destroy(&loop->ready);
    free(loop->inbox);
    free(loop->inbox_spare);
    free(loop->io);
    fut__loop_core_release(loop->core);
    loop->core = NULL;
    quarantine_loop(loop);
}
