// SPDX-License-Identifier: GPL-2.0
/*
 * Declarations shared by mte_tags_test.cpp (host) and mte_tags_guest.cpp
 * (guest): guest entry points, the guest globals that carry results back to
 * the host, and the tag/data patterns and the IRG model both sides compute
 * independently, so each can check what the other one wrote.
 */
#pragma once

#include <stdint.h>

#include "lib/arch.hpp"
#include "lib/guest.hpp"

/* Data memslot n (n >= 1) starts at TAGS_GPA + (n - 1) * TAGS_SLOT_STRIDE, 2 MiB aligned. */
constexpr uint32_t TAGS_FIRST_SLOT = 1;
constexpr uint64_t TAGS_GPA = 0x8000'0000;
constexpr uint64_t TAGS_SLOT_STRIDE = 0x1000'0000;

constexpr uint64_t tags_slot_gpa(uint32_t slot)
{
	return TAGS_GPA + (slot - TAGS_FIRST_SLOT) * TAGS_SLOT_STRIDE;
}

/*
 * Allocation tag the pattern with this seed gives the granule at address
 * addr: never 0 (so a cleared tag never passes for it) and different in
 * adjacent granules. Seed 0 means "no pattern": every tag is 0.
 */
constexpr uint64_t TAGS_NO_PATTERN = 0;
constexpr uint64_t TAGS_NONZERO_TAGS = arch::mte::NUM_TAGS - 1;

constexpr uint64_t tags_pattern(uint64_t seed, uint64_t addr)
{
	constexpr uint64_t granule_step = 7;

	if (seed == TAGS_NO_PATTERN)
		return 0;
	return 1 + (seed + arch::untagged(addr) / arch::mte::GRANULE_SIZE * granule_step) %
			   TAGS_NONZERO_TAGS;
}

/* Data word at address addr for a data seed; seed 0 means all-zero data. */
constexpr uint64_t tags_data(uint64_t seed, uint64_t addr)
{
	constexpr uint64_t mix = 0x9e37'79b9'7f4a'7c15;

	if (seed == TAGS_NO_PATTERN)
		return 0;
	return seed ^ (arch::untagged(addr) * mix);
}

/* What a data check expects in each page of a region. */
enum TagsDataLayout : uint64_t {
	TAGS_DATA_ZERO,	      /* never written */
	TAGS_DATA_ALL,	      /* tags_data() everywhere */
	TAGS_DATA_EVEN_PAGES, /* tags_data() in even pages, zero in odd ones */
	TAGS_DATA_CONSTANT,   /* the data seed itself in every word */
};

/* The data word a check of layout expects at addr, in page page_index of the region. */
constexpr uint64_t tags_expected_data(TagsDataLayout layout, uint64_t seed, uint64_t page_index,
				      uint64_t addr)
{
	switch (layout) {
	case TAGS_DATA_ZERO:
		return 0;
	case TAGS_DATA_ALL:
		return tags_data(seed, addr);
	case TAGS_DATA_EVEN_PAGES:
		return page_index % 2 ? 0 : tags_data(seed, addr);
	case TAGS_DATA_CONSTANT:
		return seed;
	}
	return 0;
}

/*
 * IRG with GCR_EL1.RRND == 0, as the architecture's pseudocode defines it
 * (RandomTag() and ChooseNonExcludedTag()): four steps of the 16-bit LFSR in
 * RGSR_EL1.SEED give an offset, the new tag is the offset-th non-excluded
 * tag after RGSR_EL1.TAG, and both fields are updated. Returns the tag and
 * advances `state` (an RGSR_EL1 value) exactly as the CPU advances RGSR_EL1.
 */
constexpr uint64_t tags_irg_model(uint64_t &state, uint64_t exclude)
{
	using namespace arch;
	/* Taps of the 16-bit LFSR: bits 5, 3, 2 and 0 feed the new bit 15. */
	constexpr unsigned int tag_bits = 4, lfsr_top = 15, tap_a = 5, tap_b = 3, tap_c = 2;
	uint64_t seed = (state & rgsr::SEED_MASK) >> rgsr::SEED_SHIFT;
	uint64_t tag = state & rgsr::TAG_MASK;
	uint64_t offset = 0;
	auto excluded = [exclude](uint64_t t) { return (exclude >> t) & 1; };

	for (unsigned int i = 0; i < tag_bits; i++) {
		const uint64_t top =
			((seed >> tap_a) ^ (seed >> tap_b) ^ (seed >> tap_c) ^ seed) & 1;

		seed = (top << lfsr_top) | (seed >> 1);
		offset |= top << i;
	}
	if ((exclude & gcr::EXCLUDE_MASK) == gcr::EXCLUDE_MASK) {
		tag = 0;
	} else if (!offset) {
		while (excluded(tag))
			tag = (tag + 1) & mte::TAG_MASK;
	} else {
		for (; offset; offset--) {
			do
				tag = (tag + 1) & mte::TAG_MASK;
			while (excluded(tag));
		}
	}
	state = tag | (seed << rgsr::SEED_SHIFT);
	return tag;
}

/*
 * FAR_EL1 bits a synchronous tag check fault reports. With TBI the FAR
 * includes the top byte, so the logical tag in bits 59:56 is reported, but
 * the architecture leaves bits 63:60 UNKNOWN for tag check faults (unless
 * FEAT_MTE_TAGGED_FAR).
 */
constexpr uint64_t TAGS_FAR_KNOWN_MASK = arch::bit(60) - 1;

/* Result of a guest scan over tags or data: how many units differed, and the first. */
struct TagsScan {
	uint64_t checked;
	uint64_t mismatches;
	uint64_t first_addr;
	uint64_t first_found;
	uint64_t first_expected;
};

/* A tag check fault taken (and skipped) by a vCPU's exception handler. */
struct TagsFault {
	uint64_t count;
	uint64_t esr;
	uint64_t far;
	uint64_t elr;
};

/* guest_irg_sequence(): tags generated and disagreements with the model. */
struct TagsIrgResult {
	uint64_t generated[arch::mte::NUM_TAGS];
	uint64_t model_mismatches;
	uint64_t rgsr_mismatches;
	uint64_t first_bad_rgsr;
	uint64_t expected_rgsr;
};

/* guest_sync_tag_fault(): the faulting load and store, by index. */
enum TagsSyncAccess : unsigned int {
	TAGS_SYNC_LOAD,
	TAGS_SYNC_STORE,
	TAGS_SYNC_ACCESSES,
};

/* Stored through the matching pointer before the faulting store of guest_sync_tag_fault(). */
constexpr uint64_t TAGS_SYNC_GOOD_DATA = 0x600d'600d'600d'600d;

/* Stages of guest_async_tag_fault(). */
constexpr uint64_t TAGS_ASYNC_FAULT_PENDING = 1;

/*
 * Per-vCPU setup of guest_isolation_worker(): its own MTE state, which it
 * checks it still has after each of its iterations (one SYNC exit each).
 */
struct TagsIsolationParams {
	uint64_t gcr_exclude;
	uint64_t tcf;	   /* arch::sctlr::TCF_SYNC or TCF_ASYNC */
	uint64_t tfsre0;   /* value the worker keeps in TFSRE0_EL1 */
	uint64_t seed;	   /* RGSR_EL1.SEED to start from, non-zero */
	uint64_t page;	   /* guest VA of a tagged page of its own */
	uint64_t tag_seed; /* tags_pattern() seed for that page */
	uint64_t iterations;
};

struct TagsIsolationStatus {
	uint64_t iterations;
	uint64_t tags_generated;
	uint64_t sync_faults;
	uint64_t async_faults;
};

/* IRGs per worker iteration. */
constexpr uint64_t TAGS_IRG_PER_ITERATION = 8;

extern "C" {
void guest_irg_sequence(uint64_t base, uint64_t exclude, uint64_t seed, uint64_t samples);
void guest_store_load_tags(uint64_t page);
void guest_sync_tag_fault(uint64_t page);
void guest_async_tag_fault(uint64_t page);
void guest_write_pattern(uint64_t base, uint64_t len, uint64_t tag_seed, uint64_t data_seed);
void guest_scan(uint64_t base, uint64_t len, uint64_t tag_seed, uint64_t data_seed,
		TagsDataLayout layout);
void guest_fill_identical(uint64_t base, uint64_t len, uint64_t word, uint64_t tag_seed);
void guest_isolation_worker();
void guest_tag_then_verify(uint64_t base, uint64_t len, uint64_t tag_seed, uint64_t other_seed);
void guest_touch(uint64_t addr);

extern TagsIrgResult tags_irg_result;
extern TagsFault tags_faults[GUEST_MAX_VCPUS];
extern TagsFault tags_sync_faults[TAGS_SYNC_ACCESSES];
extern uint64_t tags_sync_addr[TAGS_SYNC_ACCESSES];
extern uint64_t tags_sync_data_after_store;
extern uint64_t tags_async_tfsr_after_fault;
extern uint64_t tags_async_tfsr_after_exit;
extern uint64_t tags_async_tfsr_after_match;
extern TagsScan tags_tag_scan;
extern TagsScan tags_data_scan;
extern TagsIsolationParams tags_iso_params[GUEST_MAX_VCPUS];
extern TagsIsolationStatus tags_iso_status[GUEST_MAX_VCPUS];
/* guest_tag_then_verify(): granules whose tag was neither seed's, and the first. */
extern TagsScan tags_race_scan;
}
