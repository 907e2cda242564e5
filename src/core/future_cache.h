/* SPDX-License-Identifier: MIT */
/* Internal: where futures live: slabs behind a per-thread cache, so that submitting a task
 * does not call malloc and a freed batch gives its memory back (future_cache.c). */
#ifndef FUT_FUTURE_CACHE_H
#define FUT_FUTURE_CACHE_H

#include "core/future.h"

/* An uninitialised future, or NULL when memory is exhausted. */
fut_future *fut__future_cache_get(void);
/* Takes a dead future (its fields already released). */
void fut__future_cache_put(fut_future *f);
/* Gives the memory of empty slabs back to the system, but for a few, and (glibc) trims
 * the malloc heaps: called when an executor is freed or has been idle for a while.
 * Also returns idle shared fut_bytes memory (fut__bytes_shared_trim). Returns whether
 * futures or shared spares are still alive (freeing them may leave more to trim). */
bool fut__future_cache_trim(void);

#endif
