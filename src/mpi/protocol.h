/* SPDX-License-Identifier: MIT */
/*
 * Internal: the messages between the root and the worker ranks of an MPI executor.
 *
 * They reuse the process pool's framing (process/wire.h): a fut__wire_header with its
 * message types, here followed by the MPI-only fields that name a task's function. A
 * message carries its payload inline when it fits in FUT_MPI_INLINE bytes; a larger payload
 * follows on FUT_MPI_TAG_DATA in pieces of at most FUT_MPI_PIECE bytes (MPI counts are
 * ints). MPI keeps messages between two ranks with the same tag in order, so no sequence
 * number is needed to pair a header with its pieces; `seq` is checked all the same, so a
 * reply that does not belong to the oldest task of its rank breaks the pool, never a
 * future.
 *
 * Root -> worker (FUT_MPI_TAG_TASK): FUT_MPI_OBJECT (describes object number `code`: the
 *   payload is a struct fut__mpi_object_wire), FUT_WIRE_TASK (wire.b = arg value, payload =
 *   the fut_submit_copy bytes), FUT_MPI_STOP.
 * Worker -> root (FUT_MPI_TAG_REPLY): FUT_WIRE_READY, FUT_WIRE_INIT_FAILED (code),
 *   FUT_WIRE_RESULT (wire.a), FUT_WIRE_BYTES (payload), FUT_WIRE_RAISE (code, payload =
 *   message when wire.b), FUT_MPI_STOPPED (the last message a worker sends).
 */
#ifndef FUT_MPI_PROTOCOL_H
#define FUT_MPI_PROTOCOL_H

#include <stdint.h>

#include "process/wire.h"

enum {
    FUT_MPI_TAG_TASK = 0x7f01,
    FUT_MPI_TAG_REPLY,
    FUT_MPI_TAG_DATA,
};

enum {
    FUT_MPI_OBJECT = 64,
    FUT_MPI_STOP,
    FUT_MPI_STOPPED,
};

#define FUT_MPI_NO_OBJECT UINT32_MAX
#define FUT_MPI_INLINE 16384
#define FUT_MPI_PIECE ((size_t)1 << 30)

struct fut__mpi_message {
    struct fut__wire_header wire;
    uint64_t seq;                  /* the task's number, echoed by its reply */
    uint32_t fn_object;            /* the function: object number and offset in it */
    uint32_t map_object;           /* fut_map chunks: the items' function, or FUT_MPI_NO_OBJECT */
    uint64_t fn_offset, map_offset;
    char payload[];                /* wire.len bytes when wire.len <= FUT_MPI_INLINE */
};

#define FUT_MPI_MESSAGE_MAX (sizeof(struct fut__mpi_message) + FUT_MPI_INLINE)

/* The creation parameters the root broadcasts. */
struct fut__mpi_config {
    int32_t workers;               /* ranks used, in rank order, the root skipped */
    int32_t max_tasks_per_child;
    double task_timeout;
};

#endif
