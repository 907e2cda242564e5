/* SPDX-License-Identifier: MIT */
/*
 * fut_bytes buffers: a length header before the data, and a registry of the live buffers
 * nobody has claimed yet, so that a task's returned pointer can be recognised as a buffer
 * without ever reading memory behind a plain value.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "futures.h"
#include "core/bytes_impl.h"
#include "core/bytes_shared.h"
#include "core/task_context.h"

#define SHARDS 16

/* Open-addressing set of live unclaimed buffers, one per shard, each under its lock. */
struct registry_shard {
    pthread_mutex_t lock;
    void **slots;
    size_t capacity, count, tombstones;
};

static struct registry_shard registry[SHARDS] = {
    [0 ... SHARDS - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};
static atomic_size_t registry_size;  /* lets fut__bytes_claim skip the locks when empty */
static char tombstone;

/*
 * fork(): a child (the process pool's fork server, and so its workers, or any child of
 * the application) must not inherit a shard locked by another thread, which nobody would
 * ever unlock there. The forking thread takes every shard (in index order, the only
 * place that takes more than one) and releases them on both sides.
 */
static void registry_lock_all(void)
{
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_lock(&registry[i].lock);
}

static void registry_unlock_all(void)
{
    for (int i = SHARDS - 1; i >= 0; i--)
        pthread_mutex_unlock(&registry[i].lock);
}

__attribute__((constructor)) static void registry_fork_safe(void)
{
    pthread_atfork(registry_lock_all, registry_unlock_all, registry_unlock_all);
}

static size_t hash_pointer(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static struct registry_shard *shard_of(const void *p)
{
    return &registry[(hash_pointer(p) >> 40) % SHARDS];
}

static size_t find_slot(const struct registry_shard *s, const void *p)
{
    size_t mask = s->capacity - 1;
    for (size_t i = hash_pointer(p) & mask;; i = (i + 1) & mask)
        if (s->slots[i] == p || s->slots[i] == NULL)
            return i;
}

static int shard_grow(struct registry_shard *s)
{
    size_t capacity = s->capacity ? s->capacity * 2 : 64;
    if (s->count * 4 < s->capacity)
        capacity = s->capacity;  /* mostly tombstones: rehash in place */
    void **old = s->slots;
    size_t old_capacity = s->capacity;
    s->slots = calloc(capacity, sizeof *s->slots);
    if (!s->slots) {
        s->slots = old;
        return FUT_ENOMEM;
    }
    s->capacity = capacity;
    s->tombstones = 0;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] && old[i] != &tombstone)
            s->slots[find_slot(s, old[i])] = old[i];
    free(old);
    return 0;
}

int fut__bytes_registry_add(void *p)
{
    struct registry_shard *s = shard_of(p);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if ((s->count + s->tombstones + 1) * 2 > s->capacity && shard_grow(s) != 0) {
        rc = FUT_ENOMEM;
        goto out;
    }
    s->slots[find_slot(s, p)] = p;
    s->count++;
    atomic_fetch_add(&registry_size, 1);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

bool fut__bytes_registry_remove(void *p)
{
    struct registry_shard *s = shard_of(p);
    bool found = false;
    pthread_mutex_lock(&s->lock);
    if (s->capacity) {
        size_t i = find_slot(s, p);
        if (s->slots[i] == p) {
            s->slots[i] = &tombstone;
            s->count--;
            s->tombstones++;
            atomic_fetch_sub(&registry_size, 1);
            found = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

void *fut_bytes_new(size_t len)
{
    if (fut__bytes_wants_shared(len)) {
        /* A worker's large buffers: shared memory, or ordinary memory when no memfd can be
         * had (the sender then copies it into fut__bytes_new_shared or fails the task). */
        void *b = fut__bytes_new_shared(len);
        if (b)
            return b;
    }
    if (len > SIZE_MAX - sizeof(struct fut_bytes_header)) {
        errno = ENOMEM;
        return NULL;
    }
    struct fut_bytes_header *h = malloc(sizeof *h + len);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->len = len;
    h->kind = FUT_BYTES_PLAIN;
    if (fut__bytes_registry_add(h + 1) != 0) {
        free(h);
        errno = ENOMEM;
        return NULL;
    }
    return h + 1;
}

void *fut_bytes_dup(const void *src, size_t len)
{
    if (!src && len) {
        errno = EINVAL;
        return NULL;
    }
    void *b = fut_bytes_new(len);
    if (b && len)
        memcpy(b, src, len);
    return b;
}

size_t fut_bytes_len(const void *b)
{
    if (!b)
        return 0;
    return fut__bytes_header(b)->len;
}

void fut_bytes_free(void *b)
{
    if (!b)
        return;
    fut__bytes_registry_remove(b);
    struct fut_bytes_header *h = fut__bytes_header(b);
    if (h->kind == FUT_BYTES_SHARED)
        fut__bytes_shared_free(b);
    else
        free(h);
}

bool fut__bytes_claim(void *p)
{
    if (!p || atomic_load_explicit(&registry_size, memory_order_relaxed) == 0)
        return false;
    return fut__bytes_registry_remove(p);
}

