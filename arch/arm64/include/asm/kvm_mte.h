/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Switching the MTE registers that the host and a guest with MTE both use
 * directly, on every guest entry and exit.
 *
 * GCR_EL1 and RGSR_EL1 have no EL2 counterpart: the host (its user space
 * with VHE, its kernel and user space without) uses the very registers that
 * the guest uses. TFSR_EL1 and TFSRE0_EL1 are switched with the rest of the
 * guest's EL1 state instead (see hyp/include/hyp/sysreg-sr.h).
 *
 * The guest's registers are loaded only for vCPUs that run with
 * HCR_EL2.ATA, which KVM sets exactly for the vCPUs of a VM with MTE.
 */
#ifndef __ASM_KVM_MTE_H
#define __ASM_KVM_MTE_H

#ifdef __ASSEMBLY__

#include <asm/sysreg.h>

#ifdef CONFIG_ARM64_MTE

/*
 * mte_switch_to_guest ctxt_guest, ctxt_host, tmp
 * Save the host's GCR_EL1 and RGSR_EL1 in @ctxt_host, load the guest's
 * from @ctxt_guest. Expects HCR_EL2 to hold the guest's value.
 */
.macro mte_switch_to_guest ctxt_guest, ctxt_host, tmp
alternative_if_not ARM64_MTE
	b	1f
alternative_else_nop_endif
	mrs	\tmp, hcr_el2
	tbz	\tmp, #HCR_ATA_SHIFT, 1f

	mrs_s	\tmp, SYS_GCR_EL1
	str	\tmp, [\ctxt_host, #CPU_GCR_EL1]
	mrs_s	\tmp, SYS_RGSR_EL1
	str	\tmp, [\ctxt_host, #CPU_RGSR_EL1]

	ldr	\tmp, [\ctxt_guest, #CPU_GCR_EL1]
	msr_s	SYS_GCR_EL1, \tmp
	ldr	\tmp, [\ctxt_guest, #CPU_RGSR_EL1]
	msr_s	SYS_RGSR_EL1, \tmp
1:
.endm

/*
 * mte_switch_to_hyp ctxt_guest, ctxt_host, tmp
 * The reverse, on exit, while HCR_EL2 still holds the guest's value. The
 * ISB makes the host's values apply to its next IRG and tag checks.
 */
.macro mte_switch_to_hyp ctxt_guest, ctxt_host, tmp
alternative_if_not ARM64_MTE
	b	1f
alternative_else_nop_endif
	mrs	\tmp, hcr_el2
	tbz	\tmp, #HCR_ATA_SHIFT, 1f

	mrs_s	\tmp, SYS_GCR_EL1
	str	\tmp, [\ctxt_guest, #CPU_GCR_EL1]
	mrs_s	\tmp, SYS_RGSR_EL1
	str	\tmp, [\ctxt_guest, #CPU_RGSR_EL1]

	ldr	\tmp, [\ctxt_host, #CPU_GCR_EL1]
	msr_s	SYS_GCR_EL1, \tmp
	ldr	\tmp, [\ctxt_host, #CPU_RGSR_EL1]
	msr_s	SYS_RGSR_EL1, \tmp
	isb
1:
.endm

#else /* !CONFIG_ARM64_MTE */

.macro mte_switch_to_guest ctxt_guest, ctxt_host, tmp
.endm

.macro mte_switch_to_hyp ctxt_guest, ctxt_host, tmp
.endm

#endif /* CONFIG_ARM64_MTE */
#endif /* __ASSEMBLY__ */
#endif /* __ASM_KVM_MTE_H */
