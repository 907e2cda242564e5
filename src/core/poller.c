/* SPDX-License-Identifier: MIT */
/* The epoll wrapper: one epoll instance and the buffer its waits fill. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/poller.h"
#include "futures.h"

int fut__poller_open(struct fut_poller *p, int capacity)
{
    p->capacity = capacity;
    p->raw = malloc((size_t)capacity * sizeof *p->raw);
    if (!p->raw) {
        p->epfd = -1;
        return FUT_ENOMEM;
    }
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int rc = -errno;
        free(p->raw);
        p->raw = NULL;
        return rc;
    }
    return 0;
}

void fut__poller_close(struct fut_poller *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
    free(p->raw);
    p->raw = NULL;
}

static uint32_t epoll_events(unsigned mask)
{
    return (mask & FUT_POLL_READABLE ? EPOLLIN : 0) | (mask & FUT_POLL_WRITABLE ? EPOLLOUT : 0) |
           (mask & FUT_POLL_EDGE ? EPOLLET : 0);
}

int fut__poller_set(struct fut_poller *p, int fd, unsigned old_mask, unsigned new_mask)
{
    struct epoll_event ev = { .events = epoll_events(new_mask), .data.fd = fd };
    if (new_mask == 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev);
        return 0;
    }
    int op = old_mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(p->epfd, op, fd, &ev) == 0)
        return 0;
    /* the other operation, once: a registration that vanished with a closed fd, or one
     * left over from before */
    if ((op == EPOLL_CTL_ADD && errno == EEXIST) || (op == EPOLL_CTL_MOD && errno == ENOENT)) {
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(p->epfd, op, fd, &ev) == 0)
            return 0;
    }
    return -errno;
}

int fut__poller_wait(struct fut_poller *p, struct fut_poll_event *out, int timeout_ms)
{
    int n = epoll_wait(p->epfd, p->raw, p->capacity, timeout_ms);
    for (int i = 0; i < n; i++) {
        uint32_t ev = p->raw[i].events;
        out[i].fd = p->raw[i].data.fd;
        out[i].mask = (ev & ~(uint32_t)EPOLLOUT ? FUT_POLL_READABLE : 0) |
                      (ev & ~(uint32_t)EPOLLIN ? FUT_POLL_WRITABLE : 0);
    }
    return n < 0 ? 0 : n;
}
