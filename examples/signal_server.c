/* SPDX-License-Identifier: MIT */
/*
 * signal_server: a TCP server on 127.0.0.1 that stops cleanly on SIGINT or SIGTERM.
 *
 * Each line a client sends comes back in upper case. The signals are handled by the
 * event loop (fut_loop_add_signal_handler): the callback runs on the loop thread, as an
 * ordinary callback, so it may do anything a callback may: here it closes the listening
 * socket and every connection, says goodbye, and stops the loop. The program then frees
 * the loop, which restores the signals' previous dispositions, and exits 0.
 *
 *   signal_server [PORT]       serve until SIGINT (Ctrl-C) or SIGTERM (PORT 0: any port)
 *   signal_server --self-test  serve on a free port; a client thread checks one reply,
 *                              then sends SIGTERM to the process; exit 0 if all went well
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <futures.h>

#include "net_util.h"

#define MAX_CLIENTS 64

struct server {
    fut_loop *loop;
    int listen_fd;
    int clients[MAX_CLIENTS];      /* -1: free slot */
    int stopped_by;                /* the signal that stopped us */
};

static void drop_client(struct server *s, int i)
{
    fut_loop_remove_reader(s->loop, s->clients[i]);
    close(s->clients[i]);
    s->clients[i] = -1;
}

struct client_ref {
    struct server *server;
    int index;
};

static struct client_ref refs[MAX_CLIENTS];

static void on_client_readable(void *arg)
{
    struct client_ref *ref = arg;
    struct server *s = ref->server;
    char buf[4096];
    ssize_t n = read(s->clients[ref->index], buf, sizeof buf);
    if (n <= 0) {
        drop_client(s, ref->index);
        return;
    }
    for (ssize_t k = 0; k < n; k++)
        if (buf[k] >= 'a' && buf[k] <= 'z')
            buf[k] = (char)(buf[k] - 'a' + 'A');
    if (write(s->clients[ref->index], buf, (size_t)n) != n)
        drop_client(s, ref->index);
}

static void on_accept(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (s->clients[i] >= 0)
            continue;
        s->clients[i] = fd;
        refs[i] = (struct client_ref){ s, i };
        if (fut_loop_add_reader(s->loop, fd, on_client_readable, &refs[i]) != 0)
            drop_client(s, i);
        return;
    }
    close(fd);  /* full */
}

/* On the loop thread, never in signal context: anything goes. */
static void on_stop_signal(struct server *s, int signum)
{
    printf("signal_server: got %s, closing %s connections and stopping\n",
           signum == SIGINT ? "SIGINT" : "SIGTERM", "all");
    fflush(stdout);
    s->stopped_by = signum;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i] >= 0)
            drop_client(s, i);
    fut_loop_remove_reader(s->loop, s->listen_fd);
    close(s->listen_fd);
    s->listen_fd = -1;
    fut_loop_stop(s->loop);
}

static void on_sigint(void *arg)
{
    on_stop_signal(arg, SIGINT);
}

static void on_sigterm(void *arg)
{
    on_stop_signal(arg, SIGTERM);
}

/* --self-test: a client in another thread (which leaves SIGTERM unblocked, as the
 * contract asks) checks a reply, then signals the whole process. It prints nothing: the
 * main thread reports its verdict after joining it. */
static void *self_test_client(void *arg)
{
    int port = *(int *)arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char reply[16] = { 0 };
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
              write(fd, "hello\n", 6) == 6 && read(fd, reply, 6) == 6 &&
              memcmp(reply, "HELLO\n", 6) == 0;
    if (fd >= 0)
        close(fd);
    kill(getpid(), SIGTERM);
    return (void *)(intptr_t)ok;
}

int main(int argc, char **argv)
{
    bool self_test = argc > 1 && strcmp(argv[1], "--self-test") == 0;
    int port = argc > 1 && !self_test ? atoi(argv[1]) : 0;
    struct server s = { .listen_fd = -1 };
    for (int i = 0; i < MAX_CLIENTS; i++)
        s.clients[i] = -1;
    s.loop = fut_loop_new();
    int bound;
    if (!s.loop || (s.listen_fd = ex_listen_loopback(port, 16, &bound)) < 0) {
        perror("signal_server");
        return EXIT_FAILURE;
    }
    if (fut_loop_add_reader(s.loop, s.listen_fd, on_accept, &s) != 0 ||
        fut_loop_add_signal_handler(s.loop, SIGINT, on_sigint, &s) != 0 ||
        fut_loop_add_signal_handler(s.loop, SIGTERM, on_sigterm, &s) != 0) {
        fprintf(stderr, "signal_server: cannot set up the loop\n");
        return EXIT_FAILURE;
    }
    printf("signal_server: listening on 127.0.0.1:%d (SIGINT or SIGTERM stops it)\n", bound);
    fflush(stdout);

    pthread_t client;
    if (self_test && pthread_create(&client, NULL, self_test_client, &bound) != 0)
        return EXIT_FAILURE;
    int rc = fut_loop_run_forever(s.loop);
    void *client_ok = (void *)1;
    if (self_test) {
        pthread_join(client, &client_ok);
        printf("signal_server: self-test reply %s\n", client_ok ? "HELLO: ok" : "WRONG");
    }
    fut_loop_free(s.loop);  /* restores SIGINT's and SIGTERM's dispositions */
    if (rc != 0 || !s.stopped_by || !client_ok) {
        fprintf(stderr, "signal_server: did not stop cleanly\n");
        return EXIT_FAILURE;
    }
    printf("signal_server: stopped cleanly\n");
    return EXIT_SUCCESS;
}
