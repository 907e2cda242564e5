/*
 * Internal: the process pool's worker, the child side of the pool.
 *
 * A worker is forked by the fork server and never returns: it reads FUT_WIRE_TASK
 * messages from its socket, announces each task with FUT_WIRE_START before running it,
 * sends one outcome message per task, and leaves with _exit (never exit: the parent's
 * atexit handlers are not the worker's to run).
 */
#ifndef FUT_PROCESS_WORKER_H
#define FUT_PROCESS_WORKER_H

#include <signal.h>
#include <sys/types.h>

#include "futures.h"

/* What a worker needs to know, fixed when the pool is created (workers inherit it). */
struct fut__worker_config {
    int (*initializer)(void *arg);
    void *initarg;
    int max_tasks;                 /* exit after this many tasks; 0: never */
    sigset_t sigmask;              /* the signal mask to restore (the fork server blocks SIGCHLD) */
};

/* Exit statuses a worker uses on its own. */
#define FUT_WORKER_EXIT_OK 0       /* end of file from the parent, or max_tasks reached */
#define FUT_WORKER_EXIT_INIT 1     /* the initializer failed */
#define FUT_WORKER_EXIT_IO 2       /* the socket failed */

/* Runs the worker on fd; serial numbers the worker (it seeds the random generators). */
_Noreturn void fut__worker_main(int fd, const struct fut__worker_config *config, pid_t fork_server,
                                unsigned serial);

/* The process's name (prctl PR_SET_NAME, 15 bytes at most) for ps, top and
 * /proc/PID/comm; documented in fut_process_pool_new(3). */
#define FUT_WORKER_NAME "fut-worker"

#endif
