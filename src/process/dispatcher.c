/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher thread: each round it schedules queued tasks onto workers (starting
 * workers up to max_workers), expires tasks past task_timeout, reads the workers' rings,
 * then polls the rings briefly and otherwise waits in epoll for the wake-up eventfd, the
 * fork server's socket and the workers' sockets (wake-up and descriptor records).
 */
#include <math.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/bytes_shared.h"
#include "core/clock.h"
#include "core/spin.h"
#include "process/fd_registry.h"
#include "process/pool.h"

/* How often an idle dispatcher looks at the shared memory kept for reuse (bytes_shared.h). */
#define FUT_DISPATCHER_TRIM_MS 600

/* ---- scheduling ---------------------------------------------------------------------- */

/* Whether w takes one more task. Its ring has room for every task it may hold (two), but
 * messages of tasks taken back stay in it until the worker reads them: a worker that runs
 * a long task while its ahead tasks are taken back and replaced fills it. */
static bool can_take(struct process_pool *pool, struct pool_worker *w, int max_slots)
{
    int max_tasks = pool->config.max_tasks;
    if (w->doomed || w->fd < 0 || w->n_slots >= max_slots || (max_tasks != 0 && w->handed >= max_tasks))
        return false;
    /* an offer (a task handed ahead) reuses the claim word: not while the worker may still
     * have to find a task taken back there (worker.c, take_task) */
    if (w->n_slots == 1 && w->revoked_end && !fut__channel_consumed(pool, w, w->revoked_end))
        return false;
    return fut__channel_has_room(pool, w);
}

static void hand(struct process_pool *pool, struct pool_worker *w, fut_future *f)
{
    uint64_t seq = w->last_seq + 1;
    if (w->n_slots == 1)  /* handed ahead: offered, so that it can be taken back */
        atomic_store(w->claim, FUT_CLAIM(seq, FUT_CLAIM_OFFERED));
    int rc = fut__channel_send(pool, w, f, seq);
    if (rc == FUT_EBROKEN) {
        /* the worker is gone: the task goes back to the head of the queue */
        fut__future_set_flag(f, FUT_FLAG_REQUEUED);
        pthread_mutex_lock(&pool->lock);
        fut__pool_queue_push_locked(pool, f, true);
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    if (rc != 0) {
        char message[160];
        snprintf(message, sizeof message,
                 "no shared memory for a %zu-byte argument (descriptors or memory ran out)",
                 fut__task_arg_len(f));
        fut__pool_fail_future(f, rc, message);
        return;
    }
    w->last_seq = seq;
    w->seqs[w->n_slots] = seq;
    w->ends[w->n_slots] = w->to_worker.pos;
    w->slots[w->n_slots++] = f;
    w->n_sent = w->n_slots;
    w->handed++;
}

/* Gives queued tasks to workers that can take them (max_slots 1: idle ones only). */
static bool hand_out(struct process_pool *pool, int max_slots)
{
    for (struct pool_worker *w = pool->workers; w; w = w->next) {
        while (can_take(pool, w, max_slots)) {
            fut_future *f = fut__pool_queue_pop(pool);
            if (!f)
                return false;
            hand(pool, w, f);
        }
    }
    return true;  /* tasks may be left */
}

/* Takes back w's task handed ahead, when it has not started: true, and it is f. */
static bool take_back(struct pool_worker *w, fut_future **f)
{
    if (w->n_slots != 2 || !w->slots[1])
        return false;  /* nothing ahead */
    if (w->n_sent == 2) {
        uint64_t offered = FUT_CLAIM(w->seqs[1], FUT_CLAIM_OFFERED);
        if (!atomic_compare_exchange_strong(w->claim, &offered, FUT_CLAIM(w->seqs[1], FUT_CLAIM_REVOKED)))
            return false;  /* the worker claimed it first: it runs there */
        w->n_sent = 1;
        w->revoked_end = w->ends[1];
    }
    *f = w->slots[1];
    w->slots[1] = NULL;
    w->n_slots = 1;
    w->handed--;
    return true;
}

/* Nothing is queued: idle workers take the tasks handed ahead to busy ones. */
static void rebalance(struct process_pool *pool)
{
    for (struct pool_worker *idle = pool->workers; idle; idle = idle->next) {
        if (idle->n_slots != 0 || !can_take(pool, idle, 1))
            continue;
        fut_future *f = NULL;
        for (struct pool_worker *busy = pool->workers; busy && !f; busy = busy->next)
            if (busy != idle)
                take_back(busy, &f);
        if (!f)
            return;  /* nothing left to take */
        hand(pool, idle, f);
    }
}

static void schedule(struct process_pool *pool)
{
    if (pool->broken)
        return;
    if (!hand_out(pool, 1)) {
        rebalance(pool);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    size_t waiting = pool->queue_left = pool->queue_len;
    pthread_mutex_unlock(&pool->lock);
    if (waiting == 0)
        return;
    /* no idle worker: start new ones up to max_workers, one per waiting task */
    int total = pool->n_workers + pool->n_spawning + pool->spawn_owed;
    int coming = pool->n_spawning + pool->spawn_owed;
    bool may_spawn = pool->spawn_failures == 0 || fut__now() >= pool->spawn_retry_at;
    while (may_spawn && total < pool->base.max_workers && (size_t)coming < waiting) {
        pool->spawn_owed++;
        total++;
        coming++;
    }
    fut__fork_client_send_requests(pool);
    /* only when no worker can come any more is a task handed ahead to a busy worker */
    if ((total >= pool->base.max_workers || !may_spawn) && coming == 0)
        hand_out(pool, 2);
}

/* ---- timeouts ----------------------------------------------------------------------- */

static int next_timeout_ms(struct process_pool *pool)
{
    double earliest = INFINITY;
    if (pool->task_timeout > 0)
        for (struct pool_worker *w = pool->workers; w; w = w->next)
            if (w->head_started && w->slots[0] && w->started_at + pool->task_timeout < earliest)
                earliest = w->started_at + pool->task_timeout;
    /* the next spawn attempt; once it is due, schedule() has had its chance each round */
    if (pool->spawn_failures > 0 && pool->spawn_retry_at < earliest && pool->spawn_retry_at > fut__now())
        earliest = pool->spawn_retry_at;
    if (earliest == INFINITY)
        return -1;
    double left = earliest - fut__now();
    return left <= 0 ? 0 : (int)ceil(left * 1000);
}

static void expire_tasks(struct process_pool *pool)
{
    if (pool->task_timeout <= 0)
        return;
    double now = fut__now();
    for (struct pool_worker *w = pool->workers; w; w = w->next) {
        if (!w->head_started || !w->slots[0] || now < w->started_at + pool->task_timeout)
            continue;
        /* an outcome already in the socket (the dispatcher was not scheduled in time, or
         * the deadline fell between the wake-up and now) is not a timeout: read it first */
        fut__channel_read(pool, w);
        if (!w->head_started || !w->slots[0] || now < w->started_at + pool->task_timeout)
            continue;
        char message[160];
        snprintf(message, sizeof message,
                 "the task ran longer than task_timeout (%g s): worker %d was killed",
                 pool->task_timeout, (int)w->pid);
        fut__pool_fail_future(w->slots[0], FUT_ETIMEDOUT, message);
        w->slots[0] = NULL;  /* abandoned: its outcome, if any arrives, is ignored */
        fut__fork_client_kill(pool, w);
    }
}

/* ---- the dispatcher thread ---------------------------------------------------------- */

/*
 * Shutting down: workers with nothing to do are told to exit and killed. shutdown() acts
 * on the socket itself, so the worker sees end of file even when copies of our end live
 * in processes forked since (another pool's fork server, the application's own children);
 * the kill makes shutdown independent of the worker's cooperation (a SIGSTOPped idle
 * worker). An idle worker holds no task, so nothing is lost by killing it.
 */
static void retire_idle_workers(struct process_pool *pool)
{
    for (struct pool_worker *w = pool->workers; w; w = w->next)
        if (w->n_slots == 0 && w->fd >= 0 && !w->doomed) {
            shutdown(w->fd, SHUT_RDWR);
            fut__fork_client_kill(pool, w);
        }
}

/*
 * Whether the dispatcher is done; otherwise sets *again when it must not sleep.
 *
 * `queue_left` is the queue length schedule() last saw under the lock. Tasks still queued
 * then had no worker to go to, so a submit while they wait has nothing to wake us for (a
 * worker's result or a new worker will). But a length that changed since means tasks came
 * (or went) after schedule() looked: run it again before sleeping, or they could wait for
 * a wake-up nobody sends.
 */
static bool finished(struct process_pool *pool, bool *again)
{
    pthread_mutex_lock(&pool->lock);
    bool done = pool->shutdown && pool->queue_len == 0;
    *again = !done && pool->queue_len != pool->queue_left;
    if (!done && !*again && !pool->broken && !pool->shutdown && pool->queue_len == 0)
        pool->need_wake = true;
    pthread_mutex_unlock(&pool->lock);
    if (!done)
        return false;
    retire_idle_workers(pool);
    return pool->n_workers == 0 && pool->n_spawning == 0 && pool->spawn_owed == 0;
}

static void dispatch_events(struct process_pool *pool, const struct fut_poll_event *events, int n)
{
    for (int i = 0; i < n; i++) {
        if (events[i].fd != pool->fs_sock || pool->fs_dead)
            continue;  /* the wake-up eventfd needs nothing: it only ends the wait */
        if (events[i].mask & FUT_POLL_WRITABLE)
            fut__fork_client_send_requests(pool);
        fut__fork_client_read(pool);
    }
    /*
     * Workers after the fork server: its EXITED report may free a worker named later in
     * this batch, so workers are looked up by fd rather than trusted from before. A worker
     * spawned in this batch may have been given the fd of one that exited in it: it then
     * gets a read or flush it did not need, which finds nothing to do.
     */
    for (int i = 0; i < n; i++) {
        if (events[i].fd == pool->wakefd || events[i].fd == pool->fs_sock)
            continue;
        struct pool_worker *w = pool->workers;
        while (w && w->fd != events[i].fd)
            w = w->next;
        if (!w)
            continue;
        fut__channel_read_socket(pool, w);
    }
}

/* Every worker's ring: messages need no event (only a sleeping dispatcher is woken). */
static void read_rings(struct process_pool *pool)
{
    for (struct pool_worker *w = pool->workers; w; w = w->next)
        fut__channel_read(pool, w);
}

static bool rings_pending(const struct process_pool *pool)
{
    for (const struct pool_worker *w = pool->workers; w; w = w->next)
        if (fut__channel_pending(w))
            return true;
    return false;
}

/* Whether a message is likely within microseconds: a worker holds a task, or one just
 * completed (a caller that waits on each result submits the next one at once). */
static bool activity_expected(const struct process_pool *pool)
{
    for (const struct pool_worker *w = pool->workers; w; w = w->next)
        if (w->n_slots > 0)
            return true;
    return fut__now() - pool->last_result_at < FUT_SPIN_SECONDS;
}

struct brief_poll {
    struct process_pool *pool;
    struct fut_poll_event *events;
    int n;
    unsigned round;
    bool ring;                     /* a ring has a message */
};

/* The rings and submits each round (no system call); epoll (deaths, the fork server,
 * which can wait some microseconds) only every 64th. */
static bool poll_found_events(void *arg)
{
    struct brief_poll *p = arg;
    if ((p->ring = rings_pending(p->pool)))
        return true;
    if ((p->ring = atomic_load_explicit(&p->pool->poked, memory_order_relaxed)))
        return true;
    if (++p->round % 64 != 0)
        return false;
    p->n = fut__poller_wait(&p->pool->poller, p->events, 0);
    return p->n > 0;
}

/* Whether tasks were queued since schedule() last looked. */
static bool queue_changed(struct process_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    bool changed = pool->queue_len != pool->queue_left;
    pthread_mutex_unlock(&pool->lock);
    return changed;
}

/*
 * Polls without sleeping for a short while: the number of events, 0 with *found when a
 * ring has a message or a task was submitted (process_pool_submit pokes rather than
 * wakes a polling dispatcher), else 0 and the dispatcher may sleep. A result due in
 * microseconds would otherwise cost a sleep and a wake-up, which take longer than most
 * small tasks.
 */
static int poll_briefly(struct process_pool *pool, struct fut_poll_event *events, bool *found)
{
    struct brief_poll p = { pool, events, 0, 0, false };
    atomic_store_explicit(&pool->poked, false, memory_order_relaxed);
    atomic_store(&pool->polling, true);
    fut__spin_until(poll_found_events, &p, FUT_FOREVER);
    atomic_store(&pool->polling, false);
    /* a submit that saw us polling queued its task before it looked (under the lock):
     * seen here, or it saw `polling` false and wrote the eventfd */
    *found = p.ring || (p.n <= 0 && queue_changed(pool));
    return p.ring ? 0 : p.n;
}

/* Blocks in epoll unless a worker's message is already waiting: each worker is told that
 * the dispatcher sleeps (ring.h), then the rings are looked at once more. */
static int sleep_in_epoll(struct process_pool *pool, struct fut_poll_event *events, int timeout)
{
    if (timeout != 0 && !fut__channel_prepare_sleep(pool))
        timeout = 0;
    /* shared memory kept for reuse goes back to the system once idle: wake up for it */
    if (timeout != 0 && fut__bytes_shared_trim() && (timeout < 0 || timeout > FUT_DISPATCHER_TRIM_MS))
        timeout = FUT_DISPATCHER_TRIM_MS;
    int n = fut__poller_wait(&pool->poller, events, timeout);
    if (timeout != 0)
        fut__channel_awake(pool);
    return n;
}

/* Workers alive (a fork server is no worker) and, of them, those holding no task. */
static void publish_stats(struct process_pool *pool, bool exiting)
{
    size_t workers = 0, idle = 0;
    for (const struct pool_worker *w = exiting ? NULL : pool->workers; w; w = w->next) {
        workers++;
        idle += w->ready && w->n_slots == 0 && !w->doomed;
    }
    atomic_store_explicit(&pool->stat_workers, workers, memory_order_relaxed);
    atomic_store_explicit(&pool->stat_idle, idle, memory_order_relaxed);
}

void *fut__dispatcher_main(void *arg)
{
    struct process_pool *pool = arg;
    struct fut_poll_event events[FUT_DISPATCHER_EVENTS];
    pthread_setname_np(pthread_self(), FUT_DISPATCHER_NAME);
    for (;;) {
        if (pool->fs_failed)
            fut__fork_client_lost(pool);
        schedule(pool);
        expire_tasks(pool);
        if (pool->fs_failed)
            fut__fork_client_lost(pool);
        bool again;
        if (finished(pool, &again))
            break;
        publish_stats(pool, false);
        int timeout = again ? 0 : next_timeout_ms(pool);
        bool found = false;
        int n = 0;
        if (timeout != 0 && activity_expected(pool))
            n = poll_briefly(pool, events, &found);
        if (n <= 0 && !found)
            n = sleep_in_epoll(pool, events, timeout);
        pthread_mutex_lock(&pool->lock);
        pool->need_wake = false;
        pthread_mutex_unlock(&pool->lock);
        if (n > 0)
            dispatch_events(pool, events, n);
        read_rings(pool);
    }
    publish_stats(pool, true);
    /* everything is reported exited: the fork server may go. shutdown(), not just close():
     * copies of our end forked since (another pool's fork server, the application's own
     * children) would keep the socket open and the server waiting for end of file. */
    shutdown(pool->fs_sock, SHUT_RDWR);
    fut__fd_registry_close(pool->fs_sock);
    pool->fs_sock = -1;
    int status;
    while (waitpid(pool->fs_pid, &status, 0) < 0 && errno == EINTR)
        ;
    return NULL;
}
