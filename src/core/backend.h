/* SPDX-License-Identifier: MIT */
/*
 * Internal: the entry points an executor built as a library of its own (libfutures-mpi)
 * needs from libfutures. libfutures exports only fut_* names, so its internals reach such
 * a backend through this one exported table instead of a dozen fut__ symbols. Not part of
 * the public API: the table is not declared in futures.h and may change with any release;
 * a backend checks `size` before reading a member.
 */
#ifndef FUT_BACKEND_H
#define FUT_BACKEND_H

#include <sys/types.h>

#include "core/executor.h"
#include "core/future.h"
#include "core/task_context.h"

/* What fut_map submits for each chunk: fut_submit_copy(ex, hooks->map_chunk, request,
 * sizeof *request + count * sizeof(void *)). A backend that runs tasks in another address
 * space must translate `fn`; the chunk copies bytes results into its reply whenever it
 * runs in a process other than `owner` (0 never is one). */
struct fut__map_request {
    fut_fn fn;
    pid_t owner;
    size_t count;
    void *args[];
};

struct fut_backend_hooks {
    size_t size;                   /* sizeof(struct fut_backend_hooks) of the library */
    int (*future_finish)(fut_future *f, void *result, bool result_is_bytes, int code, char *message);
    void (*task_call)(fut_fn fn, void *arg, struct fut_task_outcome *out);
    fut_fn map_chunk;
    /* fills the core's part of a new executor (fork generation, statistics) */
    void (*executor_init)(fut_executor *ex, const struct fut_executor_ops *ops, int max_workers);
    /* shared fut_bytes buffers (core/bytes_shared.h): for a backend's zero-copy path and
     * for tests/test_bytes_shared, which reaches them only through this table */
    void (*bytes_share_large)(bool on);
    void *(*bytes_new_shared)(size_t len);
    int (*bytes_fd)(const void *b);
    int (*bytes_release_fd)(void *b);
    void *(*bytes_from_fd)(int fd, size_t len);
    int (*bytes_spare_take)(void);
    void (*bytes_spare_add)(int fd);
    bool (*bytes_shared_trim)(void);
    bool (*bytes_claim)(void *p);
    /* sealed argument copies (core/bytes_shared.h), for tests/test_bytes_shared */
    void *(*arg_copy_new)(size_t len);
    int (*arg_copy_fd)(const void *data);
    void (*arg_copy_free)(void *data);
};

FUT_API const struct fut_backend_hooks *fut_backend_hooks(void);

/* map.c: the chunk task. */
void *fut__map_run_chunk(void *request);

#endif
