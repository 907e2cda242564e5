/* SPDX-License-Identifier: MIT */
/*
 * hash_files: hash files on a thread pool, printing each result as soon as it is ready.
 *
 * The as_completed pattern: submit one task per input, then handle the futures in the
 * order they finish rather than the order they were submitted, so a large file does not
 * hold back the report of the small ones behind it.
 *
 *   ./examples/hash_files FILE...          # hash the given files
 *   ./examples/hash_files                  # hash this example's own source files
 *
 * Prints `HASH  FILE` (64-bit FNV-1a, hexadecimal) per file in completion order, and an
 * error line for each file that cannot be read; the exit status is non-zero if any could
 * not. Without arguments the sources are found next to this file's path as the compiler
 * saw it, so run it from the directory it was built in (the top of the build tree).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <futures.h>

#include "example_util.h"

/* 64-bit FNV-1a: tiny, byte-at-a-time and good enough to tell files apart (not a
 * cryptographic hash). */
#define FNV_OFFSET_BASIS UINT64_C(14695981039346656037)
#define FNV_PRIME        UINT64_C(1099511628211)

/* The task: the argument is the path, the result the hash, passed back by value. A file
 * that cannot be read becomes the future's exception, just as an exception raised in a
 * Python task is re-raised by future.result(). */
static void *hash_file(void *arg)
{
    const char *path = arg;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fut_raise(errno, "%s: %s", path, strerror(errno));
        return NULL;
    }
    uint64_t hash = FNV_OFFSET_BASIS;
    unsigned char buf[16384];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0)
        for (size_t i = 0; i < got; i++)
            hash = (hash ^ buf[i]) * FNV_PRIME;
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        fut_raise(EIO, "%s: read error", path);
        return NULL;
    }
    return (void *)(uintptr_t)hash;
}

/* The default inputs: the examples' sources, found beside __FILE__. */
static const char *const default_names[] = {
    "cpu_batch.c", "shared_counter.c", "hash_files.c", "first_completed.c", "example_util.h",
};
#define N_DEFAULTS (sizeof default_names / sizeof default_names[0])

static char **default_paths(void)
{
    static char *paths[N_DEFAULTS];
    const char *slash = strrchr(__FILE__, '/');
    int dir_len = slash ? (int)(slash - __FILE__ + 1) : 0;
    for (size_t i = 0; i < N_DEFAULTS; i++) {
        size_t len = (size_t)dir_len + strlen(default_names[i]) + 1;
        paths[i] = malloc(len);
        if (!paths[i])
            ex_fail(FUT_ENOMEM, "malloc");
        snprintf(paths[i], len, "%.*s%s", dir_len, __FILE__, default_names[i]);
    }
    return paths;
}

int main(int argc, char **argv)
{
    char **paths = argc > 1 ? argv + 1 : default_paths();
    size_t n = argc > 1 ? (size_t)argc - 1 : N_DEFAULTS;
    size_t failures = 0;

    fut_future **fs = calloc(n, sizeof *fs);
    if (!fs)
        ex_fail(FUT_ENOMEM, "calloc");
    /* NULL options: the default pool size, min(32, CPUs + 4), suits I/O-bound tasks. */
    fut_executor *ex = ex_check_ptr(fut_thread_pool_new(NULL), "fut_thread_pool_new");
    for (size_t i = 0; i < n; i++)
        fs[i] = ex_check_ptr(fut_submit(ex, hash_file, paths[i]), "fut_submit");

    fut_as_completed *it = ex_check_ptr(fut_as_completed_new(fs, n, FUT_FOREVER),
                                        "fut_as_completed_new");
    fut_future *f;
    int rc;
    while ((rc = fut_as_completed_next(it, &f)) == 1) {
        void *hash;
        int code = fut_result(f, 0, &hash);
        if (code == 0) {
            printf("%016" PRIx64 "  %s\n", (uint64_t)(uintptr_t)hash, paths[ex_index_of(fs, n, f)]);
        } else {
            /* The task's message names the file; fut_strerror covers codes that come
             * without one (say, a cancelled future). */
            const char *message = fut_exception_message(f);
            fprintf(stderr, "hash_files: %s\n", message ? message : fut_strerror(code));
            failures++;
        }
    }
    ex_check(rc, "fut_as_completed_next");

    fut_as_completed_free(it);
    fut_executor_free(ex);
    for (size_t i = 0; i < n; i++)
        fut_future_unref(fs[i]);
    free(fs);
    if (argc <= 1)
        for (size_t i = 0; i < N_DEFAULTS; i++)
            free(paths[i]);
    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
