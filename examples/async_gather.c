/* SPDX-License-Identifier: MIT */
/*
 * async_gather: five tasks that each wait DELAY seconds, three ways.
 *
 *   1. await a sleep: the loop runs the others meanwhile; all five finish together, in
 *      about one DELAY, not five.
 *   2. a blocking sleep (nanosleep) inside each task: the loop cannot run anything else
 *      while a task blocks, so the five run one after another: five DELAYs. As in asyncio,
 *      a blocking call serialises the loop.
 *   3. the fix: await the blocking call in the loop's default executor (a thread pool),
 *      asyncio's `await loop.run_in_executor(None, time.sleep, delay)`: one DELAY again.
 *
 * Usage: async_gather [DELAY] (default 1 s).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <futures.h>

#define N 5

enum mode { AWAIT_SLEEP, BLOCKING_SLEEP, IN_EXECUTOR };

struct job {
    enum mode mode;
    int id;
    double delay, start;
};

static void *blocking_sleep(void *arg)
{
    double delay = *(double *)arg;
    struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return NULL;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    fut_loop *loop = fut_loop_current();
    fut_future *f = NULL;
    int rc = 0;
    switch (j->mode) {
    case AWAIT_SLEEP:
        f = fut_loop_sleep(loop, j->delay, NULL);
        break;
    case BLOCKING_SLEEP:
        blocking_sleep(&j->delay);  /* the whole loop stops here */
        break;
    case IN_EXECUTOR:
        f = fut_loop_run_in_executor(loop, NULL, blocking_sleep, &j->delay);
        break;
    }
    if (j->mode != BLOCKING_SLEEP)
        rc = f ? fut_await(f, NULL) : -errno;
    fut_future_unref(f);
    if (rc)
        fut_raise(rc, "task %d", j->id);
    else
        printf("  task %d done at +%.2f s\n", j->id, fut_loop_time(loop) - j->start);
    return NULL;
}

static const char *titles[] = {
    [AWAIT_SLEEP] = "await fut_loop_sleep",
    [BLOCKING_SLEEP] = "blocking nanosleep in the task",
    [IN_EXECUTOR] = "await fut_loop_run_in_executor(nanosleep)",
};

/* Runs the five tasks of one mode and returns the seconds they took together. */
static double run_five(enum mode mode, double delay)
{
    fut_loop *loop = fut_loop_current();
    struct job jobs[N];
    fut_future *tasks[N];
    double start = fut_loop_time(loop);
    printf("%s:\n", titles[mode]);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct job){ mode, i, delay, start };
        tasks[i] = fut_loop_create_task(loop, worker, &jobs[i]);
    }
    fut_future *all = fut_loop_gather(loop, tasks, N);  /* await asyncio.gather(*tasks) */
    int rc = all ? fut_await(all, NULL) : FUT_ENOMEM;
    double took = fut_loop_time(loop) - start;
    fut_future_unref(all);
    for (int i = 0; i < N; i++)
        fut_future_unref(tasks[i]);
    if (rc) {
        fprintf(stderr, "gather: %s\n", fut_strerror(rc));
        return -1;
    }
    printf("  all %d done in %.2f s (%.1f x DELAY)\n", N, took, took / delay);
    return took;
}

static void *async_main(void *arg)
{
    double delay = *(double *)arg;
    double t_await = run_five(AWAIT_SLEEP, delay);
    double t_block = run_five(BLOCKING_SLEEP, delay);
    double t_exec = run_five(IN_EXECUTOR, delay);
    if (t_await < 0 || t_block < 0 || t_exec < 0)
        fut_raise(EIO, "a task failed");
    /* five blocking sleeps in a row can never take less than five delays */
    else if (t_block < N * delay)
        fut_raise(EPROTO, "the blocking sleeps overlapped: impossible");
    return NULL;
}

int main(int argc, char **argv)
{
    double delay = argc > 1 ? atof(argv[1]) : 1.0;
    if (delay <= 0) {
        fprintf(stderr, "usage: %s [DELAY]\n", argv[0]);
        return 2;
    }
    int rc = fut_run(async_main, &delay, NULL);
    if (rc) {
        fprintf(stderr, "async_gather: %s\n", fut_strerror(rc));
        return 1;
    }
    return 0;
}
