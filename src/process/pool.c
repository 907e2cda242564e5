/* SPDX-License-Identifier: MIT */
/*
 * The process pool's executor interface and its queue: submit, shutdown, free, and the
 * pool's creation (the fork server first, then the dispatcher thread). See pool.h.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/annotate.h"
#include "core/task_context.h"
#include "process/fd_registry.h"
#include "process/pool.h"

/* ---- the queue (under lock) --------------------------------------------------------- */

void fut__pool_queue_push_locked(struct process_pool *pool, fut_future *f, bool front)
{
    if (front)
        fut_list_push_front(&pool->queue, &f->part.task.node);
    else
        fut_list_push_back(&pool->queue, &f->part.task.node);
    pool->queue_len++;
}

struct fut_list fut__pool_queue_take_all_locked(struct process_pool *pool)
{
    pool->queue_len = 0;
    return fut_list_take(&pool->queue);
}

/* The next task to hand out, already RUNNING; NULL when the queue is empty. */
fut_future *fut__pool_queue_pop(struct process_pool *pool)
{
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        struct fut_list_node *node = fut_list_pop_front(&pool->queue);
        if (node)
            pool->queue_len--;
        pool->queue_left = pool->queue_len;
        pthread_mutex_unlock(&pool->lock);
        fut_future *f = node ? fut__task_of(node) : NULL;
        if (!f || fut__future_flag(f, FUT_FLAG_REQUEUED) || fut_set_running_or_notify_cancel(f) == 1)
            return f;
        fut_future_unref(f);  /* cancelled while pending */
    }
}

void fut__pool_fail_future(fut_future *f, int code, const char *message)
{
    if (!f)
        return;
    if (!fut__future_flag(f, FUT_FLAG_REQUEUED) && fut__future_state(f) == FUT_STATE_PENDING)
        fut_set_running_or_notify_cancel(f);
    fut__future_fail(f, code, message);
    fut_future_unref(f);
}

void fut__pool_fail_list(struct fut_list list, int code, const char *message)
{
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &list)
        fut__pool_fail_future(fut__task_of(node), code, message);
}

void fut__pool_wake_dispatcher(struct process_pool *pool)
{
    uint64_t one = 1;
    ssize_t n = write(pool->wakefd, &one, sizeof one);
    (void)n;  /* EAGAIN only at a counter of 2^64 - 2: no wake can be missing then */
}

void fut__pool_break(struct process_pool *pool, const char *message)
{
    pthread_mutex_lock(&pool->lock);
    bool already = pool->broken;
    pool->broken = true;
    struct fut_list queued = fut__pool_queue_take_all_locked(pool);
    pool->queue_left = 0;  /* schedule() no longer runs: nothing is left for it */
    pthread_mutex_unlock(&pool->lock);
    if (!already)
        pool->broken_message = strdup(message);
    const char *why = pool->broken_message ? pool->broken_message : message;
    fut__pool_fail_list(queued, FUT_EBROKEN, why);
    for (struct pool_worker *w = pool->workers; w; w = w->next) {
        for (int i = 0; i < w->n_slots; i++) {
            fut__pool_fail_future(w->slots[i], FUT_EBROKEN, why);
            w->slots[i] = NULL;
        }
        fut__fork_client_kill(pool, w);
    }
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
        fut__pool_queue_push_locked(pool, f, false);
    }
    bool wake = rc == 0 && pool->need_wake;
    pool->need_wake = pool->need_wake && !wake;
    pthread_mutex_unlock(&pool->lock);
    if (!wake)
        return rc;
    if (atomic_load(&pool->polling))
        atomic_store_explicit(&pool->poked, true, memory_order_relaxed);
    else
        fut__pool_wake_dispatcher(pool);
    return rc;
}

static int process_pool_shutdown(fut_executor *ex, bool wait, bool cancel_futures)
{
    struct process_pool *pool = (struct process_pool *)ex;
    pthread_mutex_lock(&pool->lock);
    pool->shutdown = true;
    struct fut_list cancelled = { 0 };
    if (cancel_futures)
        cancelled = fut__pool_queue_take_all_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    fut__executor_cancel_queued(cancelled);
    fut__pool_wake_dispatcher(pool);
    if (wait)
        fut__join_once(&pool->dispatcher);
    return 0;
}

static void process_pool_stats(const fut_executor *ex, size_t *workers, size_t *idle)
{
    struct process_pool *pool = (struct process_pool *)ex;
    *workers = atomic_load_explicit(&pool->stat_workers, memory_order_relaxed);
    *idle = atomic_load_explicit(&pool->stat_idle, memory_order_relaxed);
}

/* The epoll instance and the eventfd (registered: see process/fd_registry.h). */
static void close_dispatcher_fds(struct process_pool *pool)
{
    fut__fd_registry_close(pool->poller.epfd);
    pool->poller.epfd = -1;
    fut__poller_close(&pool->poller);
    fut__fd_registry_close(pool->wakefd);
    pool->wakefd = -1;
}

static void process_pool_destroy(fut_executor *ex)
{
    struct process_pool *pool = (struct process_pool *)ex;
    fut__join_once(&pool->dispatcher);
    close_dispatcher_fds(pool);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->dispatcher.lock);
    free(pool->broken_message);
    munmap(pool->claims, pool->n_claims * sizeof *pool->claims);
    free(pool);
}

/*
 * In a forked child: our copies of the descriptors are closed and the memory freed, and
 * nothing else is done: no epoll_ctl (the epoll set is the parent's too), no shutdown()
 * of a socket (that would end the parent's connection), no kill or waitpid (the fork
 * server and the workers are the parent's children), no lock (a vanished thread may hold
 * it). Futures the pool held lose its reference; they stay pending (waits on them fail
 * with FUT_EBROKEN).
 */
static void process_pool_forget(fut_executor *ex)
{
    struct process_pool *pool = (struct process_pool *)ex;
    struct fut_list_node *node, *next;
    fut_list_for_each_safe(node, next, &pool->queue)
        fut_future_unref(fut__task_of(node));
    for (struct pool_worker *w = pool->workers, *wnext; w; w = wnext) {
        wnext = w->next;
        for (int i = 0; i < w->n_slots; i++)
            fut_future_unref(w->slots[i]);
        free(w);
    }
    /* Its descriptors are gone already: the fd registry closed them in this child as it
     * was forked (process/fd_registry.h); closing them again could close numbers reused
     * since. */
    free(pool->poller.raw);
    free(pool->broken_message);
    free(pool);
}

static const struct fut_executor_ops process_pool_ops = {
    .submit = process_pool_submit,
    .shutdown = process_pool_shutdown,
    .destroy = process_pool_destroy,
    .stats = process_pool_stats,
    .forget = process_pool_forget,
    /* A chunk costs one round trip (two messages each way, a few microseconds); items are
     * often far cheaper. Eight chunks per worker keep the workers balanced when items
     * differ in cost, and 4096 items bound a chunk's reply. */
    .chunks_per_worker = 8,
    .max_chunksize = 4096,
    /* large arguments cross as the copy made at submit: one copy, not two */
    .sealed_arg_copies = true,
};

static int start_fork_server(struct process_pool *pool)
{
    int sv[2];
    fut__fd_registry_lock();
    int rc = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ? -errno : 0;
    if (rc == 0 && (rc = fut__fd_registry_add_locked(sv[0])) != 0) {
        close(sv[0]);
        close(sv[1]);
    }
    fut__fd_registry_unlock();
    if (rc)
        return rc;
    /* sv[1] is not registered: it is the fork server's */
    pid_t pid = fut__fork_server_start(sv[1], sv[0], &pool->config, pool->base.max_workers + 1);
    close(sv[1]);
    if (pid < 0) {
        fut__fd_registry_close(sv[0]);
        return (int)pid;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    pool->fs_sock = sv[0];
    pool->fs_pid = pid;
    return 0;
}

static void stop_fork_server(struct process_pool *pool)
{
    shutdown(pool->fs_sock, SHUT_RDWR);  /* see the dispatcher's end */
    fut__fd_registry_close(pool->fs_sock);
    int status;
    while (waitpid(pool->fs_pid, &status, 0) < 0 && errno == EINTR)
        ;
}

static int start_dispatcher(struct process_pool *pool)
{
    fut__fd_registry_lock();
    int rc = fut__poller_open(&pool->poller, FUT_DISPATCHER_EVENTS);
    if (rc == 0 && (rc = fut__fd_registry_add_locked(pool->poller.epfd)) != 0) {
        fut__poller_close(&pool->poller);
    }
    if (rc == 0 && (pool->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        rc = -errno;
    if (rc == 0 && (rc = fut__fd_registry_add_locked(pool->wakefd)) != 0) {
        close(pool->wakefd);
        pool->wakefd = -1;
    }
    fut__fd_registry_unlock();
    if (rc)
        return rc;
    /* edge-triggered: every write is an event, so the counter never needs reading */
    if ((rc = fut__poller_set(&pool->poller, pool->wakefd, 0, FUT_POLL_READABLE | FUT_POLL_EDGE)) ||
        (rc = fut__poller_set(&pool->poller, pool->fs_sock, 0, FUT_POLL_READABLE)))
        return rc;
    return -pthread_create(&pool->dispatcher.thread, NULL, fut__dispatcher_main, pool);
}

fut_executor *fut_process_pool_new(const fut_pool_options *opts)
{
    int rc = fut__pool_options_check(opts);
    if (rc) {
        errno = -rc;
        return NULL;
    }
    if (opts && opts->max_workers > FUT_PROCESS_POOL_MAX_WORKERS) {
        errno = EINVAL;
        return NULL;
    }
    struct process_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        errno = ENOMEM;
        return NULL;
    }
    fut__executor_init(&pool->base, &process_pool_ops,
                       opts && opts->max_workers ? opts->max_workers : fut__cpu_count());
    pool->poller.epfd = pool->wakefd = pool->fs_sock = -1;
    FUT_ATOMIC_VAR(&pool->stat_workers);  /* published by the dispatcher, read by anyone */
    FUT_ATOMIC_VAR(&pool->stat_idle);
    FUT_ATOMIC_VAR(&pool->polling);       /* flags only: the queue is under the lock */
    FUT_ATOMIC_VAR(&pool->poked);
    if (opts) {
        pool->config.initializer = opts->initializer;
        pool->config.initarg = opts->initarg;
        pool->config.max_tasks = opts->max_tasks_per_child;
        pool->task_timeout = opts->task_timeout;
        pool->base.task_timeout = opts->task_timeout;
    }
    pthread_sigmask(SIG_SETMASK, NULL, &pool->config.sigmask);
    sigaction(SIGCHLD, NULL, &pool->config.sigchld);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->dispatcher.lock, NULL);
    /* claim words shared with every worker: mapped before the fork server is forked */
    pool->n_claims = (size_t)pool->base.max_workers + 1;
    pool->claims = mmap(NULL, pool->n_claims * sizeof *pool->claims, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pool->claims == MAP_FAILED) {
        pool->claims = NULL;
        rc = FUT_ENOMEM;
        goto fail;
    }
    pool->config.claims = pool->claims;
    /* the fork server first: it must not inherit the pool's own descriptors */
    if ((rc = start_fork_server(pool)) != 0)
        goto fail;
    if ((rc = start_dispatcher(pool)) != 0) {
        stop_fork_server(pool);
        goto fail;
    }
    return &pool->base;
fail:
    if (pool->claims)
        munmap(pool->claims, pool->n_claims * sizeof *pool->claims);
    close_dispatcher_fds(pool);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->dispatcher.lock);
    free(pool);
    errno = -rc;
    return NULL;
}
