/* SPDX-License-Identifier: MIT */
/*
 * Internal: the event loop, shared by loop.c (scheduling, timers, fds, running) and
 * loop_future.c (loop futures and the bridges to executors).
 *
 * Threads. Everything in struct fut_loop belongs to the loop thread, except the inbox,
 * which any thread may append to under core->lock (call_soon_threadsafe, completions of
 * loop futures on other threads). The loop moves the inbox into its ready queue at the
 * start of each iteration and after waking up.
 *
 * Lifetime. A loop future must stay usable after fut_loop_free, so it does not point at
 * the loop but at its core: a small refcounted object holding the dispatcher and, under
 * its lock, the loop pointer, which fut_loop_free clears. The loop and every loop future
 * own one reference each (a future's is released through the dispatcher's release hook).
 * Once the loop is gone a loop future behaves like a plain one: its callbacks run inline.
 */
#ifndef FUT_LOOP_H
#define FUT_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include "core/fork.h"
#include "core/future.h"
#include "core/poller.h"
#include "loop/handle.h"
#include "loop/ready.h"
#include "loop/timer_heap.h"

#define FUT_LOOP_TS_TAG (1ULL << 63)   /* handles of the threadsafe table */
#define FUT_READY_TS    (1U << 31)     /* a ready-queue entry naming a threadsafe slot */
#define FUT_LOOP_EVENTS 256

struct fut_loop_core {
    atomic_uint refs;
    struct fut_callback_dispatcher dispatcher;
    pthread_mutex_t lock;
    fut_loop *loop;                    /* under lock; NULL once the loop is freed */
    atomic_size_t bridges;             /* wrapped futures whose outcome has not arrived */
};

/* Readiness callbacks for one fd; both directions share one epoll registration. */
struct fut_io {
    fut_callback read_cb, write_cb;
    void *read_arg, *write_arg;
    unsigned mask;                     /* FUT_POLL_READABLE | WRITABLE watched, 0: none */
};

struct fut_loop {
    struct fut_loop_core *core;
    /* fut_loop_call_soon_threadsafe against fut_loop_free (see loop.c, freeing) */
    atomic_int ts_in_flight;           /* threadsafe calls between their check and return */
    atomic_bool freed;                 /* fut_loop_free began: threadsafe calls refuse */
    struct fut_slot_table slots;       /* call_soon / call_later handles */
    struct fut_ready ready;
    struct fut_timer_heap timers;
    uint64_t timer_seq;
    size_t timers_cancelled;           /* cancelled entries still in the heap */
    atomic_bool running;
    atomic_bool stopping;

    struct fut_poller poller;
    int wake_fd;                       /* the eventfd that interrupts a wait */
    struct fut_io *io;                 /* indexed by fd */
    size_t n_io;
    size_t n_watched;                  /* fds watched (not counting wake_fd) */
    struct fut_poll_event events[FUT_LOOP_EVENTS];

    /* The inbox: threadsafe callbacks in arrival order, under core->lock. */
    struct fut_slot_table ts_slots;
    uint32_t *inbox, *inbox_spare;
    size_t inbox_n, inbox_cap, spare_cap;
    atomic_size_t inbox_count;         /* inbox_n, for lock-free peeking */
    atomic_bool sleeping;              /* in epoll_wait, or about to be: wake through the eventfd */

    fut_loop *outer;                   /* the loop this thread ran before this one, if any */
    fut_future *until;                 /* run_until_complete's future, or NULL */
    fut_executor *default_executor;    /* fut_loop_set_default_executor's; not ours */
    fut_executor *own_executor;        /* created on first use, freed with the loop */

    /* Embedding (fut_loop_fd): an outer loop polls our epoll fd instead of us sleeping in
     * it, so posters must write the eventfd whether we sleep or not. */
    atomic_bool embedded;
    unsigned fork_generation;          /* made in (core/fork.h): inherited loops never run */
    struct fut_loop_signals *signals;  /* signal.c; NULL until a handler is added */
    /* task/: the loop's coroutine tasks, NULL until the first one. fut_loop_free calls
     * tasks_close first, while the loop still works: it cancels every unfinished task,
     * runs them to their end and frees what they used. */
    struct fut_loop_tasks *tasks;
    void (*tasks_close)(fut_loop *loop);
};

/* loop.c */
/* Queues cb(arg) from any thread; fails with errno ESHUTDOWN once the loop is freed.
 * `owned`: see fut__loop_call_soon_owned. */
fut_handle fut__loop_post(struct fut_loop_core *core, fut_callback cb, void *arg, bool owned);
/* call_soon and call_later for the library's own callbacks whose argument owns something
 * (a reference, a callback list): fut_loop_free runs them instead of dropping them, and
 * they must then behave (the loop is gone: fut__loop_core_is_current is false). */
fut_handle fut__loop_call_soon_owned(fut_loop *loop, fut_callback cb, void *arg);
fut_handle fut__loop_call_later_owned(fut_loop *loop, double delay, fut_callback cb, void *arg);
/* True in the thread running the loop of `core`, while it runs. */
bool fut__loop_core_is_current(const struct fut_loop_core *core);
void fut__loop_core_release(struct fut_loop_core *core);

/* A loop inherited through fork(): its epoll set is shared with the parent, so it must
 * neither wait in it (stealing the parent's events) nor change it. */
static inline bool fut__loop_inherited(const fut_loop *loop)
{
    return fut__inherited(loop->fork_generation);
}

/* loop.c: call_soon; `owned` as for fut__loop_call_soon_owned */
fut_handle fut__loop_call_soon(fut_loop *loop, fut_callback cb, void *arg, bool owned);

/* inbox.c (the loop thread, except where said; fut__loop_post above lives there too) */
/* Moves the inbox into the ready queue, in arrival order. */
void fut__inbox_drain(fut_loop *loop);
/* Cancels a threadsafe handle: 0, FUT_ENOENT or FUT_EINVAL (any thread). */
int  fut__inbox_cancel(fut_loop *loop, fut_handle h);
/* Runs the threadsafe slot i; whether a callback ran (a cancelled one does not). */
bool fut__inbox_run(fut_loop *loop, uint32_t i);
/* Whether the inbox holds anything: a check for fut__spin_until (lock-free). */
bool fut__inbox_nonempty(void *loop);

/* io.c: runs the fd callbacks of the n events of the last poll; returns how many ran */
int fut__loop_run_io_events(fut_loop *loop, int n);

/* signal.c: removes the loop's signal handlers (restoring dispositions), frees their state */
void fut__loop_signals_free(fut_loop *loop);

/* loop_future.c */
void fut__loop_dispatch(void *core, fut_future *f, struct fut_list callbacks);
void fut__loop_dispatch_release(void *core);
/* A loop future sharing f's outcome (f itself when it is one of this loop's). */
fut_future *fut__loop_wrap(fut_loop *loop, fut_future *f);
/* run_until_complete's done callback: stops the loop if f is the future it waits for. */
void fut__loop_stop_when_done(fut_future *f, void *unused);
/* fut_loop_free: cancels queued tasks of the loop's own executor, waits, frees it. */
void fut__loop_free_executor(fut_loop *loop);

#endif
