/* SPDX-License-Identifier: MIT */
/*
 * Internal: fut_bytes buffers in shared memory, the process pool's zero-copy path.
 *
 * A shared buffer is a fut_bytes buffer (same header, same fut_bytes_len/fut_bytes_free)
 * whose pages belong to a memfd. Another process maps the same pages from the fd, passed
 * to it over a Unix socket (SCM_RIGHTS), so a large result or argument crosses between
 * processes without a copy. Buffers of at least FUT_BYTES_SHARED_MIN bytes take this path.
 *
 * Reuse: first-touch memory is the bound on this kind of machine, so a freed shared buffer
 * is kept (a bounded number, returned after the process idles) as a spare, and a mapping
 * of a memfd this process has seen is kept while the file may come back, so that a buffer
 * travelling parent -> worker (as a spare) -> parent (as the next result) is written and
 * read through pages both processes have already faulted in.
 */
#ifndef FUT_BYTES_SHARED_H
#define FUT_BYTES_SHARED_H

#include <stdbool.h>
#include <stddef.h>

#define FUT_BYTES_SHARED_MIN ((size_t)64 * 1024)

/* When on, fut_bytes_new and fut_bytes_dup of at least FUT_BYTES_SHARED_MIN bytes allocate
 * shared buffers in this process (a process-pool worker turns it on at start). */
void fut__bytes_share_large(bool on);

/* A new shared fut_bytes buffer of len bytes (a spare reused when one is large enough),
 * or NULL with errno set (ENOMEM, EMFILE, ...). */
void *fut__bytes_new_shared(size_t len);

/* The memfd behind b, or -1 when b lives in ordinary memory (or is a received buffer
 * that holds no fd: past a quarter of RLIMIT_NOFILE live buffers, fut__bytes_from_fd
 * keeps the mapping only). The fd stays b's. */
int fut__bytes_fd(const void *b);

/* Hands the shared buffer b to another process: returns a descriptor of its memfd that
 * the caller sends and then closes; b is gone from this process's point of view (never
 * touch it again). -1 with errno EINVAL when b is not a shared buffer or holds no fd (b
 * then stays the caller's). */
int fut__bytes_release_fd(void *b);

/* The fut_bytes buffer of len bytes that another process released (fut__bytes_release_fd)
 * and sent as fd: takes ownership of fd (closed on failure, too). NULL with errno on
 * failure, also EPROTO when the file is smaller than len needs. */
void *fut__bytes_from_fd(int fd, size_t len);

/* Spares across processes: the parent offers the memory of buffers its user freed to its
 * workers. fut__bytes_spare_take returns a descriptor for one of this process's spares
 * (the caller sends it, then closes it; the spare is no longer this process's) or -1 when
 * there is none; fut__bytes_spare_add takes ownership of a memfd received that way. */
int fut__bytes_spare_take(void);
void fut__bytes_spare_add(int fd);

/*
 * Sealed argument copies: the process pool's private copy of a fut_submit_copy argument
 * of FUT_BYTES_SHARED_MIN bytes or more, written once at submit and sent as it is. The
 * memfd is sealed against writes through any mapping made after ours (F_SEAL_FUTURE_WRITE)
 * and against resizing, so this process's mapping stays the only writable one: a worker
 * maps it privately (copy-on-write: its task may still write its copy), and a task taken
 * back or requeued after a death is sent again unchanged. Freed copies are kept for the
 * next ones (bounded, trimmed with the spares); a copy inherited through fork() is only
 * unmapped.
 *
 * fut__arg_copy_new returns the data of a new copy of len bytes, preceded by at least
 * FUT_ARG_COPY_ROOM bytes of this process's own memory for the caller's header; NULL with
 * errno when there is none (ENOSYS where the kernel has no F_SEAL_FUTURE_WRITE, EMFILE
 * past the descriptor budget, ENOMEM): the caller copies to ordinary memory instead.
 */
#define FUT_ARG_COPY_ROOM 64
void *fut__arg_copy_new(size_t len);
/* The copy's memfd, to send (it stays the copy's). */
int fut__arg_copy_fd(const void *data);
void fut__arg_copy_free(void *data);
/* In the receiver: maps len bytes of a sealed copy privately, taking fd (closed either
 * way); NULL with errno EPROTO when the file is not sealed so or is shorter than len. The
 * receiver unmaps it before it reports the task done: the sender may then write the file
 * again, for its next copy. */
void *fut__arg_copy_map(int fd, size_t len);
void fut__arg_copy_unmap(void *data, size_t len);

/* Returns to the system the spares and cached mappings unused for half a second or more;
 * returns whether some are left (call again later). Called where the library already
 * trims when idle (fut__future_cache_trim, so: an idle thread pool, fut_executor_free);
 * a process pool's dispatcher and worker call it when they have been idle. */
bool fut__bytes_shared_trim(void);

#endif
