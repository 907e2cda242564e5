/* SPDX-License-Identifier: MIT */
/* fut_wait: the three conditions, timeouts, the stable in-place partition. */
#include <stdatomic.h>
#include <string.h>

#include "testutil.h"

static fut_future *done_with(void *value)
{
    fut_future *f = fut_future_new();
    fut_set_result(f, value);
    return f;
}

static void unref_all(fut_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fut_future_unref(fs[i]);
}

/* fut_wait reorders its array, done futures first: fs[] starts with these, in order. A
 * macro, so that a failure names the test's line. */
#define assert_order(fs, ...)                                                             \
    do {                                                                                  \
        fut_future *expected_[] = { __VA_ARGS__ };                                        \
        for (size_t i_ = 0; i_ < TU_ARRAY_SIZE(expected_); i_++)                          \
            ck_assert_msg((fs)[i_] == expected_[i_], "fs[%zu] is not the expected one", i_); \
    } while (0)

/* A helper thread completes futures, each after the test is (very likely) blocked.
 * The pause only makes the blocking path likely; no assertion depends on its length. */
struct completion {
    fut_future *f;
    int code;                      /* 0: set a result; else: set this exception */
};

struct completer {
    pthread_t thread;
    struct completion steps[8];
    size_t n;
};

static void *complete_steps(void *arg)
{
    struct completer *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        tu_sleep(0.01);
        if (c->steps[i].code)
            fut_set_exception(c->steps[i].f, c->steps[i].code, "failed");
        else
            fut_set_result(c->steps[i].f, TU_P(i));
    }
    return NULL;
}

static void completer_start(struct completer *c)
{
    ck_assert_int_eq(pthread_create(&c->thread, NULL, complete_steps, c), 0);
}

START_TEST(test_first_completed_already_done)
{
    fut_future *p0 = fut_future_new(), *d1 = done_with(NULL), *p2 = fut_future_new(),
               *d3 = done_with(NULL);
    fut_future *fs[] = { p0, d1, p2, d3 };
    size_t n_done = 99;
    double start = tu_now();
    ck_assert_int_eq(fut_wait(fs, 4, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), 0);
    ck_assert_double_lt(tu_now() - start, 1.0);
    ck_assert_uint_eq(n_done, 2);
    /* stable: done ones in input order, then pending ones in input order */
    assert_order(fs, d1, d3, p0, p2);
    unref_all(fs, 4);
}
END_TEST

START_TEST(test_first_completed_blocks)
{
    fut_future *a = fut_future_new(), *b = fut_future_new(), *c = fut_future_new();
    fut_future *fs[] = { a, b, c };
    struct completer comp = { .steps = { { b, 0 } }, .n = 1 };
    completer_start(&comp);
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 3, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), 0);
    pthread_join(comp.thread, NULL);
    ck_assert_uint_eq(n_done, 1);
    assert_order(fs, b, a, c);
    ck_assert(!fut_done(a) && !fut_done(c));
    unref_all(fs, 3);
}
END_TEST

START_TEST(test_first_exception)
{
    fut_future *ok = done_with(NULL), *p1 = fut_future_new(), *p2 = fut_future_new(),
               *bad = fut_future_new();
    fut_future *fs[] = { p1, ok, bad, p2 };
    /* p1 finishes fine first: not enough; then bad raises: wait returns, p2 still pending */
    struct completer comp = { .steps = { { p1, 0 }, { bad, 9 } }, .n = 2 };
    completer_start(&comp);
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 4, FUT_FOREVER, FUT_FIRST_EXCEPTION, &n_done), 0);
    pthread_join(comp.thread, NULL);
    ck_assert_uint_eq(n_done, 3);
    assert_order(fs, p1, ok, bad, p2);
    ck_assert(!fut_done(p2));
    unref_all(fs, 4);
}
END_TEST

START_TEST(test_first_exception_already_raised)
{
    fut_future *bad = fut_future_new(), *p = fut_future_new();
    fut_set_exception(bad, 3, NULL);
    fut_future *fs[] = { p, bad };
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 2, FUT_FOREVER, FUT_FIRST_EXCEPTION, &n_done), 0);
    ck_assert_uint_eq(n_done, 1);
    assert_order(fs, bad, p);
    unref_all(fs, 2);
}
END_TEST

START_TEST(test_first_exception_without_one_waits_for_all)
{
    fut_future *a = fut_future_new(), *b = fut_future_new(), *c = done_with(NULL);
    fut_future *fs[] = { a, b, c };
    struct completer comp = { .steps = { { b, 0 }, { a, 0 } }, .n = 2 };
    completer_start(&comp);
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 3, FUT_FOREVER, FUT_FIRST_EXCEPTION, &n_done), 0);
    ck_assert(fut_done(a) && fut_done(b));
    pthread_join(comp.thread, NULL);
    ck_assert_uint_eq(n_done, 3);
    assert_order(fs, a, b, c);
    unref_all(fs, 3);
}
END_TEST

START_TEST(test_first_exception_cancelled_is_not_an_exception)
{
    fut_future *cancelled = fut_future_new(), *p = fut_future_new();
    ck_assert(fut_cancel(cancelled));
    fut_future *fs[] = { p, cancelled };
    size_t n_done = 0;
    double start = tu_now();
    ck_assert_int_eq(fut_wait(fs, 2, 0.05, FUT_FIRST_EXCEPTION, &n_done), 0);
    ck_assert_double_ge(tu_now() - start, 0.05);  /* it did wait for the timeout */
    ck_assert_uint_eq(n_done, 1);
    assert_order(fs, cancelled, p);
    unref_all(fs, 2);
}
END_TEST

START_TEST(test_all_completed)
{
    fut_future *a = fut_future_new(), *b = fut_future_new(), *c = fut_future_new();
    fut_future *fs[] = { a, b, c };
    /* exceptions do not stop ALL_COMPLETED */
    struct completer comp = { .steps = { { c, 4 }, { a, 0 }, { b, 0 } }, .n = 3 };
    completer_start(&comp);
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 3, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert(fut_done(a) && fut_done(b) && fut_done(c));
    pthread_join(comp.thread, NULL);
    ck_assert_uint_eq(n_done, 3);
    assert_order(fs, a, b, c);
    unref_all(fs, 3);
}
END_TEST

START_TEST(test_timeout_is_not_an_error)
{
    static const int modes[] = { FUT_FIRST_COMPLETED, FUT_FIRST_EXCEPTION, FUT_ALL_COMPLETED };
    for (size_t m = 0; m < TU_ARRAY_SIZE(modes); m++) {
        fut_future *p0 = fut_future_new(), *d1 = done_with(NULL), *p2 = fut_future_new();
        fut_future *fs[] = { p0, p2, d1 };
        if (modes[m] == FUT_FIRST_COMPLETED)
            fs[2] = fut_future_new();  /* nothing done: it must wait too */
        size_t n_done = 99;
        double start = tu_now();
        ck_assert_int_eq(fut_wait(fs, 3, 0.05, modes[m], &n_done), 0);
        double elapsed = tu_now() - start;
        ck_assert_double_ge(elapsed, 0.05);
        ck_assert_double_lt(elapsed, 2.0);
        if (modes[m] == FUT_FIRST_COMPLETED) {
            ck_assert_uint_eq(n_done, 0);
            assert_order(fs, p0, p2);
            fut_future_unref(d1);
        } else {
            ck_assert_uint_eq(n_done, 1);
            assert_order(fs, d1, p0, p2);
        }
        unref_all(fs, 3);
    }
}
END_TEST

START_TEST(test_blocks_without_polling)
{
    /* 0.2 s of waiting must cost far less than 0.2 s of CPU: it sleeps, it does not spin */
    fut_future *fs[2] = { fut_future_new(), fut_future_new() };
    size_t n_done = 0;
    double cpu = tu_thread_cpu(), start = tu_now();
    ck_assert_int_eq(fut_wait(fs, 2, 0.2, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_double_ge(tu_now() - start, 0.2);
    ck_assert_double_lt(tu_thread_cpu() - cpu, 0.1);
    ck_assert_uint_eq(n_done, 0);
    unref_all(fs, 2);
}
END_TEST

START_TEST(test_timeout_zero_polls)
{
    fut_future *p = fut_future_new(), *d = done_with(NULL);
    fut_future *fs[] = { p, d };
    size_t n_done = 99;
    double start = tu_now();
    ck_assert_int_eq(fut_wait(fs, 2, 0, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_double_lt(tu_now() - start, 0.5);
    ck_assert_uint_eq(n_done, 1);
    assert_order(fs, d, p);
    unref_all(fs, 2);
}
END_TEST

START_TEST(test_cancelled_counts_as_done)
{
    fut_future *a = fut_future_new(), *b = fut_future_new();
    ck_assert(fut_cancel(b));
    fut_future *fs[] = { a, b };
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 2, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, 1);
    ck_assert_ptr_eq(fs[0], b);
    ck_assert(fut_cancel(a));
    ck_assert_int_eq(fut_wait(fs, 2, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, 2);
    assert_order(fs, b, a);
    unref_all(fs, 2);
}
END_TEST

static void *cancel_task(void *arg)
{
    return TU_P(fut_cancel(arg));
}

START_TEST(test_cancel_wakes_waiter)
{
    fut_future *a = fut_future_new();
    fut_future *fs[] = { a };
    /* cancelled from a pool task while the test blocks */
    fut_executor *ex = fut_thread_pool_new(NULL);
    fut_future *canceller = fut_submit(ex, cancel_task, a);
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 1, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, 1);
    ck_assert(fut_cancelled(a));
    fut_executor_free(ex);
    fut_future_unref(canceller);
    fut_future_unref(a);
}
END_TEST

/*
 * Futures finishing while fut_wait looks at them: every round races the workers' last
 * completions against fut_wait's own passes over the batch. A fut_wait that lost track
 * of futures finishing between two passes would block forever (the test times out).
 */
START_TEST(test_all_completed_races_completions)
{
    enum { BATCH = 64 };
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    size_t rounds = tu_scale(10000, 500);
    for (size_t r = 0; r < rounds; r++) {
        fut_future *fs[BATCH];
        for (size_t i = 0; i < BATCH; i++)
            TU_REQUIRE((fs[i] = fut_submit(ex, tu_plus_one, TU_P(i))) != NULL, "submit");
        size_t n_done = 0;
        TU_REQUIRE(fut_wait(fs, BATCH, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done) == 0, "wait");
        TU_REQUIRE(n_done == BATCH, "n_done %zu", n_done);
        for (size_t i = 0; i < BATCH; i++) {
            void *value = NULL;
            TU_REQUIRE(fut_result(fs[i], 0, &value) == 0 && value == TU_P(i + 1), "result %zu", i);
            fut_future_unref(fs[i]);
        }
    }
    fut_executor_free(ex);
}
END_TEST

/*
 * FIRST_COMPLETED while the last of many futures finishes and the others never do.
 * fut_wait once checked its condition in one pass over the futures and collected the
 * pending ones in a second: a future finishing between its turns in the two passes was in
 * neither, and the wait blocked for ever on the others (the test times out). The passes
 * take microseconds over 4,096 futures, and each round completes the last future a
 * different number of microseconds after fut_wait starts, so some rounds land between.
 */
enum { RACE_FUTURES = 4096 };

struct late_completion {
    fut_future *f;
    atomic_bool waiting;
    double delay;
};

static void *complete_after_delay(void *arg)
{
    struct late_completion *c = arg;
    while (!atomic_load(&c->waiting))
        sched_yield();
    double until = tu_now() + c->delay;  /* timing only: correctness needs no delay */
    while (tu_now() < until)
        ;
    fut_set_result(c->f, TU_P(1));
    return NULL;
}

START_TEST(test_first_completed_races_completion)
{
    fut_future **fs = malloc(RACE_FUTURES * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (size_t i = 0; i + 1 < RACE_FUTURES; i++)
        fs[i] = fut_future_new();
    size_t rounds = tu_scale(300, 60);
    for (size_t r = 0; r < rounds; r++) {
        struct late_completion c = { .f = fut_future_new(), .delay = (double)(r % 60) * 1e-6 };
        fs[RACE_FUTURES - 1] = c.f;
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, complete_after_delay, &c), 0);
        atomic_store(&c.waiting, true);
        size_t n_done = 0;
        ck_assert_int_eq(fut_wait(fs, RACE_FUTURES, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), 0);
        ck_assert_uint_eq(n_done, 1);
        ck_assert_ptr_eq(fs[0], c.f);  /* done ones first, the rest in order */
        memmove(fs, fs + 1, (RACE_FUTURES - 1) * sizeof *fs);
        pthread_join(t, NULL);
        fut_future_unref(c.f);
    }
    for (size_t i = 0; i + 1 < RACE_FUTURES; i++) {
        ck_assert(!fut_done(fs[i]));
        fut_future_unref(fs[i]);
    }
    free(fs);
}
END_TEST

START_TEST(test_mixed_futures)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    struct tu_gate gate;
    tu_gate_init(&gate);
    fut_future *held = fut_submit(ex, tu_wait_gate, &gate);
    fut_future *quick = fut_submit(ex, tu_plus_one, TU_P(1));
    fut_future *plain = fut_future_new();
    fut_future *fs[] = { held, plain, quick };
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 3, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, 1);
    assert_order(fs, quick, held, plain);

    struct completer comp = { .steps = { { plain, 0 } }, .n = 1 };
    completer_start(&comp);
    tu_gate_open(&gate);
    ck_assert_int_eq(fut_wait(fs, 3, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    pthread_join(comp.thread, NULL);
    ck_assert_uint_eq(n_done, 3);
    assert_order(fs, quick, held, plain);
    fut_executor_free(ex);
    unref_all(fs, 3);
    tu_gate_destroy(&gate);
}
END_TEST

START_TEST(test_empty)
{
    static const int modes[] = { FUT_FIRST_COMPLETED, FUT_FIRST_EXCEPTION, FUT_ALL_COMPLETED };
    for (size_t m = 0; m < TU_ARRAY_SIZE(modes); m++) {
        size_t n_done = 99;
        ck_assert_int_eq(fut_wait(NULL, 0, FUT_FOREVER, modes[m], &n_done), 0);
        ck_assert_uint_eq(n_done, 0);
        fut_future *none[1] = { NULL };
        n_done = 99;
        ck_assert_int_eq(fut_wait(none, 0, FUT_FOREVER, modes[m], &n_done), 0);
        ck_assert_uint_eq(n_done, 0);
    }
}
END_TEST

START_TEST(test_duplicates)
{
    fut_future *a = fut_future_new(), *b = fut_future_new();
    fut_future *fs[] = { a, b, a, b, a };
    struct completer comp = { .steps = { { a, 0 }, { b, 0 } }, .n = 2 };
    completer_start(&comp);
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, 5, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert(fut_done(a) && fut_done(b));
    pthread_join(comp.thread, NULL);
    ck_assert_uint_eq(n_done, 5);

    fut_future *c = fut_future_new(), *d = done_with(NULL);
    fut_future *gs[] = { c, d, c, d };
    ck_assert_int_eq(fut_wait(gs, 4, 0, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, 2);
    ck_assert_ptr_eq(gs[0], d);
    ck_assert_ptr_eq(gs[1], d);
    ck_assert_ptr_eq(gs[2], c);
    ck_assert_ptr_eq(gs[3], c);
    unref_all((fut_future *[]){ a, b, c, d }, 4);
}
END_TEST

START_TEST(test_invalid_arguments)
{
    fut_future *a = fut_future_new(), *b = fut_future_new();
    fut_set_result(b, NULL);
    fut_future *fs[] = { a, b };
    size_t n_done = 77;
    ck_assert_int_eq(fut_wait(fs, 2, 0, -1, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(fs, 2, 0, 3, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(fs, 2, 0, 42, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(fs, 2, 0, FUT_ALL_COMPLETED, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(NULL, 2, 0, FUT_ALL_COMPLETED, &n_done), FUT_EINVAL);
    fut_future *with_null[] = { a, NULL, b };
    ck_assert_int_eq(fut_wait(with_null, 3, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(with_null, 3, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), FUT_EINVAL);
    /* rejected calls touch neither the array nor n_done */
    ck_assert_uint_eq(n_done, 77);
    assert_order(fs, a, b);
    ck_assert_ptr_eq(with_null[0], a);
    ck_assert_ptr_null(with_null[1]);
    ck_assert_ptr_eq(with_null[2], b);
    unref_all(fs, 2);
}
END_TEST

static Suite *wait_suite(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = tu_tcase(s, "conditions", 30);
    tcase_add_test(tc, test_first_completed_already_done);
    tcase_add_test(tc, test_first_completed_blocks);
    tcase_add_test(tc, test_first_exception);
    tcase_add_test(tc, test_first_exception_already_raised);
    tcase_add_test(tc, test_first_exception_without_one_waits_for_all);
    tcase_add_test(tc, test_first_exception_cancelled_is_not_an_exception);
    tcase_add_test(tc, test_all_completed);

    tc = tu_tcase(s, "timeouts", 30);
    tcase_add_test(tc, test_timeout_is_not_an_error);
    tcase_add_test(tc, test_timeout_zero_polls);
    tcase_add_test(tc, test_blocks_without_polling);

    tc = tu_tcase(s, "inputs", 30);
    tcase_add_test(tc, test_cancelled_counts_as_done);
    tcase_add_test(tc, test_cancel_wakes_waiter);
    tcase_add_test(tc, test_mixed_futures);
    tcase_add_test(tc, test_first_completed_races_completion);
    tcase_add_test(tc, test_all_completed_races_completions);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_invalid_arguments);
    return s;
}

int main(void)
{
    return tu_run(wait_suite());
}
