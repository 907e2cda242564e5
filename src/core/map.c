/* SPDX-License-Identifier: MIT */
/*
 * fut_map: items travel in chunks, each chunk one task that runs fn on every item and
 * returns a fut_bytes reply with each item's value and code. The reply is a buffer, so
 * the same chunk works on every executor: a process pool copies it back like any bytes
 * result. A sliding window of chunks in input order bounds the memory in use.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/task_context.h"

struct chunk_item {
    void *value;
    int code;
    bool is_bytes;
    bool copied;                   /* bytes contents follow the items (run in another process) */
    size_t bytes_len;
};

struct chunk_reply {
    size_t count;
    struct chunk_item items[];
};

void *fut__map_run_chunk(void *arg)
{
    const struct fut__map_request *request = arg;
    struct fut_task_outcome *outcomes = calloc(request->count, sizeof *outcomes);
    if (!outcomes) {
        fut_raise(FUT_ENOMEM, "map: no memory for a chunk of %zu items", request->count);
        return NULL;
    }
    bool remote = getpid() != request->owner;
    size_t payload = 0;
    for (size_t i = 0; i < request->count; i++) {
        fut__task_call(request->fn, request->args[i], &outcomes[i]);
        free(outcomes[i].message);  /* map reports codes only */
        if (remote && outcomes[i].result_is_bytes)
            payload += fut_bytes_len(outcomes[i].result);
    }
    size_t header = sizeof(struct chunk_reply) + request->count * sizeof(struct chunk_item);
    struct chunk_reply *reply = fut_bytes_new(header + payload);
    char *cursor = (char *)reply + header;
    for (size_t i = 0; reply && i < request->count; i++) {
        struct fut_task_outcome *o = &outcomes[i];
        struct chunk_item *item = &reply->items[i];
        *item = (struct chunk_item){ .value = o->result, .code = o->code, .is_bytes = o->result_is_bytes };
        if (remote && o->result_is_bytes) {
            item->copied = true;
            item->bytes_len = fut_bytes_len(o->result);
            memcpy(cursor, o->result, item->bytes_len);
            cursor += item->bytes_len;
            fut_bytes_free(o->result);
        }
    }
    if (reply) {
        reply->count = request->count;
    } else {
        for (size_t i = 0; i < request->count; i++)
            if (outcomes[i].result_is_bytes)
                fut_bytes_free(outcomes[i].result);
        fut_raise(FUT_ENOMEM, "map: no memory for the reply of %zu items", request->count);
    }
    free(outcomes);
    return reply;
}

struct map_state {
    struct fut_executor_counters *counters;
    void **results;
    size_t first_failed;           /* input index of the first failed item, or n */
    int first_code;
};

static void fail_items(struct map_state *m, size_t start, size_t count, int code)
{
    for (size_t i = start; i < start + count; i++)
        m->results[i] = NULL;
    if (count && start < m->first_failed) {
        m->first_failed = start;
        m->first_code = code;
    }
}

/* A chunk that finished with a reply counted all its items completed: move those that
 * failed to `failed` (failed first, so that readers never see items vanish). */
static void recount_failed_items(struct map_state *m, size_t n_failed)
{
    if (n_failed == 0)
        return;
    fut__count(&m->counters->failed, n_failed);
    atomic_fetch_sub_explicit(&m->counters->completed, n_failed, memory_order_relaxed);
}

static void collect_chunk(struct map_state *m, fut_future *f, size_t start, size_t count)
{
    void *value = NULL;
    int rc = fut_result(f, FUT_FOREVER, &value);
    const struct chunk_reply *reply = value;
    if (rc || !reply || reply->count != count) {
        fail_items(m, start, count, rc ? rc : FUT_EBROKEN);
        if (!rc)
            recount_failed_items(m, count);
        return;
    }
    size_t n_failed = 0;
    for (size_t i = 0; i < count; i++)
        n_failed += reply->items[i].code != 0;
    recount_failed_items(m, n_failed);
    const char *payload = (const char *)&reply->items[count];
    for (size_t i = 0; i < count; i++) {
        const struct chunk_item *item = &reply->items[i];
        if (item->code) {
            fail_items(m, start + i, 1, item->code);
            continue;
        }
        m->results[start + i] = item->value;
        if (item->copied) {
            m->results[start + i] = fut_bytes_dup(payload, item->bytes_len);
            payload += item->bytes_len;
            if (!m->results[start + i])
                fail_items(m, start + i, 1, FUT_ENOMEM);
        }
    }
}

static fut_future *submit_chunk(fut_executor *ex, fut_fn fn, void *const *args, size_t count,
                                struct fut__map_request *scratch)
{
    scratch->fn = fn;
    scratch->owner = getpid();
    scratch->count = count;
    memcpy(scratch->args, args, count * sizeof *args);
    return fut__submit_items(ex, fut__map_run_chunk, scratch, sizeof *scratch + count * sizeof *args,
                             (uint32_t)count);
}

struct window_slot {
    fut_future *future;
    size_t start, count;
};

int fut_map(fut_executor *ex, fut_fn fn, void *const *args, size_t n,
            void **results, double timeout, size_t chunksize)
{
    if (!ex || !fn || (n && (!args || !results)) || isnan(timeout))
        return FUT_EINVAL;
    if (n == 0)
        return 0;
    if (chunksize == 0) {
        chunksize = n / ((size_t)ex->max_workers * ex->ops->chunks_per_worker);
        if (chunksize > ex->ops->max_chunksize)
            chunksize = ex->ops->max_chunksize;
        if (chunksize < 1)
            chunksize = 1;
    }
    /* task_timeout is a promise to each item: an item alone in its task gets all of it, and
     * one that overruns fails alone (a chunk would fail every item in it) */
    if (ex->task_timeout > 0)
        chunksize = 1;
    if (chunksize > n)
        chunksize = n;
    if (chunksize > UINT32_MAX)  /* a chunk's item count is 32-bit in the statistics */
        chunksize = UINT32_MAX;
    size_t window = (size_t)(ex->max_workers > 0 ? ex->max_workers : 1) * 2;
    struct window_slot *slots = calloc(window, sizeof *slots);
    struct fut__map_request *scratch = calloc(1, sizeof *scratch + chunksize * sizeof *args);
    if (!slots || !scratch) {
        free(slots);
        free(scratch);
        return FUT_ENOMEM;
    }
    struct map_state m = { .counters = &ex->counters, .results = results, .first_failed = n };
    memset(results, 0, n * sizeof *results);
    struct fut_deadline deadline = fut__deadline_after(timeout);
    size_t next = 0, head = 0, in_flight = 0;
    bool timed_out = false;

    while (next < n || in_flight) {
        while (in_flight < window && next < n) {
            size_t count = n - next < chunksize ? n - next : chunksize;
            fut_future *f = submit_chunk(ex, fn, args + next, count, scratch);
            if (!f) {
                fail_items(&m, next, n - next, -errno);  /* the rest cannot run */
                next = n;
                break;
            }
            slots[(head + in_flight++) % window] = (struct window_slot){ f, next, count };
            next += count;
        }
        if (!in_flight)
            break;
        struct window_slot *oldest = &slots[head];
        if (fut_exception(oldest->future, fut__deadline_remaining(&deadline)) == FUT_ETIMEDOUT &&
            !fut_done(oldest->future)) {
            timed_out = true;
            break;
        }
        collect_chunk(&m, oldest->future, oldest->start, oldest->count);
        fut_future_unref(oldest->future);
        head = (head + 1) % window;
        in_flight--;
    }
    if (timed_out) {
        /* cancel what has not started, then wait for what is running */
        for (size_t i = 0; i < in_flight; i++)
            fut_cancel(slots[(head + i) % window].future);
        for (size_t i = 0; i < in_flight; i++) {
            struct window_slot *s = &slots[(head + i) % window];
            collect_chunk(&m, s->future, s->start, s->count);
            fut_future_unref(s->future);
        }
    }
    free(slots);
    free(scratch);
    if (timed_out)
        return FUT_ETIMEDOUT;
    return m.first_failed < n ? m.first_code : 0;
}
