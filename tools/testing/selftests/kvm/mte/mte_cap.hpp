// SPDX-License-Identifier: GPL-2.0
/*
 * Declarations shared by mte_cap_test.cpp (host) and mte_cap_guest.cpp
 * (guest): the guest entry points, the guest globals the host inspects, and
 * the register value patterns both sides compute independently so that each
 * can check what the other one wrote.
 */
#pragma once

#include <stdint.h>

#include "lib/arch.hpp"

/* A data memslot for the memory-backing tests, away from slot 0 and the ucall IPA. */
constexpr uint32_t MTE_CAP_DATA_SLOT = 1;
constexpr uint64_t MTE_CAP_DATA_GPA = 0x8000'0000;

/* Stored in an ESR slot by the guest when an access took no exception. */
constexpr uint64_t MTE_CAP_NO_EXCEPTION = ~uint64_t{0};

/* The four MTE system registers, in the order of every per-register table. */
enum MteCapReg : unsigned int {
	MTE_CAP_GCR_EL1,
	MTE_CAP_RGSR_EL1,
	MTE_CAP_TFSR_EL1,
	MTE_CAP_TFSRE0_EL1,
	MTE_CAP_NR_REGS,
};

constexpr uint64_t mte_cap_writable_mask(unsigned int reg)
{
	switch (reg) {
	case MTE_CAP_GCR_EL1:
		return arch::gcr::WRITABLE;
	case MTE_CAP_RGSR_EL1:
		return arch::rgsr::WRITABLE;
	case MTE_CAP_TFSR_EL1:
		return arch::tfsr::WRITABLE_EL1;
	case MTE_CAP_TFSRE0_EL1:
		return arch::tfsr::WRITABLE_E0;
	}
	return 0;
}

/*
 * Value of a register at one step of an exchange between host and guest,
 * within the register's writable bits. Bit 0, which every register has,
 * toggles from step to step, and the values of vCPU 0 and vCPU 1 are each
 * other's complement, so a value left over from the previous step or taken
 * from the other vCPU never passes for the expected one.
 */
constexpr uint64_t mte_cap_reg_pattern(unsigned int reg, uint32_t vcpu_id, uint64_t step)
{
	const uint64_t mask = mte_cap_writable_mask(reg);
	uint64_t mix = (step * MTE_CAP_NR_REGS + reg + 1) * 0x9e37'79b9'7f4a'7c15;

	mix ^= mix >> 29;
	if (vcpu_id & 1)
		mix = ~mix;
	return (mix & mask & ~arch::bit(0)) | ((step ^ vcpu_id) & 1);
}

/* Values guest_write_read_mte_regs() writes and reads back, per register. */
constexpr unsigned int MTE_CAP_NR_RW_PATTERNS = 4;

constexpr uint64_t mte_cap_rw_pattern(unsigned int reg, unsigned int index)
{
	constexpr uint64_t patterns[MTE_CAP_NR_RW_PATTERNS] = {
		~uint64_t{0},
		0xaaaa'aaaa'aaaa'aaaa,
		0x5555'5555'5555'5555,
		0,
	};

	return patterns[index] & mte_cap_writable_mask(reg);
}

/* Accesses probed by guest_probe_mte_regs(): every register read, then written. */
constexpr unsigned int MTE_CAP_PROBE_READ = 0;
constexpr unsigned int MTE_CAP_PROBE_WRITE = 1;
constexpr unsigned int MTE_CAP_NR_PROBES = 2 * MTE_CAP_NR_REGS;

constexpr unsigned int mte_cap_probe_index(unsigned int reg, unsigned int kind)
{
	return kind * MTE_CAP_NR_REGS + reg;
}

/* The tag variants of the data cache set/way maintenance instructions. */
enum MteCapDcOp : unsigned int {
	MTE_CAP_DC_IGSW,
	MTE_CAP_DC_IGDSW,
	MTE_CAP_DC_CGSW,
	MTE_CAP_DC_CGDSW,
	MTE_CAP_DC_CIGSW,
	MTE_CAP_DC_CIGDSW,
	MTE_CAP_NR_DC_OPS,
};

/* SYNC stages of guest_exchange_mte_regs(): two per round. */
constexpr uint64_t MTE_CAP_PHASE_GUEST_WROTE = 1;
constexpr uint64_t MTE_CAP_PHASE_GUEST_REREAD = 2;

constexpr uint64_t mte_cap_exchange_stage(uint64_t round, uint64_t phase)
{
	return round * 2 + phase;
}

/* Host step numbers of a round: the host writes one value, the guest the next. */
constexpr uint64_t mte_cap_host_step(uint64_t round)
{
	return 2 * round;
}

constexpr uint64_t mte_cap_guest_step(uint64_t round)
{
	return 2 * round + 1;
}

/* SYNC stages of guest_wait_for_injected_abort(). */
constexpr uint64_t MTE_CAP_SYNC_PARKED = 1;
constexpr uint64_t MTE_CAP_SYNC_IN_HANDLER = 2;

/* Granules guest_tag_region() tags in every page, and their tags. */
constexpr uint64_t MTE_CAP_TAGGED_GRANULES_PER_PAGE = 4;

constexpr uint64_t mte_cap_granule_tag(uint64_t page, uint64_t granule)
{
	/* Never 0, so a tag that was not stored cannot pass for one that was. */
	return (page * MTE_CAP_TAGGED_GRANULES_PER_PAGE + granule) % arch::mte::TAG_MASK + 1;
}

/* The 4 KiB pages of a 2 MiB hugetlb page. */
constexpr uint64_t MTE_CAP_HUGE_PAGES = arch::BLOCK_SIZE_2M / arch::PAGE_SIZE;

/*
 * Page stride of guest_scan_huge_tags() that samples the first and the last
 * 4 KiB page of a 2 MiB page and six in between (7 * 73 == 511).
 */
constexpr uint64_t MTE_CAP_HUGE_SAMPLE_STRIDE = 73;
static_assert((MTE_CAP_HUGE_PAGES - 1) % MTE_CAP_HUGE_SAMPLE_STRIDE == 0);

/* guest_scan_huge_tags() over every page. */
constexpr uint64_t MTE_CAP_HUGE_EVERY_PAGE = 1;

/*
 * Tag guest_scan_huge_tags() stores in the granule at byte offset off of the
 * scanned region: never 0, and shifted by one from one page to the next
 * (256 granules per page), so a page's tags differ from its neighbours'.
 */
constexpr uint64_t mte_cap_huge_tag(uint64_t off)
{
	return off / arch::mte::GRANULE_SIZE % arch::mte::TAG_MASK + 1;
}

/* Pattern the host writes into memory that guest_read_word() reads back. */
constexpr uint64_t MTE_CAP_HOST_WORD = 0x6d74'6563'6170'0001;

/* SYNC stage of guest_read_pages_forever() after each pass. */
constexpr uint64_t MTE_CAP_SYNC_PASS = 1;

extern "C" {
void guest_read_id_aa64pfr1();
void guest_probe_mte_regs();
void guest_write_read_mte_regs();
void guest_exchange_mte_regs(uint32_t vcpu_id, uint64_t rounds);
void guest_wait_for_injected_abort(bool has_mte);
void guest_dc_tag_set_way();
void guest_tag_region(uint64_t base, uint64_t size);
void guest_read_word(const uint64_t *addr);
/* Reads the first word of every page of [base, base + size), then SYNCs; forever. */
void guest_read_pages_forever(uint64_t base, uint64_t size);
void guest_scan_huge_tags(uint64_t base, uint64_t size, uint64_t page_stride, bool store);

/* ID_AA64PFR1_EL1 as the guest's mrs returned it. */
extern uint64_t mte_cap_guest_pfr1;
/* ESR per access of guest_probe_mte_regs(), or MTE_CAP_NO_EXCEPTION. */
extern uint64_t mte_cap_probe_esr[MTE_CAP_NR_PROBES];
/* Read-back values of guest_write_read_mte_regs(). */
extern uint64_t mte_cap_readback[MTE_CAP_NR_REGS][MTE_CAP_NR_RW_PATTERNS];
/* ESR per instruction of guest_dc_tag_set_way(), or MTE_CAP_NO_EXCEPTION. */
extern uint64_t mte_cap_dc_esr[MTE_CAP_NR_DC_OPS];
/* What the exception handler of guest_wait_for_injected_abort() saw. */
extern uint64_t mte_cap_abort_taken;
extern uint64_t mte_cap_abort_esr;
extern uint64_t mte_cap_abort_spsr;
extern uint64_t mte_cap_abort_tco;
/* The word guest_read_word() loaded. */
extern uint64_t mte_cap_word;
/* What guest_scan_huge_tags() found: granules whose tag was not 0 at first, */
extern uint64_t mte_cap_nonzero_granules;
/* the first of them and its tag, */
extern uint64_t mte_cap_first_nonzero_addr;
extern uint64_t mte_cap_first_nonzero_tag;
/* and the granules that did not read back the tag it stored. */
extern uint64_t mte_cap_mismatched_granules;
}
