/* SPDX-License-Identifier: MIT */
/* Internal: bounded busy-waiting before parking a thread. A short task finishing on
 * another core is cheaper to watch than to sleep on (two context switches, two syscalls). */
#ifndef FUT_SPIN_H
#define FUT_SPIN_H

#include <stdbool.h>


#if defined(__x86_64__) || defined(__i386__)
#define fut__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define fut__cpu_relax() __asm__ __volatile__("yield")
#else
#define fut__cpu_relax() ((void)0)
#endif

/* How long a thread spins before it parks, in seconds. */
#define FUT_SPIN_SECONDS 50e-6
/* Rounds of pausing before a spinning thread starts to yield its core now and then. */
#define FUT_SPIN_PAUSES 64

/* Spins until check(arg) is true (returns true), or for at most
 * min(FUT_SPIN_SECONDS, timeout) (returns false). timeout < 0 means no limit of its own. */
bool fut__spin_until(bool (*check)(void *arg), void *arg, double timeout);

#endif
