/* SPDX-License-Identifier: MIT */
/*
 * The thread pool: sizing, workers on demand, names, initializers, shutdown, submitting
 * from tasks and from many threads, scale, and no leaked threads or fds.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

/* A task that counts itself as started, then blocks on the gate. */
struct hold {
    struct tu_gate gate;
    struct tu_counter started;
};

static void hold_init(struct hold *h)
{
    tu_gate_init(&h->gate);
    tu_counter_init(&h->started);
}

static void hold_destroy(struct hold *h)
{
    tu_gate_destroy(&h->gate);
    tu_counter_destroy(&h->started);
}

static void *held_task(void *arg)
{
    struct hold *h = arg;
    tu_counter_add(&h->started, 1);
    tu_gate_wait(&h->gate);
    return TU_P(1000);
}

static fut_executor *pool_with(int max_workers)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = max_workers });
    ck_assert_ptr_nonnull(ex);
    return ex;
}

/* A one-worker pool whose worker runs fs[0], held by h, with fs[1 .. n) queued behind it
 * (each returns its index + 1). */
static fut_executor *held_pool(struct hold *h, fut_future **fs, int n)
{
    fut_executor *ex = pool_with(1);
    hold_init(h);
    fs[0] = fut_submit(ex, held_task, h);
    for (int i = 1; i < n; i++)
        fs[i] = fut_submit(ex, tu_plus_one, TU_P(i));
    tu_counter_wait(&h->started, 1);
    return ex;
}

static void assert_result(fut_future *f, intptr_t expected)
{
    void *out = NULL;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_int_eq(TU_I(out), expected);
}

static void run_and_check(fut_executor *ex, fut_fn fn, void *arg, intptr_t expected)
{
    fut_future *f = fut_submit(ex, fn, arg);
    assert_result(f, expected);
    fut_future_unref(f);
}

/* ---- sizing and workers ------------------------------------------------------------ */

static int expected_default(void)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int cpus = CPU_COUNT(&set);
    return cpus + 4 < 32 ? cpus + 4 : 32;
}

START_TEST(test_default_max_workers)
{
    fut_executor *a = fut_thread_pool_new(NULL);
    fut_executor *b = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 0 });
    ck_assert_int_eq(fut_executor_max_workers(a), expected_default());
    ck_assert_int_eq(fut_executor_max_workers(b), expected_default());
    fut_executor_free(a);
    fut_executor_free(b);

    fut_executor *c = pool_with(3), *d = pool_with(100);
    ck_assert_int_eq(fut_executor_max_workers(c), 3);
    ck_assert_int_eq(fut_executor_max_workers(d), 100);  /* explicit values are not capped */
    fut_executor_free(c);
    fut_executor_free(d);
}
END_TEST

START_TEST(test_default_follows_affinity)
{
    /* the processors this process may run on, not those online: pin to one */
    cpu_set_t saved, one;
    ck_assert_int_eq(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &saved)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    fut_executor *ex = fut_thread_pool_new(NULL);
    ck_assert_int_eq(sched_setaffinity(0, sizeof saved, &saved), 0);
    ck_assert_int_eq(fut_executor_max_workers(ex), 5);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_workers_on_demand_and_reused)
{
    int baseline = tu_thread_baseline();
    fut_executor *ex = fut_thread_pool_new(NULL);
    ck_assert_int_eq(tu_count_threads(), baseline);  /* no worker before the first task */
    for (int i = 0; i < 100; i++)
        run_and_check(ex, tu_plus_one, TU_P(i), i + 1);
    ck_assert_int_eq(tu_count_threads(), baseline + 1);
    fut_executor_free(ex);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
}
END_TEST

/*
 * A task that holds its worker for good must not strand the task submitted next: the
 * submit has to count that worker busy and start the second thread. A worker popping
 * the first task once uncounted it as queued before it counted itself busy, and a submit
 * between the two saw an idle worker and started none (the next task never ran). The
 * window is a few instructions wide, hence the rounds.
 */
START_TEST(test_busy_worker_not_counted_idle)
{
    size_t rounds = tu_scale(3000, 300);
    for (size_t r = 0; r < rounds; r++) {
        fut_executor *ex = pool_with(2);
        struct tu_gate gate;
        tu_gate_init(&gate);
        fut_future *held = fut_submit(ex, tu_wait_gate, &gate);
        fut_future *next = fut_submit(ex, tu_plus_one, TU_P(r));
        TU_REQUIRE(held && next, "submit");
        void *out = NULL;
        int rc = fut_result(next, 10.0, &out);
        tu_gate_open(&gate);
        fut_executor_free(ex);
        TU_REQUIRE(rc == 0 && out == TU_P(r + 1), "round %zu: rc %d", r, rc);
        fut_future_unref(held);
        fut_future_unref(next);
        tu_gate_destroy(&gate);
    }
}
END_TEST

START_TEST(test_max_workers_bound)
{
    enum { WORKERS = 3, TASKS = 10 };
    int baseline = tu_thread_baseline();
    fut_executor *ex = pool_with(WORKERS);
    struct hold h;
    hold_init(&h);
    fut_future *fs[TASKS];
    for (int i = 0; i < TASKS; i++)
        fs[i] = fut_submit(ex, held_task, &h);
    tu_counter_wait(&h.started, WORKERS);
    ck_assert_int_eq(tu_count_threads(), baseline + WORKERS);
    ck_assert_int_eq(tu_counter_get(&h.started), WORKERS);  /* the rest wait in the queue */
    /* handed to a worker = running; the others stay pending */
    int running = 0;
    for (int i = 0; i < TASKS; i++) {
        ck_assert(!fut_done(fs[i]));
        running += fut_running(fs[i]);
    }
    ck_assert_int_eq(running, WORKERS);
    tu_gate_open(&h.gate);
    for (int i = 0; i < TASKS; i++) {
        assert_result(fs[i], 1000);
        fut_future_unref(fs[i]);
    }
    ck_assert_int_eq(tu_counter_get(&h.started), TASKS);
    ck_assert_int_eq(tu_count_threads(), baseline + WORKERS);
    fut_executor_free(ex);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
    hold_destroy(&h);
}
END_TEST

/* Names of this process's threads that start with prefix, sorted. */
static int thread_names(const char *prefix, char names[][16], int max)
{
    DIR *dir = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[16] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *file = fopen(path, "r");
        if (!file)
            continue;  /* a thread that just exited */
        if (fgets(name, sizeof name, file))
            name[strcspn(name, "\n")] = '\0';
        fclose(file);
        if (strncmp(name, prefix, strlen(prefix)) == 0 && n < max)
            strcpy(names[n++], name);
    }
    closedir(dir);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    return n;
}

START_TEST(test_thread_names)
{
    fut_executor *ex = fut_thread_pool_new(
        &(fut_pool_options){ .max_workers = 3, .thread_name_prefix = "tpool" });
    struct hold h;
    hold_init(&h);
    fut_future *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = fut_submit(ex, held_task, &h);
    tu_counter_wait(&h.started, 3);
    char names[8][16];
    ck_assert_int_eq(thread_names("tpool", names, 8), 3);
    ck_assert_str_eq(names[0], "tpool_0");
    ck_assert_str_eq(names[1], "tpool_1");
    ck_assert_str_eq(names[2], "tpool_2");
    tu_gate_open(&h.gate);
    for (int i = 0; i < 3; i++) {
        assert_result(fs[i], 1000);
        fut_future_unref(fs[i]);
    }
    fut_executor_free(ex);
    hold_destroy(&h);
}
END_TEST

static void *own_name(void *arg)
{
    char *name = arg;
    pthread_getname_np(pthread_self(), name, 16);
    return NULL;
}

START_TEST(test_thread_name_long_prefix)
{
    /* Linux keeps 15 bytes of a name: the number must survive, the prefix is shortened */
    const char *prefix = "a_rather_long_thread_prefix";
    fut_executor *ex = fut_thread_pool_new(
        &(fut_pool_options){ .max_workers = 1, .thread_name_prefix = prefix });
    char name[16] = "";
    run_and_check(ex, own_name, name, 0);
    fut_executor_free(ex);
    size_t len = strlen(name);
    ck_assert_uint_ge(len, 3);
    ck_assert_str_eq(name + len - 2, "_0");
    ck_assert(strncmp(name, prefix, len - 2) == 0);
}
END_TEST

/* ---- initializers ------------------------------------------------------------------- */

struct init_count {
    atomic_int calls;
    int fail;                      /* returned by the initializer */
    struct tu_gate *hold;          /* when set, the initializer waits on it first */
};

static _Thread_local int inits_in_this_thread;

static int count_init(void *arg)
{
    struct init_count *c = arg;
    if (c->hold)
        tu_gate_wait(c->hold);
    atomic_fetch_add(&c->calls, 1);
    inits_in_this_thread++;
    return c->fail;
}

static void *report_inits(void *arg)
{
    held_task(arg);
    return TU_P(inits_in_this_thread);
}

START_TEST(test_initializer_once_per_worker)
{
    struct init_count c = { .fail = 0 };
    struct hold h;
    hold_init(&h);
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){
        .max_workers = 3, .initializer = count_init, .initarg = &c });
    fut_future *fs[30];
    for (int i = 0; i < 30; i++)
        fs[i] = fut_submit(ex, report_inits, &h);
    tu_counter_wait(&h.started, 3);
    tu_gate_open(&h.gate);
    for (int i = 0; i < 30; i++) {
        assert_result(fs[i], 1);  /* the initializer ran once in this worker, before it */
        fut_future_unref(fs[i]);
    }
    fut_executor_free(ex);
    ck_assert_int_eq(atomic_load(&c.calls), 3);
    ck_assert_int_eq(inits_in_this_thread, 0);  /* never in the submitting thread */
    hold_destroy(&h);
}
END_TEST

static void *count_runs(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return NULL;
}

START_TEST(test_initializer_failure_breaks_pool)
{
    int baseline = tu_thread_baseline();
    struct tu_gate hold;
    tu_gate_init(&hold);
    struct init_count c = { .fail = -1, .hold = &hold };
    atomic_int runs = 0;
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){
        .max_workers = 1, .initializer = count_init, .initarg = &c });
    /* the initializer is held: these are queued while the pool still looks healthy */
    fut_future *fs[3];
    for (int i = 0; i < 3; i++) {
        fs[i] = fut_submit(ex, count_runs, &runs);
        ck_assert_ptr_nonnull(fs[i]);
    }
    tu_gate_open(&hold);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, NULL), FUT_EBROKEN);
        ck_assert_int_eq(fut_exception(fs[i], 0), FUT_EBROKEN);
        const char *message = fut_exception_message(fs[i]);
        ck_assert_ptr_nonnull(message);
        ck_assert_uint_gt(strlen(message), 0);
        fut_future_unref(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&runs), 0);

    errno = 0;
    ck_assert_ptr_null(fut_submit(ex, count_runs, &runs));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    errno = 0;
    ck_assert_ptr_null(fut_submit_copy(ex, tu_identity, "x", 2));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    void *result = TU_P(5);
    void *args[1] = { NULL };
    ck_assert_int_eq(fut_map(ex, tu_identity, args, 1, &result, FUT_FOREVER, 1), FUT_EBROKEN);
    ck_assert_ptr_null(result);
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);
    fut_executor_free(ex);
    ck_assert_int_eq(atomic_load(&runs), 0);
    ck_assert_int_eq(atomic_load(&c.calls), 1);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
    tu_gate_destroy(&hold);
}
END_TEST

/* ---- shutdown ---------------------------------------------------------------------- */

struct shutdown_call {
    fut_executor *ex;
    bool cancel_futures;
    struct tu_counter returned;
};

static void *call_shutdown(void *arg)
{
    struct shutdown_call *s = arg;
    ck_assert_int_eq(fut_shutdown(s->ex, true, s->cancel_futures), 0);
    tu_counter_add(&s->returned, 1);
    return NULL;
}

static void assert_submit_refused(fut_executor *ex)
{
    errno = 0;
    ck_assert_ptr_null(fut_submit(ex, tu_identity, NULL));
    ck_assert_int_eq(errno, ESHUTDOWN);
    errno = 0;
    ck_assert_ptr_null(fut_submit_copy(ex, tu_identity, "abc", 4));
    ck_assert_int_eq(errno, ESHUTDOWN);
}

START_TEST(test_shutdown_wait_cancel_futures)
{
    enum { TASKS = 6 };
    int baseline = tu_thread_baseline();
    struct hold h;
    fut_future *fs[TASKS];
    fut_executor *ex = held_pool(&h, fs, TASKS);

    struct shutdown_call s = { .ex = ex, .cancel_futures = true };
    tu_counter_init(&s.returned);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, call_shutdown, &s), 0);
    /* the pending ones are cancelled while the running one is still held */
    for (int i = 1; i < TASKS; i++)
        ck_assert_int_eq(fut_result(fs[i], FUT_FOREVER, NULL), FUT_ECANCELLED);
    ck_assert(fut_running(fs[0]));
    ck_assert_int_eq(tu_counter_get(&s.returned), 0);  /* wait: it waits for the running one */
    assert_submit_refused(ex);
    tu_gate_open(&h.gate);
    pthread_join(t, NULL);
    ck_assert_int_eq(tu_counter_get(&s.returned), 1);
    ck_assert(fut_done(fs[0]));  /* completed before shutdown returned */
    assert_result(fs[0], 1000);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);  /* workers and our thread joined */
    ck_assert_int_eq(fut_shutdown(ex, true, true), 0);  /* twice: harmless */
    assert_submit_refused(ex);
    fut_executor_free(ex);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
    for (int i = 0; i < TASKS; i++)
        fut_future_unref(fs[i]);
    hold_destroy(&h);
    tu_counter_destroy(&s.returned);
}
END_TEST

START_TEST(test_concurrent_shutdowns)
{
    /* two threads shut down with wait at once: neither returns before the work is done */
    int baseline = tu_thread_baseline();
    fut_executor *ex = pool_with(2);
    struct hold h;
    hold_init(&h);
    fut_future *f = fut_submit(ex, held_task, &h);
    tu_counter_wait(&h.started, 1);
    struct shutdown_call s = { .ex = ex };
    tu_counter_init(&s.returned);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, call_shutdown, &s), 0);
    ck_assert_msg(!tu_counter_wait_for(&s.returned, 1, 0.1), "shutdown(wait) returned early");
    ck_assert(!fut_done(f));
    tu_gate_open(&h.gate);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(tu_counter_get(&s.returned), 2);
    ck_assert(fut_done(f));
    assert_result(f, 1000);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
    fut_executor_free(ex);
    fut_future_unref(f);
    hold_destroy(&h);
    tu_counter_destroy(&s.returned);
}
END_TEST

START_TEST(test_shutdown_nowait_cancel_futures)
{
    enum { TASKS = 5 };
    struct hold h;
    fut_future *fs[TASKS];
    fut_executor *ex = held_pool(&h, fs, TASKS);
    /* without wait it returns at once (the held task would block it otherwise) */
    ck_assert_int_eq(fut_shutdown(ex, false, true), 0);
    for (int i = 1; i < TASKS; i++)
        ck_assert(fut_cancelled(fs[i]));
    ck_assert(fut_running(fs[0]));
    assert_submit_refused(ex);
    tu_gate_open(&h.gate);
    assert_result(fs[0], 1000);
    fut_executor_free(ex);
    for (int i = 0; i < TASKS; i++)
        fut_future_unref(fs[i]);
    hold_destroy(&h);
}
END_TEST

START_TEST(test_shutdown_runs_pending_work)
{
    enum { TASKS = 8 };
    int baseline = tu_thread_baseline();
    struct hold h;
    fut_future *fs[TASKS];
    fut_executor *ex = held_pool(&h, fs, TASKS);
    ck_assert_int_eq(fut_shutdown(ex, false, false), 0);
    for (int i = 1; i < TASKS; i++)
        ck_assert(!fut_done(fs[i]));  /* pending work is kept */
    assert_submit_refused(ex);
    tu_gate_open(&h.gate);
    ck_assert_int_eq(fut_shutdown(ex, true, false), 0);
    /* with wait: everything ran, and the workers are gone */
    ck_assert(fut_done(fs[0]));
    assert_result(fs[0], 1000);
    for (int i = 1; i < TASKS; i++) {
        ck_assert(fut_done(fs[i]));
        assert_result(fs[i], i + 1);
    }
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
    fut_executor_free(ex);
    for (int i = 0; i < TASKS; i++)
        fut_future_unref(fs[i]);
    hold_destroy(&h);
}
END_TEST

START_TEST(test_shutdown_unused_pool)
{
    int baseline = tu_thread_baseline(), fds = tu_count_fds();
    fut_executor *ex = fut_thread_pool_new(NULL);
    ck_assert_int_eq(fut_shutdown(ex, true, true), 0);
    ck_assert_int_eq(fut_shutdown(ex, false, false), 0);
    assert_submit_refused(ex);
    fut_executor_free(ex);
    fut_executor_free(fut_thread_pool_new(NULL));  /* never used, never shut down */
    ck_assert_int_eq(tu_count_threads(), baseline);
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/*
 * A task may shut down its own pool with wait (it cannot join itself). Its worker must
 * still be joined by the final free: fut_executor_free may not return (and free the pool)
 * while that worker is still running a done callback.
 */
struct self_shutdown {
    fut_executor *ex;
    struct tu_gate start, release;
    struct tu_counter freed;
};

static void *shutdown_own_pool(void *arg)
{
    struct self_shutdown *s = arg;
    tu_gate_wait(&s->start);
    return TU_P(fut_shutdown(s->ex, true, false));
}

static void hold_worker(fut_future *f, void *arg)
{
    struct self_shutdown *s = arg;
    tu_gate_wait(&s->release);
}

static void *free_pool(void *arg)
{
    struct self_shutdown *s = arg;
    fut_executor_free(s->ex);
    tu_counter_add(&s->freed, 1);
    return NULL;
}

START_TEST(test_task_shuts_down_own_pool)
{
    int baseline = tu_thread_baseline();
    struct self_shutdown s = { .ex = pool_with(1) };
    tu_gate_init(&s.start);
    tu_gate_init(&s.release);
    tu_counter_init(&s.freed);
    fut_future *f = fut_submit(s.ex, shutdown_own_pool, &s);
    ck_assert_int_eq(fut_add_done_callback(f, hold_worker, &s), 0);
    tu_gate_open(&s.start);
    ck_assert_int_eq(fut_exception(f, FUT_FOREVER), 0);
    assert_submit_refused(s.ex);

    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, free_pool, &s), 0);
    /* the worker is held in the callback: free must still be waiting for it */
    ck_assert_msg(!tu_counter_wait_for(&s.freed, 1, 0.2),
                  "fut_executor_free returned while a worker was still running");
    tu_gate_open(&s.release);
    pthread_join(t, NULL);
    ck_assert_int_eq(tu_counter_get(&s.freed), 1);
    ck_assert_int_eq(tu_settle_threads(baseline), baseline);
    fut_future_unref(f);
    tu_gate_destroy(&s.start);
    tu_gate_destroy(&s.release);
    tu_counter_destroy(&s.freed);
}
END_TEST

/* Cancelling races with a worker taking the task: exactly one side wins, every time. */
static void *mark_ran(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    return TU_P(7);
}

START_TEST(test_cancel_race)
{
    enum { ROUNDS = 2000 };
    static atomic_int ran[ROUNDS];
    fut_executor *ex = pool_with(2);
    fut_future **fs = malloc(ROUNDS * sizeof *fs);
    bool *cancelled = malloc(ROUNDS * sizeof *cancelled);
    for (int i = 0; i < ROUNDS; i++) {
        atomic_store(&ran[i], 0);
        fs[i] = fut_submit(ex, mark_ran, &ran[i]);
        cancelled[i] = fut_cancel(fs[i]);
    }
    fut_executor_free(ex);  /* everything accepted has run or was cancelled */
    for (int i = 0; i < ROUNDS; i++) {
        void *out = NULL;
        int rc = fut_result(fs[i], 0, &out);
        TU_REQUIRE(cancelled[i] == fut_cancelled(fs[i]), "round %d: cancel said %d", i, cancelled[i]);
        if (cancelled[i])
            TU_REQUIRE(rc == FUT_ECANCELLED && !atomic_load(&ran[i]), "round %d: cancelled but ran", i);
        else
            TU_REQUIRE(rc == 0 && out == TU_P(7) && atomic_load(&ran[i]), "round %d: rc %d", i, rc);
        fut_future_unref(fs[i]);
    }
    free(fs);
    free(cancelled);
}
END_TEST

/* ---- submitting from tasks and threads ---------------------------------------------- */

static void *submit_and_wait(void *arg)
{
    fut_executor *ex = arg;
    fut_future *inner = fut_submit(ex, tu_plus_one, TU_P(41));
    if (!inner)
        return TU_P(-1);
    void *out = NULL;
    int rc = fut_result(inner, FUT_FOREVER, &out);
    fut_future_unref(inner);
    return rc ? TU_P(rc) : out;
}

START_TEST(test_task_submits_to_own_pool)
{
    fut_executor *ex = pool_with(2);
    for (int i = 0; i < 20; i++) {
        fut_future *f = fut_submit(ex, submit_and_wait, ex);
        assert_result(f, 42);
        fut_future_unref(f);
    }
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_many_tasks)
{
    /* none lost: every task runs once and its own result comes back */
    const size_t total = tu_scale(1000000, 20000), batch = 10000;
    fut_executor *ex = fut_thread_pool_new(NULL);
    fut_future **fs = malloc(batch * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    size_t checked = 0;
    for (size_t start = 0; start < total; start += batch) {
        for (size_t i = 0; i < batch; i++) {
            fs[i] = fut_submit(ex, tu_plus_one, TU_P(start + i));
            TU_REQUIRE(fs[i], "submit %zu failed: errno %d", start + i, errno);
        }
        for (size_t i = 0; i < batch; i++) {
            void *out = NULL;
            int rc = fut_result(fs[i], FUT_FOREVER, &out);
            TU_REQUIRE(rc == 0 && TU_I(out) == (intptr_t)(start + i + 1),
                       "task %zu: rc %d, result %ld", start + i, rc, (long)TU_I(out));
            fut_future_unref(fs[i]);
            checked++;
        }
    }
    ck_assert_uint_eq(checked, total);
    free(fs);
    fut_executor_free(ex);
}
END_TEST

enum { SUBMITTERS = 8 };

struct submitter {
    fut_executor *ex;
    struct tu_gate *start;
    int id;
    size_t n;
    fut_future **fs;
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    tu_gate_wait(s->start);
    for (size_t i = 0; i < s->n; i++)
        s->fs[i] = fut_submit(s->ex, tu_plus_one, TU_P(s->id * 10000000 + (intptr_t)i));
    return NULL;
}

START_TEST(test_concurrent_submitters)
{
    const size_t per_thread = tu_scale(20000, 1000);
    fut_executor *ex = pool_with(4);
    struct tu_gate start;
    tu_gate_init(&start);
    struct submitter subs[SUBMITTERS];
    pthread_t threads[SUBMITTERS];
    for (int t = 0; t < SUBMITTERS; t++) {
        subs[t] = (struct submitter){ ex, &start, t, per_thread, calloc(per_thread, sizeof(fut_future *)) };
        ck_assert_ptr_nonnull(subs[t].fs);
        ck_assert_int_eq(pthread_create(&threads[t], NULL, submit_many, &subs[t]), 0);
    }
    tu_gate_open(&start);
    for (int t = 0; t < SUBMITTERS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < SUBMITTERS; t++) {
        for (size_t i = 0; i < per_thread; i++) {
            void *out = NULL;
            TU_REQUIRE(subs[t].fs[i], "thread %d: submit %zu failed", t, i);
            int rc = fut_result(subs[t].fs[i], FUT_FOREVER, &out);
            TU_REQUIRE(rc == 0 && TU_I(out) == t * 10000000 + (intptr_t)i + 1,
                       "thread %d task %zu: rc %d, result %ld", t, i, rc, (long)TU_I(out));
            fut_future_unref(subs[t].fs[i]);
        }
        free(subs[t].fs);
    }
    fut_executor_free(ex);
    tu_gate_destroy(&start);
}
END_TEST

enum { RACERS = 4 };

struct racer {
    fut_executor *ex;
    struct tu_counter *submitted;
    int id;
    fut_future **fs;
    size_t n, cap;
    int refused_errno;
};

/* Submits until refused; every refusal must say ESHUTDOWN. */
static void *race_submit(void *arg)
{
    struct racer *r = arg;
    for (;;) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 256;
            r->fs = realloc(r->fs, r->cap * sizeof *r->fs);
            TU_REQUIRE(r->fs, "out of memory");
        }
        errno = 0;
        fut_future *f = fut_submit(r->ex, tu_plus_one, TU_P(r->id * 10000000 + (intptr_t)r->n));
        if (!f) {
            r->refused_errno = errno;
            return NULL;
        }
        r->fs[r->n++] = f;
        tu_counter_add(r->submitted, 1);
    }
}

static void race_round(bool cancel_futures)
{
    fut_executor *ex = pool_with(3);
    struct tu_counter submitted;
    tu_counter_init(&submitted);
    struct racer racers[RACERS];
    pthread_t threads[RACERS];
    for (int t = 0; t < RACERS; t++) {
        racers[t] = (struct racer){ .ex = ex, .submitted = &submitted, .id = t };
        ck_assert_int_eq(pthread_create(&threads[t], NULL, race_submit, &racers[t]), 0);
    }
    tu_counter_wait(&submitted, RACERS * 20);  /* shut down while they are at it */
    ck_assert_int_eq(fut_shutdown(ex, true, cancel_futures), 0);
    for (int t = 0; t < RACERS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < RACERS; t++) {
        struct racer *r = &racers[t];
        ck_assert_int_eq(r->refused_errno, ESHUTDOWN);
        for (size_t i = 0; i < r->n; i++) {
            /* accepted before shutdown: done once shutdown(wait) returned */
            fut_future *f = r->fs[i];
            TU_REQUIRE(fut_done(f), "racer %d: accepted task %zu not done after shutdown", t, i);
            if (!cancel_futures || !fut_cancelled(f)) {
                void *out = NULL;
                int rc = fut_result(f, 0, &out);
                TU_REQUIRE(rc == 0 && TU_I(out) == t * 10000000 + (intptr_t)i + 1,
                           "racer %d task %zu: rc %d, result %ld", t, i, rc, (long)TU_I(out));
            }
            fut_future_unref(f);
        }
        free(r->fs);
    }
    fut_executor_free(ex);
    tu_counter_destroy(&submitted);
}

START_TEST(test_shutdown_race)
{
    for (int round = 0; round < 10; round++)
        race_round(round % 2 == 1);
}
END_TEST

START_TEST(test_idle_workers_sleep)
{
    /* idle workers park: 0.2 s with four idle workers costs the process little CPU */
    fut_executor *ex = pool_with(4);
    struct hold h;
    hold_init(&h);
    fut_future *fs[4];
    for (int i = 0; i < 4; i++)
        fs[i] = fut_submit(ex, held_task, &h);
    tu_counter_wait(&h.started, 4);
    tu_gate_open(&h.gate);
    for (int i = 0; i < 4; i++) {
        assert_result(fs[i], 1000);
        fut_future_unref(fs[i]);
    }
    struct timespec before, after;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &before);
    tu_sleep(0.2);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &after);
    double used = (double)(after.tv_sec - before.tv_sec) + (double)(after.tv_nsec - before.tv_nsec) / 1e9;
    ck_assert_double_lt(used, 0.1);
    fut_executor_free(ex);
    hold_destroy(&h);
}
END_TEST

/* ---- leaks -------------------------------------------------------------------------- */

START_TEST(test_no_leaked_fds_or_threads)
{
    int fds = tu_count_fds(), threads = tu_thread_baseline();
    for (int round = 0; round < 3; round++) {
        fut_executor *ex = pool_with(4);
        struct hold h;
        hold_init(&h);
        fut_future *fs[50];
        for (int i = 0; i < 50; i++)
            fs[i] = fut_submit(ex, held_task, &h);
        tu_counter_wait(&h.started, 4);  /* all four workers exist */
        ck_assert_int_eq(tu_count_threads(), threads + 4);
        tu_gate_open(&h.gate);
        fut_executor_free(ex);
        ck_assert_int_eq(tu_count_fds(), fds);
        ck_assert_int_eq(tu_settle_threads(threads), threads);
        for (int i = 0; i < 50; i++) {
            assert_result(fs[i], 1000);
            fut_future_unref(fs[i]);
        }
        hold_destroy(&h);
    }
}
END_TEST

/* ---- fut_submit_copy ----------------------------------------------------------------- */

struct record {
    int number;
    char text[24];
};

/* Reports what the private copy holds once the task may run: number + text length. */
static void *read_copy(void *arg)
{
    const struct record *r = arg;
    if (!r)
        return TU_P(-1);
    return TU_P(r->number * 100 + (intptr_t)strlen(r->text));
}

START_TEST(test_submit_copy_taken_at_submission)
{
    fut_executor *ex = pool_with(1);
    struct hold h;
    hold_init(&h);
    fut_future *blocker = fut_submit(ex, held_task, &h);
    tu_counter_wait(&h.started, 1);
    /* queued behind the held task: they run after the caller changed and freed its buffer */
    fut_future *fs[5];
    for (int i = 0; i < 5; i++) {
        struct record *r = malloc(sizeof *r);
        r->number = i + 1;
        snprintf(r->text, sizeof r->text, "%.*s", i, "abcdefgh");
        fs[i] = fut_submit_copy(ex, read_copy, r, sizeof *r);
        ck_assert_ptr_nonnull(fs[i]);
        r->number = 99;
        strcpy(r->text, "overwritten!");
        free(r);
    }
    tu_gate_open(&h.gate);
    for (int i = 0; i < 5; i++) {
        assert_result(fs[i], (i + 1) * 100 + i);
        fut_future_unref(fs[i]);
    }
    assert_result(blocker, 1000);
    fut_future_unref(blocker);
    fut_executor_free(ex);
    hold_destroy(&h);
}
END_TEST

static void *arg_address(void *arg)
{
    return arg;
}

START_TEST(test_submit_copy_private_and_empty)
{
    fut_executor *ex = pool_with(2);
    struct record r = { 7, "x" };
    fut_future *f = fut_submit_copy(ex, arg_address, &r, sizeof r);
    void *seen = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &seen), 0);
    ck_assert_ptr_nonnull(seen);
    ck_assert_ptr_ne(seen, &r);  /* a private copy, not the caller's buffer */
    fut_future_unref(f);

    /* len 0: the task gets NULL, whatever pointer was given */
    f = fut_submit_copy(ex, arg_address, &r, 0);
    seen = TU_P(1);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &seen), 0);
    ck_assert_ptr_null(seen);
    fut_future_unref(f);
    f = fut_submit_copy(ex, arg_address, NULL, 0);
    seen = TU_P(1);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &seen), 0);
    ck_assert_ptr_null(seen);
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

/* Resident memory in KiB (/proc/self/statm). */
static long resident_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Under valgrind and the sanitizers futures come from malloc, whose memory is not the
 * library's to give back. */
static bool futures_from_malloc(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload");
}

static void *return_arg(void *arg)
{
    return arg;
}

/* A batch's futures, once released and their pool freed, give their memory back to the
 * system (issue 10): 200,000 futures are 12.8 MB; a few slabs may stay for reuse. */
START_TEST(test_freed_batch_returns_memory)
{
    if (futures_from_malloc())
        return;
    size_t n = 200000;
    fut_future **fs = malloc(n * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    memset(fs, 0, n * sizeof *fs);  /* resident before the baseline */
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 });
    ck_assert_ptr_nonnull(ex);
    long before = resident_kib();
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_nonnull(fs[i] = fut_submit(ex, return_arg, NULL));
    size_t n_done = 0;
    ck_assert_int_eq(fut_wait(fs, n, FUT_FOREVER, FUT_ALL_COMPLETED, &n_done), 0);
    ck_assert_uint_eq(n_done, n);
    long peak = resident_kib();
    for (size_t i = 0; i < n; i++)
        fut_future_unref(fs[i]);
    fut_executor_free(ex);
    long after = resident_kib();
    free(fs);
    ck_assert_msg(peak - before >= 10000, "the batch took %ld KiB, not its futures' 12.8 MB",
                  peak - before);
    ck_assert_msg(after - before < 4000, "%ld KiB of the batch's %ld KiB kept after free",
                  after - before, peak - before);
}
END_TEST

static Suite *thread_pool_suite(void)
{
    Suite *s = suite_create("thread_pool");
    TCase *tc = tu_tcase(s, "workers", 30);
    tcase_add_test(tc, test_default_max_workers);
    tcase_add_test(tc, test_default_follows_affinity);
    tcase_add_test(tc, test_workers_on_demand_and_reused);
    tcase_add_test(tc, test_busy_worker_not_counted_idle);
    tcase_add_test(tc, test_max_workers_bound);
    tcase_add_test(tc, test_thread_names);
    tcase_add_test(tc, test_thread_name_long_prefix);

    tc = tu_tcase(s, "initializer", 30);
    tcase_add_test(tc, test_initializer_once_per_worker);
    tcase_add_test(tc, test_initializer_failure_breaks_pool);

    tc = tu_tcase(s, "shutdown", 30);
    tcase_add_test(tc, test_shutdown_wait_cancel_futures);
    tcase_add_test(tc, test_shutdown_nowait_cancel_futures);
    tcase_add_test(tc, test_concurrent_shutdowns);
    tcase_add_test(tc, test_shutdown_runs_pending_work);
    tcase_add_test(tc, test_shutdown_unused_pool);
    tcase_add_test(tc, test_shutdown_race);
    tcase_add_test(tc, test_task_shuts_down_own_pool);
    tcase_add_test(tc, test_cancel_race);

    tc = tu_tcase(s, "submit", 120);
    tcase_add_test(tc, test_task_submits_to_own_pool);
    tcase_add_test(tc, test_many_tasks);
    tcase_add_test(tc, test_concurrent_submitters);
    tcase_add_test(tc, test_submit_copy_taken_at_submission);
    tcase_add_test(tc, test_submit_copy_private_and_empty);

    tc = tu_tcase(s, "leaks", 30);
    tcase_add_test(tc, test_no_leaked_fds_or_threads);
    tcase_add_test(tc, test_idle_workers_sleep);
    tcase_add_test(tc, test_freed_batch_returns_memory);
    return s;
}

int main(void)
{
    return tu_run(thread_pool_suite());
}
