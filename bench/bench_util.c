/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

/* ---- clock and statistics ------------------------------------------------------- */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_mean(const double *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    return n ? sum / (double)n : NAN;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_doubles);
}

double bench_percentile_sorted(const double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double rank = ceil(p / 100.0 * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return v[i < n ? i : n - 1];
}

static double median_sorted(const double *v, size_t n)
{
    if (n == 0)
        return NAN;
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct bench_stats bench_stats_of(const double *v, size_t n)
{
    struct bench_stats s = { NAN, NAN, NAN };
    double *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy || n == 0) {
        free(copy);
        return s;
    }
    memcpy(copy, v, n * sizeof *copy);
    bench_sort(copy, n);
    s.min = copy[0];
    s.median = median_sorted(copy, n);
    s.max = copy[n - 1];
    free(copy);
    return s;
}

void bench_latency_summary(double *v, size_t n, double out[3])
{
    bench_sort(v, n);
    out[0] = bench_mean(v, n);
    out[1] = median_sorted(v, n);
    out[2] = bench_percentile_sorted(v, n, 99);
}

/* ---- work and options ------------------------------------------------------------- */

uint64_t bench_xorshift_steps(uint64_t seed, uint64_t steps)
{
    uint64_t x = seed | 1;  /* xorshift never leaves 0 */
    for (uint64_t i = 0; i < steps; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

long long bench_parse_count(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    long long scale = 1;
    switch (*end) {
    case 'k': case 'K': scale = 1000LL; end++; break;
    case 'm': case 'M': scale = 1000000LL; end++; break;
    case 'g': case 'G': scale = 1000000000LL; end++; break;
    default: break;
    }
    if (*end || v > INT64_MAX / scale)
        return -1;
    return v * scale;
}

int bench_parse_int_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v <= 0 || v > 1 << 20 || n == max)
            return -1;
        out[n++] = (int)v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return n ? n : -1;
}

int bench_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon)
            continue;
        colon++;
        while (isspace((unsigned char)*colon))
            colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(buf, len, "%s", colon);
        break;
    }
    fclose(f);
}

void bench_print_machine(FILE *out, const char *prefix)
{
    char model[256];
    struct utsname u;
    cpu_model(model, sizeof model);
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    fprintf(out, "%s%d cpus (%s), Linux %s, compiled by %s %s\n", prefix, bench_cpu_count(),
            model,
            u.release,
#if defined(__clang__)
            "clang",
#else
            "gcc",
#endif
            __VERSION__);
}

void bench_print_load(FILE *out, const char *prefix)
{
    char line[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(line, sizeof line, f))
            snprintf(line, sizeof line, "?");
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    fprintf(out, "%sload average (1, 5, 15 min, runnable/threads): %s\n", prefix, line);
}

/* ---- isolation -------------------------------------------------------------------- */

double bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, resident;
    int n = f ? fscanf(f, "%ld %ld", &size, &resident) : 0;
    if (f)
        fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

double bench_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_minor_faults(void)
{
    struct rusage usage;
    return getrusage(RUSAGE_SELF, &usage) == 0 ? (double)usage.ru_minflt : 0;
}

static bool write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

int bench_run_isolated(bench_measure_fn fn, void *arg, double *out, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        for (size_t i = 0; i < n; i++)
            out[i] = NAN;
        fn(arg, out, n);
        _exit(write_all(fds[1], out, n * sizeof *out) ? 0 : 1);
    }
    close(fds[1]);
    bool ok = read_all(fds[0], out, n * sizeof *out);
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- the results table ------------------------------------------------------------ */

struct section {
    char *id, *title, *unit;
    bool higher_is_better;
};

struct row {
    char *section, *impl, *metric;
    int workers;
    struct bench_stats stats;
};

struct bench_table {
    char *title, *reference;
    struct section *sections;
    size_t n_sections;
    struct row *rows;
    size_t n_rows;
    char **notes;
    size_t n_notes;
};

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        perror("bench");
        exit(1);
    }
    return d;
}

/* Returns `array` (of n elements of `size` bytes) grown by one zeroed element. */
static void *grow(void *array, size_t n, size_t size)
{
    char *grown = realloc(array, (n + 1) * size);
    if (!grown) {
        perror("bench");
        exit(1);
    }
    memset(grown + n * size, 0, size);
    return grown;
}

struct bench_table *bench_table_new(const char *title, const char *reference)
{
    struct bench_table *t = calloc(1, sizeof *t);
    if (!t) {
        perror("bench");
        exit(1);
    }
    t->title = xstrdup(title);
    t->reference = xstrdup(reference);
    return t;
}

void bench_table_free(struct bench_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_sections; i++) {
        free(t->sections[i].id);
        free(t->sections[i].title);
        free(t->sections[i].unit);
    }
    for (size_t i = 0; i < t->n_rows; i++) {
        free(t->rows[i].section);
        free(t->rows[i].impl);
        free(t->rows[i].metric);
    }
    for (size_t i = 0; i < t->n_notes; i++)
        free(t->notes[i]);
    free(t->sections);
    free(t->rows);
    free(t->notes);
    free(t->title);
    free(t->reference);
    free(t);
}

static const struct section *find_section(const struct bench_table *t, const char *id)
{
    for (size_t i = 0; i < t->n_sections; i++)
        if (strcmp(t->sections[i].id, id) == 0)
            return &t->sections[i];
    return NULL;
}

void bench_table_section(struct bench_table *t, const char *id, const char *title,
                         const char *unit, bool higher_is_better)
{
    t->sections = grow(t->sections, t->n_sections, sizeof *t->sections);
    t->sections[t->n_sections++] = (struct section){ xstrdup(id), xstrdup(title), xstrdup(unit), higher_is_better };
}

void bench_table_add(struct bench_table *t, const char *section, int workers,
                     const char *impl, const char *metric, const double *runs, size_t n)
{
    if (!find_section(t, section))
        bench_table_section(t, section, section, "", true);
    t->rows = grow(t->rows, t->n_rows, sizeof *t->rows);
    t->rows[t->n_rows++] = (struct row){ xstrdup(section), xstrdup(impl), xstrdup(metric), workers,
                       bench_stats_of(runs, n) };
}

void bench_table_note(struct bench_table *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t->notes = grow(t->notes, t->n_notes, sizeof *t->notes);
    t->notes[t->n_notes++] = xstrdup(buf);
}

int bench_table_import(struct bench_table *t, FILE *in)
{
    char line[4096];
    int rows = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#') {
            const char *text = line + 1;
            while (*text == ' ')
                text++;
            bench_table_note(t, "%s", text);
            continue;
        }
        if (strncmp(line, "@bench ", 7) != 0)
            continue;
        char *save, *section, *workers, *impl, *metric, *value;
        if (!(strtok_r(line, " \t", &save)) || !(section = strtok_r(NULL, " \t", &save)) ||
            !(workers = strtok_r(NULL, " \t", &save)) || !(impl = strtok_r(NULL, " \t", &save)) ||
            !(metric = strtok_r(NULL, " \t", &save)))
            continue;
        double values[256];
        size_t n = 0;
        while (n < sizeof values / sizeof *values && (value = strtok_r(NULL, " \t", &save)))
            values[n++] = strtod(value, NULL);
        bench_table_add(t, section, atoi(workers), impl, metric, values, n);
        rows++;
    }
    return rows;
}

static const struct row *find_row(const struct bench_table *t, const char *section,
                                  int workers, const char *impl, const char *metric)
{
    for (size_t i = 0; i < t->n_rows; i++) {
        const struct row *r = &t->rows[i];
        if (r->workers == workers && strcmp(r->section, section) == 0 &&
            strcmp(r->impl, impl) == 0 && strcmp(r->metric, metric) == 0)
            return r;
    }
    return NULL;
}

double bench_table_median(const struct bench_table *t, const char *section, int workers,
                          const char *impl, const char *metric)
{
    const struct row *r = find_row(t, section, workers, impl, metric);
    return r ? r->stats.median : NAN;
}

static double oriented_ratio(const struct section *s, double ours, double theirs)
{
    if (!s || isnan(ours) || isnan(theirs) || ours <= 0 || theirs <= 0)
        return NAN;
    return s->higher_is_better ? ours / theirs : theirs / ours;
}

double bench_table_ratio(const struct bench_table *t, const char *section, int workers,
                         const char *impl, const char *metric)
{
    return oriented_ratio(find_section(t, section),
                          bench_table_median(t, section, workers, t->reference, metric),
                          bench_table_median(t, section, workers, impl, metric));
}

double bench_table_ratio_to_best(const struct bench_table *t, const char *section,
                                 int workers, const char *metric, const char *exclude_prefix,
                                 const char **best_impl)
{
    double best = NAN;
    *best_impl = NULL;
    for (size_t i = 0; i < t->n_rows; i++) {
        const struct row *r = &t->rows[i];
        if (r->workers != workers || strcmp(r->section, section) != 0 ||
            strcmp(r->metric, metric) != 0 || strcmp(r->impl, t->reference) == 0 ||
            (exclude_prefix && strncmp(r->impl, exclude_prefix, strlen(exclude_prefix)) == 0))
            continue;
        double ratio = bench_table_ratio(t, section, workers, r->impl, metric);
        if (!isnan(ratio) && (isnan(best) || ratio < best)) {
            best = ratio;
            *best_impl = r->impl;
        }
    }
    return best;
}

const char *bench_format_value(double v, char *buf, size_t len)
{
    double a = fabs(v);
    if (isnan(v))
        snprintf(buf, len, "n/a");
    else if (a >= 1e6)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else if (a >= 100)
        snprintf(buf, len, "%.0f", v);
    else if (a >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.2f", v);
    return buf;
}

const char *bench_format_ratio(double ratio, char *buf, size_t len)
{
    if (isnan(ratio))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.2fx", ratio);
    return buf;
}

static bool seen_workers(const struct bench_table *t, size_t upto, const char *section,
                         int workers)
{
    for (size_t i = 0; i < upto; i++)
        if (t->rows[i].workers == workers && strcmp(t->rows[i].section, section) == 0)
            return true;
    return false;
}

static void print_section(const struct bench_table *t, const struct section *s, FILE *out)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_rows; i++)
        n += strcmp(t->rows[i].section, s->id) == 0;
    if (n == 0)
        return;
    fprintf(out, "\n%s  [%s, %s is better]\n", s->title, s->unit,
            s->higher_is_better ? "higher" : "lower");
    fprintf(out, "  %7s  %-22s %-8s %10s %10s %10s %9s\n", "workers", "implementation",
            "metric", "min", "median", "max", "ratio");
    /* rows grouped by worker count, each group in the order the rows were added */
    for (size_t g = 0; g < t->n_rows; g++) {
        const struct row *first = &t->rows[g];
        if (strcmp(first->section, s->id) != 0 || seen_workers(t, g, s->id, first->workers))
            continue;
        for (size_t i = g; i < t->n_rows; i++) {
            const struct row *r = &t->rows[i];
            if (r->workers != first->workers || strcmp(r->section, s->id) != 0)
                continue;
            char mn[32], md[32], mx[32], ratio[32];
            bool is_ref = strcmp(r->impl, t->reference) == 0;
            fprintf(out, "  %7d  %-22s %-8s %10s %10s %10s %9s\n", r->workers, r->impl,
                    r->metric, bench_format_value(r->stats.min, mn, sizeof mn),
                    bench_format_value(r->stats.median, md, sizeof md),
                    bench_format_value(r->stats.max, mx, sizeof mx),
                    is_ref ? "-"
                           : bench_format_ratio(
                                 bench_table_ratio(t, s->id, r->workers, r->impl, r->metric),
                                 ratio, sizeof ratio));
        }
    }
}

void bench_table_print(const struct bench_table *t, FILE *out)
{
    fprintf(out, "%s\n", t->title);
    fprintf(out, "ratio = %s vs that row, on medians, oriented so that > 1 means %s is better\n"
                 "(throughput: %s / peer; latency: peer / %s; speedup: %s / peer)\n",
            t->reference, t->reference, t->reference, t->reference, t->reference);
    for (size_t i = 0; i < t->n_sections; i++)
        print_section(t, &t->sections[i], out);
    if (t->n_notes)
        fprintf(out, "\nnotes:\n");
    for (size_t i = 0; i < t->n_notes; i++)
        fprintf(out, "  - %s\n", t->notes[i]);
}
