/* Internal: recycling future structs, so that submitting a task does not call malloc. */
#ifndef FUT_FUTURE_CACHE_H
#define FUT_FUTURE_CACHE_H

#include "core/future.h"

/* A recycled, uninitialised future, or NULL (then the caller mallocs one). */
fut_future *fut__future_cache_get(void);
/* Takes a dead future (its fields already released). */
void fut__future_cache_put(fut_future *f);
/* Gives the memory of idle cached futures back to the system (executor freed). */
void fut__future_cache_trim(void);

#endif
