/* SPDX-License-Identifier: MIT */
/*
 * fut_loop_add_signal_handler: asyncio's signal handlers, with a self-pipe.
 *
 * A signal belongs to at most one loop at a time. Its sigaction handler, which may run
 * in any thread that leaves the signal unblocked, does two async-signal-safe things: it
 * marks the signal pending and writes one byte to the owning loop's pipe. The pipe's read
 * end is one of the loop's fd watchers; its callback, on the loop thread, empties the
 * pipe and runs the callback of every signal marked pending. Bytes only wake the loop
 * (a full pipe loses some, never a signal: the pending marks carry them).
 *
 * State shared with the handler is process-wide and lock-free: pipe_of[signum] (the write
 * end, -1: no owner) and pending[signum]. Everything else is under `table_lock`: the
 * owner of each signal and the disposition found when the loop took it, which removing
 * the last handler (or freeing the loop) restores. A forked child restores them all at
 * once: no loop of the parent can run its handlers there (see futures(7)).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop.h"

#define MAX_SIGNAL 65                  /* signal numbers are below this (NSIG on Linux) */

/* One loop's handlers. */
struct fut_loop_signals {
    int pipe_r, pipe_w;
    fut_callback cb[MAX_SIGNAL];
    void *arg[MAX_SIGNAL];
    bool has[MAX_SIGNAL];
    size_t n;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static fut_loop *owner[MAX_SIGNAL];                  /* under table_lock */
static struct sigaction saved[MAX_SIGNAL];           /* under table_lock, when owned */
static atomic_int pipe_of[MAX_SIGNAL];               /* the handler's view: fd + 1, 0: none */
static atomic_bool pending[MAX_SIGNAL];

static void on_signal(int signum)
{
    int saved_errno = errno;
    if (signum > 0 && signum < MAX_SIGNAL) {
        int fd = atomic_load(&pipe_of[signum]) - 1;
        atomic_store(&pending[signum], true);
        if (fd >= 0) {
            unsigned char byte = (unsigned char)signum;
            ssize_t unused = write(fd, &byte, 1);  /* EAGAIN: the loop wakes anyway */
            (void)unused;
        }
    }
    errno = saved_errno;
}

static bool valid_signal(int signum)
{
    return signum > 0 && signum < MAX_SIGNAL && signum < NSIG && signum != SIGKILL &&
           signum != SIGSTOP;
}

/* The pipe's reader, on the loop thread: runs the callbacks of the signals that came. */
static void on_pipe_readable(void *arg)
{
    fut_loop *loop = arg;
    unsigned char buf[64];
    while (read(loop->signals->pipe_r, buf, sizeof buf) > 0)
        ;
    for (int signum = 1; signum < MAX_SIGNAL; signum++) {
        /* looked up at each turn: an earlier callback may remove or replace handlers,
         * even free the table when it removes the last one */
        struct fut_loop_signals *sig = loop->signals;
        if (!sig || !sig->has[signum] || !atomic_exchange(&pending[signum], false))
            continue;
        sig->cb[signum](sig->arg[signum]);
    }
}

static struct fut_loop_signals *signals_new(fut_loop *loop)
{
    struct fut_loop_signals *sig = calloc(1, sizeof *sig);
    if (!sig)
        return NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(sig);
        return NULL;
    }
    sig->pipe_r = fds[0];
    sig->pipe_w = fds[1];
    loop->signals = sig;
    int rc = fut_loop_add_reader(loop, sig->pipe_r, on_pipe_readable, loop);
    if (rc) {
        loop->signals = NULL;
        close(fds[0]);
        close(fds[1]);
        free(sig);
        errno = -rc;
        return NULL;
    }
    return sig;
}

static void signals_destroy(fut_loop *loop)
{
    struct fut_loop_signals *sig = loop->signals;
    fut_loop_remove_reader(loop, sig->pipe_r);
    close(sig->pipe_r);
    close(sig->pipe_w);
    free(sig);
    loop->signals = NULL;
}

/* Gives signum back: no more bytes to the loop's pipe, the old disposition. Under lock. */
static void release_signal_locked(int signum)
{
    atomic_store(&pipe_of[signum], 0);
    sigaction(signum, &saved[signum], NULL);
    atomic_store(&pending[signum], false);
    owner[signum] = NULL;
}

int fut_loop_add_signal_handler(fut_loop *loop, int signum, fut_callback cb, void *arg)
{
    if (!loop || !cb || !valid_signal(signum))
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    int rc = 0;
    pthread_mutex_lock(&table_lock);
    if (owner[signum] && owner[signum] != loop) {
        rc = FUT_ESTATE;  /* another loop handles it: one loop per signal */
        goto out;
    }
    struct fut_loop_signals *sig = loop->signals;
    if (!sig && !(sig = signals_new(loop))) {
        rc = -errno;
        goto out;
    }
    if (!owner[signum]) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;  /* other threads' system calls carry on */
        sigfillset(&sa.sa_mask);
        atomic_store(&pending[signum], false);
        atomic_store(&pipe_of[signum], sig->pipe_w + 1);
        if (sigaction(signum, &sa, &saved[signum]) != 0) {
            rc = -errno;
            atomic_store(&pipe_of[signum], 0);
            if (sig->n == 0)
                signals_destroy(loop);
            goto out;
        }
        owner[signum] = loop;
    }
    if (!sig->has[signum])
        sig->n++;
    sig->has[signum] = true;
    sig->cb[signum] = cb;
    sig->arg[signum] = arg;
out:
    pthread_mutex_unlock(&table_lock);
    return rc;
}

int fut_loop_remove_signal_handler(fut_loop *loop, int signum)
{
    if (!loop || !valid_signal(signum))
        return FUT_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&table_lock);
    struct fut_loop_signals *sig = loop->signals;
    if (!sig || !sig->has[signum] || owner[signum] != loop) {
        rc = FUT_ENOENT;
        goto out;
    }
    release_signal_locked(signum);
    sig->has[signum] = false;
    sig->cb[signum] = NULL;
    if (--sig->n == 0)
        signals_destroy(loop);
out:
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void fut__loop_signals_free(fut_loop *loop)
{
    pthread_mutex_lock(&table_lock);
    if (loop->signals) {
        for (int signum = 1; signum < MAX_SIGNAL; signum++)
            if (owner[signum] == loop)
                release_signal_locked(signum);
        signals_destroy(loop);
    }
    pthread_mutex_unlock(&table_lock);
}

/*
 * fork(): the table is taken around it, so the child gets it whole. In the child every
 * signal a loop handled gets back its old disposition, since no loop of the parent can
 * run there (see futures(7)); the loops' tables stay, for fut_loop_free.
 */
static void before_fork(void)
{
    pthread_mutex_lock(&table_lock);
}

static void after_fork_in_parent(void)
{
    pthread_mutex_unlock(&table_lock);
}

static void after_fork_in_child(void)
{
    for (int signum = 1; signum < MAX_SIGNAL; signum++)
        if (owner[signum])
            release_signal_locked(signum);
    pthread_mutex_unlock(&table_lock);
}

__attribute__((constructor)) static void register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}
