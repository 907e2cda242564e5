/* SPDX-License-Identifier: MIT */
/*
 * Internal: the two sides of an MPI executor and what they share.
 *
 * fut_mpi_pool_new (mpi_pool.c) checks the arguments and the thread level on every rank,
 * agrees on the outcome collectively, duplicates the communicator (the executor's
 * messages never meet the program's), broadcasts the root's configuration, then starts
 * the root's executor (root.c) or serves as a worker rank (worker.c).
 */
#ifndef FUT_MPI_POOL_H
#define FUT_MPI_POOL_H

#include <mpi.h>

#include "futures.h"
#include "mpi/protocol.h"

/* Root: the executor over comm (now owned by it, freed by its progress thread). */
int fut__mpi_root_start(MPI_Comm comm, int root, const struct fut__mpi_config *config, fut_executor **out);

/* Worker rank: serves until the root says stop; frees comm. 0, or a negative code when MPI
 * failed. */
int fut__mpi_worker_run(MPI_Comm comm, int root, const struct fut__mpi_config *config,
                        const fut_pool_options *opts);

/* The registry of live root executors, shut down at exit before MPI is finalised. */
void fut__mpi_live_add(fut_executor *ex);
void fut__mpi_live_remove(fut_executor *ex);

/* Monotonic seconds. */
double fut__mpi_now(void);

/* Waiting for a request without burning a core: spins a little, then sleeps with an
 * exponential backoff up to FUT_MPI_BACKOFF_MAX seconds, and up to FUT_MPI_BACKOFF_IDLE
 * once nothing has happened for FUT_MPI_IDLE_AFTER seconds (an idle rank then wakes a
 * hundred times a second; the first task after a long pause waits up to 10 ms). */
#define FUT_MPI_SPIN_SECONDS 100e-6
#define FUT_MPI_BACKOFF_MIN 10e-6
#define FUT_MPI_BACKOFF_MAX 1e-3
#define FUT_MPI_BACKOFF_IDLE 10e-3
#define FUT_MPI_IDLE_AFTER 50e-3

/* The next sleep of a backoff that slept `backoff` and began `quiet` seconds ago. */
static inline double fut__mpi_backoff_next(double backoff, double quiet)
{
    double cap = quiet > FUT_MPI_IDLE_AFTER ? FUT_MPI_BACKOFF_IDLE : FUT_MPI_BACKOFF_MAX;
    return backoff * 2 < cap ? backoff * 2 : cap;
}

/* Completes *request (MPI_Test with backoff). MPI's own return code. */
int fut__mpi_wait(MPI_Request *request, MPI_Status *status);

#endif
