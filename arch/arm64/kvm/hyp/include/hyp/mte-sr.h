/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Switching the MTE registers between the host and a guest with MTE.
 *
 * GCR_EL1, RGSR_EL1 and TFSRE0_EL1 have no EL2 counterpart, so with VHE the
 * host kernel and its user space use the very registers the guest uses, and
 * without VHE the host kernel runs at EL1 and also owns TFSR_EL1. They are
 * switched on every guest entry and exit: the host's user space depends on
 * its exclusion mask and fault state the moment KVM_RUN returns or the vCPU
 * thread is preempted, and a tag check fault must be charged to whoever
 * caused it.
 */

#ifndef __ARM64_KVM_HYP_MTE_SR_H__
#define __ARM64_KVM_HYP_MTE_SR_H__

#include <linux/kvm_host.h>

#include <asm/kvm_arm.h>
#include <asm/kvm_hyp.h>
#include <asm/sysreg.h>

/* HCR_EL2.ATA is only ever set for the vCPUs of a VM with MTE. */
static inline bool __vcpu_has_mte(struct kvm_vcpu *vcpu)
{
	return vcpu->arch.hcr_el2 & HCR_ATA;
}

static inline void __mte_save_regs(struct kvm_cpu_context *ctxt, bool tfsr)
{
	ctxt_sys_reg(ctxt, GCR_EL1) = read_sysreg_s(SYS_GCR_EL1);
	ctxt_sys_reg(ctxt, RGSR_EL1) = read_sysreg_s(SYS_RGSR_EL1);
	ctxt_sys_reg(ctxt, TFSRE0_EL1) = read_sysreg_s(SYS_TFSRE0_EL1);
	if (tfsr)
		ctxt_sys_reg(ctxt, TFSR_EL1) = read_sysreg_el1(SYS_TFSR);
}

static inline void __mte_restore_regs(struct kvm_cpu_context *ctxt, bool tfsr)
{
	write_sysreg_s(ctxt_sys_reg(ctxt, GCR_EL1), SYS_GCR_EL1);
	write_sysreg_s(ctxt_sys_reg(ctxt, RGSR_EL1), SYS_RGSR_EL1);
	write_sysreg_s(ctxt_sys_reg(ctxt, TFSRE0_EL1), SYS_TFSRE0_EL1);
	if (tfsr)
		write_sysreg_el1(ctxt_sys_reg(ctxt, TFSR_EL1), SYS_TFSR);
}

/*
 * @host_tfsr: the host owns TFSR_EL1 (nVHE). With VHE the host's faults go
 * to TFSR_EL2, and the guest's TFSR_EL1 is reached through TFSR_EL12.
 */
static inline void __mte_switch_to_guest(struct kvm_vcpu *vcpu,
					 struct kvm_cpu_context *host_ctxt,
					 bool host_tfsr)
{
	if (!__vcpu_has_mte(vcpu))
		return;

	/* Record the host's pending asynchronous tag check faults first. */
	dsb(nsh);
	isb();
	__mte_save_regs(host_ctxt, host_tfsr);
	__mte_restore_regs(&vcpu->arch.ctxt, true);
}

/*
 * SCTLR_EL2.ITFSB has already synchronised the guest's asynchronous tag
 * check faults into its registers when it exited to EL2.
 */
static inline void __mte_switch_to_host(struct kvm_vcpu *vcpu,
					struct kvm_cpu_context *host_ctxt,
					bool host_tfsr)
{
	if (!__vcpu_has_mte(vcpu))
		return;

	__mte_save_regs(&vcpu->arch.ctxt, true);
	__mte_restore_regs(host_ctxt, host_tfsr);
}

#endif /* __ARM64_KVM_HYP_MTE_SR_H__ */
