/* SPDX-License-Identifier: MIT */
/*
 * Fork safety: in a child forked from a process with thread pools, process pools and
 * loops, the inherited objects fail fast (FUT_EBROKEN, errno ENOTRECOVERABLE) instead of
 * hanging, free without touching the parent's threads and processes, and new pools and
 * loops work. Each child runs under alarm(): a hang fails the test, never the suite.
 *
 * The child cannot use Check's assertions (it is not the test's process): it exits with
 * the line number of the first failed check, and the parent asserts that it exited 0.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define CHILD_LIMIT 30  /* seconds: only a hang comes near it */

#define CHILD_CHECK(cond)                                                                 \
    do {                                                                                  \
        if (!(cond))                                                                      \
            _exit(__LINE__ % 250 + 1);                                                    \
    } while (0)

/* Runs child() in a forked child under alarm(); returns its exit status (0: passed). */
static int run_child(void (*child)(void *), void *arg)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(CHILD_LIMIT);
        child(arg);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        ck_abort_msg("the child died of signal %d (SIGALRM: it hung)", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static void *read_byte(void *arg)
{
    char c;
    return TU_P(read((int)TU_I(arg), &c, 1) == 1 ? c : -1);
}

struct inherited {
    fut_executor *ex;
    fut_future *running, *queued;
};

/* What every inherited executor does in the child. */
static void check_inherited_executor(struct inherited *in)
{
    errno = 0;
    CHILD_CHECK(fut_submit(in->ex, tu_identity, NULL) == NULL && errno == ENOTRECOVERABLE);
    CHILD_CHECK(fut_submit_copy(in->ex, tu_identity, "x", 1) == NULL && errno == ENOTRECOVERABLE);
    void *args[3] = { 0 }, *results[3];
    CHILD_CHECK(fut_map(in->ex, tu_identity, args, 3, results, FUT_FOREVER, 1) == FUT_EBROKEN);
    /* waits on inherited pending futures fail instead of hanging */
    void *out;
    CHILD_CHECK(fut_result(in->running, FUT_FOREVER, &out) == FUT_EBROKEN);
    CHILD_CHECK(fut_result(in->queued, 10, &out) == FUT_EBROKEN);
    CHILD_CHECK(fut_exception(in->queued, FUT_FOREVER) == FUT_EBROKEN);
    CHILD_CHECK(!fut_done(in->running));
    fut_future *fs[2] = { in->running, in->queued };
    size_t n_done = 99;
    CHILD_CHECK(fut_wait(fs, 2, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done) == FUT_EBROKEN);
    CHILD_CHECK(fut_wait(fs, 2, 0, FUT_ALL_COMPLETED, &n_done) == 0 && n_done == 0);
    fut_as_completed *it = fut_as_completed_new(fs, 2, FUT_FOREVER);
    CHILD_CHECK(it != NULL);
    fut_future *next;
    CHILD_CHECK(fut_as_completed_next(it, &next) == FUT_EBROKEN);
    fut_as_completed_free(it);
    CHILD_CHECK(fut_shutdown(in->ex, true, true) == FUT_EBROKEN);
    fut_executor_stats s;
    CHILD_CHECK(fut_executor_get_stats(in->ex, &s, sizeof s) == 0 && s.workers == 0);
    /* freeing releases it without joining, killing or waiting for anything */
    fut_executor_free(in->ex);
    fut_future_unref(in->running);
    fut_future_unref(in->queued);
}

/* ThreadSanitizer refuses to start threads in a child forked from a multi-threaded
 * process ("not supported", the child dies): there, new pools are not tried. */
static bool thread_sanitizer(void)
{
#if defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return false;
}

/* New pools of both kinds work in the child. */
static void check_new_pools(void)
{
    if (thread_sanitizer())
        return;
    fut_executor *pools[2] = { fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 }),
                               fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 }) };
    for (int k = 0; k < 2; k++) {
        CHILD_CHECK(pools[k] != NULL);
        fut_future *f = fut_submit(pools[k], tu_plus_one, TU_P(41));
        void *r = NULL;
        CHILD_CHECK(f && fut_result(f, FUT_FOREVER, &r) == 0 && TU_I(r) == 42);
        fut_future_unref(f);
        void *args[4] = { TU_P(1), TU_P(2), TU_P(3), TU_P(4) }, *results[4];
        CHILD_CHECK(fut_map(pools[k], tu_plus_one, args, 4, results, FUT_FOREVER, 0) == 0);
        CHILD_CHECK(TU_I(results[3]) == 5);
        fut_executor_free(pools[k]);
    }
}

static void thread_pool_child(void *arg)
{
    check_inherited_executor(arg);
    check_new_pools();
}

/* Back in the parent: lets the running task read `byte`, checks that both tasks end as
 * they would have without the fork, and frees everything. */
static void release_inherited(struct inherited *in, int pipefd[2], char byte)
{
    ck_assert_int_eq(write(pipefd[1], &byte, 1), 1);
    void *r;
    ck_assert_int_eq(fut_result(in->running, FUT_FOREVER, &r), 0);
    ck_assert_int_eq(TU_I(r), byte);
    ck_assert_int_eq(fut_result(in->queued, FUT_FOREVER, &r), 0);
    ck_assert_int_eq(TU_I(r), 7);
    fut_future_unref(in->running);
    fut_future_unref(in->queued);
    fut_executor_free(in->ex);
    close(pipefd[0]);
    close(pipefd[1]);
}

START_TEST(test_thread_pool_in_child)
{
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    struct inherited in;
    in.ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    in.running = fut_submit(in.ex, read_byte, TU_P(pipefd[0]));
    in.queued = fut_submit(in.ex, tu_identity, TU_P(7));
    for (double end = tu_now() + 20; !fut_running(in.running) && tu_now() < end;)
        tu_sleep(0.001);
    ck_assert(fut_running(in.running));
    int threads = tu_count_threads();
    ck_assert_int_eq(run_child(thread_pool_child, &in), 0);
    /* the parent's pool is untouched */
    ck_assert_int_eq(tu_count_threads(), threads);
    release_inherited(&in, pipefd, 'A');
}
END_TEST

static void process_pool_child(void *arg)
{
    check_inherited_executor(arg);
    check_new_pools();
}

START_TEST(test_process_pool_in_child)
{
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    struct inherited in;
    in.ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
    ck_assert_ptr_nonnull(in.ex);
    in.running = fut_submit(in.ex, read_byte, TU_P(pipefd[0]));
    for (double end = tu_now() + 20; !fut_running(in.running) && tu_now() < end;)
        tu_sleep(0.001);
    ck_assert(fut_running(in.running));
    in.queued = fut_submit(in.ex, tu_identity, TU_P(7));
    ck_assert_int_eq(run_child(process_pool_child, &in), 0);
    /* the parent's worker was not killed and its connection still works */
    release_inherited(&in, pipefd, 'B');
}
END_TEST

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

struct loop_case {
    fut_loop *loop;
    fut_future *sleeping;          /* a loop future pending in the parent */
    int fds[2];
    int calls;
};

static void loop_child(void *arg)
{
    struct loop_case *lc = arg;
    CHILD_CHECK(fut_loop_run_once(lc->loop, 0) == FUT_EBROKEN);
    CHILD_CHECK(fut_loop_run_forever(lc->loop) == FUT_EBROKEN);
    CHILD_CHECK(fut_loop_run_until_complete(lc->loop, lc->sleeping) == FUT_EBROKEN);
    errno = 0;
    CHILD_CHECK(fut_loop_call_soon_threadsafe(lc->loop, count_call, &lc->calls) == 0 &&
                errno == ENOTRECOVERABLE);
    CHILD_CHECK(fut_loop_fd(lc->loop) == FUT_EBROKEN);
    CHILD_CHECK(fut_loop_remove_reader(lc->loop, lc->fds[0]) == FUT_EBROKEN);
    CHILD_CHECK(fut_loop_add_signal_handler(lc->loop, SIGUSR2, count_call, NULL) == FUT_EBROKEN);
    CHILD_CHECK(fut_result(lc->sleeping, FUT_FOREVER, NULL) == FUT_EBROKEN);
    /* the signal the parent's loop handles is back to its old disposition here */
    struct sigaction sa;
    CHILD_CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
    fut_future_unref(lc->sleeping);
    fut_loop_free(lc->loop);
    /* a new loop works */
    fut_loop *loop = fut_loop_new();
    int calls = 0;
    CHILD_CHECK(loop && fut_loop_call_soon(loop, count_call, &calls) != 0);
    CHILD_CHECK(fut_loop_run_once(loop, 0) == 1 && calls == 1);
    fut_loop_free(loop);
    check_new_pools();
}

static void read_pipe(void *arg)
{
    struct loop_case *lc = arg;
    char c;
    if (read(lc->fds[0], &c, 1) == 1)
        lc->calls++;
}

START_TEST(test_loop_in_child)
{
    struct loop_case lc = { .calls = 0 };
    ck_assert_int_eq(pipe(lc.fds), 0);
    lc.loop = fut_loop_new();
    ck_assert_int_eq(fut_loop_add_reader(lc.loop, lc.fds[0], read_pipe, &lc), 0);
    ck_assert_int_eq(fut_loop_add_signal_handler(lc.loop, SIGUSR1, count_call, &lc.calls), 0);
    lc.sleeping = fut_loop_sleep(lc.loop, 3600, NULL);
    /* its own executor (a thread pool) exists too */
    fut_future *f = fut_loop_run_in_executor(lc.loop, NULL, tu_identity, NULL);
    ck_assert_int_eq(fut_loop_run_until_complete(lc.loop, f), 0);
    fut_future_unref(f);
    ck_assert_int_eq(run_child(loop_child, &lc), 0);
    /* the parent's loop still has its registration and its signal */
    ck_assert_int_eq(write(lc.fds[1], "x", 1), 1);
    for (double end = tu_now() + 10; lc.calls < 1 && tu_now() < end;)
        fut_loop_run_once(lc.loop, 0.1);
    ck_assert_int_eq(lc.calls, 1);
    raise(SIGUSR1);
    for (double end = tu_now() + 10; lc.calls < 2 && tu_now() < end;)
        fut_loop_run_once(lc.loop, 0.1);
    ck_assert_int_eq(lc.calls, 2);
    fut_cancel(lc.sleeping);
    fut_future_unref(lc.sleeping);
    fut_loop_free(lc.loop);
    close(lc.fds[0]);
    close(lc.fds[1]);
}
END_TEST

/* A plain future stays the caller's: a thread of the child may still complete it. */
static void *complete_later(void *arg)
{
    fut_set_result(arg, TU_P(5));
    return NULL;
}

static void plain_future_child(void *arg)
{
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, NULL, complete_later, arg) == 0);
    void *r;
    CHILD_CHECK(fut_result(arg, FUT_FOREVER, &r) == 0 && TU_I(r) == 5);
    pthread_join(t, NULL);
}

START_TEST(test_plain_future_in_child)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(run_child(plain_future_child, f), 0);
    ck_assert(!fut_done(f));
    fut_future_unref(f);
}
END_TEST

static Suite *fork_suite(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = tu_tcase(s, "fork", 120);
    tcase_add_test(tc, test_thread_pool_in_child);
    tcase_add_test(tc, test_process_pool_in_child);
    tcase_add_test(tc, test_loop_in_child);
    tcase_add_test(tc, test_plain_future_in_child);
    return s;
}

int main(void)
{
    return tu_run(fork_suite());
}
