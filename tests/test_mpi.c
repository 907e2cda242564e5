/* SPDX-License-Identifier: MIT */
/*
 * The MPI executor, run by tests/test_mpi.sh under mpirun -np 4 (one root, three worker
 * ranks). Not a Check program: Check forks each test, and a forked child is no MPI rank.
 *
 * Every rank runs the same sequence of scenarios. Each scenario is one executor: created
 * collectively on every rank, exercised on rank 0, freed there, which releases the
 * worker ranks, whose fut_mpi_pool_new then returns with *out NULL. Ranks synchronise with
 * futures and files in a private directory, never with sleeps; tests/test_mpi.sh bounds
 * the whole run, so a hang fails instead of blocking make check.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <futures_mpi.h>

#define P(i) ((void *)(intptr_t)(i))
#define I(p) ((intptr_t)(p))

static int my_rank = -1;
static int n_ranks;
static int failures;
static bool quick;
static char dir[64];               /* the root's scratch directory, same path everywhere */

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s\n", my_rank, __FILE__,       \
                    __LINE__, #cond);                                                      \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

/* ---- tasks ------------------------------------------------------------------------------- */

static void *square(void *arg)
{
    return P(I(arg) * I(arg));
}

static void *whoami(void *arg)
{
    (void)arg;
    return P(my_rank);
}

static void *raise_if_multiple(void *arg)
{
    if (I(arg) % 1000 == 7)
        fut_raise(42, "item %ld refused", (long)I(arg));
    return P(I(arg) + 1);
}

static void *raise_always(void *arg)
{
    fut_raise(EDOM, "boom %ld on rank %d", (long)I(arg), my_rank);
    return NULL;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
}

/* Waits (at most a minute) until the file named by arg exists: a gate the root opens. */
static void *wait_for_file(void *arg)
{
    for (int i = 0; i < 60000 && !exists(arg); i++) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return P(exists(arg) ? 1 : -1);
}

/* Leaves a mark that it ran: the file named by arg. */
static void *mark(void *arg)
{
    touch(arg);
    return P(7);
}

/* A 64 MiB argument in, its bytes each plus one out. */
static void *transform_bytes(void *arg)
{
    const unsigned char *in = arg;
    size_t len = (size_t)64 << 20;
    unsigned char *out = fut_bytes_new(len);
    if (!out) {
        fut_raise(ENOMEM, "no memory");
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(in[i] + 1);
    return out;
}

static void *hello_bytes(void *arg)
{
    char text[64];
    int n = snprintf(text, sizeof text, "item %ld", (long)I(arg));
    return fut_bytes_dup(text, (size_t)n + 1);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The CPU time this worker rank has used, in microseconds. */
static void *rank_cpu(void *arg)
{
    (void)arg;
    return P((intptr_t)(cpu_seconds() * 1e6));
}

static void *crash(void *arg)
{
    (void)arg;
    raise(SIGSEGV);
    return NULL;
}

static void *sleep_long(void *arg)
{
    (void)arg;
    sleep(60);
    return NULL;
}

static int failing_initializer(void *arg)
{
    (void)arg;
    return 5;
}

static int initialized_ranks;
static int counting_initializer(void *arg)
{
    (void)arg;
    initialized_ranks++;
    return 0;
}

static void *initialized(void *arg)
{
    (void)arg;
    return P(initialized_ranks);
}

/* ---- scenarios (on the root) ------------------------------------------------------------- */

static void path_in_dir(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void basics(fut_executor *ex)
{
    CHECK(fut_executor_max_workers(ex) == n_ranks - 1);
    enum { N = 200 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK((fs[i] = fut_submit(ex, square, P(i))) != NULL);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        CHECK(fs[i] && fut_result(fs[i], FUT_FOREVER, &v) == 0 && I(v) == (intptr_t)i * i);
        fut_future_unref(fs[i]);
    }
    fut_future *f = fut_submit(ex, whoami, NULL);
    void *v = NULL;
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0 && I(v) >= 1 && I(v) < n_ranks);
    fut_future_unref(f);

    /* fut_submit_copy: the task gets a private copy */
    long value = 12;
    f = fut_submit_copy(ex, square, &value, 0);  /* len 0: NULL argument */
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0 && v == NULL);
    fut_future_unref(f);

    /* exceptions: code and message */
    f = fut_submit(ex, raise_always, P(9));
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == EDOM);
    const char *message = f ? fut_exception_message(f) : NULL;
    CHECK(message && strncmp(message, "boom 9 on rank ", 15) == 0);
    fut_future_unref(f);

    /* fut_wait and done callbacks */
    fut_future *two[2] = { fut_submit(ex, square, P(3)), fut_submit(ex, square, P(4)) };
    size_t n_done = 0;
    CHECK(two[0] && two[1] && fut_wait(two, 2, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done) == 0 && n_done == 2);
    fut_future_unref(two[0]);
    fut_future_unref(two[1]);

    /* the event loop's bridge */
    fut_loop *loop = fut_loop_new();
    fut_future *lf = loop ? fut_loop_run_in_executor(loop, ex, square, P(7)) : NULL;
    CHECK(lf && fut_loop_run_until_complete(loop, lf) == 0 && fut_result(lf, 0, &v) == 0 && I(v) == 49);
    fut_future_unref(lf);
    fut_loop_free(loop);
}

static void map_chunks(fut_executor *ex)
{
    size_t n = quick ? 5000 : 20000;
    void **args = malloc(n * sizeof *args), **results = malloc(n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        args[i] = P(i);
    size_t chunks[] = { 0, 1, 7, 4096 };
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        size_t m = chunks[c] == 1 ? n / 10 : n;
        CHECK(fut_map(ex, square, args, m, results, FUT_FOREVER, chunks[c]) == 0);
        bool ok = true;
        for (size_t i = 0; i < m; i++)
            ok &= I(results[i]) == (intptr_t)(i * i);
        CHECK(ok);
    }
    /* failures: every item runs, failed ones are NULL, the first failure's code returns */
    CHECK(fut_map(ex, raise_if_multiple, args, n, results, FUT_FOREVER, 0) == 42);
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok &= i % 1000 == 7 ? results[i] == NULL : I(results[i]) == (intptr_t)i + 1;
    CHECK(ok);
    /* bytes results come back as buffers the caller owns */
    CHECK(fut_map(ex, hello_bytes, args, 100, results, FUT_FOREVER, 9) == 0);
    for (size_t i = 0; i < 100; i++) {
        char want[64];
        snprintf(want, sizeof want, "item %zu", i);
        CHECK(results[i] && strcmp(results[i], want) == 0 && fut_bytes_len(results[i]) == strlen(want) + 1);
        fut_bytes_free(results[i]);
    }
    free(args);
    free(results);
}

static void as_completed(fut_executor *ex)
{
    enum { N = 30 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(ex, square, P(i));
    fut_as_completed *it = fut_as_completed_new(fs, N, FUT_FOREVER);
    CHECK(it != NULL);
    bool seen[N] = { 0 };
    int count = 0;
    fut_future *f;
    while (it && fut_as_completed_next(it, &f) == 1) {
        for (int i = 0; i < N; i++)
            if (fs[i] == f) {
                CHECK(!seen[i] && fut_done(f));
                seen[i] = true;
            }
        count++;
    }
    CHECK(count == N);
    fut_as_completed_free(it);
    for (int i = 0; i < N; i++)
        fut_future_unref(fs[i]);
}

/* One worker rank: A runs, B is handed ahead, C is pending and cancelled: it never runs. */
static void cancel_pending(fut_executor *ex)
{
    CHECK(fut_executor_max_workers(ex) == 1);
    char gate[128], ran[128];
    path_in_dir(gate, sizeof gate, "gate-cancel");
    path_in_dir(ran, sizeof ran, "ran-c");
    fut_future *a = fut_submit_copy(ex, wait_for_file, gate, strlen(gate) + 1);
    fut_future *b = fut_submit_copy(ex, wait_for_file, gate, strlen(gate) + 1);
    fut_future *c = fut_submit_copy(ex, mark, ran, strlen(ran) + 1);
    CHECK(a && b && c);
    CHECK(fut_cancel(c) && fut_cancelled(c));
    touch(gate);
    void *v = NULL;
    CHECK(fut_result(a, FUT_FOREVER, &v) == 0 && I(v) == 1);
    CHECK(fut_result(b, FUT_FOREVER, &v) == 0 && I(v) == 1);
    CHECK(fut_result(c, 0, &v) == FUT_ECANCELLED);
    /* a task after C runs (the rank skipped nothing else) and C left no mark */
    fut_future *d = fut_submit(ex, square, P(5));
    CHECK(d && fut_result(d, FUT_FOREVER, &v) == 0 && I(v) == 25);
    CHECK(!exists(ran));
    fut_future_unref(a);
    fut_future_unref(b);
    fut_future_unref(c);
    fut_future_unref(d);
}

static void large_bytes(fut_executor *ex)
{
    size_t len = (size_t)64 << 20;
    unsigned char *in = malloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (unsigned char)(i * 31 + 7);
    fut_future *f = fut_submit_copy(ex, transform_bytes, in, len);
    void *v = NULL;
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0);
    CHECK(v && fut_bytes_len(v) == len);
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < len; i++)
        ok = ((unsigned char *)v)[i] == (unsigned char)(in[i] + 1);
    CHECK(ok);
    fut_future_unref(f);
    free(in);
}

static void *submitter(void *arg)
{
    fut_executor *ex = arg;
    int n = quick ? 100 : 400, bad = 0;
    fut_future **fs = malloc((size_t)n * sizeof *fs);
    for (int i = 0; i < n; i++)
        fs[i] = fut_submit(ex, square, P(i));
    for (int i = 0; i < n; i++) {
        void *v = NULL;
        if (!fs[i] || fut_result(fs[i], FUT_FOREVER, &v) != 0 || I(v) != (intptr_t)i * i)
            bad++;
        fut_future_unref(fs[i]);
    }
    free(fs);
    return P(bad);
}

static void threads(fut_executor *ex)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        CHECK(pthread_create(&t[i], NULL, submitter, ex) == 0);
    for (int i = 0; i < 8; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        CHECK(bad == NULL);
    }
}

/* Shutdown with pending work: cancel_futures cancels what is queued, the running task
 * finishes, and the worker ranks are released (the next scenario needs them). */
static void shutdown_pending(fut_executor *ex)
{
    char gate[128];
    path_in_dir(gate, sizeof gate, "gate-shutdown");
    enum { N = 20 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit_copy(ex, wait_for_file, gate, strlen(gate) + 1);
    CHECK(fut_shutdown(ex, false, true) == 0);
    CHECK(fut_submit(ex, square, P(1)) == NULL && errno == ESHUTDOWN);
    touch(gate);
    CHECK(fut_shutdown(ex, true, false) == 0);
    int cancelled = 0, finished = 0;
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        CHECK(fut_done(fs[i]));
        if (fut_cancelled(fs[i]))
            cancelled++;
        else if (fut_result(fs[i], 0, &v) == 0 && I(v) == 1)
            finished++;
        fut_future_unref(fs[i]);
    }
    CHECK(cancelled + finished == N);
    CHECK(cancelled >= N - 2);  /* one worker rank: at most two tasks left the queue */
}

/* Without cancel_futures, shutdown(wait) runs every pending task first. */
static void shutdown_drains(fut_executor *ex)
{
    enum { N = 50 };
    fut_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(ex, square, P(i));
    CHECK(fut_shutdown(ex, true, false) == 0);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        CHECK(fs[i] && fut_done(fs[i]) && fut_result(fs[i], 0, &v) == 0 && I(v) == (intptr_t)i * i);
        fut_future_unref(fs[i]);
    }
}

/* Every rank serves on after a task failed alone. */
static void ranks_serve_on(fut_executor *ex)
{
    enum { N = 40 };
    fut_future *fs[N];
    void *v = NULL;
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(ex, square, P(i));
    for (int i = 0; i < N; i++) {
        CHECK(fs[i] && fut_result(fs[i], FUT_FOREVER, &v) == 0 && I(v) == (intptr_t)i * i);
        fut_future_unref(fs[i]);
    }
    void *results[2] = { 0 };
    CHECK(fut_map(ex, square, (void *const[]){ P(3), P(1000) }, 2, results, FUT_FOREVER, 0) == 0);
    CHECK(I(results[0]) == 9 && I(results[1]) == 1000000);
    fut_future *f = fut_submit(ex, hello_bytes, P(5));
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0 && v && strcmp(v, "item 5") == 0);
    fut_future_unref(f);
}

/* Isolation through max_tasks_per_child alone (no timeout, so a slow crash report under
 * a sanitizer cannot turn into a timeout). */
static void isolation_crash(fut_executor *ex)
{
    void *v = NULL;
    fut_future *f = fut_submit(ex, crash, NULL);
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == FUT_EBROKEN);
    const char *message = f ? fut_exception_message(f) : NULL;
    /* "terminated by signal 11"; under AddressSanitizer, whose handler reports the SEGV,
     * the child exits with a status instead */
    CHECK(message && (strstr(message, "signal") || strstr(message, "exit")));
    fut_future_unref(f);
    ranks_serve_on(ex);
}

static void isolation_timeout(fut_executor *ex)
{
    void *v = NULL;
    fut_future *f = fut_submit(ex, sleep_long, NULL);
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == FUT_ETIMEDOUT && fut_done(f));
    CHECK(f && fut_exception_message(f) != NULL);
    fut_future_unref(f);
    ranks_serve_on(ex);
}

static void bad_input(fut_executor *ex)
{
    char stack_code[16] = { 0 };
    errno = 0;
    CHECK(fut_submit(ex, (fut_fn)(uintptr_t)stack_code, NULL) == NULL && errno == EINVAL);
    void *heap = malloc(64);
    errno = 0;
    CHECK(fut_submit(ex, (fut_fn)(uintptr_t)heap, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(fut_submit_copy(ex, (fut_fn)(uintptr_t)heap, "x", 1) == NULL && errno == EINVAL);
    free(heap);
    CHECK(fut_submit(ex, NULL, NULL) == NULL && errno == EINVAL);
    /* a function of an object only the root loaded */
    const char *plugin = getenv("FUT_MPI_PLUGIN");
    void *handle = plugin ? dlopen(plugin, RTLD_NOW) : NULL;
    CHECK(handle != NULL);
    fut_fn fn = handle ? (fut_fn)(uintptr_t)dlsym(handle, "plugin_task") : NULL;
    CHECK(fn != NULL);
    if (fn) {
        void *v = NULL;
        CHECK(fn(P(2)) == P(102));  /* it works here */
        fut_future *f = fut_submit(ex, fn, P(2));
        CHECK(f && fut_result(f, FUT_FOREVER, &v) == FUT_EINVAL);
        const char *message = f ? fut_exception_message(f) : NULL;
        CHECK(message && strstr(message, "mpi_plugin") && strstr(message, "not loaded"));
        fut_future_unref(f);
        /* the rank serves on */
        f = fut_submit(ex, square, P(6));
        CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0 && I(v) == 36);
        fut_future_unref(f);
    }
    /* handle stays open: the root's ELF table keeps its entry */
}

static void broken_by_initializer(fut_executor *ex)
{
    fut_future *f = fut_submit(ex, square, P(2));
    if (f) {
        CHECK(fut_result(f, FUT_FOREVER, NULL) == FUT_EBROKEN);
        CHECK(fut_exception_message(f) != NULL);
        fut_future_unref(f);
    } else {
        CHECK(errno == -FUT_EBROKEN);
    }
}

static void initializer_once(fut_executor *ex)
{
    fut_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = fut_submit(ex, initialized, NULL);
    for (int i = 0; i < 20; i++) {
        void *v = NULL;
        CHECK(fs[i] && fut_result(fs[i], FUT_FOREVER, &v) == 0 && I(v) == 1);
        fut_future_unref(fs[i]);
    }
    CHECK(initialized_ranks == 0);  /* never on the root */
}

static void clamped(fut_executor *ex)
{
    CHECK(fut_executor_max_workers(ex) == n_ranks - 1);
    fut_future *f = fut_submit(ex, square, P(11));
    void *v = NULL;
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0 && I(v) == 121);
    fut_future_unref(f);
}

/* An idle executor costs no CPU: the root's progress thread sleeps on a condition
 * variable, an idle worker rank polls with a backoff up to 10 ms. Spinning would use about
 * the whole second on a quiet machine; the bound is a twentieth of it. */
static void idle_cpu(fut_executor *ex)
{
    void *v = NULL;
    fut_future *f = fut_submit(ex, rank_cpu, NULL);
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0);
    fut_future_unref(f);
    double worker_before = (double)I(v) / 1e6, root_before = cpu_seconds();
    struct timespec second = { 1, 0 };
    nanosleep(&second, NULL);
    double root_used = cpu_seconds() - root_before;
    f = fut_submit(ex, rank_cpu, NULL);
    CHECK(f && fut_result(f, FUT_FOREVER, &v) == 0);
    fut_future_unref(f);
    double worker_used = (double)I(v) / 1e6 - worker_before;
    if (root_used >= 0.05 || worker_used >= 0.05)
        fprintf(stderr, "idle for 1 s: root used %.3f s of CPU, the worker rank %.3f s\n", root_used, worker_used);
    CHECK(root_used < 0.05);
    CHECK(worker_used < 0.05);
}

struct scenario {
    const char *name;
    void (*run)(fut_executor *ex);
    fut_pool_options opts;
    bool root_shuts_down;          /* the scenario shuts down itself before the free */
};

static const struct scenario scenarios[] = {
    { "basics", basics, { 0 }, false },
    { "map", map_chunks, { 0 }, false },
    { "as_completed", as_completed, { 0 }, false },
    { "cancel_pending", cancel_pending, { .max_workers = 1 }, false },
    { "large_bytes", large_bytes, { 0 }, false },
    { "threads", threads, { 0 }, false },
    { "shutdown_pending", shutdown_pending, { .max_workers = 1 }, true },
    { "shutdown_drains", shutdown_drains, { 0 }, true },
    { "isolation_crash", isolation_crash, { .max_tasks_per_child = 50 }, false },
    { "isolation_timeout", isolation_timeout, { .task_timeout = 1 }, false },
    { "bad_input", bad_input, { 0 }, false },
    { "initializer_fails", broken_by_initializer, { .initializer = failing_initializer }, false },
    { "initializer_once", initializer_once, { .initializer = counting_initializer }, false },
    { "max_workers_clamped", clamped, { .max_workers = 64 }, false },
    { "idle_cpu", idle_cpu, { .max_workers = 1 }, false },
};

int main(void)
{
    quick = getenv("FUT_TEST_QUICK") != NULL;
    fut_executor *ex = (fut_executor *)1;
    /* a communicator of size 1 has no worker; this first call also initialises MPI */
    CHECK(fut_mpi_pool_new(MPI_COMM_SELF, 0, NULL, &ex) == FUT_EINVAL && ex == NULL);
    CHECK(strstr(fut_mpi_last_error(), "size 1") != NULL);
    int initialized = 0;
    MPI_Initialized(&initialized);
    CHECK(initialized);
    int provided = 0;
    MPI_Query_thread(&provided);
    CHECK(provided >= MPI_THREAD_SERIALIZED);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    CHECK(n_ranks >= 3);

    /* bad arguments, rejected collectively */
    CHECK(fut_mpi_pool_new(MPI_COMM_WORLD, 0, NULL, NULL) == FUT_EINVAL);
    CHECK(fut_mpi_pool_new(MPI_COMM_WORLD, n_ranks, NULL, &ex) == FUT_EINVAL && ex == NULL);
    CHECK(fut_mpi_pool_new(MPI_COMM_WORLD, 0, &(fut_pool_options){ .task_timeout = -1 }, &ex) == FUT_EINVAL);

    if (my_rank == 0) {
        strcpy(dir, "/tmp/fut-mpi-test-XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    for (size_t s = 0; s < sizeof scenarios / sizeof *scenarios; s++) {
        const struct scenario *sc = &scenarios[s];
        int before = failures;
        ex = (fut_executor *)1;
        int rc = fut_mpi_pool_new(MPI_COMM_WORLD, 0, &sc->opts, &ex);
        CHECK(rc == 0);
        if (my_rank == 0) {
            CHECK(ex != NULL);
            if (ex)
                sc->run(ex);
            fut_executor_free(ex);
            printf("%s %s\n", failures == before ? "PASS:" : "FAIL:", sc->name);
            fflush(stdout);
        } else {
            CHECK(ex == NULL);
        }
        (void)sc->root_shuts_down;
    }

    int total = 0;
    MPI_Reduce(&failures, &total, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (my_rank == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        printf("%d failed check(s) on %d ranks\n", total, n_ranks);
    }
    /* MPI is finalised at exit: fut_mpi_pool_new initialised it */
    return my_rank == 0 && total ? 1 : 0;
}
