// SPDX-License-Identifier: GPL-2.0
/*
 * Shared by mte_demo_test.cpp (host) and mte_demo_guest.cpp (guest): the
 * demo guest's memory layout, tag pattern and the results it leaves in its
 * globals for the host to narrate.
 */
#pragma once

#include <stdint.h>

#include "lib/arch.hpp"

constexpr uint32_t DEMO_SLOT = 1;
constexpr uint64_t DEMO_GPA = 0x8000'0000;
constexpr uint64_t DEMO_PAGES = 4;
constexpr uint64_t DEMO_SIZE = DEMO_PAGES * arch::PAGE_SIZE;
constexpr uint64_t DEMO_GRANULES = DEMO_SIZE / arch::mte::GRANULE_SIZE;

/* The guest parks here; the VMM saves it and restores it into a new VM. */
constexpr uint64_t DEMO_SYNC_SAVE_POINT = 1;

/* The tag the guest gives the granule at addr: a pattern easy to recompute. */
constexpr uint64_t demo_tag(uint64_t addr)
{
	return ((addr / arch::mte::GRANULE_SIZE) * 5 + 3) & arch::mte::TAG_MASK;
}

/* The data word the guest stores at the start of each granule. */
constexpr uint64_t demo_data(uint64_t addr)
{
	return addr ^ 0xdeca'f000'0000'0000;
}

/* The address the guest reads with a wrong tag, before and after the move. */
constexpr uint64_t DEMO_FAULT_ADDR = DEMO_GPA + arch::PAGE_SIZE + 7 * arch::mte::GRANULE_SIZE;

extern "C" {
void guest_demo(uint64_t base, uint64_t size);

/* What the guest saw, for the host to report. */
extern uint64_t demo_fault_esr[2];
extern uint64_t demo_fault_far[2];
extern uint64_t demo_granules_checked;
}
