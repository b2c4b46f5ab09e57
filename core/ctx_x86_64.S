/*
 * Context switch for x86-64 System V.
 *
 * void bl__ctx_switch(void **save_sp, void *load_sp)
 *   Pushes the callee-saved registers, MXCSR and the x87 control word onto
 *   the current stack, stores the stack pointer in *save_sp, switches to
 *   load_sp and pops the same frame from there.  Everything else is
 *   caller-saved by the ABI (rax is scratch), so the C compiler has already
 *   spilled it.
 *
 * Frame, from the saved stack pointer upwards (64 bytes, 16-byte aligned):
 *   [0] MXCSR (4 bytes)  [4] x87 control word (2 bytes)
 *   [8] r15  [16] r14  [24] r13  [32] r12  [40] rbx  [48] rbp  [56] return address
 * core/ctx.c builds the same frame by hand for a new context, with the
 * return address pointing at bl__ctx_start.
 */
#if defined(__x86_64__)
	.text
	.globl	bl__ctx_switch
	.hidden	bl__ctx_switch
	.type	bl__ctx_switch, @function
	.p2align 4
bl__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	pushq	$0		/* zeroes the slot's two spare bytes for the compare below */
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	/* ldmxcsr and fldcw are slow (microcoded, and they serialise parts of
	 * the FP pipeline); skip them when the incoming context saved the
	 * values already in force, which is the usual case.  The values in
	 * force are read back from the two stores just made, each load the
	 * width of its store, so that both are forwarded from the store queue:
	 * one 8-byte load over the slot, three stores, cannot be, and waited
	 * for all three to reach the cache (about 0.9 ns a yield here). */
	movl	(%rsp), %eax
	movzwl	4(%rsp), %edx
	shlq	$32, %rdx
	orq	%rdx, %rax
	movq	%rsi, %rsp
	cmpq	(%rsp), %rax
	je	1f
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
1:
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	bl__ctx_switch, .-bl__ctx_switch

/*
 * First instructions of a new context: r12 holds the entry function and r13
 * its argument (placed there by bl__ctx_init).  The stack is 16-byte aligned
 * here, so the call leaves the callee with the alignment the ABI promises.
 * The entry function never returns; ud2 catches a bug that lets it.
 */
	.globl	bl__ctx_start
	.hidden	bl__ctx_start
	.type	bl__ctx_start, @function
	.p2align 4
bl__ctx_start:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	movq	%r13, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	bl__ctx_start, .-bl__ctx_start

#endif

/* Every object, even one assembled empty on the other architecture, says
 * its code needs no executable stack. */
	.section .note.GNU-stack,"",%progbits
