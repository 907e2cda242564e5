/* SPDX-License-Identifier: MIT */
/*
 * first_completed: wait for the first of several tasks, then cancel the rest.
 *
 * The FIRST_COMPLETED pattern (say, asking several mirrors and keeping the fastest
 * answer): fut_wait returns as soon as one task is done, and the others are cancelled.
 * As in Python, cancelling only stops tasks that have not started; a task already
 * running finishes anyway, and shutting the pool down waits for it.
 *
 *   ./examples/first_completed             # no options; takes under a second
 *
 * Five tasks of different lengths share two workers, so when the shortest finishes some
 * are running and some are still queued. Which ones exactly depends on scheduling; the
 * exit status is non-zero only if a call fails.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <futures.h>

#include "example_util.h"

#define N_TASKS 5

/* Seconds each task takes; the second one is the fastest. */
static const double durations[N_TASKS] = { 0.6, 0.15, 0.4, 1.0, 0.8 };

/* Sleeping stands in for any blocking work (a download, a query). The task's result is
 * its own index, which is how the output below names it. */
static void *slow_task(void *arg)
{
    double d = durations[(uintptr_t)arg];
    struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return arg;
}

static size_t task_index(fut_future *f)
{
    void *index;
    ex_check(fut_result(f, 0, &index), "fut_result");
    return (size_t)(uintptr_t)index;
}

int main(void)
{
    fut_future *fs[N_TASKS], *submitted[N_TASKS];
    fut_pool_options opts = { .max_workers = 2 };
    fut_executor *ex = ex_check_ptr(fut_thread_pool_new(&opts), "fut_thread_pool_new");
    double start = ex_now();

    for (size_t i = 0; i < N_TASKS; i++) {
        fs[i] = ex_check_ptr(fut_submit(ex, slow_task, (void *)(uintptr_t)i), "fut_submit");
        printf("submitted task %zu (%.2f s)\n", i, durations[i]);
    }

    /* fut_wait reorders fs in place (done ones first), so remember the submission order
     * for naming the tasks that never produce a result. */
    for (size_t i = 0; i < N_TASKS; i++)
        submitted[i] = fs[i];
    size_t n_done;
    ex_check(fut_wait(fs, N_TASKS, FUT_FOREVER, FUT_FIRST_COMPLETED, &n_done), "fut_wait");
    for (size_t i = 0; i < n_done; i++)
        printf("first completed: task %zu after %.2f s\n", task_index(fs[i]), ex_now() - start);

    for (size_t i = n_done; i < N_TASKS; i++) {
        size_t index = ex_index_of(submitted, N_TASKS, fs[i]);
        if (fut_cancel(fs[i]))
            printf("cancelled task %zu: it had not started\n", index);
        else
            printf("task %zu is already running: it cannot be cancelled\n", index);
    }

    /* Shutting down waits for the tasks that could not be cancelled. */
    fut_executor_free(ex);
    printf("pool shut down after %.2f s\n", ex_now() - start);
    for (size_t i = n_done; i < N_TASKS; i++) {
        if (!fut_cancelled(fs[i]))
            printf("task %zu ran to completion\n", task_index(fs[i]));
        fut_future_unref(fs[i]);
    }
    for (size_t i = 0; i < n_done; i++)
        fut_future_unref(fs[i]);
    return EXIT_SUCCESS;
}
