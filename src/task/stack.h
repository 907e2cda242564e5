/* SPDX-License-Identifier: MIT */
/*
 * Internal: task stacks. See stack.c for how 100,000 of them fit the kernel's limit on
 * mappings while each keeps a guard page below it.
 */
#ifndef FUT_TASK_STACK_H
#define FUT_TASK_STACK_H

#include <stdbool.h>
#include <stddef.h>

#define FUT_STACK_MIN (16 * 1024)
#define FUT_STACK_MAX ((size_t)1 << 30)
#define FUT_STACK_DEFAULT (256 * 1024)

enum fut_stack_guard {
    FUT_GUARD_MADVISE,             /* MADV_GUARD_INSTALL page: no mapping of its own */
    FUT_GUARD_MPROTECT,            /* a PROT_NONE page: splits the mapping */
    FUT_GUARD_CANARY,              /* no guard page (the budget is spent): a canary */
};

struct fut_stack {
    void *lo;                      /* usable stack: [lo, lo + size), grows down from the top */
    size_t size;
    struct fut_stack *next;        /* the free list */
    unsigned valgrind_id;
    unsigned char guard;           /* enum fut_stack_guard */
    bool touched;                  /* handed out before: its top page is in memory */
};

struct fut_stack_slab;
struct fut_stack_class;

/* One loop's stacks: free lists by size; slabs are unmapped when the pool is destroyed. */
struct fut_stack_pool {
    struct fut_stack_class *classes;
};

/* A stack of at least `size` bytes (a multiple of the page size), or NULL (ENOMEM). */
struct fut_stack *fut__stack_get(struct fut_stack_pool *pool, size_t size);
void fut__stack_put(struct fut_stack_pool *pool, struct fut_stack *s);
/* Every stack must be back in the pool. */
void fut__stack_pool_destroy(struct fut_stack_pool *pool);

/* FUT_GUARD_CANARY stacks: false when the bottom canary was overwritten. */
bool fut__stack_canary_ok(const struct fut_stack *s);

#endif
