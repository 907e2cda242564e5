/* SPDX-License-Identifier: MIT */
/* Socket records and payloads in memfds (see wire.h). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "process/wire.h"

int fut__wire_record_send(int sock, uint32_t kind, int fd, int flags)
{
    struct fut__wire_record record = { .kind = kind };
    struct iovec iov = { &record, sizeof record };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

int fut__wire_record_recv(int sock, uint32_t *kind, int *fd, int flags)
{
    struct fut__wire_record record;
    struct iovec iov = { &record, sizeof record };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    *fd = -1;
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0 && !(mh.msg_flags & MSG_TRUNC))
        return 0;
    int n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (n_fds++ == 0)
                *fd = got;
            else
                close(got);
        }
    }
    *kind = record.kind;
    bool wants_fd = record.kind == FUT_RECORD_FD || record.kind == FUT_RECORD_SPARE;
    if (n != sizeof record || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || record.zero ||
        n_fds != (wants_fd ? 1 : 0) || (!wants_fd && record.kind != FUT_RECORD_WAKE)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return -EPROTO;
    }
    return 1;
}

int fut__wire_fds_push(struct fut__wire_fds *q, int fd)
{
    if (q->n == FUT_WIRE_FD_QUEUE) {
        close(fd);
        return -EPROTO;
    }
    q->fd[q->n++] = fd;
    return 0;
}

int fut__wire_fds_pop(struct fut__wire_fds *q)
{
    if (q->n == 0)
        return -1;
    int fd = q->fd[0];
    memmove(q->fd, q->fd + 1, (size_t)--q->n * sizeof *q->fd);
    return fd;
}

void fut__wire_fds_close(struct fut__wire_fds *q)
{
    while (q->n > 0)
        close(q->fd[--q->n]);
}

int fut__wire_payload_fd(const void *p, size_t len)
{
    int fd = memfd_create("fut-payload", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    const char *at = p;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, at, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            close(fd);
            return -err;
        }
        at += n;
        left -= (size_t)n;
    }
    return fd;
}

int fut__wire_payload_read(int fd, void *dst, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)dst + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPROTO;
        done += (size_t)n;
    }
    return 0;
}
