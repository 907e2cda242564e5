/* SPDX-License-Identifier: MIT */
/*
 * The process pool's shared-memory channel (src/process/ring.h) under attack and under
 * SIGKILL: a worker that scribbles over its own rings, workers killed at pseudo-random
 * points of a stream of messages with inline and out-of-line payloads. Each case runs in a
 * forked child with a time limit: a hang is the failure these tests look for.
 *
 * The tasks find their worker's channel the way any code in the worker could: through
 * /proc/self/maps, by the name of its memfd.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* The channel's layout (src/process/ring.h), as a hostile task would learn it: a control
 * page with three 64-byte lines per direction (tail, head, sleeping), then 256 KiB of
 * parent -> worker data and 256 KiB of worker -> parent data. */
#define RING_CAPACITY (256u * 1024u)
#define TO_WORKER_TAIL 0
#define TO_WORKER_HEAD 64
#define TO_PARENT_TAIL 192
#define TO_PARENT_HEAD 256
#define TO_PARENT_DATA (4096 + RING_CAPACITY)

struct forged_header {
    uint32_t type;
    int32_t code;
    uint64_t len, a, b, seq;
};

/* The worker's channel, found by name in /proc/self/maps; NULL when not found. */
static unsigned char *find_channel(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return NULL;
    char line[512];
    unsigned long start = 0;
    while (fgets(line, sizeof line, maps))
        if (strstr(line, "memfd:fut-ring") && sscanf(line, "%lx-", &start) == 1)
            break;
    fclose(maps);
    return (unsigned char *)(uintptr_t)start;
}

static int count_map_lines(const char *needle)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    TU_CHILD_REQUIRE(maps != NULL);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, maps))
        n += strstr(line, needle) != NULL;
    fclose(maps);
    return n;
}

static _Atomic uint64_t *word(unsigned char *channel, size_t offset)
{
    return (_Atomic uint64_t *)(void *)(channel + offset);
}

/* Publishes a forged message in the worker -> parent ring, as if the worker had sent it. */
static void forge_in_ring(unsigned char *channel, const struct forged_header *h)
{
    uint64_t tail = atomic_load(word(channel, TO_PARENT_TAIL));
    memcpy(channel + TO_PARENT_DATA + tail % RING_CAPACITY, h, sizeof *h);
    atomic_store(word(channel, TO_PARENT_TAIL), tail + sizeof *h);
}

enum scribble {
    SCRIBBLE_TAIL_AHEAD,           /* the parent's view: more bytes than the ring holds */
    SCRIBBLE_TAIL_BEHIND,          /* the tail behind the parent's head */
    SCRIBBLE_HEAD_AHEAD,           /* the head of the parent's own ring, past its tail */
    SCRIBBLE_HUGE_BYTES,           /* an inline payload larger than a ring */
    SCRIBBLE_UNKNOWN_TYPE,
    SCRIBBLE_STRAY_OUTCOME,        /* an outcome for a task it was never given */
    SCRIBBLE_MISSING_FD,           /* a payload in a descriptor that was never sent */
    SCRIBBLE_HALF_MESSAGE,         /* a tail that cuts a message in two */
    SCRIBBLE_COUNT
};

/* Wakes the parent's dispatcher as the worker would (a WAKE record, src/process/wire.h)
 * on every socket the task holds: its worker's among them. */
static void wake_parent(void)
{
    uint32_t record[2] = { 1, 0 };
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            send(fd, record, sizeof record, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
}

static int scribbled[2];           /* the task says it is done scribbling */

/* Corrupts the worker's channel in the given way, wakes the parent, then waits to be
 * killed: the parent must notice on its own (a task that runs for ever is no fault). */
static void *scribble(void *arg)
{
    unsigned char *channel = find_channel();
    if (!channel)
        return TU_P(-1);  /* fails the test: the result is checked */
    struct forged_header h = { 0 };
    switch ((enum scribble)TU_I(arg)) {
    case SCRIBBLE_TAIL_AHEAD:
        atomic_fetch_add(word(channel, TO_PARENT_TAIL), (uint64_t)RING_CAPACITY * 3);
        break;
    case SCRIBBLE_TAIL_BEHIND:
        atomic_fetch_sub(word(channel, TO_PARENT_TAIL), 4096);
        break;
    case SCRIBBLE_HEAD_AHEAD:
        atomic_fetch_add(word(channel, TO_WORKER_HEAD), (uint64_t)1 << 40);
        break;
    case SCRIBBLE_HUGE_BYTES:
        h = (struct forged_header){ .type = 6 /* BYTES */, .len = 1000 };
        h.len = (uint64_t)RING_CAPACITY * 2;
        forge_in_ring(channel, &h);
        break;
    case SCRIBBLE_UNKNOWN_TYPE:
        h.type = 77;
        forge_in_ring(channel, &h);
        break;
    case SCRIBBLE_STRAY_OUTCOME:
        h = (struct forged_header){ .type = 5 /* RESULT */, .a = 0x2f, .seq = 12345 };
        forge_in_ring(channel, &h);
        break;
    case SCRIBBLE_MISSING_FD:
        h = (struct forged_header){ .type = 6 | 0x100 /* BYTES in a descriptor */, .len = 1 << 20 };
        forge_in_ring(channel, &h);
        break;
    case SCRIBBLE_HALF_MESSAGE: {
        uint64_t tail = atomic_load(word(channel, TO_PARENT_TAIL));
        atomic_store(word(channel, TO_PARENT_TAIL), tail + 16);
        break;
    }
    default:
        break;
    }
    wake_parent();
    char c = 1;
    if (write(scribbled[1], &c, 1) != 1)
        return TU_P(-1);
    for (;;)
        pause();
    return NULL;
}

static void *square(void *arg)
{
    intptr_t x = TU_I(arg);
    return TU_P(x * x);
}

static void scribble_body(void)
{
    TU_CHILD_REQUIRE(pipe(scribbled) == 0);  /* before the pool: its workers inherit it */
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 1 });
    TU_CHILD_REQUIRE(ex != NULL);
    for (int how = 0; how < SCRIBBLE_COUNT; how++) {
        fut_future *bad = fut_submit(ex, scribble, TU_P(how));
        TU_CHILD_REQUIRE(bad != NULL);
        /* the parent may kill the vandal before it says it is done */
        struct pollfd done = { scribbled[0], POLLIN, 0 };
        while (!fut_done(bad) && poll(&done, 1, 10) == 0)
            ;
        char c;
        if (done.revents & POLLIN)
            TU_CHILD_REQUIRE(read(scribbled[0], &c, 1) == 1);
        /* handed ahead to the same worker (the parent then looks at the ring it writes:
         * HEAD_AHEAD), or queued: it must survive the worker */
        fut_future *next = fut_submit(ex, square, TU_P(how + 2));
        TU_CHILD_REQUIRE(next != NULL);
        TU_CHILD_REQUIRE(fut_result(bad, FUT_FOREVER, NULL) == FUT_EBROKEN);
        const char *why = fut_exception_message(bad);
        TU_CHILD_REQUIRE(why && strstr(why, "protocol"));
        void *value = NULL;
        TU_CHILD_REQUIRE(fut_result(next, FUT_FOREVER, &value) == 0);
        TU_CHILD_REQUIRE(TU_I(value) == (how + 2) * (how + 2));
        fut_future_unref(bad);
        fut_future_unref(next);
    }
    fut_executor_free(ex);
}

START_TEST(test_scribbled_ring)
{
    tu_bounded(scribble_body, 60, false);
}
END_TEST

/* Random garbage over the whole channel, control page included, and the task returns:
 * its future ends with its value or FUT_EBROKEN; the pool goes on. */
static void *scribble_everything(void *arg)
{
    unsigned char *channel = find_channel();
    if (!channel)
        return TU_P(-1);
    unsigned seed = (unsigned)TU_I(arg);
    for (size_t i = 0; i < 4096 + 2 * RING_CAPACITY; i += 8) {
        seed = seed * 1103515245u + 12345u;
        uint64_t v = (uint64_t)seed << 32 | (seed >> 3);
        memcpy(channel + i, &v, sizeof v);
    }
    return arg;
}

static void garbage_body(void)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2 });
    TU_CHILD_REQUIRE(ex != NULL);
    int rounds = (int)tu_scale(20, 6);
    for (int i = 1; i <= rounds; i++) {
        fut_future *bad = fut_submit(ex, scribble_everything, TU_P(i));
        fut_future *good = fut_submit(ex, square, TU_P(i));
        TU_CHILD_REQUIRE(bad != NULL && good != NULL);
        void *value = NULL;
        int rc = fut_result(bad, FUT_FOREVER, &value);
        TU_CHILD_REQUIRE(rc == FUT_EBROKEN || (rc == 0 && TU_I(value) == i));
        rc = fut_result(good, FUT_FOREVER, &value);
        /* the good task may have shared a worker with the vandal */
        TU_CHILD_REQUIRE(rc == FUT_EBROKEN || (rc == 0 && TU_I(value) == i * i));
        fut_future_unref(bad);
        fut_future_unref(good);
        void *checked = NULL;
        fut_future *after = fut_submit(ex, square, TU_P(i + 100));
        TU_CHILD_REQUIRE(after != NULL);
        rc = fut_result(after, FUT_FOREVER, &checked);
        TU_CHILD_REQUIRE(rc == FUT_EBROKEN || (rc == 0 && TU_I(checked) == (i + 100) * (i + 100)));
        fut_future_unref(after);
    }
    /* once every vandal is gone, the pool serves correct results */
    for (int i = 0; i < 20; i++) {
        void *value = NULL;
        fut_future *f = fut_submit(ex, square, TU_P(i));
        TU_CHILD_REQUIRE(f != NULL && fut_result(f, FUT_FOREVER, &value) == 0 && TU_I(value) == i * i);
        fut_future_unref(f);
    }
    fut_executor_free(ex);
}

START_TEST(test_garbage_over_channel)
{
    tu_bounded(garbage_body, 90, false);
}
END_TEST

/* ---- SIGKILL at pseudo-random points of a message stream ------------------------------- */

/* A task's argument: who it is, how large a result it returns, and when (if at all) a
 * thread of its worker kills the worker, counted in microseconds from now. */
struct job {
    uint32_t id;
    uint32_t result_len;
    int32_t kill_after_us;         /* < 0: no kill */
    uint32_t arg_len;              /* the whole argument's length, padding included */
};

static unsigned char pattern(uint32_t id, size_t i)
{
    return (unsigned char)(id * 31u + i * 7u + (i >> 9));
}

static void *killer(void *arg)
{
    tu_sleep((double)TU_I(arg) / 1e6);
    kill(getpid(), SIGKILL);
    return NULL;
}

static void *job(void *arg)
{
    struct job j;
    memcpy(&j, arg, sizeof j);
    /* the argument arrived whole: its padding carries the pattern */
    const unsigned char *bytes = arg;
    for (size_t i = sizeof j; i < j.arg_len; i += 4093)
        if (bytes[i] != pattern(j.id, i))
            return TU_P(-2);
    if (j.kill_after_us >= 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, killer, TU_P(j.kill_after_us)) == 0)
            pthread_detach(t);
    }
    if (j.result_len == 0)
        return TU_P(j.id);
    unsigned char *out = fut_bytes_new(j.result_len);
    if (!out)
        return TU_P(-3);
    for (size_t i = 0; i < j.result_len; i++)
        out[i] = pattern(j.id, i);
    memcpy(out, &j.id, sizeof j.id);
    return out;
}

/* Whether f failed with FUT_EBROKEN; otherwise its result must be j's own. */
static bool check_outcome(fut_future *f, const struct job *j)
{
    void *value = NULL;
    int rc = fut_result(f, FUT_FOREVER, &value);
    if (rc == FUT_EBROKEN)
        return true;
    TU_CHILD_REQUIRE(rc == 0);
    if (j->result_len == 0) {
        TU_CHILD_REQUIRE(TU_I(value) == (intptr_t)j->id);
        return false;
    }
    TU_CHILD_REQUIRE(fut_bytes_len(value) == j->result_len);
    const unsigned char *b = value;
    uint32_t id;
    memcpy(&id, b, sizeof id);
    TU_CHILD_REQUIRE(id == j->id);  /* never another task's result */
    for (size_t i = sizeof id; i < j->result_len; i += 509)
        TU_CHILD_REQUIRE(b[i] == pattern(j->id, i));
    TU_CHILD_REQUIRE(b[j->result_len - 1] == pattern(j->id, j->result_len - 1));
    return false;
}

static const uint32_t sizes[] = { 0, 100, 10000, 65535, 65536, 70000, 300000, 1u << 20 };

static void sigkill_body(void)
{
    int fds_before = tu_count_fds();
    int rings_before = count_map_lines("memfd:fut-ring");
    int payloads_before = count_map_lines("memfd:fut-payload");
    int bytes_before = count_map_lines("memfd:fut-bytes");
    size_t n = tu_scale(600, 150);
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 3 });
    TU_CHILD_REQUIRE(ex != NULL);
    struct job *jobs = calloc(n, sizeof *jobs);
    fut_future **f = calloc(n, sizeof *f);
    TU_CHILD_REQUIRE(jobs && f);
    unsigned seed = 12345;
    size_t broken = 0;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        struct job *j = &jobs[i];
        j->id = (uint32_t)i + 1;
        j->result_len = sizes[(seed >> 8) % TU_ARRAY_SIZE(sizes)];
        j->arg_len = (uint32_t)sizeof *j + ((seed >> 16) % 4 == 0 ? sizes[(seed >> 20) % TU_ARRAY_SIZE(sizes)] : 0);
        j->kill_after_us = (seed >> 12) % 8 == 0 ? (int32_t)((seed >> 4) % 3000) : -1;
        unsigned char *arg = malloc(j->arg_len);
        TU_CHILD_REQUIRE(arg != NULL);
        for (size_t k = sizeof *j; k < j->arg_len; k++)
            arg[k] = pattern(j->id, k);
        memcpy(arg, j, sizeof *j);
        f[i] = fut_submit_copy(ex, job, arg, j->arg_len);
        free(arg);
        TU_CHILD_REQUIRE(f[i] != NULL);
        /* a window of tasks in flight: results stream while workers die */
        if (i >= 16)
            broken += check_outcome(f[i - 16], &jobs[i - 16]);
    }
    for (size_t i = n >= 16 ? n - 16 : 0; i < n; i++)
        broken += check_outcome(f[i], &jobs[i]);
    TU_CHILD_REQUIRE(broken < n);  /* most tasks run to their end */
    /* the parent maps one channel per live worker, and nothing else of theirs */
    TU_CHILD_REQUIRE(count_map_lines("memfd:fut-ring") <= rings_before + 3);
    for (size_t i = 0; i < n; i++)
        fut_future_unref(f[i]);
    fut_executor_free(ex);
    free(jobs);
    free(f);
    TU_CHILD_REQUIRE(count_map_lines("memfd:fut-ring") == rings_before);
    TU_CHILD_REQUIRE(count_map_lines("memfd:fut-payload") == payloads_before);
    /* freed results are kept a while for reuse (spares: a memfd and its mapping each),
     * and returned once idle for half a second, at the next trim (fut_executor_free) */
    for (int i = 0; i < 10 && tu_count_fds() != fds_before; i++) {
        tu_sleep(0.6);
        fut_executor *trim = fut_thread_pool_new(NULL);
        TU_CHILD_REQUIRE(trim != NULL);
        fut_executor_free(trim);
    }
    TU_CHILD_REQUIRE(tu_count_fds() == fds_before);
    TU_CHILD_REQUIRE(count_map_lines("memfd:fut-bytes") == bytes_before);
}

START_TEST(test_sigkill_mid_stream)
{
    tu_bounded(sigkill_body, 120, false);
}
END_TEST

/* A worker that sleeps costs no CPU, a busy one no system call per task: after a burst,
 * the idle pool leaves the dispatcher asleep. */
static void idle_body(void)
{
    fut_executor *ex = fut_process_pool_new(&(fut_pool_options){ .max_workers = 2 });
    TU_CHILD_REQUIRE(ex != NULL);
    for (int i = 0; i < 200; i++) {
        fut_future *g = fut_submit(ex, square, TU_P(i));
        void *value = NULL;
        TU_CHILD_REQUIRE(g && fut_result(g, FUT_FOREVER, &value) == 0 && TU_I(value) == i * i);
        fut_future_unref(g);
    }
    /* idle: the whole process (the dispatcher) uses next to no CPU over 200 ms */
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    tu_sleep(0.2);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double used = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    TU_CHILD_REQUIRE(used < 0.05);
    /* and a sleeping pool still wakes for the next task */
    fut_future *g = fut_submit(ex, square, TU_P(9));
    void *value = NULL;
    TU_CHILD_REQUIRE(g && fut_result(g, FUT_FOREVER, &value) == 0 && TU_I(value) == 81);
    fut_future_unref(g);
    fut_executor_free(ex);
}

START_TEST(test_idle_pool_sleeps)
{
    tu_bounded(idle_body, 60, false);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("process_channel");
    TCase *tc = tu_tcase(s, "channel", 600);
    tcase_add_test(tc, test_scribbled_ring);
    tcase_add_test(tc, test_garbage_over_channel);
    tcase_add_test(tc, test_sigkill_mid_stream);
    tcase_add_test(tc, test_idle_pool_sleeps);
    return tu_run(s);
}
