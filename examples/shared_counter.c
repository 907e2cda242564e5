/* SPDX-License-Identifier: MIT */
/*
 * shared_counter: why shared state needs a lock, even in a pool.
 *
 * Many pool tasks increment one counter. Without a mutex, two workers read the same value
 * and both write value + 1, so increments are lost; with a mutex the count is exact.
 *
 *   ./examples/shared_counter              # 8 tasks x 2000 increments on 4 workers
 *   ./examples/shared_counter -t 16 -i 5000 -w 8
 *
 *   -t TASKS       number of tasks (default 8)
 *   -i INCREMENTS  increments per task (default 2000)
 *   -w WORKERS     pool size (default 4)
 *
 * The tasks run through fut_map. The exit status is non-zero only if the locked count is
 * wrong (or a call fails): how many updates the unlocked run loses depends on scheduling.
 *
 * The unlocked run is a deliberate data race. ThreadSanitizer reports it, as it should, so
 * this program is not one of the tests that `make check` runs in sanitizer builds.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <futures.h>

#include "example_util.h"

static const char usage[] = "usage: shared_counter [-t TASKS] [-i INCREMENTS] [-w WORKERS]\n";

/* volatile makes every read and write a real memory access, so the compiler cannot turn
 * the loop into one `counter += n`, which would hide the race it is here to show. */
static volatile long counter;
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;

/* A read-modify-write split in two, with a yield in between: another worker's update that
 * lands in the gap is overwritten. The yield only widens a gap that `counter++` also has,
 * so lost updates show up reliably even on two cores. */
static void increment(void)
{
    long seen = counter;
    sched_yield();
    counter = seen + 1;
}

static void *increment_unlocked(void *arg)
{
    for (uintptr_t i = 0; i < (uintptr_t)arg; i++)
        increment();
    return NULL;
}

static void *increment_locked(void *arg)
{
    for (uintptr_t i = 0; i < (uintptr_t)arg; i++) {
        pthread_mutex_lock(&counter_lock);
        increment();
        pthread_mutex_unlock(&counter_lock);
    }
    return NULL;
}

/* Runs `fn` once per task on `ex` and returns the final count. */
static long run(fut_executor *ex, fut_fn fn, void *const *args, size_t tasks)
{
    void **results = calloc(tasks, sizeof *results);
    if (!results)
        ex_fail(FUT_ENOMEM, "calloc");
    counter = 0;
    ex_check(fut_map(ex, fn, args, tasks, results, FUT_FOREVER, 1), "fut_map");
    free(results);
    return counter;
}

int main(int argc, char **argv)
{
    size_t tasks = 8;
    long increments = 2000;
    int workers = 4, opt;

    while ((opt = getopt(argc, argv, "t:i:w:h")) != -1) {
        switch (opt) {
        case 't': tasks = (size_t)ex_parse_positive(optarg, usage); break;
        case 'i': increments = ex_parse_positive(optarg, usage); break;
        case 'w': workers = (int)ex_parse_positive(optarg, usage); break;
        case 'h': fputs(usage, stdout); return EXIT_SUCCESS;
        default:  fputs(usage, stderr); return EXIT_FAILURE;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return EXIT_FAILURE;
    }

    /* Every task gets the same argument: its number of increments, passed by value. */
    void **args = calloc(tasks, sizeof *args);
    if (!args)
        ex_fail(FUT_ENOMEM, "calloc");
    for (size_t i = 0; i < tasks; i++)
        args[i] = (void *)(uintptr_t)increments;

    fut_pool_options opts = { .max_workers = workers };
    fut_executor *ex = ex_check_ptr(fut_thread_pool_new(&opts), "fut_thread_pool_new");
    long expected = (long)tasks * increments;

    long unlocked = run(ex, increment_unlocked, args, tasks);
    printf("without a mutex: %ld of %ld (%ld updates lost)\n", unlocked, expected,
           expected - unlocked);
    long locked = run(ex, increment_locked, args, tasks);
    printf("with a mutex:    %ld of %ld\n", locked, expected);

    fut_executor_free(ex);
    free(args);
    return locked == expected ? EXIT_SUCCESS : EXIT_FAILURE;
}
