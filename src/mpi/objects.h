/* SPDX-License-Identifier: MIT */
/*
 * Internal: naming a function across ranks. Every rank runs the same program, but ASLR and
 * PIE load each ELF object (the executable, each shared library) at a different address,
 * so a function travels as (object, offset from the object's load bias). The root numbers
 * the objects it has seen and describes each once to each worker (path, build-id, extent);
 * a worker finds the same object among its own and checks that it is the same file.
 */
#ifndef FUT_MPI_OBJECTS_H
#define FUT_MPI_OBJECTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "futures.h"

#define FUT_MPI_BUILD_ID_MAX 64

/* What a worker needs to recognise an object; path is the object's name as the dynamic
 * linker knows it (the executable's own path for the main program). */
struct fut__mpi_object_wire {
    uint64_t extent;               /* from the load bias to the end of the last PT_LOAD */
    uint32_t build_id_len;
    uint8_t is_main;
    uint8_t build_id[FUT_MPI_BUILD_ID_MAX];
    char path[];                   /* NUL-terminated */
};

struct fut__mpi_object {
    uintptr_t bias;
    size_t wire_len;
    struct fut__mpi_object_wire *wire;
};

#define FUT_MPI_FN_CACHE 64

/* The root's table. Objects are only added, never removed (a dlclosed object keeps its
 * number: do not submit functions of an object once closed). */
struct fut__mpi_objects {
    pthread_mutex_t lock;          /* a leaf */
    struct fut__mpi_object *items;
    uint32_t count, capacity;
    struct {
        uintptr_t fn;
        uint32_t object;
        uint64_t offset;
    } cache[FUT_MPI_FN_CACHE];     /* recently named functions */
};

void fut__mpi_objects_init(struct fut__mpi_objects *t);
void fut__mpi_objects_destroy(struct fut__mpi_objects *t);

/* Names fn: 0, or FUT_EINVAL when fn is not in an executable segment of a loaded object
 * (a stack or heap address), FUT_ENOMEM. */
int fut__mpi_objects_name(struct fut__mpi_objects *t, uintptr_t fn, uint32_t *object, uint64_t *offset);

/* The description of object i (stable once added: safe to read without the lock). */
const struct fut__mpi_object *fut__mpi_objects_get(struct fut__mpi_objects *t, uint32_t i);

/* The worker's side: the objects the root described, each resolved on first use. */
struct fut__mpi_resolved {
    struct fut__mpi_object_wire *wire;
    bool resolved, usable;
    uintptr_t bias;
    char *error;                   /* why it cannot be used here, or NULL */
};

struct fut__mpi_resolver {
    struct fut__mpi_resolved *items;
    uint32_t count;
    int rank;
};

/* Records object i's description (takes ownership of wire): 0 or FUT_ENOMEM/FUT_EINVAL. */
int fut__mpi_resolver_add(struct fut__mpi_resolver *r, uint32_t i, struct fut__mpi_object_wire *wire, size_t len);

/* The local address of (object, offset): 0, or a negative code with *message (malloc'd)
 * naming the object and the reason. */
int fut__mpi_resolver_find(struct fut__mpi_resolver *r, uint32_t object, uint64_t offset,
                           uintptr_t *fn, char **message);

void fut__mpi_resolver_destroy(struct fut__mpi_resolver *r);

#endif
