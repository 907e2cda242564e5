/* SPDX-License-Identifier: MIT */
/*
 * fut__ctx_switch(struct fut_ctx *from, struct fut_ctx *to) for x86-64 (System V ABI).
 *
 * Pushes what a callee must preserve (rbp, rbx, r12-r15, MXCSR and the x87 control word),
 * stores the stack pointer in from->sp, loads to->sp and pops the same from there. A new
 * context (fut__ctx_make) holds, from its stack pointer up: the control words, r15, r14,
 * r13 = entry, r12 = arg, rbx, rbp, and the return address fut__ctx_start, which calls
 * entry(arg) with the stack 16-byte aligned.
 */
	.text
	.globl	fut__ctx_switch
	.hidden	fut__ctx_switch
	.type	fut__ctx_switch, @function
	.p2align 4
fut__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	fut__ctx_switch, .-fut__ctx_switch

	.globl	fut__ctx_start
	.hidden	fut__ctx_start
	.type	fut__ctx_start, @function
	.p2align 4
fut__ctx_start:
	.cfi_startproc
	.cfi_undefined rip		/* the first frame of a task's stack: unwinding ends here */
	movq	%r12, %rdi
	callq	*%r13
	ud2				/* entry never returns */
	.cfi_endproc
	.size	fut__ctx_start, .-fut__ctx_start

	.section .note.GNU-stack, "", @progbits
