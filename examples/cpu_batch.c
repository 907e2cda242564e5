/* SPDX-License-Identifier: MIT */
/*
 * cpu_batch: a CPU-bound batch, first sequentially and then on a pool, with the speedup.
 *
 * The classic first concurrent.futures program: many independent, purely computational
 * tasks. In Python a thread pool gains nothing here (the GIL); in C the threads run truly
 * in parallel, so on N cores the pool approaches an N-fold speedup.
 *
 *   ./examples/cpu_batch                   # every mode, defaults: a few seconds on 2 cores
 *   ./examples/cpu_batch -n 64 -s 20000000 -w 4 -m threads
 *
 *   -n TASKS    number of tasks (default 32)
 *   -s STEPS    loop iterations per task (default 80000000)
 *   -w WORKERS  pool size (default: the CPUs this process may run on)
 *   -m MODE     run only this mode (default: all of them, see `modes` below)
 *
 * On a terminal, one live progress line (done, failed, running, rate, ETA) is redrawn
 * from fut_executor_get_stats every 100 ms while fut_wait waits; otherwise (a pipe, a log)
 * a plain line is printed as each task finishes (fut_submit + fut_as_completed). The
 * pool's results are checked against the sequential ones; the exit status is non-zero if
 * any differs or any call fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* sched_getaffinity, CPU_COUNT */
#endif
#include <inttypes.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <futures.h>

#include "example_util.h"

static const char usage[] =
    "usage: cpu_batch [-n TASKS] [-s STEPS] [-w WORKERS] [-m MODE]\n";

/* One way of running the batch. A new executor kind is one more row: the rest of the
 * program only ever talks to the generic fut_executor interface. */
struct mode {
    const char *name;
    fut_executor *(*create)(const fut_pool_options *opts);
};

static const struct mode modes[] = {
    { "threads", fut_thread_pool_new },
    { "processes", fut_process_pool_new },
};

#define N_MODES (sizeof modes / sizeof modes[0])

/* Set once, before any pool exists, and only read afterwards: thread workers share it and
 * fork-based process workers inherit it, so the task's argument can stay a plain integer
 * (which is what a process pool can carry by value). */
static long steps = 80000000;

/* A Fibonacci-style recurrence mod 2^64 seeded by the task's input. Every iteration
 * depends on the previous one, so the compiler can neither vectorise nor fold the loop:
 * the cost really is proportional to `steps`. The rotation keeps the values from settling
 * into a pattern the optimiser could exploit. */
static void *crunch(void *arg)
{
    uint64_t a = (uint64_t)(uintptr_t)arg, b = 1;
    for (long i = 0; i < steps; i++) {
        uint64_t next = a + b;
        a = b;
        b = (next << 13) | (next >> 51);
    }
    return (void *)(uintptr_t)(a ^ b);
}

static int default_workers(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The live progress line: the counts come from the pool itself, lock-free, so redrawing
 * it often costs the workers nothing. */
static void draw_progress(fut_executor *ex, size_t n, double start)
{
    fut_executor_stats st;
    ex_check(fut_executor_get_stats(ex, &st, sizeof st), "fut_executor_get_stats");
    uint64_t finished = st.completed + st.failed + st.cancelled;
    double elapsed = ex_now() - start;
    double rate = elapsed > 0 ? (double)finished / elapsed : 0;
    printf("\r  done %" PRIu64 "/%zu  failed %" PRIu64 "  running %zu  %.1f tasks/s  ",
           finished, n, st.failed, st.running, rate);
    if (finished < n && rate > 0)
        printf("ETA %.0f s   ", (double)(n - finished) / rate);
    else
        printf("          ");
    fflush(stdout);
}

/* Terminal mode: waits in slices of 100 ms, redrawing the progress line after each. */
static void wait_with_progress(fut_executor *ex, fut_future **fs, size_t n, double start)
{
    fut_future **pending = calloc(n, sizeof *pending);  /* fut_wait reorders its array */
    if (!pending)
        ex_fail(FUT_ENOMEM, "calloc");
    memcpy(pending, fs, n * sizeof *fs);
    size_t done = 0;
    while (done < n) {
        int rc = fut_wait(pending, n, 0.1, FUT_ALL_COMPLETED, &done);
        if (rc != FUT_ETIMEDOUT)
            ex_check(rc, "fut_wait");
        draw_progress(ex, n, start);
    }
    putchar('\n');
    free(pending);
}

/* Plain mode: one line per finished task, in the order they finish. */
static void wait_with_lines(fut_future **fs, size_t n, double start)
{
    fut_as_completed *it = ex_check_ptr(fut_as_completed_new(fs, n, FUT_FOREVER),
                                        "fut_as_completed_new");
    fut_future *f;
    int rc;
    size_t finished = 0;
    while ((rc = fut_as_completed_next(it, &f)) == 1) {
        size_t i = ex_index_of(fs, n, f);
        printf("  [%3zu/%zu] task %3zu done at %6.2f s\n", ++finished, n, i, ex_now() - start);
    }
    ex_check(rc, "fut_as_completed_next");
    fut_as_completed_free(it);
}

/* Runs the batch on one mode's pool, prints progress, and returns the number of results
 * that differ from `expected`. The time covers the pool's start and shutdown too, since
 * those are part of what a user of the pool pays. */
static size_t run_mode(const struct mode *m, size_t n, int workers, const uintptr_t *expected,
                       double *elapsed)
{
    fut_pool_options opts = { .max_workers = workers };
    size_t mismatches = 0;
    fut_future **fs = calloc(n, sizeof *fs);
    if (!fs)
        ex_fail(FUT_ENOMEM, "calloc");

    printf("%s, %d workers:\n", m->name, workers);
    double start = ex_now();
    fut_executor *ex = ex_check_ptr(m->create(&opts), m->name);
    for (size_t i = 0; i < n; i++)
        fs[i] = ex_check_ptr(fut_submit(ex, crunch, (void *)(uintptr_t)i), "fut_submit");

    if (isatty(STDOUT_FILENO))
        wait_with_progress(ex, fs, n, start);
    else
        wait_with_lines(fs, n, start);
    for (size_t i = 0; i < n; i++) {
        void *value;
        ex_check(fut_result(fs[i], 0, &value), "task");
        if ((uintptr_t)value != expected[i]) {
            printf("  task %zu: WRONG RESULT\n", i);
            mismatches++;
        }
    }
    fut_executor_stats st;
    ex_check(fut_executor_get_stats(ex, &st, sizeof st), "fut_executor_get_stats");
    printf("  pool: %" PRIu64 " submitted, %" PRIu64 " completed, %" PRIu64 " failed, "
           "%" PRIu64 " cancelled\n", st.submitted, st.completed, st.failed, st.cancelled);
    fut_executor_free(ex);
    *elapsed = ex_now() - start;

    for (size_t i = 0; i < n; i++)
        fut_future_unref(fs[i]);
    free(fs);
    return mismatches;
}

int main(int argc, char **argv)
{
    size_t n = 32;
    int workers = default_workers();
    const char *only = NULL;
    int opt;

    while ((opt = getopt(argc, argv, "n:s:w:m:h")) != -1) {
        switch (opt) {
        case 'n': n = (size_t)ex_parse_positive(optarg, usage); break;
        case 's': steps = ex_parse_positive(optarg, usage); break;
        case 'w': workers = (int)ex_parse_positive(optarg, usage); break;
        case 'm': only = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_SUCCESS;
        default:  fputs(usage, stderr); return EXIT_FAILURE;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return EXIT_FAILURE;
    }
    size_t chosen = 0;
    while (only && chosen < N_MODES && strcmp(modes[chosen].name, only) != 0)
        chosen++;
    if (chosen == N_MODES) {
        fprintf(stderr, "unknown mode '%s'; modes:", only);
        for (size_t i = 0; i < N_MODES; i++)
            fprintf(stderr, " %s", modes[i].name);
        fputc('\n', stderr);
        return EXIT_FAILURE;
    }

    uintptr_t *expected = calloc(n, sizeof *expected);
    if (!expected)
        ex_fail(FUT_ENOMEM, "calloc");
    printf("cpu_batch: %zu tasks x %ld steps\n", n, steps);
    double start = ex_now();
    for (size_t i = 0; i < n; i++)
        expected[i] = (uintptr_t)crunch((void *)(uintptr_t)i);
    double sequential = ex_now() - start;
    printf("sequential: %.2f s\n", sequential);

    size_t mismatches = 0;
    for (size_t i = only ? chosen : 0; i < (only ? chosen + 1 : N_MODES); i++) {
        double elapsed;
        size_t bad = run_mode(&modes[i], n, workers, expected, &elapsed);
        printf("%s: %.2f s, speedup %.2fx over sequential, %s\n", modes[i].name, elapsed,
               sequential / elapsed, bad ? "RESULTS DIFFER" : "results match");
        mismatches += bad;
    }
    free(expected);
    if (mismatches) {
        fprintf(stderr, "cpu_batch: %zu results differ from the sequential run\n", mismatches);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
