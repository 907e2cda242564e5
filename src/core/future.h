/* Internal: the one future implementation shared by every executor and the loop. */
#ifndef FUT_FUTURE_H
#define FUT_FUTURE_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/annotate.h"
#include "core/fork.h"
#include "core/list.h"
#include "futures.h"

enum fut_state {
    FUT_STATE_PENDING,
    FUT_STATE_RUNNING,
    FUT_STATE_CANCELLED,
    FUT_STATE_FINISHED,
};

/* A done callback, queued in its future. `inline_always` marks the library's own
 * callbacks that must run in the completing thread even on a loop future (they propagate
 * a cancellation, which must not wait for the loop). */
struct fut_callback_node {
    struct fut_list_node node;
    fut_done_fn fn;
    void *arg;
    bool inline_always;
};

struct fut_waiter_link;
struct fut_executor_counters;

/*
 * Where a future's done callbacks run. NULL: inline, in the thread that completes the
 * future (or adds a callback to a done one). A loop future points at its loop's
 * dispatcher, which takes ownership of the list and runs it on the loop thread.
 */
struct fut_callback_dispatcher {
    void (*dispatch)(void *context, fut_future *f, struct fut_list callbacks);
    /* Optional: called once as a future using this dispatcher is freed (the loop keeps its
     * dispatcher alive, for futures that outlive the loop, by counting them). */
    void (*release)(void *context);
    void *context;
};

/* What an executor keeps in a future it queues: the future is the queue node, so a
 * submit allocates nothing else. */
struct fut_task_part {
    struct fut_list_node node;     /* the executor's queue */
    fut_fn fn;
    void *arg;                     /* the value, or the private copy when arg_copied */
    size_t arg_len;                /* bytes of the copy */
    bool arg_copied;               /* fut_submit_copy: arg is ours, freed with the future */
    bool requeued;                 /* process pools: handed to a worker that died before
                                    * starting it, so RUNNING already: goes to the next one */
    uint32_t items;                /* fut_executor_get_stats: tasks this future stands for
                                    * (a fut_map chunk: its items) */
    struct fut_executor_counters *counters;  /* the executor's totals; NULL: not counted */
};

/* What the event loop keeps in its futures. */
struct fut_loop_part {
    /* A future whose result this one shares (a bridge to an executor's future, whose
     * bytes result both expose): one reference, released when this future is freed. */
    fut_future *source;
    void *state;                   /* a sleep's or a gather's state, freed with the future */
};

/* The future cache's links between dead futures (future_cache.c). */
struct fut_cache_part {
    fut_future *next;              /* the next future of the chain */
    fut_future *next_chain;        /* chain heads: the next chain of the depot */
    size_t length;                 /* chain heads: futures in this chain */
};

enum fut_part_kind {
    FUT_PART_NONE,                 /* a plain future (fut_future_new) */
    FUT_PART_TASK,                 /* submitted to an executor */
    FUT_PART_LOOP,                 /* a loop future */
};

struct fut_future {
    /* the core: state, outcome, callbacks, waiters */
    atomic_uint refs;
    /* state is written under lock (or by a compare-and-swap from PENDING) and may be read
     * without it (atomic load). */
    _Atomic int state;
    atomic_int lock;               /* see future.c: a 4-byte lock, not a pthread_mutex_t */
    int exception;                 /* 0: none */
    uint8_t part_kind;             /* enum fut_part_kind: which member of `part` is live */
    bool cancel_notified;          /* set_running_or_notify_cancel saw the cancel */
    bool result_is_bytes;          /* result is a fut_bytes buffer the future owns */
    uint8_t fork_generation;       /* low bits of core/fork.h's generation it was made in */
    void *result;
    char *message;
    struct fut_list callbacks;     /* of struct fut_callback_node */
    struct fut_waiter_link *waiters;
    const struct fut_callback_dispatcher *dispatcher;

    /* what its user keeps in it */
    union {
        struct fut_task_part task;
        struct fut_loop_part loop;
        struct fut_cache_part cache;
    } part;
};

/* The future whose task part is `node` (an executor's queue entry). */
static inline fut_future *fut__task_of(struct fut_list_node *node)
{
    return fut_container_of(node, fut_future, part.task.node);
}

fut_future *fut__future_alloc(void);

/* A task's outcome, stored by whoever ran it. Take ownership of message and of a bytes result. */
int fut__future_finish(fut_future *f, void *result, bool result_is_bytes, int code, char *message);

/* Waiters (waiter.c) hook into futures through these, under f->lock. */
bool fut__future_attach_waiter(fut_future *f, struct fut_waiter_link *link);
void fut__future_detach_waiter(fut_future *f, struct fut_waiter_link *link);

/* fut_add_done_callback, for the library's own callbacks: inline_always (see above). */
int fut__future_add_callback(fut_future *f, fut_done_fn cb, void *arg, bool inline_always);

/* Whether f is done (cancelled or finished): a check for fut__spin_until. */
bool fut__future_is_done(void *f);

/* An acquire: whoever sees a state also sees what was written before it was set (the
 * annotation tells valgrind's thread checkers, core/annotate.h). */
static inline int fut__future_state(const fut_future *f)
{
    int state = atomic_load_explicit(&((fut_future *)f)->state, memory_order_acquire);
    FUT_HAPPENS_AFTER(&f->state);
    return state;
}

static inline bool fut__state_is_done(int state)
{
    return state == FUT_STATE_CANCELLED || state == FUT_STATE_FINISHED;
}

/* A pending task or loop future inherited through a fork: nothing in this process will
 * ever complete it (its executor's threads or its loop stayed in the parent), so waiting
 * on it fails with FUT_EBROKEN. Plain futures (fut_future_new) stay the caller's. */
static inline bool fut__future_orphaned(const fut_future *f)
{
    return (f->part_kind == FUT_PART_TASK || f->part_kind == FUT_PART_LOOP) &&
           fut__inherited8(f->fork_generation) && !fut__state_is_done(fut__future_state(f));
}

#endif
