/* SPDX-License-Identifier: MIT */
/*
 * fut_as_completed: one waiter attached to every distinct pending future records each one
 * as it finishes; next() hands them out in that order. Futures already done are queued
 * first, in input order.
 */
#include <math.h>
#include <stdlib.h>

#include "core/future.h"
#include "core/waiter.h"

struct fut_as_completed {
    struct fut_waiter waiter;      /* waiter.finished: links in completion order */
    struct fut_waiter_link *links; /* one per distinct future */
    size_t n;                      /* distinct futures */
    size_t n_yielded;
    struct fut_deadline deadline;
};

struct entry {
    fut_future *future;
    size_t index;
};

static int compare_entries(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->future != y->future)
        return (uintptr_t)x->future < (uintptr_t)y->future ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Copies the distinct futures of fs, in input order, into links[]. Returns how many. */
static size_t collect_distinct(fut_as_completed *it, fut_future *const *fs, size_t n,
                               struct entry *entries, bool *first)
{
    for (size_t i = 0; i < n; i++)
        entries[i] = (struct entry){ fs[i], i };
    qsort(entries, n, sizeof *entries, compare_entries);
    for (size_t i = 0; i < n; i++)
        first[entries[i].index] = i == 0 || entries[i - 1].future != entries[i].future;
    size_t n_distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (first[i])
            it->links[n_distinct++] = (struct fut_waiter_link){ .waiter = &it->waiter, .future = fs[i] };
    return n_distinct;
}

fut_as_completed *fut_as_completed_new(fut_future *const *fs, size_t n, double timeout)
{
    if ((!fs && n) || isnan(timeout)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!fs[i]) {
            errno = EINVAL;
            return NULL;
        }
    }
    fut_as_completed *it = calloc(1, sizeof *it);
    struct entry *entries = malloc((n ? n : 1) * sizeof *entries);
    bool *flags = malloc(n ? n : 1);
    if (!it || !entries || !flags)
        goto fail;
    it->deadline = fut__deadline_after(timeout);
    if (!(it->links = malloc((n ? n : 1) * sizeof *it->links)))
        goto fail;
    if (fut__waiter_init(&it->waiter, FUT_WAITER_AS_COMPLETED, 0) != 0)
        goto fail;
    it->waiter.finished = malloc((n ? n : 1) * sizeof *it->waiter.finished);
    if (!it->waiter.finished) {
        fut__waiter_destroy(&it->waiter);
        goto fail;
    }
    it->n = collect_distinct(it, fs, n, entries, flags);

    /* Done ones first, in input order (flags[i]: queued); then attach to the rest. */
    for (size_t i = 0; i < it->n; i++) {
        fut_future_ref(it->links[i].future);
        flags[i] = fut_done(it->links[i].future);
        if (flags[i])
            fut__waiter_notify(&it->links[i], false);
    }
    for (size_t i = 0; i < it->n; i++) {
        struct fut_waiter_link *link = &it->links[i];
        if (!flags[i] && !fut__future_attach_waiter(link->future, link))
            fut__waiter_notify(link, false);  /* finished meanwhile */
    }
    free(entries);
    free(flags);
    return it;
fail:
    if (it)
        free(it->links);
    free(it);
    free(entries);
    free(flags);
    errno = ENOMEM;
    return NULL;
}

/* Whether a future the iterator still waits for can never complete (core/fork.h). */
static bool waits_on_orphan(const fut_as_completed *it)
{
    for (size_t i = 0; i < it->n; i++)
        if (!it->links[i].yielded && fut__future_orphaned(it->links[i].future))
            return true;
    return false;
}

int fut_as_completed_next(fut_as_completed *it, fut_future **out)
{
    if (!it || !out)
        return FUT_EINVAL;
    struct fut_waiter *w = &it->waiter;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (it->n_yielded == w->n_finished && it->n_yielded < it->n && waits_on_orphan(it)) {
        pthread_mutex_unlock(&w->lock);
        return FUT_EBROKEN;  /* inherited through fork(): would never complete */
    }
    while (it->n_yielded == w->n_finished && it->n_yielded < it->n && rc != ETIMEDOUT) {
        if (it->deadline.forever)
            pthread_cond_wait(&w->cond, &w->lock);
        else
            rc = pthread_cond_timedwait(&w->cond, &w->lock, &it->deadline.at);
    }
    struct fut_waiter_link *link = NULL;
    if (it->n_yielded < w->n_finished)
        link = w->finished[it->n_yielded++];
    size_t n_yielded = it->n_yielded;
    pthread_mutex_unlock(&w->lock);

    if (link) {
        link->yielded = true;
        *out = link->future;
        fut_future_unref(link->future);  /* the caller's reference outlives the iterator */
        return 1;
    }
    return n_yielded == it->n ? 0 : FUT_ETIMEDOUT;
}

void fut_as_completed_free(fut_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        struct fut_waiter_link *link = &it->links[i];
        if (link->yielded)
            continue;
        fut__future_detach_waiter(link->future, link);
        fut_future_unref(link->future);
    }
    fut__waiter_destroy(&it->waiter);
    free(it->waiter.finished);
    free(it->links);
    free(it);
}
