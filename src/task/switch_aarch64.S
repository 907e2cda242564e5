/* SPDX-License-Identifier: MIT */
/*
 * fut__ctx_switch(struct fut_ctx *from, struct fut_ctx *to) for AArch64 (AAPCS64).
 *
 * Stores what a callee must preserve (x19-x30, d8-d15, FPCR) in a 176-byte frame, the
 * stack pointer in from->sp, then loads to->sp and restores the same from there. A new
 * context (fut__ctx_make) holds x19 = entry, x20 = arg, x29 = 0, x30 = fut__ctx_start,
 * which calls entry(arg).
 */
	.text
	.globl	fut__ctx_switch
	.hidden	fut__ctx_switch
	.type	fut__ctx_switch, %function
	.p2align 4
fut__ctx_switch:
	.cfi_startproc
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.cfi_endproc
	.size	fut__ctx_switch, .-fut__ctx_switch

	.globl	fut__ctx_start
	.hidden	fut__ctx_start
	.type	fut__ctx_start, %function
	.p2align 4
fut__ctx_start:
	.cfi_startproc
	.cfi_undefined x30		/* the first frame of a task's stack: unwinding ends here */
	mov	x0, x20
	blr	x19
	brk	#0			/* entry never returns */
	.cfi_endproc
	.size	fut__ctx_start, .-fut__ctx_start

	.section .note.GNU-stack, "", %progbits
