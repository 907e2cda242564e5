/* SPDX-License-Identifier: MIT */
/* Framed messages: a staging buffer for small messages, direct reads for large payloads. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "process/wire.h"

static size_t staged(const struct fut__wire_in *in)
{
    return in->end - in->start;
}

static bool take_header(struct fut__wire_in *in)
{
    if (staged(in) < sizeof in->header)
        return false;
    memcpy(&in->header, in->staging + in->start, sizeof in->header);
    in->start += sizeof in->header;
    in->have_header = true;
    in->got = 0;
    in->payload = NULL;
    in->discarded = false;
    if (in->header.len) {
        in->payload = in->alloc(in->ctx, &in->header);
        in->discarded = in->payload == NULL;
    }
    return true;
}

bool fut__wire_in_next(struct fut__wire_in *in, struct fut__wire_header *h, void **payload)
{
    if (!in->have_header && !take_header(in))
        return false;
    size_t want = in->header.len - in->got;
    size_t take = staged(in) < want ? staged(in) : want;
    if (take && !in->discarded)
        memcpy(in->payload + in->got, in->staging + in->start, take);
    in->got += take;
    in->start += take;
    if (in->start == in->end)
        in->start = in->end = 0;
    if (in->got < in->header.len)
        return false;
    *h = in->header;
    *payload = in->payload;
    in->have_header = false;
    in->payload = NULL;
    return true;
}

long fut__wire_in_fill(int fd, struct fut__wire_in *in, int flags)
{
    char *dst;
    size_t room;
    size_t missing = in->have_header ? in->header.len - in->got : 0;
    if (in->have_header && !in->discarded && staged(in) == 0 && missing >= FUT_WIRE_STAGING) {
        /* a large payload: no staging copy */
        dst = in->payload + in->got;
        room = missing;
    } else {
        if (in->start > 0 && in->end == sizeof in->staging) {
            memmove(in->staging, in->staging + in->start, staged(in));
            in->end -= in->start;
            in->start = 0;
        }
        dst = in->staging + in->end;
        room = sizeof in->staging - in->end;
    }
    ssize_t n;
    do
        n = recv(fd, dst, room, flags);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (dst == in->staging + in->end)
        in->end += (size_t)n;
    else
        in->got += (size_t)n;
    return n;
}

void fut__wire_in_abandon(struct fut__wire_in *in, void (*free_fn)(void *ctx, const struct fut__wire_header *h, void *p))
{
    if (in->have_header && in->payload)
        free_fn(in->ctx, &in->header, in->payload);
    in->have_header = false;
    in->payload = NULL;
    in->start = in->end = 0;
}

void fut__wire_out_start(struct fut__wire_out *out, const struct fut__wire_header *h, const void *payload)
{
    out->header = *h;
    out->payload = payload;
    out->done = 0;
    out->busy = true;
}

int fut__wire_out_flush(int fd, struct fut__wire_out *out)
{
    const size_t header_len = sizeof out->header;
    size_t total = header_len + out->header.len;
    while (out->done < total) {
        struct iovec iov[2];
        int n_iov = 0;
        if (out->done < header_len)
            iov[n_iov++] = (struct iovec){ (char *)&out->header + out->done, header_len - out->done };
        size_t payload_done = out->done > header_len ? out->done - header_len : 0;
        if (out->header.len > payload_done)
            iov[n_iov++] = (struct iovec){ (char *)out->payload + payload_done,
                                           out->header.len - payload_done };
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n_iov };
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        out->done += (size_t)n;
    }
    out->busy = false;
    return 1;
}

int fut__wire_send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)sent;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}
