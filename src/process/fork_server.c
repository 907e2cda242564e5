/* SPDX-License-Identifier: MIT */
/*
 * The fork server. It runs in a child forked from a possibly multi-threaded process, so
 * it restricts itself to system calls: no malloc, no stdio, no locks. Its table of live
 * workers is allocated by the parent before the fork.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process/fork_server.h"
#include "process/ring.h"

struct fork_server {
    int sock;
    int sigfd;
    pid_t self;
    pid_t parent;
    unsigned safe;                 /* FUT_WORKER_ flags, found once at start */
    const struct fut__worker_config *config;
    pid_t *children;               /* live (unreaped) workers; 0 = free slot */
    int max_children;
    unsigned serial;
};

/* Sends msg with up to two descriptors attached (those >= 0). */
static int send_msg(int sock, const struct fut__fs_msg *msg, const int *fds, int n_fds)
{
    struct iovec iov = { (void *)msg, sizeof *msg };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } control;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (n_fds > 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)n_fds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)n_fds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)n_fds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

static pid_t *find_child(struct fork_server *s, pid_t pid)
{
    for (int i = 0; i < s->max_children; i++)
        if (s->children[i] == pid)
            return &s->children[i];
    return NULL;
}

/* The worker's channel (process/ring.h): a sealed memfd, mapped here so that the worker
 * inherits the mapping. Returns the memfd and *map, or -errno. */
static int make_channel(void **map)
{
    int fd = memfd_create(FUT_CHANNEL_MEMFD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    /* sealed: a worker cannot shrink the file under the parent's mapping (SIGBUS) */
    if (ftruncate(fd, (off_t)FUT_CHANNEL_MAP_SIZE) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
        (*map = mmap(NULL, FUT_CHANNEL_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static void spawn(struct fork_server *s)
{
    struct fut__fs_msg reply = { .type = FUT_FS_SPAWNED };
    int sv[2] = { -1, -1 };
    void *map = NULL;
    int ring = -1;
    pid_t *slot = find_child(s, 0);
    if (!slot) {
        reply.value = EAGAIN;
        goto done;
    }
    if ((ring = make_channel(&map)) < 0) {
        reply.value = -ring;
        goto done;
    }
    /* records (wire.h): wake-ups and descriptors; end of file when the peer is gone */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        reply.value = errno;
        goto done;
    }
    /* the parent's end is nonblocking; the flag lives in the shared file description */
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    unsigned serial = ++s->serial;
    pid_t pid = fork();
    if (pid < 0) {
        reply.value = errno;
        goto done;
    }
    if (pid == 0) {
        close(s->sock);
        close(s->sigfd);
        close(sv[0]);
        close(ring);
        fut__worker_main(sv[1], map, s->config, s->self, serial, s->safe, (int)(slot - s->children));
    }
    *slot = pid;
    reply.pid = pid;
    reply.slot = (int32_t)(slot - s->children);
done:
    if (map)
        munmap(map, FUT_CHANNEL_MAP_SIZE);
    if (sv[1] >= 0)
        close(sv[1]);
    int fds[2] = { sv[0], ring };
    send_msg(s->sock, &reply, fds, reply.pid ? 2 : 0);
    if (sv[0] >= 0)
        close(sv[0]);
    if (ring >= 0)
        close(ring);
}

static void reap(struct fork_server *s, bool block)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0) {
        pid_t *slot = find_child(s, pid);
        if (slot)
            *slot = 0;
        struct fut__fs_msg msg = { .type = FUT_FS_EXITED, .pid = pid, .value = status };
        if (s->sock >= 0)
            send_msg(s->sock, &msg, NULL, 0);
    }
}

static _Noreturn void finish(struct fork_server *s)
{
    for (int i = 0; i < s->max_children; i++)
        if (s->children[i] > 0)
            kill(s->children[i], SIGKILL);
    close(s->sock);
    s->sock = -1;
    reap(s, true);
    _exit(0);
}

static void handle_request(struct fork_server *s)
{
    struct fut__fs_msg msg;
    ssize_t n = recv(s->sock, &msg, sizeof msg, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0)
        finish(s);
    if (msg.type == FUT_FS_SPAWN) {
        spawn(s);
    } else if (msg.type == FUT_FS_KILL && msg.pid > 0) {
        if (find_child(s, msg.pid))
            kill(msg.pid, SIGKILL);
    }
}

static _Noreturn void serve(struct fork_server *s)
{
    for (;;) {
        struct pollfd fds[2] = { { s->sigfd, POLLIN, 0 }, { s->sock, POLLIN, 0 } };
        /* End of file is how the parent's death normally shows; a copy of the parent's
         * end in one of its other children would hide it, so look at the parent too. */
        if (getppid() != s->parent)
            finish(s);
        if (poll(fds, 2, 1000) <= 0)
            continue;
        if (fds[0].revents) {
            struct signalfd_siginfo info;
            while (read(s->sigfd, &info, sizeof info) > 0)
                ;
            reap(s, false);
        }
        if (fds[1].revents)
            handle_request(s);
    }
}

/* Whether process pid sleeps (state S in /proc/PID/stat): for a child that only takes a
 * lock and exits, a sleep means the lock is held. */
static bool sleeping(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');  /* the name may hold spaces and parentheses */
    return paren && paren[1] == ' ' && paren[2] == 'S';
}

/*
 * Which libc locks are free in this copy of the parent. A lock another thread held at
 * our fork stays held here and in every worker: whatever takes it blocks for ever. The
 * stdio locks can be tried. The random generators' lock cannot: a child of ours takes it
 * (srandom) and exits; if it is seen asleep twice in a row instead (or has not finished
 * within two seconds), the lock is held, and workers do not reseed. A task that calls
 * random() there would block: at worst a task_timeout case, see fut_process_pool_new(3).
 */
static unsigned probe_locks(void)
{
    unsigned safe = 0;
    if (ftrylockfile(stdout) == 0) {
        funlockfile(stdout);
        safe |= FUT_WORKER_FLUSH_STDOUT;
    }
    if (ftrylockfile(stderr) == 0) {
        funlockfile(stderr);
        safe |= FUT_WORKER_FLUSH_STDERR;
    }
    pid_t pid = fork();
    if (pid < 0)
        return safe;
    if (pid == 0) {
        srandom(1);
        srand48(1);
        _exit(0);
    }
    int status = 0, asleep = 0;
    for (int i = 0; i < 20000 && asleep < 2; i++) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return safe | (WIFEXITED(status) && WEXITSTATUS(status) == 0 ? FUT_WORKER_RESEED : 0);
        if (got < 0 && errno != EINTR)
            return safe;
        asleep = sleeping(pid) ? asleep + 1 : 0;
        struct timespec pause = { 0, 100000 };
        nanosleep(&pause, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return safe;
}

pid_t fut__fork_server_start(int sock, int parent_sock, const struct fut__worker_config *config,
                             int max_children)
{
    pid_t *children = calloc((size_t)max_children, sizeof *children);
    if (!children)
        return -ENOMEM;
    pid_t pid = fork();
    if (pid != 0) {
        free(children);
        return pid < 0 ? -errno : pid;
    }
    close(parent_sock);
    prctl(PR_SET_NAME, FUT_FORK_SERVER_NAME);  /* ps, top, /proc/PID/comm */
    /* the parent's buffered output is the parent's to write, never this copy's (some
     * runtimes flush stdio even on _exit) */
    __fpurge(stdout);
    __fpurge(stderr);
    /* SIGCHLD arrives through a signalfd; its disposition must not be SIG_IGN, which would
     * reap workers before we learn their status. This is the child: the parent's signal
     * handling stays as it was. */
    signal(SIGCHLD, SIG_DFL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    struct fork_server s = {
        .sock = sock,
        .sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC),
        .self = getpid(),
        .parent = getppid(),
        .config = config,
        .children = children,
        .max_children = max_children,
        .safe = probe_locks(),
    };
    if (s.sigfd < 0)
        _exit(127);
    serve(&s);
}

int fut__fork_server_recv(int sock, struct fut__fs_msg *msg, int fds[2])
{
    struct iovec iov = { msg, sizeof *msg };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } control;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    fds[0] = fds[1] = -1;
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    int got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (got < 2)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    if (n == sizeof *msg)
        return 1;
    for (int i = 0; i < got; i++)
        close(fds[i]);
    fds[0] = fds[1] = -1;
    return n == 0 ? 0 : -EPROTO;
}

int fut__fork_server_send(int sock, int type, pid_t pid)
{
    struct fut__fs_msg msg = { .type = type, .pid = pid };
    ssize_t n = send(sock, &msg, sizeof msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n < 0 ? -errno : 0;
}
