/* Internal: the one future implementation shared by every executor and the loop. */
#ifndef FUT_FUTURE_H
#define FUT_FUTURE_H

#include <pthread.h>
#include <stdatomic.h>

#include "futures.h"

enum fut_state {
    FUT_STATE_PENDING,
    FUT_STATE_RUNNING,
    FUT_STATE_CANCELLED,
    FUT_STATE_FINISHED,
};

struct fut_callback_node {
    fut_done_fn fn;
    void *arg;
    struct fut_callback_node *next;
};

struct fut_waiter_link;

/*
 * Where a future's done callbacks run. NULL: inline, in the thread that completes the
 * future (or adds a callback to a done one). A loop future points at its loop's
 * dispatcher, which takes ownership of the list and runs it on the loop thread.
 */
struct fut_callback_dispatcher {
    void (*dispatch)(void *context, fut_future *f, struct fut_callback_node *callbacks);
    /* Optional: called once as a future using this dispatcher is freed (the loop keeps its
     * dispatcher alive, for futures that outlive the loop, by counting them). */
    void (*release)(void *context);
    void *context;
};

struct fut_future {
    atomic_uint refs;
    /* state is written under lock (or by a compare-and-swap from PENDING) and may be read
     * without it (atomic load). */
    _Atomic int state;
    atomic_int lock;               /* see future.c: a 4-byte lock, not a pthread_mutex_t */
    int exception;                 /* 0: none */
    bool cancel_notified;          /* set_running_or_notify_cancel saw the cancel */
    bool result_is_bytes;          /* result is a fut_bytes buffer the future owns */
    bool requeued;                 /* process pools: handed to a worker that died before
                                    * starting it, so RUNNING already: goes to the next one */
    void *result;
    char *message;
    struct fut_callback_node *callbacks, *callbacks_tail;
    struct fut_waiter_link *waiters;
    const struct fut_callback_dispatcher *dispatcher;
    /* A future whose result this one shares (a loop future wrapping an executor's, whose
     * bytes result both expose): one reference, released when this future is freed. */
    fut_future *source;

    /* The task, for executors. The future is the queue node: no allocation per task. */
    fut_future *next;
    fut_fn fn;
    void *arg;
    void *arg_copy;                /* fut_submit_copy's private copy, freed with the future */
    size_t arg_len;
};

fut_future *fut__future_alloc(void);

/* A task's outcome, stored by whoever ran it. Take ownership of message and of a bytes result. */
int fut__future_finish(fut_future *f, void *result, bool result_is_bytes, int code, char *message);

/* Waiters (waiter.c) hook into futures through these, under f->lock. */
bool fut__future_attach_waiter(fut_future *f, struct fut_waiter_link *link);
void fut__future_detach_waiter(fut_future *f, struct fut_waiter_link *link);

static inline int fut__future_state(const fut_future *f)
{
    return atomic_load_explicit(&((fut_future *)f)->state, memory_order_acquire);
}

static inline bool fut__state_is_done(int state)
{
    return state == FUT_STATE_CANCELLED || state == FUT_STATE_FINISHED;
}

#endif
