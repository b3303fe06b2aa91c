// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of mte_fuzz_test: sets or checks the tags of one page per
 * command, with STG and LDG, between the host's calls; and, on a second
 * vCPU, retags memory of its own in rounds while the calls go on.
 */
#include "lib/guest/mte.hpp"
#include "lib/guest/runtime.hpp"
#include "mte_fuzz.hpp"

using namespace arch;
using namespace guest_mte;

uint64_t fuzz_cmd;
uint64_t fuzz_page;
uint8_t fuzz_tags[mte::GRANULES_PER_PAGE];
uint64_t fuzz_mismatches;
uint64_t fuzz_first_mismatch;
uint64_t fuzz_busy_mismatches;
uint64_t fuzz_busy_first_mismatch;

extern "C" void guest_fuzz_commands()
{
	for (;;) {
		GUEST_SYNC(FUZZ_SYNC_READY);
		for (uint64_t g = 0; g < mte::GRANULES_PER_PAGE; g++) {
			const uint64_t a = fuzz_page + g * mte::GRANULE_SIZE;

			if (fuzz_cmd == static_cast<uint64_t>(FuzzGuestCmd::stg_page)) {
				stg(a, fuzz_tags[g]);
			} else if (ldg(a) != fuzz_tags[g]) {
				if (!fuzz_mismatches)
					fuzz_first_mismatch = a;
				fuzz_mismatches++;
			}
		}
	}
}

extern "C" void guest_fuzz_busy(uint64_t base, uint64_t size)
{
	for (uint64_t round = 1;; round++) {
		/* Tag stores only: each needs write permission at stage 2. */
		for (uint64_t a = base; a < base + size; a += mte::GRANULE_SIZE)
			stg(a, fuzz_busy_tag(round, a));
		for (uint64_t a = base; a < base + size; a += mte::GRANULE_SIZE) {
			if (ldg(a) != fuzz_busy_tag(round, a)) {
				if (!fuzz_busy_mismatches)
					fuzz_busy_first_mismatch = a;
				fuzz_busy_mismatches++;
			}
		}
		GUEST_SYNC(FUZZ_SYNC_BUSY_ROUND);
	}
}
