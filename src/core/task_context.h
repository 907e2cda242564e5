/* SPDX-License-Identifier: MIT */
/* Internal: running a task, catching fut_raise, recognising fut_bytes results. */
#ifndef FUT_TASK_H
#define FUT_TASK_H

#include <stdbool.h>
#include <stddef.h>

#include "futures.h"

struct fut_task_outcome {
    void *result;
    bool result_is_bytes;          /* result is a fut_bytes buffer now owned by the caller */
    int code;                      /* 0, or the code given to fut_raise */
    char *message;                 /* malloc'd, or NULL */
};

/* Run fn(arg) with fut_raise armed; fills out. */
void fut__task_call(fut_fn fn, void *arg, struct fut_task_outcome *out);

/* Makes `out` the outcome fut_raise writes to in this thread (NULL: none) and returns
 * the previous one: coroutine tasks (task/) switch it with their stacks. */
struct fut_task_outcome *fut__task_context_swap(struct fut_task_outcome *out);

/* bytes.c: if p is a live fut_bytes buffer nobody owns yet, take it (true). */
bool fut__bytes_claim(void *p);

#endif
