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

extern "C" {
/* Runs commands forever: SYNC(READY), then the command the globals hold. */
void guest_fuzz_commands();

extern uint64_t fuzz_cmd;
extern uint64_t fuzz_page;
extern uint8_t fuzz_tags[arch::mte::GRANULES_PER_PAGE];
/* check_page: granules whose tag differed, and the first of them. */
extern uint64_t fuzz_mismatches;
extern uint64_t fuzz_first_mismatch;
}
