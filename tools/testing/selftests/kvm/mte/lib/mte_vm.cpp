// SPDX-License-Identifier: GPL-2.0
/*
 * MTE VMs for the tests, behind mte_vm.hpp.
 */
#include "mte_vm.hpp"

#include "host_mte.hpp"
#include "names.hpp"
#include "test.hpp"

namespace kvmt
{

std::string no_guest_mte_reason()
{
	return kvm_cap_name(KVM_CAP_ARM_MTE) + " not supported: the host has no MTE (QEMU mte=off)";
}

void require_guest_mte(const Kvm &kvm, std::source_location loc)
{
	const int offered = kvm.check_extension(KVM_CAP_ARM_MTE);

	if (!host_mte::supported()) {
		if (offered > 0)
			ktest::fail(loc, "KVM offers KVM_CAP_ARM_MTE on a host without MTE");
		ktest::skip(no_guest_mte_reason());
	}
	if (offered != 1)
		ktest::fail(loc, "the host has MTE (HWCAP2_MTE) but KVM does not offer "
				 "KVM_CAP_ARM_MTE: " +
					 std::to_string(offered));
}

Kvm mte_kvm()
{
	Kvm kvm;

	require_guest_mte(kvm);
	return kvm;
}

Vm mte_vm(Kvm &kvm, const VmOptions &opts)
{
	Vm vm(kvm, opts);

	ASSERT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallSucceeds());
	return vm;
}

RegionSpec tagged_region(uint32_t slot, uint64_t gpa, uint64_t size, Backing backing,
			 bool host_prot_mte, bool thp)
{
	RegionSpec spec;

	spec.slot = slot;
	spec.gpa = gpa;
	spec.size = size;
	spec.backing = backing;
	spec.host_prot_mte = host_prot_mte;
	spec.thp = thp;
	spec.stage1.attr = Stage1::tagged;
	return spec;
}

} // namespace kvmt
