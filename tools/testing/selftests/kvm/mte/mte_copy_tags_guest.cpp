// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of mte_copy_tags_test: sets and checks allocation tags with
 * STG/LDG, proves tag checking sees the tags the VMM wrote (synchronous tag
 * check faults exactly where a pointer's tag mismatches), carries MTE state
 * across a save/restore into another VM, and keeps vCPUs faulting and
 * tagging pages while the host hammers KVM_ARM_MTE_COPY_TAGS.
 */
#include "lib/guest/mte.hpp"
#include "lib/guest/runtime.hpp"
#include "mte_copy_tags.hpp"

using namespace arch;
using namespace guest_mte;

uint64_t copy_tags_saved_ptr;
uint64_t copy_tags_stress_stop;
uint64_t copy_tags_bad_granule;
uint64_t copy_tags_migration_iter;
uint64_t copy_tags_migration_last;

extern "C" void guest_touch_pages(uint64_t base, uint64_t size, uint64_t value)
{
	for (uint64_t a = base; a < base + size; a += PAGE_SIZE)
		*reinterpret_cast<volatile uint64_t *>(a) = value;
}

extern "C" void guest_set_tags(uint64_t base, uint64_t size, uint64_t seed)
{
	for (uint64_t a = base; a < base + size; a += mte::GRANULE_SIZE)
		stg(a, copy_tags_pattern(seed, a));
}

extern "C" void guest_check_tags(uint64_t base, uint64_t size, uint64_t seed)
{
	for (uint64_t a = base; a < base + size; a += mte::GRANULE_SIZE) {
		const uint64_t got = ldg(a);

		if (got != copy_tags_pattern(seed, a)) {
			copy_tags_bad_granule = a;
			guest_print("tag mismatch at granule", a);
			GUEST_ASSERT_EQ(got, copy_tags_pattern(seed, a));
		}
	}
}

/* Match must not fault; mismatch must fault once, at this granule. */
static void check_faults_at(uint64_t a, uint8_t tag, uint64_t i)
{
	const uint64_t before = tag_faults.count;

	load(mte::with_tag(a, tag));
	if (tag_faults.count != before) {
		copy_tags_bad_granule = a;
		guest_print("tag check fault with the matching tag at", a);
		GUEST_ASSERT_EQ(tag_faults.count, before);
	}

	load(mte::with_tag(a, copy_tags_wrong_tag(tag, i)));
	if (tag_faults.count != before + 1) {
		copy_tags_bad_granule = a;
		guest_print("no tag check fault with a wrong tag at", a);
		GUEST_ASSERT_EQ(tag_faults.count, before + 1);
	}
	GUEST_ASSERT_EQ(untagged(tag_faults.far), a);
}

extern "C" void guest_check_tag_faults(uint64_t base, uint64_t size, uint64_t seed)
{
	uint64_t i = 0;

	GUEST_ASSERT_EQ((read_sysreg(sctlr_el1) >> sctlr::TCF_SHIFT) & sctlr::TCF_MASK,
			sctlr::TCF_SYNC);
	count_tag_faults();
	for (uint64_t a = base; a < base + size; a += mte::GRANULE_SIZE)
		check_faults_at(a, copy_tags_pattern(seed, a), i++);
	guest_set_exception_handler(nullptr);
}

extern "C" void guest_save_restore(uint64_t pages_base, uint64_t pages_size, uint64_t thp_base,
				   uint64_t thp_size, uint64_t seed)
{
	/* Some granule in the middle of the first range. */
	const uint64_t saved = pages_base + pages_size / 2 + 3 * mte::GRANULE_SIZE;
	const uint8_t saved_tag = copy_tags_pattern(seed, saved);

	guest_set_tags(pages_base, pages_size, seed);
	guest_set_tags(thp_base, thp_size, seed);
	copy_tags_saved_ptr = mte::with_tag(saved, saved_tag);
	/* A checked store: it only works with the right tag. */
	store(copy_tags_saved_ptr, COPY_TAGS_SAVED_DATA);

	write_sysreg(gcr_el1, COPY_TAGS_GCR);
	write_sysreg(rgsr_el1, COPY_TAGS_RGSR);
	write_sysreg(tfsr_el1, COPY_TAGS_TFSR);
	write_sysreg(tfsre0_el1, COPY_TAGS_TFSRE0);
	isb();
	GUEST_ASSERT_EQ(read_sysreg(gcr_el1), COPY_TAGS_GCR);
	GUEST_ASSERT_EQ(read_sysreg(rgsr_el1), COPY_TAGS_RGSR);

	GUEST_SYNC(COPY_TAGS_SYNC_SAVE_POINT);

	/* From here on this runs wherever the host restored us. */
	GUEST_ASSERT_EQ(read_sysreg(gcr_el1), COPY_TAGS_GCR);
	GUEST_ASSERT_EQ(read_sysreg(rgsr_el1), COPY_TAGS_RGSR);
	GUEST_ASSERT_EQ(read_sysreg(tfsr_el1), COPY_TAGS_TFSR);
	GUEST_ASSERT_EQ(read_sysreg(tfsre0_el1), COPY_TAGS_TFSRE0);
	guest_check_tags(pages_base, pages_size, seed);
	guest_check_tags(thp_base, thp_size, seed);

	GUEST_ASSERT_EQ(load(copy_tags_saved_ptr), COPY_TAGS_SAVED_DATA);
	count_tag_faults();
	const uint64_t before = tag_faults.count;

	load(mte::with_tag(saved, copy_tags_wrong_tag(saved_tag, 0)));
	GUEST_ASSERT_EQ(tag_faults.count, before + 1);
	GUEST_ASSERT_EQ(untagged(tag_faults.far), saved);
	load(copy_tags_saved_ptr);
	GUEST_ASSERT_EQ(tag_faults.count, before + 1);
	guest_set_exception_handler(nullptr);
}

extern "C" void guest_stress_tags(uint64_t base, uint64_t size, uint64_t seed)
{
	for (uint64_t round = 0; !copy_tags_stress_stop; round++) {
		for (uint64_t a = base; a < base + size; a += mte::GRANULE_SIZE) {
			/* Unchecked (TCF is off): the copy threads change tags under us. */
			if (!(a % PAGE_SIZE))
				store(a, round);
			stg(a, copy_tags_pattern(seed + round, a));
		}
		GUEST_SYNC(COPY_TAGS_SYNC_ROUND);
	}
}

static void migration_check(uint64_t base, uint64_t size, uint64_t i)
{
	for (uint64_t a = base, page = 0; a < base + size; a += PAGE_SIZE, page++) {
		if (ldg(a) != migration_tag(page, i) || load(a) != migration_data(page, i)) {
			copy_tags_bad_granule = a;
			guest_print("state of the previous iteration lost at granule", a);
			GUEST_ASSERT_EQ(ldg(a), migration_tag(page, i));
			GUEST_ASSERT_EQ(load(a), migration_data(page, i));
		}
	}
}

extern "C" void guest_migration_workload(uint64_t base, uint64_t size)
{
	for (uint64_t i = copy_tags_migration_iter + 1;; i++) {
		migration_check(base, size, i - 1);
		if (copy_tags_migration_last && i > copy_tags_migration_last)
			GUEST_DONE();
		for (uint64_t a = base, page = 0; a < base + size; a += PAGE_SIZE, page++) {
			stg(a, migration_tag(page, i));
			if (migration_stores_data(i))
				store(a, migration_data(page, i));
		}
		copy_tags_migration_iter = i;
		GUEST_SYNC(COPY_TAGS_SYNC_ITERATION);
	}
}
