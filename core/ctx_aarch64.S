/*
 * Context switch for AArch64 (AAPCS64).
 *
 * void bl__ctx_switch(void **save_sp, void *load_sp)
 *   Saves x19-x30 (x29 frame pointer, x30 return address), d8-d15 and FPCR
 *   on the current stack, stores sp in *save_sp, switches to load_sp and
 *   restores the same frame.
 *
 * Frame (176 bytes, 16-byte aligned):
 *   [0] x19 x20  [16] x21 x22  [32] x23 x24  [48] x25 x26  [64] x27 x28
 *   [80] x29 x30  [96] d8 d9  [112] d10 d11  [128] d12 d13  [144] d14 d15
 *   [160] FPCR  [168] padding
 */
#if defined(__aarch64__)
	.text
	.globl	bl__ctx_switch
	.hidden	bl__ctx_switch
	.type	bl__ctx_switch, %function
	.p2align 4
bl__ctx_switch:
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
	mov	sp, x1
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
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	ret
	.size	bl__ctx_switch, .-bl__ctx_switch

/* First instructions of a new context: x19 = entry function, x20 = argument. */
	.globl	bl__ctx_start
	.hidden	bl__ctx_start
	.type	bl__ctx_start, %function
	.p2align 4
bl__ctx_start:
	mov	x29, xzr
	mov	x0, x20
	blr	x19
	brk	#0
	.size	bl__ctx_start, .-bl__ctx_start

#endif

/* Every object, even one assembled empty on the other architecture, says
 * its code needs no executable stack. */
	.section .note.GNU-stack,"",%progbits
