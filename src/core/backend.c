/* SPDX-License-Identifier: MIT */
/* The hook table of core/backend.h. */
#include "core/backend.h"
#include "core/bytes_shared.h"

static const struct fut_backend_hooks hooks = {
    .size = sizeof hooks,
    .future_finish = fut__future_finish,
    .task_call = fut__task_call,
    .map_chunk = fut__map_run_chunk,
    .executor_init = fut__executor_init,
    .bytes_share_large = fut__bytes_share_large,
    .bytes_new_shared = fut__bytes_new_shared,
    .bytes_fd = fut__bytes_fd,
    .bytes_release_fd = fut__bytes_release_fd,
    .bytes_from_fd = fut__bytes_from_fd,
    .bytes_spare_take = fut__bytes_spare_take,
    .bytes_spare_add = fut__bytes_spare_add,
    .bytes_shared_trim = fut__bytes_shared_trim,
    .bytes_claim = fut__bytes_claim,
    .arg_copy_new = fut__arg_copy_new,
    .arg_copy_fd = fut__arg_copy_fd,
    .arg_copy_free = fut__arg_copy_free,
};

const struct fut_backend_hooks *fut_backend_hooks(void)
{
    return &hooks;
}
