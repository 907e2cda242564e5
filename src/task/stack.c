/* SPDX-License-Identifier: MIT */
/*
 * Task stacks, carved from large slabs.
 *
 * Each stack is [guard page][usable size], the guard below since stacks grow down; the
 * slab is one anonymous MAP_NORESERVE mapping, so a stack is reserved address space and
 * costs memory only for the pages its task touches. A free stack goes back to its pool's
 * free list (LIFO: the one freed last still has its top pages in memory and in cache).
 *
 * The limit. vm.max_map_count is 65530 by default, and a PROT_NONE guard page made with
 * mprotect is a mapping of its own that splits its neighbour: two mappings per stack,
 * 200,000 for 100,000 tasks. So, in order of preference:
 *   1. MADV_GUARD_INSTALL (Linux 6.13+) marks the guard page without a mapping of its own:
 *      every stack gets a real guard page and a slab stays one mapping. Tried once; a
 *      kernel that does not know it (EINVAL) sends us to 2. for good.
 *   2. mprotect(PROT_NONE) guard pages while the process-wide budget lasts: a quarter of
 *      vm.max_map_count guarded stacks, so that stacks take at most half the mappings.
 *   3. Beyond the budget, no guard page: a canary at the bottom of the stack, checked at
 *      every switch away from the task and at its end; a stack found overwritten aborts
 *      the process. That detects an overflow before any other task runs, but not one
 *      whose frame jumped past the canary: a guard page (1. or 2.) is the real protection.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <config.h>  /* configure's choices (not a room) */
#include "task/stack.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#define STACK_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define STACK_REGISTER(lo, hi) 0u
#define STACK_DEREGISTER(id) ((void)(id))
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define SLAB_BYTES ((size_t)64 << 20)  /* address space per slab; at least one stack */
#define CANARY_WORDS 8
#define CANARY 0x5afe57ac6ca9a77eULL

struct fut_stack_slab {
    struct fut_stack_slab *next;
    void *base;
    size_t bytes;
    size_t n;
    struct fut_stack stacks[];
};

struct fut_stack_class {
    struct fut_stack_class *next;
    size_t size;
    struct fut_stack *free;
    struct fut_stack_slab *slabs;
};

enum { MADVISE_UNKNOWN, MADVISE_WORKS, MADVISE_FAILS };
static atomic_int madvise_guard = MADVISE_UNKNOWN;
static atomic_long guard_budget = -1;      /* mprotect guards left; -1: not read yet */

static size_t page_size(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static long read_budget(void)
{
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1 || max <= 0)
            max = 65530;
        fclose(f);
    }
    return max / 4;
}

/*
 * FUT_TASK_STACK_GUARD=mprotect skips MADV_GUARD_INSTALL, =canary also spends no budget:
 * a diagnostic (and test) setting that selects the fallbacks on any kernel. Read once.
 */
static const char *forced_guard(void)
{
    static const char *forced;
    static atomic_int read;
    if (!atomic_load(&read)) {
        const char *v = getenv("FUT_TASK_STACK_GUARD");
        forced = v && (strcmp(v, "mprotect") == 0 || strcmp(v, "canary") == 0) ? v : "";
        atomic_store(&read, 1);
    }
    return forced;
}

static bool take_budget(void)
{
    long left = atomic_load(&guard_budget);
    if (left < 0) {
        long expected = -1;
        long budget = strcmp(forced_guard(), "canary") == 0 ? 0 : read_budget();
        atomic_compare_exchange_strong(&guard_budget, &expected, budget);
        left = atomic_load(&guard_budget);
    }
    while (left > 0)
        if (atomic_compare_exchange_weak(&guard_budget, &left, left - 1))
            return true;
    return false;
}

static void give_budget(void)
{
    atomic_fetch_add(&guard_budget, 1);
}

static bool madvise_guard_page(void *page)
{
    int state = atomic_load_explicit(&madvise_guard, memory_order_relaxed);
    if (state == MADVISE_FAILS || *forced_guard())
        return false;
    if (madvise(page, page_size(), MADV_GUARD_INSTALL) == 0) {
        atomic_store_explicit(&madvise_guard, MADVISE_WORKS, memory_order_relaxed);
        return true;
    }
    if (state == MADVISE_UNKNOWN)
        atomic_store_explicit(&madvise_guard, MADVISE_FAILS, memory_order_relaxed);
    return false;
}

static void write_canary(struct fut_stack *s)
{
    uint64_t *w = s->lo;
    for (int i = 0; i < CANARY_WORDS; i++)
        w[i] = CANARY ^ (uintptr_t)&w[i];
}

bool fut__stack_canary_ok(const struct fut_stack *s)
{
    const uint64_t *w = s->lo;
    for (int i = 0; i < CANARY_WORDS; i++)
        if (w[i] != (CANARY ^ (uintptr_t)&w[i]))
            return false;
    return true;
}

static void guard_stack(struct fut_stack *s)
{
    void *guard = (char *)s->lo - page_size();
    if (madvise_guard_page(guard)) {
        s->guard = FUT_GUARD_MADVISE;
    } else if (take_budget()) {
        if (mprotect(guard, page_size(), PROT_NONE) == 0) {
            s->guard = FUT_GUARD_MPROTECT;
            return;
        }
        give_budget();
        s->guard = FUT_GUARD_CANARY;
        write_canary(s);
    } else {
        s->guard = FUT_GUARD_CANARY;
        write_canary(s);
    }
}

static struct fut_stack_slab *slab_new(struct fut_stack_class *c)
{
    size_t stride = c->size + page_size();
    size_t n = SLAB_BYTES / stride;
    if (n == 0)
        n = 1;
    struct fut_stack_slab *slab = malloc(sizeof *slab + n * sizeof slab->stacks[0]);
    if (!slab)
        return NULL;
    slab->bytes = n * stride;
    slab->base = mmap(NULL, slab->bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (slab->base == MAP_FAILED) {
        free(slab);
        return NULL;
    }
    slab->n = n;
    /* stacks go on the free list in address order, so neighbours are taken together */
    for (size_t i = n; i-- > 0;) {
        struct fut_stack *s = &slab->stacks[i];
        s->lo = (char *)slab->base + i * stride + page_size();
        s->size = c->size;
        s->touched = false;
        guard_stack(s);
        s->valgrind_id = STACK_REGISTER(s->lo, (char *)s->lo + s->size);
        s->next = c->free;
        c->free = s;
    }
    slab->next = c->slabs;
    c->slabs = slab;
    return slab;
}

static void slab_free(struct fut_stack_slab *slab)
{
    for (size_t i = 0; i < slab->n; i++) {
        STACK_DEREGISTER(slab->stacks[i].valgrind_id);
        if (slab->stacks[i].guard == FUT_GUARD_MPROTECT)
            give_budget();
    }
    munmap(slab->base, slab->bytes);
    free(slab);
}

static struct fut_stack_class *class_of(struct fut_stack_pool *pool, size_t size)
{
    struct fut_stack_class *c;
    for (c = pool->classes; c; c = c->next)
        if (c->size == size)
            return c;
    if (!(c = calloc(1, sizeof *c)))
        return NULL;
    c->size = size;
    c->next = pool->classes;
    pool->classes = c;
    return c;
}

struct fut_stack *fut__stack_get(struct fut_stack_pool *pool, size_t size)
{
    size = (size + page_size() - 1) & ~(page_size() - 1);
    struct fut_stack_class *c = class_of(pool, size);
    if (!c || (!c->free && !slab_new(c))) {
        errno = ENOMEM;
        return NULL;
    }
    struct fut_stack *s = c->free;
    c->free = s->next;
    if (!s->touched) {
        /* The top page, which every task touches at once, in one system call: a fault
         * costs far more on some virtual machines (50 us against 6 here). Only a hint:
         * kernels before 5.14 refuse it, and the page then faults in as usual. */
        madvise((char *)s->lo + s->size - page_size(), page_size(), MADV_POPULATE_WRITE);
        s->touched = true;
    }
    s->next = (struct fut_stack *)c;  /* while in use: its class, for fut__stack_put */
    return s;
}

void fut__stack_put(struct fut_stack_pool *pool, struct fut_stack *s)
{
    (void)pool;
    struct fut_stack_class *c = (struct fut_stack_class *)s->next;
    s->next = c->free;
    c->free = s;
}

void fut__stack_pool_destroy(struct fut_stack_pool *pool)
{
    struct fut_stack_class *c, *next_class;
    for (c = pool->classes; c; c = next_class) {
        next_class = c->next;
        struct fut_stack_slab *slab, *next_slab;
        for (slab = c->slabs; slab; slab = next_slab) {
            next_slab = slab->next;
            slab_free(slab);
        }
        free(c);
    }
    pool->classes = NULL;
}
