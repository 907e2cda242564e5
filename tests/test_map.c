/* SPDX-License-Identifier: MIT */
/* fut_map on the thread pool: order, chunking, failures, timeouts. */
#include <stdatomic.h>

#include "testutil.h"

enum { MAX_ITEMS = 100000 };

/* Per-item run counts: every item runs exactly once. */
static atomic_int runs[MAX_ITEMS];

static void reset_runs(size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_store(&runs[i], 0);
}

static void assert_ran_once(size_t n)
{
    for (size_t i = 0; i < n; i++)
        TU_REQUIRE(atomic_load(&runs[i]) == 1, "item %zu ran %d times", i, atomic_load(&runs[i]));
}

static void *twice(void *arg)
{
    atomic_fetch_add(&runs[TU_I(arg)], 1);
    return TU_P(TU_I(arg) * 2);  /* item 0 returns NULL: a valid result */
}

static void **index_args(size_t n)
{
    void **args = malloc((n ? n : 1) * sizeof *args);
    for (size_t i = 0; i < n; i++)
        args[i] = TU_P(i);
    return args;
}

static void check_in_order(fut_executor *ex, size_t n, size_t chunksize)
{
    void **args = index_args(n), **results = malloc(n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        results[i] = TU_P(-1);
    reset_runs(n);
    ck_assert_int_eq(fut_map(ex, twice, args, n, results, FUT_FOREVER, chunksize), 0);
    for (size_t i = 0; i < n; i++)
        TU_REQUIRE(TU_I(results[i]) == 2 * (intptr_t)i, "n %zu chunk %zu: results[%zu] = %ld",
                   n, chunksize, i, (long)TU_I(results[i]));
    assert_ran_once(n);
    free(args);
    free(results);
}

START_TEST(test_results_in_order)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 4 });
    static const size_t chunks[] = { 0, 1, 3, 7, 100, 1000 };
    for (size_t c = 0; c < TU_ARRAY_SIZE(chunks); c++) {
        check_in_order(ex, 1, chunks[c]);
        check_in_order(ex, 100, chunks[c]);
    }
    check_in_order(ex, MAX_ITEMS, 0);
    check_in_order(ex, tu_scale(20000, 2000), 1);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_empty)
{
    fut_executor *ex = fut_thread_pool_new(NULL);
    reset_runs(2);
    ck_assert_int_eq(fut_map(ex, twice, NULL, 0, NULL, FUT_FOREVER, 0), 0);
    void *args[1] = { TU_P(1) }, *results[1] = { TU_P(77) };
    ck_assert_int_eq(fut_map(ex, twice, args, 0, results, 0, 5), 0);
    ck_assert_ptr_eq(results[0], TU_P(77));  /* nothing written */
    ck_assert_int_eq(atomic_load(&runs[1]), 0);
    fut_executor_free(ex);
}
END_TEST

/* Items 3 and 7 fail; when they travel in different chunks, item 3 fails last if it can
 * (it waits a while for item 7; the outcome must not depend on whether it did). */
static atomic_int late_done;
static bool wait_for_7;

static void *fail_some(void *arg)
{
    intptr_t i = TU_I(arg);
    atomic_fetch_add(&runs[i], 1);
    if (i == 3) {
        for (double end = tu_now() + 1; wait_for_7 && !atomic_load(&late_done) && tu_now() < end;)
            tu_sleep(0.001);
        fut_raise((int)(1000 + i), "item %d failed", (int)i);
        return TU_P(1);
    }
    if (i == 7) {
        fut_raise((int)(1000 + i), NULL);
        atomic_store(&late_done, 1);
        return NULL;
    }
    return TU_P(i + 1);
}

START_TEST(test_every_item_runs_after_failure)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 4 });
    enum { N = 20 };
    static const size_t chunks[] = { 0, 1, 2, 4, 20 };
    for (size_t c = 0; c < TU_ARRAY_SIZE(chunks); c++) {
        void **args = index_args(N), *results[N];
        reset_runs(N);
        atomic_store(&late_done, 0);
        wait_for_7 = chunks[c] && 3 / chunks[c] != 7 / chunks[c];
        /* the first failure in input order, not in completion order */
        ck_assert_int_eq(fut_map(ex, fail_some, args, N, results, FUT_FOREVER, chunks[c]), 1003);
        for (intptr_t i = 0; i < N; i++) {
            if (i == 3 || i == 7)
                ck_assert_ptr_null(results[i]);
            else
                ck_assert_int_eq(TU_I(results[i]), i + 1);
        }
        assert_ran_once(N);
        free(args);
    }
    fut_executor_free(ex);
}
END_TEST

/* Item 0 outlasts the map's timeout; the others are quick. */
static atomic_int slow_finished;

static void *slow_first(void *arg)
{
    intptr_t i = TU_I(arg);
    atomic_fetch_add(&runs[i], 1);
    if (i == 0 || i == 100) {
        tu_sleep(0.3);  /* longer than the map's 0.1 s timeout: only that matters */
        atomic_store(&slow_finished, 1);
        if (i == 100)
            fut_raise(5, "slow and failed");
    }
    return TU_P(i + 1000);
}

static void check_timeout(intptr_t first, size_t chunksize)
{
    enum { N = 6 };
    /* one worker, idle and waiting: it takes the first item at once, and while that runs
     * none of the others can start */
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    fut_future *warm = fut_submit(ex, tu_identity, NULL);
    ck_assert_int_eq(fut_result(warm, FUT_FOREVER, NULL), 0);
    fut_future_unref(warm);
    void *args[N], *results[N];
    for (int i = 0; i < N; i++) {
        args[i] = TU_P(i ? i : first);
        results[i] = TU_P(-1);
    }
    reset_runs(101);
    atomic_store(&slow_finished, 0);
    double start = tu_now();
    ck_assert_int_eq(fut_map(ex, slow_first, args, N, results, 0.1, chunksize), FUT_ETIMEDOUT);
    ck_assert_double_ge(tu_now() - start, 0.1);
    if (atomic_load(&runs[first]) == 1) {
        ck_assert_int_eq(atomic_load(&slow_finished), 1);  /* it waited for the running item */
        if (first == 0)
            ck_assert_int_eq(TU_I(results[0]), 1000);  /* succeeded: its result is set */
        else
            ck_assert_ptr_null(results[0]);            /* failed: NULL, and still ETIMEDOUT */
    } else {
        /* a very slow machine (valgrind) had not started it by the deadline: cancelled */
        ck_assert_int_eq(atomic_load(&runs[first]), 0);
        ck_assert_ptr_null(results[0]);
    }
    for (int i = 1; i < N; i++) {
        ck_assert_ptr_null(results[i]);            /* cancelled before it started */
        ck_assert_int_eq(atomic_load(&runs[i]), 0);
    }
    int first_runs = atomic_load(&runs[first]);
    fut_executor_free(ex);
    /* what was cancelled never runs later, even while the pool drains */
    ck_assert_int_eq(atomic_load(&runs[first]), first_runs);
    for (int i = 1; i < N; i++)
        ck_assert_int_eq(atomic_load(&runs[i]), 0);
}

START_TEST(test_timeout)
{
    check_timeout(0, 1);
}
END_TEST

START_TEST(test_timeout_with_failure)
{
    check_timeout(100, 1);
}
END_TEST

START_TEST(test_timeout_not_reached)
{
    fut_executor *ex = fut_thread_pool_new(NULL);
    void **args = index_args(50), *results[50];
    reset_runs(50);
    ck_assert_int_eq(fut_map(ex, twice, args, 50, results, 30.0, 0), 0);
    for (intptr_t i = 0; i < 50; i++)
        ck_assert_int_eq(TU_I(results[i]), 2 * i);
    free(args);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_after_shutdown)
{
    fut_executor *ex = fut_thread_pool_new(NULL);
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);
    void **args = index_args(10), *results[10];
    for (int i = 0; i < 10; i++)
        results[i] = TU_P(-1);
    reset_runs(10);
    ck_assert_int_eq(fut_map(ex, twice, args, 10, results, FUT_FOREVER, 3), FUT_ESHUTDOWN);
    for (int i = 0; i < 10; i++) {
        ck_assert_ptr_null(results[i]);
        ck_assert_int_eq(atomic_load(&runs[i]), 0);
    }
    free(args);
    fut_executor_free(ex);
}
END_TEST

static void *map_inside(void *arg)
{
    fut_executor *ex = arg;
    void *args[3] = { TU_P(1), TU_P(2), TU_P(3) }, *results[3] = { NULL };
    int rc = fut_map(ex, tu_plus_one, args, 3, results, FUT_FOREVER, 1);
    if (rc)
        return TU_P(rc);
    return TU_P(TU_I(results[0]) + TU_I(results[1]) + TU_I(results[2]));
}

START_TEST(test_map_from_task)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    fut_future *f = fut_submit(ex, map_inside, ex);
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_int_eq(TU_I(out), 9);
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

static Suite *map_suite(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tu_tcase(s, "results", 60);
    tcase_add_test(tc, test_results_in_order);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_every_item_runs_after_failure);
    tcase_add_test(tc, test_after_shutdown);
    tcase_add_test(tc, test_map_from_task);

    tc = tu_tcase(s, "timeout", 30);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_timeout_with_failure);
    tcase_add_test(tc, test_timeout_not_reached);
    return s;
}

int main(void)
{
    return tu_run(map_suite());
}
