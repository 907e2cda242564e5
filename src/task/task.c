/* SPDX-License-Identifier: MIT */
/*
 * Coroutine tasks: creating, running on a stack of their own, cancelling, fut_run, and
 * the loop's clean-up.
 *
 * Running. A task runs only on its loop's thread, entered from the loop's context (a
 * ready callback, a timer, a done callback) by task_resume, which switches to its stack;
 * it comes back when the task suspends or returns. Resumptions may nest (a task that
 * runs another loop resumes that loop's tasks from its own stack): each resumption
 * records the context it came from in `caller`. `running` is the task on whose stack
 * this thread runs.
 *
 * Cancelling (asyncio's rules, see API.md): fut_cancel on a task's future calls
 * task_cancel (the loop part's cancel hook) in any thread. A task not yet started ends
 * cancelled at once; otherwise the request (TASK_CANCEL) is delivered once, at the
 * task's next suspension: at once if it is suspended (on the loop thread directly, from
 * another thread through the loop's inbox), else when it next suspends. The outcome is
 * decided when the task returns: cancelled if a cancellation was requested, else what
 * it returned. `flags` orders the request against the start and the end across threads.
 *
 * Every stack switch is announced to AddressSanitizer and ThreadSanitizer (fibers) when
 * the library is built with them; stacks are registered with valgrind (stack.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "task/task.h"

#if defined(__SANITIZE_ADDRESS__)
#define FUT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define FUT_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(FUT_ASAN)
#define FUT_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(FUT_TSAN)
#define FUT_TSAN 1
#endif
#endif
#ifdef FUT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef FUT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* initial-exec: read on every switch, and the default model for a shared library calls
 * __tls_get_addr each time */
static _Thread_local struct fut_task *running __attribute__((tls_model("initial-exec")));

struct fut_task *fut__task_here(void)
{
    struct fut_task *t = running;
    return t && fut_loop_current() == t->loop ? t : NULL;
}

static struct fut_loop_core *core_of(const struct fut_task *t)
{
    return fut__future_dispatcher(t->future)->context;
}

/* ---- announcing switches to the sanitizers ------------------------------------------ */

/* Always inlined: ThreadSanitizer records function entries and exits on the fiber current
 * at the time, so a helper that switched fibers would return on the wrong one. */
#define SAN_INLINE static inline __attribute__((always_inline))

/* The loop's side: about to enter t; *fake receives the caller's fake stack (ASan). */
SAN_INLINE void san_enter(struct fut_task *t, void **fake)
{
#ifdef FUT_ASAN
    __sanitizer_start_switch_fiber(fake, t->stack->lo, t->stack->size);
#else
    (void)fake;
#endif
#ifdef FUT_TSAN
    t->tsan_caller = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
}

/* The loop's side: back from t. */
SAN_INLINE void san_back(void *fake)
{
#ifdef FUT_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)fake;
#endif
}

/* The task's side: just switched in (first entry or resumption). */
SAN_INLINE void san_entered(struct fut_task *t)
{
#ifdef FUT_ASAN
    __sanitizer_finish_switch_fiber(t->asan_fake_stack, &t->caller_stack, &t->caller_stack_size);
#else
    (void)t;
#endif
}

/* The task's side: about to switch back to the caller; `for_good` when it returned. */
SAN_INLINE void san_leave(struct fut_task *t, bool for_good)
{
#ifdef FUT_ASAN
    __sanitizer_start_switch_fiber(for_good ? NULL : &t->asan_fake_stack, t->caller_stack,
                                   t->caller_stack_size);
#else
    (void)for_good;
#endif
#ifdef FUT_TSAN
    __tsan_switch_to_fiber(t->tsan_caller, 0);
#else
    (void)t;
#endif
}

/* ---- the list of unfinished tasks ---------------------------------------------------- */

static void live_add(struct fut_loop_tasks *ts, struct fut_task *t)
{
    t->prev = NULL;
    t->next = ts->live;
    if (ts->live)
        ts->live->prev = t;
    ts->live = t;
    ts->n_live++;
}

/* Takes t off the list and drops the task's own reference to its future. */
static void forget(struct fut_task *t)
{
    struct fut_loop_tasks *ts = t->loop->tasks;
    if (t->prev)
        t->prev->next = t->next;
    else
        ts->live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (--ts->n_live == 0 && ts->all_done)
        fut_set_result(ts->all_done, NULL);
    fut_future_unref(t->future);
}

/* ---- running ------------------------------------------------------------------------ */

/* Decides the outcome (t returned, or could not start) and forgets t. */
static void settle(struct fut_task *t)
{
    unsigned old = atomic_fetch_or(&t->flags, TASK_ENDED);
    struct fut_task_outcome *o = &t->outcome;
    if (old & TASK_CANCEL) {
        /* what it returned is dropped: the C form of letting CancelledError propagate */
        if (o->result_is_bytes)
            fut_bytes_free(o->result);
        free(o->message);
        fut__future_cancel(t->future);
    } else {
        fut__future_finish(t->future, o->result, o->result_is_bytes, o->code, o->message);
    }
    *o = (struct fut_task_outcome){ 0 };
    forget(t);
}

static void end(struct fut_task *t)
{
#ifdef FUT_TSAN
    __tsan_destroy_fiber(t->tsan_fiber);
#endif
    fut__stack_put(&t->loop->tasks->stacks, t->stack);
    t->stack = NULL;
    settle(t);
}

/* Switches to the suspended task t; returns when it suspends again or returns. */
static void task_resume(struct fut_task *t)
{
    struct fut_task *outer = running;
    struct fut_task_outcome *outer_outcome = fut__task_context_swap(&t->outcome);
    struct fut_ctx here;
    void *fake = NULL;
    t->suspended = false;
    t->waking = false;
    t->caller = &here;
    running = t;
    san_enter(t, &fake);
    fut__ctx_switch(&here, &t->ctx);
    san_back(fake);
    running = outer;
    fut__task_context_swap(outer_outcome);
    if (t->stack->guard == FUT_GUARD_CANARY && !fut__stack_canary_ok(t->stack))
        abort();  /* the task overflowed a stack that has no guard page: never go on */
    if (t->returned)
        end(t);
}

/* The first frame of a task's stack. */
static void task_main(void *arg)
{
    struct fut_task *t = arg;
    san_entered(t);
    void *result = t->fn(t->arg);
    if (t->outcome.code == 0) {
        t->outcome.result = result;
        t->outcome.result_is_bytes = fut__bytes_claim(result);
    }
    t->returned = true;
    san_leave(t, true);
    fut__ctx_switch(&t->ctx, t->caller);
    abort();  /* a returned task is never resumed */
}

/* Owned ready callback: starts t, unless it was cancelled first. */
static void task_start(void *arg)
{
    struct fut_task *t = arg;
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong(&t->flags, &expected, TASK_STARTED)) {
        forget(t);  /* cancelled before it started: its future is cancelled already */
        return;
    }
    if (!(t->stack = fut__stack_get(&t->loop->tasks->stacks, t->stack_size))) {
        t->outcome.code = FUT_ENOMEM;
        settle(t);
        return;
    }
#ifdef FUT_ASAN
    /* a reused stack keeps the poisoned redzones of the frames its last task left */
    ASAN_UNPOISON_MEMORY_REGION(t->stack->lo, t->stack->size);
#endif
#ifdef FUT_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    fut__ctx_make(&t->ctx, t->stack->lo, t->stack->size, task_main, t);
    t->suspended = true;
    task_resume(t);
}

int fut__task_suspend(struct fut_task *t)
{
    t->suspended = true;
    san_leave(t, false);
    fut__ctx_switch(&t->ctx, t->caller);
    san_entered(t);
    return t->wake_rc;
}

/* Owned ready callback: a queued wake-up. It needs no reference: once a wake-up is
 * decided (`waking`) nothing else resumes the task, so it stays suspended, and alive,
 * until this runs. */
static void wake_queued(void *arg)
{
    struct fut_task *t = arg;
    if (fut__loop_core_is_current(core_of(t)))
        task_resume(t);
}

void fut__task_wake(struct fut_task *t, int rc, bool queued)
{
    if (!t->suspended || t->waking)
        return;
    t->waking = true;
    t->wake_rc = rc;
    t->awaiting = NULL;
    if (queued) {
        if (fut__loop_call_soon_owned(t->loop, wake_queued, t))
            return;
        /* out of memory: wake it now, */
        if (t == running) {           /* or, for a yield, do not suspend at all */
            t->suspended = t->waking = false;
            return;
        }
    }
    task_resume(t);
}

/* ---- cancelling --------------------------------------------------------------------- */

bool fut__task_take_cancel(struct fut_task *t)
{
    if (t->loop->tasks->closing)
        return true;
    if (t->delivered || !(atomic_load(&t->flags) & TASK_CANCEL))
        return false;
    t->delivered = true;
    return true;
}

/* On the loop thread: delivers a pending request to a suspended task. A running task
 * takes it at its next suspension. */
static void deliver(struct fut_task *t)
{
    if (!t->suspended || (atomic_load(&t->flags) & TASK_ENDED))
        return;
    if (t->waking) {
        /* a yield, whose wake-up is queued: it returns FUT_ECANCELLED */
        if (t->wake_rc != FUT_ECANCELLED && fut__task_take_cancel(t))
            t->wake_rc = FUT_ECANCELLED;
        return;
    }
    if (!fut__task_take_cancel(t))
        return;
    fut_future *awaited = t->awaiting;
    if (awaited)
        fut_future_ref(awaited);
    fut__task_wake(t, FUT_ECANCELLED, true);
    if (awaited) {
        fut_cancel(awaited);  /* cancelling a task it awaits cancels that one in turn */
        fut_future_unref(awaited);
    }
}

/* Owned: a request posted from another thread (arg: a reference to the future). */
static void deliver_posted(void *arg)
{
    fut_future *f = arg;
    struct fut_task *t = fut__coro_of(f);
    if (fut__loop_core_is_current(core_of(t)))
        deliver(t);
    fut_future_unref(f);
}

/* The loop part's cancel hook of every task's future: any thread. */
static bool task_cancel(fut_future *f)
{
    struct fut_task *t = fut__coro_of(f);
    unsigned old = 0;
    if (atomic_compare_exchange_strong(&t->flags, &old, TASK_CANCEL | TASK_ENDED)) {
        fut__future_cancel(f);  /* not started: it never will (task_start forgets it) */
        return true;
    }
    do {
        if (old & (TASK_ENDED | TASK_CANCEL))
            return (old & TASK_CANCEL) != 0;  /* requested before; or ended with a result */
    } while (!atomic_compare_exchange_weak(&t->flags, &old, old | TASK_CANCEL));
    struct fut_loop_core *core = core_of(t);
    if (fut__loop_core_is_current(core)) {
        deliver(t);
        return true;
    }
    fut_future_ref(f);
    if (!fut__loop_post(core, deliver_posted, f, true))
        fut_future_unref(f);  /* the loop is gone, and its tasks with it */
    return true;
}

/* ---- the loop's tasks ---------------------------------------------------------------- */

/* fut_loop_free: cancels every unfinished task and runs the loop until all have ended
 * (each later suspension is cancelled too, so this ends), then frees the stacks. */
static void tasks_close(fut_loop *loop)
{
    struct fut_loop_tasks *ts = loop->tasks;
    if (ts->n_live) {
        ts->closing = true;
        ts->all_done = fut_loop_create_future(loop);
        for (struct fut_task *t = ts->live; t; t = t->next) {
            unsigned old = atomic_fetch_or(&t->flags, TASK_CANCEL);
            if (old == 0) {
                atomic_fetch_or(&t->flags, TASK_ENDED);
                fut__future_cancel(t->future);  /* not started: task_start forgets it */
            } else {
                deliver(t);
            }
        }
        while (ts->n_live && ts->all_done)
            fut_loop_run_until_complete(loop, ts->all_done);
        fut_future_unref(ts->all_done);
    }
    fut__stack_pool_destroy(&ts->stacks);
    free(ts);
    loop->tasks = NULL;
    loop->tasks_close = NULL;
}

static struct fut_loop_tasks *tasks_of(fut_loop *loop)
{
    if (loop->tasks)
        return loop->tasks;
    struct fut_loop_tasks *ts = calloc(1, sizeof *ts);
    if (!ts) {
        errno = ENOMEM;
        return NULL;
    }
    ts->stack_size = FUT_STACK_DEFAULT;
    loop->tasks = ts;
    loop->tasks_close = tasks_close;
    return ts;
}

int fut_loop_set_task_stack_size(fut_loop *loop, size_t bytes)
{
    if (!loop || bytes < FUT_STACK_MIN || bytes > FUT_STACK_MAX)
        return FUT_EINVAL;
    struct fut_loop_tasks *ts = tasks_of(loop);
    if (!ts)
        return FUT_ENOMEM;
    ts->stack_size = bytes;
    return 0;
}

fut_future *fut_loop_create_task(fut_loop *loop, fut_fn fn, void *arg)
{
    if (!loop || !fn) {
        errno = EINVAL;
        return NULL;
    }
    struct fut_loop_tasks *ts = tasks_of(loop);
    if (!ts)
        return NULL;
    fut_future *f = fut_loop_create_future(loop);
    struct fut_task *t = calloc(1, sizeof *t);
    if (!f || !t) {
        fut_future_unref(f);
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    *t = (struct fut_task){ .future = f, .loop = loop, .fn = fn, .arg = arg,
                            .stack_size = ts->stack_size };
    atomic_init(&t->flags, 0);
    f->part.loop.state = t;  /* freed with the future */
    f->part.loop.cancel = task_cancel;
    fut__future_set_flag(f, FUT_FLAG_CANCEL_HOOK);
    fut_future_ref(f);  /* the task's own, until it ends */
    if (!fut__loop_call_soon_owned(loop, task_start, t)) {
        fut_future_unref(f);
        fut_future_unref(f);
        errno = ENOMEM;
        return NULL;
    }
    live_add(ts, t);
    return f;
}

fut_future *fut_task_current(void)
{
    struct fut_task *t = fut__task_here();
    return t ? t->future : NULL;
}

/* ---- fut_run ------------------------------------------------------------------------ */

/* asyncio.run's _cancel_all_tasks: cancels the unfinished tasks once and runs the loop
 * until they are done; their clean-up may await normally. */
static void cancel_all(fut_loop *loop)
{
    struct fut_loop_tasks *ts = loop->tasks;
    size_t n = ts ? ts->n_live : 0;
    fut_future **fs = n ? malloc(n * sizeof *fs) : NULL;
    if (!fs)
        return;  /* nothing to do, or out of memory: fut_loop_free cancels them all the same */
    size_t i = 0;
    for (struct fut_task *t = ts->live; t; t = t->next)
        fs[i++] = fut_future_ref(t->future);
    for (i = 0; i < n; i++)
        fut_cancel(fs[i]);
    fut_future *all = fut_loop_gather(loop, fs, n);
    if (all) {
        fut_loop_run_until_complete(loop, all);
        fut_future_unref(all);
    }
    for (i = 0; i < n; i++)
        fut_future_unref(fs[i]);
    free(fs);
}

int fut_run(fut_fn main, void *arg, void **out)
{
    if (out)
        *out = NULL;
    if (!main)
        return FUT_EINVAL;
    if (fut_loop_current())
        return FUT_ESTATE;  /* as asyncio.run inside a running loop */
    fut_loop *loop = fut_loop_new();
    if (!loop)
        return -errno;
    fut_future *f = fut_loop_create_task(loop, main, arg);
    if (!f) {
        int rc = -errno;
        fut_loop_free(loop);
        return rc;
    }
    fut_loop_run_until_complete(loop, f);  /* stopped first: fut_loop_free cancels main */
    cancel_all(loop);
    fut_loop_free(loop);
    void *result = NULL;
    int rc = fut_result(f, 0, &result);
    if (rc == 0 && out) {
        *out = result;
        fut__future_clear_flag(f, FUT_FLAG_RESULT_IS_BYTES);  /* a bytes result passes to the caller */
    }
    fut_future_unref(f);
    return rc;
}
