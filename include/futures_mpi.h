/* SPDX-License-Identifier: MIT */
/*
 * libfutures-mpi: the executor of libfutures over MPI (mpi4py.futures.MPICommExecutor).
 *
 * Link with -lfutures-mpi -lfutures and MPI (pkg-config futures-mpi). See
 * fut_mpi_pool_new(3) and futures(7).
 */
#ifndef FUTURES_MPI_H
#define FUTURES_MPI_H

#include <mpi.h>

#include <futures.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Collective over comm. On rank `root`: returns 0 and sets *out to an executor whose
 * workers are the other ranks of comm (at most opts->max_workers of them; 0: all). On
 * every other rank: serves tasks until the root shuts the executor down, then returns 0
 * with *out NULL. Initialises MPI (MPI_THREAD_SERIALIZED) when nobody has, and then
 * finalises it at exit.
 */
FUT_API int fut_mpi_pool_new(MPI_Comm comm, int root, const fut_pool_options *opts,
                             fut_executor **out);

/* Why the calling thread's last failed fut_mpi_pool_new failed, in words; "" if none. */
FUT_API const char *fut_mpi_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
