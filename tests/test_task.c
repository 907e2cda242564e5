/* SPDX-License-Identifier: MIT */
/*
 * Coroutine tasks (API.md, "Coroutine tasks"): create_task, the awaits, yield, the
 * cancellation rules, fut_run, fut_loop_free's clean-up, stacks (size, guard page, 100,000
 * at once) and bad input; plus the two ordering rules of the loop that tasks rely on
 * (one FIFO for call_soon and call_soon_threadsafe; negative call_later delays).
 * Nothing sleeps to synchronise: futures, gates and the loop's own order do.
 */
#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TU_CLANG_SANITIZED 1
#endif
#endif
#ifndef TU_CLANG_SANITIZED
#define TU_CLANG_SANITIZED 0
#endif

#define LOG_MAX 256

struct log {
    int v[LOG_MAX];
    int n;
};

static void log_add(struct log *l, int v)
{
    TU_REQUIRE(l->n < LOG_MAX, "log full");
    l->v[l->n++] = v;
}

static void log_expect(const struct log *l, const int *want, int n)
{
    ck_assert_int_eq(l->n, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(l->v[i] == want[i], "log[%d] = %d, want %d", i, l->v[i], want[i]);
}

static fut_loop *new_loop(void)
{
    fut_loop *loop = fut_loop_new();
    ck_assert_ptr_nonnull(loop);
    return loop;
}

/* Runs the loop until f is done and checks it is. */
static void run_until(fut_loop *loop, fut_future *f)
{
    ck_assert_int_eq(fut_loop_run_until_complete(loop, f), 0);
    ck_assert(fut_done(f));
}

/* ---- creating and running ------------------------------------------------------------ */

static void *return_arg(void *arg)
{
    return arg;
}

START_TEST(test_create_task_runs_later)
{
    fut_loop *loop = new_loop();
    fut_future *f = fut_loop_create_task(loop, return_arg, TU_P(42));
    ck_assert_ptr_nonnull(f);
    ck_assert(!fut_done(f));
    run_until(loop, f);
    tu_assert_value(f, 42);
    fut_future_unref(f);
    fut_loop_free(loop);
}
END_TEST

struct order_ctx {
    struct log log;
    fut_loop *loop;
};

static void order_cb(void *arg)
{
    log_add(&((struct order_ctx *)arg)->log, 2);
}

static void *order_task(void *arg)
{
    log_add(&((struct order_ctx *)arg)->log, 1);
    return NULL;
}

/* create_task is scheduled like call_soon: FIFO with the callbacks around it. */
START_TEST(test_create_task_is_fifo_with_call_soon)
{
    struct order_ctx c = { .loop = new_loop() };
    fut_future *f = fut_loop_create_task(c.loop, order_task, &c);
    ck_assert(fut_loop_call_soon(c.loop, order_cb, &c) != 0);
    run_until(c.loop, f);
    fut_future *s = fut_loop_sleep(c.loop, 0, NULL);
    run_until(c.loop, s);
    log_expect(&c.log, (int[]){ 1, 2 }, 2);
    fut_future_unref(s);
    fut_future_unref(f);
    fut_loop_free(c.loop);
}
END_TEST

static void *raise_task(void *arg)
{
    fut_raise(EDOM, "bad %s", "domain");
    return arg;
}

START_TEST(test_task_raises)
{
    fut_loop *loop = new_loop();
    fut_future *f = fut_loop_create_task(loop, raise_task, TU_P(1));
    run_until(loop, f);
    ck_assert_int_eq(fut_exception(f, 0), EDOM);
    ck_assert_str_eq(fut_exception_message(f), "bad domain");
    fut_future_unref(f);
    fut_loop_free(loop);
}
END_TEST

static void *bytes_task(void *arg)
{
    return fut_bytes_dup("hello", 6);
}

START_TEST(test_bytes_result_owned_by_future)
{
    fut_loop *loop = new_loop();
    fut_future *f = fut_loop_create_task(loop, bytes_task, NULL);
    run_until(loop, f);
    void *r = NULL;
    ck_assert_int_eq(fut_result(f, 0, &r), 0);
    ck_assert_str_eq(r, "hello");
    ck_assert_uint_eq(fut_bytes_len(r), 6);
    fut_future_unref(f);  /* frees the buffer: valgrind and ASan would see a leak otherwise */
    fut_loop_free(loop);
}
END_TEST

struct current_ctx {
    fut_loop *loop;
    fut_loop *seen_loop;
    fut_future *seen_task;
    fut_future *mine;
    fut_loop *seen_in_cb;
    fut_future *task_in_cb;
};

static void current_cb(void *arg)
{
    struct current_ctx *c = arg;
    c->seen_in_cb = fut_loop_current();
    c->task_in_cb = fut_task_current();
}

static void *current_task_fn(void *arg)
{
    struct current_ctx *c = arg;
    c->seen_loop = fut_loop_current();
    c->seen_task = fut_task_current();
    fut_loop_call_soon(c->loop, current_cb, c);
    fut_task_yield();
    return NULL;
}

START_TEST(test_current)
{
    struct current_ctx c = { .loop = new_loop() };
    ck_assert_ptr_null(fut_loop_current());
    ck_assert_ptr_null(fut_task_current());
    c.mine = fut_loop_create_task(c.loop, current_task_fn, &c);
    run_until(c.loop, c.mine);
    ck_assert_ptr_eq(c.seen_loop, c.loop);
    ck_assert_ptr_eq(c.seen_task, c.mine);
    ck_assert_ptr_eq(c.seen_in_cb, c.loop);    /* a plain callback: the loop, no task */
    ck_assert_ptr_null(c.task_in_cb);
    ck_assert_ptr_null(fut_loop_current());
    fut_future_unref(c.mine);
    fut_loop_free(c.loop);
}
END_TEST

static atomic_int orphan_ran;

static void *orphan_task(void *arg)
{
    fut_future *s = fut_loop_sleep(fut_loop_current(), 0.001, NULL);
    fut_await(s, NULL);
    fut_future_unref(s);
    atomic_store(&orphan_ran, 1);
    return NULL;
}

/* Nobody holds its future: it runs to its end all the same. */
START_TEST(test_task_runs_without_holder)
{
    fut_loop *loop = new_loop();
    fut_future_unref(fut_loop_create_task(loop, orphan_task, NULL));
    fut_future *s = fut_loop_sleep(loop, 0.05, NULL);
    run_until(loop, s);
    fut_future_unref(s);
    for (int i = 0; i < 1000 && !atomic_load(&orphan_ran); i++) {
        s = fut_loop_sleep(loop, 0.01, NULL);
        run_until(loop, s);
        fut_future_unref(s);
    }
    ck_assert_int_eq(atomic_load(&orphan_ran), 1);
    fut_loop_free(loop);
}
END_TEST

/* ---- awaiting -------------------------------------------------------------------------- */

struct await_ctx {
    fut_loop *loop;
    fut_future *f;
    struct log log;
    int rc;
    void *out;
};

static void mark_cb(void *arg)
{
    log_add(&((struct await_ctx *)arg)->log, 99);
}

static void *await_done_task(void *arg)
{
    struct await_ctx *c = arg;
    fut_loop_call_soon(c->loop, mark_cb, c);
    c->rc = fut_await(c->f, &c->out);
    log_add(&c->log, 1);  /* before mark_cb: the await did not yield */
    return NULL;
}

START_TEST(test_await_done_future_does_not_yield)
{
    struct await_ctx c = { .loop = new_loop() };
    c.f = fut_future_new();
    fut_set_result(c.f, TU_P(7));
    fut_future *t = fut_loop_create_task(c.loop, await_done_task, &c);
    run_until(c.loop, t);
    fut_future *s = fut_loop_sleep(c.loop, 0, NULL);
    run_until(c.loop, s);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(TU_I(c.out), 7);
    log_expect(&c.log, (int[]){ 1, 99 }, 2);
    fut_future_unref(s);
    fut_future_unref(t);
    fut_future_unref(c.f);
    fut_loop_free(c.loop);
}
END_TEST

struct waiter_arg {
    struct await_ctx *c;
    int id;
};

static void *await_log_task(void *arg)
{
    struct waiter_arg *w = arg;
    log_add(&w->c->log, w->id);
    void *out = NULL;
    int rc = fut_await(w->c->f, &out);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(TU_I(out), 5);
    log_add(&w->c->log, 10 + w->id);
    return NULL;
}

static void set_cb(void *arg)
{
    fut_set_result(arg, TU_P(5));
}

/* Tasks awaiting one future resume in the order they began to await it. */
START_TEST(test_awaiters_resume_in_order)
{
    struct await_ctx c = { .loop = new_loop() };
    c.f = fut_loop_create_future(c.loop);
    struct waiter_arg w[4];
    fut_future *t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct waiter_arg){ &c, i };
        t[i] = fut_loop_create_task(c.loop, await_log_task, &w[i]);
    }
    fut_loop_call_later(c.loop, 0.001, set_cb, c.f);
    fut_future *g = fut_loop_gather(c.loop, t, 4);
    run_until(c.loop, g);
    ck_assert_int_eq(fut_exception(g, 0), 0);
    log_expect(&c.log, (int[]){ 0, 1, 2, 3, 10, 11, 12, 13 }, 8);
    fut_future_unref(g);
    for (int i = 0; i < 4; i++)
        fut_future_unref(t[i]);
    fut_future_unref(c.f);
    fut_loop_free(c.loop);
}
END_TEST

static void *slow_square(void *arg)
{
    tu_sleep(0.002);
    return TU_P(TU_I(arg) * TU_I(arg));
}

struct exec_ctx {
    fut_executor *ex;
    long sum;
    int rc;
};

static void *await_executor_task(void *arg)
{
    struct exec_ctx *c = arg;
    for (int i = 1; i <= 4; i++) {
        fut_future *f = fut_submit(c->ex, slow_square, TU_P(i));  /* a pool's own future */
        void *r = NULL;
        int rc = fut_await(f, &r);
        fut_future_unref(f);
        if (rc)
            return TU_P(rc);
        c->sum += TU_I(r);
    }
    fut_future *f = fut_loop_run_in_executor(fut_loop_current(), c->ex, slow_square, TU_P(5));
    void *r = NULL;
    c->rc = fut_await(f, &r);
    fut_future_unref(f);
    c->sum += TU_I(r);
    return NULL;
}

START_TEST(test_await_executor_futures)
{
    struct exec_ctx c = { .ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 }) };
    ck_assert_ptr_nonnull(c.ex);
    void *r = TU_P(1);
    ck_assert_int_eq(fut_run(await_executor_task, &c, &r), 0);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(c.sum, 1 + 4 + 9 + 16 + 25);
    fut_executor_free(c.ex);
}
END_TEST

static void *raise_in_pool(void *arg)
{
    fut_raise(ERANGE, "out of range");
    return NULL;
}

static void *await_failing_task(void *arg)
{
    fut_future *f = fut_submit(arg, raise_in_pool, NULL);
    int rc = fut_await(f, NULL);
    fut_future_unref(f);
    return TU_P(rc);
}

START_TEST(test_await_returns_exception_code)
{
    fut_executor *ex = fut_thread_pool_new(NULL);
    void *r = NULL;
    ck_assert_int_eq(fut_run(await_failing_task, ex, &r), 0);
    ck_assert_int_eq(TU_I(r), ERANGE);
    fut_executor_free(ex);
}
END_TEST

/* A future of another loop, completed by that loop's thread. */
struct other_loop {
    fut_loop *loop;
    fut_future *f;
    pthread_t thread;
};

static void stop_loop_cb(void *arg)
{
    fut_loop_stop(arg);
}

static void set_other(void *arg)
{
    struct other_loop *o = arg;
    fut_set_result(o->f, TU_P(11));
}

static void *other_loop_thread(void *arg)
{
    struct other_loop *o = arg;
    fut_loop_call_later(o->loop, 0.001, set_other, o);
    /* a loop future's callbacks run on its loop: it runs until the awaiting side is done */
    fut_loop_run_forever(o->loop);
    return NULL;
}

static void *await_other_loop_task(void *arg)
{
    struct other_loop *o = arg;
    void *r = NULL;
    int rc = fut_await(o->f, &r);
    return TU_P(rc == 0 ? TU_I(r) : rc);
}

START_TEST(test_await_other_loop_future)
{
    struct other_loop o = { .loop = new_loop() };
    o.f = fut_loop_create_future(o.loop);
    ck_assert_int_eq(pthread_create(&o.thread, NULL, other_loop_thread, &o), 0);
    void *r = NULL;
    ck_assert_int_eq(fut_run(await_other_loop_task, &o, &r), 0);
    ck_assert_int_eq(TU_I(r), 11);
    ck_assert(fut_loop_call_soon_threadsafe(o.loop, stop_loop_cb, o.loop) != 0);
    pthread_join(o.thread, NULL);
    fut_future_unref(o.f);
    fut_loop_free(o.loop);
}
END_TEST

static void *await_timeout_task(void *arg)
{
    fut_future *never = fut_loop_create_future(fut_loop_current());
    int rc = fut_await_timeout(never, 0.01, NULL);
    ck_assert_int_eq(rc, FUT_ETIMEDOUT);
    ck_assert(fut_cancelled(never));                   /* wait_for cancels what it awaited */
    ck_assert_int_eq(fut_await_timeout(never, 1, NULL), FUT_ECANCELLED);  /* done: at once */
    fut_future_unref(never);
    fut_future *soon = fut_loop_sleep(fut_loop_current(), 0.001, TU_P(3));
    void *r = NULL;
    ck_assert_int_eq(fut_await_timeout(soon, 30, &r), 0);
    ck_assert_int_eq(TU_I(r), 3);
    fut_future_unref(soon);
    fut_future *zero = fut_loop_create_future(fut_loop_current());
    ck_assert_int_eq(fut_await_timeout(zero, 0, NULL), FUT_ETIMEDOUT);  /* 0 polls */
    ck_assert(fut_cancelled(zero));
    fut_future_unref(zero);
    return TU_P(1);
}

START_TEST(test_await_timeout)
{
    void *r = NULL;
    ck_assert_int_eq(fut_run(await_timeout_task, NULL, &r), 0);
    ck_assert_int_eq(TU_I(r), 1);
}
END_TEST

struct gate_task {
    struct tu_gate gate;
    fut_executor *ex;
    fut_future *pool_future;
};

/* A running executor task cannot be cancelled: wait_for returns at once all the same. */
static void *timeout_running_task(void *arg)
{
    struct gate_task *g = arg;
    g->pool_future = fut_submit(g->ex, tu_wait_gate, &g->gate);
    while (!fut_running(g->pool_future))
        fut_task_yield();
    int rc = fut_await_timeout(g->pool_future, 0.01, NULL);
    ck_assert_int_eq(rc, FUT_ETIMEDOUT);
    ck_assert(!fut_done(g->pool_future));  /* still running: it finishes on its own */
    tu_gate_open(&g->gate);
    return NULL;
}

START_TEST(test_await_timeout_running_executor_task)
{
    struct gate_task g = { .ex = fut_thread_pool_new(NULL) };
    tu_gate_init(&g.gate);
    ck_assert_int_eq(fut_run(timeout_running_task, &g, NULL), 0);
    ck_assert_int_eq(fut_result(g.pool_future, 10, NULL), 0);
    fut_future_unref(g.pool_future);
    fut_executor_free(g.ex);
    tu_gate_destroy(&g.gate);
}
END_TEST

static void *await_self_task(void *arg)
{
    return TU_P(fut_await(fut_task_current(), NULL));
}

START_TEST(test_await_self_is_refused)
{
    void *r = NULL;
    ck_assert_int_eq(fut_run(await_self_task, NULL, &r), 0);
    ck_assert_int_eq(TU_I(r), FUT_ESTATE);
}
END_TEST

/* ---- yield ------------------------------------------------------------------------------ */

struct pingpong {
    struct log log;
};

struct player {
    struct pingpong *pp;
    int id;
};

static void *player_task(void *arg)
{
    struct player *p = arg;
    for (int i = 0; i < 3; i++) {
        log_add(&p->pp->log, p->id * 10 + i);
        ck_assert_int_eq(fut_task_yield(), 0);
    }
    return NULL;
}

START_TEST(test_yield_alternates)
{
    fut_loop *loop = new_loop();
    struct pingpong pp = { 0 };
    struct player a = { &pp, 1 }, b = { &pp, 2 };
    fut_future *t[2] = { fut_loop_create_task(loop, player_task, &a),
                         fut_loop_create_task(loop, player_task, &b) };
    fut_future *g = fut_loop_gather(loop, t, 2);
    run_until(loop, g);
    log_expect(&pp.log, (int[]){ 10, 20, 11, 21, 12, 22 }, 6);
    fut_future_unref(g);
    fut_future_unref(t[0]);
    fut_future_unref(t[1]);
    fut_loop_free(loop);
}
END_TEST

/* Each task keeps its own floating-point modes (MXCSR / FPCR are part of the switch). */
static void *rounding_task(void *arg)
{
    fesetround(TU_I(arg));
    for (int i = 0; i < 3; i++) {
        fut_task_yield();
        if (fegetround() != TU_I(arg))
            return TU_P(1);
    }
    return NULL;
}

START_TEST(test_fpu_modes_are_per_task)
{
#if defined(FE_UPWARD) && defined(FE_DOWNWARD)
    fut_loop *loop = new_loop();
    fut_future *t[2] = { fut_loop_create_task(loop, rounding_task, TU_P(FE_UPWARD)),
                         fut_loop_create_task(loop, rounding_task, TU_P(FE_DOWNWARD)) };
    fut_future *g = fut_loop_gather(loop, t, 2);
    run_until(loop, g);
    void *r = TU_P(1);
    ck_assert_int_eq(fut_result(t[0], 0, &r), 0);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(fut_result(t[1], 0, &r), 0);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);  /* the loop's own mode is untouched */
    fut_future_unref(g);
    fut_future_unref(t[0]);
    fut_future_unref(t[1]);
    fut_loop_free(loop);
#endif
}
END_TEST

/* ---- cancellation ----------------------------------------------------------------------- */

static atomic_int never_ran;

static void *must_not_run(void *arg)
{
    atomic_store(&never_ran, 1);
    return arg;
}

START_TEST(test_cancel_before_start)
{
    fut_loop *loop = new_loop();
    fut_future *f = fut_loop_create_task(loop, must_not_run, NULL);
    ck_assert(fut_cancel(f));
    ck_assert(fut_cancelled(f));  /* at once */
    fut_future *s = fut_loop_sleep(loop, 0.001, NULL);
    run_until(loop, s);
    ck_assert_int_eq(atomic_load(&never_ran), 0);
    fut_future_unref(s);
    fut_future_unref(f);
    fut_loop_free(loop);
}
END_TEST

struct cancel_ctx {
    fut_loop *loop;
    fut_future *awaited;
    fut_future *task;
    int await_rc, cleanup_rc;
    bool cleaned_up;
};

static void *cancellable_task(void *arg)
{
    struct cancel_ctx *c = arg;
    c->awaited = fut_loop_create_future(fut_loop_current());
    c->await_rc = fut_await(c->awaited, NULL);
    /* clean-up may itself await */
    fut_future *s = fut_loop_sleep(fut_loop_current(), 0.001, TU_P(9));
    void *r = NULL;
    c->cleanup_rc = fut_await(s, &r);
    ck_assert_int_eq(TU_I(r), 9);
    fut_future_unref(s);
    c->cleaned_up = true;
    return TU_P(123);  /* ignored: its cancellation was requested */
}

static void cancel_cb(void *arg)
{
    struct cancel_ctx *c = arg;
    ck_assert(fut_cancel(c->task));
    ck_assert(!fut_done(c->task));    /* a request: not done until the task returns */
    ck_assert(fut_cancel(c->task));   /* asking again is harmless */
}

START_TEST(test_cancel_suspended_task)
{
    struct cancel_ctx c = { .loop = new_loop() };
    c.task = fut_loop_create_task(c.loop, cancellable_task, &c);
    fut_loop_call_later(c.loop, 0.001, cancel_cb, &c);
    run_until(c.loop, c.task);
    ck_assert_int_eq(c.await_rc, FUT_ECANCELLED);
    ck_assert(fut_cancelled(c.awaited));     /* delivery cancelled what it awaited */
    ck_assert_int_eq(c.cleanup_rc, 0);       /* later awaits work normally */
    ck_assert(c.cleaned_up);
    ck_assert(fut_cancelled(c.task));        /* whatever it returned */
    ck_assert(!fut_cancel(c.task) || fut_cancelled(c.task));
    fut_future_unref(c.awaited);
    fut_future_unref(c.task);
    fut_loop_free(c.loop);
}
END_TEST

static void *self_cancel_task(void *arg)
{
    int *rcs = arg;
    ck_assert(fut_cancel(fut_task_current()));
    fut_future *done = fut_future_new();
    fut_set_result(done, NULL);
    rcs[0] = fut_await(done, NULL);          /* would not suspend: no delivery */
    fut_future_unref(done);
    rcs[1] = fut_task_yield();               /* the next suspension takes it */
    rcs[2] = fut_task_yield();               /* delivered once */
    return TU_P(1);
}

START_TEST(test_self_cancel_delivered_at_next_suspension)
{
    int rcs[3] = { -1, -1, -1 };
    fut_loop *loop = new_loop();
    fut_future *t = fut_loop_create_task(loop, self_cancel_task, rcs);
    run_until(loop, t);
    ck_assert_int_eq(rcs[0], 0);
    ck_assert_int_eq(rcs[1], FUT_ECANCELLED);
    ck_assert_int_eq(rcs[2], 0);
    ck_assert(fut_cancelled(t));
    fut_future_unref(t);
    fut_loop_free(loop);
}
END_TEST

struct victim_ctx {
    fut_future *awaited;
    int rc;
};

static void *victim_task(void *arg)
{
    struct victim_ctx *v = arg;
    v->rc = fut_await(v->awaited, NULL);
    return TU_P(77);
}

static void cancel_future_cb(void *arg)
{
    fut_cancel(arg);
}

/* The awaited future cancelled by someone else: the task ends with what it returns. */
START_TEST(test_awaited_cancelled_by_other)
{
    fut_loop *loop = new_loop();
    struct victim_ctx v = { .awaited = fut_loop_create_future(loop) };
    fut_future *t = fut_loop_create_task(loop, victim_task, &v);
    fut_loop_call_later(loop, 0.001, cancel_future_cb, v.awaited);
    run_until(loop, t);
    ck_assert_int_eq(v.rc, FUT_ECANCELLED);
    tu_assert_value(t, 77);
    fut_future_unref(v.awaited);
    fut_future_unref(t);
    fut_loop_free(loop);
}
END_TEST

struct nest_ctx {
    fut_future *inner, *outer;
    int outer_rc, inner_rc;
    fut_future *never;
};

static void *inner_task(void *arg)
{
    struct nest_ctx *n = arg;
    /* cancel the outer task once this one is suspended too */
    fut_loop_call_soon(fut_loop_current(), cancel_future_cb, n->outer);
    n->inner_rc = fut_await(n->never, NULL);
    return NULL;
}

static void *outer_task(void *arg)
{
    struct nest_ctx *n = arg;
    n->inner = fut_loop_create_task(fut_loop_current(), inner_task, n);
    n->outer_rc = fut_await(n->inner, NULL);
    return NULL;
}

/* Cancelling a task that awaits another task cancels that one in turn. */
START_TEST(test_cancel_propagates_to_awaited_task)
{
    fut_loop *loop = new_loop();
    struct nest_ctx n = { .never = fut_loop_create_future(loop) };
    fut_future *outer = fut_loop_create_task(loop, outer_task, &n);
    n.outer = outer;
    run_until(loop, outer);
    ck_assert_ptr_nonnull(n.inner);
    run_until(loop, n.inner);
    ck_assert_int_eq(n.outer_rc, FUT_ECANCELLED);
    ck_assert_int_eq(n.inner_rc, FUT_ECANCELLED);
    ck_assert(fut_cancelled(outer));
    ck_assert(fut_cancelled(n.inner));
    ck_assert(fut_cancelled(n.never));
    fut_future_unref(n.inner);
    fut_future_unref(n.never);
    fut_future_unref(outer);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_cancel_finished_task)
{
    fut_loop *loop = new_loop();
    fut_future *f = fut_loop_create_task(loop, return_arg, TU_P(5));
    run_until(loop, f);
    ck_assert(!fut_cancel(f));
    tu_assert_value(f, 5);
    fut_future_unref(f);
    fut_loop_free(loop);
}
END_TEST

/* Cancelling from another thread while the task awaits an executor future. */
struct xthread {
    fut_executor *ex;
    struct tu_gate gate;
    struct tu_counter awaiting;
    fut_future *task;
    fut_future *pool_future;
    int rc;
};

static void *xthread_task(void *arg)
{
    struct xthread *x = arg;
    x->pool_future = fut_submit(x->ex, tu_wait_gate, &x->gate);
    tu_counter_add(&x->awaiting, 1);
    x->rc = fut_await(x->pool_future, NULL);
    return NULL;
}

static void *canceller_thread(void *arg)
{
    struct xthread *x = arg;
    tu_counter_wait(&x->awaiting, 1);
    while (!fut_running(x->pool_future))  /* a running executor task cannot be cancelled */
        tu_sleep(0.001);
    fut_cancel(x->task);
    return NULL;
}

START_TEST(test_cancel_from_other_thread)
{
    struct xthread x = { .ex = fut_thread_pool_new(NULL) };
    tu_gate_init(&x.gate);
    tu_counter_init(&x.awaiting);
    fut_loop *loop = new_loop();
    x.task = fut_loop_create_task(loop, xthread_task, &x);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, canceller_thread, &x), 0);
    run_until(loop, x.task);
    pthread_join(th, NULL);
    ck_assert_int_eq(x.rc, FUT_ECANCELLED);
    ck_assert(fut_cancelled(x.task));
    tu_gate_open(&x.gate);
    ck_assert_int_eq(fut_result(x.pool_future, 10, NULL), 0);  /* it was running: finishes */
    fut_future_unref(x.pool_future);
    fut_future_unref(x.task);
    fut_loop_free(loop);
    fut_executor_free(x.ex);
    tu_gate_destroy(&x.gate);
    tu_counter_destroy(&x.awaiting);
}
END_TEST

/* ---- fut_loop_free and fut_run ------------------------------------------------------ */

struct stranded {
    fut_future *never;
    int rc;
    bool cleaned_up;
};

static void *stranded_task(void *arg)
{
    struct stranded *s = arg;
    s->rc = fut_await(s->never, NULL);
    s->cleaned_up = true;
    return NULL;
}

/* A task awaiting a future that never completes is cancelled and reclaimed. */
START_TEST(test_loop_free_reclaims_stranded_tasks)
{
    fut_loop *loop = new_loop();
    struct stranded s[3];
    fut_future *t[3];
    for (int i = 0; i < 3; i++) {
        s[i] = (struct stranded){ .never = fut_future_new() };  /* a plain future: foreign */
        t[i] = fut_loop_create_task(loop, stranded_task, &s[i]);
    }
    fut_future *nap = fut_loop_sleep(loop, 0.001, NULL);
    run_until(loop, nap);
    fut_future_unref(nap);
    fut_future *unstarted = fut_loop_create_task(loop, must_not_run, NULL);
    fut_loop_free(loop);
    for (int i = 0; i < 3; i++) {
        ck_assert(s[i].cleaned_up);
        ck_assert_int_eq(s[i].rc, FUT_ECANCELLED);
        ck_assert(fut_cancelled(t[i]));
        ck_assert(fut_cancelled(s[i].never));
        fut_future_unref(t[i]);
        fut_future_unref(s[i].never);
    }
    ck_assert(fut_cancelled(unstarted));
    ck_assert_int_eq(atomic_load(&never_ran), 0);
    fut_future_unref(unstarted);
}
END_TEST

static void *stubborn_task(void *arg)
{
    struct stranded *s = arg;
    s->rc = fut_await(s->never, NULL);
    /* its clean-up awaits something that never completes either */
    fut_future *again = fut_loop_create_future(fut_loop_current());
    int rc = fut_await(again, NULL);
    fut_future_unref(again);
    s->cleaned_up = rc == FUT_ECANCELLED;
    return NULL;
}

/* While the loop is freed, every suspension is cancelled: freeing always ends. */
START_TEST(test_loop_free_ends_with_stubborn_cleanup)
{
    fut_loop *loop = new_loop();
    struct stranded s = { .never = fut_loop_create_future(loop) };
    fut_future *t = fut_loop_create_task(loop, stubborn_task, &s);
    fut_future *nap = fut_loop_sleep(loop, 0.001, NULL);
    run_until(loop, nap);
    fut_future_unref(nap);
    fut_loop_free(loop);
    ck_assert(s.cleaned_up);
    ck_assert(fut_cancelled(t));
    fut_future_unref(t);
    fut_future_unref(s.never);
}
END_TEST

struct run_ctx {
    fut_loop *loop_seen;
    fut_future *bg;
    int bg_rc;
    bool bg_cleaned;
};

static void *background(void *arg)
{
    struct run_ctx *c = arg;
    fut_future *s = fut_loop_sleep(fut_loop_current(), 3600, NULL);
    c->bg_rc = fut_await(s, NULL);
    fut_future_unref(s);
    /* asyncio.run's clean-up lets cancelled tasks await normally */
    fut_future *nap = fut_loop_sleep(fut_loop_current(), 0.001, NULL);
    c->bg_cleaned = fut_await(nap, NULL) == 0;
    fut_future_unref(nap);
    return NULL;
}

static void *main_task(void *arg)
{
    struct run_ctx *c = arg;
    c->loop_seen = fut_loop_current();
    c->bg = fut_loop_create_task(fut_loop_current(), background, c);
    fut_task_yield();
    return fut_bytes_dup("done", 5);
}

START_TEST(test_run)
{
    struct run_ctx c = { 0 };
    void *r = NULL;
    ck_assert_int_eq(fut_run(main_task, &c, &r), 0);
    ck_assert_ptr_nonnull(c.loop_seen);
    ck_assert_str_eq(r, "done");
    fut_bytes_free(r);  /* the caller's */
    ck_assert_int_eq(c.bg_rc, FUT_ECANCELLED);
    ck_assert(c.bg_cleaned);
    ck_assert(fut_cancelled(c.bg));
    fut_future_unref(c.bg);
    ck_assert_ptr_null(fut_loop_current());
}
END_TEST

static void *raise_main(void *arg)
{
    fut_raise(EPIPE, "broken");
    return NULL;
}

static void *nested_run(void *arg)
{
    return TU_P(fut_run(return_arg, NULL, NULL));
}

START_TEST(test_run_outcomes)
{
    ck_assert_int_eq(fut_run(raise_main, NULL, NULL), EPIPE);
    ck_assert_int_eq(fut_run(bytes_task, NULL, NULL), 0);  /* out NULL: the future frees it */
    void *r = NULL;
    ck_assert_int_eq(fut_run(nested_run, NULL, &r), 0);
    ck_assert_int_eq(TU_I(r), FUT_ESTATE);                 /* asyncio.run inside a loop */
    ck_assert_int_eq(fut_run(NULL, NULL, &r), FUT_EINVAL);
}
END_TEST

/* ---- fds ---------------------------------------------------------------------------- */

struct fd_ctx {
    int fds[2];
    int rc_timeout, rc_read, rc_busy, rc_write, rc_negative;
};

static void write_cb(void *arg)
{
    struct fd_ctx *c = arg;
    ck_assert_int_eq(write(c->fds[1], "x", 1), 1);
}

static void busy_reader(void *arg)
{
    (void)arg;
}

static void *fd_task(void *arg)
{
    struct fd_ctx *c = arg;
    fut_loop *loop = fut_loop_current();
    c->rc_timeout = fut_await_readable(c->fds[0], 0.005);
    ck_assert_int_eq(fut_loop_remove_reader(loop, c->fds[0]), FUT_ENOENT);  /* none left */
    fut_loop_call_later(loop, 0.001, write_cb, c);
    c->rc_read = fut_await_readable(c->fds[0], 30);
    ck_assert_int_eq(fut_loop_remove_reader(loop, c->fds[0]), FUT_ENOENT);
    char b;
    ck_assert_int_eq(read(c->fds[0], &b, 1), 1);
    fut_loop_add_reader(loop, c->fds[0], busy_reader, NULL);
    c->rc_busy = fut_await_readable(c->fds[0], 0.001);
    fut_loop_remove_reader(loop, c->fds[0]);
    c->rc_write = fut_await_writable(c->fds[1], 30);
    c->rc_negative = fut_await_writable(-1, 1);
    return NULL;
}

START_TEST(test_await_fds)
{
    struct fd_ctx c = { 0 };
    ck_assert_int_eq(pipe(c.fds), 0);
    ck_assert_int_eq(fut_run(fd_task, &c, NULL), 0);
    ck_assert_int_eq(c.rc_timeout, FUT_ETIMEDOUT);
    ck_assert_int_eq(c.rc_read, 0);
    ck_assert_int_eq(c.rc_busy, FUT_ESTATE);
    ck_assert_int_eq(c.rc_write, 0);
    ck_assert_int_eq(c.rc_negative, FUT_EINVAL);
    close(c.fds[0]);
    close(c.fds[1]);
}
END_TEST

struct fd_cancel {
    int fds[2];
    fut_future *task;
    int rc;
};

static void *fd_wait_task(void *arg)
{
    struct fd_cancel *c = arg;
    c->rc = fut_await_readable(c->fds[0], FUT_FOREVER);
    return NULL;
}

START_TEST(test_await_fd_cancelled)
{
    fut_loop *loop = new_loop();
    struct fd_cancel c = { 0 };
    ck_assert_int_eq(pipe(c.fds), 0);
    c.task = fut_loop_create_task(loop, fd_wait_task, &c);
    fut_loop_call_later(loop, 0.001, cancel_future_cb, c.task);
    run_until(loop, c.task);
    ck_assert_int_eq(c.rc, FUT_ECANCELLED);
    ck_assert(fut_cancelled(c.task));
    ck_assert_int_eq(fut_loop_remove_reader(loop, c.fds[0]), FUT_ENOENT);
    fut_future_unref(c.task);
    fut_loop_free(loop);
    close(c.fds[0]);
    close(c.fds[1]);
}
END_TEST

/* ---- outside a task, bad input ------------------------------------------------------ */

struct outside {
    fut_future *f;
    int rc[6];
};

static void outside_cb(void *arg)
{
    struct outside *o = arg;
    o->rc[0] = fut_await(o->f, NULL);
    o->rc[1] = fut_await_timeout(o->f, 1, NULL);
    o->rc[2] = fut_task_yield();
    o->rc[3] = fut_await_readable(0, 1);
    o->rc[4] = fut_await_writable(1, 1);
    o->rc[5] = fut_task_current() == NULL ? FUT_ESTATE : 0;
}

static void *outside_thread(void *arg)
{
    outside_cb(arg);
    return NULL;
}

static void check_outside(struct outside *o)
{
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(o->rc[i], FUT_ESTATE);
    ck_assert(!fut_done(o->f));  /* nothing was suspended, nothing cancelled */
}

START_TEST(test_await_outside_task)
{
    fut_loop *loop = new_loop();
    struct outside o = { .f = fut_loop_create_future(loop) };
    outside_cb(&o);                            /* no loop running at all */
    check_outside(&o);
    memset(o.rc, 0, sizeof o.rc);
    fut_loop_call_soon(loop, outside_cb, &o);  /* a plain callback of a running loop */
    fut_future *s = fut_loop_sleep(loop, 0, NULL);
    run_until(loop, s);
    check_outside(&o);
    memset(o.rc, 0, sizeof o.rc);
    pthread_t th;                              /* another thread */
    ck_assert_int_eq(pthread_create(&th, NULL, outside_thread, &o), 0);
    pthread_join(th, NULL);
    check_outside(&o);
    fut_future_unref(s);
    fut_future_unref(o.f);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_bad_input)
{
    errno = 0;
    ck_assert_ptr_null(fut_loop_create_task(NULL, return_arg, NULL));
    ck_assert_int_eq(errno, EINVAL);
    fut_loop *loop = new_loop();
    errno = 0;
    ck_assert_ptr_null(fut_loop_create_task(loop, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(fut_loop_set_task_stack_size(NULL, 1 << 20), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_set_task_stack_size(loop, 16 * 1024 - 1), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_set_task_stack_size(loop, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_set_task_stack_size(loop, SIZE_MAX), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_set_task_stack_size(loop, 16 * 1024), 0);
    ck_assert_int_eq(fut_await(NULL, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_await_timeout(NULL, 1, NULL), FUT_EINVAL);
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_await_timeout(f, NAN, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_await_readable(-1, 1), FUT_EINVAL);
    ck_assert_int_eq(fut_await_writable(0, NAN), FUT_EINVAL);
    fut_future_unref(f);
    fut_loop_free(loop);
}
END_TEST

/* ---- stacks ------------------------------------------------------------------------- */

static void *deep_task(void *arg)
{
    volatile char buf[200 * 1024];  /* most of the default 256 KiB */
    memset((char *)buf, 1, sizeof buf);
    fut_task_yield();
    return TU_P(buf[sizeof buf - 1] + buf[0]);
}

static void *small_task(void *arg)
{
    volatile char buf[8 * 1024];
    memset((char *)buf, 2, sizeof buf);
    fut_task_yield();
    return TU_P(buf[100]);
}

START_TEST(test_stack_sizes)
{
    fut_loop *loop = new_loop();
    fut_future *deep = fut_loop_create_task(loop, deep_task, NULL);
    ck_assert_int_eq(fut_loop_set_task_stack_size(loop, 16 * 1024), 0);
    fut_future *small = fut_loop_create_task(loop, small_task, NULL);
    fut_future *fs[2] = { deep, small };
    fut_future *g = fut_loop_gather(loop, fs, 2);
    run_until(loop, g);
    tu_assert_value(deep, 2);
    tu_assert_value(small, 2);
    fut_future_unref(g);
    fut_future_unref(deep);
    fut_future_unref(small);
    fut_loop_free(loop);
}
END_TEST

static volatile int bottomless = 1;

static int recurse(volatile char *p, int depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[1023] = p ? p[0] : 0;
    if (!bottomless)
        return frame[0];
    return recurse(frame, depth + 1) + frame[512];
}

static void *overflow_task(void *arg)
{
    return TU_P(recurse(NULL, 0));
}

/* Runs fn as a task with 64 KiB stacks in a forked child (guard scheme `guard`, or the
 * default) and returns the child's wait status. */
static int run_in_child(fut_fn fn, const char *guard)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        if (guard)
            setenv("FUT_TASK_STACK_GUARD", guard, 1);
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        fut_loop *loop = fut_loop_new();
        fut_loop_set_task_stack_size(loop, 64 * 1024);
        fut_future *f = fut_loop_create_task(loop, fn, NULL);
        fut_loop_run_until_complete(loop, f);
        _exit(0);  /* unreachable if the guard works */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void check_killed_by(int status, int sig)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || TU_CLANG_SANITIZED
    /* the sanitizers report the crash themselves and exit non-zero */
    ck_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
    (void)sig;
#else
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig,
                  "child status %#x: not killed by signal %d", status, sig);
#endif
}

/* On a kernel without MADV_GUARD_INSTALL: a PROT_NONE page made with mprotect. */
START_TEST(test_stack_overflow_mprotect_guard)
{
    check_killed_by(run_in_child(overflow_task, "mprotect"), SIGSEGV);
}
END_TEST

/* Beyond the budget of guard mappings: the canary, checked when the task suspends. */
static volatile char *canary_top;

static void *overflow_a_little(void *arg)
{
    volatile char frame[128];
    frame[0] = 1;
    if (!canary_top) {
        canary_top = frame;
        fut_task_yield();  /* binds its PLT entry now: the resolver's frame is large */
    }
    /* 1 KiB past the stack's bottom: over the canary, not past the page below it */
    if (canary_top - frame < 64 * 1024 + 1024)
        return overflow_a_little(arg) + frame[0] ? NULL : NULL;
    fut_task_yield();  /* the switch away finds the canary overwritten */
    return NULL;
}

START_TEST(test_stack_overflow_canary)
{
    check_killed_by(run_in_child(overflow_a_little, "canary"), SIGABRT);
}
END_TEST

/* A stack overflow hits the guard page: SIGSEGV, never silent corruption. */
START_TEST(test_stack_overflow_hits_guard)
{
    check_killed_by(run_in_child(overflow_task, NULL), SIGSEGV);
}
END_TEST

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

struct many {
    fut_future *shared;
    long resumed;
    int max_maps;
};

static void *many_task(void *arg)
{
    struct many *m = arg;
    void *r = NULL;
    if (fut_await(m->shared, &r) == 0 && TU_I(r) == 1)
        m->resumed++;
    return NULL;
}

static void measure_maps(void *arg)
{
    struct many *m = arg;
    m->max_maps = count_maps();
}

/* 100,000 tasks awaiting at once, within vm.max_map_count (65530 here). */
START_TEST(test_many_tasks_awaiting)
{
    size_t n = tu_scale(100000, 5000);
    fut_loop *loop = new_loop();
    struct many m = { 0 };
    m.shared = fut_loop_sleep(loop, 0.01, TU_P(1));
    fut_future **t = malloc(n * sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < n; i++) {
        t[i] = fut_loop_create_task(loop, many_task, &m);
        TU_REQUIRE(t[i], "create_task %zu: %s", i, strerror(errno));
    }
    fut_loop_call_later(loop, 0.005, measure_maps, &m);  /* all are suspended by then */
    fut_future *g = fut_loop_gather(loop, t, n);
    run_until(loop, g);
    ck_assert_int_eq(fut_exception(g, 0), 0);
    ck_assert_int_eq(m.resumed, (long)n);
    ck_assert_int_gt(m.max_maps, 0);
    ck_assert_int_lt(m.max_maps, 65530);
    fut_future_unref(g);
    for (size_t i = 0; i < n; i++)
        fut_future_unref(t[i]);
    free(t);
    fut_future_unref(m.shared);
    fut_loop_free(loop);
}
END_TEST

static void *churn_task(void *arg)
{
    volatile char here = 0;
    uintptr_t *span = arg;  /* lowest and highest stack address seen */
    uintptr_t a = (uintptr_t)&here;
    if (a < span[0])
        span[0] = a;
    if (a > span[1])
        span[1] = a;
    return NULL;
}

/* Stacks are reused: 3,200 short tasks, 64 at a time, run on the same 64 stacks. */
START_TEST(test_stacks_reused)
{
    fut_loop *loop = new_loop();
    uintptr_t span[2] = { UINTPTR_MAX, 0 };
    for (int round = 0; round < 50; round++) {
        fut_future *fs[64];
        for (int i = 0; i < 64; i++)
            fs[i] = fut_loop_create_task(loop, churn_task, span);
        fut_future *g = fut_loop_gather(loop, fs, 64);
        run_until(loop, g);
        fut_future_unref(g);
        for (int i = 0; i < 64; i++)
            fut_future_unref(fs[i]);
    }
    /* 64 stacks of 256 KiB and their guard pages; 3,200 fresh ones would span 800 MiB */
    ck_assert_uint_lt(span[1] - span[0], (uintptr_t)65 * (256 + 4) * 1024);
    fut_loop_free(loop);
}
END_TEST

/* ---- the loop's ordering rules ------------------------------------------------------ */

struct fifo {
    struct log log;
    fut_loop *loop;
};

struct fifo_entry {
    struct fifo *f;
    int v;
};

static void fifo_cb(void *arg)
{
    struct fifo_entry *e = arg;
    log_add(&e->f->log, e->v);
}

static void schedule_mixed(void *arg)
{
    static struct fifo_entry e[4];
    struct fifo *f = arg;
    for (int i = 0; i < 4; i++)
        e[i] = (struct fifo_entry){ f, i };
    fut_loop_call_soon_threadsafe(f->loop, fifo_cb, &e[0]);
    fut_loop_call_soon(f->loop, fifo_cb, &e[1]);
    fut_loop_call_soon_threadsafe(f->loop, fifo_cb, &e[2]);
    fut_loop_call_soon(f->loop, fifo_cb, &e[3]);
}

/* call_soon_threadsafe from the loop's own thread keeps its place in line. */
START_TEST(test_threadsafe_from_loop_thread_is_fifo)
{
    struct fifo f = { .loop = new_loop() };
    fut_loop_call_soon(f.loop, schedule_mixed, &f);
    fut_future *s = fut_loop_sleep(f.loop, 0.001, NULL);
    run_until(f.loop, s);
    log_expect(&f.log, (int[]){ 0, 1, 2, 3 }, 4);
    fut_future_unref(s);
    fut_loop_free(f.loop);
}
END_TEST

/* call_later(delay) is time() + delay even for negative delays. */
START_TEST(test_call_later_negative_delays)
{
    struct fifo f = { .loop = new_loop() };
    struct fifo_entry e[4] = { { &f, 1 }, { &f, 2 }, { &f, 0 }, { &f, 3 } };
    ck_assert(fut_loop_call_later(f.loop, -1, fifo_cb, &e[0]) != 0);
    ck_assert(fut_loop_call_later(f.loop, -0.5, fifo_cb, &e[1]) != 0);
    ck_assert(fut_loop_call_later(f.loop, -2, fifo_cb, &e[2]) != 0);
    ck_assert(fut_loop_call_later(f.loop, 0, fifo_cb, &e[3]) != 0);
    fut_future *s = fut_loop_sleep(f.loop, 0.001, NULL);
    run_until(f.loop, s);
    log_expect(&f.log, (int[]){ 0, 1, 2, 3 }, 4);
    fut_future_unref(s);
    fut_loop_free(f.loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("task");
    TCase *tc = tu_tcase(s, "tasks", 60);
    tcase_add_test(tc, test_create_task_runs_later);
    tcase_add_test(tc, test_create_task_is_fifo_with_call_soon);
    tcase_add_test(tc, test_task_raises);
    tcase_add_test(tc, test_bytes_result_owned_by_future);
    tcase_add_test(tc, test_current);
    tcase_add_test(tc, test_task_runs_without_holder);
    tcase_add_test(tc, test_await_done_future_does_not_yield);
    tcase_add_test(tc, test_awaiters_resume_in_order);
    tcase_add_test(tc, test_await_executor_futures);
    tcase_add_test(tc, test_await_returns_exception_code);
    tcase_add_test(tc, test_await_other_loop_future);
    tcase_add_test(tc, test_await_timeout);
    tcase_add_test(tc, test_await_timeout_running_executor_task);
    tcase_add_test(tc, test_await_self_is_refused);
    tcase_add_test(tc, test_yield_alternates);
    tcase_add_test(tc, test_fpu_modes_are_per_task);
    tcase_add_test(tc, test_cancel_before_start);
    tcase_add_test(tc, test_cancel_suspended_task);
    tcase_add_test(tc, test_self_cancel_delivered_at_next_suspension);
    tcase_add_test(tc, test_awaited_cancelled_by_other);
    tcase_add_test(tc, test_cancel_propagates_to_awaited_task);
    tcase_add_test(tc, test_cancel_finished_task);
    tcase_add_test(tc, test_cancel_from_other_thread);
    tcase_add_test(tc, test_loop_free_reclaims_stranded_tasks);
    tcase_add_test(tc, test_loop_free_ends_with_stubborn_cleanup);
    tcase_add_test(tc, test_run);
    tcase_add_test(tc, test_run_outcomes);
    tcase_add_test(tc, test_await_fds);
    tcase_add_test(tc, test_await_fd_cancelled);
    tcase_add_test(tc, test_await_outside_task);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_stack_sizes);
    tcase_add_test(tc, test_stack_overflow_hits_guard);
    tcase_add_test(tc, test_stack_overflow_mprotect_guard);
    tcase_add_test(tc, test_stack_overflow_canary);
    tcase_add_test(tc, test_stacks_reused);
    tcase_add_test(tc, test_threadsafe_from_loop_thread_is_fifo);
    tcase_add_test(tc, test_call_later_negative_delays);
    TCase *big = tu_tcase(s, "many", 300);
    tcase_add_test(big, test_many_tasks_awaiting);
    return tu_run(s);
}
