/* SPDX-License-Identifier: MIT */
/*
 * The suspension points of a task: fut_await(_timeout), fut_task_yield and the fd awaits.
 *
 * An await that must wait registers a done callback on the loop future it waits for (the
 * future itself, or a bridge to a foreign one: fut__loop_wrap, as run_in_executor does)
 * and suspends. Whatever comes first wakes the task: the future's done callback (on the
 * loop, in the order tasks began to await it), the timeout's timer, or a cancellation
 * request. The others find the task no longer waiting for them and do nothing.
 */
#include <errno.h>
#include <math.h>

#include "task/task.h"

/* The awaited future's done callback, on the loop (arg: a reference to the task's future). */
static void on_awaited_done(fut_future *f, void *arg)
{
    fut_future *task_future = arg;
    struct fut_task *t = fut__coro_of(task_future);
    if (t->awaiting == f && t->suspended)
        fut__task_wake(t, 0, false);
    fut_future_unref(task_future);
}

/* The timeout's timer; t is alive: the await cancels the timer before it returns. */
static void on_await_timeout(void *arg)
{
    struct fut_task *t = arg;
    fut_future *awaited = t->awaiting;
    if (!awaited || !t->suspended || t->waking)
        return;
    t->awaiting = NULL;      /* its done callback, if cancelling runs one, must not wake t */
    fut_cancel(awaited);     /* alive: the suspended await holds it */
    fut__task_wake(t, FUT_ETIMEDOUT, false);
}

/* Suspends t until the next iteration (asyncio.sleep(0)): rc is what it returns. */
static int yield_with(struct fut_task *t, int rc)
{
    t->suspended = true;
    t->waking = false;
    fut__task_wake(t, rc, true);
    if (!t->waking) {        /* the wake-up was not queued (no memory) and ran: */
        t->suspended = false;
        return rc;
    }
    return fut__task_suspend(t);
}

int fut_task_yield(void)
{
    struct fut_task *t = fut__task_here();
    if (!t)
        return FUT_ESTATE;
    return yield_with(t, fut__task_take_cancel(t) ? FUT_ECANCELLED : 0);
}

int fut_await_timeout(fut_future *f, double timeout, void **out)
{
    if (out)
        *out = NULL;
    if (!f || isnan(timeout))
        return FUT_EINVAL;
    struct fut_task *t = fut__task_here();
    if (!t)
        return FUT_ESTATE;
    if (fut_done(f))
        return fut_result(f, 0, out);
    if (f == t->future)
        return FUT_ESTATE;   /* it would wait for itself forever */
    if (fut__task_take_cancel(t)) {
        fut_cancel(f);
        yield_with(t, FUT_ECANCELLED);
        return FUT_ECANCELLED;
    }
    if (timeout == 0) {
        fut_cancel(f);
        return FUT_ETIMEDOUT;
    }
    fut_future *target = fut__loop_wrap(t->loop, f);
    if (!target)
        return -errno;
    int rc = fut_add_done_callback(target, on_awaited_done, fut_future_ref(t->future));
    if (rc) {
        fut_future_unref(t->future);
        fut_future_unref(target);
        return rc;
    }
    fut_handle timer = 0;
    if (timeout > 0 && !(timer = fut_loop_call_later(t->loop, timeout, on_await_timeout, t))) {
        fut_future_unref(target);  /* the done callback runs some day and drops its reference */
        return FUT_ENOMEM;
    }
    t->awaiting = target;
    rc = fut__task_suspend(t);
    if (timer)
        fut_loop_cancel(t->loop, timer);  /* FUT_ENOENT when it fired: fine */
    if (rc == 0)
        rc = fut_result(target, 0, out);
    fut_future_unref(target);
    return rc;
}

int fut_await(fut_future *f, void **out)
{
    return fut_await_timeout(f, FUT_FOREVER, out);
}

/* ---- fds -------------------------------------------------------------------------- */

static void on_fd_ready(void *arg)
{
    fut_set_result(arg, NULL);  /* FUT_ESTATE when it fires again before the task ran */
}

static int await_fd(int fd, double timeout, unsigned dir)
{
    if (fd < 0 || isnan(timeout))
        return FUT_EINVAL;
    struct fut_task *t = fut__task_here();
    if (!t)
        return FUT_ESTATE;
    fut_loop *loop = t->loop;
    if ((size_t)fd < loop->n_io && (loop->io[fd].mask & dir))
        return FUT_ESTATE;   /* it has a reader (writer) already: perhaps another task */
    fut_future *ready = fut_loop_create_future(loop);
    if (!ready)
        return -errno;
    int rc = dir == FUT_POLL_READABLE ? fut_loop_add_reader(loop, fd, on_fd_ready, ready)
                                      : fut_loop_add_writer(loop, fd, on_fd_ready, ready);
    if (rc == 0) {
        rc = fut_await_timeout(ready, timeout, NULL);
        if (dir == FUT_POLL_READABLE)
            fut_loop_remove_reader(loop, fd);
        else
            fut_loop_remove_writer(loop, fd);
    }
    fut_future_unref(ready);
    return rc;
}

int fut_await_readable(int fd, double timeout)
{
    return await_fd(fd, timeout, FUT_POLL_READABLE);
}

int fut_await_writable(int fd, double timeout)
{
    return await_fd(fd, timeout, FUT_POLL_WRITABLE);
}
