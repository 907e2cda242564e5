/* SPDX-License-Identifier: MIT */
/*
 * The futures' allocator: slabs carved into futures, behind a small cache per thread.
 *
 * Why not malloc: a batch of a million tasks keeps a million futures alive until it is
 * waited on. Every byte of them is memory touched for the first time, and on a virtual
 * machine a page fault costs more than the task: what a cold batch pays is, first of all,
 * its futures' size. malloc makes each 48-byte future a 64-byte chunk and, once the batch
 * is freed, keeps its pages (the heap's top is trimmed, its middle is not).
 *
 * A slab is SLAB_SIZE bytes aligned to its size, so a future finds its slab by masking its
 * address; slabs are cut from larger arenas (see slab_map_locked). Slot 0 is the slab's header; the others are futures,
 * with no header of their own. A slab counts the slots it has handed out (`used`, which
 * includes those sitting in a thread's cache); when the count drops to 0 the slab is
 * empty, kept for the next batch (at most EMPTY_MAX of them: a warm batch touches no new
 * memory) and unmapped by fut__future_cache_trim, which executors call when they are
 * freed or go idle.
 *
 * A thread takes and returns futures CHAIN at a time, so the heap lock is taken once per
 * CHAIN allocations (Bonwick's magazines): its cache holds a chain of freed futures, a
 * spare full chain, and a run of never-used slots carved from a slab, which it hands out
 * in address order without touching them first. When the thread exits, its cache goes
 * back to the slabs.
 *
 * Futures never move: users hold pointers to them.
 *
 * Under AddressSanitizer and ThreadSanitizer (at build time) and valgrind (at run time)
 * every future is malloc'd and freed, so that they see every use after free and leak.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "core/bytes_shared.h"
#include "core/future_cache.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLABS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SLABS 0
#endif
#endif
#ifndef SLABS
#define SLABS 1
#endif

#if SLABS && defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

#define SLAB_SIZE ((size_t)256 * 1024)
#define ARENA_SIZE ((size_t)2 * 1024 * 1024)   /* slabs are cut from arenas: a huge page */
#define SLOT_SIZE sizeof(fut_future)
#define SLAB_SLOTS ((unsigned)(SLAB_SIZE / SLOT_SIZE))
#define CHAIN 256
#define EMPTY_MAX 256        /* empty slabs kept for the next batch: 64 MB, 1.36M futures */
#define EMPTY_KEEP 4         /* kept through a trim: 1 MB */
#define READY_MAX 1          /* arenas mapped ahead of a growing heap (fut__future_cache_prefault) */
#define PREFAULT_STEP ((size_t)256 * 1024)

enum slab_list { ON_NO_LIST, ON_PARTIAL, ON_EMPTY };

struct slab {
    struct slab *prev, *next;          /* in `partial` or `empty`, per `list` */
    fut_future *free;                  /* slots given back, linked by their cache part */
    unsigned used;                     /* slots handed out and not given back */
    unsigned carved;                   /* slots [0, carved) were handed out once */
    enum slab_list list;
};

_Static_assert(sizeof(struct slab) <= sizeof(fut_future), "a slab's header is one slot");

/* A thread's futures: `chain` (count of them) then `spare` (CHAIN or none), then the
 * untouched slots [carve, carve_end). */
struct thread_cache {
    fut_future *chain;
    unsigned count;
    fut_future *spare;
    char *carve, *carve_end;
    bool armed;                        /* thread_exit will run when this thread exits */
};

static _Thread_local struct thread_cache cache;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* The heap, under heap_lock. `partial`: slabs in use with a slot to give (free or never
 * carved), newest first. `empty`: slabs with no slot out, for the next batch. */
static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;

/* Held across fork(), so that no child inherits it locked by a thread it does not have. */
static void heap_lock_for_fork(void)
{
    pthread_mutex_lock(&heap_lock);
}

static void heap_unlock_after_fork(void)
{
    pthread_mutex_unlock(&heap_lock);
}

__attribute__((constructor)) static void register_fork_handlers(void)
{
    pthread_atfork(heap_lock_for_fork, heap_unlock_after_fork, heap_unlock_after_fork);
}
static struct slab *partial;
static struct slab *empty;
static unsigned n_empty;
static unsigned n_live;                /* slabs with a slot out */
static char *arena_next, *arena_end;   /* the slabs not yet cut from the last arena */
static unsigned n_arenas;
/* Arenas mapped ahead, oldest first, for the next slab_map_locked calls, and the part of
 * ready[0 .. n_ready) that idle threads have not populated yet. */
static char *ready[READY_MAX];
static unsigned n_ready;
static char *populate_at, *populate_end;
static unsigned populating;            /* steps being populated without the lock */
/* Set when a heap past its first arena starts another: it is growing, and idle threads
 * may prepare the next ones (fut__future_cache_prefault). Cleared when READY_MAX are. */
static atomic_bool growing;

static atomic_int use_malloc = -1;     /* -1: not decided yet */


/* ---- slabs --------------------------------------------------------------------------- */

static struct slab *slab_of(fut_future *f)
{
    return (struct slab *)((uintptr_t)f & ~(uintptr_t)(SLAB_SIZE - 1));
}

static fut_future *slot(struct slab *s, unsigned i)
{
    return (fut_future *)((char *)s + (size_t)i * SLOT_SIZE);
}

/* ARENA_SIZE bytes aligned to their size: twice that is mapped, the ends go back. */
static char *arena_map(void)
{
    char *p = mmap(NULL, 2 * ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *start = (char *)(((uintptr_t)p + ARENA_SIZE - 1) & ~(uintptr_t)(ARENA_SIZE - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    if (start + ARENA_SIZE < p + 2 * ARENA_SIZE)
        munmap(start + ARENA_SIZE, (size_t)(p + 2 * ARENA_SIZE - (start + ARENA_SIZE)));
    return start;
}

/*
 * A new slab, from the arena being cut. Arenas after the first ask for transparent huge
 * pages: on a virtual machine, memory touched for the first time costs a fault in the
 * host too, and one 2 MiB fault costs far less than 512 small ones (the first arena is
 * left alone, so that a program with few futures keeps a small footprint). Each slab
 * goes back on its own (munmap splits a huge page).
 */
static struct slab *slab_map_locked(void)
{
    if (arena_next == arena_end) {
        if (n_ready > 0) {
            arena_next = ready[0];
            memmove(&ready[0], &ready[1], (n_ready - 1) * sizeof ready[0]);
            if (--n_ready == 0 || (populate_at >= arena_next && populate_at < arena_next + ARENA_SIZE))
                populate_at = populate_end = NULL;  /* cut from now: left to the faults */
        } else if (!(arena_next = arena_map())) {
            arena_end = NULL;
            return NULL;
        }
        arena_end = arena_next + ARENA_SIZE;
#ifdef MADV_HUGEPAGE
        if (n_arenas > 0)
            madvise(arena_next, ARENA_SIZE, MADV_HUGEPAGE);  /* advice: failure is fine */
#endif
        if (n_arenas > 0)
            atomic_store_explicit(&growing, true, memory_order_relaxed);
        n_arenas++;
    }
    struct slab *s = (struct slab *)arena_next;
    arena_next += SLAB_SIZE;
    return s;
}

static void list_push(struct slab **list, struct slab *s, enum slab_list which)
{
    s->prev = NULL;
    s->next = *list;
    if (*list)
        (*list)->prev = s;
    *list = s;
    s->list = which;
}

static void list_remove(struct slab *s)
{
    struct slab **list = s->list == ON_PARTIAL ? &partial : &empty;
    if (s->list == ON_NO_LIST)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        *list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->list == ON_EMPTY)
        n_empty--;
    s->list = ON_NO_LIST;
}

static bool slab_has_room(const struct slab *s)
{
    return s->free || s->carved < SLAB_SLOTS;
}

/* A slab to take slots from: a partial one, else an empty one, else a new one. */
static struct slab *slab_with_room_locked(void)
{
    if (partial)
        return partial;
    struct slab *s = empty;
    if (s) {
        list_remove(s);
    } else {
        if (!(s = slab_map_locked()))
            return NULL;
        s->carved = 1;  /* slot 0 is the header */
    }
    n_live++;
    list_push(&partial, s, ON_PARTIAL);
    return s;
}

/* f's slot is free again. Returns the slab if it became empty and is to be unmapped: an
 * empty slab is kept for the next batch, unless EMPTY_MAX are kept already. */
static struct slab *give_back_locked(fut_future *f)
{
    struct slab *s = slab_of(f);
    f->part.cache.next = s->free;
    s->free = f;
    if (--s->used > 0) {
        if (s->list == ON_NO_LIST)
            list_push(&partial, s, ON_PARTIAL);
        return NULL;
    }
    /* empty: its slots are carved afresh, in address order */
    list_remove(s);
    n_live--;
    s->free = NULL;
    s->carved = 1;
    if (n_empty >= EMPTY_MAX)
        return s;
    list_push(&empty, s, ON_EMPTY);
    n_empty++;
    return NULL;
}

/* Gives back a chain of futures (and `n_carved` untouched slots from `carve`). */
static void give_back(fut_future *chain, char *carve, unsigned n_carved)
{
    struct slab *unmap = NULL;
    pthread_mutex_lock(&heap_lock);
    for (fut_future *f = chain, *next; f; f = next) {
        next = f->part.cache.next;
        struct slab *s = give_back_locked(f);
        if (s) {
            s->next = unmap;
            unmap = s;
        }
    }
    for (unsigned i = 0; i < n_carved; i++) {
        struct slab *s = give_back_locked((fut_future *)(carve + (size_t)i * SLOT_SIZE));
        if (s) {
            s->next = unmap;
            unmap = s;
        }
    }
    pthread_mutex_unlock(&heap_lock);
    while (unmap) {
        struct slab *next = unmap->next;
        munmap(unmap, SLAB_SIZE);
        unmap = next;
    }
}

/* Fills the calling thread's empty cache: a chain of given-back slots if a slab has
 * some, else a run of untouched ones. False when no memory is left. */
static bool refill(void)
{
    pthread_mutex_lock(&heap_lock);
    struct slab *s = slab_with_room_locked();
    if (!s) {
        pthread_mutex_unlock(&heap_lock);
        return false;
    }
    if (s->free) {
        fut_future *head = s->free, *last = head;
        unsigned n = 1;
        for (; n < CHAIN && last->part.cache.next; n++)
            last = last->part.cache.next;
        s->free = last->part.cache.next;
        last->part.cache.next = NULL;
        s->used += n;
        cache.chain = head;
        cache.count = n;
    } else {
        unsigned n = SLAB_SLOTS - s->carved < CHAIN ? SLAB_SLOTS - s->carved : CHAIN;
        cache.carve = (char *)slot(s, s->carved);
        cache.carve_end = cache.carve + (size_t)n * SLOT_SIZE;
        s->carved += n;
        s->used += n;
    }
    if (!slab_has_room(s))
        list_remove(s);
    pthread_mutex_unlock(&heap_lock);
    return true;
}

/* ---- the thread's cache ------------------------------------------------------------ */

/* A thread's cache outlives nothing: when the thread exits its futures go back. */
static void thread_exit(void *unused)
{
    (void)unused;
    struct thread_cache c = cache;
    cache = (struct thread_cache){ 0 };  /* not armed: a later free arms it again */
    give_back(c.chain, c.carve, (unsigned)((c.carve_end - c.carve) / (ptrdiff_t)SLOT_SIZE));
    give_back(c.spare, NULL, 0);
}

static void exit_key_create(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

/* Whichever way the cache first fills, the thread must hand it back when it exits. */
static void arm_thread_exit(void)
{
    if (cache.armed)
        return;
    pthread_once(&exit_key_once, exit_key_create);
    cache.armed = pthread_setspecific(exit_key, &cache) == 0;
}

static bool slabs_off(void)
{
    if (!SLABS)
        return true;
    int off = atomic_load_explicit(&use_malloc, memory_order_relaxed);
    if (__builtin_expect(off < 0, 0)) {
        off = UNDER_VALGRIND() ? 1 : 0;  /* the same answer in every thread */
        atomic_store_explicit(&use_malloc, off, memory_order_relaxed);
    }
    return off;
}

/*
 * On a virtual machine, the first touch of fresh memory is the largest cost of a batch
 * of futures (see slab_map_locked), and it falls on the thread that allocates them: the
 * submitter, which bounds the batch. An idle thread (a thread pool's worker with nothing
 * to run) can take those faults ahead of it instead: MADV_POPULATE_WRITE faults pages in
 * without writing to them, so it is harmless on memory already in use. One step at a
 * time, so that the idle thread looks for work again every PREFAULT_STEP (with
 * transparent huge pages the first step of an arena takes its whole huge page). One
 * arena ahead at most: what a batch that stops growing leaves populated and unused is
 * 2 MiB, until the next trim.
 *
 * The step is populated without the lock: its arena may be cut meanwhile (harmless), but
 * not unmapped: trim leaves the ready arenas alone while a step is `populating`, and no
 * slab cut from it can empty before the step was handed out.
 */
bool fut__future_cache_prefault(void)
{
    if (!atomic_load_explicit(&growing, memory_order_relaxed) || slabs_off())
        return false;
    char *step = NULL;
    pthread_mutex_lock(&heap_lock);
    if (populate_at == populate_end && n_ready < READY_MAX) {
        char *a = arena_map();
        if (a) {
#ifdef MADV_HUGEPAGE
            madvise(a, ARENA_SIZE, MADV_HUGEPAGE);
#endif
            ready[n_ready++] = a;
            populate_at = a;
            populate_end = a + ARENA_SIZE;
        }
    }
    if (populate_at < populate_end) {
        step = populate_at;
        populate_at += PREFAULT_STEP;
        populating++;
    } else {
        atomic_store_explicit(&growing, false, memory_order_relaxed);  /* READY_MAX ahead */
    }
    pthread_mutex_unlock(&heap_lock);
    if (!step)
        return false;
#ifdef MADV_POPULATE_WRITE
    madvise(step, PREFAULT_STEP, MADV_POPULATE_WRITE);  /* advice: failure is fine */
#endif
    pthread_mutex_lock(&heap_lock);
    populating--;
    pthread_mutex_unlock(&heap_lock);
    return true;
}

fut_future *fut__future_cache_get(void)
{
    if (slabs_off())
        return malloc(sizeof(fut_future));
    for (;;) {
        fut_future *f = cache.chain;
        if (f) {
            cache.chain = f->part.cache.next;
            cache.count--;
            return f;
        }
        if (cache.carve < cache.carve_end) {
            f = (fut_future *)cache.carve;
            cache.carve += SLOT_SIZE;
            return f;
        }
        if (cache.spare) {
            cache.chain = cache.spare;
            cache.count = CHAIN;
            cache.spare = NULL;
            continue;
        }
        arm_thread_exit();
        if (!refill())
            return NULL;
    }
}

void fut__future_cache_put(fut_future *f)
{
    if (slabs_off()) {
        free(f);
        return;
    }
    arm_thread_exit();
    f->part.cache.next = cache.chain;
    cache.chain = f;
    if (++cache.count < CHAIN)
        return;
    /* a full chain: it becomes the spare, the spare goes back to the slabs */
    fut_future *old = cache.spare;
    cache.spare = cache.chain;
    cache.chain = NULL;
    cache.count = 0;
    if (old)
        give_back(old, NULL, 0);
}

bool fut__future_cache_trim(void)
{
    struct slab *unmap = NULL;
    pthread_mutex_lock(&heap_lock);
    while (n_empty > EMPTY_KEEP) {
        struct slab *s = empty;
        list_remove(s);
        s->next = unmap;
        unmap = s;
    }
    bool live = n_live > 0;
    char *unmap_ready[READY_MAX];
    unsigned n_unmap_ready = populating ? 0 : n_ready;  /* else the next trim */
    if (n_unmap_ready) {
        memcpy(unmap_ready, ready, sizeof ready);
        n_ready = 0;
        populate_at = populate_end = NULL;
    }
    atomic_store_explicit(&growing, false, memory_order_relaxed);
    pthread_mutex_unlock(&heap_lock);
    for (unsigned i = 0; i < n_unmap_ready; i++)
        munmap(unmap_ready[i], ARENA_SIZE);
    while (unmap) {
        struct slab *next = unmap->next;
        munmap(unmap, SLAB_SIZE);
        unmap = next;
    }
#ifdef __GLIBC__
    /* What the batch malloc'd besides its futures (fut_wait's links, the caller's arrays)
     * is free by now, but glibc returns only the top of a heap by itself. */
    malloc_trim(0);
#endif
    /* the other memory kept for reuse: shared fut_bytes buffers (bytes_shared.c) */
    bool shared_left = fut__bytes_shared_trim();
    return live || shared_left;
}
