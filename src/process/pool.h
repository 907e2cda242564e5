/* SPDX-License-Identifier: MIT */
/*
 * Internal: the process pool, shared by its four parts.
 *
 *   pool.c         the executor interface (submit, shutdown, free) and the queue
 *   dispatcher.c   the dispatcher thread: epoll, scheduling, task timeouts
 *   fork_client.c  requests to the fork server (spawn, kill) and its reports
 *   channel.c      the parent's end of each worker's socket: tasks out, outcomes in
 *
 * Processes: the parent (the user's process), one fork server forked by
 * fut_process_pool_new (fork_server.c), and up to max_workers workers forked by the fork
 * server (worker.c). Threads: ONE dispatcher thread in the parent; the fork server and
 * the workers are single-threaded.
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
 * before it runs a task: task_timeout counts from there. A task handed ahead is offered
 * through the worker's claim word: when another worker becomes idle with nothing queued
 * while the task still waits, the dispatcher takes it back (compare-and-swap, see
 * worker.h) and hands it to the idle worker, so the one-ahead rule never makes a task
 * wait behind a long one while a worker idles.
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
#ifndef FUT_PROCESS_POOL_H
#define FUT_PROCESS_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/executor.h"
#include "core/poller.h"
#include "process/fork_server.h"
#include "process/ring.h"
#include "process/wire.h"
#include "process/worker.h"

/* The parent's view of one worker process: its channel and the tasks it holds. */
struct pool_worker {
    struct pool_worker *next;
    struct process_pool *pool;
    pid_t pid;
    int fd;                        /* its socket (records, wire.h); -1 once closed (end of
                                      file or error) */
    void *map;                     /* its channel (ring.h); unmapped when it is freed */
    struct fut__ring to_worker;    /* we produce: TASK messages */
    struct fut__ring to_parent;    /* we consume: everything it says; never trusted */
    struct fut__wire_fds fds;      /* payload descriptors received, not yet claimed */
    fut_future *slots[2];          /* slots[0] is the oldest; a NULL slot was abandoned
                                      (timed out), its outcome is ignored */
    uint64_t seqs[2];              /* the sequence number each slot's task was sent with */
    uint64_t ends[2];              /* where each slot's message ends in its ring */
    uint64_t revoked_end;          /* where the last message taken back ends: no new offer
                                      in the claim word until the worker read past it */
    uint64_t last_seq;
    int n_slots;
    int n_sent;                    /* slots written in its ring (all of them: a write
                                      never waits) */
    bool head_started;             /* START received for slots[0] */
    bool ready;                    /* READY received: the initializer succeeded */
    bool doomed;                   /* killed or lost: takes no more tasks */
    bool kill_owed;                /* a KILL request the fork server's socket could not take */
    _Atomic uint64_t *claim;       /* its claim word (worker.h) */
    const char *fault;             /* why it was killed for breaking the protocol, or NULL */
    double started_at;
    long handed;                   /* tasks handed over its life */
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
    /* the dispatcher polls briefly (dispatcher.c): a submit that would wake it only says
     * so in `poked`, no system call; it looks at the queue again under `lock` before it
     * sleeps, so a submit that saw it polling is never missed */
    atomic_bool polling;
    atomic_bool poked;
    double last_result_at;         /* dispatcher only: when a task last completed */

    struct fut_joinable_thread dispatcher;

    /* owned by the dispatcher thread */
    struct fut_poller poller;
    int wakefd, fs_sock;
    pid_t fs_pid;
    struct pool_worker *workers;
    int n_workers;                 /* in the list: alive or dying, not yet reported exited */
    int n_spawning;                /* SPAWN requests without a reply */
    int spawn_owed;                /* SPAWN requests the socket could not take yet */
    int spawn_failures;            /* consecutive failed spawns: the backoff's exponent */
    double spawn_retry_at;         /* no SPAWN request before then (after a failure) */
    bool fs_dead;
    bool fs_want_out;              /* the fork server's socket watched for writability */
    bool fs_failed;                /* a request could not be sent: the server is gone */
    char *broken_message;
    _Atomic uint64_t *claims;      /* the workers' claim words, MAP_SHARED (worker.h) */
    size_t n_claims;

    /* fut_executor_get_stats: the dispatcher's counts, published before each wait */
    atomic_size_t stat_workers, stat_idle;
};

/* pool.c: the queue, under pool->lock unless said otherwise */
void fut__pool_queue_push_locked(struct process_pool *pool, fut_future *f, bool front);
struct fut_list fut__pool_queue_take_all_locked(struct process_pool *pool);
/* The next task to hand out, already RUNNING; NULL when the queue is empty. Takes the lock. */
fut_future *fut__pool_queue_pop(struct process_pool *pool);
/* Fails a task the pool holds and drops the pool's reference (f may be NULL). */
void fut__pool_fail_future(fut_future *f, int code, const char *message);
void fut__pool_fail_list(struct fut_list list, int code, const char *message);
void fut__pool_wake_dispatcher(struct process_pool *pool);
/* Dispatcher: fails everything queued and held, and has every worker killed. */
void fut__pool_break(struct process_pool *pool, const char *message);

/* channel.c (dispatcher thread) */
struct pool_worker *fut__channel_open(struct process_pool *pool, pid_t pid, int fd, void *map);
/* Whether w's ring has room for one more task message (false, and w is killed, when its
 * ring is corrupt). */
bool fut__channel_has_room(struct process_pool *pool, struct pool_worker *w);
/* Whether the worker has read its ring up to pos (false, and w is killed, when its ring is
 * corrupt). */
bool fut__channel_consumed(struct process_pool *pool, struct pool_worker *w, uint64_t pos);
/* Writes the task of slot i in w's ring: 0; or, when its argument could not be put in
 * shared memory (descriptors, memory), a negative FUT_ code and the slot is not taken. */
int fut__channel_send(struct process_pool *pool, struct pool_worker *w, fut_future *f, uint64_t seq);
/* Reads and handles everything the worker has written so far in its ring. */
void fut__channel_read(struct process_pool *pool, struct pool_worker *w);
/* The worker's socket is readable: takes its records (wake-ups, descriptors). */
void fut__channel_read_socket(struct process_pool *pool, struct pool_worker *w);
/* Whether w has written a message not read yet. */
bool fut__channel_pending(const struct pool_worker *w);
/* Before the dispatcher blocks: tells every worker to wake it; false (and nobody was
 * told) when a message is already waiting. fut__channel_awake withdraws it. */
bool fut__channel_prepare_sleep(struct process_pool *pool);
void fut__channel_awake(struct process_pool *pool);
/* The fork server reported w's exit: settle its tasks and free it. */
void fut__channel_worker_exited(struct process_pool *pool, struct pool_worker *w, int status);

/* fork_client.c (dispatcher thread) */
void fut__fork_client_kill(struct process_pool *pool, struct pool_worker *w);
/* Sends the SPAWN and KILL requests owed; what the socket cannot take waits for it to
 * become writable. */
void fut__fork_client_send_requests(struct process_pool *pool);
void fut__fork_client_read(struct process_pool *pool);
void fut__fork_client_lost(struct process_pool *pool);

/* The most workers a process pool accepts (each is a process and a socket). */
#define FUT_PROCESS_POOL_MAX_WORKERS 65536
/* The dispatcher thread's name (see fut_process_pool_new(3), like the process names of
 * fork_server.h and worker.h). */
#define FUT_DISPATCHER_NAME "fut-dispatch"

/* dispatcher.c */
#define FUT_DISPATCHER_EVENTS 64
void *fut__dispatcher_main(void *pool);

#endif
