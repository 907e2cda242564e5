/* SPDX-License-Identifier: MIT */
/* The process pools' descriptors, closed in every child of a fork (see fd_registry.h). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "futures.h"
#include "process/fd_registry.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static int *registered;
static size_t n_registered, capacity;

void fut__fd_registry_lock(void)
{
    pthread_mutex_lock(&registry_lock);
}

void fut__fd_registry_unlock(void)
{
    pthread_mutex_unlock(&registry_lock);
}

int fut__fd_registry_add_locked(int fd)
{
    if (fd < 0)
        return 0;
    if (n_registered == capacity) {
        size_t cap = capacity ? capacity * 2 : 64;
        int *grown = realloc(registered, cap * sizeof *grown);
        if (!grown)
            return FUT_ENOMEM;
        registered = grown;
        capacity = cap;
    }
    registered[n_registered++] = fd;
    return 0;
}

void fut__fd_registry_close(int fd)
{
    if (fd < 0)
        return;
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < n_registered; i++) {
        if (registered[i] == fd) {
            registered[i] = registered[--n_registered];
            break;
        }
    }
    close(fd);
    pthread_mutex_unlock(&registry_lock);
}

/* The child of a fork: it owns none of the parent's pools, so their descriptors go. Only
 * close(2) runs here; the array stays allocated for whatever the child registers later. */
static void close_all_in_child(void)
{
    for (size_t i = 0; i < n_registered; i++)
        close(registered[i]);
    n_registered = 0;
    pthread_mutex_unlock(&registry_lock);
}

__attribute__((constructor)) static void registry_fork_safe(void)
{
    pthread_atfork(fut__fd_registry_lock, fut__fd_registry_unlock, close_all_in_child);
}
