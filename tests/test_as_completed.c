/* SPDX-License-Identifier: MIT */
/* fut_as_completed: completion order, done-first, duplicates, timeouts, early free. */
#include "testutil.h"

static fut_future *next_or_null(fut_as_completed *it, int expect_rc)
{
    fut_future *out = NULL;
    ck_assert_int_eq(fut_as_completed_next(it, &out), expect_rc);
    return out;
}

START_TEST(test_completion_order)
{
    fut_future *fs[3] = { fut_future_new(), fut_future_new(), fut_future_new() };
    fut_as_completed *it = fut_as_completed_new(fs, 3, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    /* each future completes just before the call that must yield it */
    static const int order[] = { 2, 0, 1 };
    for (size_t i = 0; i < 3; i++) {
        fut_set_result(fs[order[i]], NULL);
        ck_assert_ptr_eq(next_or_null(it, 1), fs[order[i]]);
    }
    ck_assert_ptr_null(next_or_null(it, 0));
    ck_assert_ptr_null(next_or_null(it, 0));  /* stays at the end */
    fut_as_completed_free(it);
    for (size_t i = 0; i < 3; i++)
        fut_future_unref(fs[i]);
}
END_TEST

START_TEST(test_completion_order_pool)
{
    /* tasks block on their own gate: opening the gates decides the order */
    enum { N = 4 };
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = N });
    struct tu_gate gates[N];
    fut_future *fs[N];
    for (int i = 0; i < N; i++) {
        tu_gate_init(&gates[i]);
        fs[i] = fut_submit(ex, tu_wait_gate, &gates[i]);
    }
    fut_as_completed *it = fut_as_completed_new(fs, N, FUT_FOREVER);
    static const int order[N] = { 3, 1, 0, 2 };
    for (int i = 0; i < N; i++) {
        tu_gate_open(&gates[order[i]]);
        fut_future *f = next_or_null(it, 1);
        ck_assert_ptr_eq(f, fs[order[i]]);
        void *out = NULL;
        ck_assert_int_eq(fut_result(f, 0, &out), 0);
        ck_assert_ptr_eq(out, &gates[order[i]]);
    }
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    fut_executor_free(ex);
    for (int i = 0; i < N; i++) {
        fut_future_unref(fs[i]);
        tu_gate_destroy(&gates[i]);
    }
}
END_TEST

START_TEST(test_done_ones_first)
{
    fut_future *p0 = fut_future_new(), *d1 = fut_future_new(), *p2 = fut_future_new(),
               *d3 = fut_future_new();
    ck_assert(fut_cancel(d3));  /* cancelled counts as done */
    fut_set_result(d1, NULL);
    fut_future *fs[] = { p0, d1, p2, d3 };
    fut_as_completed *it = fut_as_completed_new(fs, 4, FUT_FOREVER);
    fut_set_result(p2, NULL);  /* finishes after the iterator exists, before any next() */
    ck_assert_ptr_eq(next_or_null(it, 1), d1);
    ck_assert_ptr_eq(next_or_null(it, 1), d3);
    ck_assert_ptr_eq(next_or_null(it, 1), p2);
    fut_set_exception(p0, 3, NULL);
    ck_assert_ptr_eq(next_or_null(it, 1), p0);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    for (size_t i = 0; i < 4; i++)
        fut_future_unref(fs[i]);
}
END_TEST

START_TEST(test_duplicates_once)
{
    fut_future *a = fut_future_new(), *b = fut_future_new(), *c = fut_future_new();
    fut_set_result(c, NULL);
    fut_future *fs[] = { a, c, b, a, c, a };
    fut_as_completed *it = fut_as_completed_new(fs, 6, FUT_FOREVER);
    ck_assert_ptr_eq(next_or_null(it, 1), c);
    fut_set_result(a, NULL);
    ck_assert_ptr_eq(next_or_null(it, 1), a);
    fut_set_result(b, NULL);
    ck_assert_ptr_eq(next_or_null(it, 1), b);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    fut_future_unref(a);
    fut_future_unref(b);
    fut_future_unref(c);
}
END_TEST

START_TEST(test_timeout_then_later_ones)
{
    fut_future *a = fut_future_new(), *b = fut_future_new(), *d = fut_future_new();
    fut_set_result(d, NULL);
    fut_future *fs[] = { a, b, d };
    double start = tu_now();
    fut_as_completed *it = fut_as_completed_new(fs, 3, 0.05);
    ck_assert_ptr_eq(next_or_null(it, 1), d);  /* done ones come even at the deadline */
    ck_assert_ptr_null(next_or_null(it, FUT_ETIMEDOUT));
    double elapsed = tu_now() - start;
    ck_assert_double_ge(elapsed, 0.05);
    ck_assert_double_lt(elapsed, 2.0);
    /* the deadline has passed: no more waiting, but later completions are still yielded */
    start = tu_now();
    ck_assert_ptr_null(next_or_null(it, FUT_ETIMEDOUT));
    ck_assert_double_lt(tu_now() - start, 0.5);
    fut_set_result(b, NULL);
    ck_assert_ptr_eq(next_or_null(it, 1), b);
    ck_assert_ptr_null(next_or_null(it, FUT_ETIMEDOUT));
    ck_assert(fut_cancel(a));
    ck_assert_ptr_eq(next_or_null(it, 1), a);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    for (size_t i = 0; i < 3; i++)
        fut_future_unref(fs[i]);
}
END_TEST

START_TEST(test_blocks_without_polling)
{
    fut_future *a = fut_future_new();
    fut_as_completed *it = fut_as_completed_new(&a, 1, 0.2);
    double cpu = tu_thread_cpu();
    ck_assert_ptr_null(next_or_null(it, FUT_ETIMEDOUT));
    ck_assert_double_lt(tu_thread_cpu() - cpu, 0.1);  /* it slept, it did not spin */
    fut_as_completed_free(it);
    fut_future_unref(a);
}
END_TEST

START_TEST(test_timeout_zero)
{
    fut_future *a = fut_future_new(), *d = fut_future_new();
    fut_set_result(d, NULL);
    fut_future *fs[] = { a, d };
    fut_as_completed *it = fut_as_completed_new(fs, 2, 0);
    ck_assert_ptr_eq(next_or_null(it, 1), d);
    ck_assert_ptr_null(next_or_null(it, FUT_ETIMEDOUT));
    fut_set_result(a, NULL);
    ck_assert_ptr_eq(next_or_null(it, 1), a);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    fut_future_unref(a);
    fut_future_unref(d);
}
END_TEST

START_TEST(test_empty)
{
    fut_as_completed *it = fut_as_completed_new(NULL, 0, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    fut_future *none[1] = { NULL };
    it = fut_as_completed_new(none, 0, 0.01);
    ck_assert_ptr_nonnull(it);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
}
END_TEST

START_TEST(test_free_early)
{
    /* freed with futures still pending or not yet yielded: nothing leaks (ASan/valgrind),
     * and futures finishing afterwards never touch the freed iterator */
    fut_future *a = fut_future_new(), *b = fut_future_new(), *c = fut_future_new();
    fut_set_result(c, NULL);
    fut_future *fs[] = { a, b, c };
    fut_as_completed *it = fut_as_completed_new(fs, 3, FUT_FOREVER);
    fut_as_completed_free(it);
    fut_set_result(a, NULL);
    fut_set_result(b, NULL);

    fut_future *d = fut_future_new(), *e = fut_future_new();
    fut_future *gs[] = { d, e, a };
    it = fut_as_completed_new(gs, 3, FUT_FOREVER);
    ck_assert_ptr_eq(next_or_null(it, 1), a);
    fut_set_result(e, NULL);  /* done but never yielded */
    fut_as_completed_free(it);
    fut_set_result(d, NULL);
    for (size_t i = 0; i < 3; i++)
        fut_future_unref(fs[i]);
    fut_future_unref(d);
    fut_future_unref(e);
}
END_TEST

START_TEST(test_pool_futures_in_any_state)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    struct tu_gate gate;
    tu_gate_init(&gate);
    fut_future *running = fut_submit(ex, tu_wait_gate, &gate);
    fut_future *queued = fut_submit(ex, tu_plus_one, TU_P(1));
    fut_future *cancelled = fut_submit(ex, tu_plus_one, TU_P(2));
    ck_assert(fut_cancel(cancelled));
    fut_future *fs[] = { running, queued, cancelled };
    fut_as_completed *it = fut_as_completed_new(fs, 3, FUT_FOREVER);
    ck_assert_ptr_eq(next_or_null(it, 1), cancelled);
    tu_gate_open(&gate);
    /* one worker: the queued task runs only after the blocked one */
    ck_assert_ptr_eq(next_or_null(it, 1), running);
    ck_assert_ptr_eq(next_or_null(it, 1), queued);
    ck_assert_ptr_null(next_or_null(it, 0));
    fut_as_completed_free(it);
    fut_executor_free(ex);
    for (size_t i = 0; i < 3; i++)
        fut_future_unref(fs[i]);
    tu_gate_destroy(&gate);
}
END_TEST

START_TEST(test_free_right_after_last_yield)
{
    /* the worker that completes the future may still be notifying when next() returns:
     * freeing the iterator at once must be safe (ASan/valgrind see a use after free) */
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    const int rounds = (int)tu_scale(2000, 200);
    for (int round = 0; round < rounds; round++) {
        fut_future *fs[2] = { fut_submit(ex, tu_plus_one, TU_P(round)),
                              fut_submit(ex, tu_plus_one, TU_P(round)) };
        fut_as_completed *it = fut_as_completed_new(fs, 2, FUT_FOREVER);
        fut_future *out = NULL;
        /* odd rounds free it while the tasks may still be finishing, nothing yielded */
        if (round % 2 == 0) {
            TU_REQUIRE(fut_as_completed_next(it, &out) == 1, "round %d: first", round);
            TU_REQUIRE(fut_as_completed_next(it, &out) == 1, "round %d: second", round);
        }
        fut_as_completed_free(it);
        TU_REQUIRE(fut_result(fs[0], FUT_FOREVER, NULL) == 0, "round %d", round);
        TU_REQUIRE(fut_result(fs[1], FUT_FOREVER, NULL) == 0, "round %d", round);
        fut_future_unref(fs[0]);
        fut_future_unref(fs[1]);
    }
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_invalid_arguments)
{
    fut_future *a = fut_future_new();
    fut_future *with_null[] = { a, NULL };
    errno = 0;
    ck_assert_ptr_null(fut_as_completed_new(NULL, 2, FUT_FOREVER));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(fut_as_completed_new(with_null, 2, FUT_FOREVER));
    ck_assert_int_eq(errno, EINVAL);

    fut_future *fs[] = { a };
    fut_as_completed *it = fut_as_completed_new(fs, 1, FUT_FOREVER);
    ck_assert_int_eq(fut_as_completed_next(it, NULL), FUT_EINVAL);
    fut_future *out = NULL;
    ck_assert_int_eq(fut_as_completed_next(NULL, &out), FUT_EINVAL);
    ck_assert_ptr_null(out);
    fut_as_completed_free(NULL);
    fut_set_result(a, NULL);
    ck_assert_int_eq(fut_as_completed_next(it, &out), 1);
    ck_assert_ptr_eq(out, a);
    fut_as_completed_free(it);
    fut_future_unref(a);
}
END_TEST

static Suite *as_completed_suite(void)
{
    Suite *s = suite_create("as_completed");
    TCase *tc = tu_tcase(s, "order", 30);
    tcase_add_test(tc, test_completion_order);
    tcase_add_test(tc, test_completion_order_pool);
    tcase_add_test(tc, test_done_ones_first);
    tcase_add_test(tc, test_duplicates_once);
    tcase_add_test(tc, test_pool_futures_in_any_state);

    tc = tu_tcase(s, "timeouts", 30);
    tcase_add_test(tc, test_timeout_then_later_ones);
    tcase_add_test(tc, test_timeout_zero);
    tcase_add_test(tc, test_blocks_without_polling);

    tc = tu_tcase(s, "lifecycle", 30);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_free_early);
    tcase_add_test(tc, test_free_right_after_last_yield);
    tcase_add_test(tc, test_invalid_arguments);
    return s;
}

int main(void)
{
    return tu_run(as_completed_suite());
}
