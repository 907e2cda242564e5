/* SPDX-License-Identifier: MIT */
/*
 * async_main: asyncio.run(main()) in C.
 *
 *     async def main():
 *         print(f"started at {time.strftime('%X')}")
 *         print("hello")
 *         await asyncio.sleep(1)
 *         print("world")
 *         print(f"finished at {time.strftime('%X')}")
 *     asyncio.run(main())
 *
 * main() is a plain C function run as a task by fut_run: fut_await suspends it, on its own
 * stack, while the loop waits out the sleep. Usage: async_main [DELAY] (default 1 s).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <futures.h>

static void print_time(const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    printf("%s at %02d:%02d:%02d.%03ld\n", what, tm.tm_hour, tm.tm_min, tm.tm_sec,
           ts.tv_nsec / 1000000);
}

static void *async_main(void *arg)
{
    double delay = *(double *)arg;
    fut_loop *loop = fut_loop_current();
    print_time("started");
    printf("hello\n");
    double start = fut_loop_time(loop);
    fut_future *nap = fut_loop_sleep(loop, delay, NULL);
    if (!nap) {
        fut_raise(errno, "fut_loop_sleep");
        return NULL;
    }
    int rc = fut_await(nap, NULL);              /* await asyncio.sleep(delay) */
    fut_future_unref(nap);
    if (rc) {
        fut_raise(rc, "await");
        return NULL;
    }
    printf("world (after %.2f s)\n", fut_loop_time(loop) - start);
    print_time("finished");
    return NULL;
}

int main(int argc, char **argv)
{
    double delay = argc > 1 ? atof(argv[1]) : 1.0;
    if (delay < 0) {
        fprintf(stderr, "usage: %s [DELAY]\n", argv[0]);
        return 2;
    }
    int rc = fut_run(async_main, &delay, NULL);  /* asyncio.run(main()) */
    if (rc) {
        fprintf(stderr, "async_main: %s\n", fut_strerror(rc));
        return 1;
    }
    return 0;
}
