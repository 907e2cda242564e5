/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by every benchmark in bench/: clock, statistics of repeated runs,
 * percentiles, CPU work that cannot be optimised away, running a measurement in a fresh
 * process, and the results table with its ratios.
 *
 * A benchmark program fills one table: for each (section, workers, implementation,
 * metric) it adds the values of its repeated runs; printing shows min / median / max and
 * the ratio of the reference implementation (libfutures) to that row, oriented so that a
 * ratio > 1 always means the reference is better. Measurements made by other programs
 * (e.g. a Python script) join the table as text records, one per line:
 *
 *     @bench SECTION WORKERS IMPLEMENTATION METRIC VALUE...
 *     # a note, printed under the table
 *
 * Names contain no blanks. Any other line is ignored.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- clock and statistics ------------------------------------------------------- */

/* Monotonic time in seconds. */
double bench_now(void);

double bench_mean(const double *v, size_t n);

/* Sorts v ascending. */
void bench_sort(double *v, size_t n);

/* The p-th percentile (0..100, nearest rank) of v, which must be sorted. */
double bench_percentile_sorted(const double *v, size_t n, double p);

struct bench_stats {
    double min, median, max;
};

/* min / median / max of n values (v is left unchanged). */
struct bench_stats bench_stats_of(const double *v, size_t n);

/* mean / median / p99 of a latency sample, written to out[0..3); sorts v. */
void bench_latency_summary(double *v, size_t n, double out[3]);

/* ---- work and options ------------------------------------------------------------- */

/* `steps` rounds of xorshift64 from `seed`: a dependent chain the compiler cannot fold. */
uint64_t bench_xorshift_steps(uint64_t seed, uint64_t steps);

/* Parses a count with an optional k / M / G suffix (powers of 1000): "500M". -1 if invalid. */
long long bench_parse_count(const char *s);

/* Parses a comma-separated list of positive ints ("2,4") into out[0..max). Returns how
 * many, or -1 if invalid. */
int bench_parse_int_list(const char *s, int *out, int max);

/* Number of processors this process may run on. */
int bench_cpu_count(void);

/* Prints the machine (cpus, model, kernel, compiler) and the load average, one line each,
 * each prefixed with `prefix`. */
void bench_print_machine(FILE *out, const char *prefix);
void bench_print_load(FILE *out, const char *prefix);

/* ---- memory ----------------------------------------------------------------------- */

/* The resident set of this process in bytes (/proc/self/statm); -1 if unknown. */
double bench_rss_bytes(void);

/* CPU seconds (user + system) of this process, all its threads, so far. */
double bench_cpu_seconds(void);

/* Minor page faults of this process so far (getrusage). */
double bench_minor_faults(void);

/* ---- isolation -------------------------------------------------------------------- */

typedef void (*bench_measure_fn)(void *arg, double *out, size_t n);

/*
 * Runs fn(arg, out, n) in a forked child and copies its n results back to out. Every
 * measurement thus starts from a fresh process: the parent never starts a thread, no
 * implementation inherits another's threads or heap, and process-wide settings (libuv's
 * pool size) can differ per measurement. Returns 0, or -1 if the child failed.
 */
int bench_run_isolated(bench_measure_fn fn, void *arg, double *out, size_t n);

/* ---- the results table ------------------------------------------------------------ */

struct bench_table;

/* `reference` is the implementation the ratios compare to. */
struct bench_table *bench_table_new(const char *title, const char *reference);
void bench_table_free(struct bench_table *t);

/* Declares a section before rows are added to it; sections print in declaration order. */
void bench_table_section(struct bench_table *t, const char *id, const char *title,
                         const char *unit, bool higher_is_better);

/* Adds the n values of a row's repeated runs (copied). */
void bench_table_add(struct bench_table *t, const char *section, int workers,
                     const char *impl, const char *metric, const double *runs, size_t n);

/* Adds a note, printed under the table. */
void bench_table_note(struct bench_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads records (see the top of this file). Returns the number of rows read. */
int bench_table_import(struct bench_table *t, FILE *in);

/* The ratio reference / impl on medians (> 1: the reference is better); NAN if either row
 * is missing. */
double bench_table_ratio(const struct bench_table *t, const char *section, int workers,
                         const char *impl, const char *metric);

/* The ratio of the reference to the best row of `section` / `metric` at `workers` among
 * implementations other than the reference whose name does not start with `exclude_prefix`
 * (may be NULL); *best_impl receives its name. NAN if there is none. */
double bench_table_ratio_to_best(const struct bench_table *t, const char *section,
                                 int workers, const char *metric, const char *exclude_prefix,
                                 const char **best_impl);

/* The median of a row; NAN if missing. */
double bench_table_median(const struct bench_table *t, const char *section, int workers,
                          const char *impl, const char *metric);

void bench_table_print(const struct bench_table *t, FILE *out);

/* "3.25M", "812k", "17.4", "0.93": a value in a table cell. */
const char *bench_format_value(double v, char *buf, size_t len);

/* "2.53x", or "n/a" for NAN. */
const char *bench_format_ratio(double ratio, char *buf, size_t len);

#endif
