// SPDX-License-Identifier: GPL-2.0
/*
 * Declarations shared by framework_test.cpp (host) and framework_guest.cpp
 * (guest): the guest entry points the host starts and the guest globals it
 * inspects, plus constants both sides must agree on.
 */
#pragma once

#include <stdint.h>

/* Data region of guest_writes_memory_seen_by_host, in its own memslot. */
constexpr uint32_t FRAMEWORK_DATA_SLOT = 1;
constexpr uint64_t FRAMEWORK_DATA_GPA = 0x8000'0000;
constexpr uint64_t FRAMEWORK_DATA_SIZE = 4 << 20;

/* Value the host stores into framework_host_value between two SYNCs. */
constexpr uint64_t FRAMEWORK_HOST_VALUE = 0x5eed'f00d'cafe'0001;
constexpr uint64_t FRAMEWORK_SYNC_BEFORE = 1;
constexpr uint64_t FRAMEWORK_SYNC_AFTER = 2;

/* Nothing is mapped at this level-0 index, so an access faults at level 0. */
constexpr uint64_t FRAMEWORK_UNMAPPED_GVA = 0x0000'8000'0000'0000;

/* Pattern word i of a fill with seed s; the host recomputes it to check. */
constexpr uint64_t framework_pattern(uint64_t seed, uint64_t i)
{
	return seed ^ (i * 0x9e37'79b9'7f4a'7c15);
}

extern "C" {
void guest_fill(uint64_t *dst, uint64_t words, uint64_t seed);
void guest_sync_roundtrip();
void guest_read_unmapped(uint64_t gva);
void guest_undef_with_handler();
void guest_assert_mismatch(uint64_t observed);

/* Last seed passed to guest_fill(), written by the guest. */
extern uint64_t framework_last_seed;
/* Written by the host between the two SYNCs of guest_sync_roundtrip(). */
extern uint64_t framework_host_value;
/* Source line of the failing GUEST_ASSERT_EQ in guest_assert_mismatch(). */
extern uint64_t framework_assert_line;
}
