// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of mte_demo_test: colour memory with tags, take a tag check
 * fault, park for the VMM to move the VM, then check everything survived.
 */
#include "lib/guest/mte.hpp"
#include "mte_demo.hpp"

using namespace guest_mte;

uint64_t demo_fault_esr[2];
uint64_t demo_fault_far[2];
uint64_t demo_granules_checked;

/* Read DEMO_FAULT_ADDR through a pointer whose tag is off by one. */
static void fault_once(unsigned int round)
{
	const uint64_t wrong = arch::mte::with_tag(DEMO_FAULT_ADDR, demo_tag(DEMO_FAULT_ADDR) + 1);
	const uint64_t before = tag_faults.count;

	load(wrong);
	GUEST_ASSERT_EQ(tag_faults.count, before + 1);
	demo_fault_esr[round] = tag_faults.esr;
	demo_fault_far[round] = tag_faults.far;
}

extern "C" void guest_demo(uint64_t base, uint64_t size)
{
	for (uint64_t a = base; a < base + size; a += arch::mte::GRANULE_SIZE) {
		stg(a, demo_tag(a));
		store(arch::mte::with_tag(a, demo_tag(a)), demo_data(a));
	}
	count_tag_faults();
	fault_once(0);

	GUEST_SYNC(DEMO_SYNC_SAVE_POINT);

	/* From here on, the guest runs in whichever VM the VMM restored it into. */
	for (uint64_t a = base; a < base + size; a += arch::mte::GRANULE_SIZE) {
		GUEST_ASSERT_EQ(ldg(a), demo_tag(a));
		GUEST_ASSERT_EQ(load(arch::mte::with_tag(a, demo_tag(a))), demo_data(a));
		demo_granules_checked++;
	}
	fault_once(1);
}
