/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the Check test programs: clocks, fd, thread and child counting,
 * the quick mode of stress tests, gates and counters to order threads without sleeping,
 * and the common main().
 *
 * Everything is static inline so that each program uses what it needs without warnings.
 */
#ifndef FUT_TESTUTIL_H
#define FUT_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <futures.h>

#define TU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Values passed through void * (task arguments and results). */
#define TU_P(i) ((void *)(intptr_t)(i))
#define TU_I(p) ((intptr_t)(p))

/*
 * Check's ck_assert_* record their location through a system call each time they pass:
 * in loops of millions that dominates the run time. Hot loops use this instead.
 */
#define TU_REQUIRE(cond, ...)                                                             \
    do {                                                                                  \
        if (!(cond))                                                                      \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static inline double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (user + system) used by the calling thread: a blocked wait uses next to none. */
static inline double tu_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void tu_sleep(double seconds)
{
    struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Entries of a /proc directory, "." and ".." excluded (the directory's own fd counts in
 * /proc/self/fd, the same way before and after, so comparisons are unaffected). */
static inline int tu_count_dir(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        ck_abort_msg("cannot open %s", path);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dir);
    return n;
}

static inline int tu_count_fds(void)
{
    return tu_count_dir("/proc/self/fd");
}

static inline int tu_count_threads(void)
{
    return tu_count_dir("/proc/self/task");
}

/*
 * A joined thread may stay listed in /proc/self/task for a moment: the kernel wakes the
 * joiner before it finishes tearing the thread down. Give it up to 5 s to go; a thread
 * that really leaked stays and the caller's assertion fails.
 */
static inline int tu_settle_threads(int expected)
{
    int n = tu_count_threads();
    for (double end = tu_now() + 5; n != expected && tu_now() < end; n = tu_count_threads())
        tu_sleep(0.001);
    return n;
}

/* True when the process has no child left, running or unreaped. */
static inline bool tu_no_children(void)
{
    errno = 0;
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static inline void *tu_noop_thread(void *arg)
{
    return arg;
}

/*
 * The thread count to compare against later. ThreadSanitizer starts a helper thread of
 * its own at the first pthread_create of a process (and again in a forked child): start
 * and join one thread first so that it is already counted.
 */
static inline int tu_thread_baseline(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, tu_noop_thread, NULL) == 0)
        pthread_join(t, NULL);
    /* the joined thread may linger for a moment: the lowest count seen is the baseline */
    int n = tu_count_threads();
    for (double end = tu_now() + 0.01; tu_now() < end; tu_sleep(0.001)) {
        int m = tu_count_threads();
        n = m < n ? m : n;
    }
    return n;
}

/* 1 in AddressSanitizer and ThreadSanitizer builds (gcc and clang), else 0. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

/* True under valgrind: its preload libraries are in LD_PRELOAD (FUT_TEST_VALGRIND=1 says
 * so where they are not). */
static inline bool tu_under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload && (strstr(preload, "vgpreload") || strstr(preload, "valgrind")))
        return true;
    return getenv("FUT_TEST_VALGRIND") != NULL;
}

/* True when FUT_TEST_QUICK is set (to anything but "" or "0"). */
static inline bool tu_quick_requested(void)
{
    const char *quick = getenv("FUT_TEST_QUICK");
    return quick && *quick && strcmp(quick, "0") != 0;
}

/* True under valgrind, in a sanitizer build or when FUT_TEST_QUICK is set: the stress
 * tests then use fewer iterations. */
static inline bool tu_quick(void)
{
    return TU_SANITIZED || tu_under_valgrind() || tu_quick_requested();
}

static inline size_t tu_scale(size_t normal, size_t quick)
{
    return tu_quick() ? quick : normal;
}

/* ---- bounded children: hang detectors -------------------------------------------------- */

/* In a tu_bounded child: a failed requirement exits with (a digest of) its line number. */
#define TU_CHILD_REQUIRE(cond)                                                            \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond); \
            _exit(100 + __LINE__ % 100);                                                  \
        }                                                                                 \
    } while (0)

/* Runs body in a forked child that must exit 0 within `seconds` (four times that in quick
 * mode), SIGALRM otherwise: the child's exit status is the verdict. With `subreaper`, the
 * processes the child's pools leave behind become its children, to be counted. */
static inline void tu_bounded(void (*body)(void), unsigned seconds, bool subreaper)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);  /* Check's handler would kill the whole process group */
        alarm(seconds * (tu_quick() ? 4 : 1));
        if (subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
            _exit(90);
        body();
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        ck_abort_msg("the case was killed by signal %d (%s): a hang if SIGALRM", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the case failed (status %d)",
                  WEXITSTATUS(status));
}

/* ---- gate: tasks block on it until the test opens it ------------------------------- */

struct tu_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
};

static inline void tu_gate_init(struct tu_gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = false;
}

static inline void tu_gate_open(struct tu_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static inline void tu_gate_wait(struct tu_gate *g)
{
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static inline void tu_gate_destroy(struct tu_gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* ---- counter: the test waits until tasks have reached a point ----------------------- */

struct tu_counter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long value;
};

static inline void tu_counter_init(struct tu_counter *c)
{
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->value = 0;
}

static inline long tu_counter_add(struct tu_counter *c, long delta)
{
    pthread_mutex_lock(&c->lock);
    long v = c->value += delta;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return v;
}

static inline long tu_counter_get(struct tu_counter *c)
{
    pthread_mutex_lock(&c->lock);
    long v = c->value;
    pthread_mutex_unlock(&c->lock);
    return v;
}

static inline void tu_counter_wait(struct tu_counter *c, long at_least)
{
    pthread_mutex_lock(&c->lock);
    while (c->value < at_least)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

/* Waits at most `timeout` seconds; returns whether the counter got there. Used only
 * where reaching the value is the failure being detected, so the bound only decides how
 * likely a bug is caught, never whether a correct library passes. */
static inline bool tu_counter_wait_for(struct tu_counter *c, long at_least, double timeout)
{
    for (double end = tu_now() + timeout; tu_now() < end; tu_sleep(0.001))
        if (tu_counter_get(c) >= at_least)
            return true;
    return tu_counter_get(c) >= at_least;
}

static inline void tu_counter_destroy(struct tu_counter *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

/* ---- common tasks ----------------------------------------------------------------- */

/* f succeeded with the integer `expected` (waits for it). */
#define tu_assert_value(f, expected)                                                      \
    do {                                                                                  \
        void *tu_value_ = NULL;                                                           \
        ck_assert_int_eq(fut_result((f), FUT_FOREVER, &tu_value_), 0);                    \
        ck_assert_int_eq(TU_I(tu_value_), (expected));                                    \
    } while (0)

static inline void *tu_identity(void *arg)
{
    return arg;
}

static inline void *tu_plus_one(void *arg)
{
    return TU_P(TU_I(arg) + 1);
}

/* Blocks on the gate given as argument, then returns it. */
static inline void *tu_wait_gate(void *arg)
{
    tu_gate_wait(arg);
    return arg;
}

/* Runs the suite (Check's default fork mode unless CK_FORK says otherwise). */
static inline int tu_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A test case with a timeout generous enough for valgrind and sanitizers. */
static inline TCase *tu_tcase(Suite *suite, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(suite, tc);
    return tc;
}

#endif
