/* SPDX-License-Identifier: MIT */
/*
 * fut_executor_get_stats and the version functions: counts after batches with failures,
 * cancellations and fut_map items, rejected submits, after shutdown, and the size contract
 * (0, smaller, larger) for the thread pool and the process pool.
 */
#include <stddef.h>
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

static void *fail_odd(void *arg)
{
    if (TU_I(arg) % 2)
        fut_raise(EIO, "odd item %d", (int)TU_I(arg));
    return arg;
}

static fut_executor_stats stats_of(fut_executor *ex)
{
    fut_executor_stats s;
    memset(&s, 0xa5, sizeof s);
    ck_assert_int_eq(fut_executor_get_stats(ex, &s, sizeof s), 0);
    return s;
}

typedef fut_executor *(*pool_new_fn)(const fut_pool_options *);

static pool_new_fn pool_kinds[] = { fut_thread_pool_new, fut_process_pool_new };

/* Waits (bounded: reaching it is what is tested) until the pool reports `workers`. */
static fut_executor_stats wait_workers(fut_executor *ex, size_t workers, size_t idle)
{
    fut_executor_stats s = stats_of(ex);
    for (double end = tu_now() + 20; tu_now() < end && (s.workers != workers || s.idle != idle);
         tu_sleep(0.001))
        s = stats_of(ex);
    return s;
}

START_TEST(test_version)
{
    ck_assert_uint_eq(fut_version(),
                      (FUT_VERSION_MAJOR << 16) | (FUT_VERSION_MINOR << 8) | FUT_VERSION_PATCH);
    ck_assert_uint_eq(fut_version(), FUT_VERSION_HEX);
    ck_assert_str_eq(fut_version_string(), FUT_VERSION_STRING);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", FUT_VERSION_MAJOR, FUT_VERSION_MINOR,
             FUT_VERSION_PATCH);
    ck_assert_str_eq(FUT_VERSION_STRING, expected);
    ck_assert_uint_ge(fut_version(), 0x000200);  /* these functions came with 0.2.0 */
}
END_TEST

START_TEST(test_bad_input)
{
    fut_executor_stats s;
    ck_assert_int_eq(fut_executor_get_stats(NULL, &s, sizeof s), FUT_EINVAL);
    fut_executor *ex = fut_thread_pool_new(NULL);
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_eq(fut_executor_get_stats(ex, NULL, sizeof s), FUT_EINVAL);
    ck_assert_int_eq(fut_executor_get_stats(ex, NULL, 0), 0);
    fut_executor_free(ex);
}
END_TEST

/* size 0 writes nothing, a smaller size the fields it covers, a larger one zeroes the rest */
START_TEST(test_sizes)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    ck_assert_ptr_nonnull(ex);
    for (int i = 0; i < 5; i++) {
        fut_future *f = fut_submit(ex, tu_identity, TU_P(i));
        ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), 0);
        fut_future_unref(f);
    }
    fut_executor_stats full = stats_of(ex);
    ck_assert_uint_eq(full.submitted, 5);

    unsigned char buf[sizeof(fut_executor_stats) + 64];
    memset(buf, 0xa5, sizeof buf);
    ck_assert_int_eq(fut_executor_get_stats(ex, (fut_executor_stats *)buf, 0), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xa5);

    size_t older = offsetof(fut_executor_stats, submitted);  /* a caller that knew less */
    ck_assert_int_eq(fut_executor_get_stats(ex, (fut_executor_stats *)buf, older), 0);
    ck_assert_int_eq(memcmp(buf, &full, older), 0);
    for (size_t i = older; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xa5);

    memset(buf, 0xa5, sizeof buf);
    size_t newer = sizeof(fut_executor_stats) + 40;  /* a caller that knows more */
    ck_assert_int_eq(fut_executor_get_stats(ex, (fut_executor_stats *)buf, newer), 0);
    ck_assert_int_eq(memcmp(buf, &full, sizeof full), 0);
    for (size_t i = sizeof full; i < newer; i++)
        ck_assert_uint_eq(buf[i], 0);
    for (size_t i = newer; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xa5);
    fut_executor_free(ex);
}
END_TEST

/* A task that blocks until a byte arrives on the pipe whose read end is its argument: it
 * works in thread and process workers alike (the pipe exists before the pool). */
static void *read_byte(void *arg)
{
    char c;
    return TU_P(read((int)TU_I(arg), &c, 1));
}

/* A pool of kind `kind` with one worker, held by a task reading a byte from pipefd[0]
 * (write it to pipefd[1] to let go): *held is running when this returns. */
static fut_executor *new_held_pool(int kind, int pipefd[2], fut_future **held)
{
    ck_assert_int_eq(pipe(pipefd), 0);
    fut_executor *ex = pool_kinds[kind](&(fut_pool_options){ .max_workers = 1 });
    ck_assert_ptr_nonnull(ex);
    *held = fut_submit(ex, read_byte, TU_P(pipefd[0]));
    ck_assert_ptr_nonnull(*held);
    for (double end = tu_now() + 20; !fut_running(*held) && tu_now() < end;)
        tu_sleep(0.001);
    ck_assert(fut_running(*held));
    return ex;
}

/* One worker held: one running, the rest queued (thread pools: a process pool may hand
 * one ahead); cancelled ones leave the queue; after the batch every total adds up and
 * nothing is queued or running. Rejected submits do not count, and after shutdown the
 * totals stay readable while the workers go. */
START_TEST(test_batch_counts)
{
    int pipefd[2];
    fut_future *held;
    fut_executor *ex = new_held_pool(_i, pipefd, &held);
    /* a process pool's dispatcher publishes its counts before it next sleeps */
    fut_executor_stats w = wait_workers(ex, 1, 0);
    ck_assert_uint_eq(w.workers, 1);
    ck_assert_uint_eq(w.idle, 0);
    enum { N = 10 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        ck_assert_ptr_nonnull(fs[i] = fut_submit(ex, fail_odd, TU_P(i)));
    fut_executor_stats s = stats_of(ex);
    ck_assert_uint_eq(s.submitted, 1 + N);
    ck_assert_uint_eq(s.workers, 1);
    ck_assert_uint_eq(s.queued + s.running, 1 + N);
    if (_i == 0) {
        ck_assert_uint_eq(s.running, 1);
        ck_assert_uint_eq(s.queued, N);
        ck_assert_uint_eq(s.idle, 0);
    }
    /* the last three are still queued in either kind of pool */
    ck_assert(fut_cancel(fs[7]) && fut_cancel(fs[8]) && fut_cancel(fs[9]));
    s = stats_of(ex);
    ck_assert_uint_eq(s.cancelled, 3);
    ck_assert_uint_eq(s.queued + s.running, 1 + N - 3);
    ck_assert_int_eq(write(pipefd[1], "x", 1), 1);

    fut_wait(fs, N, FUT_FOREVER, FUT_ALL_COMPLETED, NULL);
    ck_assert_int_eq(fut_result(held, FUT_FOREVER, NULL), 0);
    fut_future_unref(held);
    size_t cancelled = 0, failed = 0, completed = 0;
    for (int i = 0; i < N; i++) {
        int rc = fut_result(fs[i], FUT_FOREVER, NULL);
        cancelled += rc == FUT_ECANCELLED;
        failed += rc == EIO;
        completed += rc == 0;
        fut_future_unref(fs[i]);
    }
    ck_assert_uint_eq(cancelled, 3);
    ck_assert_uint_eq(failed, 3);     /* 1, 3, 5 (7 and 9 were cancelled) */
    ck_assert_uint_eq(completed, 4);  /* 0, 2, 4, 6 (8 was cancelled) */
    s = stats_of(ex);
    ck_assert_uint_eq(s.submitted, N + 1);
    ck_assert_uint_eq(s.completed, completed + 1);
    ck_assert_uint_eq(s.failed, failed);
    ck_assert_uint_eq(s.cancelled, cancelled);
    ck_assert_uint_eq(s.queued, 0);
    ck_assert_uint_eq(s.running, 0);

    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);
    ck_assert_ptr_null(fut_submit(ex, tu_identity, NULL));
    ck_assert_int_eq(errno, ESHUTDOWN);
    ck_assert_ptr_null(fut_submit_copy(ex, tu_identity, "x", 1));
    fut_executor_stats after = stats_of(ex);
    ck_assert_uint_eq(after.submitted, s.submitted);
    ck_assert_uint_eq(after.completed, s.completed);
    ck_assert_uint_eq(after.failed, s.failed);
    ck_assert_uint_eq(after.cancelled, s.cancelled);
    ck_assert_uint_eq(after.workers, 0);
    ck_assert_uint_eq(after.idle, 0);
    fut_executor_free(ex);
    close(pipefd[0]);
    close(pipefd[1]);
}
END_TEST

/* fut_map's items count one by one, failures included */
START_TEST(test_map_items)
{
    fut_executor *ex = pool_kinds[_i](&(fut_pool_options){ .max_workers = 2 });
    ck_assert_ptr_nonnull(ex);
    enum { N = 101 };
    void *args[N], *results[N];
    for (int i = 0; i < N; i++)
        args[i] = TU_P(i);
    ck_assert_int_eq(fut_map(ex, fail_odd, args, N, results, FUT_FOREVER, 10), EIO);
    fut_executor_stats s = stats_of(ex);
    ck_assert_uint_eq(s.submitted, N);
    ck_assert_uint_eq(s.completed, (N + 1) / 2);
    ck_assert_uint_eq(s.failed, N / 2);
    ck_assert_uint_eq(s.cancelled, 0);
    ck_assert_uint_eq(s.queued, 0);
    ck_assert_uint_eq(s.running, 0);
    fut_executor_free(ex);
}
END_TEST

/* Whoever changes a task's state counts it once: a task its submitter finishes with
 * fut_set_result before a worker took it counts as started and completed at once, and
 * the worker that later finds it done counts nothing (core/executor.h). */
START_TEST(test_finished_by_caller)
{
    int pipefd[2];
    fut_future *held;
    fut_executor *ex = new_held_pool(_i, pipefd, &held);
    fut_future *fs[3];
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(fs[i] = fut_submit(ex, tu_identity, TU_P(i)));
    /* the last two are still queued in either kind of pool */
    ck_assert_int_eq(fut_set_result(fs[1], TU_P(41)), 0);
    ck_assert_int_eq(fut_set_exception(fs[2], EIO, "set by the caller"), 0);
    fut_executor_stats s = stats_of(ex);
    ck_assert_uint_eq(s.submitted, 4);
    ck_assert_uint_eq(s.completed, 1);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_uint_eq(s.queued + s.running, 2);
    ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
    void *r;
    ck_assert_int_eq(fut_result(held, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(fut_result(fs[0], FUT_FOREVER, &r), 0);
    ck_assert_ptr_eq(r, TU_P(0));
    ck_assert_int_eq(fut_result(fs[1], FUT_FOREVER, &r), 0);
    ck_assert_ptr_eq(r, TU_P(41));
    ck_assert_int_eq(fut_result(fs[2], FUT_FOREVER, NULL), EIO);
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);  /* every worker has looked at all */
    s = stats_of(ex);
    ck_assert_uint_eq(s.submitted, 4);
    ck_assert_uint_eq(s.completed, 3);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_uint_eq(s.cancelled, 0);
    ck_assert_uint_eq(s.queued, 0);
    ck_assert_uint_eq(s.running, 0);
    fut_future_unref(held);
    for (int i = 0; i < 3; i++)
        fut_future_unref(fs[i]);
    fut_executor_free(ex);
    close(pipefd[0]);
    close(pipefd[1]);
}
END_TEST

/* workers and idle: threads or processes alive, the fork server not counted */
START_TEST(test_workers)
{
    fut_executor *ex = pool_kinds[_i](&(fut_pool_options){ .max_workers = 2 });
    ck_assert_ptr_nonnull(ex);
    fut_executor_stats s = stats_of(ex);
    ck_assert_uint_eq(s.workers, 0);
    ck_assert_uint_eq(s.submitted, 0);
    fut_future *f = fut_submit(ex, tu_identity, NULL);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), 0);
    fut_future_unref(f);
    s = wait_workers(ex, 1, 1);
    ck_assert_uint_eq(s.workers, 1);
    ck_assert_uint_eq(s.idle, 1);
    fut_executor_free(ex);
}
END_TEST

/* ---- names of the process pool's processes and thread ------------------------------ */

static bool read_comm(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = 0;
    return ok;
}

static void *my_pid_and_parent(void *arg)
{
    (void)arg;
    return TU_P(((intptr_t)getppid() << 32) | getpid());
}

/* Whether a thread of this process is named `name`. */
static bool has_thread_named(const char *name)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(dir))) {
        char path[300], comm[64];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        found = e->d_name[0] != '.' && read_comm(path, comm, sizeof comm) &&
                strcmp(comm, name) == 0;
    }
    closedir(dir);
    return found;
}

START_TEST(test_process_names)
{
    ck_assert(!has_thread_named("fut-dispatch"));
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
    ck_assert_ptr_nonnull(ex);
    fut_future *f = fut_submit(ex, my_pid_and_parent, NULL);
    void *r;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    fut_future_unref(f);
    pid_t worker = (pid_t)(TU_I(r) & 0xffffffff), server = (pid_t)(TU_I(r) >> 32);
    ck_assert_int_ne(worker, getpid());
    ck_assert_int_ne(server, getpid());
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)worker);
    ck_assert(read_comm(path, comm, sizeof comm));
    ck_assert_str_eq(comm, "fut-worker");
    snprintf(path, sizeof path, "/proc/%d/comm", (int)server);
    ck_assert(read_comm(path, comm, sizeof comm));
    ck_assert_str_eq(comm, "fut-forksrv");
    ck_assert(has_thread_named("fut-dispatch"));
    fut_executor_free(ex);
    /* a joined thread may stay listed for a moment (see tu_settle_threads) */
    for (double end = tu_now() + 5; has_thread_named("fut-dispatch") && tu_now() < end;)
        tu_sleep(0.001);
    ck_assert(!has_thread_named("fut-dispatch"));
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tu_tcase(s, "stats", 60);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_sizes);
    tcase_add_loop_test(tc, test_batch_counts, 0, 2);
    tcase_add_loop_test(tc, test_map_items, 0, 2);
    tcase_add_loop_test(tc, test_workers, 0, 2);
    tcase_add_loop_test(tc, test_finished_by_caller, 0, 2);
    tc = tu_tcase(s, "names", 60);
    tcase_add_test(tc, test_process_names);
    return s;
}

int main(void)
{
    return tu_run(stats_suite());
}
