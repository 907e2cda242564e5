/* SPDX-License-Identifier: MIT */
/*
 * Internal: the process pool's worker, the child side of the pool.
 *
 * A worker is forked by the fork server and never returns: it reads FUT_WIRE_TASK
 * messages from its channel, announces each task with FUT_WIRE_START before running it,
 * sends one outcome message per task, and leaves with _exit (never exit: the parent's
 * atexit handlers are not the worker's to run).
 */
#ifndef FUT_PROCESS_WORKER_H
#define FUT_PROCESS_WORKER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "futures.h"

/* What a worker needs to know, fixed when the pool is created (workers inherit it). */
struct fut__worker_config {
    int (*initializer)(void *arg);
    void *initarg;
    int max_tasks;                 /* exit after this many tasks; 0: never */
    sigset_t sigmask;              /* the signal mask to restore (the fork server blocks SIGCHLD) */
    struct sigaction sigchld;      /* SIGCHLD's disposition to restore (the fork server sets SIG_DFL) */
    _Atomic uint64_t *claims;      /* shared with the parent, one word per worker slot */
};

/*
 * Claim words: a task handed ahead to a busy worker may be taken back by the parent for a
 * worker that became idle first (pool.h). The parent offers it by storing
 * seq << 2 | FUT_CLAIM_OFFERED in the worker's word (MAP_SHARED, made before the fork
 * server); before it starts an offered task, the worker changes the word to
 * FUT_CLAIM_STARTED, and the parent takes one back by changing it to FUT_CLAIM_REVOKED,
 * both by compare-and-swap: exactly one of the two wins, so a task never runs twice and
 * never runs nowhere. A revoked task is dropped unread by the worker, without a word.
 * The worker settles the claim before it releases the task's message in its ring, and
 * the parent offers nothing new in the word until the worker has read past a message it
 * took back (dispatcher.c, can_take): the word cannot say OFFERED for a later task while
 * the worker has yet to find REVOKED for an earlier one.
 */
#define FUT_CLAIM_OFFERED 0u
#define FUT_CLAIM_STARTED 1u
#define FUT_CLAIM_REVOKED 2u
#define FUT_CLAIM(seq, state) ((uint64_t)(seq) << 2 | (state))

/* What the fork server found safe to do in its workers: libc locks that another thread of
 * the parent held when the fork server was forked stay locked in it and in every worker,
 * and whatever takes them there blocks for ever. */
#define FUT_WORKER_RESEED 1u       /* the random generators' locks are free: reseed them */
#define FUT_WORKER_FLUSH_STDOUT 2u /* stdout's lock is free: flush it after each task */
#define FUT_WORKER_FLUSH_STDERR 4u

/* Exit statuses a worker uses on its own. */
#define FUT_WORKER_EXIT_OK 0       /* end of file from the parent, or max_tasks reached */
#define FUT_WORKER_EXIT_INIT 1     /* the initializer failed */
#define FUT_WORKER_EXIT_IO 2       /* the socket failed */
#define FUT_WORKER_EXIT_FORKED 3   /* a task forked and its child returned into the worker */

/* Runs the worker on its socket fd and its channel's mapping (ring.h); serial numbers the
 * worker (it seeds the random generators); safe is a set of FUT_WORKER_ flags. */
_Noreturn void fut__worker_main(int fd, void *channel, const struct fut__worker_config *config,
                                pid_t fork_server, unsigned serial, unsigned safe, int slot);

/* The process's name (prctl PR_SET_NAME, 15 bytes at most) for ps, top and
 * /proc/PID/comm; documented in fut_process_pool_new(3). */
#define FUT_WORKER_NAME "fut-worker"

#endif
