#include <limits.h>
#include <string.h>

#include "futures.h"

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
    /* Any other negative code is a negated errno; positive codes belong to tasks. */
    if (code < 0 && code != INT_MIN)  /* -INT_MIN does not exist */
        return strerror(-code);
    if (code < 0)
        return "unknown error";
    return "task-defined error";
}
