/* SPDX-License-Identifier: MIT */
/*
 * Internal: the one epoll wrapper, used by the event loop and the process pool's
 * dispatcher, in the manner of redis's ae_epoll.c: descriptors are named by their fd,
 * interest is a mask, and a wait reports (fd, mask) pairs.
 */
#ifndef FUT_CORE_POLLER_H
#define FUT_CORE_POLLER_H

#include <stdbool.h>
#include <sys/epoll.h>

#define FUT_POLL_READABLE 1u
#define FUT_POLL_WRITABLE 2u
#define FUT_POLL_EDGE     4u       /* edge-triggered (interest only) */

struct fut_poll_event {
    int fd;
    unsigned mask;                 /* READABLE | WRITABLE; an error or a hang-up sets both,
                                      so whoever reads or writes next sees it */
};

struct fut_poller {
    int epfd;
    int capacity;                  /* events one wait reports at most */
    struct epoll_event *raw;
};

/* 0 or -errno; capacity bounds the events of one wait. */
int  fut__poller_open(struct fut_poller *p, int capacity);
void fut__poller_close(struct fut_poller *p);

/*
 * Changes fd's interest from `old_mask` to `new_mask` (0: not watched). An fd closed
 * while watched left epoll by itself, so a stale registration is added again and a failed
 * removal ignored. Returns 0 or -errno.
 */
int fut__poller_set(struct fut_poller *p, int fd, unsigned old_mask, unsigned new_mask);

/* Waits at most timeout_ms (-1: no limit, 0: polls) and fills out[0 .. n); returns n, 0
 * on timeout or EINTR. */
int fut__poller_wait(struct fut_poller *p, struct fut_poll_event *out, int timeout_ms);

#endif
