/* SPDX-License-Identifier: MIT */
/*
 * The hostile pass (issues 9 and 13): what a user who tries to break the library does,
 * each case a test of what must hold. Where the failure mode is a hang, the case runs in
 * a forked child under alarm() (tu_bounded(): the child's exit status is the verdict), so a
 * regression fails in bounded time even without Check's fork mode.
 *
 * Synchronisation goes through futures, pipes and the pool's own state, never through
 * sleeps; durations are asserted only against bounds an order of magnitude above what is
 * expected, where the failure mode is a wait of many seconds.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

static void *noop(void *arg)
{
    return arg;
}

static intptr_t result_of(fut_future *f)
{
    void *r = NULL;
    TU_CHILD_REQUIRE(f != NULL);
    TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, &r) == 0);
    fut_future_unref(f);
    return (intptr_t)r;
}

static fut_executor *process_pool(int workers)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = workers });
    TU_CHILD_REQUIRE(ex != NULL);
    return ex;
}

/* ---- hangs: descriptors another fork inherits ---------------------------------------- */

/* Two pools alive at once, the first freed first: the second's fork server inherited the
 * first's sockets. */
static void two_pools_body(void)
{
    fut_executor *a = process_pool(2), *b = process_pool(2);
    TU_CHILD_REQUIRE(result_of(fut_submit(a, square, TU_P(3))) == 9);
    TU_CHILD_REQUIRE(result_of(fut_submit(b, square, TU_P(4))) == 16);
    double t0 = tu_now();
    fut_executor_free(a);
    TU_CHILD_REQUIRE(tu_now() - t0 < 5);
    TU_CHILD_REQUIRE(result_of(fut_submit(b, square, TU_P(5))) == 25);
    fut_executor_free(b);
}

START_TEST(test_two_pools_free_in_creation_order)
{
    tu_bounded(two_pools_body, 30, false);
}
END_TEST

/* The application forks a child of its own while a pool is alive: the child holds copies
 * of the pool's sockets, and free must not wait for it. */
static void app_child_body(void)
{
    enum { MAX_FD = 1024 };
    bool open_before[MAX_FD];
    for (int fd = 0; fd < MAX_FD; fd++)
        open_before[fd] = fcntl(fd, F_GETFD) >= 0;
    fut_executor *ex = process_pool(2);
    TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(6))) == 36);
    int gate[2];
    TU_CHILD_REQUIRE(pipe(gate) == 0);
    pid_t child = fork();
    TU_CHILD_REQUIRE(child >= 0);
    if (child == 0) {
        char c;
        /* the pool's descriptors were closed in this child: only ours are left */
        for (int fd = 0; fd < MAX_FD; fd++)
            if (fd != gate[0] && fd != gate[1] && !open_before[fd] && fcntl(fd, F_GETFD) >= 0)
                _exit(3);
        close(gate[1]);
        while (read(gate[0], &c, 1) < 0)  /* until the test closes the gate */
            ;
        _exit(0);
    }
    close(gate[0]);
    double t0 = tu_now();
    fut_executor_free(ex);
    double took = tu_now() - t0;
    close(gate[1]);
    int status;
    TU_CHILD_REQUIRE(waitpid(child, &status, 0) == child);
    TU_CHILD_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    TU_CHILD_REQUIRE(took < 5);  /* the child lives until now: a wait for it would take the alarm */
}

START_TEST(test_app_fork_does_not_hold_free)
{
    tu_bounded(app_child_body, 30, false);
}
END_TEST

/* ---- hangs: shutdown from inside ----------------------------------------------------- */

static fut_executor *self_shutdown_ex;
static bool self_shutdown_wait;

/* A task that waits until another thread is inside fut_shutdown (submits are refused),
 * then shuts its own pool down. */
static void *shutdown_own_pool(void *arg)
{
    (void)arg;
    fut_future *f;
    while ((f = fut_submit(self_shutdown_ex, noop, NULL)) != NULL) {
        fut_future_unref(f);
        tu_sleep(0.001);
    }
    TU_CHILD_REQUIRE(errno == FUT_ESHUTDOWN * -1);
    TU_CHILD_REQUIRE(fut_shutdown(self_shutdown_ex, self_shutdown_wait, false) == 0);
    return TU_P(7);
}

static void task_shutdown_body(void)
{
    for (int wait = 0; wait < 2; wait++) {
        self_shutdown_wait = wait;
        fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
        TU_CHILD_REQUIRE(ex != NULL);
        self_shutdown_ex = ex;
        fut_future *f = fut_submit(ex, shutdown_own_pool, NULL);
        TU_CHILD_REQUIRE(f != NULL);
        TU_CHILD_REQUIRE(fut_shutdown(ex, true, false) == 0);
        TU_CHILD_REQUIRE(fut_done(f));
        TU_CHILD_REQUIRE(result_of(f) == 7);
        fut_executor_free(ex);
    }
}

START_TEST(test_task_shuts_down_own_thread_pool)
{
    tu_bounded(task_shutdown_body, 30, false);
}
END_TEST

/* A done callback (run by the process pool's dispatcher) shuts the pool down while the
 * main thread is inside fut_executor_free. */
static int release_pipe[2];
static fut_executor *callback_ex;

static void *wait_for_release(void *arg)
{
    (void)arg;
    char c;
    return TU_P(read(release_pipe[0], &c, 1));
}

/* Set by the releasing thread before it writes the pipe, read by the callback: the
 * pipe's order runs through the worker process, where ThreadSanitizer cannot see it, so
 * this pair tells it that the releasing thread's last submit came before the free. */
static atomic_int released;

static void shutdown_in_callback(fut_future *f, void *arg)
{
    (void)f;
    (void)arg;
    TU_CHILD_REQUIRE(atomic_load(&released) == 1);
    fut_shutdown(callback_ex, true, false);
}

static void *release_once_shut_down(void *arg)
{
    fut_future *f;
    while ((f = fut_submit(arg, noop, NULL)) != NULL) {
        fut_future_unref(f);
        tu_sleep(0.001);
    }
    atomic_store(&released, 1);
    char c = 1;
    TU_CHILD_REQUIRE(write(release_pipe[1], &c, 1) == 1);
    return NULL;
}

static void callback_shutdown_body(void)
{
    TU_CHILD_REQUIRE(pipe(release_pipe) == 0);
    fut_executor *ex = process_pool(1);
    callback_ex = ex;
    fut_future *f = fut_submit(ex, wait_for_release, NULL);
    TU_CHILD_REQUIRE(f != NULL);
    TU_CHILD_REQUIRE(fut_add_done_callback(f, shutdown_in_callback, NULL) == 0);
    pthread_t t;
    TU_CHILD_REQUIRE(pthread_create(&t, NULL, release_once_shut_down, ex) == 0);
    fut_executor_free(ex);
    pthread_join(t, NULL);
    TU_CHILD_REQUIRE(result_of(f) == 1);
}

START_TEST(test_callback_shuts_down_process_pool_in_free)
{
    tu_bounded(callback_shutdown_body, 30, false);
}
END_TEST

/* ---- hangs: locks inherited locked through fork ------------------------------------- */

static atomic_bool stop_hammering;

static void *hammer_random(void *arg)
{
    (void)arg;
    long sink = 0;
    while (!atomic_load_explicit(&stop_hammering, memory_order_relaxed))
        sink += random();
    return (void *)sink;
}

static void *hammer_bytes(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop_hammering, memory_order_relaxed)) {
        void *b = fut_bytes_new(16);
        fut_bytes_free(b);
    }
    return NULL;
}

static void *random_task(void *arg)
{
    (void)arg;
    return fut_bytes_new(8);  /* takes the bytes registry's lock in the worker */
}

static void fork_locks_body(void)
{
    pthread_t t[2];
    TU_CHILD_REQUIRE(pthread_create(&t[0], NULL, hammer_random, NULL) == 0);
    TU_CHILD_REQUIRE(pthread_create(&t[1], NULL, hammer_bytes, NULL) == 0);
    int rounds = (int)tu_scale(20, 4);
    for (int i = 0; i < rounds; i++) {
        fut_executor *ex = process_pool(1);
        fut_future *f = fut_submit(ex, random_task, NULL);
        TU_CHILD_REQUIRE(f != NULL);
        TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, NULL) == 0);
        fut_future_unref(f);
        fut_executor_free(ex);
    }
    atomic_store(&stop_hammering, true);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
}

START_TEST(test_pool_created_while_threads_hold_locks)
{
    tu_bounded(fork_locks_body, 60, false);
}
END_TEST

/* ---- hangs: NaN timeouts ------------------------------------------------------------- */

START_TEST(test_nan_timeouts)
{
    fut_future *f = fut_future_new();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_result(f, NAN, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_exception(f, NAN), FUT_EINVAL);
    size_t n_done = 99;
    ck_assert_int_eq(fut_wait(&f, 1, NAN, FUT_ALL_COMPLETED, &n_done), FUT_EINVAL);
    errno = 0;
    ck_assert_ptr_null(fut_as_completed_new(&f, 1, NAN));
    ck_assert_int_eq(errno, EINVAL);
    fut_executor *ex = fut_thread_pool_new(NULL);
    void *args[1] = { NULL }, *results[1];
    ck_assert_int_eq(fut_map(ex, noop, args, 1, results, NAN, 0), FUT_EINVAL);
    fut_executor_free(ex);
    ck_assert(!fut_done(f));
    fut_future_unref(f);
}
END_TEST

/* ---- hangs: a stopped idle worker ---------------------------------------------------- */

static void *own_pid(void *arg)
{
    (void)arg;
    return TU_P(getpid());
}

static void stopped_worker_body(void)
{
    fut_executor *ex = process_pool(1);
    pid_t worker = (pid_t)result_of(fut_submit(ex, own_pid, NULL));
    TU_CHILD_REQUIRE(kill(worker, SIGSTOP) == 0);
    double t0 = tu_now();
    fut_executor_free(ex);
    TU_CHILD_REQUIRE(tu_now() - t0 < 5);
    TU_CHILD_REQUIRE(kill(worker, 0) != 0 && errno == ESRCH);  /* killed and reaped */
}

START_TEST(test_stopped_idle_worker_does_not_hold_free)
{
    tu_bounded(stopped_worker_body, 30, false);
}
END_TEST

/* ---- crossed results ---------------------------------------------------------------- */

/* Forks; the child returns from the task instead of calling _exit. */
static void *fork_and_return(void *arg)
{
    pid_t child = fork();
    if (child == 0)
        return TU_P(0x2f);
    if (child > 0)
        waitpid(child, NULL, 0);
    return TU_P(TU_I(arg) + 100);
}

static void forked_task_body(void)
{
    fut_executor *ex = process_pool(2);
    for (intptr_t round = 0; round < 3; round++) {
        fut_future *forking = fut_submit(ex, fork_and_return, TU_P(round));
        fut_future *f[16];
        for (intptr_t i = 0; i < 16; i++)
            f[i] = fut_submit(ex, square, TU_P(i + 1000 * round));
        TU_CHILD_REQUIRE(result_of(forking) == round + 100);
        for (intptr_t i = 0; i < 16; i++)
            TU_CHILD_REQUIRE(result_of(f[i]) == (i + 1000 * round) * (i + 1000 * round));
    }
    fut_executor_free(ex);
}

START_TEST(test_forked_task_child_returns)
{
    tu_bounded(forked_task_body, 60, false);
}
END_TEST

/* The wire header as the library lays it out (src/process/wire.h): a hostile task forges
 * one on every socket it holds, its own worker's socket among them, then waits. The
 * socket carries only records of the library's own (wire.h), so the parent must see the
 * stray record itself, with no message in the worker's ring to prompt it, and kill the
 * worker. (Forgeries in the ring itself: tests/test_process_channel.c.) */
struct forged_header {
    uint32_t type;
    int32_t code;
    uint64_t len, a, b, seq;
};

static _Noreturn void forge_on_every_socket(const struct forged_header *h)
{
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            send(fd, h, sizeof *h, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    for (;;)
        pause();
}

static void *forge_huge_bytes(void *arg)
{
    (void)arg;
    struct forged_header h = { .type = 6 /* BYTES */, .len = (uint64_t)1 << 40, .seq = 1 };
    forge_on_every_socket(&h);
    return TU_P(1);
}

static void *forge_stray_outcome(void *arg)
{
    (void)arg;
    struct forged_header h = { .type = 5 /* RESULT */, .a = 0x2f, .seq = 12345 };
    forge_on_every_socket(&h);
    return TU_P(1);
}

static void *forge_unknown_type(void *arg)
{
    (void)arg;
    struct forged_header h = { .type = 77 };
    forge_on_every_socket(&h);
    return TU_P(1);
}

static void forged_body(void)
{
    fut_fn forgers[] = { forge_huge_bytes, forge_stray_outcome, forge_unknown_type };
    fut_executor *ex = process_pool(1);
    for (size_t i = 0; i < TU_ARRAY_SIZE(forgers); i++) {
        fut_future *f = fut_submit(ex, forgers[i], NULL);
        TU_CHILD_REQUIRE(f != NULL);
        TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, NULL) == FUT_EBROKEN);
        TU_CHILD_REQUIRE(fut_exception_message(f) && strstr(fut_exception_message(f), "protocol"));
        fut_future_unref(f);
        /* the pool goes on with a new worker */
        TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(12))) == 144);
    }
    fut_executor_free(ex);
}

START_TEST(test_forged_messages)
{
    tu_bounded(forged_body, 60, false);
}
END_TEST

/* A task writes half a header on its socket, shuts the socket down and waits: the parent
 * must end the worker itself. */
static void *half_message_then_close(void *arg)
{
    (void)arg;
    struct forged_header h = { .type = 5 /* RESULT */, .seq = 1 };
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
            send(fd, &h, sizeof h / 2, MSG_NOSIGNAL | MSG_DONTWAIT);
            shutdown(fd, SHUT_RDWR);
        }
    }
    for (;;)
        pause();
    return NULL;
}

static void half_message_body(void)
{
    fut_executor *ex = process_pool(1);
    fut_future *f = fut_submit(ex, half_message_then_close, NULL);
    TU_CHILD_REQUIRE(f != NULL);
    TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, NULL) == FUT_EBROKEN);
    TU_CHILD_REQUIRE(fut_exception_message(f) != NULL);
    fut_future_unref(f);
    TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(13))) == 169);
    fut_executor_free(ex);
}

START_TEST(test_worker_closes_socket_mid_message)
{
    tu_bounded(half_message_body, 30, false);
}
END_TEST

/* A worker stopped (SIGSTOP) in the middle of its task: task_timeout still ends it. */
static int stop_note[2];

static void *note_pid_and_block(void *arg)
{
    (void)arg;
    pid_t self = getpid();
    if (write(stop_note[1], &self, sizeof self) != sizeof self)
        _exit(96);
    for (;;)
        pause();
}

static void stopped_busy_body(void)
{
    TU_CHILD_REQUIRE(pipe(stop_note) == 0);
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1, .task_timeout = 0.3 });
    TU_CHILD_REQUIRE(ex != NULL);
    fut_future *f = fut_submit(ex, note_pid_and_block, NULL);
    TU_CHILD_REQUIRE(f != NULL);
    pid_t worker;
    TU_CHILD_REQUIRE(read(stop_note[0], &worker, sizeof worker) == sizeof worker);
    TU_CHILD_REQUIRE(kill(worker, SIGSTOP) == 0);
    TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, NULL) == FUT_ETIMEDOUT);
    TU_CHILD_REQUIRE(fut_done(f));
    fut_future_unref(f);
    TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(14))) == 196);
    fut_executor_free(ex);
}

START_TEST(test_stopped_busy_worker_times_out)
{
    tu_bounded(stopped_busy_body, 30, false);
}
END_TEST

/* At the descriptor limit a new worker's socket cannot be received: the pool must not
 * fork in a storm or spin while the task waits for the worker it has. */
static int storm_gate[2];

static void *wait_storm_gate(void *arg)
{
    char c;
    return TU_P(read(storm_gate[0], &c, 1) + TU_I(arg));
}

/* Every worker started notes it here (its initializer), before it can be killed. */
static int spawn_notes[2];

static int note_spawn(void *arg)
{
    (void)arg;
    char c = 1;
    return write(spawn_notes[1], &c, 1) == 1 ? 0 : 1;
}

static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int spawns_noted(void)
{
    int n = 0;
    TU_CHILD_REQUIRE(ioctl(spawn_notes[0], FIONREAD, &n) == 0);
    return n;
}

static void fd_limit_body(void)
{
    TU_CHILD_REQUIRE(pipe(storm_gate) == 0 && pipe(spawn_notes) == 0);
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2,
                                                                 .initializer = note_spawn });
    TU_CHILD_REQUIRE(ex != NULL);
    fut_future *busy = fut_submit(ex, wait_storm_gate, TU_P(0));
    TU_CHILD_REQUIRE(busy != NULL);
    while (!fut_running(busy))
        tu_sleep(0.001);
    struct rlimit old, tight;
    TU_CHILD_REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int lowest = dup(0);
    TU_CHILD_REQUIRE(lowest >= 0);
    close(lowest);
    tight = (struct rlimit){ (rlim_t)lowest, old.rlim_max };
    TU_CHILD_REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
    int before = spawns_noted();
    double cpu0 = process_cpu(), t0 = tu_now();
    fut_future *waiting = fut_submit(ex, wait_storm_gate, TU_P(10));
    TU_CHILD_REQUIRE(waiting != NULL);
    tu_sleep(0.5);  /* the window observed, not a synchronisation */
    double cpu = process_cpu() - cpu0, wall = tu_now() - t0;
    TU_CHILD_REQUIRE(cpu < wall / 2);  /* a busy loop in the dispatcher takes a whole core */
    /* with the backoff (10 ms doubling) at most 6 attempts fit in 0.5 s; a storm forks
     * hundreds (about a hundred even on a loaded machine under strace) */
    TU_CHILD_REQUIRE(spawns_noted() - before <= 8);
    TU_CHILD_REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    char c[2] = { 1, 1 };
    TU_CHILD_REQUIRE(write(storm_gate[1], c, 2) == 2);
    TU_CHILD_REQUIRE(result_of(busy) == 1);
    TU_CHILD_REQUIRE(result_of(waiting) == 11);
    fut_executor_free(ex);
}

START_TEST(test_fd_limit_no_respawn_storm)
{
    tu_bounded(fd_limit_body, 30, false);
}
END_TEST

/* ---- resource limits and odd arguments ------------------------------------------------ */

START_TEST(test_strerror_int_min)
{
    ck_assert_ptr_nonnull(fut_strerror(INT_MIN));
    ck_assert_ptr_nonnull(fut_strerror(INT_MAX));
}
END_TEST

START_TEST(test_max_workers_int_max)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = INT_MAX });
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_eq(fut_executor_max_workers(ex), INT_MAX);
    fut_future *f = fut_submit(ex, square, TU_P(9));
    void *r;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    ck_assert_int_eq(TU_I(r), 81);
    fut_future_unref(f);
    fut_executor_free(ex);
    errno = 0;
    ck_assert_ptr_null(fut_process_pool_new(&(fut_pool_options){ .max_workers = INT_MAX }));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static void *sigchld_disposition(void *arg)
{
    (void)arg;
    struct sigaction sa;
    sigaction(SIGCHLD, NULL, &sa);
    return TU_P(sa.sa_handler == SIG_IGN);
}

static void sigchld_body(void)
{
    signal(SIGCHLD, SIG_IGN);
    fut_executor *ex = process_pool(1);
    signal(SIGCHLD, SIG_DFL);
    TU_CHILD_REQUIRE(result_of(fut_submit(ex, sigchld_disposition, NULL)) == 1);
    fut_executor_free(ex);
}

START_TEST(test_workers_inherit_sigchld_ignored)
{
    tu_bounded(sigchld_body, 30, false);
}
END_TEST


/* ---- latency: a task handed ahead moves to a worker that became idle --------------- */

static int gates[2][2];            /* one pipe per blocker: the test writes, a task reads */
static int started[2];             /* tasks note their start here */

static void *blocker(void *arg)
{
    char c = 1;
    if (write(started[1], &c, 1) != 1)
        _exit(97);
    return TU_P(read(gates[TU_I(arg)][0], &c, 1));
}

static void ahead_body(void)
{
    TU_CHILD_REQUIRE(pipe(gates[0]) == 0 && pipe(gates[1]) == 0 && pipe(started) == 0);
    fut_executor *ex = process_pool(2);
    for (int round = 0; round < 2; round++) {
        fut_future *b[2] = { fut_submit(ex, blocker, TU_P(0)), fut_submit(ex, blocker, TU_P(1)) };
        char c;
        for (int i = 0; i < 2; i++)  /* both workers busy */
            TU_CHILD_REQUIRE(read(started[0], &c, 1) == 1);
        /* handed ahead to one of the busy workers */
        fut_future *quick = fut_submit(ex, square, TU_P(11));
        TU_CHILD_REQUIRE(quick != NULL);
        while (!fut_running(quick))  /* handed: it left the queue for a busy worker */
            tu_sleep(0.001);
        /* one blocker ends; whichever worker holds `quick`, it must run now, while the
         * other blocker still blocks (it is released only afterwards) */
        int first = round;
        TU_CHILD_REQUIRE(write(gates[first][1], &c, 1) == 1);
        TU_CHILD_REQUIRE(result_of(quick) == 121);
        TU_CHILD_REQUIRE(!fut_done(b[1 - first]));
        TU_CHILD_REQUIRE(write(gates[1 - first][1], &c, 1) == 1);
        TU_CHILD_REQUIRE(result_of(b[0]) == 1 && result_of(b[1]) == 1);
    }
    fut_executor_free(ex);
}

START_TEST(test_task_ahead_moves_to_idle_worker)
{
    tu_bounded(ahead_body, 30, false);
}
END_TEST

/* ---- fut_map and task_timeout (issue 13) ------------------------------------------- */

/* A unit of work (10 ms, 50 ms under sanitizers); -1 never returns (killed by
 * task_timeout, 20 units: a chunk of 20 items would overrun it). */
static double map_unit(void)
{
    return tu_quick() ? 0.05 : 0.01;
}

static void *short_item(void *arg)
{
    if (TU_I(arg) < 0)
        for (;;)
            pause();
    tu_sleep(map_unit());
    return TU_P(TU_I(arg) * 2);
}

static void map_timeout_body(void)
{
    enum { N = 40 };
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2,
                                                                 .task_timeout = 20 * map_unit() });
    TU_CHILD_REQUIRE(ex != NULL);
    void *args[N], *results[N];
    for (intptr_t i = 0; i < N; i++)
        args[i] = TU_P(i);
    /* 40 items of one unit: chunks of 20 would take the whole limit, each item gets it */
    TU_CHILD_REQUIRE(fut_map(ex, short_item, args, N, results, FUT_FOREVER, 0) == 0);
    for (intptr_t i = 0; i < N; i++)
        TU_CHILD_REQUIRE(TU_I(results[i]) == 2 * i);
    TU_CHILD_REQUIRE(fut_map(ex, short_item, args, N, results, FUT_FOREVER, 20) == 0);
    /* one item overruns: it fails alone */
    args[17] = TU_P(-1);
    TU_CHILD_REQUIRE(fut_map(ex, short_item, args, N, results, FUT_FOREVER, 0) == FUT_ETIMEDOUT);
    for (intptr_t i = 0; i < N; i++)
        TU_CHILD_REQUIRE(i == 17 ? results[i] == NULL : TU_I(results[i]) == 2 * i);
    fut_executor_free(ex);
}

START_TEST(test_map_task_timeout_per_item)
{
    tu_bounded(map_timeout_body, 60, false);
}
END_TEST

/* ---- the event loop ------------------------------------------------------------------ */

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

START_TEST(test_handle_of_another_loop)
{
    fut_loop *a = fut_loop_new(), *b = fut_loop_new();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    int ran_a = 0, ran_b = 0;
    fut_handle ha = fut_loop_call_soon(a, count_call, &ran_a);
    fut_handle hb = fut_loop_call_soon(b, count_call, &ran_b);
    ck_assert(ha != 0 && hb != 0);
    /* the first callbacks of two fresh loops: same slot, same generation */
    ck_assert_int_eq(fut_loop_cancel(b, ha), FUT_ENOENT);
    ck_assert_int_eq(fut_loop_cancel(a, hb), FUT_ENOENT);
    fut_future *done_a = fut_loop_sleep(a, 0, NULL), *done_b = fut_loop_sleep(b, 0, NULL);
    ck_assert_int_eq(fut_loop_run_until_complete(a, done_a), 0);
    ck_assert_int_eq(fut_loop_run_until_complete(b, done_b), 0);
    ck_assert_int_eq(ran_a, 1);
    ck_assert_int_eq(ran_b, 1);
    fut_future_unref(done_a);
    fut_future_unref(done_b);
    fut_loop_free(a);
    fut_loop_free(b);
}
END_TEST

START_TEST(test_add_reader_fd_not_open)
{
    fut_loop *loop = fut_loop_new();
    int dummy = 0;
    ck_assert_int_eq(fut_loop_add_reader(loop, 1 << 20, count_call, &dummy), -EBADF);
    ck_assert_int_eq(fut_loop_add_writer(loop, INT_MAX, count_call, &dummy), -EBADF);
    fut_loop_free(loop);
}
END_TEST

/* Threads post to a loop while it runs, stops and is freed: each post either is queued
 * (and dropped by the free) or fails with ESHUTDOWN; nothing hangs, nothing crashes. */
static atomic_int posted;
static int received_this_round;  /* loop thread only */

static void received(void *arg)
{
    if (++received_this_round == 200)
        fut_loop_stop(arg);
}

static void *poster(void *arg)
{
    fut_loop *loop = arg;
    for (;;) {
        fut_handle h = fut_loop_call_soon_threadsafe(loop, received, loop);
        if (!h) {
            TU_CHILD_REQUIRE(errno == ESHUTDOWN);
            return NULL;
        }
        atomic_fetch_add(&posted, 1);
    }
}

static void threadsafe_free_body(void)
{
    for (int round = 0; round < 5; round++) {
        fut_loop *loop = fut_loop_new();
        TU_CHILD_REQUIRE(loop != NULL);
        received_this_round = 0;
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            TU_CHILD_REQUIRE(pthread_create(&t[i], NULL, poster, loop) == 0);
        TU_CHILD_REQUIRE(fut_loop_run_forever(loop) == 0);
        fut_loop_free(loop);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
    }
    TU_CHILD_REQUIRE(atomic_load(&posted) >= 200);
}

START_TEST(test_threadsafe_calls_racing_free)
{
    tu_bounded(threadsafe_free_body, 60, false);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        { "two_pools_free_in_creation_order", test_two_pools_free_in_creation_order },
        { "app_fork_does_not_hold_free", test_app_fork_does_not_hold_free },
        { "task_shuts_down_own_thread_pool", test_task_shuts_down_own_thread_pool },
        { "callback_shuts_down_process_pool_in_free", test_callback_shuts_down_process_pool_in_free },
        { "pool_created_while_threads_hold_locks", test_pool_created_while_threads_hold_locks },
        { "nan_timeouts", test_nan_timeouts },
        { "stopped_idle_worker_does_not_hold_free", test_stopped_idle_worker_does_not_hold_free },
        { "forked_task_child_returns", test_forked_task_child_returns },
        { "forged_messages", test_forged_messages },
        { "worker_closes_socket_mid_message", test_worker_closes_socket_mid_message },
        { "stopped_busy_worker_times_out", test_stopped_busy_worker_times_out },
        { "fd_limit_no_respawn_storm", test_fd_limit_no_respawn_storm },
        { "strerror_int_min", test_strerror_int_min },
        { "max_workers_int_max", test_max_workers_int_max },
        { "workers_inherit_sigchld_ignored", test_workers_inherit_sigchld_ignored },
        { "task_ahead_moves_to_idle_worker", test_task_ahead_moves_to_idle_worker },
        { "map_task_timeout_per_item", test_map_task_timeout_per_item },
        { "handle_of_another_loop", test_handle_of_another_loop },
        { "add_reader_fd_not_open", test_add_reader_fd_not_open },
        { "threadsafe_calls_racing_free", test_threadsafe_calls_racing_free },
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(tests); i++)
        tcase_add_test(tu_tcase(s, tests[i].name, 300), tests[i].test);
    return s;
}

int main(void)
{
    return tu_run(hostile_suite());
}
