/* SPDX-License-Identifier: MIT */
/*
 * The loop's fd watchers: level-triggered readiness callbacks, one registration per fd
 * for both directions, in a table indexed by fd.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop.h"

static int io_reserve(fut_loop *loop, int fd)
{
    if ((size_t)fd < loop->n_io)
        return 0;
    size_t n = loop->n_io ? loop->n_io : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct fut_io *io = realloc(loop->io, n * sizeof *io);
    if (!io)
        return FUT_ENOMEM;
    memset(io + loop->n_io, 0, (n - loop->n_io) * sizeof *io);
    loop->io = io;
    loop->n_io = n;
    return 0;
}

/* Watches fd for `mask` (0: stops watching it). */
static int io_update(fut_loop *loop, int fd, unsigned mask)
{
    struct fut_io *io = &loop->io[fd];
    int rc = fut__poller_set(&loop->poller, fd, io->mask, mask);
    if (rc)
        return rc;
    loop->n_watched += (mask != 0) - (io->mask != 0);
    io->mask = mask;
    return 0;
}

static int add_watch(fut_loop *loop, int fd, unsigned dir, fut_callback cb, void *arg)
{
    if (!loop || !cb || fd < 0 || fd == loop->poller.epfd || fd == loop->wake_fd)
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    /* the table is indexed by fd: a number that is not open must not size it */
    if (fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    int rc = io_reserve(loop, fd);
    if (rc)
        return rc;
    struct fut_io *io = &loop->io[fd];
    if (!(io->mask & dir) && (rc = io_update(loop, fd, io->mask | dir)) != 0)
        return rc;
    if (dir == FUT_POLL_READABLE) {
        io->read_cb = cb;
        io->read_arg = arg;
    } else {
        io->write_cb = cb;
        io->write_arg = arg;
    }
    return 0;
}

static int remove_watch(fut_loop *loop, int fd, unsigned dir)
{
    if (!loop || fd < 0)
        return FUT_EINVAL;
    if (fut__loop_inherited(loop))
        return FUT_EBROKEN;
    if ((size_t)fd >= loop->n_io || !(loop->io[fd].mask & dir))
        return FUT_ENOENT;
    struct fut_io *io = &loop->io[fd];
    if (io_update(loop, fd, io->mask & ~dir) != 0)
        io->mask &= ~dir;  /* the fd is gone (closed): forget it all the same */
    if (dir == FUT_POLL_READABLE)
        io->read_cb = NULL;
    else
        io->write_cb = NULL;
    return 0;
}

int fut_loop_add_reader(fut_loop *loop, int fd, fut_callback cb, void *arg)
{
    return add_watch(loop, fd, FUT_POLL_READABLE, cb, arg);
}

int fut_loop_remove_reader(fut_loop *loop, int fd)
{
    return remove_watch(loop, fd, FUT_POLL_READABLE);
}

int fut_loop_add_writer(fut_loop *loop, int fd, fut_callback cb, void *arg)
{
    return add_watch(loop, fd, FUT_POLL_WRITABLE, cb, arg);
}

int fut_loop_remove_writer(fut_loop *loop, int fd)
{
    return remove_watch(loop, fd, FUT_POLL_WRITABLE);
}

/* Runs the fd callbacks; each registration is looked up again at its turn, since an
 * earlier callback may have removed or replaced it. Errors and hang-ups wake both sides. */
int fut__loop_run_io_events(fut_loop *loop, int n)
{
    int ran = 0;
    for (int k = 0; k < n; k++) {
        int fd = loop->events[k].fd;
        unsigned ev = loop->events[k].mask;
        if (fd == loop->wake_fd) {
            uint64_t count;  /* resets the eventfd; EAGAIN (already reset) is fine */
            ssize_t unused = read(fd, &count, sizeof count);
            (void)unused;
            continue;
        }
        if ((ev & FUT_POLL_READABLE) && (size_t)fd < loop->n_io &&
            (loop->io[fd].mask & FUT_POLL_READABLE)) {
            loop->io[fd].read_cb(loop->io[fd].read_arg);
            ran++;
        }
        if ((ev & FUT_POLL_WRITABLE) && (size_t)fd < loop->n_io &&
            (loop->io[fd].mask & FUT_POLL_WRITABLE)) {
            loop->io[fd].write_cb(loop->io[fd].write_arg);
            ran++;
        }
    }
    return ran;
}
