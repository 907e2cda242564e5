/* SPDX-License-Identifier: MIT */
/*
 * The thread pool against its peers: GLib's GThreadPool, libuv's uv_queue_work, the
 * textbook mutex + condition variable pool that mallocs a node per task, and that pool
 * with a malloc'd completion record per task held until waited on (what a future is), in
 * one table (Python's ThreadPoolExecutor joins it through --import, see
 * run-benchmarks.sh).
 *
 *   cold        the first batch of a fresh process, as a user's program sees it: the pool
 *               is created, N no-op tasks are submitted from one thread, then waited for
 *               (tasks/s). The headline.
 *   throughput  the same batch repeated in that process after the first (warm: memory and
 *               threads are there already)
 *   rss         resident memory growth during the cold batch, per task (bytes), measured
 *               with every task done and its future or record not yet released
 *   idle        resident memory above the figure before the pool was created (MB), once
 *               the batches' memory is released and the pool has been idle for a second
 *   roundtrip   submit one no-op and block on its result, repeatedly (mean, median, p99)
 *   cpu         2 x cpus tasks of an integer loop: speedup over running them in a row
 *               in one thread, timed just before each pool run
 *
 * Every measurement runs in a fresh process (see bench_run_isolated); the cold batch and
 * its memory are measured once per process, --repeat processes per implementation, the
 * implementations interleaved. roundtrip and cpu warm their pool up so that thread
 * start-up is not measured, then repeat the measurement --repeat times.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <futures.h>

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif
#ifdef BENCH_HAVE_LIBUV
#include <uv.h>
#endif

#include "bench_util.h"

#define REFERENCE "libfutures"
#define TEXTBOOK_PEER "mutex+condvar"
#define RECORD_PEER "mutex+condvar+record"   /* the textbook pool with a future of its own */
#define MAX_WORKER_COUNTS 8
#define WARMUP_TASKS 10000
#define WARMUP_ROUND_TRIPS 1000
#define WARM_BATCHES 2        /* warm batches after the cold one, per process */
#define IDLE_SECONDS 1

static struct {
    int workers[MAX_WORKER_COUNTS];
    int n_workers;
    size_t tasks, round_trips, cpu_tasks;
    uint64_t cpu_steps;
    int repeat;
    const char *import;
    const char *impls;  /* names to run, comma-separated; NULL: all */
    bool throughput, roundtrip, cpu;
} cfg;

static void die(const char *what, int code)
{
    fprintf(stderr, "bench-thread-pool: %s: %s\n", what, code ? fut_strerror(code) : "failed");
    _exit(1);
}

static void *noop_task(void *arg)
{
    return arg;
}

static void *cpu_task(void *arg)
{
    return (void *)(uintptr_t)bench_xorshift_steps((uintptr_t)arg, cfg.cpu_steps);
}

/* ---- a batch of jobs: how the C peers are used --------------------------------------- */

/* Completion of a batch: a counter under a mutex, the last job signals the waiter. */
struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t remaining;
};

struct job {
    struct job *next;  /* the mutex pool's queue link */
    fut_fn fn;
    void *arg;
    void *result;
    struct batch *batch;
    /* the textbook peers: what the worker does once fn ran (NULL: batch_done) */
    void (*finish)(struct job *j);
    void *owner;       /* the result's slot, or the completion record */
};

/* The largest resident set seen with a batch's tasks done and its futures (records,
 * jobs) not yet released: each run_batch notes it right after its wait. */
static double peak_rss;

static void note_peak_rss(void)
{
    double rss = bench_rss_bytes();
    if (rss > peak_rss)
        peak_rss = rss;
}

static void batch_done(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    if (--b->remaining == 0)
        pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void batch_wait(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    while (b->remaining > 0)
        pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
}

/* What a worker of a job-based peer does with a job. */
static void job_run(struct job *j)
{
    j->result = j->fn(j->arg);
    if (j->finish)
        j->finish(j);
    else
        batch_done(j->batch);
}

/* ---- the implementations ------------------------------------------------------------- */

struct impl {
    const char *name;
    void *(*create)(int workers);
    void (*destroy)(void *pool);
    /* Runs fn(args[i]) (args NULL: NULL) for i < n, stores results[i] unless results is
     * NULL, and returns once all are done. */
    void (*run_batch)(const struct impl *impl, void *pool, fut_fn fn, void *const *args,
                      void **results, size_t n);
    /* Runs one task and blocks on its result. */
    void (*round_trip)(const struct impl *impl, void *pool, fut_fn fn, void *arg);
    /* Job-based peers: hand a job to the pool; wait for a batch of them. */
    void (*submit)(void *pool, struct job *job);
    void (*wait)(void *pool, struct batch *batch);
};

static void jobs_run_batch(const struct impl *impl, void *pool, fut_fn fn,
                           void *const *args, void **results, size_t n)
{
    struct batch b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n };
    struct job *jobs = calloc(n, sizeof *jobs);
    if (!jobs)
        die("calloc", FUT_ENOMEM);
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (struct job){ .fn = fn, .arg = args ? args[i] : NULL, .batch = &b };
        impl->submit(pool, &jobs[i]);
    }
    impl->wait(pool, &b);
    note_peak_rss();
    for (size_t i = 0; results && i < n; i++)
        results[i] = jobs[i].result;
    free(jobs);
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.lock);
}

static void jobs_round_trip(const struct impl *impl, void *pool, fut_fn fn, void *arg)
{
    impl->run_batch(impl, pool, fn, &arg, NULL, 1);
}

static void jobs_wait(void *pool, struct batch *b)
{
    (void)pool;
    batch_wait(b);
}

/* libfutures: fut_submit each, fut_wait(ALL_COMPLETED), fut_result each, unref all. */

static void *futures_create(int workers)
{
    fut_pool_options opts = { .max_workers = workers };
    fut_executor *ex = fut_thread_pool_new(&opts);
    if (!ex)
        die("fut_thread_pool_new", -errno);
    return ex;
}

static void futures_destroy(void *pool)
{
    fut_executor_free(pool);
}

static void futures_run_batch(const struct impl *impl, void *pool, fut_fn fn,
                              void *const *args, void **results, size_t n)
{
    (void)impl;
    fut_future **fs = malloc(n * sizeof *fs);
    if (!fs)
        die("malloc", FUT_ENOMEM);
    for (size_t i = 0; i < n; i++)
        if (!(fs[i] = fut_submit(pool, fn, args ? args[i] : NULL)))
            die("fut_submit", -errno);
    size_t n_done;
    int rc = fut_wait(fs, n, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done);
    if (rc || n_done != n)
        die("fut_wait", rc);
    note_peak_rss();
    for (size_t i = 0; i < n; i++) {
        if (results && (rc = fut_result(fs[i], 0, &results[i])) != 0)
            die("fut_result", rc);
        fut_future_unref(fs[i]);
    }
    free(fs);
}

static void futures_round_trip(const struct impl *impl, void *pool, fut_fn fn, void *arg)
{
    (void)impl;
    fut_future *f = fut_submit(pool, fn, arg);
    if (!f)
        die("fut_submit", -errno);
    int rc = fut_result(f, FUT_FOREVER, NULL);
    if (rc)
        die("fut_result", rc);
    fut_future_unref(f);
}

/* A plain pool: one FIFO of jobs under one mutex, one condition variable. */

struct mutex_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    bool stop;
    int n_threads;
    pthread_t threads[];
};

static void *mutex_pool_worker(void *arg)
{
    struct mutex_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        struct job *j = p->head;
        if (j && !(p->head = j->next))
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        if (!j)
            return NULL;
        job_run(j);
    }
}

static void *mutex_pool_create(int workers)
{
    struct mutex_pool *p = calloc(1, sizeof *p + (size_t)workers * sizeof *p->threads);
    if (!p)
        die("calloc", FUT_ENOMEM);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (; p->n_threads < workers; p->n_threads++) {
        int err = pthread_create(&p->threads[p->n_threads], NULL, mutex_pool_worker, p);
        if (err)
            die("pthread_create", -err);
    }
    return p;
}

static void mutex_pool_destroy(void *pool)
{
    struct mutex_pool *p = pool;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void mutex_pool_submit(void *pool, struct job *j)
{
    struct mutex_pool *p = pool;
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/*
 * The textbook pool as a user writes it: a node malloc'd per task, freed by the worker
 * once the task ran; the batch waits on a counter.
 */

static void textbook_finish(struct job *j)
{
    struct batch *b = j->batch;
    if (j->owner)
        *(void **)j->owner = j->result;
    free(j);
    batch_done(b);
}

static struct job *new_job(fut_fn fn, void *arg, void (*finish)(struct job *), void *owner)
{
    struct job *j = malloc(sizeof *j);
    if (!j)
        die("malloc", FUT_ENOMEM);
    *j = (struct job){ .fn = fn, .arg = arg, .finish = finish, .owner = owner };
    return j;
}

static void textbook_run_batch(const struct impl *impl, void *pool, fut_fn fn,
                               void *const *args, void **results, size_t n)
{
    (void)impl;
    struct batch b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n };
    for (size_t i = 0; i < n; i++) {
        struct job *j = new_job(fn, args ? args[i] : NULL, textbook_finish,
                                results ? &results[i] : NULL);
        j->batch = &b;
        mutex_pool_submit(pool, j);
    }
    batch_wait(&b);
    note_peak_rss();
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.lock);
}

/*
 * The textbook pool plus what a future is: a completion record per task, malloc'd at
 * submit, with its own lock and condition variable so that each can be waited on alone,
 * held until the caller has waited on it and read its result.
 */

struct record {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    void *result;
};

static void record_finish(struct job *j)
{
    struct record *r = j->owner;
    void *result = j->result;
    free(j);
    pthread_mutex_lock(&r->lock);
    r->result = result;
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void record_run_batch(const struct impl *impl, void *pool, fut_fn fn,
                             void *const *args, void **results, size_t n)
{
    (void)impl;
    struct record **records = malloc(n * sizeof *records);
    if (!records)
        die("malloc", FUT_ENOMEM);
    for (size_t i = 0; i < n; i++) {
        struct record *r = records[i] = malloc(sizeof *r);
        if (!r)
            die("malloc", FUT_ENOMEM);
        *r = (struct record){ .done = false };
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        mutex_pool_submit(pool, new_job(fn, args ? args[i] : NULL, record_finish, r));
    }
    for (size_t i = 0; i < n; i++) {
        struct record *r = records[i];
        pthread_mutex_lock(&r->lock);
        while (!r->done)
            pthread_cond_wait(&r->cond, &r->lock);
        pthread_mutex_unlock(&r->lock);
    }
    note_peak_rss();
    for (size_t i = 0; i < n; i++) {
        struct record *r = records[i];
        if (results)
            results[i] = r->result;
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
    free(records);
}

#ifdef BENCH_HAVE_GLIB
/* GLib: an exclusive GThreadPool (its threads start at once and serve only this pool). */

static void glib_worker(gpointer data, gpointer user_data)
{
    (void)user_data;
    job_run(data);
}

static void *glib_create(int workers)
{
    GError *error = NULL;
    GThreadPool *p = g_thread_pool_new(glib_worker, NULL, workers, TRUE, &error);
    if (!p)
        die(error ? error->message : "g_thread_pool_new", 0);
    return p;
}

static void glib_destroy(void *pool)
{
    g_thread_pool_free(pool, FALSE, TRUE);
}

static void glib_submit(void *pool, struct job *j)
{
    if (!g_thread_pool_push(pool, j, NULL))
        die("g_thread_pool_push", 0);
}
#endif

#ifdef BENCH_HAVE_LIBUV
/* libuv: uv_queue_work on a loop run by the submitting thread, which also receives the
 * completions (after_work callbacks); the pool size is UV_THREADPOOL_SIZE, read once per
 * process, hence one process per measurement. */

struct uv_job {
    uv_work_t req;
    struct job *job;
};

static void uv_job_work(uv_work_t *req)
{
    struct job *j = ((struct uv_job *)req)->job;
    j->result = j->fn(j->arg);
}

static void uv_job_after(uv_work_t *req, int status)
{
    (void)status;
    free(req);
}

static void *uv_create(int workers)
{
    char size[16];
    snprintf(size, sizeof size, "%d", workers);
    setenv("UV_THREADPOOL_SIZE", size, 1);
    uv_loop_t *loop = malloc(sizeof *loop);
    int rc;
    if (!loop)
        die("malloc", FUT_ENOMEM);
    if ((rc = uv_loop_init(loop)) != 0)
        die(uv_strerror(rc), 0);
    return loop;
}

static void uv_destroy(void *pool)
{
    uv_loop_close(pool);
    free(pool);
}

static void uv_submit(void *pool, struct job *j)
{
    struct uv_job *uj = malloc(sizeof *uj);
    if (!uj)
        die("malloc", FUT_ENOMEM);
    uj->job = j;
    int rc = uv_queue_work(pool, &uj->req, uv_job_work, uv_job_after);
    if (rc)
        die(uv_strerror(rc), 0);
}

static void uv_wait(void *pool, struct batch *b)
{
    (void)b;  /* the loop returns once every after_work callback has run */
    uv_run(pool, UV_RUN_DEFAULT);
}
#endif

static const struct impl impls[] = {
    { REFERENCE, futures_create, futures_destroy, futures_run_batch, futures_round_trip,
      NULL, NULL },
#ifdef BENCH_HAVE_GLIB
    { "GThreadPool", glib_create, glib_destroy, jobs_run_batch, jobs_round_trip,
      glib_submit, jobs_wait },
#endif
#ifdef BENCH_HAVE_LIBUV
    { "uv_queue_work", uv_create, uv_destroy, jobs_run_batch, jobs_round_trip, uv_submit,
      uv_wait },
#endif
    { "mutex+condvar", mutex_pool_create, mutex_pool_destroy, textbook_run_batch,
      jobs_round_trip, NULL, NULL },
    { RECORD_PEER, mutex_pool_create, mutex_pool_destroy, record_run_batch,
      jobs_round_trip, NULL, NULL },
};
#define N_IMPLS (sizeof impls / sizeof *impls)

static bool selected(const struct impl *impl)
{
    if (!cfg.impls)
        return true;
    size_t len = strlen(impl->name);
    for (const char *p = cfg.impls; (p = strstr(p, impl->name)) != NULL; p += len)
        if ((p == cfg.impls || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            return true;
    return false;
}

/* ---- the measurements (each runs in a child process) ------------------------------- */

struct measurement {
    const struct impl *impl;
    int workers;
};

static void *warmed_up_pool(const struct measurement *m)
{
    void *pool = m->impl->create(m->workers);
    m->impl->run_batch(m->impl, pool, noop_task, NULL, NULL, WARMUP_TASKS);
    return pool;
}

/* What one process of the throughput measurement reports (out[]). */
enum {
    OUT_COLD,          /* the first batch, tasks/s */
    OUT_COLD_CPU,      /* the first batch, tasks per CPU-second of the process */
    OUT_RSS,           /* its resident growth per task, bytes */
    OUT_FAULTS,        /* its minor page faults per task */
    OUT_IDLE,          /* MB above the pre-pool figure, released and idle for a second */
    OUT_WARM,          /* then WARM_BATCHES warm batches, tasks/s */
    OUT_N = OUT_WARM + WARM_BATCHES
};

/* Tasks per second of one batch; *cpu (unless NULL): tasks per CPU-second of the
 * process, which a loaded machine disturbs less than the wall clock. */
static double time_batch(const struct measurement *m, void *pool, double *cpu)
{
    double start = bench_now(), cpu_start = bench_cpu_seconds();
    m->impl->run_batch(m->impl, pool, noop_task, NULL, NULL, cfg.tasks);
    if (cpu)
        *cpu = (double)cfg.tasks / (bench_cpu_seconds() - cpu_start);
    return (double)cfg.tasks / (bench_now() - start);
}

/* In a fresh process: the cold batch and its memory, then the warm ones. */
static void measure_throughput(void *arg, double *out, size_t n)
{
    const struct measurement *m = arg;
    (void)n;
    double rss_before_pool = bench_rss_bytes();
    void *pool = m->impl->create(m->workers);
    double rss_before_batch = bench_rss_bytes();
    double faults = bench_minor_faults();
    peak_rss = 0;
    out[OUT_COLD] = time_batch(m, pool, &out[OUT_COLD_CPU]);
    out[OUT_RSS] = (peak_rss - rss_before_batch) / (double)cfg.tasks;
    out[OUT_FAULTS] = (bench_minor_faults() - faults) / (double)cfg.tasks;
    for (size_t r = 0; r < WARM_BATCHES; r++)
        out[OUT_WARM + r] = time_batch(m, pool, NULL);
    sleep(IDLE_SECONDS);
    out[OUT_IDLE] = (bench_rss_bytes() - rss_before_pool) / 1e6;
    m->impl->destroy(pool);
}

/* out[3r .. 3r+3): mean, median and p99 of run r, in microseconds */
static void measure_round_trip(void *arg, double *out, size_t n)
{
    const struct measurement *m = arg;
    void *pool = warmed_up_pool(m);
    double *lat = malloc(cfg.round_trips * sizeof *lat);
    if (!lat)
        die("malloc", FUT_ENOMEM);
    for (size_t i = 0; i < WARMUP_ROUND_TRIPS; i++)
        m->impl->round_trip(m->impl, pool, noop_task, NULL);
    for (size_t r = 0; r + 3 <= n; r += 3) {
        for (size_t i = 0; i < cfg.round_trips; i++) {
            double start = bench_now();
            m->impl->round_trip(m->impl, pool, noop_task, NULL);
            lat[i] = (bench_now() - start) * 1e6;
        }
        bench_latency_summary(lat, cfg.round_trips, &out[r]);
    }
    free(lat);
    m->impl->destroy(pool);
}

/* Times one batch of the cpu tasks: in the pool, or in the calling thread when pool is
 * NULL. Returns seconds; xors the results into *check. */
static double time_cpu_batch(const struct impl *impl, void *pool, void **args, void **results,
                             uintptr_t *check)
{
    double start = bench_now();
    if (pool)
        impl->run_batch(impl, pool, cpu_task, args, results, cfg.cpu_tasks);
    else
        for (size_t i = 0; i < cfg.cpu_tasks; i++)
            results[i] = cpu_task(args[i]);
    double elapsed = bench_now() - start;
    for (size_t i = 0; i < cfg.cpu_tasks; i++)
        *check ^= (uintptr_t)results[i];
    return elapsed;
}

/* out[2r], out[2r+1]: seconds of run r in the calling thread, then in the pool. Each
 * speedup divides times taken back to back, so both see about the same machine load. */
static void measure_cpu(void *arg, double *out, size_t n)
{
    const struct measurement *m = arg;
    void **args = malloc(cfg.cpu_tasks * sizeof *args);
    void **results = malloc(cfg.cpu_tasks * sizeof *results);
    if (!args || !results)
        die("malloc", FUT_ENOMEM);
    for (size_t i = 0; i < cfg.cpu_tasks; i++)
        args[i] = (void *)(uintptr_t)(i + 1);
    void *pool = warmed_up_pool(m);
    uintptr_t check = 0;
    for (size_t r = 0; r + 2 <= n; r += 2) {
        out[r] = time_cpu_batch(m->impl, NULL, args, results, &check);
        out[r + 1] = time_cpu_batch(m->impl, pool, args, results, &check);
    }
    /* both ways compute the same results, so all the runs xor to 0 */
    if (check != 0)
        die("the pool's cpu results differ from the sequential ones", 0);
    m->impl->destroy(pool);
    free(args);
    free(results);
}

/* ---- the driver ---------------------------------------------------------------------- */

static bool run_isolated(const char *what, bench_measure_fn fn, struct measurement *m,
                         double *out, size_t n, struct bench_table *table)
{
    if (!selected(m->impl))
        return false;
    fprintf(stderr, "  %-10s %-16s %d workers ...\n", what, m->impl->name, m->workers);
    if (bench_run_isolated(fn, m, out, n) == 0)
        return true;
    bench_table_note(table, "%s: %s with %d workers failed", what,
                     m->impl->name, m->workers);
    return false;
}

/* --repeat fresh processes per implementation, the implementations interleaved so
 * that a change in the machine's load reaches them all alike. */
static void run_throughput(struct bench_table *t, int workers)
{
    size_t n = (size_t)cfg.repeat;
    double out[N_IMPLS][n][OUT_N];
    bool ok[N_IMPLS][n];
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < N_IMPLS; i++) {
            struct measurement m = { &impls[i], workers };
            ok[i][r] = run_isolated("throughput", measure_throughput, &m, out[i][r], OUT_N, t);
        }
    }
    static const struct { int field; const char *section, *metric; } rows[] = {
        { OUT_COLD, "cold", "tasks/s" },
        { OUT_COLD_CPU, "cold-cpu", "tasks/cpu-s" },
        { OUT_RSS, "rss", "bytes/task" },
        { OUT_FAULTS, "rss", "faults/task" },
        { OUT_IDLE, "idle", "MB" },
    };
    for (size_t i = 0; i < N_IMPLS; i++) {
        double runs[n * WARM_BATCHES];
        for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
            size_t got = 0;
            for (size_t r = 0; r < n; r++)
                if (ok[i][r])
                    runs[got++] = out[i][r][rows[k].field];
            if (got)
                bench_table_add(t, rows[k].section, workers, impls[i].name, rows[k].metric,
                                runs, got);
        }
        size_t got = 0;
        for (size_t r = 0; r < n; r++)
            for (size_t b = 0; ok[i][r] && b < WARM_BATCHES; b++)
                runs[got++] = out[i][r][OUT_WARM + b];
        if (got)
            bench_table_add(t, "throughput", workers, impls[i].name, "tasks/s", runs, got);
    }
}

static void run_round_trip(struct bench_table *t, int workers)
{
    static const char *const metrics[3] = { "mean", "median", "p99" };
    size_t n = (size_t)cfg.repeat;
    double out[3 * n], runs[n];
    for (size_t i = 0; i < N_IMPLS; i++) {
        struct measurement m = { &impls[i], workers };
        if (!run_isolated("roundtrip", measure_round_trip, &m, out, 3 * n, t))
            continue;
        for (size_t k = 0; k < 3; k++) {
            for (size_t r = 0; r < n; r++)
                runs[r] = out[3 * r + k];
            bench_table_add(t, "roundtrip", workers, impls[i].name, metrics[k], runs, n);
        }
    }
}

static void run_cpu(struct bench_table *t, int workers)
{
    size_t n = (size_t)cfg.repeat;
    double out[2 * n], speedups[n], sequential[n];
    for (size_t i = 0; i < N_IMPLS; i++) {
        struct measurement m = { &impls[i], workers };
        if (!run_isolated("cpu", measure_cpu, &m, out, 2 * n, t))
            continue;
        for (size_t r = 0; r < n; r++) {
            sequential[r] = out[2 * r];
            speedups[r] = out[2 * r] / out[2 * r + 1];
        }
        bench_table_add(t, "cpu", workers, impls[i].name, "speedup", speedups, n);
        struct bench_stats s = bench_stats_of(sequential, n);
        bench_table_note(t, "cpu: %s, %d workers: sequential runs took %.3f / %.3f / %.3f s "
                            "(min / median / max)", impls[i].name, workers, s.min, s.median,
                         s.max);
    }
}

static void print_target(const char *what, double ratio, const char *peer, double goal)
{
    char buf[32];
    printf("  %-48s %8s vs %-14s %s\n", what, bench_format_ratio(ratio, buf, sizeof buf),
           peer ? peer : "(none)", isnan(ratio) ? "n/a" : ratio >= goal ? "MET" : "NOT MET");
}

/* The goals of the thread pool, against the best C peer (Python excluded). */
static void print_targets(const struct bench_table *t)
{
    printf("\ntargets (ratios against the best C peer; Python excluded):\n");
    for (int w = 0; w < cfg.n_workers; w++) {
        int workers = cfg.workers[w];
        const char *peer;
        double ratio;
        printf(" %d workers:\n", workers);
        if (cfg.throughput) {
            ratio = bench_table_ratio(t, "cold", workers, TEXTBOOK_PEER, "tasks/s");
            print_target("cold batch >= the textbook pool", ratio, TEXTBOOK_PEER, 1.0);
            ratio = bench_table_ratio(t, "cold", workers, RECORD_PEER, "tasks/s");
            print_target("cold batch >= 2.5x textbook pool + records", ratio, RECORD_PEER, 2.5);
            ratio = bench_table_ratio(t, "cold-cpu", workers, TEXTBOOK_PEER, "tasks/cpu-s");
            print_target("  the same per CPU-second", ratio, TEXTBOOK_PEER, 1.0);
            ratio = bench_table_ratio_to_best(t, "cold", workers, "tasks/s", "py-", &peer);
            print_target("cold batch >= 2.5x best C peer", ratio, peer, 2.5);
            ratio = bench_table_ratio_to_best(t, "throughput", workers, "tasks/s", "py-", &peer);
            print_target("warm throughput >= 2.5x best C peer", ratio, peer, 2.5);
            char buf[32];
            double rss = bench_table_median(t, "rss", workers, REFERENCE, "bytes/task");
            /* the caller's array of future pointers is 8 of those bytes, counted too */
            printf("  %-48s %8s B    %s\n", "rss growth per live future <= 64 B",
                   bench_format_value(rss, buf, sizeof buf),
                   isnan(rss) ? "n/a" : rss <= 64 ? "MET" : "NOT MET");
            double idle = bench_table_median(t, "idle", workers, REFERENCE, "MB");
            printf("  %-48s %8s MB   %s\n", "rss after release + 1 s idle <= 10 MB",
                   bench_format_value(idle, buf, sizeof buf),
                   isnan(idle) ? "n/a" : idle <= 10 ? "MET" : "NOT MET");
        }
        if (cfg.roundtrip) {
            ratio = bench_table_ratio_to_best(t, "roundtrip", workers, "mean", "py-", &peer);
            print_target("round-trip mean <= 1/2 best C peer (ratio >= 2)", ratio, peer, 2.0);
            ratio = bench_table_ratio_to_best(t, "roundtrip", workers, "p99", "py-", &peer);
            print_target("round-trip p99 no worse (ratio >= 1)", ratio, peer, 1.0);
        }
        if (cfg.cpu) {
            double speedup = bench_table_median(t, "cpu", workers, REFERENCE, "speedup");
            char buf[32];
            printf("  %-48s %8s (%zu x %llu steps, %d cpus)  %s\n", "cpu batch speedup >= 1.9",
                   bench_format_value(speedup, buf, sizeof buf), cfg.cpu_tasks,
                   (unsigned long long)cfg.cpu_steps, bench_cpu_count(),
                   isnan(speedup) ? "n/a" : speedup >= 1.9 ? "MET" : "NOT MET");
        }
    }
    if (cfg.cpu && cfg.cpu_steps < 500000000ULL)
        printf("  (the cpu target is stated for 500M steps per task: --cpu-steps=500M)\n");
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench-thread-pool [OPTION]...\n"
            "  --workers=LIST      worker counts (default 2,4)\n"
            "  --tasks=N           throughput: no-op tasks per run (default 1M)\n"
            "  --round-trips=N     round trip: iterations per run (default 100k)\n"
            "  --cpu-tasks=N       cpu: tasks per batch (default 2 x cpus)\n"
            "  --cpu-steps=N       cpu: xorshift steps per task (default 50M)\n"
            "  --repeat=N          runs per measurement; cold: processes (default 5)\n"
            "  --only=LIST         among throughput,roundtrip,cpu (default all)\n"
            "  --impl=LIST         implementations to run (default all), e.g. libfutures\n"
            "  --quick             a tenth of the default counts\n"
            "  --import=FILE       add the records of FILE (e.g. the Python results)\n"
            "Counts take a k, M or G suffix.\n");
}

static bool parse_count_option(const char *arg, const char *name, size_t *out)
{
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0 || arg[len] != '=')
        return false;
    long long v = bench_parse_count(arg + len + 1);
    if (v <= 0) {
        fprintf(stderr, "bench-thread-pool: invalid %s\n", arg);
        exit(2);
    }
    *out = (size_t)v;
    return true;
}

static void parse_options(int argc, char **argv)
{
    size_t steps = 50000000, repeat = 5;
    cfg.workers[0] = 2;
    cfg.workers[1] = 4;
    cfg.n_workers = 2;
    cfg.tasks = 1000000;
    cfg.round_trips = 100000;
    cfg.cpu_tasks = 2 * (size_t)bench_cpu_count();
    cfg.throughput = cfg.roundtrip = cfg.cpu = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (parse_count_option(a, "--tasks", &cfg.tasks) ||
            parse_count_option(a, "--round-trips", &cfg.round_trips) ||
            parse_count_option(a, "--cpu-tasks", &cfg.cpu_tasks) ||
            parse_count_option(a, "--cpu-steps", &steps) ||
            parse_count_option(a, "--repeat", &repeat))
            continue;
        if (strncmp(a, "--workers=", 10) == 0) {
            cfg.n_workers = bench_parse_int_list(a + 10, cfg.workers, MAX_WORKER_COUNTS);
            if (cfg.n_workers < 0) {
                fprintf(stderr, "bench-thread-pool: invalid %s\n", a);
                exit(2);
            }
        } else if (strncmp(a, "--only=", 7) == 0) {
            cfg.throughput = strstr(a + 7, "throughput") != NULL;
            cfg.roundtrip = strstr(a + 7, "roundtrip") != NULL;
            cfg.cpu = strstr(a + 7, "cpu") != NULL;
        } else if (strncmp(a, "--impl=", 7) == 0) {
            cfg.impls = a + 7;
        } else if (strcmp(a, "--quick") == 0) {
            cfg.tasks /= 10;
            cfg.round_trips /= 10;
            steps /= 10;
        } else if (strncmp(a, "--import=", 9) == 0) {
            cfg.import = a + 9;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    if (repeat > 1000) {
        fprintf(stderr, "bench-thread-pool: --repeat is at most 1000\n");
        exit(2);
    }
    cfg.repeat = (int)repeat;
    cfg.cpu_steps = steps;
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    struct bench_table *t = bench_table_new(
        "libfutures thread pool vs peers: each row is min / median / max of the runs",
        REFERENCE);
    char tasks[32];
    char title[256];
    bench_format_value((double)cfg.tasks, tasks, sizeof tasks);
    snprintf(title, sizeof title, "1. cold: the first batch of a fresh process, %s no-op "
             "tasks submitted from one thread, then wait for all", tasks);
    bench_table_section(t, "cold", title, "tasks/s", true);
    bench_table_section(t, "cold-cpu", "1a. the same cold batch per CPU-second of the process "
                        "(all its threads): less disturbed by other load", "tasks/cpu-s", true);
    snprintf(title, sizeof title, "1b. warm: the same batch repeated in that process "
             "(%d per process)", WARM_BATCHES);
    bench_table_section(t, "throughput", title, "tasks/s", true);
    snprintf(title, sizeof title, "1c. memory of the cold batch: resident growth and minor "
             "faults per task, all %s futures (records) alive", tasks);
    bench_table_section(t, "rss", title, "per task", false);
    snprintf(title, sizeof title, "1d. resident memory above the pre-pool figure after the "
             "batches, released, and %d s idle", IDLE_SECONDS);
    bench_table_section(t, "idle", title, "MB", false);
    snprintf(title, sizeof title, "2. round trip: submit one no-op, block on its result; "
             "%zu per run", cfg.round_trips);
    bench_table_section(t, "roundtrip", title, "microseconds", false);
    snprintf(title, sizeof title, "3. cpu batch: %zu tasks x %llu xorshift steps, speedup "
             "over running them in one thread", cfg.cpu_tasks,
             (unsigned long long)cfg.cpu_steps);
    bench_table_section(t, "cpu", title, "speedup", true);
#ifndef BENCH_HAVE_GLIB
    bench_table_note(t, "GLib was not found by configure: GThreadPool skipped");
#endif
#ifndef BENCH_HAVE_LIBUV
    bench_table_note(t, "libuv was not found by configure: uv_queue_work skipped");
#endif

    bench_print_machine(stdout, "machine: ");
    bench_print_load(stdout, "at start: ");
    printf("%d runs per measurement, each measurement in a fresh process\n", cfg.repeat);
    fflush(stdout);

    for (int w = 0; w < cfg.n_workers; w++) {
        if (cfg.throughput)
            run_throughput(t, cfg.workers[w]);
        if (cfg.roundtrip)
            run_round_trip(t, cfg.workers[w]);
        if (cfg.cpu)
            run_cpu(t, cfg.workers[w]);
    }

    if (cfg.import) {
        FILE *in = fopen(cfg.import, "r");
        if (in) {
            bench_table_import(t, in);
            fclose(in);
        } else {
            bench_table_note(t, "%s: %s", cfg.import, strerror(errno));
        }
    }
    bench_print_load(stdout, "at end: ");
    printf("\n");
    bench_table_print(t, stdout);
    print_targets(t);
    bench_table_free(t);
    return 0;
}
