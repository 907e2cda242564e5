/* SPDX-License-Identifier: MIT */
/* fut__ctx_make for the assembly switches: lays out the frame fut__ctx_switch pops. */
#include <stdint.h>
#include <string.h>

#include "task/switch.h"

void fut__ctx_start(void);

#if defined(__x86_64__)

/* Frame, from the stack pointer up (see switch_x86_64.S). */
struct start_frame {
    uint32_t mxcsr;
    uint16_t x87_cw, pad;
    void *r15, *r14, *r13, *r12, *rbx, *rbp;
    void (*ret)(void);
};

void fut__ctx_make(struct fut_ctx *ctx, void *lo, size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    struct start_frame *fr = (struct start_frame *)(top - sizeof *fr);
    memset(fr, 0, sizeof *fr);
    /* the new task starts with the creator's floating-point modes */
    __asm__ volatile("stmxcsr %0" : "=m"(fr->mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fr->x87_cw));
    fr->r13 = (void *)entry;
    fr->r12 = arg;
    fr->ret = fut__ctx_start;
    ctx->sp = fr;  /* 64 bytes below a 16-byte boundary: the return lands aligned */
}

#elif defined(__aarch64__)

struct start_frame {
    void *x19, *x20, *x21_x28[8], *x29, *x30;
    double d8_d15[8];
    uint64_t fpcr, pad;
};

void fut__ctx_make(struct fut_ctx *ctx, void *lo, size_t size, void (*entry)(void *), void *arg)
{
    _Static_assert(sizeof(struct start_frame) == 176, "the frame of switch_aarch64.S");
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    struct start_frame *fr = (struct start_frame *)(top - sizeof *fr);
    memset(fr, 0, sizeof *fr);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fr->fpcr = fpcr;
    fr->x19 = (void *)entry;
    fr->x20 = arg;
    fr->x30 = (void *)fut__ctx_start;
    ctx->sp = fr;
}

#else
#error "no assembly context switch for this CPU: configure --with-task-switch=ucontext"
#endif
