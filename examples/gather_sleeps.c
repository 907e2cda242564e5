/* SPDX-License-Identifier: MIT */
/*
 * gather_sleeps: ten sleeps of 0.1 .. 1.0 s, gathered: the gather finishes in the time of
 * the longest (about 1 s), not of their sum (5.5 s).
 */
#include <stdio.h>

#include <futures.h>

#define N 10

int main(void)
{
    fut_loop *loop = fut_loop_new();
    if (!loop) {
        perror("fut_loop_new");
        return 1;
    }
    fut_future *sleeps[N];
    double total = 0, start = fut_loop_time(loop);
    for (int i = 0; i < N; i++) {
        double delay = 0.1 * (N - i);
        total += delay;
        if (!(sleeps[i] = fut_loop_sleep(loop, delay, NULL))) {
            perror("fut_loop_sleep");
            return 1;
        }
    }
    fut_future *all = fut_loop_gather(loop, sleeps, N);
    int rc = all ? fut_loop_run_until_complete(loop, all) : -1;
    double elapsed = fut_loop_time(loop) - start;
    printf("%d sleeps totalling %.1f s finished in %.3f s\n", N, total, elapsed);
    int status = rc == 0 && fut_result(all, 0, NULL) == 0 && elapsed < total / 2 ? 0 : 1;
    fut_future_unref(all);
    for (int i = 0; i < N; i++)
        fut_future_unref(sleeps[i]);
    fut_loop_free(loop);
    return status;
}
