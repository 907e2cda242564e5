/* SPDX-License-Identifier: MIT */
/* The fork generation (core/fork.h): incremented in every forked child, before the
 * child's code runs again (pthread_atfork's child handler). */
#include <pthread.h>

#include "core/fork.h"

atomic_uint fut__fork_generation_counter;

static void in_child(void)
{
    atomic_fetch_add_explicit(&fut__fork_generation_counter, 1, memory_order_relaxed);
}

__attribute__((constructor)) static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, in_child);
}
