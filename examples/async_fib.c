/* SPDX-License-Identifier: MIT */
/*
 * async_fib: a task that offloads CPU-bound work to a process pool and awaits it.
 *
 *     async def main():
 *         loop = asyncio.get_running_loop()
 *         with ProcessPoolExecutor() as pool:
 *             for n in batch:                       # one at a time
 *                 print(n, await loop.run_in_executor(pool, fib, n))
 *             futures = [pool.submit(fib, n) for n in batch]
 *             await asyncio.gather(*map(asyncio.wrap_future, futures))   # all at once
 *
 * fut_await takes the pool's own futures directly (no wrapping needed), and a gather of
 * them. Usage: async_fib [MAX_N] (default 32): the batch is fib(MAX_N-4 .. MAX_N).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <futures.h>

#define BATCH 5

static uint64_t fib(int n)
{
    return n < 2 ? (uint64_t)n : fib(n - 1) + fib(n - 2);  /* slow on purpose: CPU-bound */
}

static void *fib_task(void *arg)
{
    return (void *)(uintptr_t)fib((int)(intptr_t)arg);
}

struct job {
    fut_executor *pool;
    int max_n;
};

static void *async_main(void *arg)
{
    struct job *job = arg;
    fut_loop *loop = fut_loop_current();
    int first = job->max_n - BATCH + 1;

    printf("one at a time:\n");
    for (int n = first; n <= job->max_n; n++) {
        fut_future *f = fut_submit(job->pool, fib_task, (void *)(intptr_t)n);
        void *r = NULL;
        int rc = f ? fut_await(f, &r) : -errno;  /* the loop runs on meanwhile */
        fut_future_unref(f);
        if (rc) {
            fut_raise(rc, "fib(%d)", n);
            return NULL;
        }
        printf("  fib(%d) = %llu\n", n, (unsigned long long)(uintptr_t)r);
    }

    printf("all at once:\n");
    fut_future *fs[BATCH];
    for (int i = 0; i < BATCH; i++)
        if (!(fs[i] = fut_submit(job->pool, fib_task, (void *)(intptr_t)(first + i)))) {
            fut_raise(errno, "submit");
            return NULL;
        }
    fut_future *all = fut_loop_gather(loop, fs, BATCH);
    int rc = all ? fut_await(all, NULL) : -errno;
    for (int i = 0; i < BATCH; i++) {
        void *r = NULL;
        if (rc == 0 && fut_result(fs[i], 0, &r) == 0)
            printf("  fib(%d) = %llu\n", first + i, (unsigned long long)(uintptr_t)r);
        fut_future_unref(fs[i]);
    }
    fut_future_unref(all);
    if (rc)
        fut_raise(rc, "gather");
    return NULL;
}

int main(int argc, char **argv)
{
    struct job job = { .max_n = argc > 1 ? atoi(argv[1]) : 32 };
    if (job.max_n < BATCH || job.max_n > 60) {
        fprintf(stderr, "usage: %s [MAX_N] (%d..60)\n", argv[0], BATCH);
        return 2;
    }
    job.pool = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2 });
    if (!job.pool) {
        perror("fut_process_pool_new");
        return 1;
    }
    int rc = fut_run(async_main, &job, NULL);
    fut_executor_free(job.pool);
    if (rc) {
        fprintf(stderr, "async_fib: %s\n", fut_strerror(rc));
        return 1;
    }
    return 0;
}
