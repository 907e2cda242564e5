/* SPDX-License-Identifier: MIT */
/* The hook table of core/backend.h. */
#include "core/backend.h"

static const struct fut_backend_hooks hooks = {
    .size = sizeof hooks,
    .future_finish = fut__future_finish,
    .task_call = fut__task_call,
    .map_chunk = fut__map_run_chunk,
    .executor_init = fut__executor_init,
};

const struct fut_backend_hooks *fut_backend_hooks(void)
{
    return &hooks;
}
