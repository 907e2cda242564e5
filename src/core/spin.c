/* SPDX-License-Identifier: MIT */
#include <sched.h>

#include "core/clock.h"
#include "core/spin.h"

bool fut__spin_until(bool (*check)(void *arg), void *arg, double timeout)
{
    double budget = FUT_SPIN_SECONDS;
    if (timeout >= 0 && timeout < budget)
        budget = timeout;
    double start = 0;
    for (unsigned i = 0;; i++) {
        if (check(arg))
            return true;
        /* Yield now and then rather than only pausing: with more runnable threads than
         * cores (a submitter and its workers on two cores), a spinning worker must not
         * starve the very thread that would give it work. But not at once: the first
         * FUT_SPIN_PAUSES rounds (a few microseconds) only pause, since most hand-offs
         * land within them, and a yield that does switch costs as much again (a process
         * pool's no-op batch on two cores ran at a quarter of the speed yielding from
         * the first round). */
        if (i >= FUT_SPIN_PAUSES && (i & 15) == 15)
            sched_yield();
        else
            fut__cpu_relax();
        if ((i & 63) != 63)
            continue;
        double now = fut__now();
        if (start == 0)
            start = now;
        else if (now - start >= budget)
            return false;
    }
}
