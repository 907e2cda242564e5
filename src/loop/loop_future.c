/* SPDX-License-Identifier: MIT */
/*
 * Loop futures and what is built on them: the dispatcher that runs their callbacks on the
 * loop, the bridge from any other future (run_in_executor, wrap_future), sleep and gather.
 *
 * A loop future is an ordinary future whose dispatcher is its loop's core (loop.h). When
 * it completes, in whatever thread, the dispatcher gets its callback list and schedules it
 * as one call_soon (from the loop thread) or one call_soon_threadsafe (from any other):
 * the callbacks run in order, on the loop, never inline. Once the loop is freed there is
 * no loop to run them on, and they run inline as a plain future's would: every callback
 * runs exactly once, whatever happens to the loop.
 *
 * The library's own callbacks that propagate a cancellation (to the source of a bridge,
 * to the children of a gather) are the exception: they are added inline_always and run in
 * the thread that completes the future. fut_cancel is thread-safe, and cancelling at once
 * (as asyncio's gather does) keeps a task that has not started from starting.
 *
 * Per-future state (a bridge's source, a sleep's result, a gather's children) lives in
 * the future's loop part, which the future releases with itself.
 */
#include <stdlib.h>
#include <string.h>

#include "loop/loop.h"

static struct fut_loop_core *core_of(fut_future *f)
{
    return f->part.loop.dispatcher->context;
}

/* The loop, when called on its thread while it runs; NULL elsewhere (once it is freed,
 * the only other place a loop future's callbacks run). */
static fut_loop *loop_here(struct fut_loop_core *core)
{
    return fut__loop_core_is_current(core) ? core->loop : NULL;
}

/* ---- the dispatcher ----------------------------------------------------------------- */

struct done_call {
    fut_future *f;                     /* a reference, until the callbacks have run */
    struct fut_list callbacks;
};

/* Runs the callbacks of `list` (all of them, or only the inline_always ones), freeing
 * each one it runs; what it does not run stays in `list`, in order. */
static void run_callbacks(fut_future *f, struct fut_list *list, bool inline_only)
{
    struct fut_list rest = { 0 };
    struct fut_list_node *n, *next;
    fut_list_for_each_safe(n, next, list) {
        struct fut_callback_node *cb = fut__callback_of(n);
        if (inline_only && !cb->inline_always) {
            fut_list_push_back(&rest, n);
            continue;
        }
        cb->fn(f, cb->arg);
        free(cb);
    }
    *list = rest;
}

/* Owned: runs on the loop, or inline once the loop is gone; either way exactly once. */
static void run_done_call(void *arg)
{
    struct done_call *dc = arg;
    run_callbacks(dc->f, &dc->callbacks, false);
    fut_future_unref(dc->f);
    free(dc);
}

void fut__loop_dispatch(void *context, fut_future *f, struct fut_list callbacks)
{
    struct fut_loop_core *core = context;
    run_callbacks(f, &callbacks, true);
    if (fut_list_empty(&callbacks))
        return;
    struct done_call *dc = malloc(sizeof *dc);
    if (!dc) {
        run_callbacks(f, &callbacks, false);  /* out of memory: late on the loop is not possible */
        return;
    }
    *dc = (struct done_call){ fut_future_ref(f), callbacks };
    fut_loop *loop = loop_here(core);
    fut_handle h = loop ? fut__loop_call_soon_owned(loop, run_done_call, dc)
                        : fut__loop_post(core, run_done_call, dc, true);
    if (h == 0)
        run_done_call(dc);  /* the loop is gone */
}

void fut__loop_dispatch_release(void *context)
{
    fut__loop_core_release(context);
}

static fut_future *new_loop_future(struct fut_loop_core *core)
{
    fut_future *f = fut__future_alloc();
    if (!f)
        return NULL;
    atomic_fetch_add_explicit(&core->refs, 1, memory_order_relaxed);
    f->part.loop.dispatcher = &core->dispatcher;
    fut__future_set_kind(f, FUT_PART_LOOP);
    return f;
}

fut_future *fut_loop_create_future(fut_loop *loop)
{
    if (!loop) {
        errno = EINVAL;
        return NULL;
    }
    return new_loop_future(loop->core);
}

/* ---- bridges: a loop future that takes another future's outcome --------------------- */

/* dest->source is done: dest takes its outcome. A bytes result stays owned by the source,
 * which dest keeps alive: one buffer, valid as long as either future. */
static void copy_outcome(fut_future *dest)
{
    fut_future *src = dest->part.loop.source;
    if (fut__future_state(src) == FUT_STATE_CANCELLED) {
        fut_cancel(dest);
    } else if (src->exception) {
        char *message = src->message ? strdup(src->message) : NULL;
        fut__future_finish(dest, NULL, false, src->exception, message);
    } else {
        fut__future_finish(dest, src->result, false, 0, NULL);
    }
}

/* Owned: on the loop thread, or inline once the loop is gone. */
static void bridge_complete(void *arg)
{
    fut_future *dest = arg;
    atomic_fetch_sub(&core_of(dest)->bridges, 1);
    copy_outcome(dest);
    fut_future_unref(dest);  /* the bridge's reference */
}

/* The source's done callback, in whatever thread completed it. */
static void on_source_done(fut_future *src, void *arg)
{
    fut_future *dest = arg;
    struct fut_loop_core *core = core_of(dest);
    fut_loop *loop = loop_here(core);
    if (loop) {
        if (!fut__loop_call_soon_owned(loop, bridge_complete, dest))
            bridge_complete(dest);  /* out of memory: complete it now */
    } else if (!fut__loop_post(core, bridge_complete, dest, true)) {
        bridge_complete(dest);    /* the loop is gone */
    }
}

/* dest's done callback, run inline: cancelling dest cancels a source not yet started. */
static void cancel_source(fut_future *dest, void *unused)
{
    if (fut_cancelled(dest))
        fut_cancel(dest->part.loop.source);
}

fut_future *fut__loop_wrap(fut_loop *loop, fut_future *f)
{
    if (fut__future_dispatcher(f) == &loop->core->dispatcher)
        return fut_future_ref(f);
    fut_future *dest = new_loop_future(loop->core);
    if (!dest)
        return NULL;
    dest->part.loop.source = fut_future_ref(f);
    int rc = fut__future_add_callback(dest, cancel_source, NULL, true);
    if (rc)
        goto fail;
    fut_future_ref(dest);  /* the bridge's, until the outcome is copied */
    atomic_fetch_add(&loop->core->bridges, 1);
    if ((rc = fut_add_done_callback(f, on_source_done, dest)) != 0) {
        atomic_fetch_sub(&loop->core->bridges, 1);
        fut_future_unref(dest);
        goto fail;
    }
    return dest;
fail:
    fut_future_unref(dest);
    errno = -rc;
    return NULL;
}

fut_future *fut_loop_wrap_future(fut_loop *loop, fut_future *f)
{
    if (!loop || !f) {
        errno = EINVAL;
        return NULL;
    }
    return fut__loop_wrap(loop, f);
}

/* ---- executors ---------------------------------------------------------------------- */

static fut_executor *default_executor(fut_loop *loop)
{
    if (loop->default_executor)
        return loop->default_executor;
    if (!loop->own_executor) {
        fut_pool_options opts = { .thread_name_prefix = "fut_loop" };
        loop->own_executor = fut_thread_pool_new(&opts);
    }
    return loop->own_executor;
}

fut_future *fut_loop_run_in_executor(fut_loop *loop, fut_executor *ex, fut_fn fn, void *arg)
{
    if (!loop || !fn) {
        errno = EINVAL;
        return NULL;
    }
    if (!ex && !(ex = default_executor(loop)))
        return NULL;
    fut_future *src = fut_submit(ex, fn, arg);
    if (!src)
        return NULL;
    fut_future *dest = fut__loop_wrap(loop, src);
    fut_future_unref(src);
    return dest;
}

int fut_loop_set_default_executor(fut_loop *loop, fut_executor *ex)
{
    if (!loop || !ex)
        return FUT_EINVAL;
    loop->default_executor = ex;
    return 0;
}

void fut__loop_free_executor(fut_loop *loop)
{
    if (!loop->own_executor)
        return;
    /* what has not started is cancelled, what runs is waited for: no thread outlives us */
    fut_shutdown(loop->own_executor, true, true);
    fut_executor_free(loop->own_executor);
    loop->own_executor = NULL;
}

/* ---- run_until_complete -------------------------------------------------------------- */

void fut__loop_stop_when_done(fut_future *f, void *unused)
{
    fut_loop *loop = loop_here(core_of(f));
    if (loop && loop->until == f)
        fut_loop_stop(loop);
}

/* ---- sleep -------------------------------------------------------------------------- */

struct sleep_state {
    void *result;
    fut_handle timer;                  /* owns a reference to the future until it fires */
};

/* Owned: the timer holds a reference. Run by fut_loop_free, when the timer can never
 * fire, it cancels the sleep instead. */
static void sleep_fire(void *arg)
{
    fut_future *f = arg;
    struct sleep_state *s = f->part.loop.state;
    if (loop_here(core_of(f)))
        fut_set_result(f, s->result);  /* FUT_ESTATE if cancelled meanwhile: nothing to do */
    else
        fut_cancel(f);
    fut_future_unref(f);
}

/* On the loop thread; elsewhere the loop is gone and fut_loop_free settled the timer. */
static void sleep_done(fut_future *f, void *unused)
{
    struct sleep_state *s = f->part.loop.state;
    fut_loop *loop = loop_here(core_of(f));
    if (loop && fut_cancelled(f) && fut_loop_cancel(loop, s->timer) == 0)
        fut_future_unref(f);  /* the timer's reference */
}

fut_future *fut_loop_sleep(fut_loop *loop, double delay, void *result)
{
    if (!loop || delay != delay) {
        errno = EINVAL;
        return NULL;
    }
    fut_future *f = new_loop_future(loop->core);
    if (!f)
        return NULL;
    struct sleep_state *s = malloc(sizeof *s);
    if (!s || fut_add_done_callback(f, sleep_done, NULL) != 0)
        goto nomem;
    f->part.loop.state = s;
    s->result = result;
    if (!(s->timer = fut__loop_call_later_owned(loop, delay, sleep_fire, fut_future_ref(f)))) {
        fut_future_unref(f);
        goto nomem;
    }
    return f;
nomem:
    if (!f->part.loop.state)
        free(s);
    fut_future_unref(f);
    errno = ENOMEM;
    return NULL;
}

/* ---- gather ------------------------------------------------------------------------- */

/*
 * The children array is shared by the callbacks of the children (on the loop thread) and
 * by the gather's own cancellation (in whatever thread cancels it): `holders` counts its
 * users, one for "children still pending" plus one per cancellation in progress, and the
 * last one out releases the children.
 */
struct gather_state {
    size_t n;
    atomic_size_t n_done;
    atomic_uint holders;
    fut_future *children[];
};

static void gather_put(struct gather_state *st)
{
    if (atomic_fetch_sub(&st->holders, 1) != 1)
        return;
    for (size_t i = 0; i < st->n; i++)
        fut_future_unref(st->children[i]);
}

static bool gather_hold(struct gather_state *st)
{
    unsigned n = atomic_load(&st->holders);
    do {
        if (n == 0)
            return false;
    } while (!atomic_compare_exchange_weak(&st->holders, &n, n + 1));
    return true;
}

/* All children are done: the first failure in input order, or a NULL result. */
static void gather_finish(fut_future *g, struct gather_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        int code = fut_exception(st->children[i], 0);
        if (code == 0)
            continue;
        const char *message = fut_exception_message(st->children[i]);
        if (!message && code == FUT_ECANCELLED)
            message = "a gathered future was cancelled";
        fut__future_finish(g, NULL, false, code, message ? strdup(message) : NULL);
        return;
    }
    fut_set_result(g, NULL);
}

static void gather_count(fut_future *g)
{
    struct gather_state *st = g->part.loop.state;
    if (atomic_fetch_add(&st->n_done, 1) + 1 == st->n) {
        gather_finish(g, st);  /* FUT_ESTATE if the gather was cancelled: fine */
        gather_put(st);
    }
}

static void gather_child_done(fut_future *child, void *arg)
{
    fut_future *g = arg;
    gather_count(g);
    fut_future_unref(g);  /* this callback's reference */
}

/* g's done callback, run inline: cancelling the gather cancels the children. */
static void gather_cancel_children(fut_future *g, void *unused)
{
    struct gather_state *st = g->part.loop.state;
    if (!fut_cancelled(g) || !gather_hold(st))
        return;
    for (size_t i = 0; i < st->n; i++)
        fut_cancel(st->children[i]);
    gather_put(st);
}

static int gather_wrap_children(fut_loop *loop, struct gather_state *st, fut_future *const *fs)
{
    for (size_t i = 0; i < st->n; i++)
        if (!(st->children[i] = fut__loop_wrap(loop, fs[i])))
            return -errno;
    return 0;
}

fut_future *fut_loop_gather(fut_loop *loop, fut_future *const *fs, size_t n)
{
    if (!loop || (!fs && n)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) {
            errno = EINVAL;
            return NULL;
        }
    fut_future *g = new_loop_future(loop->core);
    if (!g)
        return NULL;
    struct gather_state *st = calloc(1, sizeof *st + n * sizeof st->children[0]);
    if (!st) {
        fut_future_unref(g);
        errno = ENOMEM;
        return NULL;
    }
    g->part.loop.state = st;
    st->n = n;
    atomic_init(&st->holders, 1);
    int rc = gather_wrap_children(loop, st, fs);
    if (rc == 0 && n > 0)
        rc = fut__future_add_callback(g, gather_cancel_children, NULL, true);
    if (rc) {
        gather_put(st);
        fut_future_unref(g);
        errno = -rc;
        return NULL;
    }
    if (n == 0)
        fut_set_result(g, NULL);
    for (size_t i = 0; i < n; i++)
        if (fut_add_done_callback(st->children[i], gather_child_done, fut_future_ref(g)) != 0) {
            fut__future_fail(g, FUT_ENOMEM, "gather: out of memory");
            gather_child_done(st->children[i], g);  /* count it, to release the rest */
        }
    return g;
}
