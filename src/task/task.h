/* SPDX-License-Identifier: MIT */
/*
 * Internal: coroutine tasks, shared by task.c (creating, running, cancelling, fut_run,
 * the loop's clean-up) and await.c (the awaits and yield).
 *
 * A task is a loop future whose loop part holds this struct (`state`, freed with the
 * future) and the cancel hook. Threads: everything here belongs to the loop thread, except
 * `flags`, which fut_cancel reads and sets from any thread.
 *
 * Lifetime: the task holds a reference to its future from creation to its end; every
 * callback that may resume it (a done callback, a queued wake-up) holds one too, so the
 * struct is alive whenever they run. The stack is returned to the pool at the end.
 */
#ifndef FUT_TASK_TASK_H
#define FUT_TASK_TASK_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/future.h"
#include "core/task_context.h"
#include "loop/loop.h"
#include "task/stack.h"
#include "task/switch.h"

/* flags: STARTED once it runs; CANCEL once cancellation is requested; ENDED once its
 * outcome is decided (it returned, or it was cancelled before it started). */
#define TASK_STARTED 1u
#define TASK_CANCEL  2u
#define TASK_ENDED   4u

struct fut_task {
    fut_future *future;
    fut_loop *loop;
    fut_fn fn;
    void *arg;
    size_t stack_size;
    struct fut_stack *stack;       /* from its start to its end */
    struct fut_ctx ctx;            /* where it stopped, while suspended */
    struct fut_ctx *caller;        /* the context that resumed it */
    struct fut_task *prev, *next;  /* the loop's unfinished tasks */
    atomic_uint flags;
    bool delivered;                /* the cancellation request reached an await */
    bool suspended;
    bool waking;                   /* suspended, and a wake-up is decided (maybe queued) */
    bool returned;                 /* fn returned: the stack is done with */
    fut_future *awaiting;          /* what it waits for, while suspended on an await */
    int wake_rc;                   /* what the suspension returns when not woken by `awaiting` */
    struct fut_task_outcome outcome;
    /* sanitizers: the switch announcements (task.c) */
    void *asan_fake_stack;
    const void *caller_stack;
    size_t caller_stack_size;
    void *tsan_fiber, *tsan_caller;
};

/* A loop's tasks (loop->tasks). */
struct fut_loop_tasks {
    struct fut_task *live;         /* created, not yet ended (a doubly linked list) */
    size_t n_live;
    size_t stack_size;             /* for tasks created from now on */
    bool closing;                  /* fut_loop_free: every suspension is cancelled */
    fut_future *all_done;          /* while closing: set once n_live drops to 0 */
    struct fut_stack_pool stacks;
};

/* The task running on this thread, on the loop running on this thread; NULL elsewhere. */
struct fut_task *fut__task_here(void);

/* Suspends the running task until something wakes it; returns its wake_rc. */
int fut__task_suspend(struct fut_task *t);
/* Wakes a suspended task with `rc`: at once (on the loop's context) or `queued` for a
 * later iteration. Does nothing if it is not suspended or its wake-up is decided. */
void fut__task_wake(struct fut_task *t, int rc, bool queued);
/* A pending cancellation request, delivered at the suspension about to happen: true
 * once (at every suspension while the loop is being freed). */
bool fut__task_take_cancel(struct fut_task *t);

static inline struct fut_task *fut__coro_of(fut_future *f)
{
    return f->part.loop.state;
}

#endif
