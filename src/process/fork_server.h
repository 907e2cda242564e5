/* SPDX-License-Identifier: MIT */
/*
 * Internal: the process pool's fork server.
 *
 * fut_process_pool_new forks it before the pool starts any thread, so it is a
 * single-threaded copy of the parent as it was at pool creation. Every worker is forked
 * by it (never by the multi-threaded parent), it reaps them, and it reports their exit
 * statuses. It talks to the parent over one SOCK_SEQPACKET socket, one message per packet:
 *
 *   parent -> server  SPAWN              fork a worker
 *                     KILL pid           SIGKILL a worker not yet reaped (no pid reuse race:
 *                                        only the server reaps, so an unreaped pid is ours)
 *   server -> parent  SPAWNED pid        the parent's end of the worker's socket and the
 *                                        memfd of its channel (ring.h) attached
 *                                        (SCM_RIGHTS); pid 0 and value = errno on failure
 *                                        and slot, the worker's claim word (worker.h)
 *                     EXITED pid value   value = the wait status
 *
 * End of file from the parent (closed socket: shutdown, or the parent died) makes the
 * server SIGKILL every worker left, reap them and _exit.
 */
#ifndef FUT_PROCESS_FORKSERVER_H
#define FUT_PROCESS_FORKSERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "process/worker.h"

enum fut__fs_type {
    FUT_FS_SPAWN = 1,
    FUT_FS_KILL,
    FUT_FS_SPAWNED,
    FUT_FS_EXITED,
};

struct fut__fs_msg {
    int32_t type;
    int32_t pid;
    int32_t value;
    int32_t slot;                  /* SPAWNED: the worker's index in the claim words */
};

/* Forks the fork server on the child end of a SEQPACKET pair; max_children bounds the
 * workers alive at once. Returns its pid, or -errno. Call before starting any thread
 * that the server must not copy (it copies only the calling thread anyway). */
pid_t fut__fork_server_start(int sock, int parent_sock, const struct fut__worker_config *config,
                             int max_children);

/* Parent side: receive one message, with the attached descriptors if any (else -1):
 * fds[0] the worker's socket, fds[1] its channel's memfd. Returns 1, 0 at end of file, or
 * -errno (-EAGAIN: nothing yet). Descriptors that could not be received (file limit) give
 * SPAWNED with -1 and a pid to kill. */
int fut__fork_server_recv(int sock, struct fut__fs_msg *msg, int fds[2]);

/* Parent side: send one request without blocking: 0 or -errno. */
int fut__fork_server_send(int sock, int type, pid_t pid);

/* The process's name (prctl PR_SET_NAME, 15 bytes at most) for ps, top and
 * /proc/PID/comm; documented in fut_process_pool_new(3). */
#define FUT_FORK_SERVER_NAME "fut-forksrv"

#endif
