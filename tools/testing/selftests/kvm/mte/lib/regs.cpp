// SPDX-License-Identifier: GPL-2.0
/*
 * Printable names for register ids, for messages about KVM_GET_REG_LIST.
 */
#include "regs.hpp"

#include <cstdio>

namespace kvmt::reg
{

namespace
{

unsigned int sysreg_field(uint64_t id, uint64_t mask, unsigned int shift)
{
	return static_cast<unsigned int>((id & mask) >> shift);
}

} // namespace

std::string name_of(uint64_t id)
{
	char buf[64];

	for (unsigned int n = 0; n < NUM_GPRS; n++)
		if (x(n).id == id)
			return std::string(x(n).name);
	for (const Reg &r : named_regs)
		if (r.id == id)
			return std::string(r.name);

	if ((id & KVM_REG_ARM_COPROC_MASK) == KVM_REG_ARM64_SYSREG) {
		std::snprintf(buf, sizeof(buf), "S%u_%u_C%u_C%u_%u",
			      sysreg_field(id, KVM_REG_ARM64_SYSREG_OP0_MASK,
					   KVM_REG_ARM64_SYSREG_OP0_SHIFT),
			      sysreg_field(id, KVM_REG_ARM64_SYSREG_OP1_MASK,
					   KVM_REG_ARM64_SYSREG_OP1_SHIFT),
			      sysreg_field(id, KVM_REG_ARM64_SYSREG_CRN_MASK,
					   KVM_REG_ARM64_SYSREG_CRN_SHIFT),
			      sysreg_field(id, KVM_REG_ARM64_SYSREG_CRM_MASK,
					   KVM_REG_ARM64_SYSREG_CRM_SHIFT),
			      sysreg_field(id, KVM_REG_ARM64_SYSREG_OP2_MASK,
					   KVM_REG_ARM64_SYSREG_OP2_SHIFT));
		return buf;
	}
	std::snprintf(buf, sizeof(buf), "reg 0x%llx", static_cast<unsigned long long>(id));
	return buf;
}

} // namespace kvmt::reg
