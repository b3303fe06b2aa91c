// SPDX-License-Identifier: GPL-2.0
/*
 * Declarations shared by mte_copy_tags_test.cpp (host) and
 * mte_copy_tags_guest.cpp (guest): the tag pattern both sides compute, the
 * guest entry points, the guest globals the host reads or writes, and the
 * MTE register values the save/restore test moves between VMs.
 */
#pragma once

#include <stdint.h>

#include "lib/arch.hpp"

/*
 * Tag of the granule at gpa in the pattern with this seed: a stateless
 * PRNG (splitmix64's finaliser over seed and granule index), so the host
 * and the guest agree on every granule without sharing any state.
 */
constexpr uint8_t copy_tags_pattern(uint64_t seed, uint64_t gpa)
{
	uint64_t x = seed ^ (gpa / arch::mte::GRANULE_SIZE);

	x += 0x9e37'79b9'7f4a'7c15;
	x = (x ^ (x >> 30)) * 0xbf58'476d'1ce4'e5b9;
	x = (x ^ (x >> 27)) * 0x94d0'49bb'1331'11eb;
	x ^= x >> 31;
	return static_cast<uint8_t>(x & arch::mte::TAG_MASK);
}

/* A tag that differs from tag, varied with i so all 15 wrong tags get used. */
constexpr uint8_t copy_tags_wrong_tag(uint8_t tag, uint64_t i)
{
	const uint64_t wrong_tags = arch::mte::NUM_TAGS - 1;

	return static_cast<uint8_t>((tag + 1 + i % wrong_tags) & arch::mte::TAG_MASK);
}

/* Data word the save/restore guest stores behind its recorded tagged pointer. */
constexpr uint64_t COPY_TAGS_SAVED_DATA = 0x7a65'd0da'7a00'c0de;

/*
 * MTE register state the save/restore guest sets in VM A and expects in
 * VM B: an exclusion mask with RRND clear, a seed and tag, and a different
 * fault bit in each status register. Only writable bits, so the guest reads
 * back exactly these values.
 */
constexpr uint64_t COPY_TAGS_GCR = 0x8421;
constexpr uint64_t COPY_TAGS_RGSR = 0x00be'ef09;
constexpr uint64_t COPY_TAGS_TFSR = arch::tfsr::TF1;
constexpr uint64_t COPY_TAGS_TFSRE0 = arch::tfsr::TF0;
static_assert((COPY_TAGS_GCR & ~arch::gcr::EXCLUDE_MASK) == 0);
static_assert((COPY_TAGS_RGSR & ~arch::rgsr::WRITABLE) == 0);
static_assert((COPY_TAGS_TFSR & ~arch::tfsr::WRITABLE_EL1) == 0);
static_assert((COPY_TAGS_TFSRE0 & ~arch::tfsr::WRITABLE_E0) == 0);

/* SYNC stage at which the save/restore guest waits to be migrated. */
constexpr uint64_t COPY_TAGS_SYNC_SAVE_POINT = 1;
/* SYNC stage at the end of each round of the concurrency guest. */
constexpr uint64_t COPY_TAGS_SYNC_ROUND = 2;

/* SYNC stage after each iteration of the live migration guest. */
constexpr uint64_t COPY_TAGS_SYNC_ITERATION = 3;

/*
 * The live migration guest's state after iteration i (0: as it started)
 * of the first granule of the page at index page: the tag changes with
 * every iteration, the data word only with odd ones, since even ones only
 * retag (STG without a data store, which the dirty log must still see).
 */
constexpr uint8_t migration_tag(uint64_t page, uint64_t i)
{
	return i ? static_cast<uint8_t>((page * 3 + i) & arch::mte::TAG_MASK) : 0;
}

constexpr bool migration_stores_data(uint64_t i)
{
	return i & 1;
}

constexpr uint64_t migration_data(uint64_t page, uint64_t i)
{
	const uint64_t last_store = i ? ((i - 1) | 1) : 0;

	return last_store ? (page << 32 | last_store) : 0;
}

extern "C" {
/* Store value into the first word of every page of [base, base + size). */
void guest_touch_pages(uint64_t base, uint64_t size, uint64_t value);
/* Tag every granule of [base, base + size) with copy_tags_pattern(seed, .). */
void guest_set_tags(uint64_t base, uint64_t size, uint64_t seed);
/* Assert that LDG reads copy_tags_pattern(seed, .) for every granule. */
void guest_check_tags(uint64_t base, uint64_t size, uint64_t seed);
/*
 * With SCTLR_EL1.TCF == sync: a load through a pointer with the pattern's
 * tag must not fault, one with any other tag must take exactly one
 * synchronous tag check fault at that address. For every granule.
 */
void guest_check_tag_faults(uint64_t base, uint64_t size, uint64_t seed);
/*
 * Migration source and destination in one: tags two ranges, sets the MTE
 * registers and records a tagged pointer, SYNCs at SAVE_POINT, and once
 * resumed (in the other VM) checks that all of it is still there.
 */
void guest_save_restore(uint64_t pages_base, uint64_t pages_size, uint64_t thp_base,
			uint64_t thp_size, uint64_t seed);
/* Faults in and tags [base, base + size) round after round until told to stop. */
void guest_stress_tags(uint64_t base, uint64_t size, uint64_t seed);
/*
 * Iteration after iteration, checks that the first granule of every page
 * of [base, base + size) holds the previous iteration's tag and data, then
 * moves it to this iteration's, and SYNCs at ITERATION; it ends (DONE) once
 * the iteration after copy_tags_migration_last has checked its state.
 */
void guest_migration_workload(uint64_t base, uint64_t size);

/* Tagged pointer recorded by guest_save_restore() before the save point. */
extern uint64_t copy_tags_saved_ptr;
/* Set by the host to end guest_stress_tags() at its next round. */
extern uint64_t copy_tags_stress_stop;
/* The live migration guest's last finished iteration. */
extern uint64_t copy_tags_migration_iter;
/* Set by the host in the destination: 0 runs the guest forever. */
extern uint64_t copy_tags_migration_last;
/* Granule address of the last mismatch a guest check found, for diagnostics. */
extern uint64_t copy_tags_bad_granule;
}
