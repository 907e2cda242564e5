/* SPDX-License-Identifier: MIT */
/*
 * Process pool benchmark: no-op submit throughput, round trip, fut_map over tiny items,
 * a CPU-bound batch (speedup over running it serially), and a 64 MiB bytes result
 * compared with a plain pipe copy of 64 MiB (the physical limit). Each figure is measured
 * RUNS times; one JSON object per line, read by bench_process_pool.py which runs Python's
 * ProcessPoolExecutor and multiprocessing.Pool side by side.
 *
 * Throughput and map also report their cold first batch (the names ending in _cold): in a
 * fresh process each run, the pool is created and the first batch timed at once, worker
 * start-up included, as a user's program sees it. The other figures are warm: the pool's
 * workers are started before timing and the runs repeat in one process.
 *
 * memcpy_64MiB_fresh/_reused and result_64MiB_first/_reuse (issue 11) run each measure in
 * a fresh process: see their block below.
 *
 * Usage: bench_process_pool [--quick]
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <futures.h>

#include "bench_util.h"

#define RUNS 5
#define BIG (64u << 20)

static int quick;
static int cpus;
static unsigned char *big_source;

static void report(const char *name, const char *unit, const double *v)
{
    printf("{\"name\": \"%s\", \"unit\": \"%s\", \"runs\": [", name, unit);
    for (int i = 0; i < RUNS; i++)
        printf("%s%.6g", i ? ", " : "", v[i]);
    printf("]}\n");
    fflush(stdout);
}

static void *noop(void *arg)
{
    return arg;
}

static void *spin(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg;
    for (long i = 0; i < 50000000; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (void *)(uintptr_t)(x | 1);
}

/* called through a volatile pointer so that the serial loop is not optimised away */
static void *(*volatile spin_call)(void *) = spin;
static volatile uintptr_t sink;

static void *big_result(void *arg)
{
    (void)arg;
    return fut_bytes_dup(big_source, BIG);
}

static fut_executor *cold_pool(int workers)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = workers });
    if (!ex) {
        perror("fut_process_pool_new");
        exit(1);
    }
    return ex;
}

static fut_executor *pool(int workers)
{
    fut_executor *ex = cold_pool(workers);
    /* start every worker before timing */
    fut_future *fs[256];
    int n = workers < 256 ? workers : 256;
    for (int i = 0; i < n; i++)
        fs[i] = fut_submit(ex, noop, NULL);
    for (int i = 0; i < n; i++) {
        fut_result(fs[i], FUT_FOREVER, NULL);
        fut_future_unref(fs[i]);
    }
    return ex;
}

static long throughput_tasks(void)
{
    return quick ? 20000 : 100000;
}

/* tasks/s of one batch: submit them all, then wait for each */
static double time_submit_batch(fut_executor *ex, fut_future **fs, long n)
{
    double t = bench_now();
    for (long i = 0; i < n; i++)
        fs[i] = fut_submit(ex, noop, (void *)i);
    for (long i = 0; i < n; i++) {
        fut_result(fs[i], FUT_FOREVER, NULL);
        fut_future_unref(fs[i]);
    }
    return (double)n / (bench_now() - t);
}

static void bench_throughput(void)
{
    long n = throughput_tasks();
    fut_future **fs = malloc((size_t)n * sizeof *fs);
    double v[RUNS];
    fut_executor *ex = pool(cpus);
    for (int r = 0; r < RUNS; r++)
        v[r] = time_submit_batch(ex, fs, n);
    fut_executor_free(ex);
    free(fs);
    report("submit_throughput", "tasks/s", v);
}

/* In a fresh process: the first batch of a pool created just before. */
static void measure_throughput_cold(void *arg, double *out, size_t n_out)
{
    (void)arg;
    (void)n_out;
    long n = throughput_tasks();
    fut_future **fs = malloc((size_t)n * sizeof *fs);
    fut_executor *ex = cold_pool(cpus);
    out[0] = time_submit_batch(ex, fs, n);
    fut_executor_free(ex);
    free(fs);
}

static void measure_map_cold(void *arg, double *out, size_t n_out)
{
    (void)arg;
    (void)n_out;
    size_t n = 1000000;
    void **args = malloc(n * sizeof *args), **results = malloc(n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)i;
    fut_executor *ex = cold_pool(cpus);
    double t = bench_now();
    if (fut_map(ex, noop, args, n, results, FUT_FOREVER, 0) != 0)
        fprintf(stderr, "map failed\n");
    out[0] = (double)n / (bench_now() - t);
    fut_executor_free(ex);
    free(args);
    free(results);
}

static void bench_cold(const char *name, const char *unit, bench_measure_fn fn)
{
    double v[RUNS];
    for (int r = 0; r < RUNS; r++)
        if (bench_run_isolated(fn, NULL, &v[r], 1) != 0)
            v[r] = 0;
    report(name, unit, v);
}

static void bench_round_trip(void)
{
    int n = quick ? 1000 : 5000;
    double v[RUNS];
    fut_executor *ex = pool(1);
    for (int r = 0; r < RUNS; r++) {
        double t = bench_now();
        for (int i = 0; i < n; i++) {
            fut_future *f = fut_submit(ex, noop, NULL);
            fut_result(f, FUT_FOREVER, NULL);
            fut_future_unref(f);
        }
        v[r] = (bench_now() - t) / n * 1e6;
    }
    fut_executor_free(ex);
    report("round_trip", "us", v);
}

static void bench_map(void)
{
    size_t n = 1000000;
    void **args = malloc(n * sizeof *args), **results = malloc(n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)i;
    double v[RUNS];
    fut_executor *ex = pool(cpus);
    for (int r = 0; r < RUNS; r++) {
        double t = bench_now();
        if (fut_map(ex, noop, args, n, results, FUT_FOREVER, 0) != 0)
            fprintf(stderr, "map failed\n");
        v[r] = (double)n / (bench_now() - t);
    }
    fut_executor_free(ex);
    free(args);
    free(results);
    report("map_1M_auto_chunks", "items/s", v);
}

static void bench_cpu_batch(void)
{
    int n = 2 * cpus;
    double v[RUNS], serial[RUNS];
    fut_executor *ex = pool(cpus);
    fut_future **fs = malloc((size_t)n * sizeof *fs);
    for (int r = 0; r < RUNS; r++) {
        double t = bench_now();
        for (int i = 0; i < n; i++)
            sink = sink + (uintptr_t)spin_call((void *)(uintptr_t)i);
        serial[r] = bench_now() - t;
        t = bench_now();
        for (int i = 0; i < n; i++)
            fs[i] = fut_submit(ex, spin, (void *)(uintptr_t)i);
        for (int i = 0; i < n; i++) {
            fut_result(fs[i], FUT_FOREVER, NULL);
            fut_future_unref(fs[i]);
        }
        v[r] = serial[r] / (bench_now() - t);
    }
    fut_executor_free(ex);
    free(fs);
    report("cpu_batch_serial", "s", serial);
    report("cpu_batch_speedup", "x", v);
}

static void bench_big_result(void)
{
    double v[RUNS];
    fut_executor *ex = pool(1);
    for (int r = 0; r < RUNS; r++) {
        double t = bench_now();
        fut_future *f = fut_submit(ex, big_result, NULL);
        void *b = NULL;
        if (fut_result(f, FUT_FOREVER, &b) != 0 || fut_bytes_len(b) != BIG)
            fprintf(stderr, "big result failed\n");
        fut_future_unref(f);
        v[r] = BIG / (bench_now() - t) / 1e9;
    }
    fut_executor_free(ex);
    report("result_64MiB", "GB/s", v);
}

/* The physical limit: a child writes 64 MiB into a pipe, the parent reads it. */
static void bench_pipe_copy(void)
{
    double v[RUNS];
    unsigned char *dst = malloc(BIG);
    for (int r = 0; r < RUNS; r++) {
        int p[2];
        if (pipe(p) != 0)
            exit(1);
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);  /* the buffer a worker's socket has */
        double t = bench_now();
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            for (size_t off = 0; off < BIG;) {
                ssize_t n = write(p[1], big_source + off, BIG - off);
                if (n <= 0)
                    _exit(1);
                off += (size_t)n;
            }
            _exit(0);
        }
        close(p[1]);
        for (size_t off = 0; off < BIG;) {
            ssize_t n = read(p[0], dst + off, BIG - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(p[0]);
        waitpid(pid, NULL, 0);
        v[r] = BIG / (bench_now() - t) / 1e9;
    }
    free(dst);
    report("pipe_copy_64MiB", "GB/s", v);
}

/* ---- memory bounds and shared-memory reuse (issue 11) ---------------------------------
 *
 * The two bounds on moving 64 MiB on this kind of guest, each run in a fresh process:
 * memcpy_64MiB_fresh copies into memory just mapped (every page faulted in by the copy),
 * memcpy_64MiB_reused into memory the process has already touched. The source is the
 * inherited big_source, read once before timing.
 *
 * result_64MiB_reuse: a fresh process creates a pool of one worker (started before
 * timing), then takes 64 MiB results one after the other, each freed before the next
 * task is submitted: what a pool that reuses freed shared memory gains. The first result
 * of the process is reported apart (result_64MiB_first); the reuse figure of a process
 * is its following results' bytes over their time.
 */
static volatile unsigned char source_sink;

static void touch_source(void)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < BIG; i += 4096)
        acc ^= big_source[i];
    source_sink = acc;
}

static unsigned char *map_fresh(void)
{
    void *p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        _exit(1);
    }
    return p;
}

static void measure_memcpy(void *arg, double *out, size_t n_out)
{
    (void)n_out;
    bool reused = arg != NULL;
    touch_source();
    unsigned char *dst = map_fresh();
    if (reused)
        memset(dst, 0x5a, BIG);
    double t = bench_now();
    memcpy(dst, big_source, BIG);
    out[0] = BIG / (bench_now() - t) / 1e9;
    if (dst[BIG - 1] != 0xab)
        out[0] = 0;
    munmap(dst, BIG);
}

static double time_big_result(fut_executor *ex)
{
    double t = bench_now();
    fut_future *f = fut_submit(ex, big_result, NULL);
    void *b = NULL;
    int rc = fut_result(f, FUT_FOREVER, &b);
    double took = bench_now() - t;
    if (rc != 0 || fut_bytes_len(b) != BIG || ((unsigned char *)b)[BIG - 1] != 0xab) {
        fprintf(stderr, "big result failed\n");
        _exit(1);
    }
    fut_future_unref(f);  /* frees the result before the next submit */
    return took;
}

/* The task reads the last byte of its 64 MiB argument: the copy is whole in the worker. */
static void *last_byte(void *arg)
{
    return (void *)(uintptr_t)((unsigned char *)arg)[BIG - 1];
}

static double time_big_argument(fut_executor *ex)
{
    double t = bench_now();
    fut_future *f = fut_submit_copy(ex, last_byte, big_source, BIG);
    void *r = NULL;
    int rc = fut_result(f, FUT_FOREVER, &r);
    double took = bench_now() - t;
    if (rc != 0 || (uintptr_t)r != 0xab) {
        fprintf(stderr, "big argument failed\n");
        _exit(1);
    }
    fut_future_unref(f);  /* frees the copy before the next submit */
    return took;
}

/* A 64 MiB transfer timed from submit to result: a result or an argument. */
struct big_transfer {
    double (*time_one)(fut_executor *ex);
    const char *first, *reuse;     /* the names of the two rows */
};

/* In a fresh process: the first transfer, then more reusing the memory of the first
 * (GB/s each). */
static void measure_first_and_reuse(void *arg, double *out, size_t n_out)
{
    const struct big_transfer *t = arg;
    (void)n_out;
    int reuses = quick ? 1 : 4;
    fut_executor *ex = pool(1);
    out[0] = BIG / t->time_one(ex) / 1e9;
    double total = 0;
    for (int i = 0; i < reuses; i++)
        total += t->time_one(ex);
    out[1] = (double)reuses * BIG / total / 1e9;
    fut_executor_free(ex);
}

static void bench_first_and_reuse(const struct big_transfer *t)
{
    double first[RUNS], reuse[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double v[2];
        if (bench_run_isolated(measure_first_and_reuse, (void *)t, v, 2) != 0)
            v[0] = v[1] = 0;
        first[r] = v[0];
        reuse[r] = v[1];
    }
    report(t->first, "GB/s", first);
    report(t->reuse, "GB/s", reuse);
}

static void bench_memory_bounds(void)
{
    double fresh[RUNS], reused[RUNS];
    for (int r = 0; r < RUNS; r++) {
        if (bench_run_isolated(measure_memcpy, NULL, &fresh[r], 1) != 0)
            fresh[r] = 0;
        if (bench_run_isolated(measure_memcpy, (void *)1, &reused[r], 1) != 0)
            reused[r] = 0;
    }
    report("memcpy_64MiB_fresh", "GB/s", fresh);
    report("memcpy_64MiB_reused", "GB/s", reused);
}

int main(int argc, char **argv)
{
    quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    fut_executor *probe = fut_process_pool_new(NULL);  /* its default: the usable cpus */
    cpus = fut_executor_max_workers(probe);
    fut_executor_free(probe);
    big_source = malloc(BIG);
    memset(big_source, 0xab, BIG);
    bench_cold("submit_throughput_cold", "tasks/s", measure_throughput_cold);
    bench_throughput();
    bench_round_trip();
    bench_cold("map_1M_auto_chunks_cold", "items/s", measure_map_cold);
    bench_map();
    bench_cpu_batch();
    bench_big_result();
    bench_pipe_copy();
    bench_first_and_reuse(&(struct big_transfer){ time_big_result, "result_64MiB_first",
                                                  "result_64MiB_reuse" });
    bench_first_and_reuse(&(struct big_transfer){ time_big_argument, "argument_64MiB_first",
                                                  "argument_64MiB_reuse" });
    bench_memory_bounds();
    free(big_source);
    return 0;
}
