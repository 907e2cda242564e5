/* SPDX-License-Identifier: MIT */
/*
 * bench_mpi: the MPI executor's figures, one JSON line each, for bench/bench_mpi.py (which
 * runs this under mpirun -np 3 several times and prints it beside mpi4py.futures).
 *
 *   mpirun -np 3 bench/bench_mpi [--quick]
 *
 * Rank 0 measures; the other ranks serve inside fut_mpi_pool_new. Measures:
 *   submit_throughput  no-op tasks per second, N submitted then all awaited
 *   round_trip         microseconds per submit + result, one task at a time
 *   map_auto_chunks    items per second, fut_map of a no-op with chunksize 0
 *   cpu_speedup        a CPU-bound batch: sequential time on rank 0 / time on the workers
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <futures_mpi.h>

#include "../examples/crunch.h"

static long steps = 20000000;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *noop(void *arg)
{
    return arg;
}

static void *crunch(void *arg)
{
    return (void *)(uintptr_t)ex_crunch((uint64_t)(uintptr_t)arg, steps);
}

static void report(const char *name, double value, const char *unit)
{
    printf("{\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}\n", name, value, unit);
    fflush(stdout);
}

static int measure(fut_executor *ex, bool quick)
{
    int bad = 0;
    /* warm-up: every rank has described objects and run a task */
    void *warm[64], *warm_out[64];
    for (int i = 0; i < 64; i++)
        warm[i] = (void *)(intptr_t)i;
    bad |= fut_map(ex, noop, warm, 64, warm_out, FUT_FOREVER, 1) != 0;

    size_t n = quick ? 5000 : 50000;
    fut_future **fs = malloc(n * sizeof *fs);
    double t = now();
    for (size_t i = 0; i < n; i++)
        fs[i] = fut_submit(ex, noop, (void *)(uintptr_t)i);
    for (size_t i = 0; i < n; i++) {
        bad |= !fs[i] || fut_result(fs[i], FUT_FOREVER, NULL) != 0;
        fut_future_unref(fs[i]);
    }
    report("submit_throughput", (double)n / (now() - t), "tasks/s");
    free(fs);

    size_t m = quick ? 500 : 3000;
    t = now();
    for (size_t i = 0; i < m; i++) {
        fut_future *f = fut_submit(ex, noop, NULL);
        bad |= !f || fut_result(f, FUT_FOREVER, NULL) != 0;
        fut_future_unref(f);
    }
    report("round_trip", (now() - t) / (double)m * 1e6, "us");

    size_t items = quick ? 100000 : 1000000;
    void **args = malloc(items * sizeof *args), **results = malloc(items * sizeof *results);
    for (size_t i = 0; i < items; i++)
        args[i] = (void *)(uintptr_t)i;
    t = now();
    bad |= fut_map(ex, noop, args, items, results, FUT_FOREVER, 0) != 0;
    report("map_auto_chunks", (double)items / (now() - t), "items/s");
    free(args);
    free(results);

    int tasks = 16;
    uint64_t expected[16];
    t = now();
    for (int i = 0; i < tasks; i++)
        expected[i] = ex_crunch((uint64_t)i, steps);
    double sequential = now() - t;
    void *cargs[16], *cresults[16];
    for (int i = 0; i < tasks; i++)
        cargs[i] = (void *)(uintptr_t)i;
    t = now();
    bad |= fut_map(ex, crunch, cargs, (size_t)tasks, cresults, FUT_FOREVER, 1) != 0;
    double parallel = now() - t;
    for (int i = 0; i < tasks; i++)
        bad |= (uint64_t)(uintptr_t)cresults[i] != expected[i];
    report("cpu_speedup", sequential / parallel, "x");
    return bad;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (quick)
        steps = 2000000;
    fut_executor *ex = NULL;
    int rc = fut_mpi_pool_new(MPI_COMM_WORLD, 0, NULL, &ex);
    if (rc != 0) {
        fprintf(stderr, "bench_mpi: %s (%s)\n", fut_strerror(rc), fut_mpi_last_error());
        return 1;
    }
    if (!ex)
        return 0;
    rc = measure(ex, quick);
    fut_executor_free(ex);
    if (rc)
        fprintf(stderr, "bench_mpi: a task failed or returned a wrong value\n");
    return rc ? 1 : 0;
}
