/* SPDX-License-Identifier: GPL-2.0 */
/*
 * EL1 exception vectors. Every entry saves the full GPR state plus the
 * exception syndrome into a guest_exception_frame and hands it to
 * guest_exception_dispatch(). A handler may edit the frame (typically ELR to
 * skip the faulting instruction); the possibly modified state is restored.
 */
#include "frame.h"

	.section .text.guest_vectors, "ax"
	.balign 2048
	.global guest_vectors
guest_vectors:
	.irp idx, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	.balign 0x80
	sub	sp, sp, #GUEST_FRAME_SIZE
	stp	x0, x1, [sp, #GUEST_FRAME_X(0)]
	mov	x1, #\idx
	b	guest_vector_common
	.endr

guest_vector_common:
	stp	x2, x3, [sp, #GUEST_FRAME_X(2)]
	stp	x4, x5, [sp, #GUEST_FRAME_X(4)]
	stp	x6, x7, [sp, #GUEST_FRAME_X(6)]
	stp	x8, x9, [sp, #GUEST_FRAME_X(8)]
	stp	x10, x11, [sp, #GUEST_FRAME_X(10)]
	stp	x12, x13, [sp, #GUEST_FRAME_X(12)]
	stp	x14, x15, [sp, #GUEST_FRAME_X(14)]
	stp	x16, x17, [sp, #GUEST_FRAME_X(16)]
	stp	x18, x19, [sp, #GUEST_FRAME_X(18)]
	stp	x20, x21, [sp, #GUEST_FRAME_X(20)]
	stp	x22, x23, [sp, #GUEST_FRAME_X(22)]
	stp	x24, x25, [sp, #GUEST_FRAME_X(24)]
	stp	x26, x27, [sp, #GUEST_FRAME_X(26)]
	stp	x28, x29, [sp, #GUEST_FRAME_X(28)]
	str	x30, [sp, #GUEST_FRAME_X(30)]
	add	x2, sp, #GUEST_FRAME_SIZE
	str	x2, [sp, #GUEST_FRAME_SP]
	mrs	x2, elr_el1
	mrs	x3, spsr_el1
	stp	x2, x3, [sp, #GUEST_FRAME_ELR]
	mrs	x2, esr_el1
	mrs	x3, far_el1
	stp	x2, x3, [sp, #GUEST_FRAME_ESR]

	mov	x0, sp
	bl	guest_exception_dispatch

	ldp	x2, x3, [sp, #GUEST_FRAME_ELR]
	msr	elr_el1, x2
	msr	spsr_el1, x3
	ldp	x0, x1, [sp, #GUEST_FRAME_X(0)]
	ldp	x2, x3, [sp, #GUEST_FRAME_X(2)]
	ldp	x4, x5, [sp, #GUEST_FRAME_X(4)]
	ldp	x6, x7, [sp, #GUEST_FRAME_X(6)]
	ldp	x8, x9, [sp, #GUEST_FRAME_X(8)]
	ldp	x10, x11, [sp, #GUEST_FRAME_X(10)]
	ldp	x12, x13, [sp, #GUEST_FRAME_X(12)]
	ldp	x14, x15, [sp, #GUEST_FRAME_X(14)]
	ldp	x16, x17, [sp, #GUEST_FRAME_X(16)]
	ldp	x18, x19, [sp, #GUEST_FRAME_X(18)]
	ldp	x20, x21, [sp, #GUEST_FRAME_X(20)]
	ldp	x22, x23, [sp, #GUEST_FRAME_X(22)]
	ldp	x24, x25, [sp, #GUEST_FRAME_X(24)]
	ldp	x26, x27, [sp, #GUEST_FRAME_X(26)]
	ldp	x28, x29, [sp, #GUEST_FRAME_X(28)]
	ldr	x30, [sp, #GUEST_FRAME_X(30)]
	add	sp, sp, #GUEST_FRAME_SIZE
	eret

	.section .note.GNU-stack, "", %progbits
