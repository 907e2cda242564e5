/* SPDX-License-Identifier: MIT */
/* fut_wait: one waiter attached to every pending future, as Python's wait() does; for
 * ALL_COMPLETED, the futures one at a time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/future.h"
#include "core/waiter.h"

static bool raised(fut_future *f)
{
    return fut__future_state(f) == FUT_STATE_FINISHED && f->exception != 0;
}

static bool condition_met(fut_future *const *fs, size_t n, int return_when)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fut_done(fs[i]))
            continue;
        done++;
        if (return_when == FUT_FIRST_COMPLETED)
            return true;
        if (return_when == FUT_FIRST_EXCEPTION && raised(fs[i]))
            return true;
    }
    return done == n;
}

/* Stable partition: done futures first. scratch holds at least the not-done ones. */
static size_t partition(fut_future **fs, size_t n, fut_future **scratch)
{
    size_t n_done = 0, n_pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (fut_done(fs[i]))
            fs[n_done++] = fs[i];
        else
            scratch[n_pending++] = fs[i];
    }
    if (n_pending)
        memcpy(fs + n_done, scratch, n_pending * sizeof *fs);
    return n_done;
}

/* Attaches one waiter to each of the pending futures and sleeps until it is signalled.
 * The futures that were done already did not meet the condition (else we would not
 * wait), so only the pending ones count. */
static int block(fut_future **pending, size_t n, double timeout, int return_when)
{
    if (n == 0)
        return 0;  /* all finished since they were counted: nothing to wait for */
    struct fut_waiter_link *links = malloc(n * sizeof *links);
    if (!links)
        return FUT_ENOMEM;
    struct fut_waiter waiter;
    int rc = fut__waiter_init(&waiter, return_when, n);
    if (rc) {
        free(links);
        return rc;
    }
    struct fut_deadline deadline = fut__deadline_after(timeout);
    for (size_t i = 0; i < n; i++) {
        links[i] = (struct fut_waiter_link){ .waiter = &waiter, .future = pending[i] };
        if (!fut__future_attach_waiter(pending[i], &links[i])) {
            links[i].future = NULL;  /* finished meanwhile: not attached */
            fut__waiter_notify(&links[i], raised(pending[i]));
        }
    }
    fut__waiter_wait(&waiter, &deadline);
    for (size_t i = 0; i < n; i++)
        if (links[i].future)
            fut__future_detach_waiter(pending[i], &links[i]);
    fut__waiter_destroy(&waiter);
    free(links);
    return 0;
}

/*
 * ALL_COMPLETED needs no notice of each completion, only the last: it waits for each
 * pending future in turn, from the last to the first, since executors start tasks in
 * order and the last is likely to finish last (then the others are done on the way
 * back). No memory per future and no waiter lock per completion, where attaching a waiter
 * to each of a million pending futures costs 48 bytes of fresh memory and a lock each.
 * Each index is visited once; stops at the deadline.
 */
static int wait_each(fut_future *const *fs, size_t n, double timeout)
{
    struct fut_deadline deadline = fut__deadline_after(timeout);
    for (size_t i = n; i-- > 0;) {
        if (fut_done(fs[i]))
            continue;
        if (fut__future_orphaned(fs[i]))
            return FUT_EBROKEN;  /* inherited through fork(): would never complete */
        fut_exception(fs[i], fut__deadline_remaining(&deadline));
        if (!fut_done(fs[i]))
            return 0;  /* the deadline passed */
    }
    return 0;
}

int fut_wait(fut_future **fs, size_t n, double timeout, int return_when, size_t *n_done)
{
    if ((!fs && n) || !n_done || isnan(timeout))
        return FUT_EINVAL;
    if (return_when != FUT_FIRST_COMPLETED && return_when != FUT_FIRST_EXCEPTION &&
        return_when != FUT_ALL_COMPLETED)
        return FUT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return FUT_EINVAL;

    if (return_when == FUT_ALL_COMPLETED && timeout != 0) {
        int rc = wait_each(fs, n, timeout);
        if (rc)
            return rc;
        timeout = 0;  /* waited (up to the deadline): what is done now is the answer */
    }

    /* Memory in proportion to the pending futures only: in a large batch most are done,
     * and an allocation of the whole batch's size costs page faults of its own. Futures
     * only ever become done, so the count bounds what partition() needs later. */
    size_t n_pending = 0;
    for (size_t i = 0; i < n; i++)
        n_pending += !fut_done(fs[i]);
    fut_future **pending = malloc((n_pending ? n_pending : 1) * sizeof *pending);
    if (!pending)
        return FUT_ENOMEM;
    int rc = 0;
    if (n_pending && timeout != 0) {
        size_t k = 0;
        for (size_t i = 0; i < n && k < n_pending; i++) {
            if (!fut_done(fs[i]))
                pending[k++] = fs[i];
            if (fut__future_orphaned(fs[i]))
                rc = FUT_EBROKEN;  /* inherited through fork(): would never complete */
        }
        /* The condition is checked after the pending futures are collected, not before: a
         * future that finished in between is in neither, and with FIRST_COMPLETED the wait
         * would block on the others for ever (it did: test_wait's test_mixed_futures, a
         * quick task finishing while fut_wait collected). Done after the collection, it
         * is seen here; done later, it is in `pending` and block() sees it. */
        if (rc == 0 && !condition_met(fs, n, return_when))
            rc = block(pending, k, timeout, return_when);
    }
    if (rc == 0)
        *n_done = partition(fs, n, pending);
    free(pending);
    return rc;
}
