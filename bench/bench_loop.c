/* SPDX-License-Identifier: MIT */
/*
 * bench_loop: the event loop against libuv (and asyncio, through bench_loop.py), in one
 * table (bench_util): each row is min / median / max over --runs fresh processes (5), the
 * implementations interleaved, with the ratio of the medians (> 1: libfutures is better).
 *
 *   soon-cold   1,000,000 zero-delay callbacks scheduled on a new loop, then run, as the
 *               first thing a fresh process does: callbacks per second. The headline.
 *               libuv has no call_soon; its fair equivalent is a malloc'd FIFO of
 *               callbacks drained by one uv_idle handle.
 *   soon        the same, repeated on that loop (warm: its queues have grown, libuv's
 *               nodes come from malloc's free lists)
 *   timers      1,000,000 timers with random delays up to 1 s, scheduled then run to
 *               completion: CPU time per timer (CLOCK_PROCESS_CPUTIME_ID), since the
 *               wall time is the 1 s of the longest delay. libuv: one uv_timer_t each.
 *   executor    100,000 sequential run_in_executor round trips of an empty task (each
 *               completion submits the next): mean and median microseconds.
 *               libuv: uv_queue_work and its after-work callback.
 *
 *   bench_loop [--quick] [--runs=N] [--asyncio path/to/bench_loop.py]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <futures.h>
#include <uv.h>

#include "bench_util.h"

#define REFERENCE "libfutures"
#define WARM_RUNS 2        /* warm call_soon runs after the cold one, per process */

static long n_soon = 1000000, n_timers = 1000000, n_trips = 100000;
static int runs = 5;

/* ---- helpers ----------------------------------------------------------------------- */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Random delays, the same for both loops: a fixed-seed LCG. */
static double *random_delays(long n)
{
    double *d = malloc((size_t)n * sizeof *d);
    unsigned long long x = 42;
    for (long i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        d[i] = (double)(x >> 11) / 9007199254740992.0;  /* [0, 1) */
    }
    return d;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---- call_soon ------------------------------------------------------------------------ */

static long counter;

static void count_cb(void *arg)
{
    (void)arg;
    counter++;
}

static void stop_cb(void *arg)
{
    fut_loop_stop(arg);
}

static double fut_call_soon_rate(fut_loop *loop)
{
    counter = 0;
    double t0 = bench_now();
    for (long i = 0; i < n_soon; i++)
        if (!fut_loop_call_soon(loop, count_cb, NULL))
            die("fut_loop_call_soon");
    fut_loop_call_soon(loop, stop_cb, loop);
    fut_loop_run_forever(loop);
    double t = bench_now() - t0;
    if (counter != n_soon)
        die("call_soon: lost callbacks");
    return (double)n_soon / t;
}

struct uv_fifo_node {
    void (*cb)(void *);
    void *arg;
    struct uv_fifo_node *next;
};

static struct uv_fifo_node *fifo_head, *fifo_tail;

static void uv_fifo_push(void (*cb)(void *), void *arg)
{
    struct uv_fifo_node *node = malloc(sizeof *node);
    if (!node)
        die("malloc");
    *node = (struct uv_fifo_node){ cb, arg, NULL };
    if (fifo_tail)
        fifo_tail->next = node;
    else
        fifo_head = node;
    fifo_tail = node;
}

static void uv_drain(uv_idle_t *idle)
{
    while (fifo_head) {
        struct uv_fifo_node *node = fifo_head;
        if (!(fifo_head = node->next))
            fifo_tail = NULL;
        node->cb(node->arg);
        free(node);
    }
    uv_idle_stop(idle);
}

static double uv_call_soon_rate(uv_loop_t *loop, uv_idle_t *idle)
{
    counter = 0;
    double t0 = bench_now();
    for (long i = 0; i < n_soon; i++)
        uv_fifo_push(count_cb, NULL);
    uv_idle_start(idle, uv_drain);
    uv_run(loop, UV_RUN_DEFAULT);
    double t = bench_now() - t0;
    if (counter != n_soon)
        die("uv fifo: lost callbacks");
    return (double)n_soon / t;
}

/* ---- timers ---------------------------------------------------------------------------- */

static double *delays;
static fut_loop *timer_loop;

static void timer_cb(void *arg)
{
    (void)arg;
    if (++counter == n_timers)
        fut_loop_stop(timer_loop);
}

static double fut_timer_cpu(void)
{
    timer_loop = fut_loop_new();
    counter = 0;
    double c0 = cpu_now();
    for (long i = 0; i < n_timers; i++)
        if (!fut_loop_call_later(timer_loop, delays[i], timer_cb, NULL))
            die("fut_loop_call_later");
    fut_loop_run_forever(timer_loop);
    double c = cpu_now() - c0;
    fut_loop_free(timer_loop);
    return c / (double)n_timers;
}

static void uv_timer_fired(uv_timer_t *t)
{
    (void)t;
    counter++;
}

static double uv_timer_cpu(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t *timers = malloc((size_t)n_timers * sizeof *timers);
    if (!timers)
        die("malloc");
    counter = 0;
    double c0 = cpu_now();
    for (long i = 0; i < n_timers; i++) {
        uv_timer_init(&loop, &timers[i]);
        uv_timer_start(&timers[i], uv_timer_fired, (uint64_t)(delays[i] * 1000), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  /* returns when no timer is left */
    double c = cpu_now() - c0;
    if (counter != n_timers)
        die("uv timers: lost timers");
    for (long i = 0; i < n_timers; i++)
        uv_close((uv_handle_t *)&timers[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(timers);
    return c / (double)n_timers;
}

/* ---- executor round trips -------------------------------------------------------------- */

static double *trip_us;
static long trips;
static double trip_start;
static fut_loop *trip_loop;
static fut_executor *trip_pool;

static void *noop_task(void *arg)
{
    return arg;
}

static void fut_trip_next(void);

static void fut_trip_done(fut_future *f, void *arg)
{
    (void)arg;
    trip_us[trips++] = (bench_now() - trip_start) * 1e6;
    fut_future_unref(f);
    if (trips == n_trips)
        fut_loop_stop(trip_loop);
    else
        fut_trip_next();
}

static void fut_trip_next(void)
{
    trip_start = bench_now();
    fut_future *f = fut_loop_run_in_executor(trip_loop, trip_pool, noop_task, NULL);
    if (!f || fut_add_done_callback(f, fut_trip_done, NULL) != 0)
        die("fut_loop_run_in_executor");
}

static void fut_trip_begin(void *arg)
{
    (void)arg;
    fut_trip_next();
}

static double fut_round_trips(double *median)
{
    trip_loop = fut_loop_new();
    fut_pool_options opts = { .max_workers = 4 };  /* libuv's default pool size */
    trip_pool = fut_thread_pool_new(&opts);
    trips = 0;
    fut_loop_call_soon(trip_loop, fut_trip_begin, NULL);
    fut_loop_run_forever(trip_loop);
    fut_executor_free(trip_pool);
    fut_loop_free(trip_loop);
    double sum = 0;
    for (long i = 0; i < n_trips; i++)
        sum += trip_us[i];
    *median = bench_stats_of(trip_us, (size_t)n_trips).median;
    return sum / (double)n_trips;
}

static uv_work_t work_req;

static void uv_noop_work(uv_work_t *req)
{
    (void)req;
}

static void uv_trip_next(uv_loop_t *loop);

static void uv_trip_after(uv_work_t *req, int status)
{
    (void)status;
    trip_us[trips++] = (bench_now() - trip_start) * 1e6;
    if (trips < n_trips)
        uv_trip_next(req->loop);
}

static void uv_trip_next(uv_loop_t *loop)
{
    trip_start = bench_now();
    if (uv_queue_work(loop, &work_req, uv_noop_work, uv_trip_after) != 0)
        die("uv_queue_work");
}

static double uv_round_trips(double *median)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    trips = 0;
    uv_trip_next(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    double sum = 0;
    for (long i = 0; i < n_trips; i++)
        sum += trip_us[i];
    *median = bench_stats_of(trip_us, (size_t)n_trips).median;
    return sum / (double)n_trips;
}

/* ---- one process per run -------------------------------------------------------------- */

/* What one process reports (out[]). */
enum { OUT_SOON_COLD, OUT_SOON_WARM, OUT_TIMER = OUT_SOON_WARM + WARM_RUNS, OUT_TRIP_MEAN,
       OUT_TRIP_MEDIAN, OUT_N };

static void measure_libfutures(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    fut_loop *loop = fut_loop_new();
    if (!loop)
        die("fut_loop_new");
    out[OUT_SOON_COLD] = fut_call_soon_rate(loop);
    for (int r = 0; r < WARM_RUNS; r++)
        out[OUT_SOON_WARM + r] = fut_call_soon_rate(loop);
    fut_loop_free(loop);
    out[OUT_TIMER] = fut_timer_cpu() * 1e6;
    out[OUT_TRIP_MEAN] = fut_round_trips(&out[OUT_TRIP_MEDIAN]);
}

static void measure_libuv(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    uv_loop_t loop;
    uv_idle_t idle;
    uv_loop_init(&loop);
    uv_idle_init(&loop, &idle);
    out[OUT_SOON_COLD] = uv_call_soon_rate(&loop, &idle);
    for (int r = 0; r < WARM_RUNS; r++)
        out[OUT_SOON_WARM + r] = uv_call_soon_rate(&loop, &idle);
    uv_close((uv_handle_t *)&idle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    out[OUT_TIMER] = uv_timer_cpu() * 1e6;
    out[OUT_TRIP_MEAN] = uv_round_trips(&out[OUT_TRIP_MEDIAN]);
}

static const struct {
    const char *name;
    bench_measure_fn measure;
} impls[] = {
    { REFERENCE, measure_libfutures },
    { "libuv", measure_libuv },
};
#define N_IMPLS (sizeof impls / sizeof *impls)

static void add_rows(struct bench_table *t, const char *impl, double (*out)[OUT_N],
                     const bool *ok)
{
    static const struct { int field, count; const char *section, *metric; } rows[] = {
        { OUT_SOON_COLD, 1, "soon-cold", "cb/s" },
        { OUT_SOON_WARM, WARM_RUNS, "soon", "cb/s" },
        { OUT_TIMER, 1, "timer", "us" },
        { OUT_TRIP_MEAN, 1, "trip", "mean" },
        { OUT_TRIP_MEDIAN, 1, "trip", "median" },
    };
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
        double v[runs * WARM_RUNS];
        size_t got = 0;
        for (int r = 0; r < runs; r++)
            for (int i = 0; ok[r] && i < rows[k].count; i++)
                v[got++] = out[r][rows[k].field + i];
        if (got)
            bench_table_add(t, rows[k].section, 1, impl, rows[k].metric, v, got);
    }
}

static void import_asyncio(struct bench_table *t, const char *script, bool quick)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 '%s' --runs %d%s", script, runs, quick ? " --quick" : "");
    FILE *p = popen(cmd, "r");
    if (!p || bench_table_import(t, p) == 0)
        bench_table_note(t, "asyncio: %s gave no results", script);
    if (p)
        pclose(p);
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *py_script = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strncmp(argv[i], "--runs=", 7) && atoi(argv[i] + 7) > 0)
            runs = atoi(argv[i] + 7);
        else if (!strcmp(argv[i], "--asyncio") && i + 1 < argc)
            py_script = argv[++i];
    }
    if (quick) {
        n_soon /= 10;
        n_timers /= 10;
        n_trips /= 10;
    }
    delays = random_delays(n_timers);
    trip_us = malloc((size_t)n_trips * sizeof *trip_us);
    if (!delays || !trip_us)
        die("malloc");

    struct bench_table *t = bench_table_new(
        "libfutures event loop vs peers: each row is min / median / max over fresh processes",
        REFERENCE);
    char title[256], count[32];
    snprintf(title, sizeof title, "1. call_soon, cold: %s callbacks on a new loop, the first "
             "thing a fresh process does", bench_format_value((double)n_soon, count, sizeof count));
    bench_table_section(t, "soon-cold", title, "callbacks/s", true);
    snprintf(title, sizeof title, "1b. call_soon, warm: the same, repeated on that loop (%d per "
             "process)", WARM_RUNS);
    bench_table_section(t, "soon", title, "callbacks/s", true);
    snprintf(title, sizeof title, "2. timers: %s random delays up to 1 s, CPU time per timer",
             bench_format_value((double)n_timers, count, sizeof count));
    bench_table_section(t, "timer", title, "microseconds", false);
    snprintf(title, sizeof title, "3. executor round trips: %s sequential run_in_executor",
             bench_format_value((double)n_trips, count, sizeof count));
    bench_table_section(t, "trip", title, "microseconds", false);

    bench_print_machine(stdout, "machine: ");
    bench_print_load(stdout, "at start: ");
    static double out[N_IMPLS][64][OUT_N];
    static bool ok[N_IMPLS][64];
    if (runs > 64)
        runs = 64;
    for (int r = 0; r < runs; r++)
        for (size_t i = 0; i < N_IMPLS; i++) {
            fprintf(stderr, "  run %d: %s ...\n", r + 1, impls[i].name);
            ok[i][r] = bench_run_isolated(impls[i].measure, NULL, out[i][r], OUT_N) == 0;
            if (!ok[i][r])
                bench_table_note(t, "%s: run %d failed", impls[i].name, r + 1);
        }
    for (size_t i = 0; i < N_IMPLS; i++)
        add_rows(t, impls[i].name, out[i], ok[i]);
    if (py_script)
        import_asyncio(t, py_script, quick);
    bench_print_load(stdout, "at end: ");
    printf("\n");
    bench_table_print(t, stdout);

    char buf[32];
    double ratio = bench_table_ratio(t, "soon-cold", 1, "libuv", "cb/s");
    printf("\ntarget: call_soon >= libuv's FIFO: cold %s %s, ",
           bench_format_ratio(ratio, buf, sizeof buf),
           isnan(ratio) ? "n/a" : ratio >= 1 ? "MET" : "NOT MET");
    ratio = bench_table_ratio(t, "soon", 1, "libuv", "cb/s");
    printf("warm %s %s\n", bench_format_ratio(ratio, buf, sizeof buf),
           isnan(ratio) ? "n/a" : ratio >= 1 ? "MET" : "NOT MET");
    bench_table_free(t);
    free(delays);
    free(trip_us);
    return 0;
}
