// SPDX-License-Identifier: GPL-2.0
/*
 * Named vCPU registers for KVM_{GET,SET}_ONE_REG. Every id is built from the
 * uapi macros: system registers from their (op0, op1, CRn, CRm, op2)
 * encoding, core registers from offsetof() into struct kvm_regs, so no raw
 * register number appears anywhere in the tests.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <linux/kvm.h>

namespace kvmt::reg
{

struct Reg {
	uint64_t id;
	std::string_view name;
};

constexpr uint64_t sysreg_id(unsigned int op0, unsigned int op1, unsigned int crn, unsigned int crm,
			     unsigned int op2)
{
	return ARM64_SYS_REG(uint64_t{op0}, uint64_t{op1}, uint64_t{crn}, uint64_t{crm},
			     uint64_t{op2});
}

/* index is KVM_REG_ARM_CORE_REG(), i.e. the offset in struct kvm_regs in u32 units. */
constexpr uint64_t core_reg_id(uint64_t index)
{
	return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | index;
}

constexpr unsigned int NUM_GPRS = 31;

constexpr std::array<std::string_view, NUM_GPRS> gpr_names = {
	"x0",  "x1",  "x2",  "x3",  "x4",  "x5",  "x6",	 "x7",	"x8",  "x9",  "x10",
	"x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21",
	"x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30",
};

constexpr Reg x(unsigned int n)
{
	return {core_reg_id(KVM_REG_ARM_CORE_REG(regs.regs[0]) +
			    n * (sizeof(__u64) / sizeof(__u32))),
		gpr_names[n]};
}

/* Core registers. SP is SP_EL0; the guest runs on SP_EL1. */
constexpr Reg SP{core_reg_id(KVM_REG_ARM_CORE_REG(regs.sp)), "sp"};
constexpr Reg PC{core_reg_id(KVM_REG_ARM_CORE_REG(regs.pc)), "pc"};
constexpr Reg PSTATE{core_reg_id(KVM_REG_ARM_CORE_REG(regs.pstate)), "pstate"};
constexpr Reg SP_EL1{core_reg_id(KVM_REG_ARM_CORE_REG(sp_el1)), "SP_EL1"};
constexpr Reg ELR_EL1{core_reg_id(KVM_REG_ARM_CORE_REG(elr_el1)), "ELR_EL1"};
constexpr Reg SPSR_EL1{core_reg_id(KVM_REG_ARM_CORE_REG(spsr[KVM_SPSR_EL1])), "SPSR_EL1"};

/* System registers. */
constexpr Reg MIDR_EL1{sysreg_id(3, 0, 0, 0, 0), "MIDR_EL1"};
constexpr Reg MPIDR_EL1{sysreg_id(3, 0, 0, 0, 5), "MPIDR_EL1"};
constexpr Reg ID_AA64PFR0_EL1{sysreg_id(3, 0, 0, 4, 0), "ID_AA64PFR0_EL1"};
constexpr Reg ID_AA64PFR1_EL1{sysreg_id(3, 0, 0, 4, 1), "ID_AA64PFR1_EL1"};
constexpr Reg ID_AA64MMFR0_EL1{sysreg_id(3, 0, 0, 7, 0), "ID_AA64MMFR0_EL1"};
constexpr Reg SCTLR_EL1{sysreg_id(3, 0, 1, 0, 0), "SCTLR_EL1"};
constexpr Reg CPACR_EL1{sysreg_id(3, 0, 1, 0, 2), "CPACR_EL1"};
constexpr Reg RGSR_EL1{sysreg_id(3, 0, 1, 0, 5), "RGSR_EL1"};
constexpr Reg GCR_EL1{sysreg_id(3, 0, 1, 0, 6), "GCR_EL1"};
constexpr Reg TTBR0_EL1{sysreg_id(3, 0, 2, 0, 0), "TTBR0_EL1"};
constexpr Reg TTBR1_EL1{sysreg_id(3, 0, 2, 0, 1), "TTBR1_EL1"};
constexpr Reg TCR_EL1{sysreg_id(3, 0, 2, 0, 2), "TCR_EL1"};
constexpr Reg AFSR0_EL1{sysreg_id(3, 0, 5, 1, 0), "AFSR0_EL1"};
constexpr Reg ESR_EL1{sysreg_id(3, 0, 5, 2, 0), "ESR_EL1"};
constexpr Reg TFSR_EL1{sysreg_id(3, 0, 5, 6, 0), "TFSR_EL1"};
constexpr Reg TFSRE0_EL1{sysreg_id(3, 0, 5, 6, 1), "TFSRE0_EL1"};
constexpr Reg FAR_EL1{sysreg_id(3, 0, 6, 0, 0), "FAR_EL1"};
constexpr Reg PAR_EL1{sysreg_id(3, 0, 7, 4, 0), "PAR_EL1"};
constexpr Reg MAIR_EL1{sysreg_id(3, 0, 10, 2, 0), "MAIR_EL1"};
constexpr Reg AMAIR_EL1{sysreg_id(3, 0, 10, 3, 0), "AMAIR_EL1"};
constexpr Reg VBAR_EL1{sysreg_id(3, 0, 12, 0, 0), "VBAR_EL1"};
constexpr Reg CONTEXTIDR_EL1{sysreg_id(3, 0, 13, 0, 1), "CONTEXTIDR_EL1"};
constexpr Reg TPIDR_EL1{sysreg_id(3, 0, 13, 0, 4), "TPIDR_EL1"};
constexpr Reg CNTKCTL_EL1{sysreg_id(3, 0, 14, 1, 0), "CNTKCTL_EL1"};
constexpr Reg TPIDR_EL0{sysreg_id(3, 3, 13, 0, 2), "TPIDR_EL0"};

/*
 * In the IMPLEMENTATION DEFINED encoding space (CRn == 15) that KVM does not
 * expose, so ONE_REG on it must fail.
 */
constexpr Reg NONEXISTENT_SYSREG{sysreg_id(3, 0, 15, 15, 7), "S3_0_C15_C15_7"};

constexpr Reg named_regs[] = {
	SP,	   PC,	      PSTATE,	       SP_EL1,		ELR_EL1,	  SPSR_EL1,
	MIDR_EL1,  MPIDR_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, ID_AA64MMFR0_EL1, SCTLR_EL1,
	CPACR_EL1, RGSR_EL1,  GCR_EL1,	       TTBR0_EL1,	TTBR1_EL1,	  TCR_EL1,
	AFSR0_EL1, ESR_EL1,   TFSR_EL1,	       TFSRE0_EL1,	FAR_EL1,	  PAR_EL1,
	MAIR_EL1,  AMAIR_EL1, VBAR_EL1,	       CONTEXTIDR_EL1,	TPIDR_EL1,	  CNTKCTL_EL1,
	TPIDR_EL0,
};

/* Looks up "x0".."x30", core register names and the system registers above. */
constexpr std::optional<Reg> find(std::string_view name)
{
	for (unsigned int n = 0; n < NUM_GPRS; n++)
		if (gpr_names[n] == name)
			return x(n);
	for (const Reg &r : named_regs)
		if (r.name == name)
			return r;
	return std::nullopt;
}

/* Name for an id from KVM_GET_REG_LIST: the table name, else its encoding. */
std::string name_of(uint64_t id);

} // namespace kvmt::reg
