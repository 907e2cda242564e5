/* SPDX-License-Identifier: MIT */
/*
 * Embedding the loop (fut_loop_fd, fut_loop_timeout, fut_loop_run_once) and its signal
 * handlers: one test per sentence of the contract (API.md, "Embedding the loop, and
 * signals").
 */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

/* Whether fd polls readable within `timeout` seconds. */
static bool readable(int fd, double timeout)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, (int)(timeout * 1000)) == 1 && (p.revents & POLLIN);
}

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

static void *post_from_thread(void *arg)
{
    fut_loop *loop = arg;
    static int calls;
    return TU_P(fut_loop_call_soon_threadsafe(loop, count_call, &calls) != 0);
}

START_TEST(test_fd_stable_and_quiet)
{
    fut_loop *loop = fut_loop_new();
    int fd = fut_loop_fd(loop);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fut_loop_fd(loop), fd);
    ck_assert(!readable(fd, 0));
    /* ready callbacks and timers, even due ones, do not make it readable */
    int calls = 0;
    ck_assert_uint_ne(fut_loop_call_soon(loop, count_call, &calls), 0);
    ck_assert_uint_ne(fut_loop_call_later(loop, -1, count_call, &calls), 0);
    ck_assert(!readable(fd, 0.05));
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 2);
    ck_assert_int_eq(calls, 2);
    ck_assert(!readable(fd, 0));
    ck_assert_int_eq(fut_loop_fd(NULL), FUT_EINVAL);
    fut_loop_free(loop);
    /* closed by fut_loop_free */
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
}
END_TEST

/* a thread-safe call from another thread makes it readable; running consumes it */
START_TEST(test_fd_threadsafe)
{
    fut_loop *loop = fut_loop_new();
    int fd = fut_loop_fd(loop);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, post_from_thread, loop), 0);
    void *ok;
    pthread_join(t, &ok);
    ck_assert(TU_I(ok));
    ck_assert(readable(fd, 10));
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 1);
    ck_assert(!readable(fd, 0));
    fut_loop_free(loop);
}
END_TEST

static void read_one(void *arg)
{
    int *fds = arg;
    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
}

/* I/O on a watched fd makes it readable */
START_TEST(test_fd_io)
{
    fut_loop *loop = fut_loop_new();
    int fd = fut_loop_fd(loop);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(fut_loop_add_reader(loop, fds[0], read_one, fds), 0);
    ck_assert(!readable(fd, 0));
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    ck_assert(readable(fd, 10));
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 1);
    ck_assert(!readable(fd, 0));
    ck_assert_int_eq(fut_loop_remove_reader(loop, fds[0]), 0);
    fut_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* an executor's completion makes it readable */
START_TEST(test_fd_executor_completion)
{
    fut_loop *loop = fut_loop_new();
    int fd = fut_loop_fd(loop);
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    struct tu_gate gate;
    tu_gate_init(&gate);
    fut_future *f = fut_loop_run_in_executor(loop, ex, tu_wait_gate, &gate);
    ck_assert_ptr_nonnull(f);
    ck_assert(!readable(fd, 0));
    tu_gate_open(&gate);
    ck_assert(readable(fd, 10));
    for (double end = tu_now() + 10; !fut_done(f) && tu_now() < end;)
        fut_loop_run_once(loop, 0.1);
    ck_assert(fut_done(f));
    void *r;
    ck_assert_int_eq(fut_result(f, 0, &r), 0);
    ck_assert_ptr_eq(r, &gate);
    fut_future_unref(f);
    fut_executor_free(ex);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_timeout_values)
{
    ck_assert(fut_loop_timeout(NULL) == 0);
    fut_loop *loop = fut_loop_new();
    ck_assert(fut_loop_timeout(loop) == -1);            /* nothing scheduled */
    fut_handle far = fut_loop_call_later(loop, 100, count_call, NULL);
    double t = fut_loop_timeout(loop);
    ck_assert(t > 99 && t <= 100);                      /* seconds to the next timer */
    fut_handle near = fut_loop_call_later(loop, 50, count_call, NULL);
    t = fut_loop_timeout(loop);
    ck_assert(t > 49 && t <= 50);
    ck_assert_int_eq(fut_loop_cancel(loop, near), 0);   /* cancelled ones do not count */
    t = fut_loop_timeout(loop);
    ck_assert(t > 49 && t <= 100);
    ck_assert(t > 50);
    ck_assert_int_eq(fut_loop_cancel(loop, far), 0);
    ck_assert(fut_loop_timeout(loop) == -1);
    int calls = 0;
    fut_loop_call_later(loop, -1, count_call, &calls);  /* due */
    ck_assert(fut_loop_timeout(loop) == 0);
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 1);
    ck_assert(fut_loop_timeout(loop) == -1);
    fut_loop_call_soon(loop, count_call, &calls);       /* ready */
    ck_assert(fut_loop_timeout(loop) == 0);
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 1);
    ck_assert_int_eq(calls, 2);
    fut_loop_free(loop);
}
END_TEST

static void nested_run_once(void *arg)
{
    fut_loop *loop = arg;
    ck_assert(fut_loop_is_running(loop));
    ck_assert_int_eq(fut_loop_run_once(loop, 0), FUT_ESTATE);
}

START_TEST(test_run_once_counts)
{
    fut_loop *loop = fut_loop_new();
    ck_assert_int_eq(fut_loop_run_once(NULL, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_run_once(loop, NAN), FUT_EINVAL);
    /* nothing to do: returns 0 at once */
    double start = tu_now();
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 0);
    ck_assert_int_eq(fut_loop_run_once(loop, 0.01), 0);  /* waits at most that long */
    ck_assert(tu_now() - start < 5);
    int calls = 0;
    for (int i = 0; i < 3; i++)
        fut_loop_call_soon(loop, count_call, &calls);
    fut_handle h = fut_loop_call_soon(loop, count_call, &calls);
    ck_assert_int_eq(fut_loop_cancel(loop, h), 0);       /* a cancelled one does not count */
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 3);
    ck_assert_int_eq(calls, 3);
    /* negative: waits until something happens (the timer) */
    fut_loop_call_later(loop, 0.02, count_call, &calls);
    ck_assert_int_eq(fut_loop_run_once(loop, -1), 1);
    ck_assert_int_eq(calls, 4);
    /* the loop counts as running during run_once */
    ck_assert(!fut_loop_is_running(loop));
    fut_loop_call_soon(loop, nested_run_once, loop);
    ck_assert_int_eq(fut_loop_run_once(loop, 0), 1);
    ck_assert(!fut_loop_is_running(loop));
    fut_loop_free(loop);
}
END_TEST

static void run_once_from_callback(void *arg)
{
    fut_loop *loop = arg;
    ck_assert_int_eq(fut_loop_run_once(loop, 0), FUT_ESTATE);
    fut_loop_stop(loop);
}

START_TEST(test_run_once_while_running)
{
    fut_loop *loop = fut_loop_new();
    fut_loop_call_soon(loop, run_once_from_callback, loop);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    fut_loop_free(loop);
}
END_TEST

/* ---- signals ------------------------------------------------------------------------ */

struct signal_seen {
    int count;
    pthread_t thread;
    int tag;
};

static void on_signal(void *arg)
{
    struct signal_seen *seen = arg;
    seen->count++;
    seen->thread = pthread_self();
}

static void on_signal_tagged(void *arg)
{
    struct signal_seen *seen = arg;
    seen->tag++;
}

/* Runs the loop until seen->count + seen->tag reaches n (bounded: that is the test). */
static void run_until_seen(fut_loop *loop, struct signal_seen *seen, int n)
{
    for (double end = tu_now() + 10; seen->count + seen->tag < n && tu_now() < end;)
        fut_loop_run_once(loop, 0.1);
}

static void *raise_in_thread(void *arg)
{
    raise(TU_I(arg));  /* delivered to this thread, not the loop's */
    return NULL;
}

START_TEST(test_signal_runs_on_loop_thread)
{
    fut_loop *loop = fut_loop_new();
    struct signal_seen seen = { 0 };
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR1, on_signal, &seen), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, raise_in_thread, TU_P(SIGUSR1)), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(seen.count, 0);  /* never in signal context: only when the loop runs */
    run_until_seen(loop, &seen, 1);
    ck_assert_int_eq(seen.count, 1);
    ck_assert(pthread_equal(seen.thread, pthread_self()));
    /* and the signal makes the loop's fd readable (it is I/O: the self-pipe) */
    raise(SIGUSR1);
    ck_assert(readable(fut_loop_fd(loop), 10));
    run_until_seen(loop, &seen, 2);
    ck_assert_int_eq(seen.count, 2);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_signal_replace)
{
    fut_loop *loop = fut_loop_new();
    struct signal_seen seen = { 0 };
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR2, on_signal, &seen), 0);
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR2, on_signal_tagged, &seen), 0);
    raise(SIGUSR2);
    run_until_seen(loop, &seen, 1);
    ck_assert_int_eq(seen.tag, 1);
    ck_assert_int_eq(seen.count, 0);
    fut_loop_free(loop);
}
END_TEST

static void on_usr1(int signum)
{
    (void)signum;
}

START_TEST(test_signal_remove_restores)
{
    struct sigaction mine = { .sa_handler = on_usr1 }, now;
    sigemptyset(&mine.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &mine, NULL), 0);
    signal(SIGUSR2, SIG_IGN);
    fut_loop *loop = fut_loop_new();
    struct signal_seen seen = { 0 };
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR1, on_signal, &seen), 0);
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR2, on_signal, &seen), 0);
    sigaction(SIGUSR1, NULL, &now);
    ck_assert(now.sa_handler != on_usr1);
    /* adding again keeps the disposition found the first time */
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR1, on_signal_tagged, &seen), 0);
    ck_assert_int_eq(fut_loop_remove_signal_handler(loop, SIGUSR1), 0);
    sigaction(SIGUSR1, NULL, &now);
    ck_assert(now.sa_handler == on_usr1);
    ck_assert_int_eq(fut_loop_remove_signal_handler(loop, SIGUSR1), FUT_ENOENT);
    /* fut_loop_free restores the rest */
    fut_loop_free(loop);
    sigaction(SIGUSR2, NULL, &now);
    ck_assert(now.sa_handler == SIG_IGN);
}
END_TEST

START_TEST(test_signal_bad_input)
{
    fut_loop *loop = fut_loop_new();
    struct signal_seen seen = { 0 };
    static const int bad[] = { SIGKILL, SIGSTOP, 0, -1, NSIG, 1000 };
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++) {
        ck_assert_int_eq(fut_loop_add_signal_handler(loop, bad[i], on_signal, &seen), FUT_EINVAL);
        ck_assert_int_eq(fut_loop_remove_signal_handler(loop, bad[i]), FUT_EINVAL);
    }
    ck_assert_int_eq(fut_loop_add_signal_handler(NULL, SIGUSR1, on_signal, &seen), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR1, NULL, &seen), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_remove_signal_handler(NULL, SIGUSR1), FUT_EINVAL);
    /* removing a signal without a handler */
    ck_assert_int_eq(fut_loop_remove_signal_handler(loop, SIGUSR1), FUT_ENOENT);
    /* a signal belongs to one loop at a time */
    fut_loop *other = fut_loop_new();
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGUSR1, on_signal, &seen), 0);
    ck_assert_int_eq(fut_loop_add_signal_handler(other, SIGUSR1, on_signal, &seen), FUT_ESTATE);
    ck_assert_int_eq(fut_loop_remove_signal_handler(other, SIGUSR1), FUT_ENOENT);
    fut_loop_free(other);
    fut_loop_free(loop);
}
END_TEST

/* Threads that leave the signal unblocked (pool workers) do not keep it from the loop. */
START_TEST(test_signal_with_pool_threads)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    fut_loop *loop = fut_loop_new();
    struct signal_seen seen = { 0 };
    ck_assert_int_eq(fut_loop_add_signal_handler(loop, SIGTERM, on_signal, &seen), 0);
    fut_future *f = fut_submit(ex, tu_identity, NULL);
    fut_result(f, FUT_FOREVER, NULL);
    fut_future_unref(f);
    kill(getpid(), SIGTERM);  /* to the process: any thread may take it */
    run_until_seen(loop, &seen, 1);
    ck_assert_int_eq(seen.count, 1);
    fut_loop_free(loop);
    fut_executor_free(ex);
}
END_TEST

static Suite *embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tu_tcase(s, "embedding", 60);
    tcase_add_test(tc, test_fd_stable_and_quiet);
    tcase_add_test(tc, test_fd_threadsafe);
    tcase_add_test(tc, test_fd_io);
    tcase_add_test(tc, test_fd_executor_completion);
    tcase_add_test(tc, test_timeout_values);
    tcase_add_test(tc, test_run_once_counts);
    tcase_add_test(tc, test_run_once_while_running);
    tc = tu_tcase(s, "signals", 60);
    tcase_add_test(tc, test_signal_runs_on_loop_thread);
    tcase_add_test(tc, test_signal_replace);
    tcase_add_test(tc, test_signal_remove_restores);
    tcase_add_test(tc, test_signal_bad_input);
    tcase_add_test(tc, test_signal_with_pool_threads);
    return s;
}

int main(void)
{
    return tu_run(embed_suite());
}
