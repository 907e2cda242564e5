/* SPDX-License-Identifier: MIT */
/* Internal: CLOCK_MONOTONIC deadlines from the API's double-seconds timeouts. */
#ifndef FUT_CLOCK_H
#define FUT_CLOCK_H

#include <stdbool.h>
#include <time.h>

struct fut_deadline {
    bool forever;
    struct timespec at;            /* absolute, CLOCK_MONOTONIC */
};

double fut__now(void);
struct fut_deadline fut__deadline_after(double timeout);
bool   fut__deadline_passed(const struct fut_deadline *d);
/* Seconds left, 0 when passed, negative (FUT_FOREVER) for no deadline. */
double fut__deadline_remaining(const struct fut_deadline *d);

#endif
