/* SPDX-License-Identifier: MIT */
/*
 * The future: a state machine (PENDING -> RUNNING -> FINISHED, PENDING -> CANCELLED) and
 * a stack of watchers (done callbacks and waiters), under one small per-future lock.
 *
 * Completing a future that nobody waits on makes no system call: waiters are only
 * signalled when one is attached, and an uncontended mutex stays in user space.
 */
#include <math.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/annotate.h"
#include "core/bytes_shared.h"
#include "core/executor.h"
#include "core/future.h"
#include "core/future_cache.h"
#include "core/spin.h"
#include "core/waiter.h"

/* ---- the future's lock ------------------------------------------------------------
 *
 * Drepper's three-state futex mutex ("Futexes Are Tricky", mutex 2) in the low bits of the
 * future's word: 0 free, 1 locked, 2 locked and maybe contended. Critical sections here
 * are a handful of stores, so contention is rare; but a pthread_mutex_t would be 40 of a
 * future's bytes, and a batch of a million tasks pays for every byte of a million futures
 * in cache misses and page faults.
 *
 * The word's other fields change without the lock (a flag set, a start's compare-and-swap
 * of the state), so the lock bits change only by compare-and-swaps that keep the rest, and
 * a sleeper whose word changed before it slept (FUTEX_WAIT finds another value) looks
 * again. Acquire and release are C11 atomics, which ThreadSanitizer understands.
 */

/* Drepper's exchange on the lock bits: sets them to `bits`; returns the old ones, and in
 * *now the word as it was left. */
static uint32_t exchange_lock_bits(fut_future *f, uint32_t bits, uint32_t *now)
{
    uint32_t word = fut__future_word(f, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&f->word, &word,
                                                  (word & ~FUT_WORD_LOCK) | bits,
                                                  memory_order_acquire, memory_order_relaxed))
        ;
    *now = (word & ~FUT_WORD_LOCK) | bits;
    return word & FUT_WORD_LOCK;
}

static void future_lock(fut_future *f)
{
    uint32_t word = fut__future_word(f, memory_order_relaxed) & ~FUT_WORD_LOCK;
    if (!atomic_compare_exchange_strong_explicit(&f->word, &word, word | 1,
                                                 memory_order_acquire, memory_order_relaxed)) {
        uint32_t now;
        while (exchange_lock_bits(f, 2, &now) != 0)
            syscall(SYS_futex, &f->word, FUTEX_WAIT_PRIVATE, now, NULL, NULL, 0);
    }
    FUT_HAPPENS_AFTER(FUT_LOCK_SYNC(f));
}

static void future_unlock(fut_future *f)
{
    FUT_HAPPENS_BEFORE(FUT_LOCK_SYNC(f));
    uint32_t old = atomic_fetch_and_explicit(&f->word, ~FUT_WORD_LOCK, memory_order_release);
    if ((old & FUT_WORD_LOCK) == 2)
        syscall(SYS_futex, &f->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- the state ---------------------------------------------------------------------- */

/* Moves the state from `from` to `to`, keeping the rest of the word. False when the state
 * was not `from`: *seen says what it was. */
static bool change_state(fut_future *f, int from, int to, int *seen)
{
    FUT_HAPPENS_BEFORE(FUT_STATE_SYNC(f));
    uint32_t word = fut__future_word(f, memory_order_acquire);
    do {
        *seen = (int)((word & FUT_WORD_STATE) >> FUT_WORD_STATE_SHIFT);
        if (*seen != from)
            return false;
    } while (!atomic_compare_exchange_weak(&f->word, &word,
                                           (word & ~FUT_WORD_STATE) |
                                           (uint32_t)to << FUT_WORD_STATE_SHIFT));
    return true;
}

/* ---- allocation ------------------------------------------------------------------- */

_Static_assert(sizeof(void *) != 8 || sizeof(fut_future) == 48,
               "a future is 48 bytes: see future.h before adding a field");

fut_future *fut__future_alloc(void)
{
    fut_future *f = fut__future_cache_get();
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    FUT_NEW_MEMORY(f, sizeof *f);  /* recycled by the cache: a new object */
    memset(f, 0, sizeof *f);
    FUT_ATOMIC_VAR(&f->word);
    FUT_ATOMIC_VAR(&f->refs);
    /* seeds the hand-offs through the lock and the state (see future.h) */
    FUT_HAPPENS_BEFORE(FUT_LOCK_SYNC(f));
    FUT_HAPPENS_BEFORE(FUT_STATE_SYNC(f));
    atomic_init(&f->refs, 1);
    atomic_init(&f->word, (uint32_t)FUT_STATE_PENDING << FUT_WORD_STATE_SHIFT |
                          (uint32_t)(uint8_t)fut__fork_generation() << FUT_WORD_GEN_SHIFT);
    return f;
}

fut_future *fut_future_new(void)
{
    return fut__future_alloc();
}

fut_future *fut_future_ref(fut_future *f)
{
    if (!f) {
        errno = EINVAL;
        return NULL;
    }
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/* A future freed before it was done: its callbacks never run. (No waiter is left: each
 * waits on a reference of its own, and detaches before it lets it go.) */
static void free_callbacks(struct fut_list_node *n)
{
    while (n) {
        struct fut_list_node *next = n->next;
        free(fut__callback_of(n));
        n = next;
    }
}

void fut__free_arg_copy(void *copy, bool sealed)
{
    if (!copy)
        return;
    if (sealed)
        fut__arg_copy_free(copy);
    else
        free((char *)copy - FUT_ARG_COPY_HEADER);
}

/* Releases what the future's user kept in it. */
static void release_part(fut_future *f)
{
    switch (fut__future_kind(f)) {
    case FUT_PART_TASK:
        if (fut__future_flag(f, FUT_FLAG_ARG_COPIED))
            fut__free_arg_copy(f->part.task.arg, fut__future_flag(f, FUT_FLAG_ARG_SEALED));
        break;
    case FUT_PART_LOOP:
        if (!fut__future_flag(f, FUT_FLAG_CANCEL_HOOK))
            fut_future_unref(f->part.loop.source);
        free(f->part.loop.state);
        break;
    default:
        break;
    }
}

void fut_future_unref(fut_future *f)
{
    if (!f)
        return;
    FUT_HAPPENS_BEFORE(&f->refs);
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    FUT_HAPPENS_AFTER(&f->refs);  /* every other holder's accesses came before */
    int state = fut__future_state(f);
    if (!fut__state_is_done(state))
        free_callbacks(f->watchers);
    else if (state == FUT_STATE_FINISHED && f->exception)
        free(f->message);
    else if (fut__future_flag(f, FUT_FLAG_RESULT_IS_BYTES))
        fut_bytes_free(f->result);
    const struct fut_callback_dispatcher *dispatcher = fut__future_dispatcher(f);
    release_part(f);
    if (dispatcher && dispatcher->release)
        dispatcher->release(dispatcher->context);
    fut__future_cache_put(f);
}

/* ---- state changes ------------------------------------------------------------------ */

static void run_callbacks(fut_future *f, struct fut_list callbacks)
{
    if (fut_list_empty(&callbacks))
        return;
    const struct fut_callback_dispatcher *dispatcher = fut__future_dispatcher(f);
    if (dispatcher) {
        dispatcher->dispatch(dispatcher->context, f, callbacks);
        return;
    }
    struct fut_list_node *n, *next;
    fut_list_for_each_safe(n, next, &callbacks) {
        struct fut_callback_node *cb = fut__callback_of(n);
        cb->fn(f, cb->arg);
        free(cb);
    }
}

/*
 * Moves f to a done state, with `exception` (0: none) in the watchers' word, which a done
 * future no longer needs. Called with f's lock held; releases it, then runs the callbacks
 * in the calling thread (or hands them to the loop). Waiters are notified under the lock so
 * that a waiter that detaches itself afterwards can never be notified after it is gone.
 */
static void complete_locked(fut_future *f, int state, int exception)
{
    struct fut_list_node *watchers = f->watchers;
    f->watchers = NULL;
    f->exception = exception;
    int seen = fut__future_state(f);
    while (!change_state(f, seen, state, &seen))
        ;  /* a start (PENDING -> RUNNING, without the lock) came first */
    bool raised = state == FUT_STATE_FINISHED && exception != 0;
    /* The stack holds them newest first: pushed in front, the callbacks run in the order
     * they came. A notified as_completed iterator may free its link at once: next is read
     * first. */
    struct fut_list callbacks = { 0 };
    for (struct fut_list_node *n = watchers, *next; n; n = next) {
        next = n->next;
        struct fut_watcher *watcher = fut_container_of(n, struct fut_watcher, node);
        if (watcher->is_waiter)
            fut__waiter_notify(fut_container_of(watcher, struct fut_waiter_link, watcher), raised);
        else
            fut_list_push_front(&callbacks, n);
    }
    future_unlock(f);
    run_callbacks(f, callbacks);
}

/*
 * PENDING -> RUNNING and PENDING -> CANCELLED are compare-and-swaps, so an executor starts
 * a task without taking the future's lock; the two can never both succeed.
 */
bool fut_cancel(fut_future *f)
{
    if (!f)
        return false;
    if (fut__future_kind(f) == FUT_PART_LOOP && fut__future_flag(f, FUT_FLAG_CANCEL_HOOK))
        return f->part.loop.cancel(f);  /* a coroutine task: a request, see task/task.c */
    return fut__future_cancel(f);
}

bool fut__future_cancel(fut_future *f)
{
    future_lock(f);
    int state;
    if (change_state(f, FUT_STATE_PENDING, FUT_STATE_CANCELLED, &state)) {
        struct fut_executor_counters *counters = fut__task_counters(f);
        if (counters) {
            fut__count(&counters->cancelled, fut__task_items(f));
            f->task_counters = NULL;  /* a cancelled future has no result */
        }
        complete_locked(f, FUT_STATE_CANCELLED, 0);
        return true;
    }
    future_unlock(f);
    return state == FUT_STATE_CANCELLED;
}

/* Counts in `tally` (an executor's own thread) or, without one, in the task's counters. */
static int start(fut_future *f, struct fut_task_tally *tally)
{
    int state;
    uint32_t items = 0;
    if (tally) {
        /* counted before RUNNING shows: whoever sees it running finds it counted */
        items = fut__task_items(f);
        fut__tally_add(&tally->started, items);
    }
    if (change_state(f, FUT_STATE_PENDING, FUT_STATE_RUNNING, &state)) {
        struct fut_executor_counters *counters = tally ? NULL : fut__task_counters(f);
        if (counters)
            fut__count(&counters->started, fut__task_items(f));
        return 1;
    }
    if (tally)
        fut__tally_add(&tally->started, -(uint64_t)items);  /* it never started */
    if (state != FUT_STATE_CANCELLED)
        return FUT_ESTATE;
    future_lock(f);
    int rc = fut__future_flag(f, FUT_FLAG_CANCEL_NOTIFIED) ? FUT_ESTATE : 0;
    fut__future_set_flag(f, FUT_FLAG_CANCEL_NOTIFIED);  /* waiters were already woken by fut_cancel */
    future_unlock(f);
    return rc;
}

int fut_set_running_or_notify_cancel(fut_future *f)
{
    return f ? start(f, NULL) : FUT_EINVAL;
}

int fut__task_start(fut_future *f, struct fut_task_tally *tally)
{
    return start(f, tally);
}

static int finish(fut_future *f, void *result, bool result_is_bytes, int code, char *message,
                  struct fut_task_tally *tally)
{
    future_lock(f);
    /* only a cancel can race with us here, and it takes the lock too */
    if (fut__state_is_done(fut__future_state(f))) {
        future_unlock(f);
        if (result_is_bytes)
            fut_bytes_free(result);
        free(message);
        return FUT_ESTATE;
    }
    /* counted before the outcome takes the counters' word and before it is published:
     * whoever sees the future done finds it counted */
    uint32_t items = fut__future_kind(f) == FUT_PART_TASK ? fut__task_items(f) : 0;
    bool unstarted = fut__future_state(f) == FUT_STATE_PENDING;  /* failed before it could start */
    if (tally) {
        if (unstarted)
            fut__tally_add(&tally->started, items);
        fut__tally_add(code ? &tally->failed : &tally->completed, items);
    } else {
        struct fut_executor_counters *counters = fut__task_counters(f);
        if (counters && unstarted)
            fut__count(&counters->started, items);
        if (counters)
            fut__count(code ? &counters->failed : &counters->completed, items);
    }
    if (code) {
        f->message = message;
    } else {
        f->result = result;
        if (result_is_bytes)
            fut__future_set_flag(f, FUT_FLAG_RESULT_IS_BYTES);
    }
    complete_locked(f, FUT_STATE_FINISHED, code);
    return 0;
}

int fut__future_finish(fut_future *f, void *result, bool result_is_bytes, int code, char *message)
{
    return finish(f, result, result_is_bytes, code, message, NULL);
}

int fut__task_finish(fut_future *f, struct fut_task_tally *tally, void *result,
                     bool result_is_bytes, int code, char *message)
{
    return finish(f, result, result_is_bytes, code, message, tally);
}

int fut_set_result(fut_future *f, void *result)
{
    if (!f)
        return FUT_EINVAL;
    return fut__future_finish(f, result, false, 0, NULL);
}

int fut_set_exception(fut_future *f, int code, const char *message)
{
    if (!f || code == 0)  /* 0 means success: it is no exception */
        return FUT_EINVAL;
    char *copy = NULL;
    if (message && !(copy = strdup(message)))
        return FUT_ENOMEM;
    return fut__future_finish(f, NULL, false, code, copy);
}

int fut__future_fail(fut_future *f, int code, const char *message)
{
    char *copy = message ? strdup(message) : NULL;  /* NULL: the outcome without its words */
    return fut__future_finish(f, NULL, false, code, copy);
}

/* ---- queries ------------------------------------------------------------------------ */

bool fut_cancelled(fut_future *f)
{
    return f && fut__future_state(f) == FUT_STATE_CANCELLED;
}

bool fut_running(fut_future *f)
{
    return f && fut__future_state(f) == FUT_STATE_RUNNING;
}

bool fut_done(fut_future *f)
{
    return f && fut__state_is_done(fut__future_state(f));
}

const char *fut_exception_message(fut_future *f)
{
    if (!f || fut__future_state(f) != FUT_STATE_FINISHED)
        return NULL;
    return f->exception ? f->message : NULL;
}

/* Blocks until f is done or the deadline passes: spins briefly first, since a short task
 * finishing on another core is far cheaper to watch than to sleep on. */
static int wait_done(fut_future *f, double timeout)
{
    if (fut__state_is_done(fut__future_state(f)))
        return 0;
    if (fut__future_orphaned(f))
        return FUT_EBROKEN;  /* inherited through fork(): it would never complete */
    if (timeout == 0)
        return FUT_ETIMEDOUT;
    struct fut_deadline deadline = fut__deadline_after(timeout);
    if (fut__spin_until(fut__future_is_done, f, timeout))
        return 0;

    struct fut_waiter waiter;
    struct fut_waiter_link link = { .waiter = &waiter };
    if (fut__waiter_init(&waiter, FUT_FIRST_COMPLETED, 1) != 0)
        return FUT_ENOMEM;
    int rc = 0;
    if (fut__future_attach_waiter(f, &link)) {
        rc = fut__waiter_wait(&waiter, &deadline);
        fut__future_detach_waiter(f, &link);
    }
    fut__waiter_destroy(&waiter);
    return fut__state_is_done(fut__future_state(f)) ? 0 : rc;
}

/* Waits for f, then returns its outcome: 0 for a result, else the exception's code. */
static int wait_outcome(fut_future *f, double timeout)
{
    int rc = wait_done(f, timeout);
    if (rc)
        return rc;
    if (fut__future_state(f) == FUT_STATE_CANCELLED)
        return FUT_ECANCELLED;
    return f->exception;
}

int fut_result(fut_future *f, double timeout, void **out)
{
    if (!f || isnan(timeout))
        return FUT_EINVAL;
    int rc = wait_outcome(f, timeout);
    if (rc == 0 && out)
        *out = f->result;
    return rc;
}

int fut_exception(fut_future *f, double timeout)
{
    return f && !isnan(timeout) ? wait_outcome(f, timeout) : FUT_EINVAL;
}

int fut__future_add_callback(fut_future *f, fut_done_fn cb, void *arg, bool inline_always)
{
    struct fut_callback_node *node = malloc(sizeof *node);
    if (!node)
        return FUT_ENOMEM;
    *node = (struct fut_callback_node){ .fn = cb, .arg = arg, .inline_always = inline_always };
    future_lock(f);
    if (!fut__state_is_done(fut__future_state(f))) {
        node->watcher.node.next = f->watchers;
        f->watchers = &node->watcher.node;
        future_unlock(f);
        return 0;
    }
    future_unlock(f);
    struct fut_list one = { 0 };
    fut_list_push_back(&one, &node->watcher.node);
    run_callbacks(f, one);
    return 0;
}

int fut_add_done_callback(fut_future *f, fut_done_fn cb, void *arg)
{
    if (!f || !cb)
        return FUT_EINVAL;
    return fut__future_add_callback(f, cb, arg, false);
}

bool fut__future_is_done(void *f)
{
    return fut__state_is_done(fut__future_state(f));
}

/* ---- waiter hooks ------------------------------------------------------------------- */

bool fut__future_attach_waiter(fut_future *f, struct fut_waiter_link *link)
{
    future_lock(f);
    bool attached = !fut__state_is_done(fut__future_state(f));
    if (attached) {
        link->future = f;
        link->watcher.is_waiter = true;
        link->watcher.node.next = f->watchers;
        f->watchers = &link->watcher.node;
    }
    future_unlock(f);
    return attached;
}

void fut__future_detach_waiter(fut_future *f, struct fut_waiter_link *link)
{
    future_lock(f);
    /* complete_locked empties the whole stack at once; a link still in it is unlinked
     * here. A search: a future has few watchers, and a link leaves early only when its
     * wait timed out. */
    if (!fut__state_is_done(fut__future_state(f))) {
        struct fut_list_node **at = &f->watchers;
        while (*at && *at != &link->watcher.node)
            at = &(*at)->next;
        if (*at)
            *at = link->watcher.node.next;
    }
    future_unlock(f);
}
