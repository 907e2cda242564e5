/* fut_wait: one waiter attached to every pending future, as Python's wait() does. */
#include <stdlib.h>
#include <string.h>

#include "future.h"
#include "waiter.h"

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

/* Stable partition: done futures first. */
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

static int block(fut_future **fs, size_t n, struct fut_waiter_link *links, double timeout,
                 int return_when)
{
    struct fut_waiter waiter;
    int rc = fut__waiter_init(&waiter, return_when, n);
    if (rc)
        return rc;
    struct fut_deadline deadline = fut__deadline_after(timeout);
    for (size_t i = 0; i < n; i++) {
        links[i] = (struct fut_waiter_link){ .waiter = &waiter, .future = fs[i] };
        if (!fut__future_attach_waiter(fs[i], &links[i]))
            fut__waiter_notify(&links[i], raised(fs[i]));  /* finished meanwhile */
    }
    fut__waiter_wait(&waiter, &deadline);
    for (size_t i = 0; i < n; i++)
        fut__future_detach_waiter(fs[i], &links[i]);
    fut__waiter_destroy(&waiter);
    return 0;
}

int fut_wait(fut_future **fs, size_t n, double timeout, int return_when, size_t *n_done)
{
    if ((!fs && n) || !n_done)
        return FUT_EINVAL;
    if (return_when != FUT_FIRST_COMPLETED && return_when != FUT_FIRST_EXCEPTION &&
        return_when != FUT_ALL_COMPLETED)
        return FUT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return FUT_EINVAL;

    fut_future **scratch = malloc((n ? n : 1) * sizeof *scratch);
    struct fut_waiter_link *links = NULL;
    int rc = FUT_ENOMEM;
    if (!scratch)
        goto out;
    if (timeout != 0 && !condition_met(fs, n, return_when)) {
        if (!(links = malloc(n * sizeof *links)))
            goto out;
        if ((rc = block(fs, n, links, timeout, return_when)) != 0)
            goto out;
    }
    *n_done = partition(fs, n, scratch);
    rc = 0;
out:
    free(links);
    free(scratch);
    return rc;
}
