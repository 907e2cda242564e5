/* SPDX-License-Identifier: MIT */
/*
 * Out of memory at every allocation: each case runs a small workload once per allocation
 * it makes, in a fresh child process, with exactly that allocation failing (malloc,
 * calloc, realloc and the aligned allocators are interposed below). Whatever fails must
 * fail cleanly: a call returns FUT_ENOMEM (or NULL with errno ENOMEM), or a future ends
 * with FUT_ENOMEM (FUT_EBROKEN for a process pool that could not start a worker; EAGAIN
 * where a thread could not be started), every
 * other value is right, nothing crashes and nothing hangs (alarm). The sweep ends at the
 * first run whose workload never reached the failing allocation.
 *
 * Not under the sanitizers or valgrind: they bring allocators of their own.
 */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <futures.h>
#include "testutil.h"

/* ---- the failing allocator -------------------------------------------------------- */

#if !TU_SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* > 0: allocations left before the one that fails; 0: that one has failed; < 0: off */
static atomic_long countdown = -1;

static bool fail_now(void)
{
    long left = atomic_load_explicit(&countdown, memory_order_relaxed);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&countdown, &left, left - 1))
            return left == 1;
    }
    return false;
}

void *malloc(size_t n)
{
    return fail_now() ? (errno = ENOMEM, NULL) : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    return fail_now() ? (errno = ENOMEM, NULL) : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return fail_now() ? (errno = ENOMEM, NULL) : __libc_realloc(p, n);
}

void *aligned_alloc(size_t alignment, size_t n)
{
    return fail_now() ? (errno = ENOMEM, NULL) : __libc_memalign(alignment, n);
}

int posix_memalign(void **out, size_t alignment, size_t n)
{
    if (fail_now())
        return ENOMEM;
    void *p = __libc_memalign(alignment, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

static void arm(long nth)
{
    atomic_store(&countdown, nth);
}

/* Disarms; true when the armed allocation was reached (and failed). */
static bool disarm(void)
{
    return atomic_exchange(&countdown, -1) == 0;
}
#endif

/* ---- what counts as a clean failure ------------------------------------------------ */

#define RUN_OK 0                   /* every check passed */
#define RUN_WRONG 1                /* a value or a code that is neither right nor ENOMEM */
#define RUN_NOT_REACHED 2          /* the workload made fewer allocations than asked */

static bool wrong;
static int wrong_line;          /* where the first wrong value was seen, for the message */

#define WRONG() (wrong_line = wrong_line ? wrong_line : __LINE__, wrong = true)

/* A call's return code: 0, or a clean out-of-memory failure (true: carry on). */
static bool ok_or_enomem_at(int rc, int line)
{
    if (rc != 0 && rc != FUT_ENOMEM && !wrong_line)
        wrong_line = line;
    wrong |= rc != 0 && rc != FUT_ENOMEM;
    return rc == 0;
}
#define ok_or_enomem(rc) ok_or_enomem_at((rc), __LINE__)

/* EAGAIN too: a pool that could not start a thread says so (pthread_create's code, which
 * is what it returns when its own allocations fail). */
static bool ptr_ok_at(const void *p, int line)
{
    bool clean = p || errno == ENOMEM || errno == EAGAIN;
    if (!clean && !wrong_line)
        wrong_line = line * 1000 + errno;
    wrong |= !clean;
    return p != NULL;
}
#define ptr_ok(p) ptr_ok_at((p), __LINE__)

/* A future's outcome: the expected value, or out of memory (or `also` when non-zero). */
static void check_result(fut_future *f, intptr_t expected, int also)
{
    void *r = NULL;
    int rc = fut_result(f, FUT_FOREVER, &r);
    if (rc == 0 ? TU_I(r) != expected : rc != FUT_ENOMEM && (also == 0 || rc != also))
        WRONG();
}

/* ---- workloads --------------------------------------------------------------------- */

static void count_done(fut_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void futures_workload(void)
{
    fut_future *fs[4] = { 0 };
    atomic_int called = 0;
    int added = 0;
    for (int i = 0; i < 4; i++) {
        if (!ptr_ok(fs[i] = fut_future_new()))
            goto out;
        added += ok_or_enomem(fut_add_done_callback(fs[i], count_done, &called));
    }
    ok_or_enomem(fut_set_result(fs[0], TU_P(1)));
    size_t n_done = 0;
    ok_or_enomem(fut_wait(fs, 4, 0, FUT_FIRST_COMPLETED, &n_done));
    fut_as_completed *it = fut_as_completed_new(fs, 1, FUT_FOREVER);
    if (ptr_ok(it)) {
        fut_future *next = NULL;
        int rc = fut_as_completed_next(it, &next);
        if (rc == 1 ? next != fs[0] : rc != FUT_ENOMEM)
            WRONG();
        fut_as_completed_free(it);
    }
    /* with no memory for its message, fut_set_exception leaves the future as it was */
    for (int i = 1; i < 4; i++)
        if (fut_set_exception(fs[i], FUT_EBROKEN, "done") == FUT_ENOMEM)
            ok_or_enomem(fut_set_exception(fs[i], FUT_EBROKEN, NULL));
    if (atomic_load(&called) != added)
        WRONG();
out:
    for (int i = 0; i < 4; i++)
        fut_future_unref(fs[i]);
}

static void pool_workload(fut_executor *ex, int also)
{
    enum { TASKS = 6, ITEMS = 40 };
    fut_future *fs[TASKS] = { 0 };
    for (int i = 0; i < TASKS; i++) {
        long v = i;
        fs[i] = i % 2 ? fut_submit(ex, tu_plus_one, TU_P(i)) : fut_submit_copy(ex, tu_identity, &v, sizeof v);
        ptr_ok(fs[i]);
    }
    static void *args[ITEMS], *results[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        args[i] = TU_P(i);
    int rc = fut_map(ex, tu_plus_one, args, ITEMS, results, FUT_FOREVER, 8);
    if (rc == 0) {
        for (int i = 0; i < ITEMS; i++)
            if (TU_I(results[i]) != i + 1)
                WRONG();
    } else if (rc != FUT_ENOMEM && rc != also) {
        WRONG();
    }
    for (int i = 0; i < TASKS; i++) {
        if (!fs[i])
            continue;
        /* a fut_submit_copy task returns the address of its copy: only the plain ones
         * have a value to check */
        if (i % 2)
            check_result(fs[i], i + 1, also);
        fut_future_unref(fs[i]);
    }
}

static void thread_pool_workload(void)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    if (!ptr_ok(ex))
        return;
    pool_workload(ex, 0);
    ok_or_enomem(fut_shutdown(ex, true, false));
    fut_executor_free(ex);
}

static void process_pool_workload(void)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
    if (!ptr_ok(ex))
        return;
    pool_workload(ex, FUT_EBROKEN);
    fut_executor_free(ex);
}

static void bump(void *arg)
{
    (*(int *)arg)++;
}

static void *awaits_executor(void *arg)
{
    fut_future *f = fut_loop_run_in_executor(fut_loop_current(), arg, tu_plus_one, TU_P(41));
    if (!f)
        return TU_P(-ENOMEM);
    void *r = NULL;
    int rc = fut_await(f, &r);
    fut_future_unref(f);
    return rc == 0 ? r : TU_P(rc);
}

static void loop_workload(void)
{
    fut_executor *ex = NULL;
    fut_loop *loop = fut_loop_new();
    if (!ptr_ok(loop))
        return;
    int calls = 0, scheduled = 0;
    for (int i = 0; i < 3; i++)
        scheduled += fut_loop_call_soon(loop, bump, &calls) != 0;
    scheduled += fut_loop_call_later(loop, 0.001, bump, &calls) != 0;
    fut_future *sleep = fut_loop_sleep(loop, 0.002, TU_P(5));
    if (ptr_ok(sleep)) {
        if (ok_or_enomem(fut_loop_run_until_complete(loop, sleep)))
            check_result(sleep, 5, 0);
        fut_future_unref(sleep);
    }
    if (calls > scheduled)
        WRONG();
    if (!ptr_ok(ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 })))
        goto out;
    fut_future *task = fut_loop_create_task(loop, awaits_executor, ex);
    if (ptr_ok(task)) {
        void *r = NULL;
        int rc = ok_or_enomem(fut_loop_run_until_complete(loop, task)) ? fut_result(task, 0, &r) : 0;
        if (rc == 0 ? TU_I(r) != 42 && TU_I(r) != FUT_ENOMEM && r != NULL : rc != FUT_ENOMEM)
            WRONG();
        fut_future_unref(task);
    }
out:
    fut_loop_free(loop);
    fut_executor_free(ex);
}

/* ---- the sweep ---------------------------------------------------------------------- */

#if !TU_SANITIZED
/* One run, in a child: the workload with allocation `nth` failing. A wrong value is
 * reported with the line of the check that saw it, through a pipe. */
static int run_failing(void (*workload)(void), long nth)
{
    int report[2];
    ck_assert_int_eq(pipe(report), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);  /* not Check's handler, which kills the process group */
        alarm(10);
        close(report[0]);
        arm(nth);
        workload();
        bool reached = disarm();
        if (wrong)
            _exit(write(report[1], &wrong_line, sizeof wrong_line) == sizeof wrong_line ? RUN_WRONG : 127);
        _exit(reached ? RUN_OK : RUN_NOT_REACHED);
    }
    close(report[1]);
    int status = 0, line = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ssize_t got = read(report[0], &line, sizeof line);
    close(report[0]);
    ck_assert_msg(WIFEXITED(status), "allocation %ld failing: killed by signal %d", nth,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) != RUN_WRONG, "allocation %ld failing: a wrong value or code (line %d)",
                  nth, got == sizeof line ? line : 0);  /* a NULL's errno: line * 1000 + errno */
    ck_assert_int_le(WEXITSTATUS(status), RUN_NOT_REACHED);
    return WEXITSTATUS(status);
}
#endif

static void sweep(void (*workload)(void), long limit)
{
#if TU_SANITIZED
    (void)workload;
    (void)limit;
#else
    if (tu_under_valgrind())
        return;
    /* the workload once with no failure: it must pass outright */
    ck_assert_int_eq(run_failing(workload, -1), RUN_NOT_REACHED);
    long nth = 1;
    bool verbose = getenv("FUT_TEST_VERBOSE") != NULL;
    while (nth <= limit && run_failing(workload, nth) == RUN_OK) {
        if (verbose)
            fprintf(stderr, "allocation %ld: clean\n", nth);
        nth++;
    }
    ck_assert_msg(nth <= limit, "more than %ld allocations: raise the limit", limit);
    ck_assert_int_gt(nth, 1);  /* the interposer was used */
#endif
}

START_TEST(test_futures_out_of_memory)
{
    sweep(futures_workload, 500);
}
END_TEST

START_TEST(test_thread_pool_out_of_memory)
{
    sweep(thread_pool_workload, 2000);
}
END_TEST

START_TEST(test_process_pool_out_of_memory)
{
    sweep(process_pool_workload, 2000);
}
END_TEST

START_TEST(test_loop_out_of_memory)
{
    sweep(loop_workload, 2000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("enomem");
    TCase *tc = tu_tcase(s, "sweep", 240);
    tcase_add_test(tc, test_futures_out_of_memory);
    tcase_add_test(tc, test_thread_pool_out_of_memory);
    tcase_add_test(tc, test_process_pool_out_of_memory);
    tcase_add_test(tc, test_loop_out_of_memory);
    return tu_run(s);
}
