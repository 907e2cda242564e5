/* SPDX-License-Identifier: MIT */
/*
 * Internal: fork safety. A process forked from one with pools and loops inherits their
 * memory but none of their threads, and shares their processes, sockets and epoll sets
 * with the parent. Each fork increments the child's "fork generation"; every executor,
 * loop and task or loop future records the generation it was made in, and one made in an
 * earlier generation is inherited: it fails fast (FUT_EBROKEN) instead of waiting on
 * threads that do not exist, and is freed without touching the parent's threads and
 * processes (see futures(7), FORK).
 */
#ifndef FUT_CORE_FORK_H
#define FUT_CORE_FORK_H

#include <stdatomic.h>
#include <stdbool.h>

extern atomic_uint fut__fork_generation_counter;

/* This process's generation: 0 in the first process, parent's + 1 in a forked child. */
static inline unsigned fut__fork_generation(void)
{
    return atomic_load_explicit(&fut__fork_generation_counter, memory_order_relaxed);
}

/* Whether an object made in generation `made_in` was inherited through a fork. Futures
 * keep the low 8 bits: compared modulo 256 (256 nested forks would be needed to alias). */
static inline bool fut__inherited(unsigned made_in)
{
    return made_in != fut__fork_generation();
}

static inline bool fut__inherited8(unsigned char made_in)
{
    return made_in != (unsigned char)fut__fork_generation();
}

#endif
