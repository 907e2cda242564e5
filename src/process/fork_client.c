/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher's side of the fork server: SPAWN and KILL requests (sent without
 * blocking; what the socket cannot take is owed until it is writable), SPAWNED and EXITED
 * reports. Dispatcher thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "process/fd_registry.h"
#include "process/pool.h"
#include "process/ring.h"

void fut__fork_client_kill(struct process_pool *pool, struct pool_worker *w)
{
    w->doomed = true;
    w->kill_owed = true;
    fut__fork_client_send_requests(pool);
}

void fut__fork_client_lost(struct process_pool *pool)
{
    if (pool->fs_dead)
        return;
    pool->fs_dead = true;
    fut__poller_set(&pool->poller, pool->fs_sock, FUT_POLL_READABLE, 0);
    fut__pool_break(pool, "the process pool's fork server exited unexpectedly");
    while (pool->workers)
        fut__channel_worker_exited(pool, pool->workers, 0);  /* their statuses are lost with it */
    pool->n_spawning = pool->spawn_owed = 0;
}

/*
 * A worker could not be started (fork failed: RLIMIT_NPROC, memory; or its socket could
 * not be received: the file limit). Retrying at once would fork in a storm or spin, so the
 * next attempt waits, 10 ms doubling up to 1 s. With no worker left to run the queue,
 * what waits fails now rather than waiting for a worker that may never come.
 */
static void spawn_failed(struct process_pool *pool, int err)
{
    int exponent = pool->spawn_failures < 7 ? pool->spawn_failures : 7;
    pool->spawn_failures++;
    pool->spawn_retry_at = fut__now() + 0.01 * (double)(1 << exponent);
    if (pool->n_workers > 0 || pool->n_spawning > 0 || pool->spawn_owed > 0)
        return;  /* the workers we have will run the queue */
    char message[160];
    snprintf(message, sizeof message, "cannot fork a worker: %s", strerror(err));
    pthread_mutex_lock(&pool->lock);
    struct fut_list queued = fut__pool_queue_take_all_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    fut__pool_fail_list(queued, FUT_EBROKEN, message);
}

static void handle_spawned(struct process_pool *pool, const struct fut__fs_msg *msg, int fd, void *ring)
{
    pool->n_spawning--;
    if (msg->pid <= 0) {
        spawn_failed(pool, msg->value ? msg->value : EAGAIN);
        return;
    }
    struct pool_worker *w = NULL;
    if (fd >= 0 && ring && msg->slot >= 0 && (size_t)msg->slot < pool->n_claims &&
        (w = fut__channel_open(pool, msg->pid, fd, ring)) != NULL) {
        w->claim = &pool->claims[msg->slot];
        atomic_store(w->claim, 0);  /* a previous worker's word: no task of ours has seq 0 */
    }
    if (w && pool->broken)
        fut__fork_client_kill(pool, w);
    if (w) {
        pool->spawn_failures = 0;
        return;
    }
    /* no descriptor (file limit), no mapping or no memory: that worker is of no use */
    if (fd >= 0)
        fut__fd_registry_close(fd);
    if (ring)
        munmap(ring, FUT_CHANNEL_MAP_SIZE);
    fut__fork_server_send(pool->fs_sock, FUT_FS_KILL, msg->pid);  /* best effort: the server
                                         kills it anyway when the pool shuts down */
    spawn_failed(pool, fd >= 0 ? ENOMEM : EMFILE);
}

/* Maps a worker's channel from its memfd, which is closed: the parent keeps only the
 * mapping, and its children (MADV_DONTFORK) not even that. NULL on failure. */
static void *map_channel(int fd)
{
    if (fd < 0)
        return NULL;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == FUT_CHANNEL_MAP_SIZE &&
        (fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK))
        map = mmap(NULL, FUT_CHANNEL_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return NULL;
    madvise(map, FUT_CHANNEL_MAP_SIZE, MADV_DONTFORK);
    return map;
}

void fut__fork_client_read(struct process_pool *pool)
{
    while (!pool->fs_dead) {
        struct fut__fs_msg msg;
        int fds[2];
        /* a worker's socket is registered, and its memfd closed, before any other thread
         * can fork */
        fut__fd_registry_lock();
        int rc = fut__fork_server_recv(pool->fs_sock, &msg, fds);
        if (fds[0] >= 0 && fut__fd_registry_add_locked(fds[0]) != 0) {
            close(fds[0]);
            fds[0] = -1;  /* handled as a descriptor that could not be received */
        }
        void *ring = map_channel(fds[1]);
        fut__fd_registry_unlock();
        if (rc == -EAGAIN)
            return;
        if (rc <= 0) {
            fut__fork_client_lost(pool);
            return;
        }
        if (msg.type == FUT_FS_SPAWNED) {
            handle_spawned(pool, &msg, fds[0], ring);
            continue;
        }
        if (fds[0] >= 0)
            fut__fd_registry_close(fds[0]);
        if (ring)
            munmap(ring, FUT_CHANNEL_MAP_SIZE);
        if (msg.type == FUT_FS_EXITED) {
            struct pool_worker *w = pool->workers;
            while (w && w->pid != msg.pid)
                w = w->next;
            if (w)
                fut__channel_worker_exited(pool, w, msg.value);
        }
    }
}

static void watch_fork_server(struct process_pool *pool, bool writable)
{
    if (pool->fs_dead || writable == pool->fs_want_out)
        return;
    unsigned mask = FUT_POLL_READABLE | (writable ? FUT_POLL_WRITABLE : 0);
    fut__poller_set(&pool->poller, pool->fs_sock, FUT_POLL_READABLE, mask);
    pool->fs_want_out = writable;
}

/* Sends the SPAWN and KILL requests owed; whatever the socket cannot take yet waits for
 * writability. */
void fut__fork_client_send_requests(struct process_pool *pool)
{
    bool full = false;
    for (struct pool_worker *w = pool->workers; w && !full && !pool->fs_dead; w = w->next) {
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
    for (struct pool_worker *w = pool->workers; w && !owed; w = w->next)
        owed = w->kill_owed;
    watch_fork_server(pool, owed);
}
