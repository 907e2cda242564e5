/* SPDX-License-Identifier: MIT */
/*
 * The process pool under stress and faults (issue 11, "Reliability"), through the public
 * API only, so that the same tests hold for every data path (the pipe, or shared memory
 * for large buffers):
 *
 *   create_free_cycles     1,000 pools created and freed (some with tasks queued, some
 *                          right after a worker crash, some with a bytes result still
 *                          held): no descriptor, mapping or process is left over
 *   stopped_worker_*       a worker stopped (SIGSTOP) in its task: task_timeout ends the
 *                          task, the worker is killed, its task handed ahead runs elsewhere
 *   killed_mid_result      a worker killed (SIGKILL) while it builds or sends a large
 *                          bytes result: that future fails, nothing leaks in the parent
 *   payload_sizes          arguments and results at the sizes around the 64 KiB threshold
 *                          of the shared-memory path, up to 64 MiB, several in flight
 *   map_chunk_replies      fut_map whose chunk replies cross 64 KiB
 *
 * Each case runs in a forked child under alarm() (tu_bounded()), a subreaper, so that a
 * process of the pool left behind becomes its child and is counted. Synchronisation with
 * workers goes through pipes created before the pool (the workers inherit them) and
 * through futures; nothing sleeps to wait for a state. Counts and sizes shrink under
 * FUT_TEST_QUICK, sanitizers and valgrind (tu_scale).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* In the bounded child: a failed requirement prints itself and exits with a status that
 * names its line. */
#define REQUIRE_MSG(cond, ...)                                                            \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: requirement failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            _exit(100 + __LINE__ % 100);                                                  \
        }                                                                                 \
    } while (0)

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---- resources: descriptors, mappings, children -------------------------------------- */

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    TU_CHILD_REQUIRE(f != NULL);
    int n = 0, c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Children of every thread of this process (/proc/self/task/TID/children), running or
 * unreaped. */
static int count_children(void)
{
    DIR *dir = opendir("/proc/self/task");
    TU_CHILD_REQUIRE(dir != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;  /* a thread that just ended, or no CONFIG_PROC_CHILDREN */
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            n++;
        fclose(f);
    }
    closedir(dir);
    return n;
}

/*
 * Lines of /proc/self/maps. Under sanitizers, only shared mappings and mappings of a file
 * (a memfd among them) count: their allocators map regions for new size classes as
 * their heap grows, which no library call undoes. Plain builds count every line.
 */
static int count_maps(void)
{
    if (!TU_SANITIZED)
        return count_lines("/proc/self/maps");
    FILE *f = fopen("/proc/self/maps", "r");
    TU_CHILD_REQUIRE(f != NULL);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char perms[8] = "";
        int path = 0;
        if (sscanf(line, "%*s %7s %*s %*s %*s %n", perms, &path) < 1)
            continue;
        bool named = path > 0 && line[path] != '\0' && line[path] != '\n';
        n += named || strchr(perms, 's') != NULL;
    }
    fclose(f);
    return n;
}

struct resources {
    int fds, maps, children;
};

static struct resources resources_now(void)
{
    return (struct resources){ tu_count_fds(), count_maps(), count_children() };
}

static void dump_maps(const char *title)
{
    fprintf(stderr, "---- %s: /proc/self/maps\n", title);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fputs(line, stderr);
    if (f)
        fclose(f);
}

static bool same_resources(struct resources a, struct resources b)
{
    return a.fds == b.fds && a.maps == b.maps && a.children == b.children;
}

/*
 * The counts now must equal `before`. A library may keep freed shared-memory buffers
 * (descriptor and mapping) for reuse, a bounded number, returned once idle for a moment
 * when an executor is freed: give them up to 10 s to go, freeing an executor (a thread
 * pool that starts no thread) now and then. Without such a cache the counts are equal at
 * once and nothing waits; a real leak stays and the requirements below fail.
 */
static void require_resources(struct resources before, const char *where)
{
    for (double end = tu_now() + 10; !same_resources(resources_now(), before) && tu_now() < end;) {
        tu_sleep(0.05);
        fut_executor_free(fut_thread_pool_new(&(fut_pool_options){ .max_workers = 1 }));
    }
    struct resources now = resources_now();
    if (now.maps != before.maps)
        dump_maps(where);
    REQUIRE_MSG(now.fds == before.fds, "%s: %d descriptors, %d before", where, now.fds, before.fds);
    REQUIRE_MSG(now.maps == before.maps, "%s: %d mappings, %d before", where, now.maps, before.maps);
    REQUIRE_MSG(now.children == before.children, "%s: %d children, %d before", where, now.children,
                before.children);
    REQUIRE_MSG(tu_no_children(), "%s: a process is left (running or unreaped)", where);
}

/* ---- patterns: every buffer's bytes follow from its length and a seed ----------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Byte i of the pattern (seed): word i / 8 of a stream of mixed counters. */
static void fill_pattern(unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t base = mix(seed);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = mix(base + i / 8);
        memcpy(p + i, &w, 8);
    }
    if (i < len) {
        uint64_t w = mix(base + i / 8);
        memcpy(p + i, &w, len - i);
    }
}

/* The offset of the first byte that differs from the pattern, or len. */
static size_t pattern_mismatch(const unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t base = mix(seed);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = mix(base + i / 8);
        if (memcmp(p + i, &w, 8) != 0)
            break;
    }
    for (; i < len; i++) {
        uint64_t w = mix(base + i / 8);
        if (p[i] != ((const unsigned char *)&w)[i % 8])
            return i;
    }
    return len;
}

/* ---- tasks ------------------------------------------------------------------------- */

/* Pipes the workers inherit (opened before the pool): the tasks note pids on `notes`, and
 * wait on `release` where they must block until the test lets them go. */
static int notes[2] = { -1, -1 }, release[2] = { -1, -1 };

static void pipes_open(void)
{
    TU_CHILD_REQUIRE(pipe(notes) == 0);
    TU_CHILD_REQUIRE(pipe(release) == 0);
}

static void pipes_close(void)
{
    close(notes[0]);
    close(notes[1]);
    close(release[0]);
    close(release[1]);
}

static pid_t read_note(void)
{
    pid_t pid = 0;
    TU_CHILD_REQUIRE(read(notes[0], &pid, sizeof pid) == (ssize_t)sizeof pid);
    return pid;
}

/* In a worker: writes its pid on the notes pipe. */
static void note_pid(void)
{
    pid_t self = getpid();
    if (write(notes[1], &self, sizeof self) != (ssize_t)sizeof self)
        _exit(97);
}

static void *square(void *arg)
{
    intptr_t x = TU_I(arg);
    return TU_P(x * x);
}

static void *own_pid(void *arg)
{
    (void)arg;
    return TU_P(getpid());
}

static void *note_then_die(void *arg)
{
    (void)arg;
    note_pid();
    kill(getpid(), SIGKILL);
    return NULL;
}

static void *note_then_block(void *arg)
{
    (void)arg;
    note_pid();
    for (;;)
        pause();
    return NULL;
}

/* A bytes result of `arg` bytes, the pattern seeded by its length. */
static void *pattern_bytes(void *arg)
{
    size_t len = (size_t)TU_I(arg);
    unsigned char *b = fut_bytes_new(len);
    if (!b && len) {
        fut_raise(ENOMEM, "no memory for %zu bytes", len);
        return NULL;
    }
    fill_pattern(b, len, len);
    return b;
}

static void require_pattern_result(fut_future *f, size_t len, uint64_t seed)
{
    void *r = NULL;
    int rc = fut_result(f, FUT_FOREVER, &r);
    REQUIRE_MSG(rc == 0, "result of %zu bytes: %d (%s)", len, rc,
                fut_exception_message(f) ? fut_exception_message(f) : "no message");
    REQUIRE_MSG(fut_bytes_len(r) == len, "%zu bytes, %zu expected", fut_bytes_len(r), len);
    size_t bad = pattern_mismatch(r, len, seed);
    REQUIRE_MSG(bad == len, "byte %zu of %zu differs (seed %llu)", bad, len, (unsigned long long)seed);
}

static intptr_t result_of(fut_future *f)
{
    void *r = NULL;
    TU_CHILD_REQUIRE(f != NULL);
    TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, &r) == 0);
    fut_future_unref(f);
    return TU_I(r);
}

static fut_executor *pool_new(int workers, double task_timeout)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = workers,
                                                                 .task_timeout = task_timeout });
    TU_CHILD_REQUIRE(ex != NULL);
    return ex;
}

/* ---- 1,000 create/free cycles --------------------------------------------------------- */

/* The kinds of cycle, taken in turn. */
enum cycle_kind {
    CYCLE_ONE_TASK,       /* one task, waited on, then free */
    CYCLE_QUEUED,         /* free with tasks still queued: they run to their end first */
    CYCLE_CANCELLED,      /* shutdown(cancel_futures) with tasks queued, then free */
    CYCLE_CRASH_WAITED,   /* a worker dies, its future is seen failed, then free */
    CYCLE_CRASH_AT_ONCE,  /* a worker dies, free at once (its death may not be reported yet) */
    CYCLE_BYTES_HELD,     /* a 64 KiB bytes result outlives its pool */
    CYCLE_KINDS
};

enum { QUEUE = 8 };

static void one_cycle(enum cycle_kind kind, int i)
{
    /* one worker mostly (each fork costs milliseconds on a paravirtualised guest), two
     * every seventh cycle */
    fut_executor *ex = pool_new(i % 7 == 0 ? 2 : 1, 0);
    fut_future *fs[QUEUE] = { 0 };
    switch (kind) {
    case CYCLE_ONE_TASK:
        TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(i))) == (intptr_t)i * i);
        fut_executor_free(ex);
        return;
    case CYCLE_QUEUED:
    case CYCLE_CANCELLED:
        for (int k = 0; k < QUEUE; k++)
            TU_CHILD_REQUIRE((fs[k] = fut_submit(ex, square, TU_P(i + k))) != NULL);
        if (kind == CYCLE_CANCELLED)
            TU_CHILD_REQUIRE(fut_shutdown(ex, false, true) == 0);
        fut_executor_free(ex);
        for (int k = 0; k < QUEUE; k++) {
            TU_CHILD_REQUIRE(fut_done(fs[k]));
            void *r = NULL;
            int rc = fut_result(fs[k], 0, &r);
            if (kind == CYCLE_CANCELLED && rc == FUT_ECANCELLED)
                TU_CHILD_REQUIRE(fut_cancelled(fs[k]));
            else
                REQUIRE_MSG(rc == 0 && TU_I(r) == (intptr_t)(i + k) * (i + k), "task %d: %d", k, rc);
            fut_future_unref(fs[k]);
        }
        return;
    case CYCLE_CRASH_WAITED:
    case CYCLE_CRASH_AT_ONCE:
        TU_CHILD_REQUIRE((fs[0] = fut_submit(ex, note_then_die, NULL)) != NULL);
        TU_CHILD_REQUIRE((fs[1] = fut_submit(ex, square, TU_P(i))) != NULL);
        read_note();
        if (kind == CYCLE_CRASH_WAITED)
            TU_CHILD_REQUIRE(fut_result(fs[0], FUT_FOREVER, NULL) == FUT_EBROKEN);
        fut_executor_free(ex);
        TU_CHILD_REQUIRE(fut_done(fs[0]) && fut_done(fs[1]));
        REQUIRE_MSG(fut_result(fs[0], 0, NULL) == FUT_EBROKEN, "%d", fut_result(fs[0], 0, NULL));
        TU_CHILD_REQUIRE(fut_exception_message(fs[0]) != NULL);
        TU_CHILD_REQUIRE(result_of(fs[1]) == (intptr_t)i * i);
        fut_future_unref(fs[0]);
        return;
    case CYCLE_BYTES_HELD: {
        size_t len = 64 * KiB + (size_t)(i % 3) - 1;
        TU_CHILD_REQUIRE((fs[0] = fut_submit(ex, pattern_bytes, TU_P(len))) != NULL);
        fut_executor_free(ex);
        require_pattern_result(fs[0], len, len);
        fut_future_unref(fs[0]);
        return;
    }
    case CYCLE_KINDS:
        break;
    }
    TU_CHILD_REQUIRE(!"unknown cycle kind");
}

static void cycles_body(void)
{
    pipes_open();
    /* a cycle of each kind first: the dispatcher's thread stack (which the C library
     * keeps for the next thread) and the allocator's arenas exist before the baseline;
     * no large bytes buffer, which a library may keep for reuse until idle */
    for (int k = 0; k < CYCLE_KINDS; k++)
        if (k != CYCLE_BYTES_HELD)
            one_cycle((enum cycle_kind)k, k);
    struct resources before = resources_now();
    TU_CHILD_REQUIRE(before.children == 0);
    int n = (int)tu_scale(1000, 60);
    for (int i = 0; i < n; i++)
        one_cycle((enum cycle_kind)(i % CYCLE_KINDS), i);
    require_resources(before, "after the cycles");
    pipes_close();
}

START_TEST(test_create_free_cycles)
{
    tu_bounded(cycles_body, 300, true);
}
END_TEST

/* ---- a stopped worker and task_timeout ------------------------------------------------- */

static int pidfd_of(pid_t pid)
{
    if (tu_under_valgrind())
        return -1;  /* valgrind does not know pidfd_open */
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Blocks until the process behind pidfd has exited (30 s at most: a worker that is never
 * killed fails here). Without pidfd (old kernels), nothing to wait on: returns. */
static void require_exited(int pidfd, pid_t pid)
{
    if (pidfd < 0)
        return;
    struct pollfd p = { pidfd, POLLIN, 0 };
    int n;
    while ((n = poll(&p, 1, 30000)) < 0 && errno == EINTR)
        ;
    REQUIRE_MSG(n == 1, "worker %d still alive 30 s after its task timed out", (int)pid);
    close(pidfd);
}

static double timeout_unit(void)
{
    return tu_quick() ? 1.0 : 0.3;
}

/*
 * One worker: task A notes its pid and blocks; the test stops the worker (SIGSTOP) and
 * submits B, which is handed ahead to the stopped worker or stays queued. task_timeout
 * kills the worker: A fails FUT_ETIMEDOUT, B still runs (a new worker), the stopped one
 * is gone.
 */
static void stopped_one_worker_body(void)
{
    pipes_open();
    fut_executor *ex = pool_new(1, timeout_unit());
    fut_future *a = fut_submit(ex, note_then_block, NULL);
    TU_CHILD_REQUIRE(a != NULL);
    pid_t worker = read_note();
    int pidfd = pidfd_of(worker);
    TU_CHILD_REQUIRE(kill(worker, SIGSTOP) == 0);
    double t0 = tu_now();
    fut_future *b = fut_submit(ex, own_pid, NULL);
    TU_CHILD_REQUIRE(b != NULL);
    TU_CHILD_REQUIRE(fut_result(a, FUT_FOREVER, NULL) == FUT_ETIMEDOUT);
    double took = tu_now() - t0;
    TU_CHILD_REQUIRE(fut_done(a) && !fut_cancelled(a));
    TU_CHILD_REQUIRE(fut_exception_message(a) && strstr(fut_exception_message(a), "task_timeout"));
    /* the bound is 30 units: the failure mode is a wait that never ends */
    REQUIRE_MSG(took < 30 * timeout_unit(), "the timeout took %.2f s", took);
    intptr_t b_pid = result_of(b);
    TU_CHILD_REQUIRE(b_pid != worker && b_pid != getpid());
    require_exited(pidfd, worker);
    /* the pool goes on: values and a bytes result above the threshold */
    fut_future *fs[20];
    for (intptr_t i = 0; i < 20; i++)
        TU_CHILD_REQUIRE((fs[i] = fut_submit(ex, square, TU_P(i))) != NULL);
    fut_future *big = fut_submit(ex, pattern_bytes, TU_P(100 * KiB));
    for (intptr_t i = 0; i < 20; i++)
        TU_CHILD_REQUIRE(result_of(fs[i]) == i * i);
    require_pattern_result(big, 100 * KiB, 100 * KiB);
    fut_future_unref(big);
    fut_future_unref(a);
    fut_executor_free(ex);
    TU_CHILD_REQUIRE(kill(worker, 0) != 0 && errno == ESRCH);
    pipes_close();
}

START_TEST(test_stopped_worker_ahead_task)
{
    tu_bounded(stopped_one_worker_body, 60, true);
}
END_TEST

/*
 * Two workers: one stopped in its task, the other busy with a stream of tasks meanwhile.
 * Only the stopped worker's task times out; the stream is unaffected, and a second stop
 * of a replacement worker times out the same way.
 */
static void stopped_two_workers_body(void)
{
    pipes_open();
    fut_executor *ex = pool_new(2, timeout_unit());
    for (int round = 0; round < 2; round++) {
        fut_future *stuck = fut_submit(ex, note_then_block, NULL);
        TU_CHILD_REQUIRE(stuck != NULL);
        pid_t worker = read_note();
        int pidfd = pidfd_of(worker);
        TU_CHILD_REQUIRE(kill(worker, SIGSTOP) == 0);
        enum { N = 200 };
        fut_future *fs[N];
        for (intptr_t i = 0; i < N; i++)
            TU_CHILD_REQUIRE((fs[i] = fut_submit(ex, square, TU_P(i + round))) != NULL);
        for (intptr_t i = 0; i < N; i++)
            TU_CHILD_REQUIRE(result_of(fs[i]) == (i + round) * (i + round));
        TU_CHILD_REQUIRE(fut_result(stuck, FUT_FOREVER, NULL) == FUT_ETIMEDOUT);
        TU_CHILD_REQUIRE(fut_done(stuck));
        fut_future_unref(stuck);
        require_exited(pidfd, worker);
        TU_CHILD_REQUIRE(result_of(fut_submit(ex, own_pid, NULL)) != worker);
    }
    fut_executor_free(ex);
    pipes_close();
}

START_TEST(test_stopped_worker_others_go_on)
{
    tu_bounded(stopped_two_workers_body, 60, true);
}
END_TEST

/* ---- a worker killed while it produces a large result ------------------------------- */

static size_t big_len(void)
{
    return tu_scale(32 * MiB, 4 * MiB);
}

/* Fills a bytes buffer of `arg` bytes, notes its pid halfway, keeps filling, then waits
 * on the release pipe (the test kills it first). */
static void *fill_note_halfway(void *arg)
{
    size_t len = (size_t)TU_I(arg);
    unsigned char *b = fut_bytes_new(len);
    if (!b)
        _exit(95);
    fill_pattern(b, len / 2, len);
    note_pid();
    fill_pattern(b + len / 2, len - len / 2, len + 1);
    char c;
    if (read(release[0], &c, 1) != 1)
        _exit(94);
    return b;
}

/* Builds the whole buffer, notes its pid, and returns it: the test kills the worker at
 * once, at some point of sending the result (or after it). */
static void *fill_note_return(void *arg)
{
    size_t len = (size_t)TU_I(arg);
    unsigned char *b = fut_bytes_new(len);
    if (!b)
        _exit(95);
    fill_pattern(b, len, len);
    note_pid();
    return b;
}

static void killed_mid_result_body(void)
{
    pipes_open();
    /* the baseline after a first pool: its thread's stack is kept for the next one */
    fut_executor *ex = pool_new(2, 0);
    TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(3))) == 9);
    fut_executor_free(ex);
    struct resources before = resources_now();

    ex = pool_new(2, 0);
    /* killed while building it: the future fails, the next tasks do not */
    for (int round = 0; round < 2; round++) {
        fut_future *f = fut_submit(ex, fill_note_halfway, TU_P(big_len()));
        TU_CHILD_REQUIRE(f != NULL);
        pid_t worker = read_note();
        TU_CHILD_REQUIRE(kill(worker, SIGKILL) == 0);
        TU_CHILD_REQUIRE(fut_result(f, FUT_FOREVER, NULL) == FUT_EBROKEN);
        const char *m = fut_exception_message(f);
        TU_CHILD_REQUIRE(m && strstr(m, "signal 9"));
        fut_future_unref(f);
        fut_future *next = fut_submit(ex, pattern_bytes, TU_P(big_len() / 2 + 1));
        TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(7))) == 49);
        require_pattern_result(next, big_len() / 2 + 1, big_len() / 2 + 1);
        fut_future_unref(next);
    }
    /* killed at once after returning it, while the result is on its way (or already
     * there): the future has either every byte or FUT_EBROKEN */
    int rounds = (int)tu_scale(4, 2), broken = 0;
    fut_future *held[4] = { 0 };
    for (int round = 0; round < rounds; round++) {
        size_t len = big_len() - (size_t)round * 4096 + 1;
        fut_future *f = fut_submit(ex, fill_note_return, TU_P(len));
        TU_CHILD_REQUIRE(f != NULL);
        TU_CHILD_REQUIRE(kill(read_note(), SIGKILL) == 0);
        void *r = NULL;
        int rc = fut_result(f, FUT_FOREVER, &r);
        if (rc == FUT_EBROKEN) {
            broken++;
            fut_future_unref(f);
        } else {
            REQUIRE_MSG(rc == 0, "%d", rc);
            require_pattern_result(f, len, len);
            held[round] = f;  /* released after the pool, in the loop below */
        }
        TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(round))) == round * round);
    }
    fut_executor_free(ex);
    for (int round = rounds - 1; round >= 0; round--)
        fut_future_unref(held[round]);
    (void)broken;  /* where the kill lands is up to the scheduler: both outcomes are valid */
    require_resources(before, "after the killed results");
    pipes_close();
}

START_TEST(test_killed_mid_result)
{
    tu_bounded(killed_mid_result_body, 120, true);
}
END_TEST

/* ---- payloads around the shared-memory threshold ------------------------------------- */

/* An argument: its header, then `len` bytes of the pattern (seed). */
struct payload_header {
    uint64_t len, seed, reply_len, reply_seed;
};

/* Checks its argument byte for byte, then returns the reply the header asks for. */
static void *check_and_reply(void *arg)
{
    if (!arg) {
        fut_raise(EINVAL, "no argument");
        return NULL;
    }
    struct payload_header h;  /* copied out: the copy's alignment is not promised */
    memcpy(&h, arg, sizeof h);
    size_t bad = pattern_mismatch((const unsigned char *)arg + sizeof h, h.len, h.seed);
    if (bad != h.len) {
        fut_raise(EBADMSG, "argument byte %zu of %llu differs", bad, (unsigned long long)h.len);
        return NULL;
    }
    unsigned char *r = fut_bytes_new(h.reply_len);
    if (!r && h.reply_len) {
        fut_raise(ENOMEM, "no memory for %llu bytes", (unsigned long long)h.reply_len);
        return NULL;
    }
    fill_pattern(r, h.reply_len, h.reply_seed);
    return r;
}

struct payload {
    size_t arg_len, reply_len;
    uint64_t reply_seed;
    fut_future *f;
};

static fut_future *submit_payload(fut_executor *ex, struct payload *p, uint64_t id)
{
    size_t total = sizeof(struct payload_header) + p->arg_len;
    unsigned char *buf = malloc(total);
    TU_CHILD_REQUIRE(buf != NULL);
    struct payload_header h = { p->arg_len, p->arg_len * 1000003 + id, p->reply_len, 0 };
    h.reply_seed = p->reply_seed = p->reply_len * 7919 + id * 13 + 1;
    memcpy(buf, &h, sizeof h);
    fill_pattern(buf + sizeof h, p->arg_len, h.seed);
    p->f = fut_submit_copy(ex, check_and_reply, buf, total);
    memset(buf, 0xee, total);  /* copied at submission: the task never sees this */
    free(buf);
    TU_CHILD_REQUIRE(p->f != NULL);
    return p->f;
}

static void payload_sizes_body(void)
{
    size_t sizes[] = { 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 1 * MiB, tu_scale(64 * MiB, 8 * MiB) };
    enum { N = TU_ARRAY_SIZE(sizes) };
    fut_executor *ex = pool_new(2, 0);
    TU_CHILD_REQUIRE(result_of(fut_submit(ex, square, TU_P(3))) == 9);
    fut_executor_free(ex);
    struct resources before = resources_now();
    ex = pool_new(2, 0);

    /* each size alone (the largest comes with the set in flight below), both ways, with an
     * argument bigger and smaller than the reply */
    for (int i = 0; i < N - 1; i++) {
        struct payload p = { sizes[i], sizes[i], 0, NULL };
        submit_payload(ex, &p, (uint64_t)i);
        require_pattern_result(p.f, p.reply_len, p.reply_seed);
        fut_future_unref(p.f);
        struct payload q = { sizes[i], 100, 0, NULL }, r = { 100, sizes[i], 0, NULL };
        submit_payload(ex, &q, 100 + (uint64_t)i);
        submit_payload(ex, &r, 200 + (uint64_t)i);
        require_pattern_result(r.f, r.reply_len, r.reply_seed);  /* waited on out of order */
        require_pattern_result(q.f, q.reply_len, q.reply_seed);
        fut_future_unref(q.f);
        fut_future_unref(r.f);
    }

    /* several in flight at once, the largest once only (its copy and reply are large):
     * every future gets its own task's bytes, whatever order the replies arrive in */
    enum { M = 3 * (N - 1) + 1 };
    struct payload ps[M];
    int m = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N - 1; i++)
            ps[m++] = (struct payload){ sizes[i], sizes[(i + k + 1) % (N - 1)], 0, NULL };
    ps[m++] = (struct payload){ sizes[N - 1], sizes[N - 1], 0, NULL };
    for (int j = 0; j < m; j++)
        submit_payload(ex, &ps[j], 1000 + (uint64_t)j);
    /* waited on from the last, released in another order: odd ones first, then even */
    for (int j = m - 1; j >= 0; j--)
        require_pattern_result(ps[j].f, ps[j].reply_len, ps[j].reply_seed);
    for (int j = 1; j < m; j += 2)
        fut_future_unref(ps[j].f);
    /* a new round while half the results are still held */
    struct payload again = { 64 * KiB, 64 * KiB + 1, 0, NULL };
    submit_payload(ex, &again, 5000);
    require_pattern_result(again.f, again.reply_len, again.reply_seed);
    for (int j = 0; j < m; j += 2)
        fut_future_unref(ps[j].f);
    fut_future_unref(again.f);
    fut_executor_free(ex);
    require_resources(before, "after the payloads");
}

START_TEST(test_payload_sizes)
{
    tu_bounded(payload_sizes_body, 120, true);
}
END_TEST

/* ---- fut_map with chunk replies across 64 KiB ---------------------------------------- */

/* Item i's result length: around 64 KiB for the first items, then small ones whose
 * chunks add up past 64 KiB. */
static size_t item_len(size_t i)
{
    static const size_t edge[] = { 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 0, 1, 128 * KiB };
    if (i < TU_ARRAY_SIZE(edge))
        return edge[i];
    return 3000 + (i * 37) % 9000;  /* 3 to 12 KiB: a chunk of 8 is 24 to 96 KiB */
}

static void *item_bytes(void *arg)
{
    size_t i = (size_t)TU_I(arg), len = item_len(i);
    unsigned char *b = fut_bytes_new(len);
    if (!b && len) {
        fut_raise(ENOMEM, "no memory");
        return NULL;
    }
    fill_pattern(b, len, i * 31 + 5);
    return b;
}

static void map_chunks_body(void)
{
    size_t n = tu_scale(600, 150);
    void **args = malloc(n * sizeof *args), **results = malloc(n * sizeof *results);
    TU_CHILD_REQUIRE(args && results);
    for (size_t i = 0; i < n; i++)
        args[i] = TU_P(i);
    fut_executor *ex = pool_new(2, 0);
    size_t chunks[] = { 0, 1, 8, 50 };
    for (size_t c = 0; c < TU_ARRAY_SIZE(chunks); c++) {
        memset(results, 0, n * sizeof *results);
        REQUIRE_MSG(fut_map(ex, item_bytes, args, n, results, FUT_FOREVER, chunks[c]) == 0,
                    "chunksize %zu", chunks[c]);
        for (size_t i = 0; i < n; i++) {
            size_t len = item_len(i);
            REQUIRE_MSG(fut_bytes_len(results[i]) == len, "chunksize %zu, item %zu: %zu bytes, %zu expected",
                        chunks[c], i, fut_bytes_len(results[i]), len);
            size_t bad = pattern_mismatch(results[i], len, i * 31 + 5);
            REQUIRE_MSG(bad == len, "chunksize %zu, item %zu: byte %zu differs", chunks[c], i, bad);
        }
        /* released out of order: every third, then the rest from the end */
        for (size_t i = 0; i < n; i += 3)
            fut_bytes_free(results[i]);
        for (size_t i = n; i-- > 0;)
            if (i % 3)
                fut_bytes_free(results[i]);
    }
    fut_executor_free(ex);
    free(args);
    free(results);
}

START_TEST(test_map_chunk_replies)
{
    tu_bounded(map_chunks_body, 120, true);
}
END_TEST

static Suite *process_stress_suite(void)
{
    Suite *s = suite_create("process_stress");
    struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        { "create_free_cycles", test_create_free_cycles },
        { "stopped_worker_ahead_task", test_stopped_worker_ahead_task },
        { "stopped_worker_others_go_on", test_stopped_worker_others_go_on },
        { "killed_mid_result", test_killed_mid_result },
        { "payload_sizes", test_payload_sizes },
        { "map_chunk_replies", test_map_chunk_replies },
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(tests); i++)
        tcase_add_test(tu_tcase(s, tests[i].name, 600), tests[i].test);
    return s;
}

int main(void)
{
    return tu_run(process_stress_suite());
}
