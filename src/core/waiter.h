/* SPDX-License-Identifier: MIT */
/* Internal: one blocked thread waiting on one or many futures (fut_result, fut_wait,
 * fut_as_completed). Futures notify it from their completing thread; nobody polls. */
#ifndef FUT_WAITER_H
#define FUT_WAITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/clock.h"
#include "core/future.h"
#include "futures.h"

#define FUT_WAITER_AS_COMPLETED 100

struct fut_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int mode;                      /* FUT_FIRST_COMPLETED, ..., or FUT_WAITER_AS_COMPLETED */
    size_t pending;                /* FUT_ALL_COMPLETED / FIRST_EXCEPTION: futures not yet done */
    bool signalled;
    struct fut_waiter_link **finished; /* as_completed: links in completion order */
    size_t n_finished;
};

/* A waiter's membership in one future's watchers (core/future.h). Lock order: future
 * lock, then waiter lock. */
struct fut_waiter_link {
    struct fut_watcher watcher;
    bool yielded;                  /* as_completed: handed to the caller */
    struct fut_waiter *waiter;
    fut_future *future;
};

int  fut__waiter_init(struct fut_waiter *w, int mode, size_t pending);
void fut__waiter_destroy(struct fut_waiter *w);
/* 0 once signalled, FUT_ETIMEDOUT when the deadline passes first. */
int  fut__waiter_wait(struct fut_waiter *w, const struct fut_deadline *deadline);
/* Called by a future, under its lock, as it becomes done. */
void fut__waiter_notify(struct fut_waiter_link *link, bool raised);

#endif
