/* SPDX-License-Identifier: MIT */
/* Internal: the one future implementation shared by every executor and the loop. */
#ifndef FUT_FUTURE_H
#define FUT_FUTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

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

/* What a future keeps for whoever waits on it: one stack, newest first, of done callbacks
 * and waiters' links together, so that the future spends one pointer on both. Waiters are
 * told as the future becomes done, under its lock; callbacks run after it, oldest first. */
struct fut_watcher {
    struct fut_list_node node;     /* the future's stack; a callback's list once taken */
    bool is_waiter;                /* a struct fut_waiter_link, else a fut_callback_node */
};

/* A done callback, queued in its future. `inline_always` marks the library's own
 * callbacks that must run in the completing thread even on a loop future (they propagate
 * a cancellation, which must not wait for the loop). */
struct fut_callback_node {
    struct fut_watcher watcher;
    bool inline_always;
    fut_done_fn fn;
    void *arg;
};

/* The callback node whose list node is `n` (a list handed to a dispatcher). */
static inline struct fut_callback_node *fut__callback_of(struct fut_list_node *n)
{
    return fut_container_of(n, struct fut_callback_node, watcher.node);
}

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

/* A fut_submit_copy copy: FUT_ARG_COPY_HEADER bytes in front of the bytes the task sees
 * (which keep malloc's alignment): its length (a size_t), then the items it stands for in
 * fut_executor_get_stats (a uint32_t: a fut_map chunk's items; 1 otherwise). */
#define FUT_ARG_COPY_HEADER 16
#define FUT_ARG_COPY_ITEMS 8       /* offset of the item count in the header */

/* What an executor keeps in a future it queues: the future is the queue node, so a
 * submit allocates nothing else. A fut_submit_copy argument is a private copy, freed with
 * the future; its length and item count sit in front of it (fut__task_arg_len,
 * fut__task_items).
 *
 * The statistics cost the future no field: an executor counts the state changes its own
 * threads make (a thread pool's workers, each in its own tally), and while a task is
 * pending or running its result word, which holds nothing yet, points at the executor's
 * shared counters, for changes made by anyone else (fut_cancel from any thread, a
 * dispatcher's fut_set_exception; see core/executor.h). */
struct fut_task_part {
    struct fut_list_node node;     /* the executor's queue */
    fut_fn fn;
    void *arg;                     /* the value, or the private copy (FUT_FLAG_ARG_COPIED) */
};

/* What the event loop keeps in its futures. */
struct fut_loop_part {
    /* where its done callbacks run: the loop (see struct fut_callback_dispatcher) */
    const struct fut_callback_dispatcher *dispatcher;
    void *state;                   /* a sleep's, a gather's or a task's state, freed with it */
    union {                        /* a bridge has no cancel hook, a task no source */
        /* A future whose result this one shares (a bridge to an executor's future, whose
         * bytes result both expose): one reference, released when this future is freed. */
        fut_future *source;
        /* FUT_FLAG_CANCEL_HOOK (coroutine tasks): fut_cancel calls it in place of
         * cancelling and returns what it returns. Set before the future is shared, never
         * changed; called in any thread, with no lock held. The hook cancels for real
         * with fut__future_cancel. */
        bool (*cancel)(fut_future *f);
    };
};

/* The allocator's link between free futures (future_cache.c). */
struct fut_cache_part {
    fut_future *next;
};

enum fut_part_kind {
    FUT_PART_NONE,                 /* a plain future (fut_future_new) */
    FUT_PART_TASK,                 /* submitted to an executor */
    FUT_PART_LOOP,                 /* a loop future */
};

/* Flags of a future (fut__future_flag). Each is set once, by an atomic or, so that bits set
 * by different threads (a process pool's dispatcher, a completing thread) never race. */
enum {
    FUT_FLAG_CANCEL_NOTIFIED = 1,  /* set_running_or_notify_cancel saw the cancel */
    FUT_FLAG_RESULT_IS_BYTES = 2,  /* result is a fut_bytes buffer the future owns */
    FUT_FLAG_ARG_COPIED = 4,       /* task part: arg is our copy (fut_submit_copy) */
    FUT_FLAG_REQUEUED = 8,         /* task part, process pools: handed to a worker that died
                                    * before starting it, so RUNNING already: goes to the
                                    * next one */
    FUT_FLAG_CANCEL_HOOK = 16,     /* loop part: `cancel` is set (not `source`) */
    FUT_FLAG_ARG_SEALED = 32,      /* task part, with ARG_COPIED: the copy is a sealed memfd
                                    * (fut__arg_copy_new, core/bytes_shared.h) */
};

/*
 * The fields of a future's `word`: its lock (see future.c), its state, which member of
 * `part` is live, its flags, and the low bits of core/fork.h's generation it was made in.
 * The state is written under the lock (or by a compare-and-swap from PENDING) and may be
 * read without it; the kind and the generation are set before the future is shared.
 */
#define FUT_WORD_LOCK        0x3u        /* 0 free, 1 locked, 2 locked and maybe contended */
#define FUT_WORD_STATE_SHIFT 2
#define FUT_WORD_STATE       (0x3u << FUT_WORD_STATE_SHIFT)
#define FUT_WORD_KIND_SHIFT  4
#define FUT_WORD_KIND        (0x3u << FUT_WORD_KIND_SHIFT)
#define FUT_WORD_FLAG_SHIFT  8
#define FUT_WORD_GEN_SHIFT   16

/* valgrind's thread checkers (core/annotate.h) see the lock and the state as two objects */
#define FUT_LOCK_SYNC(f)  ((const char *)&(f)->word)
#define FUT_STATE_SYNC(f) ((const char *)&(f)->word + 1)

/*
 * 48 bytes, carved from slabs without an allocator header (see future_cache.c): a batch
 * of a million futures is 48 MB of memory touched for the first time, which costs more
 * than the tasks, so every byte counts. The core is 24 bytes, the largest part 24. What
 * only some futures need lives out of line or shares a word:
 * - the lock, the state, the flags, the part's kind and the fork generation are one word;
 * - done callbacks and waiters are one pointer to a stack (struct fut_watcher), which is
 *   empty for ever once the future is done, and so leaves its word to the exception code;
 * - an exception's message shares the result's word, and so does a pending task's
 *   pointer to its executor's counters (see struct fut_task_part);
 * - a loop future's dispatcher lives in its loop part, a fut_map chunk's item count in
 *   the header of its argument's copy.
 */
struct fut_future {
    /* the core: state, outcome, callbacks, waiters */
    atomic_uint refs;
    _Atomic uint32_t word;         /* FUT_WORD_*: only ever accessed atomically */
    union {
        /* until done: of struct fut_watcher, newest first (complete_locked restores the
         * callbacks' order); under the lock */
        struct fut_list_node *watchers;
        int exception;             /* once done: 0 none */
    };
    union {
        void *result;              /* exception == 0 */
        char *message;             /* exception != 0: the message, or NULL */
        /* a task while pending or running: the counters that changes made outside its
         * executor's own threads count in (core/executor.h); NULL: none */
        struct fut_executor_counters *task_counters;
    };

    /* what its user keeps in it */
    union {
        struct fut_task_part task;
        struct fut_loop_part loop;
        struct fut_cache_part cache;
    } part;
};

static inline uint32_t fut__future_word(const fut_future *f, memory_order order)
{
    return atomic_load_explicit(&((fut_future *)f)->word, order);
}

static inline bool fut__future_flag(const fut_future *f, unsigned flag)
{
    return fut__future_word(f, memory_order_relaxed) & (flag << FUT_WORD_FLAG_SHIFT);
}

static inline void fut__future_set_flag(fut_future *f, unsigned flag)
{
    atomic_fetch_or_explicit(&f->word, flag << FUT_WORD_FLAG_SHIFT, memory_order_relaxed);
}

static inline void fut__future_clear_flag(fut_future *f, unsigned flag)
{
    atomic_fetch_and_explicit(&f->word, ~(flag << FUT_WORD_FLAG_SHIFT), memory_order_relaxed);
}

/* enum fut_part_kind: which member of `part` is live */
static inline int fut__future_kind(const fut_future *f)
{
    return (fut__future_word(f, memory_order_relaxed) & FUT_WORD_KIND) >> FUT_WORD_KIND_SHIFT;
}

/* Once, before the future is shared. */
static inline void fut__future_set_kind(fut_future *f, enum fut_part_kind kind)
{
    atomic_fetch_or_explicit(&f->word, (uint32_t)kind << FUT_WORD_KIND_SHIFT,
                             memory_order_relaxed);
}

/* The length of a task's private argument copy; 0 when its arg is a plain value. Inline:
 * libfutures-mpi reads it too. */
/* Frees a task's argument copy (NULL: nothing): `sealed` as FUT_FLAG_ARG_SEALED says. */
void fut__free_arg_copy(void *copy, bool sealed);

static inline size_t fut__task_arg_len(const fut_future *f)
{
    if (!fut__future_flag(f, FUT_FLAG_ARG_COPIED))
        return 0;
    return *(const size_t *)((const char *)f->part.task.arg - FUT_ARG_COPY_HEADER);
}

/* The tasks a task future stands for in fut_executor_get_stats: a fut_map chunk's items,
 * else 1. */
static inline uint32_t fut__task_items(const fut_future *f)
{
    if (!fut__future_flag(f, FUT_FLAG_ARG_COPIED))
        return 1;
    return *(const uint32_t *)((const char *)f->part.task.arg - FUT_ARG_COPY_HEADER +
                               FUT_ARG_COPY_ITEMS);
}

/* The loop's dispatcher of a loop future; NULL for any other (callbacks run inline). */
static inline const struct fut_callback_dispatcher *fut__future_dispatcher(const fut_future *f)
{
    return fut__future_kind(f) == FUT_PART_LOOP ? f->part.loop.dispatcher : NULL;
}

/* The future whose task part is `node` (an executor's queue entry). */
static inline fut_future *fut__task_of(struct fut_list_node *node)
{
    return fut_container_of(node, fut_future, part.task.node);
}

fut_future *fut__future_alloc(void);

/* A task's outcome, stored by whoever ran it. Take ownership of message and of a bytes
 * result. A task future's change is counted in its task_counters. */
int fut__future_finish(fut_future *f, void *result, bool result_is_bytes, int code, char *message);

/* The library's own failures: fut_set_exception, except that a message that cannot be
 * copied (no memory) is dropped rather than leaving the future pending for ever. */
int fut__future_fail(fut_future *f, int code, const char *message);

/* fut_set_running_or_notify_cancel and fut__future_finish for an executor's own thread,
 * which counts the change in its own tally (core/executor.h) instead of the shared
 * counters. */
struct fut_task_tally;
int fut__task_start(fut_future *f, struct fut_task_tally *tally);
int fut__task_finish(fut_future *f, struct fut_task_tally *tally, void *result,
                     bool result_is_bytes, int code, char *message);

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
    uint32_t word = fut__future_word(f, memory_order_acquire);
    FUT_HAPPENS_AFTER(FUT_STATE_SYNC(f));
    return (word & FUT_WORD_STATE) >> FUT_WORD_STATE_SHIFT;
}

static inline bool fut__state_is_done(int state)
{
    return state == FUT_STATE_CANCELLED || state == FUT_STATE_FINISHED;
}

/* fut_cancel without the loop part's cancel hook: what the hook calls to cancel. */
bool fut__future_cancel(fut_future *f);

/* A pending task or loop future inherited through a fork: nothing in this process will
 * ever complete it (its executor's threads or its loop stayed in the parent), so waiting
 * on it fails with FUT_EBROKEN. Plain futures (fut_future_new) stay the caller's. */
static inline bool fut__future_orphaned(const fut_future *f)
{
    uint32_t word = fut__future_word(f, memory_order_relaxed);
    int kind = (word & FUT_WORD_KIND) >> FUT_WORD_KIND_SHIFT;
    return (kind == FUT_PART_TASK || kind == FUT_PART_LOOP) &&
           fut__inherited8((unsigned char)(word >> FUT_WORD_GEN_SHIFT)) &&
           !fut__state_is_done(fut__future_state(f));
}

#endif
