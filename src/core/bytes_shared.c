/* SPDX-License-Identifier: MIT */
/*
 * fut_bytes buffers in shared memory (core/bytes_shared.h).
 *
 * A shared buffer is one mapping of MAP_PAGE + capacity bytes:
 *
 *   [ private anonymous page: struct shared_map ... fut_bytes_header ][ memfd pages ]
 *                                                                     ^ the data
 *
 * The memfd holds nothing but data (offset 0 is the buffer's first byte), and the header
 * fut_bytes_len and fut_bytes_free read is in this process's own page: a process that
 * receives the file trusts nothing written in it, only the file's size (fstat) and its
 * seals. Every memfd made here is sealed against shrinking and growing (then against new
 * seals), and fut__bytes_from_fd refuses a file without F_SEAL_SHRINK: a file that could
 * shrink under a MAP_SHARED mapping would turn the receiver's reads into SIGBUS.
 *
 * Reuse (first-touch memory costs 20-60x reused memory on some machines): a freed buffer
 * becomes a spare (fd and mapping kept), and a buffer handed to another process keeps its
 * mapping in the cache, keyed by the file's (st_dev, st_ino). The cached mapping holds a
 * reference to the file, so its inode cannot be reused while cached: the same key coming
 * back (fut__bytes_from_fd, fut__bytes_spare_add) is the same file, and its mapping (pages
 * already faulted in here) is taken again instead of mapping the file anew. Both lists are
 * bounded and fut__bytes_shared_trim returns what has been idle to the system.
 *
 * Lock: `lock` guards the spares, the cache and their totals. It is a leaf: nothing else
 * is taken and no system call is made under it (mappings and fds are released after it is
 * dropped). fork(): held across it; the child forgets the lists (their files are the
 * parent's to reuse) and unmaps and closes its copies.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bytes_impl.h"
#include "core/bytes_shared.h"
#include "core/clock.h"
#include "core/fork.h"

#define SPARES_MAX 8
#define SPARE_BYTES_MAX ((size_t)256 << 20)
#define CACHE_MAX 16
#define CACHE_BYTES_MAX ((size_t)256 << 20)
#define IDLE_SECONDS 0.5           /* trims return what has not been used for this long */

/* At the start of a shared buffer's private page. */
struct shared_map {
    size_t map_size;               /* the private page and the file's pages */
    size_t capacity;               /* bytes of the file the mapping covers */
    dev_t dev;
    ino_t ino;
    int fd;                        /* -1 while in the cache (the mapping holds the file) */
    unsigned generation;           /* the fork generation that made it live (core/fork.h) */
    double idle_since;             /* while a spare or cached */
};

/* the private page holds the map, then free room for a caller's header before the data */
_Static_assert(sizeof(struct shared_map) + FUT_ARG_COPY_ROOM <= 4096, "a page holds both");

struct shared_list {
    struct shared_map *maps[CACHE_MAX > SPARES_MAX ? CACHE_MAX : SPARES_MAX];
    size_t count, bytes;           /* oldest first */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_list spares, cache;
static struct shared_list arg_copies;  /* freed sealed argument copies (fut__arg_copy_*) */
static atomic_bool share_large;
static atomic_int live_fds;        /* fds held by live buffers (not spares) */

static size_t page_size(void)
{
    static atomic_size_t page;     /* any thread may be the first to ask */
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

static size_t round_to_page(size_t n)
{
    size_t page = page_size();
    return (n + page - 1) / page * page;
}

static void *data_of(struct shared_map *m)
{
    return (char *)m + page_size();
}

static struct shared_map *map_of(const void *b)
{
    return (struct shared_map *)((char *)b - page_size());
}

/* ---- mappings ----------------------------------------------------------------------- */

/* Maps capacity bytes of fd behind a private page; NULL with errno. Leaves fd open. */
static struct shared_map *map_file(int fd, size_t capacity, const struct stat *st)
{
    size_t file_span = round_to_page(capacity);
    if (capacity == 0 || file_span < capacity || file_span > SIZE_MAX - page_size()) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_size = page_size() + file_span;
    char *base = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (mmap(base + page_size(), file_span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
             0) == MAP_FAILED) {
        int saved = errno;
        munmap(base, map_size);
        errno = saved;
        return NULL;
    }
    struct shared_map *m = (struct shared_map *)base;
    *m = (struct shared_map){
        .map_size = map_size, .capacity = capacity, .dev = st->st_dev, .ino = st->st_ino, .fd = fd,
    };
    return m;
}

/* Unmaps m and closes its fd (if it has one). */
static void unmap(struct shared_map *m)
{
    if (m->fd >= 0)
        close(m->fd);
    munmap(m, m->map_size);
}

/*
 * How many live received buffers may keep their fd. A parent holding thousands of large
 * results must not run out of descriptors (the soft RLIMIT_NOFILE is often 1024): past a
 * quarter of the limit, a received buffer lives by its mapping alone (the mapping holds
 * the file), and is unmapped rather than kept as a spare when freed.
 */
static int fd_budget(void)
{
    struct rlimit rl;              /* asked each time: beside fstat and mmap, one more call */
    rlim_t quarter = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 4 : 256;
    return quarter < 16 ? 16 : quarter > 4096 ? 4096 : (int)quarter;
}

/* A live buffer of len bytes in m: its header written, in the registry. */
static void *make_buffer(struct shared_map *m, size_t len)
{
    void *b = data_of(m);
    struct fut_bytes_header *h = fut__bytes_header(b);
    h->len = len;
    h->kind = FUT_BYTES_SHARED;
    m->generation = fut__fork_generation();
    if (fut__bytes_registry_add(b) != 0) {
        unmap(m);
        errno = ENOMEM;
        return NULL;
    }
    if (m->fd >= 0)
        atomic_fetch_add_explicit(&live_fds, 1, memory_order_relaxed);
    return b;
}

/* Takes m's fd from the live buffer (to hand it on, or to a spare): -1 when it has none. */
static int take_fd(struct shared_map *m)
{
    int fd = m->fd;
    m->fd = -1;
    if (fd >= 0)
        atomic_fetch_sub_explicit(&live_fds, 1, memory_order_relaxed);
    return fd;
}

/* ---- the spares and the cache (under lock) ------------------------------------------ */

static size_t list_limit(const struct shared_list *l)
{
    return l == &cache ? CACHE_MAX : SPARES_MAX;
}

static size_t list_byte_limit(const struct shared_list *l)
{
    return l == &cache ? CACHE_BYTES_MAX : SPARE_BYTES_MAX;
}

static struct shared_map *list_remove_at(struct shared_list *l, size_t i)
{
    struct shared_map *m = l->maps[i];
    memmove(&l->maps[i], &l->maps[i + 1], (l->count - i - 1) * sizeof l->maps[0]);
    l->count--;
    l->bytes -= m->capacity;
    return m;
}

/* Adds m as the newest; the oldest entries that no longer fit the bounds (or m itself,
 * when it alone exceeds them) go to `evicted` (room for list_limit + 1): their count. */
static size_t list_add(struct shared_list *l, struct shared_map *m, struct shared_map **evicted)
{
    size_t n = 0;
    if (m->capacity > list_byte_limit(l)) {
        evicted[n++] = m;
        return n;
    }
    while (l->count == list_limit(l) || l->bytes + m->capacity > list_byte_limit(l))
        evicted[n++] = list_remove_at(l, 0);
    m->idle_since = fut__now();
    l->maps[l->count++] = m;
    l->bytes += m->capacity;
    return n;
}

static struct shared_map *list_find_file(struct shared_list *l, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->maps[i]->dev == dev && l->maps[i]->ino == ino)
            return list_remove_at(l, i);
    return NULL;
}

/* The smallest entry of l that holds len bytes without wasting more than it holds. */
static struct shared_map *take_fitting(struct shared_list *l, size_t len)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < l->count; i++) {
        size_t c = l->maps[i]->capacity;
        if (c >= len && c / 2 <= len && (best == SIZE_MAX || c < l->maps[best]->capacity))
            best = i;
    }
    return best == SIZE_MAX ? NULL : list_remove_at(l, best);
}

static void unmap_all(struct shared_map **maps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        unmap(maps[i]);
}

/* Puts m on list l, then releases what that evicted (outside the lock). */
static void keep(struct shared_list *l, struct shared_map *m)
{
    struct shared_map *evicted[CACHE_MAX + 1];
    pthread_mutex_lock(&lock);
    size_t n = list_add(l, m, evicted);
    pthread_mutex_unlock(&lock);
    unmap_all(evicted, n);
}

/* ---- fork ---------------------------------------------------------------------------- */

static void lock_for_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void unlock_in_parent(void)
{
    pthread_mutex_unlock(&lock);
}

/* The child's spares and cached mappings are copies of the parent's, whose files the
 * parent will reuse: writing into them here would write into the parent's next buffers. */
static void forget_in_child(void)
{
    struct shared_list *lists[] = { &spares, &cache, &arg_copies };
    for (size_t k = 0; k < 3; k++) {
        unmap_all(lists[k]->maps, lists[k]->count);
        lists[k]->count = lists[k]->bytes = 0;
    }
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void shared_fork_safe(void)
{
    pthread_atfork(lock_for_fork, unlock_in_parent, forget_in_child);
}

/* ---- files ---------------------------------------------------------------------------- */

/* A new memfd of capacity bytes sealed with `seals` (F_SEAL_SHRINK and F_SEAL_GROW at
 * least), or -1 with errno. */
static int create_file(size_t capacity, int seals)
{
    int fd = memfd_create("fut-bytes", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)capacity) != 0 || fcntl(fd, F_ADD_SEALS, seals) != 0) {
        int saved = errno;
        close(fd);
        errno = saved == EINVAL || saved == EFBIG ? ENOMEM : saved;
        return -1;
    }
    return fd;
}

/* Checks a file another process sent: a memfd (or other sealable shared memory) that can
 * no longer shrink, can still be written, and holds at least len bytes (len 0: at least
 * one). Fills st. */
static int check_file(int fd, size_t len, struct stat *st)
{
    if (fstat(fd, st) != 0)
        return -errno;
    if (!S_ISREG(st->st_mode))
        return -EPROTO;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return -EPROTO;            /* not a file that takes seals: not a memfd */
    int forbidden = F_SEAL_WRITE;
#ifdef F_SEAL_FUTURE_WRITE
    forbidden |= F_SEAL_FUTURE_WRITE;
#endif
    if (!(seals & F_SEAL_SHRINK) || (seals & forbidden))
        return -EPROTO;
    if (st->st_size <= 0 || (uintmax_t)st->st_size < len)
        return -EPROTO;
    return 0;
}

/* The mapping of `span` bytes of fd (validated, st_size >= span): the cached one when
 * this process has it and it covers span, else a new one (the file's size is the
 * sender's to choose, so no more than span is mapped). Takes fd into the mapping; NULL
 * with errno (fd left open) on failure. */
static struct shared_map *map_received(int fd, size_t span, const struct stat *st)
{
    pthread_mutex_lock(&lock);
    struct shared_map *m = list_find_file(&cache, st->st_dev, st->st_ino);
    pthread_mutex_unlock(&lock);
    if (m && m->capacity >= span) {
        m->fd = fd;
        return m;
    }
    if (m)
        unmap(m);                  /* grown since (a file not sealed against growing) */
    return map_file(fd, span, st);
}

/* A new memfd of len bytes (whole pages), sealed with `seals`, mapped behind a private
 * page; NULL with errno. */
static struct shared_map *new_file_mapping(size_t len, int seals)
{
    size_t capacity = round_to_page(len ? len : 1);
    if (capacity < len) {
        errno = ENOMEM;
        return NULL;
    }
    int fd = create_file(capacity, seals);
    if (fd < 0)
        return NULL;
    struct stat st;
    struct shared_map *m = NULL;
    if (fstat(fd, &st) != 0 || !(m = map_file(fd, capacity, &st))) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return m;
}

/* ---- bytes_shared.h ------------------------------------------------------------------- */

void fut__bytes_share_large(bool on)
{
    atomic_store_explicit(&share_large, on, memory_order_relaxed);
}

bool fut__bytes_wants_shared(size_t len)
{
    return len >= FUT_BYTES_SHARED_MIN && atomic_load_explicit(&share_large, memory_order_relaxed);
}

void *fut__bytes_new_shared(size_t len)
{
    pthread_mutex_lock(&lock);
    struct shared_map *m = take_fitting(&spares, len);
    pthread_mutex_unlock(&lock);
    if (m)
        return make_buffer(m, len);
    if (!(m = new_file_mapping(len, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)))
        return NULL;
    return make_buffer(m, len);
}

int fut__bytes_fd(const void *b)
{
    if (!b || fut__bytes_header(b)->kind != FUT_BYTES_SHARED)
        return -1;
    return map_of(b)->fd;
}

int fut__bytes_release_fd(void *b)
{
    if (!b || fut__bytes_header(b)->kind != FUT_BYTES_SHARED) {
        errno = EINVAL;
        return -1;
    }
    struct shared_map *m = map_of(b);
    if (m->fd < 0) {
        errno = EINVAL;            /* a received buffer past the fd budget */
        return -1;
    }
    fut__bytes_registry_remove(b);
    int fd = take_fd(m);
    keep(&cache, m);
    return fd;
}

void *fut__bytes_from_fd(int fd, size_t len)
{
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    struct stat st;
    int rc = check_file(fd, len, &st);
    struct shared_map *m = NULL;
    if (rc == 0) {
        /* whole pages where the file has them: what a spare of this size can hold */
        size_t span = round_to_page(len ? len : 1);
        m = map_received(fd, (uintmax_t)st.st_size < span ? (size_t)st.st_size : span, &st);
    }
    if (!m) {
        int saved = rc ? -rc : errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    if (atomic_load_explicit(&live_fds, memory_order_relaxed) >= fd_budget()) {
        close(fd);
        m->fd = -1;
    }
    return make_buffer(m, len);
}

/* A buffer inherited through fork() is still the parent's too: as a spare here, its pages
 * would become this process's next buffer while the parent reads them. */
void fut__bytes_shared_free(void *b)
{
    struct shared_map *m = map_of(b);
    int fd = take_fd(m);
    if (fd < 0 || fut__inherited(m->generation)) {
        m->fd = fd;
        unmap(m);                  /* no fd (nothing can send it) or not only ours */
        return;
    }
    m->fd = fd;
    keep(&spares, m);
}

int fut__bytes_spare_take(void)
{
    pthread_mutex_lock(&lock);
    struct shared_map *m = spares.count ? list_remove_at(&spares, spares.count - 1) : NULL;
    pthread_mutex_unlock(&lock);
    if (!m)
        return -1;
    int fd = m->fd;                /* a spare's fd, not counted in live_fds */
    m->fd = -1;
    keep(&cache, m);
    return fd;
}

void fut__bytes_spare_add(int fd)
{
    if (fd < 0)
        return;
    struct stat st;
    struct shared_map *m = NULL;
    if (check_file(fd, 1, &st) == 0 && (uintmax_t)st.st_size <= SPARE_BYTES_MAX)
        m = map_received(fd, (size_t)st.st_size, &st);
    if (!m) {
        close(fd);
        return;
    }
    keep(&spares, m);
}

bool fut__bytes_shared_trim(void)
{
    struct shared_map *idle[2 * SPARES_MAX + CACHE_MAX];
    size_t n = 0;
    double before = fut__now() - IDLE_SECONDS;
    pthread_mutex_lock(&lock);
    struct shared_list *lists[] = { &spares, &cache, &arg_copies };
    for (size_t k = 0; k < 3; k++)
        for (size_t i = lists[k]->count; i-- > 0;)
            if (lists[k]->maps[i]->idle_since <= before)
                idle[n++] = list_remove_at(lists[k], i);
    bool left = spares.count + cache.count + arg_copies.count > 0;
    pthread_mutex_unlock(&lock);
    unmap_all(idle, n);
    return left;
}

/* ---- sealed argument copies ----------------------------------------------------------- */

void *fut__arg_copy_new(size_t len)
{
#ifdef F_SEAL_FUTURE_WRITE
    pthread_mutex_lock(&lock);
    struct shared_map *m = take_fitting(&arg_copies, len);
    pthread_mutex_unlock(&lock);
    if (!m) {
        if (atomic_load_explicit(&live_fds, memory_order_relaxed) >= fd_budget()) {
            errno = EMFILE;
            return NULL;
        }
        /* sealed against writes only once our own writable mapping exists */
        if (!(m = new_file_mapping(len, F_SEAL_SHRINK | F_SEAL_GROW)))
            return NULL;
        if (fcntl(m->fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0) {
            int saved = errno;
            unmap(m);
            errno = saved == EINVAL ? ENOSYS : saved;
            return NULL;
        }
    }
    m->generation = fut__fork_generation();
    atomic_fetch_add_explicit(&live_fds, 1, memory_order_relaxed);
    return data_of(m);
#else
    (void)len;
    errno = ENOSYS;
    return NULL;
#endif
}

int fut__arg_copy_fd(const void *data)
{
    return map_of(data)->fd;
}

void fut__arg_copy_free(void *data)
{
    struct shared_map *m = map_of(data);
    atomic_fetch_sub_explicit(&live_fds, 1, memory_order_relaxed);
    if (fut__inherited(m->generation))
        unmap(m);                  /* the parent's file: writing it would change its copy */
    else
        keep(&arg_copies, m);
}

void *fut__arg_copy_map(int fd, size_t len)
{
    struct stat st;
    int seals = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fcntl(fd, F_GET_SEALS) : -1;
    int unchanging = F_SEAL_WRITE;
#ifdef F_SEAL_FUTURE_WRITE
    unchanging |= F_SEAL_FUTURE_WRITE;
#endif
    void *data = MAP_FAILED;
    /* a file that could still shrink would turn reads into SIGBUS; one that others could
     * still write is not the sender's copy alone */
    if (len > 0 && seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & unchanging) &&
        (uintmax_t)st.st_size >= len)
        data = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    else
        errno = EPROTO;
    int saved = errno;
    close(fd);
    errno = saved;
    return data == MAP_FAILED ? NULL : data;
}

void fut__arg_copy_unmap(void *data, size_t len)
{
    if (data)
        munmap(data, len);
}
