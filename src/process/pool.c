/*
 * The process pool.
 *
 * Processes: the parent (the user's process), one fork server forked by
 * fut_process_pool_new (process_forkserver.c), and up to max_workers workers forked by
 * the fork server (process_worker.c). Threads: ONE dispatcher thread in the parent; the
 * fork server and the workers are single-threaded.
 *
 * Submitting appends the future to `queue` under `lock` and wakes the dispatcher through
 * an eventfd when it asked to be woken. The dispatcher owns everything else: it waits in
 * epoll on the eventfd, the fork server's socket and every worker's socket (nonblocking,
 * framed messages, wire.c), hands queued tasks to workers, reads their results and
 * completes the futures. It never blocks on a socket, so a large argument going out while
 * a large result comes in cannot deadlock.
 *
 * A worker holds at most two tasks: the one it runs and one handed ahead of it, and only
 * when no worker is idle and none can be started. Both count as running (they left the
 * queue); everything still queued is pending and cancellable. The worker says START
 * before it runs a task: task_timeout counts from there.
 *
 * Deaths: the fork server reaps workers and reports each exit status. On that report the
 * dispatcher reads what the dead worker had already written (it cannot write more), then
 * fails the task it had started with FUT_EBROKEN (or leaves it failed with FUT_ETIMEDOUT
 * when the dispatcher had it killed), puts an unstarted task back at the head of the
 * queue, and frees the worker; the scheduler starts a replacement when there is work.
 *
 * Lock order: `lock` is a leaf. Futures are completed (running user callbacks) without
 * holding it, so a callback may submit.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/executor.h"
#include "process/fork_server.h"
#include "process/worker.h"
#include "core/spin.h"
#include "core/task_context.h"
#include "process/wire.h"


struct worker {
    struct worker *next;
    struct process_pool *pool;
    pid_t pid;
    int fd;                        /* -1 once closed (end of file or error) */
    fut_future *slots[2];          /* slots[0] is the oldest; a NULL slot was abandoned
                                      (timed out), its outcome is ignored */
    int n_slots;
    int n_sent;                    /* slots already written (or being written) */
    bool head_started;             /* START received for slots[0] */
    bool ready;                    /* READY received: the initializer succeeded */
    bool doomed;                   /* killed or lost: takes no more tasks */
    bool want_out;                 /* EPOLLOUT registered */
    bool write_failed;             /* the socket refused a write: no more writes */
    bool kill_owed;                /* a KILL request the fork server's socket could not take */
    double started_at;
    long handed;                   /* tasks handed over its life */
    struct fut__wire_out out;
    struct fut__wire_in in;
};

struct process_pool {
    struct fut_executor base;
    struct fut__worker_config config;
    double task_timeout;

    pthread_mutex_t lock;          /* queue, queue_len, flags below */
    struct fut_list queue;         /* of futures, through their task part */
    size_t queue_len;
    size_t queue_left;             /* queue_len when schedule() last looked (see finished) */
    bool shutdown;
    bool broken;
    bool need_wake;                /* the dispatcher sleeps and wants to hear of submits */
    double last_result_at;         /* dispatcher only: when a task last completed */

    pthread_mutex_t shutdown_lock; /* serialises joins */
    bool joined;
    pthread_t dispatcher;

    /* owned by the dispatcher thread */
    int epfd, wakefd, fs_sock;
    pid_t fs_pid;
    struct worker *workers;
    int n_workers;                 /* in the list: alive or dying, not yet reported exited */
    int n_spawning;                /* SPAWN requests without a reply */
    int spawn_owed;                /* SPAWN requests the socket could not take yet */
    bool fs_dead;
    bool fs_want_out;              /* EPOLLOUT registered for the fork server's socket */
    bool fs_failed;                /* a request could not be sent: the server is gone */
    char *broken_message;
};

/* epoll tags for the two fixed descriptors; workers are tagged with their struct */
static char tag_wake, tag_fs;

/* ---- the queue (under lock) --------------------------------------------------------- */

static void queue_push_locked(struct process_pool *pool, fut_future *f, bool front)
{
    if (front)
        fut_list_push_front(&pool->queue, &f->part.task.node);
    else
        fut_list_push_back(&pool->queue, &f->part.task.node);
    pool->queue_len++;
}

static struct fut_list queue_take_all_locked(struct process_pool *pool)
{
    pool->queue_len = 0;
    return fut_list_take(&pool->queue);
}

/* The next task to hand out, already RUNNING; NULL when the queue is empty. */
static fut_future *queue_pop(struct process_pool *pool)
{
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        struct fut_list_node *node = fut_list_pop_front(&pool->queue);
        if (node)
            pool->queue_len--;
        pool->queue_left = pool->queue_len;
        pthread_mutex_unlock(&pool->lock);
        fut_future *f = node ? fut__task_of(node) : NULL;
        if (!f || f->part.task.requeued || fut_set_running_or_notify_cancel(f) == 1)
            return f;
        fut_future_unref(f);  /* cancelled while pending */
    }
}

static void fail_future(fut_future *f, int code, const char *message)
{
    if (!f)
        return;
    if (!f->part.task.requeued && fut__future_state(f) == FUT_STATE_PENDING)
        fut_set_running_or_notify_cancel(f);
    fut_set_exception(f, code, message);
    fut_future_unref(f);
}

static void fail_list(struct fut_list list, int code, const char *message)
{
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &list)
        fail_future(fut__task_of(node), code, message);
}

static void wake_dispatcher(struct process_pool *pool)
{
    uint64_t one = 1;
    ssize_t n = write(pool->wakefd, &one, sizeof one);
    (void)n;  /* EAGAIN only at a counter of 2^64 - 2: no wake can be missing then */
}

/* ---- breaking the pool ---------------------------------------------------------------- */

static void request_kill(struct process_pool *pool, struct worker *w);

static void break_pool(struct process_pool *pool, const char *message)
{
    pthread_mutex_lock(&pool->lock);
    bool already = pool->broken;
    pool->broken = true;
    struct fut_list queued = queue_take_all_locked(pool);
    pool->queue_left = 0;  /* schedule() no longer runs: nothing is left for it */
    pthread_mutex_unlock(&pool->lock);
    if (!already)
        pool->broken_message = strdup(message);
    const char *why = pool->broken_message ? pool->broken_message : message;
    fail_list(queued, FUT_EBROKEN, why);
    for (struct worker *w = pool->workers; w; w = w->next) {
        for (int i = 0; i < w->n_slots; i++) {
            fail_future(w->slots[i], FUT_EBROKEN, why);
            w->slots[i] = NULL;
        }
        request_kill(pool, w);
    }
}

/* ---- workers ------------------------------------------------------------------------ */

static void *alloc_payload(void *ctx, const struct fut__wire_header *h)
{
    (void)ctx;
    if (h->type == FUT_WIRE_BYTES)
        return h->len > SIZE_MAX / 2 ? NULL : fut_bytes_new((size_t)h->len);
    if (h->type == FUT_WIRE_RAISE && h->len < (1u << 30)) {
        char *message = malloc((size_t)h->len + 1);
        if (message)
            message[h->len] = '\0';
        return message;
    }
    return NULL;  /* no other message has a payload: drop it */
}

static void free_payload(void *ctx, const struct fut__wire_header *h, void *p)
{
    (void)ctx;
    if (h->type == FUT_WIRE_BYTES)
        fut_bytes_free(p);
    else
        free(p);
}

static void update_events(struct process_pool *pool, struct worker *w)
{
    bool want = w->out.busy;
    if (w->fd < 0 || want == w->want_out)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = w };
    epoll_ctl(pool->epfd, EPOLL_CTL_MOD, w->fd, &ev);
    w->want_out = want;
}

static void close_worker_fd(struct process_pool *pool, struct worker *w)
{
    if (w->fd < 0)
        return;
    epoll_ctl(pool->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    close(w->fd);
    w->fd = -1;
    w->doomed = true;
    w->out.busy = false;
    fut__wire_in_abandon(&w->in, free_payload);
}

static void send_requests(struct process_pool *pool);

static void request_kill(struct process_pool *pool, struct worker *w)
{
    w->doomed = true;
    w->kill_owed = true;
    send_requests(pool);
}

/* Writes as much of the queue of slots as the socket takes. */
static void flush_worker(struct process_pool *pool, struct worker *w)
{
    while (w->fd >= 0 && !w->write_failed) {
        if (!w->out.busy) {
            if (w->n_sent >= w->n_slots)
                break;
            const struct fut_task_part *task = &w->slots[w->n_sent++]->part.task;
            struct fut__wire_header h = {
                .type = FUT_WIRE_TASK,
                .len = task->arg_copied ? task->arg_len : 0,
                .a = (uint64_t)(uintptr_t)task->fn,
                .b = (uint64_t)(uintptr_t)task->arg,
            };
            fut__wire_out_start(&w->out, &h, task->arg_copied ? task->arg : NULL);
        }
        int rc = fut__wire_out_flush(w->fd, &w->out);
        if (rc == 0)
            break;
        if (rc < 0) {
            /* the worker is gone; what it wrote before (a START, a result) must still be
             * read, so the socket stays open until its exit status comes */
            w->write_failed = true;
            w->doomed = true;
            w->out.busy = false;
            break;
        }
    }
    update_events(pool, w);
}

static void pop_slot(struct worker *w)
{
    w->slots[0] = w->slots[1];
    w->slots[1] = NULL;
    w->n_slots--;
    w->n_sent--;
    w->head_started = false;
}

static void complete_head(struct process_pool *pool, struct worker *w, const struct fut__wire_header *h,
                          void *payload)
{
    fut_future *f = w->n_slots ? w->slots[0] : NULL;
    if (w->n_slots == 0 || w->n_sent == 0) {
        /* an outcome for nothing we sent: a protocol error, the worker goes */
        free_payload(NULL, h, payload);
        request_kill(pool, w);
        return;
    }
    pop_slot(w);
    pool->last_result_at = fut__now();
    if (!f) {
        free_payload(NULL, h, payload);  /* abandoned: it already timed out */
        return;
    }
    if (h->len && !payload) {
        char message[128];
        snprintf(message, sizeof message, "a result of %llu bytes does not fit in memory",
                 (unsigned long long)h->len);
        fut_set_exception(f, FUT_ENOMEM, message);
    } else if (h->type == FUT_WIRE_RESULT) {
        fut__future_finish(f, (void *)(uintptr_t)h->a, false, 0, NULL);
    } else if (h->type == FUT_WIRE_BYTES) {
        void *bytes = payload ? payload : fut_bytes_new(0);
        if (bytes) {
            fut__bytes_claim(bytes);  /* the future owns it, no task may return it */
            fut__future_finish(f, bytes, true, 0, NULL);
        }
        else
            fut_set_exception(f, FUT_ENOMEM, "no memory for an empty bytes result");
    } else {
        char *message = payload;
        if (h->b && !message)
            message = strdup("");  /* fut_raise with an empty message */
        if (!h->b) {
            free(message);
            message = NULL;
        }
        fut__future_finish(f, NULL, false, h->code ? h->code : FUT_EINVAL, message);
    }
    fut_future_unref(f);
}

static void handle_message(struct process_pool *pool, struct worker *w, const struct fut__wire_header *h,
                           void *payload)
{
    switch (h->type) {
    case FUT_WIRE_READY:
        w->ready = true;
        break;
    case FUT_WIRE_INIT_FAILED: {
        char message[128];
        snprintf(message, sizeof message,
                 "the initializer failed in worker %d (returned %d): the process pool is broken",
                 (int)w->pid, (int)h->code);
        break_pool(pool, message);
        break;
    }
    case FUT_WIRE_START:
        if (w->n_slots > 0 && !w->head_started) {
            w->head_started = true;
            if (pool->task_timeout > 0)
                w->started_at = fut__now();
        }
        break;
    case FUT_WIRE_RESULT:
    case FUT_WIRE_BYTES:
    case FUT_WIRE_RAISE:
        complete_head(pool, w, h, payload);
        return;
    default:
        break;
    }
    free(payload);
}

/* Reads and handles everything the worker has written so far. */
static void read_worker_until(struct process_pool *pool, struct worker *w, bool drained_ok)
{
    while (w->fd >= 0) {
        struct fut__wire_header h;
        void *payload;
        while (w->fd >= 0 && fut__wire_in_next(&w->in, &h, &payload))
            handle_message(pool, w, &h, payload);
        if (w->fd < 0)
            return;
        size_t room = sizeof w->in.staging - w->in.end;
        long n = fut__wire_in_fill(w->fd, &w->in, 0);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            close_worker_fd(pool, w);  /* end of file: the exit status follows */
            return;
        }
        if ((size_t)n < room && drained_ok) {
            /* a short read emptied the socket: skip the recv that would say EAGAIN
             * (epoll is level-triggered, anything newer wakes us again) */
            while (fut__wire_in_next(&w->in, &h, &payload))
                handle_message(pool, w, &h, payload);
            return;
        }
    }
}

static struct worker *add_worker(struct process_pool *pool, pid_t pid, int fd)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->pool = pool;
    w->pid = pid;
    w->fd = fd;
    w->in.alloc = alloc_payload;
    w->in.ctx = w;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };
    if (epoll_ctl(pool->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(w);
        return NULL;
    }
    w->next = pool->workers;
    pool->workers = w;
    pool->n_workers++;
    return w;
}

static void describe_status(char *buf, size_t size, pid_t pid, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "worker %d terminated by signal %d (%s)", (int)pid, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
}

static void read_worker(struct process_pool *pool, struct worker *w)
{
    read_worker_until(pool, w, true);
}

/* The fork server reported w's exit: settle its tasks and free it. */
static void worker_exited(struct process_pool *pool, struct worker *w, int status)
{
    read_worker_until(pool, w, false);  /* what it wrote before dying is all there is */
    close_worker_fd(pool, w);
    char message[256];
    describe_status(message, sizeof message, w->pid, status);
    if (!w->ready && pool->config.initializer && !pool->broken) {
        char why[320];
        snprintf(why, sizeof why, "%s before its initializer finished: the process pool is broken",
                 message);
        break_pool(pool, why);
    }
    fut_future *requeue[2] = { NULL, NULL };
    int n_requeue = 0;
    for (int i = 0; i < w->n_slots; i++) {
        fut_future *f = w->slots[i];
        if (!f)
            continue;
        if (i == 0 && w->head_started) {
            fail_future(f, FUT_EBROKEN, message);
        } else {
            f->part.task.requeued = true;
            requeue[n_requeue++] = f;
        }
    }
    pthread_mutex_lock(&pool->lock);
    bool broken = pool->broken;
    for (int i = n_requeue - 1; i >= 0 && !broken; i--)
        queue_push_locked(pool, requeue[i], true);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < n_requeue && broken; i++)
        fail_future(requeue[i], FUT_EBROKEN, pool->broken_message);

    struct worker **p = &pool->workers;
    while (*p != w)
        p = &(*p)->next;
    *p = w->next;
    pool->n_workers--;
    free(w);
}

/* ---- the fork server ---------------------------------------------------------------- */

static void fork_server_lost(struct process_pool *pool)
{
    if (pool->fs_dead)
        return;
    pool->fs_dead = true;
    epoll_ctl(pool->epfd, EPOLL_CTL_DEL, pool->fs_sock, NULL);
    break_pool(pool, "the process pool's fork server exited unexpectedly");
    while (pool->workers)
        worker_exited(pool, pool->workers, 0);  /* their statuses are lost with it */
    pool->n_spawning = pool->spawn_owed = 0;
}

static void spawn_failed(struct process_pool *pool, int err)
{
    if (pool->n_workers > 0 || pool->n_spawning > 0 || pool->spawn_owed > 0)
        return;  /* the workers we have will run the queue */
    /* no worker and none coming: fail what waits rather than leave it pending forever */
    char message[160];
    snprintf(message, sizeof message, "could not start a worker process: %s", strerror(err));
    pthread_mutex_lock(&pool->lock);
    struct fut_list queued = queue_take_all_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    fail_list(queued, -err, message);
}

static void handle_spawned(struct process_pool *pool, const struct fut__fs_msg *msg, int fd)
{
    pool->n_spawning--;
    if (msg->pid <= 0) {
        spawn_failed(pool, msg->value ? msg->value : EAGAIN);
        return;
    }
    struct worker *w = fd >= 0 ? add_worker(pool, msg->pid, fd) : NULL;
    if (w && pool->broken)
        request_kill(pool, w);
    if (w)
        return;
    /* no descriptor (file limit) or no memory: that worker is of no use */
    if (fd >= 0)
        close(fd);
    fut__fork_server_send(pool->fs_sock, FUT_FS_KILL, msg->pid);  /* best effort: the server
                                         kills it anyway when the pool shuts down */
    spawn_failed(pool, fd >= 0 ? ENOMEM : EMFILE);
}

static void read_fork_server(struct process_pool *pool)
{
    while (!pool->fs_dead) {
        struct fut__fs_msg msg;
        int fd;
        int rc = fut__fork_server_recv(pool->fs_sock, &msg, &fd);
        if (rc == -EAGAIN)
            return;
        if (rc <= 0) {
            fork_server_lost(pool);
            return;
        }
        if (msg.type == FUT_FS_SPAWNED) {
            handle_spawned(pool, &msg, fd);
        } else if (msg.type == FUT_FS_EXITED) {
            if (fd >= 0)
                close(fd);
            struct worker *w = pool->workers;
            while (w && w->pid != msg.pid)
                w = w->next;
            if (w)
                worker_exited(pool, w, msg.value);
        } else if (fd >= 0) {
            close(fd);
        }
    }
}

static void watch_fork_server(struct process_pool *pool, bool writable)
{
    if (pool->fs_dead || writable == pool->fs_want_out)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (writable ? EPOLLOUT : 0), .data.ptr = &tag_fs };
    epoll_ctl(pool->epfd, EPOLL_CTL_MOD, pool->fs_sock, &ev);
    pool->fs_want_out = writable;
}

/* Sends the SPAWN and KILL requests owed; whatever the socket cannot take yet waits for
 * EPOLLOUT. */
static void send_requests(struct process_pool *pool)
{
    bool full = false;
    for (struct worker *w = pool->workers; w && !full && !pool->fs_dead; w = w->next) {
        if (!w->kill_owed)
            continue;
        int rc = fut__fork_server_send(pool->fs_sock, FUT_FS_KILL, w->pid);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK) {
            full = true;
        } else if (rc != 0) {
            pool->fs_failed = true;  /* handled by the dispatcher loop: callers iterate workers */
            return;
        } else {
            w->kill_owed = false;
        }
    }
    while (!full && pool->spawn_owed > 0 && !pool->fs_dead) {
        int rc = fut__fork_server_send(pool->fs_sock, FUT_FS_SPAWN, 0);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK)
            break;  /* the socket is full: retried when it is writable */
        if (rc != 0) {
            pool->fs_failed = true;
            return;
        }
        pool->spawn_owed--;
        pool->n_spawning++;
    }
    bool owed = pool->spawn_owed > 0;
    for (struct worker *w = pool->workers; w && !owed; w = w->next)
        owed = w->kill_owed;
    watch_fork_server(pool, owed);
}

/* ---- scheduling ---------------------------------------------------------------------- */

static bool can_take(const struct process_pool *pool, const struct worker *w, int max_slots)
{
    int max_tasks = pool->config.max_tasks;
    return !w->doomed && w->fd >= 0 && w->n_slots < max_slots &&
           (max_tasks == 0 || w->handed < max_tasks);
}

static void hand(struct process_pool *pool, struct worker *w, fut_future *f)
{
    w->slots[w->n_slots++] = f;
    w->handed++;
    flush_worker(pool, w);
}

/* Gives queued tasks to workers that can take them (max_slots 1: idle ones only). */
static bool hand_out(struct process_pool *pool, int max_slots)
{
    for (struct worker *w = pool->workers; w; w = w->next) {
        while (can_take(pool, w, max_slots)) {
            fut_future *f = queue_pop(pool);
            if (!f)
                return false;
            hand(pool, w, f);
        }
    }
    return true;  /* tasks may be left */
}

static void schedule(struct process_pool *pool)
{
    if (pool->broken)
        return;
    if (!hand_out(pool, 1))
        return;
    pthread_mutex_lock(&pool->lock);
    size_t waiting = pool->queue_left = pool->queue_len;
    pthread_mutex_unlock(&pool->lock);
    if (waiting == 0)
        return;
    /* no idle worker: start new ones up to max_workers, one per waiting task */
    int total = pool->n_workers + pool->n_spawning + pool->spawn_owed;
    int coming = pool->n_spawning + pool->spawn_owed;
    while (total < pool->base.max_workers && (size_t)coming < waiting) {
        pool->spawn_owed++;
        total++;
        coming++;
    }
    send_requests(pool);
    /* only when no worker can come any more is a task handed ahead to a busy worker */
    if (total >= pool->base.max_workers && coming == 0)
        hand_out(pool, 2);
}

/* ---- timeouts ----------------------------------------------------------------------- */

static int next_timeout_ms(struct process_pool *pool)
{
    if (pool->task_timeout <= 0)
        return -1;
    double earliest = INFINITY;
    for (struct worker *w = pool->workers; w; w = w->next)
        if (w->head_started && w->slots[0] && w->started_at < earliest)
            earliest = w->started_at;
    if (earliest == INFINITY)
        return -1;
    double left = earliest + pool->task_timeout - fut__now();
    return left <= 0 ? 0 : (int)ceil(left * 1000);
}

static void expire_tasks(struct process_pool *pool)
{
    if (pool->task_timeout <= 0)
        return;
    double now = fut__now();
    for (struct worker *w = pool->workers; w; w = w->next) {
        if (!w->head_started || !w->slots[0] || now < w->started_at + pool->task_timeout)
            continue;
        char message[160];
        snprintf(message, sizeof message,
                 "the task ran longer than task_timeout (%g s): worker %d was killed",
                 pool->task_timeout, (int)w->pid);
        fail_future(w->slots[0], FUT_ETIMEDOUT, message);
        w->slots[0] = NULL;  /* abandoned: its outcome, if any arrives, is ignored */
        request_kill(pool, w);
    }
}

/* ---- the dispatcher thread ---------------------------------------------------------- */

/* Shutting down: workers with nothing to do are told to exit (end of file). */
static void retire_idle_workers(struct process_pool *pool)
{
    for (struct worker *w = pool->workers; w; w = w->next)
        if (w->n_slots == 0 && w->fd >= 0 && !w->out.busy) {
            shutdown(w->fd, SHUT_WR);
            w->doomed = true;
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

static void dispatch_events(struct process_pool *pool, struct epoll_event *events, int n)
{
    for (int i = 0; i < n; i++) {
        void *tag = events[i].data.ptr;
        if (tag == &tag_wake) {
            /* edge-triggered: every write is an event, the counter need not be read */
        } else if (tag == &tag_fs) {
            if (events[i].events & EPOLLOUT)
                send_requests(pool);
            read_fork_server(pool);
        }
    }
    /* workers after the fork server: its EXITED report may free a worker that appears
     * later in this batch, so workers are looked up again rather than trusted from it */
    for (int i = 0; i < n; i++) {
        void *tag = events[i].data.ptr;
        if (tag == &tag_wake || tag == &tag_fs)
            continue;
        for (struct worker *w = pool->workers; w; w = w->next) {
            if (w != tag)
                continue;
            if (events[i].events & EPOLLOUT)
                flush_worker(pool, w);
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                read_worker(pool, w);
            break;
        }
    }
}

/* Whether a message is likely within microseconds: a worker holds a task, or one just
 * completed (a caller that waits on each result submits the next one at once). */
static bool activity_expected(const struct process_pool *pool)
{
    for (const struct worker *w = pool->workers; w; w = w->next)
        if (w->n_slots > 0)
            return true;
    return fut__now() - pool->last_result_at < FUT_SPIN_SECONDS;
}

/* Polls without sleeping for a short while. A result due in microseconds would otherwise
 * cost a sleep and a wake-up, which take longer than most small tasks. */
static int poll_briefly(struct process_pool *pool, struct epoll_event *events, int max)
{
    double until = fut__now() + FUT_SPIN_SECONDS;
    int n;
    while ((n = epoll_wait(pool->epfd, events, max, 0)) == 0 && fut__now() < until)
        sched_yield();  /* the worker or the submitter may need this core */
    return n;
}

static void *dispatcher_main(void *arg)
{
    struct process_pool *pool = arg;
    struct epoll_event events[64];
    for (;;) {
        if (pool->fs_failed)
            fork_server_lost(pool);
        schedule(pool);
        expire_tasks(pool);
        if (pool->fs_failed)
            fork_server_lost(pool);
        bool again;
        if (finished(pool, &again))
            break;
        int timeout = again ? 0 : next_timeout_ms(pool);
        int n = timeout != 0 && activity_expected(pool) ? poll_briefly(pool, events, 64) : 0;
        if (n <= 0)
            n = epoll_wait(pool->epfd, events, 64, timeout);
        pthread_mutex_lock(&pool->lock);
        pool->need_wake = false;
        pthread_mutex_unlock(&pool->lock);
        if (n > 0)
            dispatch_events(pool, events, n);
    }
    /* everything is reported exited: closing the socket lets the fork server go */
    close(pool->fs_sock);
    pool->fs_sock = -1;
    int status;
    while (waitpid(pool->fs_pid, &status, 0) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* ---- the executor interface ------------------------------------------------------- */

static int process_pool_submit(fut_executor *ex, fut_future *f)
{
    struct process_pool *pool = (struct process_pool *)ex;
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    if (pool->shutdown) {
        rc = FUT_ESHUTDOWN;
    } else if (pool->broken) {
        rc = FUT_EBROKEN;
    } else {
        fut_future_ref(f);
        queue_push_locked(pool, f, false);
    }
    bool wake = rc == 0 && pool->need_wake;
    pool->need_wake = pool->need_wake && !wake;
    pthread_mutex_unlock(&pool->lock);
    if (wake)
        wake_dispatcher(pool);
    return rc;
}

static void join_dispatcher(struct process_pool *pool)
{
    pthread_mutex_lock(&pool->shutdown_lock);
    if (!pool->joined && !pthread_equal(pool->dispatcher, pthread_self())) {
        pthread_join(pool->dispatcher, NULL);
        pool->joined = true;
    }
    pthread_mutex_unlock(&pool->shutdown_lock);
}

static int process_pool_shutdown(fut_executor *ex, bool wait, bool cancel_futures)
{
    struct process_pool *pool = (struct process_pool *)ex;
    pthread_mutex_lock(&pool->lock);
    pool->shutdown = true;
    struct fut_list cancelled = { 0 };
    if (cancel_futures)
        cancelled = queue_take_all_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &cancelled) {
        fut_future *f = fut__task_of(node);
        if (f->part.task.requeued) {
            /* handed to a worker once already: it is running, not pending */
            fut_set_exception(f, FUT_ECANCELLED, "cancelled by shutdown before it started");
        } else {
            fut_cancel(f);
            fut_set_running_or_notify_cancel(f);
        }
        fut_future_unref(f);
    }
    wake_dispatcher(pool);
    if (wait)
        join_dispatcher(pool);
    return 0;
}

static void process_pool_destroy(fut_executor *ex)
{
    struct process_pool *pool = (struct process_pool *)ex;
    join_dispatcher(pool);
    close(pool->epfd);
    close(pool->wakefd);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->shutdown_lock);
    free(pool->broken_message);
    free(pool);
}

static const struct fut_executor_ops process_pool_ops = {
    .submit = process_pool_submit,
    .shutdown = process_pool_shutdown,
    .destroy = process_pool_destroy,
    /* A chunk costs one round trip (two messages each way, a few microseconds); items are
     * often far cheaper. Eight chunks per worker keep the workers balanced when items
     * differ in cost, and 4096 items bound a chunk's reply. */
    .chunks_per_worker = 8,
    .max_chunksize = 4096,
};

static int start_fork_server(struct process_pool *pool)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    pid_t pid = fut__fork_server_start(sv[1], sv[0], &pool->config, pool->base.max_workers + 1);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return (int)pid;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    pool->fs_sock = sv[0];
    pool->fs_pid = pid;
    return 0;
}

static void stop_fork_server(struct process_pool *pool)
{
    close(pool->fs_sock);
    int status;
    while (waitpid(pool->fs_pid, &status, 0) < 0 && errno == EINTR)
        ;
}

static int start_dispatcher(struct process_pool *pool)
{
    pool->epfd = epoll_create1(EPOLL_CLOEXEC);
    pool->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->epfd < 0 || pool->wakefd < 0)
        return -errno;
    struct epoll_event wake = { .events = EPOLLIN | EPOLLET, .data.ptr = &tag_wake };
    struct epoll_event fs = { .events = EPOLLIN, .data.ptr = &tag_fs };
    if (epoll_ctl(pool->epfd, EPOLL_CTL_ADD, pool->wakefd, &wake) != 0 ||
        epoll_ctl(pool->epfd, EPOLL_CTL_ADD, pool->fs_sock, &fs) != 0)
        return -errno;
    int err = pthread_create(&pool->dispatcher, NULL, dispatcher_main, pool);
    return -err;
}

fut_executor *fut_process_pool_new(const fut_pool_options *opts)
{
    int rc = fut__pool_options_check(opts);
    if (rc) {
        errno = -rc;
        return NULL;
    }
    struct process_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        errno = ENOMEM;
        return NULL;
    }
    pool->base.ops = &process_pool_ops;
    pool->base.max_workers = opts && opts->max_workers ? opts->max_workers : fut__cpu_count();
    pool->epfd = pool->wakefd = pool->fs_sock = -1;
    if (opts) {
        pool->config.initializer = opts->initializer;
        pool->config.initarg = opts->initarg;
        pool->config.max_tasks = opts->max_tasks_per_child;
        pool->task_timeout = opts->task_timeout;
    }
    pthread_sigmask(SIG_SETMASK, NULL, &pool->config.sigmask);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->shutdown_lock, NULL);
    /* the fork server first: it must not inherit the pool's own descriptors */
    if ((rc = start_fork_server(pool)) != 0)
        goto fail;
    if ((rc = start_dispatcher(pool)) != 0) {
        stop_fork_server(pool);
        goto fail;
    }
    return &pool->base;
fail:
    if (pool->epfd >= 0)
        close(pool->epfd);
    if (pool->wakefd >= 0)
        close(pool->wakefd);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->shutdown_lock);
    free(pool);
    errno = -rc;
    return NULL;
}
