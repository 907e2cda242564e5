/* SPDX-License-Identifier: MIT */
/*
 * echo_server: a line server on 127.0.0.1 with one task per connection, asyncio's
 * start_server written as straight-line C.
 *
 *     async def handle(reader, writer):
 *         async for line in reader:
 *             if line.startswith(b"fib "):      # slow: off the loop
 *                 n = int(line[4:])
 *                 line = f"fib({n}) = {await loop.run_in_executor(None, fib, n)}\n"
 *             writer.write(line); await writer.drain()
 *
 * Each connection's task reads with fut_await_readable and writes with
 * fut_await_writable on a non-blocking socket; a "fib N" line is computed in the loop's
 * default executor (a thread pool) and awaited, so a slow request never stalls the other
 * connections.
 *
 * Usage: echo_server [PORT]            serve until killed (PORT 0: any free port)
 *        echo_server --self-test [N]   serve N concurrent clients (tasks of the same loop)
 *                                      on a free port, check every reply, exit 0 if right
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <futures.h>

#include "net_util.h"

#define LINE_MAX_LEN 256

static uint64_t fib(int n)
{
    return n < 2 ? (uint64_t)n : fib(n - 1) + fib(n - 2);
}

static void *fib_job(void *arg)
{
    return (void *)(uintptr_t)fib((int)(intptr_t)arg);
}

/* Writes all of buf, awaiting writability whenever the socket is full. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            int rc = fut_await_writable(fd, FUT_FOREVER);
            if (rc)
                return rc;
        } else if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* Reads one line (with its '\n') into line; 0, or FUT_ENOENT at end of stream.
 * `buf`/`have` keep what was read past the line for the next call. */
struct reader {
    int fd;
    char buf[LINE_MAX_LEN];
    size_t have;
};

static int read_line(struct reader *r, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->have);
        if (nl || r->have == sizeof r->buf) {
            size_t len = nl ? (size_t)(nl - r->buf) + 1 : r->have;
            len = len < cap - 1 ? len : cap - 1;
            memcpy(line, r->buf, len);
            line[len] = '\0';
            memmove(r->buf, r->buf + len, r->have - len);
            r->have -= len;
            return 0;
        }
        ssize_t n = read(r->fd, r->buf + r->have, sizeof r->buf - r->have);
        if (n > 0) {
            r->have += (size_t)n;
        } else if (n == 0) {
            return FUT_ENOENT;
        } else if (errno == EAGAIN) {
            int rc = fut_await_readable(r->fd, FUT_FOREVER);  /* cancelled: FUT_ECANCELLED */
            if (rc)
                return rc;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}

/* One connection's task: arg is the socket, which it closes when done. */
static void *serve_connection(void *arg)
{
    struct reader r = { .fd = (int)(intptr_t)arg };
    char line[LINE_MAX_LEN], reply[LINE_MAX_LEN + 64];
    while (read_line(&r, line, sizeof line) == 0) {
        int n;
        if (sscanf(line, "fib %d", &n) == 1 && n >= 0 && n <= 40) {
            fut_future *f = fut_loop_run_in_executor(fut_loop_current(), NULL, fib_job,
                                                     (void *)(intptr_t)n);
            void *result = NULL;
            int rc = f ? fut_await(f, &result) : -errno;
            fut_future_unref(f);
            if (rc)
                break;
            snprintf(reply, sizeof reply, "fib(%d) = %llu\n", n,
                     (unsigned long long)(uintptr_t)result);
        } else {
            snprintf(reply, sizeof reply, "%s", line);
        }
        if (write_all(r.fd, reply, strlen(reply)) != 0)
            break;
    }
    close(r.fd);  /* on every path, cancellation by fut_run included */
    return NULL;
}

/* The acceptor task: one connection task per client, until it is cancelled. */
static void *accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    fut_loop *loop = fut_loop_current();
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            fut_future *t = fut_loop_create_task(loop, serve_connection, (void *)(intptr_t)fd);
            if (t)
                fut_future_unref(t);  /* it runs to its end without us holding it */
            else
                close(fd);
        } else if (errno == EAGAIN) {
            if (fut_await_readable(lfd, FUT_FOREVER) != 0)
                return NULL;  /* cancelled: the server stops */
        } else if (errno != EINTR && errno != ECONNABORTED) {
            fut_raise(errno, "accept");
            return NULL;
        }
    }
}

/* ---- the self-test: clients as tasks of the same loop -------------------------------- */

struct client {
    int id, port;
    bool ok;
};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -errno;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (fut_await_writable(fd, 30) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        close(fd);
        return -ECONNREFUSED;
    }
    return fd;
}

static void *client_task(void *arg)
{
    struct client *c = arg;
    int fd = connect_to(c->port);
    if (fd < 0)
        return NULL;
    char request[128], line[LINE_MAX_LEN], want[64];
    int n = 15 + c->id % 10;
    snprintf(request, sizeof request, "hello from client %d\nfib %d\n", c->id, n);
    struct reader r = { .fd = fd };
    if (write_all(fd, request, strlen(request)) == 0 &&
        read_line(&r, line, sizeof line) == 0 && strncmp(line, request, strlen(line)) == 0 &&
        read_line(&r, line, sizeof line) == 0) {
        snprintf(want, sizeof want, "fib(%d) = %llu\n", n, (unsigned long long)fib(n));
        c->ok = strcmp(line, want) == 0;
    }
    close(fd);
    return NULL;
}

struct self_test {
    int clients;
    int passed;
};

static void *self_test(void *arg)
{
    struct self_test *st = arg;
    fut_loop *loop = fut_loop_current();
    int port;
    int lfd = ex_listen_loopback(0, 128, &port);
    if (lfd < 0) {
        fut_raise(errno, "listen");
        return NULL;
    }
    fut_future *server = fut_loop_create_task(loop, accept_loop, (void *)(intptr_t)lfd);
    struct client *cs = calloc((size_t)st->clients, sizeof *cs);
    fut_future **ts = calloc((size_t)st->clients, sizeof *ts);
    for (int i = 0; cs && ts && i < st->clients; i++) {
        cs[i] = (struct client){ .id = i, .port = port };
        ts[i] = fut_loop_create_task(loop, client_task, &cs[i]);
    }
    fut_future *all = cs && ts ? fut_loop_gather(loop, ts, (size_t)st->clients) : NULL;
    if (all && fut_await(all, NULL) == 0)
        for (int i = 0; i < st->clients; i++)
            st->passed += cs[i].ok;
    fut_future_unref(all);
    for (int i = 0; ts && i < st->clients; i++)
        fut_future_unref(ts[i]);
    free(ts);
    free(cs);
    fut_cancel(server);                 /* stop accepting; wait for the acceptor to end */
    fut_await(server, NULL);
    fut_future_unref(server);
    close(lfd);
    return NULL;
}

static void *serve_forever(void *arg)
{
    int port = *(int *)arg, bound;
    int lfd = ex_listen_loopback(port, 128, &bound);
    if (lfd < 0) {
        fut_raise(errno, "listen on port %d", port);
        return NULL;
    }
    printf("listening on 127.0.0.1:%d\n", bound);
    fflush(stdout);
    accept_loop((void *)(intptr_t)lfd);
    close(lfd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--self-test") == 0) {
        struct self_test st = { .clients = argc > 2 ? atoi(argv[2]) : 20 };
        if (st.clients <= 0)
            st.clients = 20;
        int rc = fut_run(self_test, &st, NULL);
        printf("self-test: %d of %d clients served correctly\n", st.passed, st.clients);
        return rc == 0 && st.passed == st.clients ? 0 : 1;
    }
    int port = argc > 1 ? atoi(argv[1]) : 8888;
    int rc = fut_run(serve_forever, &port, NULL);
    if (rc) {
        fprintf(stderr, "echo_server: %s\n", fut_strerror(rc));
        return 1;
    }
    return 0;
}
