// SPDX-License-Identifier: GPL-2.0
/*
 * Shared by mte_fuzz_test.cpp (host) and mte_fuzz_guest.cpp (guest): the
 * commands the host gives the fuzzer's guest, one page at a time, and the
 * globals that carry them.
 */
#pragma once

#include <stdint.h>

#include "lib/arch.hpp"

enum class FuzzGuestCmd : uint64_t {
	stg_page = 1, /* give every granule of the page its tag of fuzz_tags */
	check_page,   /* compare LDG of every granule with fuzz_tags */
};

/* SYNC stage at which the guest waits for its next command. */
constexpr uint64_t FUZZ_SYNC_READY = 1;
/* SYNC stage after each round of the busy vCPU, which runs beside the calls. */
constexpr uint64_t FUZZ_SYNC_BUSY_ROUND = 2;

/* The busy vCPU's tag for the granule at a in a round: the host recomputes it. */
constexpr uint8_t fuzz_busy_tag(uint64_t round, uint64_t a)
{
	return static_cast<uint8_t>((round + a / arch::mte::GRANULE_SIZE) & arch::mte::TAG_MASK);
}

extern "C" {
/* Runs commands forever: SYNC(READY), then the command the globals hold. */
void guest_fuzz_commands();
/*
 * Rounds forever over [base, base + size): STG every granule with the
 * round's tags, then LDG them all back; SYNC(BUSY_ROUND) after each.
 */
void guest_fuzz_busy(uint64_t base, uint64_t size);

extern uint64_t fuzz_cmd;
extern uint64_t fuzz_page;
extern uint8_t fuzz_tags[arch::mte::GRANULES_PER_PAGE];
/* check_page: granules whose tag differed, and the first of them. */
extern uint64_t fuzz_mismatches;
extern uint64_t fuzz_first_mismatch;
/* The busy vCPU's: granules whose LDG differed from the round's STG, the first of them. */
extern uint64_t fuzz_busy_mismatches;
extern uint64_t fuzz_busy_first_mismatch;
}
