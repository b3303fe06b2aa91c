/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vCPU entry trampoline. The host starts every vCPU here at EL1h with
 * x0 = entry function and x1..x5 = its arguments, so that returning from the
 * test's guest function ends in a DONE ucall instead of running off the end.
 */
	.section .text.guest_entry, "ax"
	.global guest_entry
	.type guest_entry, %function
guest_entry:
	/*
	 * Landing pad. When a vCPU is restarted after a ucall exit, the next
	 * KVM_RUN first completes that MMIO access by skipping one
	 * instruction at the (new) PC, so this may or may not execute.
	 */
	nop
	/* Terminate frame-pointer chains for anyone unwinding guest stacks. */
	mov	x29, xzr
	mov	x30, xzr
	mov	x16, x0
	mov	x0, x1
	mov	x1, x2
	mov	x2, x3
	mov	x3, x4
	mov	x4, x5
	blr	x16
	bl	guest_done
	.size guest_entry, . - guest_entry

	.section .note.GNU-stack, "", %progbits
