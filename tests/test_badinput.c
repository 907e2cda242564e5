/* SPDX-License-Identifier: MIT */
/*
 * Bad input: every function of the foundation (futures, waiting, executors, tasks) with
 * NULL handles, callbacks, outputs and invalid options; and fut_strerror for every code.
 */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

static void noop_callback(fut_future *f, void *arg)
{
    (void)f;
    (void)arg;
}

#define ASSERT_NULL_ERRNO(expr, err)                                                      \
    do {                                                                                  \
        errno = 0;                                                                        \
        ck_assert_ptr_null(expr);                                                         \
        ck_assert_int_eq(errno, err);                                                     \
    } while (0)

START_TEST(test_future_null_handle)
{
    ck_assert(!fut_cancel(NULL));
    ck_assert(!fut_cancelled(NULL));
    ck_assert(!fut_running(NULL));
    ck_assert(!fut_done(NULL));
    void *out = TU_P(5);
    ck_assert_int_eq(fut_result(NULL, 0, &out), FUT_EINVAL);
    ck_assert_int_eq(fut_result(NULL, FUT_FOREVER, NULL), FUT_EINVAL);
    ck_assert_ptr_eq(out, TU_P(5));
    ck_assert_int_eq(fut_exception(NULL, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_exception(NULL, FUT_FOREVER), FUT_EINVAL);
    ck_assert_ptr_null(fut_exception_message(NULL));
    ck_assert_int_eq(fut_add_done_callback(NULL, noop_callback, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_set_running_or_notify_cancel(NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_set_result(NULL, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_set_exception(NULL, 5, "x"), FUT_EINVAL);
    ASSERT_NULL_ERRNO(fut_future_ref(NULL), EINVAL);
    fut_future_unref(NULL);
}
END_TEST

START_TEST(test_future_null_callback)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_add_done_callback(f, NULL, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_set_result(f, NULL), 0);
    ck_assert_int_eq(fut_add_done_callback(f, NULL, NULL), FUT_EINVAL);  /* done: same */
    fut_future_unref(f);
}
END_TEST

START_TEST(test_future_data_pointers_may_be_null)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_add_done_callback(f, noop_callback, NULL), 0);
    ck_assert_int_eq(fut_set_exception(f, 3, NULL), 0);
    ck_assert_int_eq(fut_result(f, 0, NULL), 3);
    fut_future_unref(f);
}
END_TEST

START_TEST(test_wait_bad_input)
{
    fut_future *f = fut_future_new();
    fut_future *fs[] = { f };
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(NULL, 1, 0, FUT_ALL_COMPLETED, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(fs, 1, 0, FUT_ALL_COMPLETED, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(fs, 1, 0, -1, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(fs, 1, 0, FUT_ALL_COMPLETED + 1, &n_done), FUT_EINVAL);
    fut_future *with_null[] = { f, NULL };
    ck_assert_int_eq(fut_wait(with_null, 2, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), FUT_EINVAL);
    ck_assert_int_eq(fut_wait(NULL, 0, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, 0);
    fut_future_unref(f);
}
END_TEST

START_TEST(test_as_completed_bad_input)
{
    ASSERT_NULL_ERRNO(fut_as_completed_new(NULL, 3, FUT_FOREVER), EINVAL);
    fut_future *f = fut_future_new();
    fut_future *with_null[] = { NULL, f };
    ASSERT_NULL_ERRNO(fut_as_completed_new(with_null, 2, FUT_FOREVER), EINVAL);
    fut_future *out = NULL;
    ck_assert_int_eq(fut_as_completed_next(NULL, &out), FUT_EINVAL);
    ck_assert_int_eq(fut_as_completed_next(NULL, NULL), FUT_EINVAL);
    fut_as_completed *it = fut_as_completed_new(&f, 1, 0);
    ck_assert_ptr_nonnull(it);
    ck_assert_int_eq(fut_as_completed_next(it, NULL), FUT_EINVAL);
    fut_as_completed_free(it);
    fut_as_completed_free(NULL);
    fut_future_unref(f);
}
END_TEST

START_TEST(test_pool_options)
{
    static const fut_pool_options bad[] = {
        { .max_workers = -1 },
        { .max_workers = -1000 },
        { .max_tasks_per_child = -1 },
        { .task_timeout = -1.0 },
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++)
        ASSERT_NULL_ERRNO(fut_thread_pool_new(&bad[i]), EINVAL);
    fut_pool_options nan_timeout = { .task_timeout = NAN };
    ASSERT_NULL_ERRNO(fut_thread_pool_new(&nan_timeout), EINVAL);

    /* data pointers may be NULL: no initializer argument, no prefix */
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    ck_assert_ptr_nonnull(ex);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_executor_null_handle)
{
    ck_assert_int_eq(fut_executor_max_workers(NULL), FUT_EINVAL);
    ASSERT_NULL_ERRNO(fut_submit(NULL, tu_identity, NULL), EINVAL);
    ASSERT_NULL_ERRNO(fut_submit_copy(NULL, tu_identity, "ab", 3), EINVAL);
    void *args[1] = { NULL }, *results[1];
    ck_assert_int_eq(fut_map(NULL, tu_identity, args, 1, results, FUT_FOREVER, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_shutdown(NULL, true, true), FUT_EINVAL);
    ck_assert_int_eq(fut_shutdown(NULL, false, false), FUT_EINVAL);
    fut_executor_free(NULL);
}
END_TEST

START_TEST(test_executor_bad_arguments)
{
    int threads = tu_thread_baseline();
    fut_executor *ex = fut_thread_pool_new(NULL);
    ASSERT_NULL_ERRNO(fut_submit(ex, NULL, NULL), EINVAL);
    ASSERT_NULL_ERRNO(fut_submit_copy(ex, NULL, "ab", 3), EINVAL);
    ASSERT_NULL_ERRNO(fut_submit_copy(ex, tu_identity, NULL, 3), EINVAL);
    void *args[2] = { NULL, NULL }, *results[2] = { TU_P(1), TU_P(2) };
    ck_assert_int_eq(fut_map(ex, NULL, args, 2, results, FUT_FOREVER, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_map(ex, tu_identity, NULL, 2, results, FUT_FOREVER, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_map(ex, tu_identity, args, 2, NULL, FUT_FOREVER, 0), FUT_EINVAL);
    ck_assert_ptr_eq(results[0], TU_P(1));  /* untouched */
    ck_assert_int_eq(fut_map(ex, tu_identity, NULL, 0, NULL, FUT_FOREVER, 0), 0);
    /* nothing was started by the rejected calls */
    ck_assert_int_eq(tu_count_threads(), threads);

    /* argument data may be NULL */
    fut_future *f = fut_submit(ex, tu_identity, NULL);
    void *out = TU_P(1);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_ptr_null(out);
    fut_future_unref(f);
    f = fut_submit_copy(ex, tu_identity, NULL, 0);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_ptr_null(out);
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_bytes_null)
{
    ck_assert_uint_eq(fut_bytes_len(NULL), 0);
    fut_bytes_free(NULL);
    ASSERT_NULL_ERRNO(fut_bytes_dup(NULL, 1), EINVAL);
    ASSERT_NULL_ERRNO(fut_bytes_new(SIZE_MAX), ENOMEM);
    fut_raise(1, NULL);  /* outside a task: nothing */
}
END_TEST

START_TEST(test_strerror)
{
    static const int codes[] = { FUT_OK, FUT_EINVAL, FUT_ENOMEM, FUT_ETIMEDOUT,
                                 FUT_ECANCELLED, FUT_ESHUTDOWN, FUT_EBROKEN, FUT_ESTATE,
                                 FUT_ENOENT };
    /* every library code has its own non-empty description */
    for (size_t i = 0; i < TU_ARRAY_SIZE(codes); i++) {
        const char *s = fut_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s, fut_strerror(codes[j]));
    }
    /* the errno-shaped codes match the errno values (and are negative) */
    ck_assert_int_eq(FUT_EINVAL, -EINVAL);
    ck_assert_int_eq(FUT_ENOMEM, -ENOMEM);
    ck_assert_int_eq(FUT_ETIMEDOUT, -ETIMEDOUT);
    ck_assert_int_eq(FUT_ECANCELLED, -ECANCELED);
    ck_assert_int_eq(FUT_ESHUTDOWN, -ESHUTDOWN);
    ck_assert_int_lt(FUT_EBROKEN, 0);
    ck_assert_int_lt(FUT_ESTATE, 0);
    ck_assert_int_lt(FUT_ENOENT, 0);
    /* any other code, task-defined or unknown, still gets a string */
    static const int others[] = { 1, 42, -EIO, -9999, 1 << 30, -(1 << 30) };
    for (size_t i = 0; i < TU_ARRAY_SIZE(others); i++) {
        const char *s = fut_strerror(others[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
    }
    /* a task's positive errno-style code reads as strerror would, as does a negated
     * errno the library has no name for */
    ck_assert_str_eq(fut_strerror(EIO), strerror(EIO));
    ck_assert_str_eq(fut_strerror(ENOSPC), strerror(ENOSPC));
    ck_assert_str_eq(fut_strerror(-EIO), strerror(EIO));
    ck_assert_str_ne(fut_strerror(EIO), fut_strerror(ENOSPC));
    /* the library's own codes keep their names, whatever strerror says */
    ck_assert_str_eq(fut_strerror(FUT_EBROKEN), "executor is broken");
    ck_assert_str_eq(fut_strerror(ECANCELED), strerror(ECANCELED));
}
END_TEST

static Suite *badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tu_tcase(s, "futures", 30);
    tcase_add_test(tc, test_future_null_handle);
    tcase_add_test(tc, test_future_null_callback);
    tcase_add_test(tc, test_future_data_pointers_may_be_null);
    tcase_add_test(tc, test_wait_bad_input);
    tcase_add_test(tc, test_as_completed_bad_input);

    tc = tu_tcase(s, "executors", 30);
    tcase_add_test(tc, test_pool_options);
    tcase_add_test(tc, test_executor_null_handle);
    tcase_add_test(tc, test_executor_bad_arguments);

    tc = tu_tcase(s, "misc", 30);
    tcase_add_test(tc, test_bytes_null);
    tcase_add_test(tc, test_strerror);
    return s;
}

int main(void)
{
    return tu_run(badinput_suite());
}
