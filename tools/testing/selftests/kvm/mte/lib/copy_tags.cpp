// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_ARM_MTE_COPY_TAGS wrappers, see copy_tags.hpp.
 */
#include "copy_tags.hpp"

#include <sys/ioctl.h>

#include "names.hpp"

namespace kvmt
{

namespace
{

std::string direction_name(uint64_t flags)
{
	switch (flags) {
	case KVM_ARM_TAGS_TO_GUEST:
		return "TO_GUEST";
	case KVM_ARM_TAGS_FROM_GUEST:
		return "FROM_GUEST";
	}
	return "flags " + hex(flags);
}

} // namespace

SysResult mte_copy_tags_raw(const Vm &vm, const kvm_arm_copy_mte_tags &args)
{
	const std::string op = "KVM_ARM_MTE_COPY_TAGS(" + direction_name(args.flags) + ", ipa " +
			       hex(args.guest_ipa) + ", length " + hex(args.length) + ")";

	return make_result(op, ioctl(vm.fd(), KVM_ARM_MTE_COPY_TAGS, &args));
}

SysResult mte_copy_tags(const Vm &vm, uint64_t ipa, uint64_t length, void *buf, uint64_t flags)
{
	kvm_arm_copy_mte_tags args = {};

	args.guest_ipa = ipa;
	args.length = length;
	args.addr = buf;
	args.flags = flags;
	return mte_copy_tags_raw(vm, args);
}

SysResult mte_copy_tags_at(const Vm &vm, const void *arg)
{
	return make_result("KVM_ARM_MTE_COPY_TAGS(argument at " +
				   hex(reinterpret_cast<uint64_t>(arg)) + ")",
			   ioctl(vm.fd(), KVM_ARM_MTE_COPY_TAGS, arg));
}

} // namespace kvmt
