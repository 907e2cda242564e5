/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory fut_bytes buffers (src/core/bytes_shared.c), reached through the exported
 * backend hook table (core/backend.h): buffers in memfds, their fds passed between
 * processes with SCM_RIGHTS, forged files refused, spares and mappings reused, and every
 * fd and mapping given back.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/bytes_shared.h"
#include "testutil.h"

static const struct fut_backend_hooks *H;

static void setup(void)
{
    H = fut_backend_hooks();
    ck_assert_uint_ge(H->size, offsetof(struct fut_backend_hooks, bytes_claim) + sizeof H->bytes_claim);
    /* what an earlier test kept (CK_FORK=no runs them all in one process) goes first */
    if (H->bytes_shared_trim()) {
        tu_sleep(0.6);
        ck_assert(!H->bytes_shared_trim());
    }
}

/* Mappings of this library's memfds ("/memfd:fut-bytes (deleted)"), whatever else the
 * process maps (thread stacks and malloc arenas stay cached after threads exit). */
static int count_buffer_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f))
        n += strstr(line, "/memfd:fut-bytes") != NULL;
    fclose(f);
    return n;
}

/* Lines of /proc/self/maps: every mapping, the private pages included. Valgrind and the
 * sanitizers (ThreadSanitizer's shadow of each new mapping) map on their own behalf, so
 * under them only the memfds' mappings are counted. */
static int count_maps(void)
{
    if (tu_under_valgrind() || TU_SANITIZED)
        return count_buffer_maps();
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* After the idle time a trim waits for, everything went back to the system: no spare and
 * no cached mapping is left, and the descriptors and mappings are those counted before. */
static void assert_all_given_back(int fds, int maps)
{
    tu_sleep(0.6);
    ck_assert(!H->bytes_shared_trim());
    ck_assert_int_eq(tu_count_fds(), fds);
    ck_assert_int_eq(count_maps(), maps);
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static ino_t inode_of(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    return st.st_ino;
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

static bool holds(const unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(i * 31 + seed))
            return false;
    return true;
}

/* Page faults of the calling thread so far. */
static long faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

/*
 * Whether touching len bytes at p (reading then writing every page) faulted in far fewer
 * pages than a fresh mapping would: a mapping faulted in before faults no more (a fresh
 * one faults at least once per 16 pages reading, with the kernel's fault-around, and
 * once per page writing). On success the buffer holds `seed` then is refilled with `next`.
 */
static bool touched_without_faults(unsigned char *p, size_t len, unsigned seed, unsigned next)
{
    long before = faults();
    bool ok = holds(p, len, seed);
    fill(p, len, next);
    long n = faults() - before;
    return ok && (n < (long)(len / 4096 / 32) || tu_under_valgrind());  /* its own faults */
}

/* ---- SCM_RIGHTS ------------------------------------------------------------------------ */

static void send_fd(int sock, int fd, size_t len)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec iov = { &len, sizeof len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                          .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof len)
        abort();
}

/* The fd received (CLOEXEC), its length in *len; -1 at the end of the stream. */
static int recv_fd(int sock, size_t *len)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { len, sizeof *len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                          .msg_controllen = sizeof cbuf };
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof *len)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* Sends shared buffer b (gone from this process afterwards). */
static void send_buffer(int sock, void *b)
{
    size_t len = fut_bytes_len(b);
    int fd = H->bytes_release_fd(b);
    if (fd < 0)
        abort();
    send_fd(sock, fd, len);
    close(fd);
}

static void *recv_buffer(int sock)
{
    size_t len;
    int fd = recv_fd(sock, &len);
    return fd < 0 ? NULL : H->bytes_from_fd(fd, len);
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_new_len_free)
{
    setup();
    int fds = tu_count_fds(), maps = count_maps();
    size_t len = FUT_BYTES_SHARED_MIN + 123;
    unsigned char *b = H->bytes_new_shared(len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fut_bytes_len(b), len);
    ck_assert_uint_eq((uintptr_t)b % _Alignof(max_align_t), 0);
    int fd = H->bytes_fd(b);
    ck_assert_int_ge(fd, 0);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int seals = fcntl(fd, F_GET_SEALS);
    ck_assert(seals & F_SEAL_SHRINK);
    ck_assert(seals & F_SEAL_GROW);
    ck_assert_int_eq(ftruncate(fd, 0), -1);  /* no shrinking under a receiver's mapping */
    fill(b, len, 7);
    ck_assert(holds(b, len, 7));
    ck_assert_int_eq(tu_count_fds(), fds + 1);
    /* the registry knows it, once */
    ck_assert(H->bytes_claim(b));
    ck_assert(!H->bytes_claim(b));
    fut_bytes_free(b);
    /* a spare now, until idle */
    ck_assert(H->bytes_shared_trim());
    assert_all_given_back(fds, maps);
    /* ordinary buffers are not shared */
    void *small = fut_bytes_new(16);
    ck_assert_int_eq(H->bytes_fd(small), -1);
    errno = 0;
    ck_assert_int_eq(H->bytes_release_fd(small), -1);
    ck_assert_int_eq(errno, EINVAL);
    fut_bytes_free(small);
    ck_assert_int_eq(H->bytes_fd(NULL), -1);
}
END_TEST

START_TEST(test_share_large)
{
    setup();
    void *b = fut_bytes_new(FUT_BYTES_SHARED_MIN);
    ck_assert_int_eq(H->bytes_fd(b), -1);  /* off by default */
    fut_bytes_free(b);
    H->bytes_share_large(true);
    b = fut_bytes_new(FUT_BYTES_SHARED_MIN);
    ck_assert_int_ge(H->bytes_fd(b), 0);
    ck_assert(H->bytes_claim(b));  /* fut_bytes_new registers it like any buffer */
    fut_bytes_free(b);
    b = fut_bytes_new(FUT_BYTES_SHARED_MIN - 1);
    ck_assert_int_eq(H->bytes_fd(b), -1);
    fut_bytes_free(b);
    static const char text[] = "fut_bytes_dup of a large buffer";
    char *src = calloc(1, 2 * FUT_BYTES_SHARED_MIN);
    memcpy(src, text, sizeof text);
    char *d = fut_bytes_dup(src, 2 * FUT_BYTES_SHARED_MIN);
    ck_assert_int_ge(H->bytes_fd(d), 0);
    ck_assert_str_eq(d, text);
    ck_assert_uint_eq(fut_bytes_len(d), 2 * FUT_BYTES_SHARED_MIN);
    fut_bytes_free(d);
    free(src);
    H->bytes_share_large(false);
    b = fut_bytes_new(FUT_BYTES_SHARED_MIN);
    ck_assert_int_eq(H->bytes_fd(b), -1);
    fut_bytes_free(b);
}
END_TEST

/* A child with a socket to this process: 0 in the child (which holds sv[1] and must
 * _exit within 20 s), its pid in the parent (which holds sv[0]). */
static pid_t fork_peer(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        close(sv[0]);
    } else {
        close(sv[1]);
    }
    return pid;
}

/* The peer of fork_peer exited 0; the parent's end is closed. */
static void join_peer(pid_t pid, int sv[2])
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[0]);
}

/* Parent -> child -> parent: the child checks what it got and answers with a buffer of
 * its own; both directions keep the data intact. */
START_TEST(test_across_fork)
{
    setup();
    int fds = tu_count_fds(), maps = count_maps();
    int sv[2];
    pid_t pid = fork_peer(sv);
    if (pid == 0) {
        unsigned char *got = recv_buffer(sv[1]);
        if (!got || fut_bytes_len(got) != 300000 || !holds(got, 300000, 1))
            _exit(2);
        fut_bytes_free(got);
        unsigned char *mine = H->bytes_new_shared(500000);
        if (!mine)
            _exit(3);
        fill(mine, 500000, 2);
        send_buffer(sv[1], mine);
        _exit(0);
    }
    unsigned char *b = H->bytes_new_shared(300000);
    ck_assert_ptr_nonnull(b);
    fill(b, 300000, 1);
    send_buffer(sv[0], b);
    unsigned char *reply = recv_buffer(sv[0]);
    ck_assert_ptr_nonnull(reply);
    ck_assert_uint_eq(fut_bytes_len(reply), 500000);
    ck_assert(holds(reply, 500000, 2));
    join_peer(pid, sv);
    fut_bytes_free(reply);
    assert_all_given_back(fds, maps);
}
END_TEST

static void expect_refused(int fd, size_t len, int code)
{
    int maps = count_maps();
    errno = 0;
    ck_assert_ptr_null(H->bytes_from_fd(fd, len));
    ck_assert_int_eq(errno, code);
    ck_assert(!fd_open(fd));
    ck_assert_int_eq(count_maps(), maps);
}

START_TEST(test_forged)
{
    setup();
    int fds = tu_count_fds();
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[1]);
    expect_refused(p[0], 4096, EPROTO);

    int fd = memfd_create("forged", MFD_CLOEXEC);  /* no seals at all */
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    expect_refused(fd, 4096, EPROTO);

    fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);  /* may still shrink */
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), 0);
    expect_refused(fd, 4096, EPROTO);

    fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);  /* too small */
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    expect_refused(fd, 4097, EPROTO);

    fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);  /* empty */
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    expect_refused(fd, 0, EPROTO);

    fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);  /* read-only */
    ck_assert_int_eq(ftruncate(fd, 8192), 0);
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_WRITE), 0);
    expect_refused(fd, 100, EPROTO);

    errno = 0;
    ck_assert_ptr_null(H->bytes_from_fd(-1, 10));
    ck_assert_int_eq(errno, EBADF);

    /* a sealed file of the right size is fine, whoever made it; it may grow later */
    fd = memfd_create("honest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ck_assert_int_eq(ftruncate(fd, 10000), 0);
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    unsigned char *b = H->bytes_from_fd(fd, 10000);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fut_bytes_len(b), 10000);
    ck_assert_int_eq(b[9999], 0);
    ck_assert_int_eq(ftruncate(H->bytes_fd(b), 100), -1);
    fut_bytes_free(b);
    /* spare_add refuses the same forgeries, and closes them */
    ck_assert_int_eq(pipe(p), 0);
    close(p[1]);
    H->bytes_spare_add(p[0]);
    ck_assert(!fd_open(p[0]));
    tu_sleep(0.6);
    H->bytes_shared_trim();
    ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* A freed buffer comes back: the same file, through the same mapping. */
START_TEST(test_spares_reused)
{
    setup();
    int fds = tu_count_fds(), maps = count_maps();
    void *b = H->bytes_new_shared(1 << 20);
    ino_t ino = inode_of(H->bytes_fd(b));
    int maps_live = count_maps();
    ck_assert_int_gt(maps_live, maps);
    fut_bytes_free(b);
    void *again = H->bytes_new_shared((1 << 20) - 5000);  /* fits the spare */
    ck_assert_int_eq(inode_of(H->bytes_fd(again)), ino);
    ck_assert_int_eq(count_maps(), maps_live);
    ck_assert_uint_eq(fut_bytes_len(again), (1 << 20) - 5000);
    void *other = H->bytes_new_shared(1 << 20);  /* no spare left: a new file */
    ck_assert_int_ne(inode_of(H->bytes_fd(other)), ino);
    fut_bytes_free(other);
    fut_bytes_free(again);
    /* too large a spare for a small buffer is not taken */
    void *small = H->bytes_new_shared(FUT_BYTES_SHARED_MIN);
    ck_assert_int_ne(inode_of(H->bytes_fd(small)), ino);
    fut_bytes_free(small);
    assert_all_given_back(fds, maps);
}
END_TEST

/* The same file travelling parent -> child -> parent comes back through the mapping it
 * left: same address, no new mapping, the child's writes visible. */
START_TEST(test_mapping_reused)
{
    setup();
    int fds = tu_count_fds(), maps = count_maps();
    int sv[2];
    pid_t pid = fork_peer(sv);
    if (pid == 0) {
        unsigned char *first = NULL;
        for (unsigned round = 0; round < 3; round++) {
            unsigned char *got = recv_buffer(sv[1]);
            if (!got || !holds(got, fut_bytes_len(got), 10 + round))
                _exit(2);
            if (first && got != first)
                _exit(3);          /* the child's own cached mapping, too */
            if (first && !touched_without_faults(got, fut_bytes_len(got), 10 + round, 20 + round))
                _exit(4);
            first = got;
            fill(got, fut_bytes_len(got), 20 + round);
            send_buffer(sv[1], got);
        }
        _exit(0);
    }
    size_t len = 3 << 20;
    unsigned char *b = H->bytes_new_shared(len);
    ck_assert_ptr_nonnull(b);
    unsigned char *const at = b;
    int maps_live = count_maps();
    for (unsigned round = 0; round < 3; round++) {
        fill(b, len, 10 + round);
        send_buffer(sv[0], b);
        ck_assert_int_eq(count_maps(), maps_live);  /* kept in the cache */
        b = recv_buffer(sv[0]);
        ck_assert_ptr_eq(b, at);
        ck_assert_uint_eq(fut_bytes_len(b), len);
        ck_assert(touched_without_faults(b, len, 20 + round, 40));
        ck_assert_int_eq(count_maps(), maps_live);
    }
    join_peer(pid, sv);
    fut_bytes_free(b);
    assert_all_given_back(fds, maps);
}
END_TEST

/* The pool's loop: the parent's freed result goes to the worker as a spare, the worker's
 * next result is written into it and comes back through the parent's old mapping. */
START_TEST(test_spare_exchange)
{
    setup();
    int fds = tu_count_fds(), maps = count_maps();
    ck_assert_int_eq(H->bytes_spare_take(), -1);  /* none yet */
    int sv[2];
    pid_t pid = fork_peer(sv);
    if (pid == 0) {
        H->bytes_share_large(true);
        for (unsigned round = 0; round < 3; round++) {
            size_t len;
            int spare = recv_fd(sv[1], &len);
            if (round > 0) {
                if (spare < 0)
                    _exit(2);
                ino_t ino = inode_of(spare);
                H->bytes_spare_add(spare);
                unsigned char *r = fut_bytes_new(len);  /* takes the spare */
                if (H->bytes_fd(r) < 0 || inode_of(H->bytes_fd(r)) != ino)
                    _exit(3);
                /* through the mapping this child kept when it sent the buffer */
                if (!touched_without_faults(r, len, 29 + round, 30 + round))
                    _exit(4);
                send_buffer(sv[1], r);
            } else {
                unsigned char *r = fut_bytes_new(len);
                fill(r, len, 30 + round);
                send_buffer(sv[1], r);
            }
        }
        _exit(0);
    }
    size_t len = 2 << 20;
    unsigned char *at = NULL;
    for (unsigned round = 0; round < 3; round++) {
        if (round == 0) {
            send_fd(sv[0], sv[0], len);  /* any fd: the child ignores the first */
        } else {
            int spare = H->bytes_spare_take();
            ck_assert_int_ge(spare, 0);
            ck_assert_int_eq(H->bytes_spare_take(), -1);
            send_fd(sv[0], spare, len);
            close(spare);
        }
        unsigned char *r = recv_buffer(sv[0]);
        ck_assert_ptr_nonnull(r);
        if (at) {
            ck_assert_ptr_eq(r, at);
            ck_assert(touched_without_faults(r, len, 30 + round, 30 + round));
        } else {
            ck_assert(holds(r, len, 30 + round));
        }
        at = r;
        fut_bytes_free(r);  /* a spare of the parent's again */
    }
    join_peer(pid, sv);
    assert_all_given_back(fds, maps);
}
END_TEST

/* A forked child does not reuse its parent's spares (the parent will), nor the memory of
 * a live buffer it inherited and freed (the parent still reads it). */
START_TEST(test_fork_forgets_spares)
{
    setup();
    unsigned char *live = H->bytes_new_shared(1 << 20);
    ino_t live_ino = inode_of(H->bytes_fd(live));
    fill(live, 1 << 20, 3);
    void *b = H->bytes_new_shared(1 << 20);
    ino_t ino = inode_of(H->bytes_fd(b));
    fut_bytes_free(b);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        if (!holds(live, 1 << 20, 3))
            _exit(2);
        fut_bytes_free(live);  /* the child's view of it goes, the memory stays the parent's */
        unsigned char *c = H->bytes_new_shared(1 << 20);
        if (!c || inode_of(H->bytes_fd(c)) == ino || inode_of(H->bytes_fd(c)) == live_ino)
            _exit(3);
        fill(c, 1 << 20, 4);
        _exit(H->bytes_spare_take() == -1 ? 0 : 4);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert(holds(live, 1 << 20, 3));
    b = H->bytes_new_shared(1 << 20);
    ck_assert_int_eq(inode_of(H->bytes_fd(b)), ino);
    fut_bytes_free(b);
    fut_bytes_free(live);
}
END_TEST

/*
 * Sealed argument copies: the copy's own mapping writes the file, nothing else can (no
 * writable shared mapping, no write(2), no resize); a private mapping may be written
 * without changing it; a freed copy is reused as it is; a copy inherited by a child is
 * not reused there; the idle trim gives everything back.
 */
START_TEST(test_sealed_arg_copies)
{
    setup();
    ck_assert_uint_ge(H->size, offsetof(struct fut_backend_hooks, arg_copy_free) + sizeof H->arg_copy_free);
    int fds = tu_count_fds(), maps = count_maps();
    size_t len = (1 << 20) + 100;
    unsigned char *copy = H->arg_copy_new(len);
    if (!copy && errno == ENOSYS)
        return;                    /* a kernel without F_SEAL_FUTURE_WRITE: copies are plain */
    ck_assert_ptr_nonnull(copy);
    fill(copy, len, 5);
    int fd = H->arg_copy_fd(copy);
    int seals = fcntl(fd, F_GET_SEALS);
    ck_assert_int_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);

    /* what a worker could try */
    ck_assert(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_lt(pwrite(fd, "x", 1, 0), 0);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_lt(ftruncate(fd, 4096), 0);
    unsigned char *mine = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ck_assert(mine != MAP_FAILED);
    ck_assert(holds(mine, len, 5));
    fill(mine, len, 6);            /* copy-on-write: the file keeps its bytes */
    ck_assert(holds(copy, len, 5));
    ck_assert_int_eq(munmap(mine, len), 0);

    /* the copy's own mapping still writes the file */
    fill(copy, len, 7);
    const unsigned char *view = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(view != MAP_FAILED);
    ck_assert(holds(view, len, 7));
    ck_assert_int_eq(munmap((void *)view, len), 0);

    /* freed, then reused: same file, same mapping */
    ino_t ino = inode_of(fd);
    H->arg_copy_free(copy);
    unsigned char *again = H->arg_copy_new(len - 50);
    ck_assert_ptr_eq(again, copy);
    ck_assert_int_eq(inode_of(H->arg_copy_fd(again)), ino);

    /* inherited by a child: freed there, it is not the child's next copy */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        H->arg_copy_free(again);
        unsigned char *c = H->arg_copy_new(len);
        _exit(c && inode_of(H->arg_copy_fd(c)) != ino ? 0 : 3);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    H->arg_copy_free(again);
    assert_all_given_back(fds, maps);
}
END_TEST

/* Spares and cached mappings taken and given from many threads at once. */
static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    size_t rounds = tu_scale(400, 60);
    for (size_t i = 0; i < rounds; i++) {
        size_t len = FUT_BYTES_SHARED_MIN + (size_t)(rand_r(&seed) % (1 << 20));
        unsigned char *b = H->bytes_new_shared(len);
        if (!b)
            return TU_P(1);
        b[0] = (unsigned char)i;
        b[len - 1] = (unsigned char)seed;
        if (i % 3 == 0) {  /* out and back in through this process's own cache */
            int fd = H->bytes_release_fd(b);
            b = H->bytes_from_fd(fd, len);
            if (!b || b[0] != (unsigned char)i || b[len - 1] != (unsigned char)seed)
                return TU_P(2);
        }
        if (i % 5 == 0)
            H->bytes_claim(b);
        if (i % 7 == 0) {
            int fd = H->bytes_spare_take();
            if (fd >= 0)
                H->bytes_spare_add(fd);
        }
        fut_bytes_free(b);
    }
    return NULL;
}

START_TEST(test_threads)
{
    setup();
    int fds = tu_count_fds(), maps = count_buffer_maps();
    pthread_t t[4];
    for (uintptr_t i = 0; i < TU_ARRAY_SIZE(t); i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
    for (size_t i = 0; i < TU_ARRAY_SIZE(t); i++) {
        void *r;
        pthread_join(t[i], &r);
        ck_assert_ptr_null(r);
    }
    tu_sleep(0.6);
    ck_assert(!H->bytes_shared_trim());
    ck_assert_int_eq(tu_count_fds(), fds);
    ck_assert_int_eq(count_buffer_maps(), maps);
}
END_TEST

/* Nobody calls the trim here: an idle thread pool does (the library's idle-memory rule). */
START_TEST(test_idle_pool_returns)
{
    setup();
    fut_executor *ex = fut_thread_pool_new(NULL);
    ck_assert_ptr_nonnull(ex);
    fut_future *f = fut_submit(ex, tu_identity, NULL);
    ck_assert_int_eq(fut_result(f, FUT_FOREVER, NULL), 0);
    fut_future_unref(f);
    int fds = tu_count_fds();
    void *b = H->bytes_new_shared(1 << 20);
    fut_bytes_free(b);
    ck_assert_int_eq(tu_count_fds(), fds + 1);  /* a spare */
    double give_up = tu_now() + 30;             /* a hang is the failure */
    while (tu_count_fds() != fds && tu_now() < give_up)
        tu_sleep(0.05);
    ck_assert_int_eq(tu_count_fds(), fds);
    fut_executor_free(ex);
}
END_TEST

/* Many received buffers alive at once do not use up the descriptors: past a quarter of
 * RLIMIT_NOFILE they keep only their mappings (and are unmapped when freed). Run in a
 * child of its own: the budget is read once per process, and the limit is lowered. */
static int fd_budget_child(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 2;
    rl.rlim_cur = 128;                /* budget: 32 (valgrind takes the soft limit only) */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 11;
    int budget = rl.rlim_cur / 4 < 16 ? 16 : rl.rlim_cur / 4 > 4096 ? 4096 : (int)(rl.rlim_cur / 4);
    int fds = tu_count_fds(), maps = count_buffer_maps();
    if ((rlim_t)(fds + budget + 8) > rl.rlim_cur)
        return 10;
    const int N = budget + 40;
    unsigned char **b = calloc((size_t)N, sizeof *b);
    int with_fd = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *s = H->bytes_new_shared(FUT_BYTES_SHARED_MIN);
        if (!s)
            return 3;
        fill(s, FUT_BYTES_SHARED_MIN, (unsigned)i);
        int fd = H->bytes_release_fd(s);  /* as if sent to another process and back */
        if (fd < 0 || !(b[i] = H->bytes_from_fd(fd, FUT_BYTES_SHARED_MIN)))
            return 4;
        with_fd += H->bytes_fd(b[i]) >= 0;
    }
    if (with_fd != budget || tu_count_fds() > fds + budget)
        return 5;
    int fd_less = -1;
    for (int i = 0; i < N; i++) {
        if (!holds(b[i], FUT_BYTES_SHARED_MIN, (unsigned)i))
            return 6;
        if (H->bytes_fd(b[i]) < 0)
            fd_less = i;
    }
    errno = 0;
    if (fd_less < 0 || H->bytes_release_fd(b[fd_less]) != -1 || errno != EINVAL)
        return 7;                                   /* nothing to send */
    if (!H->bytes_claim(b[fd_less]))
        return 8;                                   /* still a live buffer */
    for (int i = 0; i < N; i++)
        fut_bytes_free(b[i]);
    free(b);
    tu_sleep(0.6);
    if (H->bytes_shared_trim() || tu_count_fds() != fds || count_buffer_maps() != maps)
        return 9;
    return 0;
}

START_TEST(test_fd_budget)
{
    setup();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        _exit(fd_budget_child());
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *bytes_shared_suite(void)
{
    Suite *s = suite_create("bytes_shared");
    TCase *tc = tu_tcase(s, "buffers", 60);
    tcase_add_test(tc, test_new_len_free);
    tcase_add_test(tc, test_share_large);
    tcase_add_test(tc, test_across_fork);
    tcase_add_test(tc, test_forged);
    tcase_add_test(tc, test_spares_reused);
    tcase_add_test(tc, test_mapping_reused);
    tcase_add_test(tc, test_spare_exchange);
    tcase_add_test(tc, test_fork_forgets_spares);
    tcase_add_test(tc, test_sealed_arg_copies);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_idle_pool_returns);
    tcase_add_test(tc, test_fd_budget);
    return s;
}

int main(void)
{
    return tu_run(bytes_shared_suite());
}
