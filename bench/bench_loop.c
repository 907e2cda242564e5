/*
 * bench_loop: the event loop against libuv (and asyncio, through bench_loop.py), side by
 * side, each measurement RUNS times: min / median / max, and the ratio of the medians
 * (> 1: libfutures is better).
 *
 *   call_soon   1,000,000 zero-delay callbacks scheduled, then run: callbacks per second.
 *               libuv has no call_soon; its fair equivalent is a malloc'd FIFO of
 *               callbacks drained by one uv_idle handle.
 *   timers      1,000,000 timers with random delays up to 1 s, scheduled then run to
 *               completion: CPU time per timer (CLOCK_PROCESS_CPUTIME_ID), since the
 *               wall time is the 1 s of the longest delay. libuv: one uv_timer_t each.
 *   executor    100,000 sequential run_in_executor round trips of an empty task (each
 *               completion submits the next): mean and median microseconds.
 *               libuv: uv_queue_work and its after-work callback.
 *
 *   bench_loop [--quick] [--asyncio path/to/bench_loop.py]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <futures.h>
#include <uv.h>

#define RUNS 5

static long n_soon = 1000000, n_timers = 1000000, n_trips = 100000;

/* ---- helpers ----------------------------------------------------------------------- */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stats {
    double min, median, max;
};

static struct stats summarize(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return (struct stats){ v[0], n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[n - 1] };
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
    double t0 = wall_now();
    for (long i = 0; i < n_soon; i++)
        if (!fut_loop_call_soon(loop, count_cb, NULL))
            die("fut_loop_call_soon");
    fut_loop_call_soon(loop, stop_cb, loop);
    fut_loop_run_forever(loop);
    double t = wall_now() - t0;
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
    double t0 = wall_now();
    for (long i = 0; i < n_soon; i++)
        uv_fifo_push(count_cb, NULL);
    uv_idle_start(idle, uv_drain);
    uv_run(loop, UV_RUN_DEFAULT);
    double t = wall_now() - t0;
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
    trip_us[trips++] = (wall_now() - trip_start) * 1e6;
    fut_future_unref(f);
    if (trips == n_trips)
        fut_loop_stop(trip_loop);
    else
        fut_trip_next();
}

static void fut_trip_next(void)
{
    trip_start = wall_now();
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
    *median = summarize(trip_us, (size_t)n_trips).median;
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
    trip_us[trips++] = (wall_now() - trip_start) * 1e6;
    if (trips < n_trips)
        uv_trip_next(req->loop);
}

static void uv_trip_next(uv_loop_t *loop)
{
    trip_start = wall_now();
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
    *median = summarize(trip_us, (size_t)n_trips).median;
    return sum / (double)n_trips;
}

/* ---- asyncio, through bench_loop.py ------------------------------------------------------- */

struct py_results {
    bool have;
    struct stats soon, timer, trip_mean, trip_median;
};

static struct py_results run_asyncio(const char *script, bool quick)
{
    struct py_results r = { 0 };
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 '%s' --runs %d%s", script, RUNS, quick ? " --quick" : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        return r;
    char name[64];
    struct stats s;
    while (fscanf(p, "%63s %lf %lf %lf", name, &s.min, &s.median, &s.max) == 4) {
        if (!strcmp(name, "call_soon_per_s"))
            r.soon = s;
        else if (!strcmp(name, "timer_cpu_us"))
            r.timer = s;
        else if (!strcmp(name, "trip_mean_us"))
            r.trip_mean = s;
        else if (!strcmp(name, "trip_median_us"))
            r.trip_median = s;
        r.have = true;
    }
    pclose(p);
    return r;
}

/* ---- report -------------------------------------------------------------------------------- */

static void row(const char *what, const char *unit, struct stats ours, struct stats uv,
                const struct stats *py, bool higher_better)
{
    double r_uv = higher_better ? ours.median / uv.median : uv.median / ours.median;
    printf("%-22s %-8s libfutures %10.3f %10.3f %10.3f | libuv %10.3f %10.3f %10.3f | x%.2f",
           what, unit, ours.min, ours.median, ours.max, uv.min, uv.median, uv.max, r_uv);
    if (py) {
        double r_py = higher_better ? ours.median / py->median : py->median / ours.median;
        printf(" | asyncio %10.3f %10.3f %10.3f | x%.2f", py->min, py->median, py->max, r_py);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *py_script = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
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

    /* call_soon runs on one loop each, after an unmeasured warm-up run: the steady state
     * of a long-lived loop, whose queues have grown (libuv's FIFO nodes come warm from
     * malloc's free lists alike). A first, cold run mostly measures page faults. */
    fut_loop *soon_loop = fut_loop_new();
    uv_loop_t uv_soon_loop;
    uv_idle_t uv_idle;
    uv_loop_init(&uv_soon_loop);
    uv_idle_init(&uv_soon_loop, &uv_idle);
    double soon_cold[2] = { fut_call_soon_rate(soon_loop) / 1e6,
                            uv_call_soon_rate(&uv_soon_loop, &uv_idle) / 1e6 };

    double soon[2][RUNS], timer[2][RUNS], mean[2][RUNS], median[2][RUNS];
    for (int r = 0; r < RUNS; r++) {
        soon[0][r] = fut_call_soon_rate(soon_loop) / 1e6;
        soon[1][r] = uv_call_soon_rate(&uv_soon_loop, &uv_idle) / 1e6;
        timer[0][r] = fut_timer_cpu() * 1e6;
        timer[1][r] = uv_timer_cpu() * 1e6;
        mean[0][r] = fut_round_trips(&median[0][r]);
        mean[1][r] = uv_round_trips(&median[1][r]);
    }
    fut_loop_free(soon_loop);
    uv_close((uv_handle_t *)&uv_idle, NULL);
    uv_run(&uv_soon_loop, UV_RUN_DEFAULT);
    uv_loop_close(&uv_soon_loop);

    struct py_results py = { 0 };
    if (py_script)
        py = run_asyncio(py_script, quick);
    if (py.have) {
        py.soon.min /= 1e6;
        py.soon.median /= 1e6;
        py.soon.max /= 1e6;
    }

    printf("%d runs each: min median max; x: ratio of medians, > 1 = libfutures better\n",
           RUNS);
    printf("%ld call_soon, %ld timers, %ld executor round trips\n", n_soon, n_timers, n_trips);
    printf("call_soon cold first run (M cb/s): libfutures %.3f, libuv %.3f\n", soon_cold[0],
           soon_cold[1]);
    row("call_soon", "M cb/s", summarize(soon[0], RUNS), summarize(soon[1], RUNS),
        py.have ? &py.soon : NULL, true);
    row("timer CPU per timer", "us", summarize(timer[0], RUNS), summarize(timer[1], RUNS),
        py.have ? &py.timer : NULL, false);
    row("executor trip mean", "us", summarize(mean[0], RUNS), summarize(mean[1], RUNS),
        py.have ? &py.trip_mean : NULL, false);
    row("executor trip median", "us", summarize(median[0], RUNS), summarize(median[1], RUNS),
        py.have ? &py.trip_median : NULL, false);
    free(delays);
    free(trip_us);
    return 0;
}
