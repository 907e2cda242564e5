/* SPDX-License-Identifier: MIT */
/*
 * Futures: the state machine, results and exceptions, timeouts, done callbacks,
 * reference counting, fut_raise and fut_bytes buffers.
 */
#include <stdatomic.h>

#include "testutil.h"

/* ---- state machine ------------------------------------------------------------------ */

static void assert_pending(fut_future *f)
{
    ck_assert(!fut_done(f));
    ck_assert(!fut_running(f));
    ck_assert(!fut_cancelled(f));
    ck_assert_ptr_null(fut_exception_message(f));
    ck_assert_int_eq(fut_result(f, 0, NULL), FUT_ETIMEDOUT);
    ck_assert_int_eq(fut_exception(f, 0), FUT_ETIMEDOUT);
}

START_TEST(test_new_is_pending)
{
    fut_future *f = fut_future_new();
    ck_assert_ptr_nonnull(f);
    assert_pending(f);
    fut_future_unref(f);
}
END_TEST

START_TEST(test_pending_running_finished)
{
    int value = 7;
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), 1);
    ck_assert(fut_running(f));
    ck_assert(!fut_done(f));
    ck_assert(!fut_cancelled(f));
    ck_assert(!fut_cancel(f));  /* running: cannot be cancelled */
    ck_assert(fut_running(f));
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), FUT_ESTATE);
    ck_assert_int_eq(fut_result(f, 0, NULL), FUT_ETIMEDOUT);

    ck_assert_int_eq(fut_set_result(f, &value), 0);
    ck_assert(fut_done(f));
    ck_assert(!fut_running(f));
    ck_assert(!fut_cancelled(f));
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_ptr_eq(out, &value);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), 0);  /* out may be NULL */
    ck_assert_int_eq(fut_exception(f, 0), 0);
    ck_assert_ptr_null(fut_exception_message(f));

    /* finished: every further transition is refused and changes nothing */
    ck_assert(!fut_cancel(f));
    ck_assert(!fut_cancelled(f));
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), FUT_ESTATE);
    ck_assert_int_eq(fut_set_result(f, NULL), FUT_ESTATE);
    ck_assert_int_eq(fut_set_exception(f, 5, "late"), FUT_ESTATE);
    out = NULL;
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_ptr_eq(out, &value);
    ck_assert_ptr_null(fut_exception_message(f));
    fut_future_unref(f);
}
END_TEST

START_TEST(test_pending_set_result_directly)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_set_result(f, TU_P(3)), 0);
    ck_assert(fut_done(f));
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_ptr_eq(out, TU_P(3));
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), FUT_ESTATE);
    fut_future_unref(f);
}
END_TEST

START_TEST(test_pending_cancelled)
{
    fut_future *f = fut_future_new();
    ck_assert(fut_cancel(f));
    ck_assert(fut_cancelled(f));
    ck_assert(fut_done(f));
    ck_assert(!fut_running(f));
    ck_assert(fut_cancel(f));  /* already cancelled: still true */
    ck_assert(fut_cancelled(f));
    void *out = TU_P(99);
    ck_assert_int_eq(fut_result(f, 0, &out), FUT_ECANCELLED);
    ck_assert_ptr_eq(out, TU_P(99));
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), FUT_ECANCELLED);
    ck_assert_int_eq(fut_exception(f, 0), FUT_ECANCELLED);
    ck_assert_ptr_null(fut_exception_message(f));

    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), 0);
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), FUT_ESTATE);  /* second call */
    ck_assert_int_eq(fut_set_result(f, NULL), FUT_ESTATE);
    ck_assert_int_eq(fut_set_exception(f, 5, "x"), FUT_ESTATE);
    ck_assert(fut_cancelled(f));
    ck_assert(!fut_running(f));
    fut_future_unref(f);
}
END_TEST

START_TEST(test_exception_state)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), 1);
    ck_assert_int_eq(fut_set_exception(f, 42, "bad thing"), 0);
    ck_assert(fut_done(f));
    ck_assert(!fut_cancelled(f));
    ck_assert(!fut_running(f));
    ck_assert(!fut_cancel(f));
    void *out = TU_P(1);
    ck_assert_int_eq(fut_result(f, 0, &out), 42);  /* positive task codes come back as is */
    ck_assert_ptr_eq(out, TU_P(1));                /* untouched on failure */
    ck_assert_int_eq(fut_exception(f, FUT_FOREVER), 42);
    ck_assert_str_eq(fut_exception_message(f), "bad thing");
    ck_assert_int_eq(fut_set_result(f, NULL), FUT_ESTATE);
    ck_assert_int_eq(fut_set_exception(f, 7, "again"), FUT_ESTATE);
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), FUT_ESTATE);
    ck_assert_int_eq(fut_exception(f, 0), 42);
    ck_assert_str_eq(fut_exception_message(f), "bad thing");
    fut_future_unref(f);
}
END_TEST

START_TEST(test_exception_negative_code_and_null_message)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_set_exception(f, FUT_ENOENT, NULL), 0);
    ck_assert_int_eq(fut_result(f, 0, NULL), FUT_ENOENT);
    ck_assert_int_eq(fut_exception(f, 0), FUT_ENOENT);
    ck_assert_ptr_null(fut_exception_message(f));
    fut_future_unref(f);
}
END_TEST

START_TEST(test_exception_message_copied)
{
    char buf[32];
    strcpy(buf, "original");
    char *heap = strdup("on the heap");
    fut_future *f = fut_future_new(), *g = fut_future_new();
    ck_assert_int_eq(fut_set_exception(f, 1, buf), 0);
    ck_assert_int_eq(fut_set_exception(g, 2, heap), 0);
    strcpy(buf, "CHANGED!");
    memset(heap, 'X', strlen(heap));
    free(heap);
    ck_assert_str_eq(fut_exception_message(f), "original");
    ck_assert_str_eq(fut_exception_message(g), "on the heap");
    fut_future_unref(f);
    fut_future_unref(g);
}
END_TEST

START_TEST(test_set_exception_zero_code)
{
    /* 0 is not an exception code: the call is rejected and the future stays pending */
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_set_exception(f, 0, "zero"), FUT_EINVAL);
    ck_assert(!fut_done(f));
    ck_assert_int_eq(fut_set_result(f, TU_P(1)), 0);
    fut_future_unref(f);
}
END_TEST

/* ---- timeouts -------------------------------------------------------------------------- */

START_TEST(test_result_timeout_bounds)
{
    fut_future *f = fut_future_new();
    double start = tu_now();
    ck_assert_int_eq(fut_result(f, 0.05, NULL), FUT_ETIMEDOUT);
    double elapsed = tu_now() - start;
    ck_assert_double_ge(elapsed, 0.05);
    ck_assert_double_lt(elapsed, 2.0);

    start = tu_now();
    ck_assert_int_eq(fut_exception(f, 0.05), FUT_ETIMEDOUT);
    elapsed = tu_now() - start;
    ck_assert_double_ge(elapsed, 0.05);
    ck_assert_double_lt(elapsed, 2.0);
    assert_pending(f);  /* a timeout leaves the future unchanged */

    /* blocking, not polling: 0.2 s of waiting costs far less than 0.2 s of CPU */
    double cpu = tu_thread_cpu();
    ck_assert_int_eq(fut_result(f, 0.2, NULL), FUT_ETIMEDOUT);
    ck_assert_double_lt(tu_thread_cpu() - cpu, 0.1);

    start = tu_now();
    ck_assert_int_eq(fut_result(f, 0, NULL), FUT_ETIMEDOUT);  /* 0 polls */
    ck_assert_double_lt(tu_now() - start, 0.5);
    fut_future_unref(f);
}
END_TEST

START_TEST(test_timedout_exception_vs_timeout)
{
    /* a future may itself hold FUT_ETIMEDOUT: fut_done tells the two apart */
    fut_future *held = fut_future_new(), *pending = fut_future_new();
    ck_assert_int_eq(fut_set_exception(held, FUT_ETIMEDOUT, "task timed out"), 0);
    ck_assert_int_eq(fut_result(held, 0, NULL), FUT_ETIMEDOUT);
    ck_assert(fut_done(held));
    ck_assert_str_eq(fut_exception_message(held), "task timed out");
    ck_assert_int_eq(fut_result(pending, 0, NULL), FUT_ETIMEDOUT);
    ck_assert(!fut_done(pending));
    fut_future_unref(held);
    fut_future_unref(pending);
}
END_TEST

struct delayed_set {
    fut_future *f;
    struct tu_gate go;
    int code;
};

static void *complete_after_gate(void *arg)
{
    struct delayed_set *d = arg;
    tu_gate_wait(&d->go);
    if (d->code)
        fut_set_exception(d->f, d->code, "from another thread");
    else
        fut_set_result(d->f, TU_P(123));
    return NULL;
}

START_TEST(test_negative_and_huge_timeouts)
{
    /* any negative value waits without limit; a huge one is just long */
    static const double forever[] = { -1.0, -0.001, -1e300 };
    for (size_t i = 0; i < TU_ARRAY_SIZE(forever); i++) {
        struct delayed_set d = { .f = fut_future_new() };
        tu_gate_init(&d.go);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, complete_after_gate, &d), 0);
        tu_gate_open(&d.go);
        ck_assert_int_eq(fut_result(d.f, forever[i], NULL), 0);
        ck_assert_int_eq(fut_result(d.f, 1e300, NULL), 0);
        pthread_join(t, NULL);
        tu_gate_destroy(&d.go);
        fut_future_unref(d.f);
    }
}
END_TEST

START_TEST(test_result_wakes_blocked_waiter)
{
    for (int code = 0; code <= 9; code += 9) {
        struct delayed_set d = { .f = fut_future_new(), .code = code };
        tu_gate_init(&d.go);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, complete_after_gate, &d), 0);
        tu_gate_open(&d.go);
        void *out = NULL;
        if (code == 0) {
            ck_assert_int_eq(fut_result(d.f, FUT_FOREVER, &out), 0);
            ck_assert_ptr_eq(out, TU_P(123));
        } else {
            ck_assert_int_eq(fut_exception(d.f, 30.0), 9);
            ck_assert_str_eq(fut_exception_message(d.f), "from another thread");
        }
        pthread_join(t, NULL);
        tu_gate_destroy(&d.go);
        fut_future_unref(d.f);
    }
}
END_TEST

/* ---- done callbacks ----------------------------------------------------------------- */

struct callback_log {
    pthread_mutex_t lock;
    int order[16];
    pthread_t threads[16];
    fut_future *futures[16];
    bool saw_done[16];
    int n;
};

struct callback_entry {
    struct callback_log *log;
    int id;
};

static void record_callback(fut_future *f, void *arg)
{
    struct callback_entry *e = arg;
    pthread_mutex_lock(&e->log->lock);
    int i = e->log->n++;
    e->log->order[i] = e->id;
    e->log->threads[i] = pthread_self();
    e->log->futures[i] = f;
    e->log->saw_done[i] = fut_done(f);
    pthread_mutex_unlock(&e->log->lock);
}

static void log_init(struct callback_log *log)
{
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
}

static int log_count(struct callback_log *log)
{
    pthread_mutex_lock(&log->lock);
    int n = log->n;
    pthread_mutex_unlock(&log->lock);
    return n;
}

static void assert_log(struct callback_log *log, fut_future *f, int n, pthread_t thread)
{
    ck_assert_int_eq(log_count(log), n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(log->order[i], i + 1);
        ck_assert(pthread_equal(log->threads[i], thread));
        ck_assert_ptr_eq(log->futures[i], f);
        ck_assert(log->saw_done[i]);
    }
}

struct completer {
    fut_future *f;
    bool cancel;
};

static void *complete_in_thread(void *arg)
{
    struct completer *c = arg;
    if (c->cancel)
        fut_cancel(c->f);
    else
        fut_set_result(c->f, NULL);
    return NULL;
}

static void check_callbacks_on_completion(bool cancel)
{
    struct callback_log log;
    log_init(&log);
    struct callback_entry entries[3] = { { &log, 1 }, { &log, 2 }, { &log, 3 } };
    fut_future *f = fut_future_new();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[i]), 0);
    ck_assert_int_eq(log_count(&log), 0);

    struct completer c = { f, cancel };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, complete_in_thread, &c), 0);
    pthread_join(t, NULL);
    assert_log(&log, f, 3, t);  /* in order, once each, in the completing thread */

    /* nothing runs again: not on a refused transition, not on a later wait */
    ck_assert(cancel == fut_cancel(f));
    ck_assert_int_eq(fut_set_result(f, NULL), FUT_ESTATE);
    fut_result(f, 0, NULL);
    ck_assert_int_eq(log_count(&log), 3);

    /* added to a done future: runs at once, in the calling thread */
    struct callback_entry late = { &log, 4 };
    ck_assert_int_eq(fut_add_done_callback(f, record_callback, &late), 0);
    ck_assert_int_eq(log_count(&log), 4);
    ck_assert_int_eq(log.order[3], 4);
    ck_assert(pthread_equal(log.threads[3], pthread_self()));
    fut_future_unref(f);
    ck_assert_int_eq(log_count(&log), 4);
    pthread_mutex_destroy(&log.lock);
}

START_TEST(test_callbacks_on_result)
{
    check_callbacks_on_completion(false);
}
END_TEST

START_TEST(test_callbacks_on_cancel)
{
    check_callbacks_on_completion(true);
}
END_TEST

START_TEST(test_callbacks_on_exception)
{
    struct callback_log log;
    log_init(&log);
    struct callback_entry entries[2] = { { &log, 1 }, { &log, 2 } };
    fut_future *f = fut_future_new();
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[i]), 0);
    ck_assert_int_eq(fut_set_running_or_notify_cancel(f), 1);
    ck_assert_int_eq(log_count(&log), 0);  /* running is not done */
    ck_assert_int_eq(fut_set_exception(f, 3, NULL), 0);
    assert_log(&log, f, 2, pthread_self());
    fut_future_unref(f);
    pthread_mutex_destroy(&log.lock);
}
END_TEST

/* Callbacks and waiters share one stack in the future: waiters leaving it from the bottom,
 * the middle and the top leave the callbacks between them in place and in order, and the
 * waiter that stays is told. */
START_TEST(test_waiters_leave_between_callbacks)
{
    struct callback_log log;
    log_init(&log);
    struct callback_entry entries[4] = { { &log, 1 }, { &log, 2 }, { &log, 3 }, { &log, 4 } };
    fut_future *f = fut_future_new();
    fut_as_completed *bottom = fut_as_completed_new(&f, 1, FUT_FOREVER);
    ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[0]), 0);
    fut_as_completed *stays = fut_as_completed_new(&f, 1, FUT_FOREVER);
    ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[1]), 0);
    fut_as_completed *middle = fut_as_completed_new(&f, 1, FUT_FOREVER);
    ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[2]), 0);
    fut_as_completed *top = fut_as_completed_new(&f, 1, FUT_FOREVER);
    ck_assert(bottom && stays && middle && top);
    fut_as_completed_free(middle);
    fut_as_completed_free(bottom);
    fut_as_completed_free(top);
    size_t n_done = 1;
    ck_assert_int_eq(fut_wait(&f, 1, 0.001, FUT_ALL_COMPLETED, &n_done), 0);  /* timed out */
    ck_assert_uint_eq(n_done, 0);
    ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[3]), 0);
    ck_assert_int_eq(log_count(&log), 0);

    ck_assert_int_eq(fut_set_result(f, NULL), 0);
    assert_log(&log, f, 4, pthread_self());
    fut_future *out = NULL;
    ck_assert_int_eq(fut_as_completed_next(stays, &out), 1);
    ck_assert_ptr_eq(out, f);
    ck_assert_int_eq(fut_as_completed_next(stays, &out), 0);
    fut_as_completed_free(stays);
    fut_future_unref(f);
    pthread_mutex_destroy(&log.lock);
}
END_TEST

/* A task that records its thread, then blocks until the test opens the gate. */
struct thread_task {
    struct tu_gate gate;
    pthread_t thread;
};

static void *record_thread_then_wait(void *arg)
{
    struct thread_task *t = arg;
    t->thread = pthread_self();
    tu_gate_wait(&t->gate);
    return NULL;
}

START_TEST(test_callbacks_in_worker_thread)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 3 });
    for (int round = 0; round < 10; round++) {
        struct thread_task task;
        tu_gate_init(&task.gate);
        struct callback_log log;
        log_init(&log);
        struct callback_entry entries[3] = { { &log, 1 }, { &log, 2 }, { &log, 3 } };

        /* the task is held on the gate, so the callbacks are added before it finishes */
        fut_future *f = fut_submit(ex, record_thread_then_wait, &task);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(fut_add_done_callback(f, record_callback, &entries[i]), 0);
        tu_gate_open(&task.gate);
        ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), 0);
        ck_assert(!pthread_equal(task.thread, pthread_self()));
        /* the result may be visible a moment before the callbacks ran: wait for them */
        while (log_count(&log) < 3)
            sched_yield();
        assert_log(&log, f, 3, task.thread);

        /* added to the done future: runs at once in the calling thread */
        struct callback_entry late = { &log, 4 };
        ck_assert_int_eq(fut_add_done_callback(f, record_callback, &late), 0);
        ck_assert_int_eq(log_count(&log), 4);
        ck_assert(pthread_equal(log.threads[3], pthread_self()));
        fut_future_unref(f);
        tu_gate_destroy(&task.gate);
        pthread_mutex_destroy(&log.lock);
    }
    fut_executor_free(ex);
}
END_TEST

struct resubmit {
    fut_executor *ex;
    fut_future *inner;
    struct tu_counter done;
};

static void submit_from_callback(fut_future *f, void *arg)
{
    struct resubmit *r = arg;
    void *value = NULL;
    fut_result(f, 0, &value);
    r->inner = fut_submit(r->ex, tu_plus_one, value);
    tu_counter_add(&r->done, 1);
}

START_TEST(test_callback_submits_to_pool)
{
    struct resubmit r = { .ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 2 }) };
    tu_counter_init(&r.done);
    struct tu_gate gate;
    tu_gate_init(&gate);
    fut_future *hold = fut_submit(r.ex, tu_wait_gate, &gate);
    fut_future *f = fut_submit(r.ex, tu_plus_one, TU_P(10));
    ck_assert_int_eq(fut_add_done_callback(f, submit_from_callback, &r), 0);
    tu_counter_wait(&r.done, 1);
    ck_assert_ptr_nonnull(r.inner);
    void *out = NULL;
    ck_assert_int_eq(fut_result(r.inner, FUT_FOREVER, &out), 0);
    ck_assert_int_eq(TU_I(out), 12);
    tu_gate_open(&gate);
    fut_executor_free(r.ex);
    fut_future_unref(hold);
    fut_future_unref(f);
    fut_future_unref(r.inner);
    tu_gate_destroy(&gate);
    tu_counter_destroy(&r.done);
}
END_TEST

/* Several threads race to complete one future: one wins, callbacks run exactly once. */
enum { RACERS = 6 };

struct race {
    fut_future *f;
    struct tu_gate start;
    atomic_int callbacks;
    int rc[RACERS];
};

struct racer_arg {
    struct race *race;
    int id;
};

static void count_callback(fut_future *f, void *arg)
{
    atomic_fetch_add(&((struct race *)arg)->callbacks, 1);
}

static void *race_to_complete(void *arg)
{
    struct racer_arg *a = arg;
    tu_gate_wait(&a->race->start);
    if (a->id == 0)
        a->race->rc[0] = fut_cancel(a->race->f) ? 0 : FUT_ESTATE;
    else if (a->id == 1)
        a->race->rc[1] = fut_set_exception(a->race->f, 99, "lost?");
    else
        a->race->rc[a->id] = fut_set_result(a->race->f, TU_P(a->id));
    return NULL;
}

START_TEST(test_completion_race)
{
    const int rounds = (int)tu_scale(200, 30);
    for (int round = 0; round < rounds; round++) {
        struct race race = { .f = fut_future_new() };
        tu_gate_init(&race.start);
        ck_assert_int_eq(fut_add_done_callback(race.f, count_callback, &race), 0);
        pthread_t threads[RACERS];
        struct racer_arg args[RACERS];
        for (int i = 0; i < RACERS; i++) {
            args[i] = (struct racer_arg){ &race, i };
            ck_assert_int_eq(pthread_create(&threads[i], NULL, race_to_complete, &args[i]), 0);
        }
        tu_gate_open(&race.start);
        for (int i = 0; i < RACERS; i++)
            pthread_join(threads[i], NULL);
        int winners = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            if (race.rc[i] == 0) {
                winners++;
                winner = i;
            } else {
                ck_assert_int_eq(race.rc[i], FUT_ESTATE);
            }
        }
        ck_assert_int_eq(winners, 1);
        ck_assert_int_eq(atomic_load(&race.callbacks), 1);
        void *out = NULL;
        int rc = fut_result(race.f, 0, &out);
        if (winner == 0) {
            ck_assert_int_eq(rc, FUT_ECANCELLED);
        } else if (winner == 1) {
            ck_assert_int_eq(rc, 99);
        } else {
            ck_assert_int_eq(rc, 0);
            ck_assert_ptr_eq(out, TU_P(winner));
        }
        fut_future_unref(race.f);
        tu_gate_destroy(&race.start);
    }
}
END_TEST

/* ---- reference counting --------------------------------------------------------------- */

/* The lock, the state and the flags share one word of the future: lock holders (callbacks
 * added, waiters attached and detached) race with starts' compare-and-swaps, cancels and
 * completions, on each of a row of futures in turn, and nothing is lost: of start and
 * cancel one wins, every callback runs exactly once, the outcome is the winner's. A stress
 * test: a change of the word that dropped the lock bits shows only when it lands inside
 * another thread's critical section (then as a lost callback, a hang, or, under
 * ThreadSanitizer, a race on the watchers' word), so it may pass a broken lock. */
enum { WORD_FUTURES = 64, WORD_CALLBACKS = 3 };

struct word_race {
    fut_future *fs[WORD_FUTURES];
    struct tu_gate start;
    atomic_int callbacks;
    bool started[WORD_FUTURES], cancelled[WORD_FUTURES];
};

static void count_word_callback(fut_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&((struct word_race *)arg)->callbacks, 1);
}

static void *add_word_callbacks(void *arg)
{
    struct word_race *r = arg;
    tu_gate_wait(&r->start);
    for (int i = 0; i < WORD_FUTURES; i++)
        for (int k = 0; k < WORD_CALLBACKS; k++)
            ck_assert_int_eq(fut_add_done_callback(r->fs[i], count_word_callback, r), 0);
    return NULL;
}

static void *attach_and_detach(void *arg)
{
    struct word_race *r = arg;
    tu_gate_wait(&r->start);
    for (int i = 0; i < WORD_FUTURES; i++) {
        fut_as_completed *it = fut_as_completed_new(&r->fs[i], 1, FUT_FOREVER);
        ck_assert_ptr_nonnull(it);
        fut_as_completed_free(it);
    }
    return NULL;
}

static void *start_and_finish(void *arg)
{
    struct word_race *r = arg;
    tu_gate_wait(&r->start);
    for (int i = 0; i < WORD_FUTURES; i++) {
        r->started[i] = fut_set_running_or_notify_cancel(r->fs[i]) == 1;
        if (r->started[i])
            ck_assert_int_eq(fut_set_result(r->fs[i], TU_P(i + 1)), 0);
    }
    return NULL;
}

static void *cancel_each(void *arg)
{
    struct word_race *r = arg;
    tu_gate_wait(&r->start);
    for (int i = 0; i < WORD_FUTURES; i++)
        r->cancelled[i] = fut_cancel(r->fs[i]);
    return NULL;
}

START_TEST(test_lock_state_flags_share_a_word)
{
    void *(*racers[])(void *) = { add_word_callbacks, add_word_callbacks, attach_and_detach,
                                  start_and_finish, cancel_each };
    enum { N = sizeof racers / sizeof racers[0] };
    const int rounds = (int)tu_scale(100, 20);
    for (int round = 0; round < rounds; round++) {
        struct word_race r = { .callbacks = 0 };
        for (int i = 0; i < WORD_FUTURES; i++)
            r.fs[i] = fut_future_new();
        tu_gate_init(&r.start);
        pthread_t threads[N];
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(pthread_create(&threads[i], NULL, racers[i], &r), 0);
        tu_gate_open(&r.start);
        for (int i = 0; i < N; i++)
            pthread_join(threads[i], NULL);
        ck_assert_int_eq(atomic_load(&r.callbacks), 2 * WORD_FUTURES * WORD_CALLBACKS);
        for (int i = 0; i < WORD_FUTURES; i++) {
            ck_assert(r.started[i] != r.cancelled[i]);
            void *out = NULL;
            ck_assert_int_eq(fut_result(r.fs[i], 0, &out), r.started[i] ? 0 : FUT_ECANCELLED);
            ck_assert_ptr_eq(out, r.started[i] ? TU_P(i + 1) : NULL);
            fut_future_unref(r.fs[i]);
        }
        tu_gate_destroy(&r.start);
    }
}
END_TEST

START_TEST(test_refs)
{
    fut_future *f = fut_future_new();
    ck_assert_ptr_eq(fut_future_ref(f), f);
    ck_assert_ptr_eq(fut_future_ref(f), f);
    fut_future_unref(f);
    fut_future_unref(f);
    /* one reference left: still usable (ASan/valgrind see a use after free otherwise) */
    ck_assert_int_eq(fut_set_exception(f, 4, "still alive"), 0);
    ck_assert_str_eq(fut_exception_message(f), "still alive");
    fut_future_unref(f);
    fut_future_unref(NULL);
    errno = 0;
    ck_assert_ptr_null(fut_future_ref(NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static void unref_in_callback(fut_future *f, void *arg)
{
    (void)arg;
    fut_future_unref(f);  /* drops the reference the test handed over */
}

START_TEST(test_last_ref_dropped_by_callback)
{
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_add_done_callback(f, unref_in_callback, NULL), 0);
    ck_assert_int_eq(fut_set_result(f, NULL), 0);  /* the callback releases the last one */
}
END_TEST

static void *raise_after_gate(void *arg)
{
    tu_gate_wait(arg);
    fut_raise(17, "raised %s", "late");
    return NULL;
}

START_TEST(test_future_outlives_executor)
{
    fut_executor *ex = fut_thread_pool_new(NULL);
    struct tu_gate gate;
    tu_gate_init(&gate);
    fut_future *ok = fut_submit(ex, tu_plus_one, TU_P(41));
    fut_future *bad = fut_submit(ex, raise_after_gate, &gate);
    tu_gate_open(&gate);
    fut_executor_free(ex);
    void *out = NULL;
    ck_assert_int_eq(fut_result(ok, 0, &out), 0);
    ck_assert_int_eq(TU_I(out), 42);
    ck_assert_int_eq(fut_result(bad, 0, NULL), 17);
    ck_assert_str_eq(fut_exception_message(bad), "raised late");
    fut_future_unref(ok);
    fut_future_unref(bad);
    tu_gate_destroy(&gate);
}
END_TEST

/* ---- fut_raise ------------------------------------------------------------------------- */

static void *raise_formatted(void *arg)
{
    fut_raise(5, "bad %s %d", "value", (int)TU_I(arg));
    return TU_P(1234);  /* ignored */
}

static void *raise_zero(void *arg)
{
    (void)arg;
    fut_raise(0, "zero");
    return NULL;
}

static void *raise_no_message(void *arg)
{
    (void)arg;
    fut_raise(-77, NULL);
    return NULL;
}

static void *raise_long(void *arg)
{
    fut_raise(8, "%s", (const char *)arg);
    return NULL;
}

static int result_of(fut_executor *ex, fut_fn fn, void *arg, void **out, char **message)
{
    fut_future *f = fut_submit(ex, fn, arg);
    ck_assert_ptr_nonnull(f);
    int rc = fut_result(f, FUT_FOREVER, out);
    const char *m = fut_exception_message(f);
    *message = m ? strdup(m) : NULL;
    fut_future_unref(f);
    return rc;
}

START_TEST(test_raise)
{
    fut_executor *ex = fut_thread_pool_new(NULL);
    void *out = TU_P(-1);
    char *message;
    ck_assert_int_eq(result_of(ex, raise_formatted, TU_P(3), &out, &message), 5);
    ck_assert_ptr_eq(out, TU_P(-1));
    ck_assert_str_eq(message, "bad value 3");
    free(message);

    ck_assert_int_eq(result_of(ex, raise_zero, NULL, &out, &message), FUT_EINVAL);
    ck_assert_str_eq(message, "zero");
    free(message);

    ck_assert_int_eq(result_of(ex, raise_no_message, NULL, &out, &message), -77);
    ck_assert_ptr_null(message);

    size_t len = 10000;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    big[len] = '\0';
    ck_assert_int_eq(result_of(ex, raise_long, big, &out, &message), 8);
    ck_assert_ptr_nonnull(message);
    ck_assert_uint_eq(strlen(message), len);
    ck_assert(strcmp(message, big) == 0);
    free(message);
    free(big);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_raise_outside_task)
{
    fut_raise(5, "nobody listens");  /* no task: nothing happens, nothing crashes */
    fut_raise(0, NULL);
    fut_executor *ex = fut_thread_pool_new(NULL);
    fut_future *f = fut_submit(ex, tu_plus_one, TU_P(1));
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_int_eq(TU_I(out), 2);
    ck_assert_ptr_null(fut_exception_message(f));
    fut_future_unref(f);
    fut_executor_free(ex);
}
END_TEST

static void raise_in_callback(fut_future *f, void *arg)
{
    (void)f;
    (void)arg;
    fut_raise(6, "from a callback");  /* not a task: ignored */
}

START_TEST(test_raise_in_callback_ignored)
{
    fut_executor *ex = fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 });
    struct tu_gate gate;
    tu_gate_init(&gate);
    fut_future *first = fut_submit(ex, tu_wait_gate, &gate);
    ck_assert_int_eq(fut_add_done_callback(first, raise_in_callback, NULL), 0);
    fut_future *second = fut_submit(ex, tu_plus_one, TU_P(4));
    tu_gate_open(&gate);
    void *out = NULL;
    ck_assert_int_eq(fut_result(first, FUT_FOREVER, &out), 0);
    ck_assert_ptr_eq(out, &gate);
    ck_assert_int_eq(fut_result(second, FUT_FOREVER, &out), 0);
    ck_assert_int_eq(TU_I(out), 5);
    fut_executor_free(ex);
    fut_future_unref(first);
    fut_future_unref(second);
    tu_gate_destroy(&gate);
}
END_TEST

/* ---- bytes ---------------------------------------------------------------------------- */

START_TEST(test_bytes_api)
{
    char *b = fut_bytes_new(10);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fut_bytes_len(b), 10);
    memset(b, 'z', 10);  /* writable over its whole length */
    char *d = fut_bytes_dup("hello", 6);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(fut_bytes_len(d), 6);
    ck_assert_str_eq(d, "hello");
    void *empty = fut_bytes_new(0);
    ck_assert_ptr_nonnull(empty);
    ck_assert_uint_eq(fut_bytes_len(empty), 0);
    void *empty_dup = fut_bytes_dup(NULL, 0);
    ck_assert_ptr_nonnull(empty_dup);
    ck_assert_uint_eq(fut_bytes_len(empty_dup), 0);
    ck_assert_uint_eq(fut_bytes_len(NULL), 0);
    fut_bytes_free(NULL);
    errno = 0;
    ck_assert_ptr_null(fut_bytes_dup(NULL, 4));
    ck_assert_int_eq(errno, EINVAL);
    fut_bytes_free(b);
    fut_bytes_free(d);
    fut_bytes_free(empty);
    fut_bytes_free(empty_dup);
}
END_TEST

static void *return_bytes(void *arg)
{
    return fut_bytes_dup(arg, strlen(arg) + 1);
}

START_TEST(test_task_bytes_owned_by_future)
{
    /* the future frees the buffer: a leak or a double free shows under ASan/valgrind */
    fut_executor *ex = fut_thread_pool_new(NULL);
    fut_future *f = fut_submit(ex, return_bytes, "payload");
    void *out = NULL, *again = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_uint_eq(fut_bytes_len(out), 8);
    ck_assert_str_eq(out, "payload");
    fut_executor_free(ex);
    ck_assert_int_eq(fut_result(f, 0, &again), 0);  /* valid while the reference is held */
    ck_assert_ptr_eq(again, out);
    ck_assert_str_eq(again, "payload");
    fut_future_unref(f);
}
END_TEST

static void *return_plain(void *arg)
{
    return arg;
}

START_TEST(test_task_plain_pointer_not_freed)
{
    /* plain pointers pass through and stay the caller's: freeing it here after the future
     * is gone is a double free if the library freed it too */
    fut_executor *ex = fut_thread_pool_new(NULL);
    char *mine = strdup("mine");
    fut_future *f = fut_submit(ex, return_plain, mine);
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, &out), 0);
    ck_assert_ptr_eq(out, mine);
    fut_future_unref(f);
    fut_executor_free(ex);
    ck_assert_str_eq(mine, "mine");
    free(mine);
}
END_TEST

START_TEST(test_set_result_bytes_is_plain)
{
    void *b = fut_bytes_dup("abc", 4);
    fut_future *f = fut_future_new();
    ck_assert_int_eq(fut_set_result(f, b), 0);
    fut_future_unref(f);
    /* still ours: readable, and freed once, here */
    ck_assert_uint_eq(fut_bytes_len(b), 4);
    ck_assert_str_eq(b, "abc");
    fut_bytes_free(b);
}
END_TEST

static Suite *future_suite(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tu_tcase(s, "state", 30);
    tcase_add_test(tc, test_new_is_pending);
    tcase_add_test(tc, test_pending_running_finished);
    tcase_add_test(tc, test_pending_set_result_directly);
    tcase_add_test(tc, test_pending_cancelled);
    tcase_add_test(tc, test_exception_state);
    tcase_add_test(tc, test_exception_negative_code_and_null_message);
    tcase_add_test(tc, test_exception_message_copied);
    tcase_add_test(tc, test_set_exception_zero_code);

    tc = tu_tcase(s, "timeout", 30);
    tcase_add_test(tc, test_result_timeout_bounds);
    tcase_add_test(tc, test_timedout_exception_vs_timeout);
    tcase_add_test(tc, test_result_wakes_blocked_waiter);
    tcase_add_test(tc, test_negative_and_huge_timeouts);

    tc = tu_tcase(s, "callbacks", 30);
    tcase_add_test(tc, test_callbacks_on_result);
    tcase_add_test(tc, test_callbacks_on_cancel);
    tcase_add_test(tc, test_callbacks_on_exception);
    tcase_add_test(tc, test_waiters_leave_between_callbacks);
    tcase_add_test(tc, test_callbacks_in_worker_thread);
    tcase_add_test(tc, test_callback_submits_to_pool);
    tcase_add_test(tc, test_completion_race);
    tcase_add_test(tc, test_lock_state_flags_share_a_word);

    tc = tu_tcase(s, "refs", 30);
    tcase_add_test(tc, test_refs);
    tcase_add_test(tc, test_last_ref_dropped_by_callback);
    tcase_add_test(tc, test_future_outlives_executor);

    tc = tu_tcase(s, "raise", 30);
    tcase_add_test(tc, test_raise);
    tcase_add_test(tc, test_raise_outside_task);
    tcase_add_test(tc, test_raise_in_callback_ignored);

    tc = tu_tcase(s, "bytes", 30);
    tcase_add_test(tc, test_bytes_api);
    tcase_add_test(tc, test_task_bytes_owned_by_future);
    tcase_add_test(tc, test_task_plain_pointer_not_freed);
    tcase_add_test(tc, test_set_result_bytes_is_plain);
    return s;
}

int main(void)
{
    return tu_run(future_suite());
}
