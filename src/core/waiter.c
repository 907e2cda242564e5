/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "core/future.h"
#include "core/waiter.h"

int fut__waiter_init(struct fut_waiter *w, int mode, size_t pending)
{
    *w = (struct fut_waiter){ .mode = mode, .pending = pending };
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return FUT_ENOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return FUT_ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    return 0;
}

void fut__waiter_destroy(struct fut_waiter *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

int fut__waiter_wait(struct fut_waiter *w, const struct fut_deadline *deadline)
{
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (!w->signalled && rc != ETIMEDOUT) {
        if (deadline->forever)
            pthread_cond_wait(&w->cond, &w->lock);
        else
            rc = pthread_cond_timedwait(&w->cond, &w->lock, &deadline->at);
    }
    bool signalled = w->signalled;
    pthread_mutex_unlock(&w->lock);
    return signalled ? 0 : FUT_ETIMEDOUT;
}

void fut__waiter_notify(struct fut_waiter_link *link, bool raised)
{
    struct fut_waiter *w = link->waiter;
    pthread_mutex_lock(&w->lock);
    switch (w->mode) {
    case FUT_FIRST_COMPLETED:
        w->signalled = true;
        break;
    case FUT_FIRST_EXCEPTION:
        if (raised)
            w->signalled = true;
        /* otherwise it counts down as ALL_COMPLETED does */
        __attribute__((fallthrough));
    case FUT_ALL_COMPLETED:
        if (--w->pending == 0)
            w->signalled = true;
        break;
    case FUT_WAITER_AS_COMPLETED:
        w->finished[w->n_finished++] = link;
        w->signalled = true;
        break;
    }
    if (w->signalled)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}
