/* SPDX-License-Identifier: MIT */
/*
 * The process pool: values, copies and bytes across the process boundary, exceptions,
 * worker deaths, retirement, timeouts, cancellation, initializers, reseeding, map,
 * resources (descriptors, children) and bad input.
 *
 * Synchronisation with workers goes through pipes they inherit (created before the pool,
 * so the fork server and its workers hold them), never through sleeps.
 * FUT_TEST_SCALE (default 1) divides the large counts and sizes under slow tools
 * (valgrind); FUT_TEST_QUICK and sanitizer builds divide them too. Under valgrind run
 * it with CK_FORK=no and --child-silent-after-fork=yes, as make check-valgrind does: the
 * workers are forks of the test and inherit memory they never free.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testutil.h"

#if TU_SANITIZED
/* A worker killed by SIGSEGV must die of it: the sanitizers would catch it and exit(1). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "handle_segv=0";
}
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "handle_segv=0";
}
#endif

/* What the large counts and sizes are divided by. */
static int scale(void)
{
    const char *s = getenv("FUT_TEST_SCALE");
    int n = s ? atoi(s) : 1;
    if (n < 1)
        n = 1;
    if (tu_quick_requested())
        n *= 8;
    return TU_SANITIZED ? n * 10 : n;
}

/* Pipes the workers inherit: `to_test` for "I started" notes, `to_task` to release them. */
static int to_test[2] = { -1, -1 }, to_task[2] = { -1, -1 };

static void pipes_open(void)
{
    ck_assert_int_eq(pipe(to_test), 0);
    ck_assert_int_eq(pipe(to_task), 0);
}

static long read_note(void)
{
    long v = 0;
    ck_assert_int_eq(read(to_test[0], &v, sizeof v), (ssize_t)sizeof v);
    return v;
}

static void release_task(void)
{
    char c = 1;
    ck_assert_int_eq(write(to_task[1], &c, 1), 1);
}

/* In a worker: tells the test it started, with its pid. */
static void note_started(void)
{
    long pid = getpid();
    if (write(to_test[1], &pid, sizeof pid) != sizeof pid)
        _exit(99);
}

/* In a worker: tells the test it started, then waits to be released. */
static void note_and_wait(void)
{
    note_started();
    char c;
    if (read(to_task[0], &c, 1) != 1)
        _exit(98);
}

static fut_executor *pool_new(int workers)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = workers });
    ck_assert_ptr_nonnull(ex);
    return ex;
}

/* ---- tasks ------------------------------------------------------------------------- */

static void *square(void *arg)
{
    long x = (long)arg;
    return (void *)(x * x);
}

static void *get_pid(void *arg)
{
    (void)arg;
    return (void *)(long)getpid();
}

static void *sum_bytes(void *arg)
{
    const unsigned char *p = arg;
    if (!p)
        return (void *)-1L;
    long sum = 0;
    size_t len = fut_bytes_len(NULL);  /* 0: the copy is not a bytes buffer */
    (void)len;
    for (size_t i = 0; i < 1000; i++)
        sum += p[i];
    ((unsigned char *)arg)[0] = 0;  /* a private copy: writing it changes nothing outside */
    return (void *)sum;
}

static void *make_bytes(void *arg)
{
    size_t len = (size_t)arg;
    unsigned char *b = fut_bytes_new(len);
    if (!b) {
        fut_raise(ENOMEM, "no memory for %zu bytes", len);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(i * 7 + 3);
    return b;
}

static void *raise_long(void *arg)
{
    char message[4097];
    memset(message, 'm', sizeof message - 1);
    message[sizeof message - 1] = '\0';
    fut_raise((int)(long)arg, "%s", message);
    return (void *)1;
}

static void *raise_no_message(void *arg)
{
    (void)arg;
    fut_raise(0, NULL);
    return NULL;
}

static void *die_segv(void *arg)
{
    (void)arg;
    note_started();
    raise(SIGSEGV);
    return NULL;
}

static void *die_kill(void *arg)
{
    (void)arg;
    note_started();
    kill(getpid(), SIGKILL);
    return NULL;
}

static void *die_exit(void *arg)
{
    (void)arg;
    note_started();
    exit(3);
}

static void *die_abort(void *arg)
{
    (void)arg;
    note_started();
    abort();
}

static void *wait_released(void *arg)
{
    note_and_wait();
    return arg;
}

static void *wait_then_die(void *arg)
{
    (void)arg;
    note_and_wait();
    kill(getpid(), SIGKILL);
    return NULL;
}

static void *block_forever(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void *block_forever_noted(void *arg)
{
    note_started();
    return block_forever(arg);
}

static void *spin_ms(void *arg)
{
    double end = tu_now() + (double)(long)arg / 1000;
    while (tu_now() < end)
        ;
    return arg;
}

static void *draw_random(void *arg)
{
    (void)arg;
    long *out = fut_bytes_new(3 * sizeof(long));
    out[0] = rand();
    out[1] = random();
    out[2] = lrand48();
    return out;
}

static void *echo_copy(void *arg)
{
    const size_t *p = arg;
    return fut_bytes_dup(p, p[0]);
}

static void *fail_sevens(void *arg)
{
    long x = (long)arg;
    if (x % 7 == 3)
        fut_raise(77, "item %ld", x);
    return (void *)(x + 1);
}

/* ---- values and bytes -------------------------------------------------------------- */

START_TEST(test_submit_values)
{
    fut_executor *ex = pool_new(2);
    ck_assert_int_eq(fut_executor_max_workers(ex), 2);
    enum { N = 300 };
    fut_future *fs[N];
    for (long i = 0; i < N; i++)
        ck_assert_ptr_nonnull(fs[i] = fut_submit(ex, square, (void *)i));
    for (long i = 0; i < N; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, &r), 0);
        ck_assert_int_eq((long)r, i * i);
        ck_assert(fut_done(fs[i]));
        fut_future_unref(fs[i]);
    }
    /* the task ran in another process */
    fut_future *f = fut_submit(ex, get_pid, NULL);
    void *pid = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &pid), 0);
    ck_assert_int_ne((long)pid, (long)getpid());
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_submit_copy)
{
    fut_executor *ex = pool_new(2);
    unsigned char *buf = malloc(1000);
    long expected = 0;
    for (int i = 0; i < 1000; i++)
        expected += buf[i] = (unsigned char)(i % 251);
    fut_future *f = fut_submit_copy(ex, sum_bytes, buf, 1000);
    memset(buf, 0, 1000);  /* copied at submission */
    free(buf);
    void *r = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, expected);
    fut_future_unref(f);
    /* length 0: the task gets NULL */
    f = fut_submit_copy(ex, sum_bytes, NULL, 0);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, -1);
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

/* Checks that its copy holds round r's bytes (its first size_t is the length, the second
 * the round), then writes over all of it: a task may write its private copy. */
static void *check_then_overwrite(void *arg)
{
    size_t *p = arg;
    size_t len = p[0], round = p[1];
    const unsigned char *bytes = (const unsigned char *)(p + 2);
    for (size_t i = 0; i < len - 2 * sizeof *p; i++)
        if (bytes[i] != (unsigned char)(i * 13 + round))
            return (void *)-1L;
    memset(p, 0xff, len);
    return (void *)round;
}

/* Fills an argument of len bytes for check_then_overwrite: its length, its round, then
 * that round's bytes. */
static void fill_round(size_t *arg, size_t len, size_t round)
{
    arg[0] = len;
    arg[1] = round;
    unsigned char *bytes = (unsigned char *)(arg + 2);
    for (size_t i = 0; i < len - 2 * sizeof *arg; i++)
        bytes[i] = (unsigned char)(i * 13 + round);
}

/* Large copies cross as the copy made at submit, reused from one task to the next (a
 * sealed memfd the worker maps privately, core/bytes_shared.h): each task sees its own
 * bytes, whatever the task before wrote over its copy. */
START_TEST(test_large_copies_private)
{
    fut_executor *ex = pool_new(1);
    size_t len = (1 << 20) + 24;
    size_t *arg = malloc(len);
    ck_assert_ptr_nonnull(arg);
    for (size_t round = 0; round < 6; round++) {
        fill_round(arg, len, round);
        fut_future *f = fut_submit_copy(ex, check_then_overwrite, arg, len);
        ck_assert_ptr_nonnull(f);
        void *r = NULL;
        ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
        ck_assert_int_eq((long)r, (long)round);
        fut_future_unref(f);
    }
    free(arg);
    fut_executor_free(ex);
}
END_TEST

/* Past the descriptor budget for live shared memory (a quarter of RLIMIT_NOFILE), large
 * copies are made in ordinary memory instead: no submit fails for want of descriptors, and
 * every task still gets its own bytes. */
static void copies_past_fd_budget_body(void)
{
    struct rlimit few;
    TU_CHILD_REQUIRE(getrlimit(RLIMIT_NOFILE, &few) == 0);
    few.rlim_cur = 64;             /* a budget of 16 (valgrind takes the soft limit only) */
    TU_CHILD_REQUIRE(setrlimit(RLIMIT_NOFILE, &few) == 0);
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
    TU_CHILD_REQUIRE(ex != NULL);
    enum { N = 40 };
    size_t len = (64 << 10) + 2 * sizeof(size_t);
    size_t *arg = malloc(len);
    TU_CHILD_REQUIRE(arg != NULL);
    fut_future *fs[N];
    for (size_t i = 0; i < N; i++) {
        fill_round(arg, len, i);
        TU_CHILD_REQUIRE((fs[i] = fut_submit_copy(ex, check_then_overwrite, arg, len)) != NULL);
    }
    for (size_t i = 0; i < N; i++) {
        void *r = NULL;
        TU_CHILD_REQUIRE(fut_result(fs[i], FUT_FOREVER, &r) == 0 && (size_t)r == i);
        fut_future_unref(fs[i]);
    }
    free(arg);
    fut_executor_free(ex);
}

START_TEST(test_large_copies_past_fd_budget)
{
    tu_bounded(copies_past_fd_budget_body, 60, false);
}
END_TEST

static void check_pattern(const unsigned char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (b[i] != (unsigned char)(i * 7 + 3))
            ck_abort_msg("byte %zu of %zu differs", i, len);
}

START_TEST(test_bytes_results)
{
    fut_executor *ex = pool_new(2);
    size_t sizes[] = { 0, 1, 4095, 32768, 100000, 1 << 20, (size_t)(64 << 20) / (size_t)scale() };
    enum { N = sizeof sizes / sizeof *sizes };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(ex, make_bytes, (void *)sizes[i]);
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, &r), 0);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(fut_bytes_len(r), sizes[i]);
        check_pattern(r, sizes[i]);
        fut_future_unref(fs[i]);  /* frees the buffer */
    }
    fut_executor_free(ex);
}
END_TEST

/* Large arguments out and large results back at once, on every worker: no deadlock. */
START_TEST(test_large_both_ways)
{
    fut_executor *ex = pool_new(2);
    size_t len = (size_t)(16 << 20) / (size_t)scale();
    size_t *arg = malloc(len);
    memset(arg, 0x5a, len);
    arg[0] = len;
    enum { N = 6 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit_copy(ex, echo_copy, arg, len);
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, &r), 0);
        ck_assert_uint_eq(fut_bytes_len(r), len);
        ck_assert(memcmp(r, arg, len) == 0);
        fut_future_unref(fs[i]);
    }
    free(arg);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_raise)
{
    fut_executor *ex = pool_new(1);
    fut_future *f = fut_submit(ex, raise_long, (void *)(long)EDOM);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), EDOM);
    ck_assert_int_eq(fut_exception(f, 0), EDOM);
    const char *m = fut_exception_message(f);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(strlen(m), 4096);
    ck_assert(m[0] == 'm' && m[4095] == 'm');
    fut_future_unref(f);
    f = fut_submit(ex, raise_no_message, NULL);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), FUT_EINVAL);
    ck_assert_ptr_null(fut_exception_message(f));
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

/* ---- worker deaths ----------------------------------------------------------------- */

static void check_death(fut_fn die, const char *expected_fmt, bool exact)
{
    pipes_open();
    fut_executor *ex = pool_new(2);
    enum { N = 40 };
    fut_future *before[N], *after[N];
    for (long i = 0; i < N; i++)
        before[i] = fut_submit(ex, square, (void *)i);
    fut_future *f = fut_submit(ex, die, NULL);
    for (long i = 0; i < N; i++)
        after[i] = fut_submit(ex, square, (void *)i);
    long pid = read_note();
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), FUT_EBROKEN);
    char expected[160];
    snprintf(expected, sizeof expected, expected_fmt, (int)pid);
    const char *m = fut_exception_message(f);
    ck_assert_ptr_nonnull(m);
    if (exact)
        ck_assert_str_eq(m, expected);
    else
        ck_assert_msg(strncmp(m, expected, strlen(expected)) == 0, "message: %s", m);
    fut_future_unref(f);
    /* every other task completes normally */
    for (long i = 0; i < N; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(before[i], FUT_FOREVER, &r), 0);
        ck_assert_int_eq((long)r, i * i);
        ck_assert_int_eq(fut_result(after[i], FUT_FOREVER, &r), 0);
        ck_assert_int_eq((long)r, i * i);
        fut_future_unref(before[i]);
        fut_future_unref(after[i]);
    }
    /* and the pool keeps serving, twice over a death */
    f = fut_submit(ex, die, NULL);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), FUT_EBROKEN);
    read_note();
    fut_future_unref(f);
    f = fut_submit(ex, square, (void *)9);
    void *r = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, 81);
    fut_future_unref(f);
    fut_executor_free(ex);
}

START_TEST(test_death_segv)
{
    check_death(die_segv, "worker %d terminated by signal 11 (Segmentation fault)", true);
}
END_TEST

START_TEST(test_death_sigkill)
{
    check_death(die_kill, "worker %d terminated by signal 9 (Killed)", true);
}
END_TEST

START_TEST(test_death_exit)
{
    /* exit() runs LeakSanitizer in the child, which may change the status: check the
     * start of the message only there */
    check_death(die_exit, TU_SANITIZED ? "worker %d exited with status" : "worker %d exited with status 3",
                !TU_SANITIZED);
}
END_TEST

START_TEST(test_death_abort)
{
    check_death(die_abort, "worker %d terminated by signal 6 (Aborted)", true);
}
END_TEST

/* A task handed ahead to a worker that dies before starting it goes to another worker. */
START_TEST(test_ahead_task_survives_death)
{
    pipes_open();
    fut_executor *ex = pool_new(1);
    fut_future *dying = fut_submit(ex, wait_then_die, NULL);
    read_note();  /* the only worker runs it: the next task is handed ahead or pending */
    fut_future *next = fut_submit(ex, square, (void *)12);
    release_task();
    ck_assert_int_eq(fut_result(dying, FUT_FOREVER, NULL), FUT_EBROKEN);
    void *r = NULL;
    ck_assert_int_eq(fut_result(next, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, 144);
    fut_future_unref(dying);
    fut_future_unref(next);
    fut_executor_free(ex);
}
END_TEST

/* ---- retirement and timeouts -------------------------------------------------------- */

START_TEST(test_max_tasks_per_child)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2, .max_tasks_per_child = 3 });
    ck_assert_ptr_nonnull(ex);
    enum { N = 60 };
    fut_future *fs[N];
    for (long i = 0; i < N; i++)
        fs[i] = fut_submit(ex, get_pid, NULL);
    long pids[N];
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, &r), 0);
        pids[i] = (long)r;
        fut_future_unref(fs[i]);
    }
    /* each task ran once (one result each); no worker ran more than 3 */
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        int seen = 0, first = 1;
        for (int j = 0; j < N; j++) {
            if (pids[j] == pids[i]) {
                seen++;
                if (j < i)
                    first = 0;
            }
        }
        ck_assert_int_le(seen, 3);
        distinct += first;
    }
    ck_assert_int_ge(distinct, N / 3);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_task_timeout)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2, .task_timeout = 0.2 });
    ck_assert_ptr_nonnull(ex);
    fut_future *stuck = fut_submit(ex, block_forever, NULL);
    fut_future *quick = fut_submit(ex, square, (void *)5);
    ck_assert_int_eq(fut_result(stuck, FUT_FOREVER, NULL), FUT_ETIMEDOUT);
    ck_assert(fut_done(stuck));
    ck_assert_ptr_nonnull(fut_exception_message(stuck));
    ck_assert_ptr_nonnull(strstr(fut_exception_message(stuck), "task_timeout"));
    void *r = NULL;
    ck_assert_int_eq(fut_result(quick, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, 25);
    fut_future_unref(stuck);
    fut_future_unref(quick);
    for (long i = 0; i < 10; i++) {
        fut_future *f = fut_submit(ex, square, (void *)i);
        ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
        ck_assert_int_eq((long)r, i * i);
        fut_future_unref(f);
    }
    fut_executor_free(ex);
}
END_TEST

/* ---- cancellation and shutdown ------------------------------------------------------ */

enum { QUEUED = 10 };

/* A pool of one worker, blocked in *first until release_task(), with QUEUED tasks
 * submitted behind it: at most one of them is handed ahead, the others are pending. */
static fut_executor *blocked_pool(fut_future **first, fut_future *queued[QUEUED])
{
    pipes_open();
    fut_executor *ex = pool_new(1);
    *first = fut_submit(ex, wait_released, (void *)1);
    read_note();
    for (long i = 0; i < QUEUED; i++)
        queued[i] = fut_submit(ex, square, (void *)i);
    return ex;
}

START_TEST(test_cancel_pending)
{
    enum { N = QUEUED };
    fut_future *first, *fs[N];
    fut_executor *ex = blocked_pool(&first, fs);
    /* at most one task is handed ahead: the others are pending */
    ck_assert(!fut_cancel(first));
    for (int i = 1; i < N; i++)
        ck_assert(fut_cancel(fs[i]));
    release_task();
    ck_assert_int_eq(fut_result(first, FUT_FOREVER, NULL), 0);
    void *r = NULL;
    int rc = fut_result(fs[0], FUT_FOREVER, &r);
    ck_assert(rc == 0 || rc == FUT_ECANCELLED);
    for (int i = 1; i < N; i++) {
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, NULL), FUT_ECANCELLED);
        ck_assert(fut_cancelled(fs[i]));
    }
    for (int i = 0; i < N; i++)
        fut_future_unref(fs[i]);
    fut_future_unref(first);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_cancel_futures)
{
    enum { N = QUEUED };
    fut_future *first, *fs[N];
    fut_executor *ex = blocked_pool(&first, fs);
    ck_assert_int_eq(fut_shutdown(ex, false, true), 0);
    for (int i = 1; i < N; i++)
        ck_assert(fut_cancelled(fs[i]));
    errno = 0;
    ck_assert_ptr_null(fut_submit(ex, square, NULL));
    ck_assert_int_eq(errno, ESHUTDOWN);
    release_task();
    ck_assert_int_eq(fut_shutdown(ex, true, true), 0);
    ck_assert_int_eq(fut_result(first, 0, NULL), 0);
    ck_assert(fut_done(fs[0]));
    for (int i = 0; i < N; i++)
        fut_future_unref(fs[i]);
    fut_future_unref(first);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_shutdown_waits)
{
    fut_executor *ex = pool_new(2);
    fut_future *fs[4];
    for (int i = 0; i < 4; i++)
        fs[i] = fut_submit(ex, spin_ms, (void *)20L);
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert(fut_done(fs[i]));
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], 0, &r), 0);
        ck_assert_int_eq((long)r, 20);
        fut_future_unref(fs[i]);
    }
    ck_assert_msg(tu_no_children(), "a process of the pool is not reaped");
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);  /* twice is harmless */
    fut_executor_free(ex);
}
END_TEST

/* ---- initializer --------------------------------------------------------------------- */

static int init_value;

static int init_ok(void *arg)
{
    init_value = (int)(long)arg;
    return 0;
}

static int init_fail(void *arg)
{
    (void)arg;
    return 5;
}

static void *read_init_value(void *arg)
{
    (void)arg;
    return (void *)(long)init_value;
}

START_TEST(test_initializer)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2, .initializer = init_ok,
                                                                 .initarg = (void *)42L });
    fut_future *f = fut_submit(ex, read_init_value, NULL);
    void *r = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, 42);
    ck_assert_int_eq(init_value, 0);  /* it ran in the worker only */
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_initializer_failure)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2, .initializer = init_fail });
    ck_assert_ptr_nonnull(ex);
    fut_future *fs[5];
    for (long i = 0; i < 5; i++)
        fs[i] = fut_submit(ex, square, (void *)i);
    for (int i = 0; i < 5; i++) {
        if (!fs[i]) {
            ck_assert_int_eq(errno, -FUT_EBROKEN);
            continue;
        }
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, NULL), FUT_EBROKEN);
        ck_assert_ptr_nonnull(fut_exception_message(fs[i]));
        fut_future_unref(fs[i]);
    }
    errno = 0;
    ck_assert_ptr_null(fut_submit(ex, square, NULL));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    fut_executor_free(ex);
}
END_TEST

/* ---- random numbers ------------------------------------------------------------------ */

START_TEST(test_random_reseeded)
{
    /* one task per worker: each draw comes from a fresh worker */
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2, .max_tasks_per_child = 1 });
    enum { N = 8 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(ex, draw_random, NULL);
    long draws[N][3];
    for (int i = 0; i < N; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, &r), 0);
        memcpy(draws[i], r, sizeof draws[i]);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            for (int k = 0; k < 3; k++)
                ck_assert_msg(draws[i][k] != draws[j][k], "generator %d repeats", k);
    for (int i = 0; i < N; i++)
        fut_future_unref(fs[i]);
    fut_executor_free(ex);
}
END_TEST

/* ---- map ----------------------------------------------------------------------------- */

START_TEST(test_map)
{
    fut_executor *ex = pool_new(2);
    size_t n = 20000;
    void **args = malloc(n * sizeof *args), **results = malloc(n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)(long)i;
    ck_assert_int_eq(fut_map(ex, square, args, n, results, FUT_FOREVER, 0), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq((long)results[i], (long)(i * i));
    /* failures: every item runs, failed ones are NULL, the first code is returned */
    ck_assert_int_eq(fut_map(ex, fail_sevens, args, n, results, FUT_FOREVER, 100), 77);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_eq(results[i], i % 7 == 3 ? NULL : (void *)(long)(i + 1));
    /* bytes results come back as buffers the caller owns */
    size_t m = 50;
    for (size_t i = 0; i < m; i++)
        args[i] = (void *)(i * 100);
    ck_assert_int_eq(fut_map(ex, make_bytes, args, m, results, FUT_FOREVER, 7), 0);
    for (size_t i = 0; i < m; i++) {
        ck_assert_uint_eq(fut_bytes_len(results[i]), i * 100);
        check_pattern(results[i], i * 100);
        fut_bytes_free(results[i]);
    }
    free(args);
    free(results);
    fut_executor_free(ex);
}
END_TEST

/* A map timeout cancels the chunks still pending in the parent and waits only for the
 * (at most two) handed to the worker. */
START_TEST(test_map_timeout)
{
    fut_executor *ex = pool_new(1);
    enum { N = 100 };
    void *args[N], *results[N];
    for (int i = 0; i < N; i++)
        args[i] = (void *)20L;
    ck_assert_int_eq(fut_map(ex, spin_ms, args, N, results, 0.05, 1), FUT_ETIMEDOUT);
    int done = 0;
    for (int i = 0; i < N; i++)
        done += results[i] == (void *)20L;
    ck_assert_int_lt(done, N / 2);
    ck_assert_ptr_null(results[N - 1]);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_many_tasks)
{
    fut_executor *ex = pool_new(2);
    long n = 100000 / (scale() * (tu_under_valgrind() ? 20 : 1));
    fut_future **fs = malloc((size_t)n * sizeof *fs);
    for (long i = 0; i < n; i++)
        ck_assert_ptr_nonnull(fs[i] = fut_submit(ex, square, (void *)(i % 1000)));
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, &r), 0);
        ck_assert_int_eq((long)r, (i % 1000) * (i % 1000));
        fut_future_unref(fs[i]);
    }
    free(fs);
    fut_executor_free(ex);
}
END_TEST

/* ---- resources ----------------------------------------------------------------------- */

/* New descriptors get the lowest free number: a limit at or below it leaves no room. */
static rlim_t lowest_free_fd(void)
{
    int fd = fcntl(0, F_DUPFD, 0);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return (rlim_t)fd;
}

START_TEST(test_no_leaks)
{
    int fds = tu_count_fds();
    pipes_open();
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 3, .max_tasks_per_child = 2 });
    fut_future *fs[20];
    for (long i = 0; i < 20; i++)
        fs[i] = fut_submit(ex, square, (void *)i);
    fut_future *dead = fut_submit(ex, die_kill, NULL);
    read_note();
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, NULL), 0);
        fut_future_unref(fs[i]);
    }
    ck_assert_int_eq(fut_result(dead, FUT_FOREVER, NULL), FUT_EBROKEN);
    fut_future_unref(dead);
    fut_executor_free(ex);
    close(to_test[0]);
    close(to_test[1]);
    close(to_task[0]);
    close(to_task[1]);
    ck_assert_int_eq(tu_count_fds(), fds);
    ck_assert_msg(tu_no_children(), "a process of the pool is not reaped");
}
END_TEST

/* A pool freed with work queued and a worker blocked still cleans up. */
START_TEST(test_free_with_running_work)
{
    pipes_open();
    fut_executor *ex = pool_new(2);
    fut_future *f = fut_submit(ex, wait_released, (void *)3);
    read_note();
    release_task();
    fut_executor_free(ex);
    ck_assert_int_eq(fut_result(f, 0, NULL), 0);
    fut_future_unref(f);
    ck_assert_msg(tu_no_children(), "a process of the pool is not reaped");
}
END_TEST

static void *print_task(void *arg)
{
    printf("task;");
    return arg;
}

/* Output the parent buffered before creating the pool is written once, by the parent;
 * what a task prints is flushed by its worker. */
START_TEST(test_stdio_not_duplicated)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        if (dup2(out[1], STDOUT_FILENO) < 0)
            _exit(1);
        close(out[0]);
        close(out[1]);
        static char buf[4096];
        setvbuf(stdout, buf, _IOFBF, sizeof buf);
        printf("parent;");
        fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2 });
        fut_future *fs[2] = { fut_submit(ex, print_task, NULL), fut_submit(ex, print_task, NULL) };
        for (int i = 0; i < 2; i++) {
            if (fut_result(fs[i], FUT_FOREVER, NULL) != 0)
                _exit(2);
            fut_future_unref(fs[i]);
        }
        fut_executor_free(ex);
        fflush(stdout);
        _exit(0);
    }
    close(out[1]);
    char text[256] = { 0 };
    size_t len = 0;
    ssize_t n;
    while (len < sizeof text - 1 && (n = read(out[0], text + len, sizeof text - 1 - len)) > 0)
        len += (size_t)n;
    close(out[0]);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(text, "task;task;parent;");
}
END_TEST

/* A parent that exits without shutting down leaves no worker running: the fork server
 * sees its socket close and kills the worker blocked in its task. */
START_TEST(test_parent_exit_kills_workers)
{
    pipes_open();
    pid_t parent = fork();
    ck_assert_int_ge(parent, 0);
    if (parent == 0) {
        fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
        if (!ex || !fut_submit(ex, block_forever_noted, NULL))
            _exit(1);
        char c;
        if (read(to_task[0], &c, 1) != 1)  /* the test saw the worker's pid */
            _exit(1);
        _exit(0);  /* no shutdown */
    }
    long worker = read_note();
    /* valgrind does not know pidfd_open: it warns, then fails it with ENOSYS */
    int pidfd = tu_under_valgrind() ? (errno = ENOSYS, -1)
                                    : (int)syscall(SYS_pidfd_open, (pid_t)worker, 0);
    release_task();
    if (pidfd < 0 && errno == ENOSYS) {
        /* no pidfd: nothing to wait on without sleeping */
        waitpid(parent, NULL, 0);
        return;
    }
    ck_assert_int_ge(pidfd, 0);
    int status;
    ck_assert_int_eq(waitpid(parent, &status, 0), parent);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct pollfd p = { pidfd, POLLIN, 0 };
    ck_assert_int_eq(poll(&p, 1, 30000), 1);  /* the worker is gone */
    close(pidfd);
}
END_TEST

START_TEST(test_fd_limit)
{
    if (tu_under_valgrind())
        return;  /* valgrind fails every call on a descriptor above the soft limit, even
                    one the kernel handed out before the limit was lowered */
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* no room for the pool's descriptors */
    struct rlimit tight = { lowest_free_fd(), old.rlim_max };
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
    errno = 0;
    ck_assert_ptr_null(fut_process_pool_new(NULL));
    ck_assert_int_eq(errno, EMFILE);
    /* room for the pool, none for a worker's socket: its futures fail, nothing hangs */
    rlim_t base = tight.rlim_cur;
    for (rlim_t extra = 1; extra < 8; extra++) {
        tight.rlim_cur = base + extra;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
        fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
        if (!ex) {
            ck_assert_int_eq(errno, EMFILE);
            continue;
        }
        fut_future *f = fut_submit(ex, square, (void *)3);
        void *r = NULL;
        int rc = fut_result(f, FUT_FOREVER, &r);
        /* -EMFILE from a real kernel; valgrind's emulated limit may break the pool */
        ck_assert(rc == 0 || rc == -EMFILE || rc == FUT_EBROKEN);
        if (rc)
            ck_assert_ptr_nonnull(fut_exception_message(f));
        fut_future_unref(f);
        fut_executor_free(ex);
    }
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
}
END_TEST

START_TEST(test_result_too_large)
{
    if (TU_SANITIZED || tu_under_valgrind())
        return;  /* both reserve address space that RLIMIT_AS would cut */
    fut_executor *ex = pool_new(1);
    fut_future *warm = fut_submit(ex, square, (void *)2);  /* the worker exists before the limit */
    ck_assert_int_eq(fut_result(warm, FUT_FOREVER, NULL), 0);
    fut_future_unref(warm);
    struct rlimit old, tight;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    FILE *statm = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    ck_assert_int_eq(fscanf(statm, "%lu", &pages), 1);
    fclose(statm);
    tight.rlim_cur = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (128ul << 20);
    tight.rlim_max = old.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &tight), 0);
    fut_future *f = fut_submit(ex, make_bytes, (void *)(size_t)(256 << 20));
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), FUT_ENOMEM);
    ck_assert_ptr_nonnull(fut_exception_message(f));
    fut_future_unref(f);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    f = fut_submit(ex, square, (void *)4);
    void *r = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &r), 0);
    ck_assert_int_eq((long)r, 16);
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

/* ---- bad input ----------------------------------------------------------------------- */

START_TEST(test_bad_input)
{
    errno = 0;
    ck_assert_ptr_null(fut_process_pool_new(&(fut_pool_options){ .max_workers = -1 }));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_process_pool_new(&(fut_pool_options){ .task_timeout = -1 }));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_process_pool_new(&(fut_pool_options){ .task_timeout = NAN }));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_process_pool_new(&(fut_pool_options){ .max_tasks_per_child = -2 }));
    ck_assert_int_eq(errno, EINVAL);

    fut_executor *ex = fut_process_pool_new(NULL);
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_ge(fut_executor_max_workers(ex), 1);
    errno = 0;
    ck_assert_ptr_null(fut_submit(ex, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_submit(NULL, square, NULL));
    ck_assert_ptr_null(fut_submit_copy(ex, square, NULL, 5));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(fut_shutdown(NULL, true, false), FUT_EINVAL);
    ck_assert_int_eq(fut_map(ex, NULL, NULL, 0, NULL, 0, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);
    errno = 0;
    ck_assert_ptr_null(fut_submit(ex, square, NULL));
    ck_assert_int_eq(errno, ESHUTDOWN);
    ck_assert_ptr_null(fut_submit_copy(ex, square, "x", 1));
    ck_assert_int_eq(errno, ESHUTDOWN);
    fut_executor_free(ex);
    fut_executor_free(NULL);
}
END_TEST

static Suite *process_pool_suite(void)
{
    Suite *s = suite_create("process_pool");
    struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        { "submit_values", test_submit_values },
        { "submit_copy", test_submit_copy },
        { "large_copies_private", test_large_copies_private },
        { "large_copies_past_fd_budget", test_large_copies_past_fd_budget },
        { "bytes_results", test_bytes_results },
        { "large_both_ways", test_large_both_ways },
        { "raise", test_raise },
        { "death_segv", test_death_segv },
        { "death_sigkill", test_death_sigkill },
        { "death_exit", test_death_exit },
        { "death_abort", test_death_abort },
        { "ahead_task_survives_death", test_ahead_task_survives_death },
        { "max_tasks_per_child", test_max_tasks_per_child },
        { "task_timeout", test_task_timeout },
        { "cancel_pending", test_cancel_pending },
        { "cancel_futures", test_cancel_futures },
        { "shutdown_waits", test_shutdown_waits },
        { "initializer", test_initializer },
        { "initializer_failure", test_initializer_failure },
        { "random_reseeded", test_random_reseeded },
        { "map", test_map },
        { "map_timeout", test_map_timeout },
        { "many_tasks", test_many_tasks },
        { "no_leaks", test_no_leaks },
        { "free_with_running_work", test_free_with_running_work },
        { "stdio_not_duplicated", test_stdio_not_duplicated },
        { "parent_exit_kills_workers", test_parent_exit_kills_workers },
        { "fd_limit", test_fd_limit },
        { "result_too_large", test_result_too_large },
        { "bad_input", test_bad_input },
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(tests); i++)
        tcase_add_test(tu_tcase(s, tests[i].name, 60), tests[i].test);
    return s;
}

int main(void)
{
    return tu_run(process_pool_suite());
}
