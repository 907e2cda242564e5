/* SPDX-License-Identifier: MIT */
/*
 * Internal: the MPI executor's root, in two files. root.c is the executor (submit, the
 * queue, shutdown), the scheduling and the progress thread; link.c is the traffic with
 * each worker rank (sends and receives of tasks and replies, in pieces). Everything here
 * but the queue and the flags under `lock` belongs to the progress thread.
 */
#ifndef FUT_MPI_ROOT_H
#define FUT_MPI_ROOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/executor.h"
#include "mpi/mpi_pool.h"
#include "mpi/objects.h"

enum send_kind { SEND_NONE, SEND_OBJECT, SEND_HEADER, SEND_DATA, SEND_STOP };

struct link {
    int rank;
    bool ready;                    /* READY came: tasks may go */
    bool init_failed;
    bool stop_sent, stopped;       /* STOP went out; STOPPED came back */
    fut_future *tasks[2];          /* tasks[0] is the oldest; all are RUNNING */
    uint64_t seqs[2];
    int n_tasks;
    int n_sent;                    /* tasks[0 .. n_sent) are sent in full */
    uint32_t objects_sent;         /* objects 0 .. objects_sent) are described to it */

    enum send_kind sending;
    const char *send_data;         /* the payload being sent in pieces */
    size_t send_len, send_done, send_piece;
    struct fut__mpi_message *send_buf;

    bool receiving_data;           /* recv_reqs[i] is a payload piece, not a header */
    struct fut__wire_header reply; /* the reply whose payload is arriving */
    char *recv_data;
    size_t recv_len, recv_done, recv_piece;
    struct fut__mpi_message *recv_buf;
};

struct mpi_pool {
    fut_executor base;
    MPI_Comm comm;
    const struct fut_backend_hooks *hooks;
    struct fut__mpi_objects objects;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct fut_list queue;         /* of futures, through their task part */
    bool shutdown, broken, sleeping;
    char *broken_message;          /* why, for the futures failed by it */

    /* progress thread only */
    struct link *links;
    int n_links;
    MPI_Request *send_reqs, *recv_reqs;
    int *indices;
    MPI_Status *statuses;
    uint64_t next_seq;
    bool mpi_failed;               /* an MPI call failed: no more MPI calls */

    struct fut_joinable_thread progress;
};

/* root.c: completing futures (never under lock) and breaking the pool */
void fut__mpi_finish(struct mpi_pool *pool, fut_future *f, void *result, bool is_bytes, int code, char *message);
void fut__mpi_fail(struct mpi_pool *pool, fut_future *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fut__mpi_set_broken(struct mpi_pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An MPI call failed: fail everything the ranks hold and make no more MPI calls. */
void fut__mpi_failure(struct mpi_pool *pool, int rc, const char *what);

/* link.c: one worker rank's traffic (progress thread) */
/* Names a task's functions: 0 or a negative code. */
int fut__mpi_link_name_task(struct mpi_pool *pool, const fut_future *f, struct fut__mpi_message *m);
/* Starts link i's next send, if any: true when one was posted. */
bool fut__mpi_link_start_send(struct mpi_pool *pool, int i, bool stopping);
void fut__mpi_link_send_completed(struct mpi_pool *pool, int i);
int fut__mpi_link_post_header_recv(struct mpi_pool *pool, int i);
void fut__mpi_link_header_received(struct mpi_pool *pool, int i, int count);
void fut__mpi_link_piece_received(struct mpi_pool *pool, int i);

#endif
