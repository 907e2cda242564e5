/*
 * Future recycling: a per-thread cache in front of a shared depot of chains, in the
 * manner of Bonwick's magazines. A thread trades whole chains of CHAIN futures with the
 * depot, so the depot lock is taken once per CHAIN allocations, not per task.
 *
 * Why not plain malloc: a batch of a million tasks allocates a million futures, which
 * glibc serves from fresh pages and, once they are freed, trims from the heap again; the
 * page faults of the next batch then cost more than the tasks. The depot keeps up to
 * DEPOT_MAX chains for reuse and is trimmed to DEPOT_KEEP when an executor is freed.
 *
 * Inside the cache a dead future's cache part links a chain; a chain's head also links the
 * next chain of the depot and records its own length (a thread that exits hands over a
 * last chain shorter than CHAIN).
 */
#include <stdlib.h>

#include "core/future_cache.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CACHING 0            /* let the sanitizers see every free and every reuse */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CACHING 0
#endif
#endif
#ifndef CACHING
#define CACHING 1
#endif

#define CHAIN 256
#define DEPOT_MAX 4096       /* chains: about a million futures */
#define DEPOT_KEEP 16

struct thread_cache {
    fut_future *head;        /* up to 2 * CHAIN futures */
    unsigned count;
    bool armed;              /* thread_exit will run when this thread exits */
};

static _Thread_local struct thread_cache cache;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t depot_lock = PTHREAD_MUTEX_INITIALIZER;
static fut_future *depot;    /* chains of at most CHAIN futures */
static size_t depot_chains;

static void free_chain(fut_future *chain)
{
    while (chain) {
        fut_future *next = chain->part.cache.next;
        free(chain);
        chain = next;
    }
}

static void depot_push(fut_future *chain, unsigned length)
{
    chain->part.cache.length = length;
    pthread_mutex_lock(&depot_lock);
    bool kept = depot_chains < DEPOT_MAX;
    if (kept) {
        chain->part.cache.next_chain = depot;
        depot = chain;
        depot_chains++;
    }
    pthread_mutex_unlock(&depot_lock);
    if (!kept)
        free_chain(chain);
}

static fut_future *depot_pop(void)
{
    pthread_mutex_lock(&depot_lock);
    fut_future *chain = depot;
    if (chain) {
        depot = chain->part.cache.next_chain;
        depot_chains--;
    }
    pthread_mutex_unlock(&depot_lock);
    return chain;
}

/* A thread's cache outlives nothing: when the thread exits its futures go to the depot. */
static void thread_exit(void *unused)
{
    (void)unused;
    fut_future *chain = cache.head;
    cache.head = NULL;
    cache.count = 0;
    cache.armed = false;  /* a future freed by a later destructor arms it again */
    while (chain) {
        fut_future *rest = chain;
        unsigned length = 1;
        for (; length < CHAIN && rest->part.cache.next; length++)
            rest = rest->part.cache.next;
        fut_future *next_chain = rest->part.cache.next;
        rest->part.cache.next = NULL;
        depot_push(chain, length);
        chain = next_chain;
    }
}

static void exit_key_create(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

/* Whichever way the cache first fills (a chain from the depot, or a freed future), the
 * thread must hand it back when it exits. */
static void arm_thread_exit(void)
{
    if (cache.armed)
        return;
    pthread_once(&exit_key_once, exit_key_create);
    cache.armed = pthread_setspecific(exit_key, &cache) == 0;
}

fut_future *fut__future_cache_get(void)
{
    if (!CACHING)
        return NULL;
    if (!cache.head) {
        arm_thread_exit();
        cache.head = depot_pop();
        if (!cache.head)
            return NULL;
        cache.count = (unsigned)cache.head->part.cache.length;
    }
    fut_future *f = cache.head;
    cache.head = f->part.cache.next;
    cache.count--;
    return f;
}

void fut__future_cache_put(fut_future *f)
{
    if (!CACHING) {
        free(f);
        return;
    }
    arm_thread_exit();
    f->part.cache.next = cache.head;
    cache.head = f;
    if (++cache.count < 2 * CHAIN)
        return;
    /* full: keep the newest CHAIN, hand the older CHAIN to the depot */
    fut_future *last_kept = cache.head;
    for (unsigned i = 1; i < CHAIN; i++)
        last_kept = last_kept->part.cache.next;
    fut_future *chain = last_kept->part.cache.next;
    last_kept->part.cache.next = NULL;
    cache.count = CHAIN;
    depot_push(chain, CHAIN);
}

void fut__future_cache_trim(void)
{
    pthread_mutex_lock(&depot_lock);
    fut_future *excess = NULL;
    while (depot_chains > DEPOT_KEEP) {
        fut_future *chain = depot;
        depot = chain->part.cache.next_chain;
        depot_chains--;
        chain->part.cache.next_chain = excess;
        excess = chain;
    }
    pthread_mutex_unlock(&depot_lock);
    while (excess) {
        fut_future *next = excess->part.cache.next_chain;
        free_chain(excess);
        excess = next;
    }
}
