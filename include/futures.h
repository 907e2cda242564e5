/* SPDX-License-Identifier: MIT */
/*
 * libfutures: Python's concurrent.futures for C.
 *
 * One public header. Every symbol is prefixed fut_ (types, functions) or FUT_
 * (macros, constants). Errors are negative int codes, 0 is success; functions
 * that return a pointer return NULL on failure and set errno to -code.
 * See futures(7) for the concepts and a Python-to-C mapping.
 */
#ifndef FUTURES_H
#define FUTURES_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "futures_version.h"   /* FUT_VERSION_MAJOR/MINOR/PATCH, FUT_VERSION_STRING */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FUT_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define FUT_API __attribute__((visibility("default")))
#else
#define FUT_PRINTF_LIKE(f, a)
#define FUT_API
#endif

/* Error codes. Where an errno value fits, the code is its negation. */
#define FUT_OK          0
#define FUT_EINVAL      (-EINVAL)
#define FUT_ENOMEM      (-ENOMEM)
#define FUT_ETIMEDOUT   (-ETIMEDOUT)
#define FUT_ECANCELLED  (-ECANCELED)
#define FUT_ESHUTDOWN   (-ESHUTDOWN)
#define FUT_EBROKEN     (-ENOTRECOVERABLE) /* executor broken: initializer failed, worker died */
#define FUT_ESTATE      (-EALREADY)        /* operation invalid in the current state */
#define FUT_ENOENT      (-ENOENT)          /* no such handle or fd registration */

FUT_API const char *fut_strerror(int code);

/* Timeouts are seconds on CLOCK_MONOTONIC; any negative value waits forever. */
#define FUT_FOREVER (-1.0)

/* ---- Tasks ------------------------------------------------------------ */

typedef void *(*fut_fn)(void *arg);

FUT_API void fut_raise(int code, const char *fmt, ...) FUT_PRINTF_LIKE(2, 3);

FUT_API void  *fut_bytes_new(size_t len);
FUT_API void  *fut_bytes_dup(const void *src, size_t len);
FUT_API size_t fut_bytes_len(const void *b);
FUT_API void   fut_bytes_free(void *b);

/* ---- Futures ---------------------------------------------------------- */

typedef struct fut_future fut_future;
typedef void (*fut_done_fn)(fut_future *f, void *arg);

FUT_API fut_future *fut_future_new(void);
FUT_API fut_future *fut_future_ref(fut_future *f);
FUT_API void        fut_future_unref(fut_future *f);

FUT_API bool fut_cancel(fut_future *f);
FUT_API bool fut_cancelled(fut_future *f);
FUT_API bool fut_running(fut_future *f);
FUT_API bool fut_done(fut_future *f);
FUT_API int  fut_result(fut_future *f, double timeout, void **out);
FUT_API int  fut_exception(fut_future *f, double timeout);
FUT_API const char *fut_exception_message(fut_future *f);
FUT_API int  fut_add_done_callback(fut_future *f, fut_done_fn cb, void *arg);

/* For executor writers and tests. */
FUT_API int fut_set_running_or_notify_cancel(fut_future *f);
FUT_API int fut_set_result(fut_future *f, void *result);
FUT_API int fut_set_exception(fut_future *f, int code, const char *message);

/* ---- Waiting on many futures ------------------------------------------- */

enum { FUT_FIRST_COMPLETED, FUT_FIRST_EXCEPTION, FUT_ALL_COMPLETED };

FUT_API int fut_wait(fut_future **fs, size_t n, double timeout, int return_when, size_t *n_done);

typedef struct fut_as_completed fut_as_completed;
FUT_API fut_as_completed *fut_as_completed_new(fut_future *const *fs, size_t n, double timeout);
FUT_API int  fut_as_completed_next(fut_as_completed *it, fut_future **out);
FUT_API void fut_as_completed_free(fut_as_completed *it);

/* ---- Executors --------------------------------------------------------- */

typedef struct fut_executor fut_executor;

/*
 * fut_pool_options may grow at its end in later versions (never in the middle, never a
 * changed meaning), and a field added later means "as before" when it is zero. So:
 *  - source: a caller that zero-initialises the struct (designated initialisers,
 *    `= {0}`, memset) keeps its behaviour when rebuilt against a newer header;
 *  - binaries: the release that adds a field gives fut_thread_pool_new and
 *    fut_process_pool_new a new symbol version (LIBFUTURES_0.N); a program linked against
 *    an older release keeps calling the older entry point, which reads only the fields
 *    its struct has. See fut_thread_pool_new(3).
 */
typedef struct fut_pool_options {
    int max_workers;                 /* 0: default */
    int (*initializer)(void *arg);   /* run in each new worker; non-zero = failure */
    void *initarg;
    const char *thread_name_prefix;  /* thread pools: workers named PREFIX_N */
    int max_tasks_per_child;         /* process pools: retire a worker after N tasks; 0 = never */
    double task_timeout;             /* process pools: > 0 kills a task running longer */
} fut_pool_options;

FUT_API fut_executor *fut_thread_pool_new(const fut_pool_options *opts);
FUT_API fut_executor *fut_process_pool_new(const fut_pool_options *opts);
FUT_API int  fut_executor_max_workers(const fut_executor *ex);

FUT_API fut_future *fut_submit(fut_executor *ex, fut_fn fn, void *arg);
FUT_API fut_future *fut_submit_copy(fut_executor *ex, fut_fn fn, const void *arg, size_t len);

FUT_API int fut_map(fut_executor *ex, fut_fn fn, void *const *args, size_t n,
            void **results, double timeout, size_t chunksize);

FUT_API int  fut_shutdown(fut_executor *ex, bool wait, bool cancel_futures);
FUT_API void fut_executor_free(fut_executor *ex);

/* ---- The event loop ---------------------------------------------------- */

typedef struct fut_loop fut_loop;
typedef void (*fut_callback)(void *arg);
typedef uint64_t fut_handle;          /* 0 means failure (errno set) */

FUT_API fut_loop  *fut_loop_new(void);
FUT_API void       fut_loop_free(fut_loop *loop);
FUT_API double     fut_loop_time(fut_loop *loop);
FUT_API fut_handle fut_loop_call_soon(fut_loop *loop, fut_callback cb, void *arg);
FUT_API fut_handle fut_loop_call_soon_threadsafe(fut_loop *loop, fut_callback cb, void *arg);
FUT_API fut_handle fut_loop_call_later(fut_loop *loop, double delay, fut_callback cb, void *arg);
FUT_API fut_handle fut_loop_call_at(fut_loop *loop, double when, fut_callback cb, void *arg);
FUT_API int        fut_loop_cancel(fut_loop *loop, fut_handle h);
FUT_API int        fut_loop_run_forever(fut_loop *loop);
FUT_API int        fut_loop_run_until_complete(fut_loop *loop, fut_future *f);
FUT_API void       fut_loop_stop(fut_loop *loop);
FUT_API bool       fut_loop_is_running(fut_loop *loop);

FUT_API fut_future *fut_loop_create_future(fut_loop *loop);
FUT_API fut_future *fut_loop_run_in_executor(fut_loop *loop, fut_executor *ex, fut_fn fn, void *arg);
FUT_API int         fut_loop_set_default_executor(fut_loop *loop, fut_executor *ex);
FUT_API fut_future *fut_loop_wrap_future(fut_loop *loop, fut_future *f);
FUT_API fut_future *fut_loop_sleep(fut_loop *loop, double delay, void *result);
FUT_API fut_future *fut_loop_gather(fut_loop *loop, fut_future *const *fs, size_t n);

FUT_API int fut_loop_add_reader(fut_loop *loop, int fd, fut_callback cb, void *arg);
FUT_API int fut_loop_remove_reader(fut_loop *loop, int fd);
FUT_API int fut_loop_add_writer(fut_loop *loop, int fd, fut_callback cb, void *arg);
FUT_API int fut_loop_remove_writer(fut_loop *loop, int fd);

/* ---- Coroutine tasks (asyncio's async/await) ----------------------------- */

FUT_API fut_future *fut_loop_create_task(fut_loop *loop, fut_fn fn, void *arg);
FUT_API fut_loop   *fut_loop_current(void);
FUT_API int         fut_loop_set_task_stack_size(fut_loop *loop, size_t bytes);
FUT_API int         fut_await(fut_future *f, void **out);
FUT_API int         fut_await_timeout(fut_future *f, double timeout, void **out);
FUT_API int         fut_task_yield(void);
FUT_API fut_future *fut_task_current(void);
FUT_API int         fut_await_readable(int fd, double timeout);
FUT_API int         fut_await_writable(int fd, double timeout);
FUT_API int         fut_run(fut_fn main, void *arg, void **out);

/* ---- Embedding the loop, and signals (0.2.0) ---------------------------- */

FUT_API int    fut_loop_fd(fut_loop *loop);
FUT_API double fut_loop_timeout(fut_loop *loop);
FUT_API int    fut_loop_run_once(fut_loop *loop, double timeout);
FUT_API int    fut_loop_add_signal_handler(fut_loop *loop, int signum, fut_callback cb, void *arg);
FUT_API int    fut_loop_remove_signal_handler(fut_loop *loop, int signum);

/* ---- Introspection and versions (0.2.0) ---------------------------------- */

FUT_API unsigned    fut_version(void);          /* (major << 16) | (minor << 8) | patch */
FUT_API const char *fut_version_string(void);

/* May grow at its end: pass sizeof *out, so a newer library never writes past it. */
typedef struct fut_executor_stats {
    size_t   workers;      /* threads or processes alive now */
    size_t   idle;         /* of which waiting for work */
    size_t   queued;       /* submitted, not yet handed to a worker */
    size_t   running;      /* handed to a worker, not yet done */
    uint64_t submitted, completed, failed, cancelled;   /* totals since creation */
} fut_executor_stats;

FUT_API int fut_executor_get_stats(const fut_executor *ex, fut_executor_stats *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* FUTURES_H */
