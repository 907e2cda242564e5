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

/* The memfd behind b, or -1 when b lives in ordinary memory. The fd stays b's. */
int fut__bytes_fd(const void *b);

/* Hands the shared buffer b to another process: returns a descriptor of its memfd that
 * the caller sends and then closes; b is gone from this process's point of view (never
 * touch it again). -1 with errno when b is not a shared buffer. */
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

/* Returns to the system the spares and cached mappings unused for half a second or more;
 * returns whether some are left (call again later). Called where the library already
 * trims when idle (fut__future_cache_trim, so: an idle thread pool, fut_executor_free);
 * a process pool's dispatcher and worker call it when they have been idle. */
bool fut__bytes_shared_trim(void);

#endif
