/* SPDX-License-Identifier: MIT */
/*
 * Internal: switching stacks. A context is what a suspended stack needs to resume: with
 * the assembly routines (switch_x86_64.S, switch_aarch64.S) its stack pointer alone, the
 * callee-saved registers and the FPU control words (x87 CW and MXCSR; FPCR) being pushed
 * on the stack it leaves; with the portable fallback (switch_ucontext.c) a ucontext_t.
 * configure picks one (--with-task-switch=asm|ucontext; asm on x86-64 and AArch64).
 */
#ifndef FUT_TASK_SWITCH_H
#define FUT_TASK_SWITCH_H

#include <stddef.h>

#include <config.h>  /* configure's choices (not a room) */

#ifdef FUT_TASK_SWITCH_UCONTEXT
#include <ucontext.h>
struct fut_ctx {
    ucontext_t uc;
};
#else
struct fut_ctx {
    void *sp;
};
#endif

/* Prepares `ctx` to run entry(arg) on the stack [lo, lo + size) when first switched to.
 * `entry` must never return: it ends by switching away for good. */
void fut__ctx_make(struct fut_ctx *ctx, void *lo, size_t size, void (*entry)(void *), void *arg);

/* Saves the running context in `from` and resumes `to`; returns when something switches
 * back to `from`. */
void fut__ctx_switch(struct fut_ctx *from, struct fut_ctx *to);

#endif
