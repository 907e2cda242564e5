/* SPDX-License-Identifier: MIT */
/*
 * line_server: a TCP server on 127.0.0.1, driven by the event loop. Each line a client
 * sends is a number n; the reply is the count of primes up to n. Counting is CPU work,
 * so it goes to an executor with fut_loop_run_in_executor while the loop keeps serving
 * other clients.
 *
 *   line_server [PORT]       serve until killed (PORT 0 or none: any free port)
 *   line_server --self-test  serve on a free port, run a few clients against it in
 *                            threads, check every reply, exit 0 if all were right
 *
 * One request per connection is in flight at a time, so replies keep the order of lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <futures.h>

#include "net_util.h"

/* The executor for the CPU-heavy part: worker processes, so that a heavy request uses
 * another core and can never stall the loop (fut_thread_pool_new works the same way). */
#define MAKE_POOL fut_process_pool_new

#define MAX_N 5000000L

struct server {
    fut_loop *loop;
    fut_executor *pool;
    int fd;
};

struct conn {
    struct server *srv;
    int fd;
    char in[1024];
    size_t in_len;
    char out[4096];
    size_t out_len;
    fut_future *request;               /* in flight, or NULL */
    long request_n;
    bool eof, reading, writing;
};

/* ---- the CPU-heavy part (runs in the executor) --------------------------------------- */

static long count_primes(long n)
{
    long count = 0;
    for (long k = 2; k <= n; k++) {
        bool prime = true;
        for (long d = 2; d * d <= k; d++)
            if (k % d == 0) {
                prime = false;
                break;
            }
        count += prime;
    }
    return count;
}

static void *count_primes_task(void *arg)
{
    return (void *)(intptr_t)count_primes((long)(intptr_t)arg);
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_readable(void *arg);
static void conn_writable(void *arg);
static void dispatch_line(struct conn *c);

static void conn_close(struct conn *c)
{
    if (c->reading)
        fut_loop_remove_reader(c->srv->loop, c->fd);
    if (c->writing)
        fut_loop_remove_writer(c->srv->loop, c->fd);
    close(c->fd);
    free(c);
}

static bool has_line(const struct conn *c)
{
    return memchr(c->in, '\n', c->in_len) != NULL;
}

/* Closes c once the client is done sending and everything is answered and written. */
static bool maybe_close(struct conn *c)
{
    if (!c->eof || c->request || c->out_len || has_line(c))
        return false;
    conn_close(c);
    return true;
}

static void flush(struct conn *c)
{
    while (c->out_len) {
        ssize_t n = write(c->fd, c->out, c->out_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            c->out_len = 0;  /* the client is gone: drop the output */
            c->eof = true;
            break;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    bool want = c->out_len > 0;
    if (want && !c->writing)
        c->writing = fut_loop_add_writer(c->srv->loop, c->fd, conn_writable, c) == 0;
    else if (!want && c->writing)
        c->writing = fut_loop_remove_writer(c->srv->loop, c->fd) != 0;
}

static void reply(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out + c->out_len, sizeof c->out - c->out_len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof c->out - c->out_len)
        c->out_len += (size_t)n;
    flush(c);
}

/* The executor's outcome, on the loop thread. */
static void on_counted(fut_future *f, void *arg)
{
    struct conn *c = arg;
    void *result = NULL;
    if (fut_result(f, 0, &result) == 0)
        reply(c, "primes(%ld) = %ld\n", c->request_n, (long)(intptr_t)result);
    else
        reply(c, "error: %ld: %s\n", c->request_n, fut_strerror(fut_exception(f, 0)));
    fut_future_unref(f);
    c->request = NULL;
    dispatch_line(c);
    maybe_close(c);
}

/* Takes the next complete line, if no request is in flight, and starts its request. */
static void dispatch_line(struct conn *c)
{
    char *nl;
    while (!c->request && (nl = memchr(c->in, '\n', c->in_len))) {
        *nl = '\0';
        char *end;
        errno = 0;
        long n = strtol(c->in, &end, 10);
        bool ok = end != c->in && (*end == '\0' || *end == '\r') && errno == 0 && n >= 0 &&
                  n <= MAX_N;
        size_t used = (size_t)(nl - c->in) + 1;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        if (!ok) {
            reply(c, "error: expected a number from 0 to %ld\n", MAX_N);
            continue;
        }
        c->request_n = n;
        c->request = fut_loop_run_in_executor(c->srv->loop, c->srv->pool, count_primes_task,
                                              (void *)(intptr_t)n);
        if (!c->request || fut_add_done_callback(c->request, on_counted, c) != 0) {
            reply(c, "error: %ld: %s\n", n, strerror(errno));
            fut_future_unref(c->request);
            c->request = NULL;
        }
    }
}

static void conn_readable(void *arg)
{
    struct conn *c = arg;
    if (c->in_len == sizeof c->in) {  /* a line too long: drop it */
        c->in_len = 0;
        reply(c, "error: line longer than %zu bytes\n", sizeof c->in);
    }
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (n > 0) {
        c->in_len += (size_t)n;
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        c->eof = true;
        fut_loop_remove_reader(c->srv->loop, c->fd);
        c->reading = false;
    }
    dispatch_line(c);
    maybe_close(c);
}

static void conn_writable(void *arg)
{
    struct conn *c = arg;
    flush(c);
    maybe_close(c);
}

static void on_accept(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;  /* EAGAIN: no more for now */
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        c->reading = fut_loop_add_reader(srv->loop, fd, conn_readable, c) == 0;
        if (!c->reading)
            conn_close(c);
    }
}

/* ---- the self-test: clients in threads, blocking sockets ------------------------------- */

#define CLIENTS 4

struct client {
    int port, id;
    fut_loop *loop;
    atomic_int *finished;
    bool ok;
};

static bool client_session(struct client *cl)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cl->port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        return false;
    long ns[] = { 10, 100, 1000 + cl->id, 100000 + 1000 * cl->id };
    char request[256] = "", expect[1024] = "";
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        snprintf(request + strlen(request), sizeof request - strlen(request), "%ld\n", ns[i]);
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "primes(%ld) = %ld\n",
                 ns[i], count_primes(ns[i]));
    }
    strcat(request, "hello\n");
    strcat(expect, "error: expected a number from 0 to 5000000\n");
    bool ok = write(fd, request, strlen(request)) == (ssize_t)strlen(request);
    shutdown(fd, SHUT_WR);
    char got[1024];
    size_t len = 0;
    ssize_t n;
    while (ok && len < sizeof got - 1 && (n = read(fd, got + len, sizeof got - 1 - len)) > 0)
        len += (size_t)n;
    got[len] = '\0';
    close(fd);
    if (ok && strcmp(got, expect) != 0) {
        fprintf(stderr, "client %d: expected\n%sgot\n%s", cl->id, expect, got);
        ok = false;
    }
    return ok;
}

static void stop_loop(void *arg)
{
    fut_loop_stop(arg);
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    cl->ok = client_session(cl);
    if (atomic_fetch_add(cl->finished, 1) + 1 == CLIENTS)
        fut_loop_call_soon_threadsafe(cl->loop, stop_loop, cl->loop);
    return NULL;
}

static int self_test(struct server *srv, int port)
{
    atomic_int finished = 0;
    struct client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (struct client){ port, i, srv->loop, &finished, false };
        if (pthread_create(&threads[i], NULL, client_main, &clients[i]) != 0)
            return 1;
    }
    fut_loop_run_forever(srv->loop);
    int failures = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        failures += !clients[i].ok;
    }
    printf("self-test: %d clients, %d failed\n", CLIENTS, failures);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    bool test = argc > 1 && strcmp(argv[1], "--self-test") == 0;
    int port = argc > 1 && !test ? atoi(argv[1]) : 0;
    struct server srv = { .fd = -1 };
    int status = 1;
    srv.loop = fut_loop_new();
    srv.pool = MAKE_POOL(NULL);
    if (!srv.loop || !srv.pool || (srv.fd = ex_listen_loopback(port, 64, &port)) < 0 ||
        fut_loop_add_reader(srv.loop, srv.fd, on_accept, &srv) != 0) {
        perror("line_server");
        goto out;
    }
    if (test) {
        status = self_test(&srv, port);
    } else {
        printf("listening on 127.0.0.1:%d; send numbers, one per line\n", port);
        fflush(stdout);
        status = fut_loop_run_forever(srv.loop) == 0 ? 0 : 1;
    }
out:
    if (srv.fd >= 0) {
        fut_loop_remove_reader(srv.loop, srv.fd);
        close(srv.fd);
    }
    fut_loop_free(srv.loop);
    fut_executor_free(srv.pool);
    return status;
}
