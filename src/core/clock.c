/* SPDX-License-Identifier: MIT */
#include <math.h>

#include "core/clock.h"

double fut__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct fut_deadline fut__deadline_after(double timeout)
{
    struct fut_deadline d = { .forever = true };
    /* NaN and negative values mean forever, as the API's FUT_FOREVER. */
    if (!(timeout >= 0))
        return d;
    d.forever = false;
    clock_gettime(CLOCK_MONOTONIC, &d.at);
    if (timeout > 1e9)
        timeout = 1e9;  /* ~31 years: keeps tv_sec in range */
    double whole = floor(timeout);
    d.at.tv_sec += (time_t)whole;
    d.at.tv_nsec += (long)((timeout - whole) * 1e9);
    if (d.at.tv_nsec >= 1000000000L) {
        d.at.tv_sec++;
        d.at.tv_nsec -= 1000000000L;
    }
    return d;
}

bool fut__deadline_passed(const struct fut_deadline *d)
{
    return !d->forever && fut__deadline_remaining(d) <= 0;
}

double fut__deadline_remaining(const struct fut_deadline *d)
{
    if (d->forever)
        return -1.0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double left = (double)(d->at.tv_sec - now.tv_sec) + (double)(d->at.tv_nsec - now.tv_nsec) / 1e9;
    return left > 0 ? left : 0;
}
