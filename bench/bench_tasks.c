/* SPDX-License-Identifier: MIT */
/*
 * bench_tasks: coroutine tasks against their peers.
 *
 *   switch      two tasks ping-ponging through fut_task_yield: ns per switch; peers: a raw
 *               ucontext swapcontext switch, Boost.Context's jump_fcontext (bench_fcontext,
 *               when built), asyncio's sleep(0) ping-pong (bench_tasks.py)
 *   spawn       create + start + finish a task that returns at once: tasks/s, in batches
 *               of 1000 gathered; peer: asyncio create_task + gather
 *   await100k   100,000 tasks awaiting one shared sleep(0.01), then gathered: total seconds
 *               and resident memory per task (RSS growth / tasks, KiB); peer: asyncio
 *   executor    fut_await on run_in_executor of an empty task, round trip in us; peer:
 *               the callback form (a done callback that submits the next), as bench_loop
 *
 * Every measured run is a fresh process (bench_run_isolated); the first (cold) run is
 * reported apart from the warm repeats.
 *
 * usage: bench_tasks [--quick] [--repeat=N] [--python=PATH] [--fcontext=PATH]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include <futures.h>

#include "bench_util.h"

static long n_switch = 2000000, n_spawn = 1000000, n_wait = 100000, n_trips = 100000;

static void die(const char *what)
{
    fprintf(stderr, "bench_tasks: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- switch ------------------------------------------------------------------------- */

static void *yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        fut_task_yield();
    return NULL;
}

static void measure_switch(void *arg, double *out, size_t n)
{
    (void)arg;
    fut_loop *loop = fut_loop_new();
    long per_task = n_switch / 2;
    fut_future *t[2] = { fut_loop_create_task(loop, yielder, &per_task),
                         fut_loop_create_task(loop, yielder, &per_task) };
    fut_future *g = fut_loop_gather(loop, t, 2);
    double t0 = bench_now();
    fut_loop_run_until_complete(loop, g);
    double dt = bench_now() - t0;
    out[0] = dt / (double)n_switch * 1e9;  /* ns per task switch (each yield: one round) */
    fut_future_unref(g);
    fut_future_unref(t[0]);
    fut_future_unref(t[1]);
    fut_loop_free(loop);
    (void)n;
}

static ucontext_t uc_main, uc_task;
static long uc_count;

static void uc_body(void)
{
    for (;;) {
        uc_count++;
        swapcontext(&uc_task, &uc_main);
    }
}

static void measure_ucontext(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    static char stack[64 * 1024];
    getcontext(&uc_task);
    uc_task.uc_stack.ss_sp = stack;
    uc_task.uc_stack.ss_size = sizeof stack;
    makecontext(&uc_task, uc_body, 0);
    long rounds = n_switch / 2;
    double t0 = bench_now();
    for (long i = 0; i < rounds; i++)
        swapcontext(&uc_main, &uc_task);
    out[0] = (bench_now() - t0) / (double)(2 * rounds) * 1e9;  /* two switches a round */
}

/* ---- spawn -------------------------------------------------------------------------- */

static void *noop(void *arg)
{
    return arg;
}

static void measure_spawn(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    enum { BATCH = 1000 };
    fut_loop *loop = fut_loop_new();
    fut_future *fs[BATCH];
    long done = 0;
    double t0 = bench_now();
    while (done < n_spawn) {
        for (int i = 0; i < BATCH; i++)
            if (!(fs[i] = fut_loop_create_task(loop, noop, NULL)))
                die("create_task");
        fut_future *g = fut_loop_gather(loop, fs, BATCH);
        fut_loop_run_until_complete(loop, g);
        fut_future_unref(g);
        for (int i = 0; i < BATCH; i++)
            fut_future_unref(fs[i]);
        done += BATCH;
    }
    out[0] = (double)done / (bench_now() - t0);
    fut_loop_free(loop);
}

/* ---- await100k ---------------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long rss_peak;

static void *sleeper(void *arg)
{
    fut_await(arg, NULL);
    return NULL;
}

static void sample_rss(void *arg)
{
    (void)arg;
    rss_peak = rss_kib();
}

static void measure_await(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    fut_loop *loop = fut_loop_new();
    fut_future **fs = malloc((size_t)n_wait * sizeof *fs);
    if (!fs)
        die("malloc");
    long rss0 = rss_kib();
    double t0 = bench_now();
    fut_future *shared = fut_loop_sleep(loop, 0.01, NULL);
    for (long i = 0; i < n_wait; i++)
        if (!(fs[i] = fut_loop_create_task(loop, sleeper, shared)))
            die("create_task");
    fut_loop_call_later(loop, 0.005, sample_rss, NULL);
    fut_future *g = fut_loop_gather(loop, fs, (size_t)n_wait);
    fut_loop_run_until_complete(loop, g);
    out[0] = bench_now() - t0;
    out[1] = (double)(rss_peak - rss0) / (double)n_wait;
    fut_future_unref(g);
    for (long i = 0; i < n_wait; i++)
        fut_future_unref(fs[i]);
    fut_future_unref(shared);
    free(fs);
    fut_loop_free(loop);
}

/* ---- executor round trips ----------------------------------------------------------- */

static fut_executor *pool;

static void *trip_task(void *arg)
{
    long n = *(long *)arg;
    fut_loop *loop = fut_loop_current();
    for (long i = 0; i < n; i++) {
        fut_future *f = fut_loop_run_in_executor(loop, pool, noop, NULL);
        if (!f || fut_await(f, NULL) != 0)
            die("await run_in_executor");
        fut_future_unref(f);
    }
    return NULL;
}

static void measure_trip_await(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    pool = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    double t0 = bench_now();
    if (fut_run(trip_task, &n_trips, NULL) != 0)
        die("fut_run");
    out[0] = (bench_now() - t0) / (double)n_trips * 1e6;
    fut_executor_free(pool);
}

struct cb_trips {
    fut_loop *loop;
    long left;
};

static void trip_done(fut_future *f, void *arg);

static void trip_next(struct cb_trips *c)
{
    fut_future *f = fut_loop_run_in_executor(c->loop, pool, noop, NULL);
    if (!f || fut_add_done_callback(f, trip_done, c) != 0)
        die("run_in_executor");
    fut_future_unref(f);
}

static void trip_done(fut_future *f, void *arg)
{
    struct cb_trips *c = arg;
    (void)f;
    if (--c->left > 0)
        trip_next(c);
    else
        fut_loop_stop(c->loop);
}

static void measure_trip_callback(void *arg, double *out, size_t n)
{
    (void)arg;
    (void)n;
    pool = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    struct cb_trips c = { fut_loop_new(), n_trips };
    double t0 = bench_now();
    trip_next(&c);
    fut_loop_run_forever(c.loop);
    out[0] = (bench_now() - t0) / (double)n_trips * 1e6;
    fut_loop_free(c.loop);
    fut_executor_free(pool);
}

/* ---- driver ------------------------------------------------------------------------- */

/* Runs fn `repeat` + 1 times, each in a fresh process; the first (cold) run is noted. */
static void collect(struct bench_table *t, const char *section, const char *impl,
                    const char *const *metrics, size_t n_metrics, bench_measure_fn fn,
                    int repeat)
{
    double cold[4], warm[4][64];
    for (int r = 0; r <= repeat; r++) {
        double v[4];
        if (bench_run_isolated(fn, NULL, v, n_metrics) != 0) {
            bench_table_note(t, "%s/%s: a run failed", section, impl);
            return;
        }
        for (size_t m = 0; m < n_metrics; m++) {
            if (r == 0)
                cold[m] = v[m];
            else
                warm[m][r - 1] = v[m];
        }
    }
    for (size_t m = 0; m < n_metrics; m++) {
        bench_table_add(t, section, 1, impl, metrics[m], warm[m], (size_t)repeat);
        bench_table_note(t, "%s %s %s: cold first run %.4g", section, impl, metrics[m],
                         cold[m]);
    }
}

static void import_command(struct bench_table *t, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) {
        bench_table_note(t, "could not run: %s", cmd);
        return;
    }
    if (bench_table_import(t, p) <= 0)
        bench_table_note(t, "no results from: %s", cmd);
    pclose(p);
}

int main(int argc, char **argv)
{
    int repeat = 5;
    const char *python = "python3", *script = "bench/bench_tasks.py";
    const char *fcontext = "bench/bench_fcontext";
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strncmp(argv[i], "--repeat=", 9) == 0)
            repeat = atoi(argv[i] + 9);
        else if (strncmp(argv[i], "--python=", 9) == 0)
            python = argv[i] + 9;
        else if (strncmp(argv[i], "--script=", 9) == 0)
            script = argv[i] + 9;
        else if (strncmp(argv[i], "--fcontext=", 11) == 0)
            fcontext = argv[i] + 11;
        else {
            fprintf(stderr, "usage: %s [--quick] [--repeat=N] [--python=PATH] "
                            "[--script=bench_tasks.py] [--fcontext=PATH]\n", argv[0]);
            return 2;
        }
    }
    if (repeat < 1 || repeat > 64)
        repeat = 5;
    if (quick) {
        n_switch = 200000;
        n_spawn = 100000;
        n_wait = 10000;
        n_trips = 10000;
        repeat = repeat > 3 ? 3 : repeat;
    }
    struct bench_table *t = bench_table_new("coroutine tasks", "libfutures");
    bench_table_section(t, "switch", "task switch", "ns", false);
    bench_table_section(t, "spawn", "create+start+finish", "tasks/s", true);
    bench_table_section(t, "await", "tasks awaiting one sleep, gathered", "s / KiB", false);
    bench_table_section(t, "trip", "run_in_executor round trip", "us", false);

    collect(t, "switch", "libfutures", (const char *[]){ "ns_per_switch" }, 1, measure_switch,
            repeat);
    collect(t, "switch", "ucontext", (const char *[]){ "ns_per_switch" }, 1, measure_ucontext,
            repeat);
    collect(t, "spawn", "libfutures", (const char *[]){ "tasks_per_s" }, 1, measure_spawn,
            repeat);
    collect(t, "await", "libfutures", (const char *[]){ "total_s", "rss_KiB_per_task" }, 2,
            measure_await, repeat);
    collect(t, "trip", "libfutures", (const char *[]){ "us" }, 1, measure_trip_await, repeat);
    collect(t, "trip", "libfutures-callback", (const char *[]){ "us" }, 1,
            measure_trip_callback, repeat);

    char cmd[1024];
    if (access(fcontext, X_OK) == 0) {
        snprintf(cmd, sizeof cmd, "%s %ld %d", fcontext, n_switch, repeat);
        import_command(t, cmd);
    } else {
        bench_table_note(t, "Boost.Context peer not built (%s)", fcontext);
    }
    snprintf(cmd, sizeof cmd, "%s %s --switches=%ld --spawn=%ld --wait=%ld --repeat=%d",
             python, script, n_switch / 10, n_spawn / 10, n_wait, repeat);
    import_command(t, cmd);
    bench_table_note(t, "asyncio runs 1/10 of the switches and spawns (it is that much slower)");
    bench_table_note(t, "%ld switches, %ld spawns, %ld awaiting tasks, %ld round trips; "
                        "%d warm runs, each in a fresh process", n_switch, n_spawn, n_wait,
                     n_trips, repeat);
    bench_print_machine(stdout, "# ");
    bench_table_print(t, stdout);
    bench_table_free(t);
    return 0;
}
