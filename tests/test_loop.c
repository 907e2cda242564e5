/* SPDX-License-Identifier: MIT */
/*
 * The event loop: scheduling order, timers, cancellation, stop semantics, threadsafe
 * calls, fd watchers, loop futures, executors, sleep, gather, lifetime and bad input.
 * Nothing here sleeps to synchronise: the loop's own timers and futures order events,
 * and time bounds are generous.
 */

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#define SAFETY 10.0  /* seconds: a hung test fails instead of blocking the suite */

/* ---- helpers ---------------------------------------------------------------------- */

struct log {
    int v[256];
    int n;
};

struct log_entry {
    struct log *log;
    int value;
    fut_loop *loop;
    bool stop;
};

static void log_cb(void *arg)
{
    struct log_entry *e = arg;
    ck_assert_int_lt(e->log->n, 256);
    e->log->v[e->log->n++] = e->value;
    if (e->stop)
        fut_loop_stop(e->loop);
}

static void stop_cb(void *arg)
{
    fut_loop_stop(arg);
}

static void safety_cb(void *arg)
{
    ck_abort_msg("the loop ran past its safety timeout");
    (void)arg;
}

static fut_loop *new_loop(void)
{
    fut_loop *loop = fut_loop_new();
    ck_assert_ptr_nonnull(loop);
    return loop;
}

/* Runs until f is done, failing the test if that takes longer than SAFETY. */
static void run_until(fut_loop *loop, fut_future *f)
{
    fut_handle safety = fut_loop_call_later(loop, SAFETY, safety_cb, NULL);
    ck_assert(safety != 0);
    ck_assert_int_eq(fut_loop_run_until_complete(loop, f), 0);
    ck_assert_int_eq(fut_loop_cancel(loop, safety), 0);
}

/* ---- scheduling order ------------------------------------------------------------- */

START_TEST(test_call_soon_fifo)
{
    fut_loop *loop = new_loop();
    struct log log = { 0 };
    struct log_entry e[100];
    for (int i = 0; i < 100; i++) {
        e[i] = (struct log_entry){ &log, i, loop, i == 99 };
        ck_assert(fut_loop_call_soon(loop, log_cb, &e[i]) != 0);
    }
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 100);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(log.v[i], i);
    fut_loop_free(loop);
}
END_TEST

/* Beyond one block of the ready queue and one chunk of the handle table, twice over. */
static int fifo_next;
static bool fifo_broken;

static void fifo_cb(void *arg)
{
    if ((intptr_t)arg != fifo_next++)
        fifo_broken = true;
}

START_TEST(test_call_soon_fifo_large)
{
    fut_loop *loop = new_loop();
    for (int round = 0; round < 2; round++) {
        fifo_next = 0;
        fifo_broken = false;
        for (intptr_t i = 0; i < 50000; i++)
            ck_assert(fut_loop_call_soon(loop, fifo_cb, (void *)i) != 0);
        ck_assert(fut_loop_call_soon(loop, stop_cb, loop) != 0);
        ck_assert_int_eq(fut_loop_run_forever(loop), 0);
        ck_assert_int_eq(fifo_next, 50000);
        ck_assert(!fifo_broken);
    }
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_timers_in_time_order_ties_in_scheduling_order)
{
    fut_loop *loop = new_loop();
    struct log log = { 0 };
    /* a negative delay counts as 0: due before the others, whose times are absolute so
     * that a slow scheduler (valgrind) cannot reorder them */
    double delays[] = { 0.03, 0.01, 0.02, 0.0 };
    int expect[] = { 4, 3, 1, 2, 0 };
    struct log_entry e[5];
    e[4] = (struct log_entry){ &log, 4, loop, false };
    ck_assert(fut_loop_call_later(loop, -5.0, log_cb, &e[4]) != 0);
    double base = fut_loop_time(loop) + 0.01;
    for (int i = 0; i < 4; i++) {
        e[i] = (struct log_entry){ &log, i, loop, i == 0 };
        ck_assert(fut_loop_call_at(loop, base + delays[i], log_cb, &e[i]) != 0);
    }
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(log.v[i], expect[i]);

    /* ten timers at the very same time run in the order they were scheduled */
    log.n = 0;
    double when = fut_loop_time(loop) + 0.01;
    struct log_entry t[10];
    for (int i = 0; i < 10; i++) {
        t[i] = (struct log_entry){ &log, i, loop, i == 9 };
        ck_assert(fut_loop_call_at(loop, when, log_cb, &t[i]) != 0);
    }
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(log.v[i], i);
    fut_loop_free(loop);
}
END_TEST

struct at_check {
    fut_loop *loop;
    double when, ran_at;
};

static void at_cb(void *arg)
{
    struct at_check *c = arg;
    c->ran_at = fut_loop_time(c->loop);
    fut_loop_stop(c->loop);
}

START_TEST(test_call_at_and_time)
{
    fut_loop *loop = new_loop();
    ck_assert(fut_loop_time(NULL) == -1);
    double t0 = fut_loop_time(loop);
    ck_assert(t0 > 0 && fut_loop_time(loop) >= t0);
    struct at_check c = { loop, t0 + 0.02, 0 };
    ck_assert(fut_loop_call_at(loop, c.when, at_cb, &c) != 0);
    ck_assert(fut_loop_call_later(loop, SAFETY, safety_cb, NULL) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert(c.ran_at >= c.when);
    ck_assert(c.ran_at < c.when + SAFETY / 2);
    /* a time in the past is due at once */
    c.when = t0 - 100;
    ck_assert(fut_loop_call_at(loop, c.when, at_cb, &c) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    fut_loop_free(loop);
}
END_TEST

/* R was ready before the iteration began: it runs before the timer due in it, and what
 * R schedules runs in the next iteration, after the timer. */
static struct log order_log;
static struct log_entry order_r2 = { &order_log, 3, NULL, true };

static void order_r(void *arg)
{
    fut_loop *loop = arg;
    order_log.v[order_log.n++] = 1;
    order_r2.loop = loop;
    ck_assert(fut_loop_call_soon(loop, log_cb, &order_r2) != 0);
}

START_TEST(test_iteration_order)
{
    fut_loop *loop = new_loop();
    order_log.n = 0;
    struct log_entry timer = { &order_log, 2, loop, false };
    ck_assert(fut_loop_call_later(loop, 0, log_cb, &timer) != 0);
    ck_assert(fut_loop_call_soon(loop, order_r, loop) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(order_log.n, 3);
    ck_assert_int_eq(order_log.v[0], 1);
    ck_assert_int_eq(order_log.v[1], 2);
    ck_assert_int_eq(order_log.v[2], 3);
    fut_loop_free(loop);
}
END_TEST

/* ---- cancellation ------------------------------------------------------------------ */

START_TEST(test_cancel)
{
    fut_loop *loop = new_loop();
    struct log log = { 0 };
    struct log_entry a = { &log, 1, loop, false }, b = { &log, 2, loop, true },
                     t = { &log, 3, loop, false };
    fut_handle ha = fut_loop_call_soon(loop, log_cb, &a);
    fut_handle hb = fut_loop_call_soon(loop, log_cb, &b);
    fut_handle ht = fut_loop_call_later(loop, 0, log_cb, &t);
    ck_assert(ha && hb && ht && ha != hb && hb != ht);
    ck_assert_int_eq(fut_loop_cancel(loop, ha), 0);
    ck_assert_int_eq(fut_loop_cancel(loop, ha), FUT_ENOENT);
    ck_assert_int_eq(fut_loop_cancel(loop, ht), 0);
    ck_assert_int_eq(fut_loop_cancel(loop, ht), FUT_ENOENT);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(log.v[0], 2);
    ck_assert_int_eq(fut_loop_cancel(loop, hb), FUT_ENOENT);  /* already ran */
    ck_assert_int_eq(fut_loop_cancel(loop, 0), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_cancel(loop, (5ULL << 32) | 123456), FUT_EINVAL);  /* never issued */
    ck_assert_int_eq(fut_loop_cancel(loop, hb + (7ULL << 32)), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_cancel(NULL, hb), FUT_EINVAL);

    /* a threadsafe handle is cancellable too */
    fut_handle hs = fut_loop_call_soon_threadsafe(loop, log_cb, &a);
    ck_assert(hs != 0);
    ck_assert_int_eq(fut_loop_cancel(loop, hs), 0);
    ck_assert_int_eq(fut_loop_cancel(loop, hs), FUT_ENOENT);
    log.n = 0;
    ck_assert(fut_loop_call_soon(loop, log_cb, &b) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 1);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_many_cancelled_timers)
{
    fut_loop *loop = new_loop();
    enum { N = 20000 };
    static fut_handle h[N];
    struct log log = { 0 };
    struct log_entry keep = { &log, 7, loop, true };
    for (int i = 0; i < N; i++) {
        h[i] = fut_loop_call_later(loop, 1000 + i, safety_cb, NULL);
        ck_assert(h[i] != 0);
    }
    ck_assert(fut_loop_call_later(loop, 0.001, log_cb, &keep) != 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(fut_loop_cancel(loop, h[i]), 0);
    for (int i = 0; i < N; i += 97)
        ck_assert_int_eq(fut_loop_cancel(loop, h[i]), FUT_ENOENT);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(log.n, 1);
    fut_loop_free(loop);
}
END_TEST

/* ---- stop and run ------------------------------------------------------------------ */

static struct log stop_log;
static struct log_entry stop_later = { &stop_log, 3, NULL, true };

static void stop_and_schedule(void *arg)
{
    fut_loop *loop = arg;
    stop_log.v[stop_log.n++] = 1;
    fut_loop_stop(loop);
    stop_later.loop = loop;
    ck_assert(fut_loop_call_soon(loop, log_cb, &stop_later) != 0);
}

START_TEST(test_stop_lets_iteration_finish)
{
    fut_loop *loop = new_loop();
    stop_log.n = 0;
    struct log_entry b = { &stop_log, 2, loop, false };
    ck_assert(fut_loop_call_soon(loop, stop_and_schedule, loop) != 0);
    ck_assert(fut_loop_call_soon(loop, log_cb, &b) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(stop_log.n, 2);  /* b ran; what a ran scheduled did not */
    ck_assert_int_eq(stop_log.v[1], 2);
    ck_assert(!fut_loop_is_running(loop));
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(stop_log.n, 3);
    ck_assert_int_eq(stop_log.v[2], 3);

    /* stop before run: one iteration, then return (as asyncio) */
    fut_loop_stop(loop);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    fut_loop_free(loop);
}
END_TEST

static void set_result_cb(void *arg)
{
    ck_assert_int_eq(fut_set_result(arg, (void *)42), 0);
}

START_TEST(test_run_until_complete)
{
    fut_loop *loop = new_loop();
    void *out = NULL;

    fut_future *lf = fut_loop_create_future(loop);
    ck_assert(fut_loop_call_later(loop, 0.01, set_result_cb, lf) != 0);
    run_until(loop, lf);
    ck_assert_int_eq(fut_result(lf, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)42);
    /* a done future: returns at once */
    ck_assert_int_eq(fut_loop_run_until_complete(loop, lf), 0);
    fut_future_unref(lf);

    /* a foreign future is wrapped */
    fut_future *plain = fut_future_new();
    ck_assert(fut_loop_call_soon(loop, set_result_cb, plain) != 0);
    run_until(loop, plain);
    ck_assert_int_eq(fut_result(plain, 0, &out), 0);
    fut_future_unref(plain);

    /* stopped before the future is done */
    fut_future *never = fut_loop_create_future(loop);
    ck_assert(fut_loop_call_later(loop, 0.005, stop_cb, loop) != 0);
    ck_assert_int_eq(fut_loop_run_until_complete(loop, never), FUT_ESTATE);
    ck_assert(!fut_done(never));
    /* the stale callback left on it does not stop a later run */
    fut_future *next = fut_loop_create_future(loop);
    ck_assert(fut_loop_call_soon(loop, set_result_cb, never) != 0);
    ck_assert(fut_loop_call_later(loop, 0.02, set_result_cb, next) != 0);
    run_until(loop, next);
    ck_assert(fut_done(never));
    fut_future_unref(never);
    fut_future_unref(next);
    fut_loop_free(loop);
}
END_TEST

struct nested {
    fut_loop *loop;
    int forever_rc, until_rc, thread_rc;
    bool running_seen;
};

static void *run_from_thread(void *arg)
{
    struct nested *n = arg;
    n->running_seen = fut_loop_is_running(n->loop);
    n->thread_rc = fut_loop_run_forever(n->loop);
    return NULL;
}

static void nested_cb(void *arg)
{
    struct nested *n = arg;
    n->forever_rc = fut_loop_run_forever(n->loop);
    fut_future *f = fut_future_new();
    n->until_rc = fut_loop_run_until_complete(n->loop, f);
    fut_future_unref(f);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, run_from_thread, n), 0);
    pthread_join(t, NULL);
    fut_loop_stop(n->loop);
}

START_TEST(test_run_while_running)
{
    fut_loop *loop = new_loop();
    struct nested n = { loop, 1, 1, 1, false };
    ck_assert(!fut_loop_is_running(loop));
    ck_assert(fut_loop_call_soon(loop, nested_cb, &n) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(n.forever_rc, FUT_ESTATE);
    ck_assert_int_eq(n.until_rc, FUT_ESTATE);
    ck_assert_int_eq(n.thread_rc, FUT_ESTATE);
    ck_assert(n.running_seen);
    ck_assert(!fut_loop_is_running(loop));
    fut_loop_free(loop);
}
END_TEST

static void free_running_cb(void *arg)
{
    fut_loop_free(arg);  /* refused: the loop keeps running */
    fut_loop_stop(arg);
}

START_TEST(test_free_running_is_refused)
{
    fut_loop *loop = new_loop();
    ck_assert(fut_loop_call_soon(loop, free_running_cb, loop) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    fut_loop_free(loop);
}
END_TEST

/* ---- call_soon_threadsafe ---------------------------------------------------------- */

enum { TS_THREADS = 4, TS_EACH = 10000 };

struct ts_state {
    fut_loop *loop;
    int next[TS_THREADS];
    int total;
    bool out_of_order;
    pthread_t loop_thread;
    bool wrong_thread;
};

struct ts_item {
    struct ts_state *st;
    int thread, seq;
};

static struct ts_item ts_items[TS_THREADS][TS_EACH];

static void ts_cb(void *arg)
{
    struct ts_item *it = arg;
    struct ts_state *st = it->st;
    if (st->next[it->thread] != it->seq)
        st->out_of_order = true;
    if (!pthread_equal(pthread_self(), st->loop_thread))
        st->wrong_thread = true;
    st->next[it->thread] = it->seq + 1;
    if (++st->total == TS_THREADS * TS_EACH)
        fut_loop_stop(st->loop);
}

static void *ts_producer(void *arg)
{
    struct ts_item *items = arg;
    for (int i = 0; i < TS_EACH; i++)
        if (!fut_loop_call_soon_threadsafe(items[i].st->loop, ts_cb, &items[i]))
            return (void *)1;
    return NULL;
}

START_TEST(test_call_soon_threadsafe_many_threads)
{
    fut_loop *loop = new_loop();
    struct ts_state st = { .loop = loop, .loop_thread = pthread_self() };
    pthread_t t[TS_THREADS];
    for (int k = 0; k < TS_THREADS; k++) {
        for (int i = 0; i < TS_EACH; i++)
            ts_items[k][i] = (struct ts_item){ &st, k, i };
        ck_assert_int_eq(pthread_create(&t[k], NULL, ts_producer, ts_items[k]), 0);
    }
    ck_assert(fut_loop_call_later(loop, 60, safety_cb, NULL) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    for (int k = 0; k < TS_THREADS; k++) {
        void *rc;
        pthread_join(t[k], &rc);
        ck_assert_ptr_null(rc);
        ck_assert_int_eq(st.next[k], TS_EACH);
    }
    ck_assert_int_eq(st.total, TS_THREADS * TS_EACH);
    ck_assert(!st.out_of_order);
    ck_assert(!st.wrong_thread);
    fut_loop_free(loop);
}
END_TEST

/* ---- fd watchers -------------------------------------------------------------------- */

struct io_state {
    fut_loop *loop;
    int fd;
    int reads, writes, other;
    char got;
};

static void on_readable(void *arg)
{
    struct io_state *s = arg;
    ck_assert_int_eq(read(s->fd, &s->got, 1), 1);
    s->reads++;
    ck_assert_int_eq(fut_loop_remove_reader(s->loop, s->fd), 0);
    fut_loop_stop(s->loop);
}

static void on_readable_other(void *arg)
{
    struct io_state *s = arg;
    s->other++;
}

static void on_writable(void *arg)
{
    struct io_state *s = arg;
    s->writes++;
    ck_assert_int_eq(fut_loop_remove_writer(s->loop, s->fd), 0);
    fut_loop_stop(s->loop);
}

static void write_byte_cb(void *arg)
{
    int *fd = arg;
    ck_assert_int_eq(write(*fd, "x", 1), 1);
}

START_TEST(test_fd_pipe_reader)
{
    fut_loop *loop = new_loop();
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct io_state s = { loop, p[0], 0, 0, 0, 0 };
    ck_assert_int_eq(fut_loop_add_reader(loop, p[0], on_readable_other, &s), 0);
    ck_assert_int_eq(fut_loop_add_reader(loop, p[0], on_readable, &s), 0);  /* replaces */
    ck_assert(fut_loop_call_later(loop, 0.01, write_byte_cb, &p[1]) != 0);
    ck_assert(fut_loop_call_later(loop, SAFETY, safety_cb, NULL) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.other, 0);
    ck_assert_int_eq(s.got, 'x');
    ck_assert_int_eq(fut_loop_remove_reader(loop, p[0]), FUT_ENOENT);
    ck_assert_int_eq(fut_loop_remove_writer(loop, p[0]), FUT_ENOENT);
    ck_assert_int_eq(fut_loop_remove_reader(loop, 1000), FUT_ENOENT);
    close(p[0]);
    close(p[1]);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_fd_socketpair_reader_and_writer)
{
    fut_loop *loop = new_loop();
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct io_state w = { loop, sv[0], 0, 0, 0, 0 };
    /* a connected socket is writable at once */
    ck_assert_int_eq(fut_loop_add_writer(loop, sv[0], on_writable, &w), 0);
    ck_assert(fut_loop_call_later(loop, SAFETY, safety_cb, NULL) != 0);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(w.writes, 1);

    /* reader and writer on the same fd share one registration */
    struct io_state r = { loop, sv[0], 0, 0, 0, 0 };
    ck_assert_int_eq(fut_loop_add_reader(loop, sv[0], on_readable, &r), 0);
    ck_assert_int_eq(fut_loop_add_writer(loop, sv[0], on_readable_other, &r), 0);
    ck_assert_int_eq(write(sv[1], "y", 1), 1);
    ck_assert_int_eq(fut_loop_run_forever(loop), 0);
    ck_assert_int_eq(r.reads, 1);
    ck_assert_int_eq(r.got, 'y');
    ck_assert_int_ge(r.other, 1);
    ck_assert_int_eq(fut_loop_remove_writer(loop, sv[0]), 0);
    ck_assert_int_eq(fut_loop_remove_writer(loop, sv[0]), FUT_ENOENT);
    close(sv[0]);
    close(sv[1]);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_fd_bad_input)
{
    fut_loop *loop = new_loop();
    struct io_state s = { 0 };
    ck_assert_int_eq(fut_loop_add_reader(loop, -1, on_readable, &s), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_add_writer(loop, -3, on_readable, &s), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_remove_reader(loop, -1), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_remove_writer(loop, -1), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_add_reader(loop, 0, NULL, &s), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_add_reader(NULL, 0, on_readable, &s), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_remove_reader(NULL, 0), FUT_EINVAL);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[1]);
    ck_assert_int_lt(fut_loop_add_reader(loop, p[1], on_readable, &s), 0);  /* closed fd */
    close(p[0]);
    fut_loop_free(loop);
}
END_TEST

/* ---- loop futures -------------------------------------------------------------------- */

struct cb_record {
    int calls;
    pthread_t thread;
    int order[4];
    int n;
};

static void record_done(fut_future *f, void *arg)
{
    struct cb_record *r = arg;
    r->thread = pthread_self();
    r->calls++;
    (void)f;
}

static void *complete_from_thread(void *arg)
{
    fut_set_result(arg, (void *)7);
    return NULL;
}

START_TEST(test_loop_future_callbacks_never_inline)
{
    fut_loop *loop = new_loop();
    struct cb_record r = { 0 };
    fut_future *lf = fut_loop_create_future(loop);
    ck_assert_int_eq(fut_add_done_callback(lf, record_done, &r), 0);
    ck_assert_int_eq(fut_set_result(lf, NULL), 0);
    ck_assert_int_eq(r.calls, 0);  /* not inline */
    run_until(loop, lf);
    ck_assert_int_eq(r.calls, 1);
    ck_assert(pthread_equal(r.thread, pthread_self()));
    /* added to a done one: still scheduled, not run at once */
    ck_assert_int_eq(fut_add_done_callback(lf, record_done, &r), 0);
    ck_assert_int_eq(r.calls, 1);
    run_until(loop, lf);
    ck_assert_int_eq(r.calls, 2);
    fut_future_unref(lf);

    /* completed by another thread: the callback runs on the loop thread */
    struct cb_record r2 = { 0 };
    fut_future *lf2 = fut_loop_create_future(loop);
    ck_assert_int_eq(fut_add_done_callback(lf2, record_done, &r2), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, complete_from_thread, lf2), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(r2.calls, 0);
    run_until(loop, lf2);
    ck_assert_int_eq(r2.calls, 1);
    ck_assert(pthread_equal(r2.thread, pthread_self()));
    fut_future_unref(lf2);
    fut_loop_free(loop);
}
END_TEST

START_TEST(test_loop_future_outlives_loop)
{
    int fds = tu_count_fds();
    fut_loop *loop = new_loop();
    struct cb_record r = { 0 }, r2 = { 0 };
    fut_future *lf = fut_loop_create_future(loop);
    fut_future *done = fut_loop_create_future(loop);
    fut_future *sl = fut_loop_sleep(loop, 100, NULL);
    ck_assert_ptr_nonnull(sl);
    ck_assert_int_eq(fut_add_done_callback(lf, record_done, &r), 0);
    ck_assert_int_eq(fut_add_done_callback(done, record_done, &r2), 0);
    ck_assert_int_eq(fut_set_result(done, NULL), 0);  /* callback pending on the loop */
    for (int i = 0; i < 10; i++) {
        ck_assert(fut_loop_call_soon(loop, safety_cb, NULL) != 0);
        ck_assert(fut_loop_call_later(loop, i, safety_cb, NULL) != 0);
        ck_assert(fut_loop_call_soon_threadsafe(loop, safety_cb, NULL) != 0);
    }
    fut_loop_free(loop);
    ck_assert_int_eq(tu_count_fds(), fds);
    ck_assert_int_eq(r2.calls, 1);  /* a done callback runs exactly once, loop or not */
    ck_assert(fut_cancelled(sl));   /* its timer can never fire: cancelled */
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(fut_set_result(lf, (void *)5), 0);
    ck_assert_int_eq(r.calls, 1);   /* no loop: inline, as a plain future */
    void *out;
    ck_assert_int_eq(fut_result(lf, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)5);
    fut_future_unref(lf);
    fut_future_unref(done);
    fut_future_unref(sl);
}
END_TEST

/* ---- executors: each test runs on every executor kind in this table ------------------ */

typedef fut_executor *(*executor_ctor)(const fut_pool_options *opts);
/* The process pool joins this table once it lands: { fut_process_pool_new, "process" }. */
static const struct {
    executor_ctor make;
    const char *name;
} executors[] = {
    { fut_thread_pool_new, "thread" },
    { fut_process_pool_new, "process" },
};
#define N_EXECUTORS ((int)TU_ARRAY_SIZE(executors))

static fut_executor *make_executor(int kind, int max_workers)
{
    fut_pool_options opts = { .max_workers = max_workers };
    fut_executor *ex = executors[kind].make(&opts);
    ck_assert_msg(ex != NULL, "%s pool", executors[kind].name);
    return ex;
}

static void *return_arg(void *arg)
{
    return arg;
}

static void *raise_task(void *arg)
{
    fut_raise(EDOM, "bad value %d", (int)(intptr_t)arg);
    return NULL;
}

static void *bytes_task(void *arg)
{
    return fut_bytes_dup("hello, loop", 12);
}

START_TEST(test_run_in_executor)
{
    fut_loop *loop = new_loop();
    fut_executor *ex = make_executor(_i, 2);
    struct cb_record r = { 0 };

    fut_future *f = fut_loop_run_in_executor(loop, ex, return_arg, (void *)99);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_add_done_callback(f, record_done, &r), 0);
    run_until(loop, f);
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)99);
    ck_assert_int_eq(r.calls, 1);
    ck_assert(pthread_equal(r.thread, pthread_self()));  /* on the loop thread */
    fut_future_unref(f);

    f = fut_loop_run_in_executor(loop, ex, raise_task, (void *)3);
    run_until(loop, f);
    ck_assert_int_eq(fut_result(f, 0, &out), EDOM);
    ck_assert_str_eq(fut_exception_message(f), "bad value 3");
    fut_future_unref(f);

    f = fut_loop_run_in_executor(loop, ex, bytes_task, NULL);
    run_until(loop, f);
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_uint_eq(fut_bytes_len(out), 12);
    ck_assert_str_eq(out, "hello, loop");
    fut_executor_free(ex);
    ck_assert_str_eq(out, "hello, loop");  /* lives as long as the loop future */
    fut_future_unref(f);
    fut_loop_free(loop);
}
END_TEST

static fut_future *gate;
static atomic_int ran_after_cancel;

static void *wait_gate(void *arg)
{
    fut_result(gate, FUT_FOREVER, NULL);
    return arg;
}

static void *mark_ran(void *arg)
{
    atomic_store(&ran_after_cancel, 1);
    return arg;
}

START_TEST(test_run_in_executor_cancel_before_start)
{
    fut_loop *loop = new_loop();
    fut_executor *ex = make_executor(_i, 1);
    gate = fut_future_new();
    atomic_store(&ran_after_cancel, 0);
    fut_future *busy = fut_loop_run_in_executor(loop, ex, wait_gate, NULL);
    fut_future *f = fut_loop_run_in_executor(loop, ex, mark_ran, NULL);
    ck_assert(busy && f);
    ck_assert(fut_cancel(f));
    run_until(loop, f);
    ck_assert(fut_cancelled(f));
    fut_set_result(gate, NULL);
    run_until(loop, busy);
    fut_shutdown(ex, true, false);
    ck_assert_int_eq(atomic_load(&ran_after_cancel), 0);
    fut_executor_free(ex);
    fut_future_unref(busy);
    fut_future_unref(f);
    fut_future_unref(gate);
    fut_loop_free(loop);
}
END_TEST

static void *thread_name_task(void *arg)
{
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    return (void *)(intptr_t)(strncmp(name, arg, strlen(arg)) == 0);
}

START_TEST(test_default_executor)
{
    int threads = tu_thread_baseline();
    fut_loop *loop = new_loop();
    fut_future *f = fut_loop_run_in_executor(loop, NULL, thread_name_task, "fut_loop");
    ck_assert_ptr_nonnull(f);
    run_until(loop, f);
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)1);  /* ran in the loop's own pool */
    ck_assert_int_gt(tu_count_threads(), threads);
    fut_future_unref(f);
    fut_loop_free(loop);
    ck_assert_int_eq(tu_settle_threads(threads), threads);  /* its pool went with it */
}
END_TEST

START_TEST(test_set_default_executor)
{
    fut_loop *loop = new_loop();
    fut_pool_options opts = { .max_workers = 2, .thread_name_prefix = "mine" };
    fut_executor *ex = fut_thread_pool_new(&opts);
    ck_assert_int_eq(fut_loop_set_default_executor(loop, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_set_default_executor(NULL, ex), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_set_default_executor(loop, ex), 0);
    fut_future *f = fut_loop_run_in_executor(loop, NULL, thread_name_task, "mine");
    run_until(loop, f);
    void *out = NULL;
    ck_assert_int_eq(fut_result(f, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)1);
    fut_future_unref(f);
    fut_loop_free(loop);
    /* still the caller's, and still working */
    fut_future *g = fut_submit(ex, return_arg, (void *)4);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(fut_result(g, FUT_FOREVER, &out), 0);
    fut_future_unref(g);
    fut_executor_free(ex);
}
END_TEST

START_TEST(test_wrap_future)
{
    fut_loop *loop = new_loop();
    fut_executor *ex = make_executor(_i, 2);
    fut_future *src = fut_submit(ex, return_arg, (void *)11);
    fut_future *w = fut_loop_wrap_future(loop, src);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_ne(w, src);
    run_until(loop, w);
    void *out = NULL;
    ck_assert_int_eq(fut_result(w, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)11);
    fut_future *same = fut_loop_wrap_future(loop, w);
    ck_assert_ptr_eq(same, w);
    fut_future_unref(same);

    /* a failed plain future */
    fut_future *plain = fut_future_new();
    fut_future *w2 = fut_loop_wrap_future(loop, plain);
    fut_set_exception(plain, 77, "seventy-seven");
    run_until(loop, w2);
    ck_assert_int_eq(fut_exception(w2, 0), 77);
    ck_assert_str_eq(fut_exception_message(w2), "seventy-seven");
    /* cancelling the wrapper cancels a pending source */
    fut_future *plain2 = fut_future_new();
    fut_future *w3 = fut_loop_wrap_future(loop, plain2);
    ck_assert(fut_cancel(w3));
    ck_assert(fut_cancelled(plain2));
    ck_assert_ptr_null(fut_loop_wrap_future(NULL, plain2));
    ck_assert_ptr_null(fut_loop_wrap_future(loop, NULL));
    fut_future_unref(w3);
    fut_future_unref(plain2);
    fut_future_unref(w2);
    fut_future_unref(plain);
    fut_future_unref(w);
    fut_future_unref(src);
    fut_executor_free(ex);
    fut_loop_free(loop);
}
END_TEST

/* ---- sleep and gather ---------------------------------------------------------------- */

START_TEST(test_sleep)
{
    fut_loop *loop = new_loop();
    double t0 = fut_loop_time(loop);
    fut_future *s = fut_loop_sleep(loop, 0.02, (void *)8);
    ck_assert_ptr_nonnull(s);
    run_until(loop, s);
    ck_assert(fut_loop_time(loop) - t0 >= 0.02);
    void *out = NULL;
    ck_assert_int_eq(fut_result(s, 0, &out), 0);
    ck_assert_ptr_eq(out, (void *)8);
    fut_future_unref(s);

    /* cancelled: done at once, its timer cancelled (nothing fires 100 s later) */
    fut_future *c = fut_loop_sleep(loop, 100, NULL);
    ck_assert(fut_cancel(c));
    run_until(loop, c);
    ck_assert(fut_cancelled(c));
    fut_future_unref(c);
    fut_future *z = fut_loop_sleep(loop, -1, NULL);  /* negative: 0 */
    run_until(loop, z);
    fut_future_unref(z);
    errno = 0;
    ck_assert_ptr_null(fut_loop_sleep(loop, NAN, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_loop_sleep(NULL, 1, NULL));
    fut_loop_free(loop);
}
END_TEST

static void fail_cb(void *arg)
{
    fut_set_exception(arg, 11, "eleven");
}

static void fail22_cb(void *arg)
{
    fut_set_exception(arg, 22, "twenty-two");
}

START_TEST(test_gather)
{
    fut_loop *loop = new_loop();
    double t0 = fut_loop_time(loop);
    fut_future *s[3] = { fut_loop_sleep(loop, 0.03, NULL), fut_loop_sleep(loop, 0.01, NULL),
                         fut_loop_sleep(loop, 0.02, NULL) };
    fut_future *g = fut_loop_gather(loop, s, 3);
    ck_assert_ptr_nonnull(g);
    run_until(loop, g);
    ck_assert(fut_loop_time(loop) - t0 >= 0.03);
    void *out = (void *)1;
    ck_assert_int_eq(fut_result(g, 0, &out), 0);
    ck_assert_ptr_null(out);
    fut_future_unref(g);
    for (int i = 0; i < 3; i++)
        fut_future_unref(s[i]);

    /* the first failure in input order, not in time order; foreign children wrapped */
    fut_future *a = fut_loop_create_future(loop), *b = fut_future_new(),
               *ok = fut_loop_sleep(loop, 0, NULL);
    fut_future *fs[3] = { ok, a, b };
    g = fut_loop_gather(loop, fs, 3);
    ck_assert(fut_loop_call_later(loop, 0.02, fail_cb, a) != 0);
    ck_assert(fut_loop_call_later(loop, 0.01, fail22_cb, b) != 0);
    run_until(loop, g);
    ck_assert_int_eq(fut_exception(g, 0), 11);
    ck_assert_str_eq(fut_exception_message(g), "eleven");
    fut_future_unref(g);
    fut_future_unref(a);
    fut_future_unref(b);
    fut_future_unref(ok);

    /* a cancelled child counts as failed with FUT_ECANCELLED */
    fut_future *c[2] = { fut_loop_sleep(loop, 0, NULL), fut_loop_create_future(loop) };
    g = fut_loop_gather(loop, c, 2);
    fut_cancel(c[1]);
    run_until(loop, g);
    ck_assert(!fut_cancelled(g));
    ck_assert_int_eq(fut_exception(g, 0), FUT_ECANCELLED);
    fut_future_unref(g);
    fut_future_unref(c[0]);
    fut_future_unref(c[1]);

    /* cancelling the gather cancels the children not done */
    fut_future *d[2] = { fut_loop_sleep(loop, 0, NULL), fut_loop_sleep(loop, 100, NULL) };
    run_until(loop, d[0]);
    g = fut_loop_gather(loop, d, 2);
    ck_assert(fut_cancel(g));
    ck_assert(fut_cancelled(d[1]));
    ck_assert(!fut_cancelled(d[0]));
    run_until(loop, g);
    fut_future_unref(g);
    fut_future_unref(d[0]);
    fut_future_unref(d[1]);

    /* none: done at once */
    g = fut_loop_gather(loop, NULL, 0);
    ck_assert(fut_done(g));
    ck_assert_int_eq(fut_result(g, 0, NULL), 0);
    fut_future_unref(g);
    ck_assert_ptr_null(fut_loop_gather(loop, NULL, 2));
    fut_future *null_child[1] = { NULL };
    ck_assert_ptr_null(fut_loop_gather(loop, null_child, 1));
    fut_loop_free(loop);
}
END_TEST

/* ---- lifetime and bad input ---------------------------------------------------------- */

START_TEST(test_free_releases_fds)
{
    int fds = tu_count_fds();
    for (int i = 0; i < 5; i++) {
        fut_loop *loop = new_loop();
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(fut_loop_add_reader(loop, p[0], safety_cb, NULL), 0);
        ck_assert(fut_loop_call_later(loop, 1000, safety_cb, NULL) != 0);
        fut_loop_free(loop);
        close(p[0]);
        close(p[1]);
    }
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

START_TEST(test_bad_input)
{
    fut_loop *loop = new_loop();
    errno = 0;
    ck_assert(fut_loop_call_soon(NULL, stop_cb, NULL) == 0);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert(fut_loop_call_soon(loop, NULL, NULL) == 0);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert(fut_loop_call_soon_threadsafe(NULL, stop_cb, NULL) == 0);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(fut_loop_call_soon_threadsafe(loop, NULL, NULL) == 0);
    errno = 0;
    ck_assert(fut_loop_call_later(loop, NAN, stop_cb, loop) == 0);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(fut_loop_call_later(NULL, 1, stop_cb, loop) == 0);
    ck_assert(fut_loop_call_later(loop, 1, NULL, loop) == 0);
    errno = 0;
    ck_assert(fut_loop_call_at(loop, NAN, stop_cb, loop) == 0);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(fut_loop_call_at(NULL, 1, stop_cb, loop) == 0);
    ck_assert_int_eq(fut_loop_run_forever(NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_run_until_complete(NULL, NULL), FUT_EINVAL);
    ck_assert_int_eq(fut_loop_run_until_complete(loop, NULL), FUT_EINVAL);
    ck_assert(!fut_loop_is_running(NULL));
    fut_loop_stop(NULL);
    fut_loop_free(NULL);
    errno = 0;
    ck_assert_ptr_null(fut_loop_create_future(NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_loop_run_in_executor(NULL, NULL, return_arg, NULL));
    ck_assert_ptr_null(fut_loop_run_in_executor(loop, NULL, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(fut_loop_gather(NULL, NULL, 0));
    fut_loop_free(loop);
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tu_tcase(s, "core", 60);
    tcase_add_test(tc, test_call_soon_fifo);
    tcase_add_test(tc, test_call_soon_fifo_large);
    tcase_add_test(tc, test_timers_in_time_order_ties_in_scheduling_order);
    tcase_add_test(tc, test_call_at_and_time);
    tcase_add_test(tc, test_iteration_order);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_many_cancelled_timers);
    tcase_add_test(tc, test_stop_lets_iteration_finish);
    tcase_add_test(tc, test_run_until_complete);
    tcase_add_test(tc, test_run_while_running);
    tcase_add_test(tc, test_free_running_is_refused);
    tcase_add_test(tc, test_call_soon_threadsafe_many_threads);
    tcase_add_test(tc, test_fd_pipe_reader);
    tcase_add_test(tc, test_fd_socketpair_reader_and_writer);
    tcase_add_test(tc, test_fd_bad_input);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_free_releases_fds);

    TCase *tf = tu_tcase(s, "futures", 60);
    tcase_add_test(tf, test_loop_future_callbacks_never_inline);
    tcase_add_test(tf, test_loop_future_outlives_loop);
    tcase_add_loop_test(tf, test_run_in_executor, 0, N_EXECUTORS);
    tcase_add_loop_test(tf, test_run_in_executor_cancel_before_start, 0, N_EXECUTORS);
    tcase_add_loop_test(tf, test_wrap_future, 0, N_EXECUTORS);
    tcase_add_test(tf, test_default_executor);
    tcase_add_test(tf, test_set_default_executor);
    tcase_add_test(tf, test_sleep);
    tcase_add_test(tf, test_gather);
    return s;
}

int main(void)
{
    return tu_run(loop_suite());
}
