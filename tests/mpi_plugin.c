/* SPDX-License-Identifier: MIT */
/* A shared object that only the root of tests/test_mpi loads (dlopen): its functions cannot
 * run on worker ranks, which must say so. */
#include <stdint.h>

void *plugin_task(void *arg);

void *plugin_task(void *arg)
{
    return (void *)((intptr_t)arg + 100);
}
