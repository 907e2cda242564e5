/* SPDX-License-Identifier: MIT */
/* fut_raise and the task runner: a thread-local context catches what the task raises. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/task_context.h"

/* initial-exec: coroutine tasks switch it on every stack switch (see task/) */
static _Thread_local struct fut_task_outcome *current_task __attribute__((tls_model("initial-exec")));

void fut_raise(int code, const char *fmt, ...)
{
    struct fut_task_outcome *out = current_task;
    if (!out)
        return;
    out->code = code ? code : FUT_EINVAL;
    free(out->message);
    out->message = NULL;
    if (!fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *message = NULL;
    if (vasprintf(&message, fmt, ap) >= 0)
        out->message = message;
    va_end(ap);
}

void fut__task_call(fut_fn fn, void *arg, struct fut_task_outcome *out)
{
    struct fut_task_outcome *outer = current_task;  /* a task may run a task (map chunks) */
    *out = (struct fut_task_outcome){ 0 };
    current_task = out;
    void *result = fn(arg);
    current_task = outer;
    if (out->code)
        return;
    out->result = result;
    out->result_is_bytes = fut__bytes_claim(result);
}

struct fut_task_outcome *fut__task_context_swap(struct fut_task_outcome *out)
{
    struct fut_task_outcome *previous = current_task;
    current_task = out;
    return previous;
}
