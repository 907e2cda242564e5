/* SPDX-License-Identifier: MIT */
/*
 * The socket setup the server examples share: a listening TCP socket on the loopback
 * interface. Header-only, like example_util.h, so each example still builds from one file.
 */
#ifndef EXAMPLE_NET_UTIL_H
#define EXAMPLE_NET_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* A nonblocking listening socket on 127.0.0.1:port (0: a free port, reported in
 * *bound_port), or -1 with errno set. The event loop watches it for readability. */
static inline int ex_listen_loopback(int port, int backlog, int *bound_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    *bound_port = ntohs(addr.sin_port);
    return fd;
}

#endif
