/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <string.h>

#include "futures.h"

/*
 * strerror's text for an errno value, without strerror's shared buffer: glibc's
 * strerrordesc_np returns a static string (NULL for an unknown value), so every call is
 * thread-safe. Elsewhere (older glibc, other C libraries) strerror is the fallback.
 */
static const char *errno_text(int value)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *s = strerrordesc_np(value);
    return s ? s : "unknown error";
#else
    return strerror(value);
#endif
}

const char *fut_strerror(int code)
{
    switch (code) {
    case FUT_OK:         return "success";
    case FUT_EINVAL:     return "invalid argument";
    case FUT_ENOMEM:     return "out of memory";
    case FUT_ETIMEDOUT:  return "timed out";
    case FUT_ECANCELLED: return "cancelled";
    case FUT_ESHUTDOWN:  return "executor is shut down";
    case FUT_EBROKEN:    return "executor is broken";
    case FUT_ESTATE:     return "invalid state for this operation";
    case FUT_ENOENT:     return "no such handle";
    default:             break;
    }
    /* Any other negative code is a negated errno; a positive code is a task's own,
     * errno-style by convention (fut_raise(EIO, ...)): both read as strerror would. */
    if (code == INT_MIN)
        return "unknown error";
    return errno_text(code < 0 ? -code : code);
}
