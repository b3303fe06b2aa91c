// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of mte_cap_test: EL1 code that looks at MTE from the inside.
 * It reads ID_AA64PFR1_EL1, accesses the four MTE system registers and the
 * tag set/way maintenance instructions while recording whatever exception
 * they take, exchanges register values with the host across exits, waits
 * for an exception the host makes KVM inject, and stores and loads
 * allocation tags in a data memslot, including every granule of a 2 MiB
 * hugetlb page.
 */
#include "lib/guest/runtime.hpp"
#include "mte_cap.hpp"

uint64_t mte_cap_guest_pfr1;
uint64_t mte_cap_probe_esr[MTE_CAP_NR_PROBES];
uint64_t mte_cap_readback[MTE_CAP_NR_REGS][MTE_CAP_NR_RW_PATTERNS];
uint64_t mte_cap_dc_esr[MTE_CAP_NR_DC_OPS];
uint64_t mte_cap_abort_taken;
uint64_t mte_cap_abort_esr;
uint64_t mte_cap_abort_spsr;
uint64_t mte_cap_abort_tco;
uint64_t mte_cap_word;
uint64_t mte_cap_nonzero_granules;
uint64_t mte_cap_first_nonzero_addr;
uint64_t mte_cap_first_nonzero_tag;
uint64_t mte_cap_mismatched_granules;

/* The asm below names MTE registers and instructions, which need the extension. */
#define MEMTAG ".arch_extension memtag\n\t"

static uint64_t read_mte_reg(unsigned int reg)
{
	uint64_t val = 0;

	switch (reg) {
	case MTE_CAP_GCR_EL1:
		asm volatile(MEMTAG "mrs %0, gcr_el1" : "+r"(val) : : "memory");
		break;
	case MTE_CAP_RGSR_EL1:
		asm volatile(MEMTAG "mrs %0, rgsr_el1" : "+r"(val) : : "memory");
		break;
	case MTE_CAP_TFSR_EL1:
		asm volatile(MEMTAG "mrs %0, tfsr_el1" : "+r"(val) : : "memory");
		break;
	case MTE_CAP_TFSRE0_EL1:
		asm volatile(MEMTAG "mrs %0, tfsre0_el1" : "+r"(val) : : "memory");
		break;
	}
	return val;
}

static void write_mte_reg(unsigned int reg, uint64_t val)
{
	switch (reg) {
	case MTE_CAP_GCR_EL1:
		asm volatile(MEMTAG "msr gcr_el1, %0" : : "r"(val) : "memory");
		break;
	case MTE_CAP_RGSR_EL1:
		asm volatile(MEMTAG "msr rgsr_el1, %0" : : "r"(val) : "memory");
		break;
	case MTE_CAP_TFSR_EL1:
		asm volatile(MEMTAG "msr tfsr_el1, %0" : : "r"(val) : "memory");
		break;
	case MTE_CAP_TFSRE0_EL1:
		asm volatile(MEMTAG "msr tfsre0_el1, %0" : : "r"(val) : "memory");
		break;
	}
	isb();
}

static uint64_t read_tco()
{
	uint64_t val;

	asm volatile(MEMTAG "mrs %0, tco" : "=r"(val));
	return val;
}

/*
 * Where the next synchronous exception is recorded. The handler skips the
 * faulting instruction, so a probe that traps simply carries on.
 */
static uint64_t *volatile exception_slot;

static bool record_and_skip(guest_exception_frame *frame, uint64_t vector)
{
	uint64_t *slot = exception_slot;

	if (vector != arch::vector::SYNC_CUR_SPX || !slot)
		return false;
	*slot = frame->esr;
	exception_slot = nullptr;
	/* A64 instructions are 4 bytes; resume after the faulting one. */
	frame->elr += 4;
	return true;
}

static void arm_exception_slot(uint64_t *slot)
{
	*slot = MTE_CAP_NO_EXCEPTION;
	exception_slot = slot;
}

extern "C" void guest_read_id_aa64pfr1()
{
	mte_cap_guest_pfr1 = read_sysreg(id_aa64pfr1_el1);
}

extern "C" void guest_probe_mte_regs()
{
	uint64_t val[MTE_CAP_NR_REGS] = {};

	guest_set_exception_handler(record_and_skip);
	for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++) {
		arm_exception_slot(
			&mte_cap_probe_esr[mte_cap_probe_index(reg, MTE_CAP_PROBE_READ)]);
		val[reg] = read_mte_reg(reg);
	}
	/* Write back what was read: with MTE the state stays as it was. */
	for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++) {
		arm_exception_slot(
			&mte_cap_probe_esr[mte_cap_probe_index(reg, MTE_CAP_PROBE_WRITE)]);
		write_mte_reg(reg, val[reg]);
	}
	exception_slot = nullptr;
	guest_set_exception_handler(nullptr);
}

extern "C" void guest_write_read_mte_regs()
{
	for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++) {
		for (unsigned int i = 0; i < MTE_CAP_NR_RW_PATTERNS; i++) {
			write_mte_reg(reg, mte_cap_rw_pattern(reg, i));
			mte_cap_readback[reg][i] = read_mte_reg(reg);
		}
	}
}

static void expect_mte_reg(unsigned int reg, uint64_t expected)
{
	const uint64_t val = read_mte_reg(reg);

	if (val != expected)
		guest_print("mismatch in MTE register index", reg);
	GUEST_ASSERT_EQ(val, expected);
}

extern "C" void guest_exchange_mte_regs(uint32_t vcpu_id, uint64_t rounds)
{
	for (uint64_t round = 0; round < rounds; round++) {
		/* The values the host set with KVM_SET_ONE_REG before this entry. */
		for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++)
			expect_mte_reg(reg,
				       mte_cap_reg_pattern(reg, vcpu_id, mte_cap_host_step(round)));

		for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++)
			write_mte_reg(reg,
				      mte_cap_reg_pattern(reg, vcpu_id, mte_cap_guest_step(round)));
		GUEST_SYNC(mte_cap_exchange_stage(round, MTE_CAP_PHASE_GUEST_WROTE));

		/* Our own values, after an exit to the host and possibly another CPU. */
		for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++)
			expect_mte_reg(
				reg, mte_cap_reg_pattern(reg, vcpu_id, mte_cap_guest_step(round)));
		GUEST_SYNC(mte_cap_exchange_stage(round, MTE_CAP_PHASE_GUEST_REREAD));
	}
}

/* Whether guest_wait_for_injected_abort() may read PSTATE.TCO. */
static bool abort_guest_has_mte;

static bool record_injected_abort(guest_exception_frame *frame, uint64_t vector)
{
	if (vector != arch::vector::SYNC_CUR_SPX)
		return false;
	/* First thing: nothing below touches PSTATE.TCO, but be obviously early. */
	if (abort_guest_has_mte)
		mte_cap_abort_tco = read_tco();
	mte_cap_abort_esr = frame->esr;
	mte_cap_abort_spsr = frame->spsr;
	mte_cap_abort_taken++;
	/* Lets the host read the handler's PSTATE with KVM_GET_ONE_REG. */
	GUEST_SYNC(MTE_CAP_SYNC_IN_HANDLER);
	/* The abort is spurious: resume where it was injected. */
	return true;
}

extern "C" void guest_wait_for_injected_abort(bool has_mte)
{
	abort_guest_has_mte = has_mte;
	guest_set_exception_handler(record_injected_abort);
	/* The host injects the abort while we are parked here. */
	GUEST_SYNC(MTE_CAP_SYNC_PARKED);
	guest_set_exception_handler(nullptr);
	GUEST_ASSERT_EQ(mte_cap_abort_taken, 1);
	/* The exception return restored the interrupted PSTATE.TCO. */
	if (has_mte)
		GUEST_ASSERT_EQ(read_tco() & arch::pstate::TCO, 0);
}

extern "C" void guest_dc_tag_set_way()
{
	guest_set_exception_handler(record_and_skip);
	/* Set 0, way 0, level 1: xzr. */
	arm_exception_slot(&mte_cap_dc_esr[MTE_CAP_DC_IGSW]);
	asm volatile(MEMTAG "dc igsw, xzr" : : : "memory");
	arm_exception_slot(&mte_cap_dc_esr[MTE_CAP_DC_IGDSW]);
	asm volatile(MEMTAG "dc igdsw, xzr" : : : "memory");
	arm_exception_slot(&mte_cap_dc_esr[MTE_CAP_DC_CGSW]);
	asm volatile(MEMTAG "dc cgsw, xzr" : : : "memory");
	arm_exception_slot(&mte_cap_dc_esr[MTE_CAP_DC_CGDSW]);
	asm volatile(MEMTAG "dc cgdsw, xzr" : : : "memory");
	arm_exception_slot(&mte_cap_dc_esr[MTE_CAP_DC_CIGSW]);
	asm volatile(MEMTAG "dc cigsw, xzr" : : : "memory");
	arm_exception_slot(&mte_cap_dc_esr[MTE_CAP_DC_CIGDSW]);
	asm volatile(MEMTAG "dc cigdsw, xzr" : : : "memory");
	exception_slot = nullptr;
	guest_set_exception_handler(nullptr);
}

static uint64_t load_tag(uint64_t addr)
{
	/* LDG only replaces the tag byte of its destination register. */
	uint64_t val = addr;

	asm volatile(MEMTAG "ldg %0, [%1]" : "+r"(val) : "r"(addr) : "memory");
	return arch::mte::tag_of(val);
}

static void store_tag(uint64_t addr, uint64_t tag)
{
	const uint64_t tagged = arch::mte::with_tag(addr, tag);

	asm volatile(MEMTAG "stg %0, [%0]" : : "r"(tagged) : "memory");
}

static uint64_t tagged_granule(uint64_t base, uint64_t page, uint64_t granule)
{
	constexpr uint64_t stride = arch::PAGE_SIZE / MTE_CAP_TAGGED_GRANULES_PER_PAGE;

	return base + page * arch::PAGE_SIZE + granule * stride;
}

extern "C" void guest_tag_region(uint64_t base, uint64_t size)
{
	const uint64_t pages = size / arch::PAGE_SIZE;

	for (uint64_t page = 0; page < pages; page++) {
		for (uint64_t g = 0; g < MTE_CAP_TAGGED_GRANULES_PER_PAGE; g++) {
			const uint64_t addr = tagged_granule(base, page, g);

			/* KVM gives every page it maps into an MTE guest zeroed tags. */
			GUEST_ASSERT_EQ(load_tag(addr), 0);
			store_tag(addr, mte_cap_granule_tag(page, g));
		}
	}
	for (uint64_t page = 0; page < pages; page++)
		for (uint64_t g = 0; g < MTE_CAP_TAGGED_GRANULES_PER_PAGE; g++)
			GUEST_ASSERT_EQ(load_tag(tagged_granule(base, page, g)),
					mte_cap_granule_tag(page, g));
}

extern "C" void guest_read_word(const uint64_t *addr)
{
	mte_cap_word = *reinterpret_cast<const volatile uint64_t *>(addr);
}

extern "C" void guest_read_pages_forever(uint64_t base, uint64_t size)
{
	for (;;) {
		for (uint64_t a = base; a < base + size; a += arch::PAGE_SIZE)
			mte_cap_word = *reinterpret_cast<const volatile uint64_t *>(a);
		GUEST_SYNC(MTE_CAP_SYNC_PASS);
	}
}

/*
 * Visits every granule of the pages base + k * page_stride * PAGE_SIZE in
 * [base, base + size): counts those whose tag is not 0, then, if store,
 * gives each its mte_cap_huge_tag() and counts those that do not read it
 * back. The host judges the counts, so one run reports every granule.
 */
extern "C" void guest_scan_huge_tags(uint64_t base, uint64_t size, uint64_t page_stride, bool store)
{
	const uint64_t step = page_stride * arch::PAGE_SIZE;
	const uint64_t end = base + size;

	for (uint64_t page = base; page < end; page += step) {
		for (uint64_t off = 0; off < arch::PAGE_SIZE; off += arch::mte::GRANULE_SIZE) {
			const uint64_t tag = load_tag(page + off);

			if (tag && !mte_cap_nonzero_granules++) {
				mte_cap_first_nonzero_addr = page + off;
				mte_cap_first_nonzero_tag = tag;
			}
		}
	}
	if (!store)
		return;
	for (uint64_t page = base; page < end; page += step)
		for (uint64_t off = 0; off < arch::PAGE_SIZE; off += arch::mte::GRANULE_SIZE)
			store_tag(page + off, mte_cap_huge_tag(page - base + off));
	for (uint64_t page = base; page < end; page += step)
		for (uint64_t off = 0; off < arch::PAGE_SIZE; off += arch::mte::GRANULE_SIZE)
			mte_cap_mismatched_granules +=
				load_tag(page + off) != mte_cap_huge_tag(page - base + off);
}
