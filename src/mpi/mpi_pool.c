/* SPDX-License-Identifier: MIT */
/*
 * fut_mpi_pool_new: the collective start of an MPI executor, MPI's initialisation and
 * finalisation when the library did the former, and the registry of live executors.
 *
 * Thread level: every MPI call of an executor comes from one thread at a time (the progress
 * thread on the root, the calling thread on a worker rank), but the root's progress thread
 * is not the thread that initialised MPI, so MPI_THREAD_SERIALIZED is required on every
 * rank (and asked for when this library initialises MPI). A program that calls MPI itself
 * on the root while the executor lives needs MPI_THREAD_MULTIPLE: that is its own affair.
 *
 * Finalisation: when fut_mpi_pool_new initialised MPI, an atexit handler shuts down the
 * root executors still alive (releasing their worker ranks), then calls MPI_Finalize, in
 * the process that initialised MPI only (never in a forked child that calls exit).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "futures_mpi.h"
#include "mpi/mpi_pool.h"

static _Thread_local char last_error[256];

static int set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *fut_mpi_last_error(void)
{
    return last_error;
}

double fut__mpi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int fut__mpi_wait(MPI_Request *request, MPI_Status *status)
{
    double start = fut__mpi_now(), backoff = FUT_MPI_BACKOFF_MIN;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(request, &done, status);
        if (rc != MPI_SUCCESS || done)
            return rc;
        double quiet = fut__mpi_now() - start;
        if (quiet < FUT_MPI_SPIN_SECONDS)
            continue;
        struct timespec ts = { 0, (long)(backoff * 1e9) };
        nanosleep(&ts, NULL);
        backoff = fut__mpi_backoff_next(backoff, quiet);
    }
}

/* ---- live executors and finalisation --------------------------------------------------- */

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static fut_executor **live;
static size_t n_live, live_capacity;
static pid_t initialised_by;       /* the process whose MPI we initialised, or 0 */

void fut__mpi_live_add(fut_executor *ex)
{
    pthread_mutex_lock(&live_lock);
    if (n_live == live_capacity) {
        size_t capacity = live_capacity ? live_capacity * 2 : 4;
        fut_executor **grown = realloc(live, capacity * sizeof *grown);
        if (grown) {
            live = grown;
            live_capacity = capacity;
        }
    }
    if (n_live < live_capacity)
        live[n_live++] = ex;
    pthread_mutex_unlock(&live_lock);
}

void fut__mpi_live_remove(fut_executor *ex)
{
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < n_live; i++) {
        if (live[i] == ex) {
            live[i] = live[--n_live];
            break;
        }
    }
    pthread_mutex_unlock(&live_lock);
}

static void finalize_at_exit(void)
{
    if (getpid() != initialised_by)
        return;
    pthread_mutex_lock(&live_lock);
    fut_executor **copy = n_live ? malloc(n_live * sizeof *copy) : NULL;
    size_t n = copy ? n_live : 0;
    if (copy)
        memcpy(copy, live, n * sizeof *copy);
    pthread_mutex_unlock(&live_lock);
    for (size_t i = 0; i < n; i++)
        fut_shutdown(copy[i], true, false);  /* releases the worker ranks */
    free(copy);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Finalize();
}

static int ensure_initialized(void)
{
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        return 0;
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return set_error(FUT_EINVAL, "MPI_Init_thread failed");
    initialised_by = getpid();
    atexit(finalize_at_exit);
    return 0;
}

/* ---- creation ---------------------------------------------------------------------------- */

static int check_options(const fut_pool_options *opts)
{
    if (!opts)
        return 0;
    if (opts->max_workers < 0 || opts->max_tasks_per_child < 0)
        return set_error(FUT_EINVAL, "max_workers and max_tasks_per_child must not be negative");
    if (!(opts->task_timeout >= 0) || opts->task_timeout > 1e9)
        return set_error(FUT_EINVAL, "task_timeout must be a duration in seconds");
    return 0;
}

/* The checks every rank makes on its own: 0 or a negative code (with last_error set). */
static int local_checks(MPI_Comm comm, int root, const fut_pool_options *opts, int *size)
{
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_SERIALIZED)
        return set_error(FUT_EINVAL,
                         "MPI was initialised with too low a thread level: the executor needs "
                         "MPI_THREAD_SERIALIZED (MPI_Init_thread), or let fut_mpi_pool_new initialise MPI");
    if (MPI_Comm_size(comm, size) != MPI_SUCCESS)
        return set_error(FUT_EINVAL, "invalid communicator");
    if (*size < 2)
        return set_error(FUT_EINVAL, "a communicator of size %d has no rank to serve as a worker", *size);
    if (root < 0 || root >= *size)
        return set_error(FUT_EINVAL, "root %d is not a rank of a communicator of size %d", root, *size);
    return check_options(opts);
}

int fut_mpi_pool_new(MPI_Comm comm, int root, const fut_pool_options *opts, fut_executor **out)
{
    last_error[0] = '\0';
    if (!out)
        return set_error(FUT_EINVAL, "out is NULL");
    *out = NULL;
    int rc = ensure_initialized();
    if (rc)
        return rc;
    if (comm == MPI_COMM_NULL)
        return set_error(FUT_EINVAL, "the communicator is MPI_COMM_NULL");
    int size = 0;
    rc = local_checks(comm, root, opts, &size);
    if (size < 2)
        return rc ? rc : FUT_EINVAL;  /* alone: nobody to agree with */
    /* collective: every rank returns the same verdict */
    int agreed = 0;
    if (MPI_Allreduce(&rc, &agreed, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return set_error(FUT_EINVAL, "MPI_Allreduce failed on the communicator");
    if (agreed) {
        if (!rc)
            set_error(agreed, "another rank rejected the arguments or its thread level");
        return agreed;
    }
    MPI_Comm dup;
    if (MPI_Comm_dup(comm, &dup) != MPI_SUCCESS)
        return set_error(FUT_EINVAL, "MPI_Comm_dup failed");
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    int rank = 0;
    MPI_Comm_rank(dup, &rank);

    struct fut__mpi_config config = { 0 };
    if (rank == root) {
        int wanted = opts ? opts->max_workers : 0;
        config.workers = wanted == 0 || wanted > size - 1 ? size - 1 : wanted;
        config.max_tasks_per_child = opts ? opts->max_tasks_per_child : 0;
        config.task_timeout = opts ? opts->task_timeout : 0;
    }
    if (MPI_Bcast(&config, sizeof config, MPI_BYTE, root, dup) != MPI_SUCCESS) {
        MPI_Comm_free(&dup);
        return set_error(FUT_EBROKEN, "MPI_Bcast failed");
    }
    if (rank == root) {
        rc = fut__mpi_root_start(dup, root, &config, out);
        return rc ? set_error(rc, "cannot start the executor: %s", fut_strerror(rc)) : 0;
    }
    int index = rank < root ? rank : rank - 1;  /* among the non-root ranks */
    if (index >= config.workers) {
        MPI_Comm_free(&dup);  /* not needed: max_workers left it out */
        return 0;
    }
    rc = fut__mpi_worker_run(dup, root, &config, opts);
    return rc ? set_error(rc, "the worker rank lost its connection to the root") : 0;
}
