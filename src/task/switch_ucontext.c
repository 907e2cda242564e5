/* SPDX-License-Identifier: MIT */
/*
 * The portable context switch: makecontext/swapcontext. Slower than the assembly
 * routines (swapcontext saves the signal mask, a system call each way), for CPUs that
 * have none.
 */
#include <stdint.h>
#include <stdlib.h>

#include "task/switch.h"

/* makecontext passes int arguments only: the pointers travel in two halves. */
static void start(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi, unsigned arg_lo)
{
    void (*entry)(void *) =
        (void (*)(void *))(((uintptr_t)entry_hi << 16 << 16) | (uintptr_t)entry_lo);
    void *arg = (void *)(((uintptr_t)arg_hi << 16 << 16) | (uintptr_t)arg_lo);
    entry(arg);
    abort();  /* entry never returns */
}

void fut__ctx_make(struct fut_ctx *ctx, void *lo, size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))start, 4, (unsigned)(e >> 16 >> 16), (unsigned)e,
                (unsigned)(a >> 16 >> 16), (unsigned)a);
}

void fut__ctx_switch(struct fut_ctx *from, struct fut_ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}
