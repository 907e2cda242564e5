/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the examples: error reporting, a monotonic clock and option parsing.
 * Kept tiny and header-only so that each example still reads as one self-contained file.
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <futures.h>

/* Reports a failure the library's way and gives up: an example has no sensible way to
 * carry on after its executor, waiter or memory failed. */
static inline void ex_fail(int code, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, fut_strerror(code));
    exit(EXIT_FAILURE);
}

/* Library calls return a non-zero code on failure: negative from the library, positive
 * from a task's fut_raise. */
static inline void ex_check(int rc, const char *what)
{
    if (rc != 0)
        ex_fail(rc, what);
}

/* Constructors and fut_submit return NULL and set errno: turn errno back into the
 * library's code so that every failure prints through fut_strerror. */
static inline void *ex_check_ptr(void *p, const char *what)
{
    if (!p)
        ex_fail(-errno, what);
    return p;
}

/* Seconds on the monotonic clock, the clock the library measures timeouts with. */
static inline double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* fut_as_completed yields futures, not inputs: like Python's `future_to_input` dict, map
 * each back to the index it was submitted under. A linear search is plenty for the few
 * dozen futures of an example. */
static inline size_t ex_index_of(fut_future *const *fs, size_t n, const fut_future *f)
{
    size_t i = 0;
    while (i < n && fs[i] != f)
        i++;
    return i;
}

/* A positive integer option value; anything else ends the program with the usage line,
 * because a silently clamped value would make the printed timings misleading. */
static inline long ex_parse_positive(const char *text, const char *usage)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v <= 0) {
        fprintf(stderr, "invalid number '%s'\n%s", text, usage);
        exit(EXIT_FAILURE);
    }
    return v;
}

#endif /* EXAMPLE_UTIL_H */
