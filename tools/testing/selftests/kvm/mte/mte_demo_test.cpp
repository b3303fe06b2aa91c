// SPDX-License-Identifier: GPL-2.0
/*
 * A narrated walk through MTE for a KVM guest, from the VMM's side: the
 * guest tags memory and takes a tag check fault, the VMM saves the VM (RAM,
 * tags with KVM_ARM_MTE_COPY_TAGS, registers with ONE_REG) and restores it
 * into a fresh VM, where the guest finds every tag and the fault behaviour
 * intact. Every step is also asserted, so it doubles as an end-to-end test;
 * the test bed's main job shows its output.
 */
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "lib/arch.hpp"
#include "lib/copy_tags.hpp"
#include "lib/kvm.hpp"
#include "lib/mte_vm.hpp"
#include "lib/names.hpp"
#include "lib/test.hpp"
#include "lib/vcpu_state.hpp"
#include "mte_demo.hpp"

using namespace kvmt;

namespace
{

constexpr uint64_t GUEST_SCTLR = arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA |
				 arch::sctlr::TCF_SYNC << arch::sctlr::TCF_SHIFT;

template <typename... Parts> void narrate(const Parts &...parts)
{
	std::ostringstream os;

	(os << ... << parts);
	ktest::diag(os.str());
}

std::string describe_fault(uint64_t esr, uint64_t far)
{
	return "ESR " + hex(esr) + " (" + esr_class_name(esr) + ", DFSC " +
	       hex(esr & arch::esr::DFSC_MASK) + " = tag check fault), FAR " + hex(far);
}

Vm make_vm(Kvm &kvm)
{
	Vm vm = mte_vm(kvm);

	vm.add_region(tagged_region(DEMO_SLOT, DEMO_GPA, DEMO_SIZE));
	return vm;
}

/* The host's own copy of what the guest tagged, to compare with the ioctl's view. */
std::vector<uint8_t> expected_tags()
{
	std::vector<uint8_t> tags(DEMO_GRANULES);

	for (uint64_t i = 0; i < DEMO_GRANULES; i++)
		tags[i] = demo_tag(DEMO_GPA + i * arch::mte::GRANULE_SIZE);
	return tags;
}

} // namespace

/* An MTE guest keeps its tags and tag checking across save and restore into a new VM. */
TEST(demo, save_and_restore_an_mte_guest)
{
	Kvm kvm;

	require_guest_mte(kvm);
	narrate("1. VM A: KVM_CAP_ARM_MTE enabled before its vCPU, ", DEMO_PAGES,
		" pages of guest memory mapped Normal Tagged in the guest.");
	Vm a = make_vm(kvm);
	Vcpu &va = a.add_vcpu(0);

	va.start(guest_demo, DEMO_GPA, DEMO_SIZE);
	va.set_reg(reg::SCTLR_EL1, GUEST_SCTLR);
	va.expect_sync(DEMO_SYNC_SAVE_POINT);
	narrate("2. The guest gave each of the ", DEMO_GRANULES,
		" 16-byte granules its own tag (STG) and wrote data through matching pointers.");
	narrate("3. It read ", hex(DEMO_FAULT_ADDR), " through a pointer with the wrong tag: ",
		describe_fault(a.guest_var(&demo_fault_esr)[0], a.guest_var(&demo_fault_far)[0]));
	EXPECT_EQ(a.guest_var(&demo_fault_esr)[0] & arch::esr::DFSC_MASK,
		  arch::esr::DFSC_TAG_CHECK);
	EXPECT_EQ(arch::untagged(a.guest_var(&demo_fault_far)[0]), DEMO_FAULT_ADDR);

	complete_pending_mmio(va);
	std::vector<uint8_t> tags(DEMO_GRANULES, 0xff);
	ASSERT_THAT(mte_copy_tags(a, DEMO_GPA, DEMO_SIZE, tags.data(), KVM_ARM_TAGS_FROM_GUEST),
		    SyscallSucceedsWithValue(DEMO_SIZE));
	ASSERT_EQ(tags, expected_tags());
	const size_t nregs = va.get_reg_list().size();
	narrate("4. The VMM saves VM A: RAM with memcpy, ", tags.size(),
		" tags with KVM_ARM_MTE_COPY_TAGS(FROM_GUEST) (first page: ", +tags[0], " ",
		+tags[1], " ", +tags[2], " ", +tags[3], " ...), and ", nregs,
		" registers with KVM_GET_ONE_REG, GCR_EL1 and TFSR_EL1 among them.");

	Vm b = make_vm(kvm);
	Vcpu &vb = b.add_vcpu(0);

	for (uint32_t slot : {GUEST_RAM_SLOT, DEMO_SLOT})
		std::memcpy(b.region(slot).host(), a.region(slot).host(), a.region(slot).size());
	ASSERT_THAT(mte_copy_tags(b, DEMO_GPA, DEMO_SIZE, tags.data(), KVM_ARM_TAGS_TO_GUEST),
		    SyscallSucceedsWithValue(DEMO_SIZE));
	copy_vcpu_registers(va, vb);
	/* The source must not keep the pages alive: VM B stands on its own. */
	a = Vm(kvm);
	narrate("5. VM A is destroyed. A fresh VM B gets the RAM, the tags with",
		" KVM_ARM_MTE_COPY_TAGS(TO_GUEST), and the registers with KVM_SET_ONE_REG.");

	vb.run_until_done();
	EXPECT_EQ(b.guest_var(&demo_granules_checked), DEMO_GRANULES);
	narrate("6. The guest resumed in VM B after its save point: all ",
		b.guest_var(&demo_granules_checked),
		" granules have their tags (LDG) and data, and the wrong tag still faults: ",
		describe_fault(b.guest_var(&demo_fault_esr)[1], b.guest_var(&demo_fault_far)[1]));
	EXPECT_EQ(b.guest_var(&demo_fault_esr)[1], b.guest_var(&demo_fault_esr)[0]);
	EXPECT_EQ(b.guest_var(&demo_fault_far)[1], b.guest_var(&demo_fault_far)[0]);
}
