/* SPDX-License-Identifier: MIT */
/*
 * mpi_batch: the CPU-bound batch of cpu_batch.c, on the ranks of an MPI job.
 *
 * Rank 0 runs the batch sequentially, then through fut_mpi_pool_new's executor, whose
 * workers are the other ranks, printing a line as each task finishes (which rank ran it)
 * and the speedup. Every rank runs this same program: on the worker ranks,
 * fut_mpi_pool_new serves tasks until rank 0 frees the executor, then returns NULL.
 *
 *   mpirun -np 3 ./examples/mpi_batch                    # one root, two workers
 *   mpirun -np 9 --hostfile hosts ./examples/mpi_batch -n 64
 *   srun -n 17 ./examples/mpi_batch -n 256 -s 200000000
 *
 *   -n TASKS    number of tasks (default 32)
 *   -s STEPS    loop iterations per task (default 80000000)
 *   -q          no per-task lines
 *
 * The executor's results are checked against the sequential ones; the exit status is
 * non-zero on rank 0 if any differs or any call fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <futures_mpi.h>

#include "crunch.h"

/* Parsed from the command line on every rank alike, so the workers know it too. */
static long steps = 80000000;
static int my_rank;

struct outcome {
    uint64_t value;
    int32_t rank;
};

/* The task: the value and the rank that computed it, as bytes (they travel back). */
static void *crunch(void *arg)
{
    struct outcome o = { ex_crunch((uint64_t)(uintptr_t)arg, steps), my_rank };
    return fut_bytes_dup(&o, sizeof o);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_root(fut_executor *ex, int n_tasks, int quiet, int n_ranks)
{
    uint64_t *expected = calloc((size_t)n_tasks, sizeof *expected);
    fut_future **fs = calloc((size_t)n_tasks, sizeof *fs);
    int *per_rank = calloc((size_t)n_ranks, sizeof *per_rank);
    if (!expected || !fs || !per_rank)
        return 1;
    double t0 = now();
    for (int i = 0; i < n_tasks; i++)
        expected[i] = ex_crunch((uint64_t)i, steps);
    double sequential = now() - t0;
    printf("sequential: %d tasks in %.3f s\n", n_tasks, sequential);

    int workers = fut_executor_max_workers(ex), bad = 0;
    t0 = now();
    for (int i = 0; i < n_tasks; i++)
        if (!(fs[i] = fut_submit(ex, crunch, (void *)(uintptr_t)i)))
            bad++;
    fut_as_completed *it = fut_as_completed_new(fs, (size_t)n_tasks, FUT_FOREVER);
    fut_future *f;
    for (int done = 0; it && fut_as_completed_next(it, &f) == 1;) {
        void *value = NULL;
        int i = 0;
        while (fs[i] != f)
            i++;
        const struct outcome *o;
        if (fut_result(f, 0, &value) != 0 || fut_bytes_len(value) != sizeof *o) {
            fprintf(stderr, "task %d failed: %s\n", i, fut_exception_message(f));
            bad++;
            continue;
        }
        o = value;
        done++;
        if (o->rank >= 0 && o->rank < n_ranks)
            per_rank[o->rank]++;
        if (o->value != expected[i])
            bad++;
        if (!quiet)
            printf("task %2d done on rank %d (%d/%d)\n", i, (int)o->rank, done, n_tasks);
    }
    fut_as_completed_free(it);
    double parallel = now() - t0;
    for (int r = 0; r < n_ranks; r++)
        if (per_rank[r])
            printf("rank %d ran %d tasks\n", r, per_rank[r]);
    printf("mpi (%d worker ranks): %.3f s, speedup %.2fx, %s\n", workers, parallel,
           parallel > 0 ? sequential / parallel : 0.0, bad ? "MISMATCH" : "results match");
    for (int i = 0; i < n_tasks; i++)
        fut_future_unref(fs[i]);
    free(expected);
    free(fs);
    free(per_rank);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    int n_tasks = 32, quiet = 0, opt;
    while ((opt = getopt(argc, argv, "n:s:q")) != -1) {
        switch (opt) {
        case 'n': n_tasks = atoi(optarg); break;
        case 's': steps = atol(optarg); break;
        case 'q': quiet = 1; break;
        default:
            fprintf(stderr, "usage: mpi_batch [-n TASKS] [-s STEPS] [-q]\n");
            return 2;
        }
    }
    if (n_tasks < 1 || steps < 1) {
        fprintf(stderr, "mpi_batch: TASKS and STEPS must be positive\n");
        return 2;
    }
    /* The program initialises MPI itself here (fut_mpi_pool_new would otherwise, and
     * finalise it at exit): the executor needs MPI_THREAD_SERIALIZED. */
    int provided = 0, n_ranks = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    fut_executor *ex = NULL;
    int rc = fut_mpi_pool_new(MPI_COMM_WORLD, 0, NULL, &ex);
    if (rc != 0) {
        fprintf(stderr, "mpi_batch: %s (%s)\n", fut_strerror(rc), fut_mpi_last_error());
    } else if (ex) {
        rc = run_root(ex, n_tasks, quiet, n_ranks);
        fut_executor_free(ex);  /* releases the worker ranks */
    }
    /* worker ranks arrive here once the root has freed the executor */
    MPI_Finalize();
    return rc ? 1 : 0;
}
