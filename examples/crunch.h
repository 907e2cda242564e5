/* SPDX-License-Identifier: MIT */
/*
 * The CPU-bound kernel of the MPI example and its benchmark: a chain of additions and
 * rotations that no compiler folds away and whose result depends on every step, so a
 * task's time is its steps and a wrong rank's answer is caught.
 */
#ifndef EXAMPLE_CRUNCH_H
#define EXAMPLE_CRUNCH_H

#include <stdint.h>

static inline uint64_t ex_crunch(uint64_t a, long steps)
{
    uint64_t b = 1;
    for (long i = 0; i < steps; i++) {
        uint64_t next = a + b;
        a = b;
        b = (next << 13) | (next >> 51);
    }
    return a ^ b;
}

#endif
