// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of mte_tags_test: EL1 code that uses MTE the way a guest
 * kernel does (IRG/STG/ST2G/STZG/STGP/LDG on memory mapped Normal Tagged,
 * synchronous and asynchronous tag checking) and reports what it saw
 * through globals the host reads, or through GUEST_ASSERT where the
 * expectation is local to the guest.
 */
#include "mte_tags.hpp"

#include "lib/guest/runtime.hpp"

TagsIrgResult tags_irg_result;
TagsFault tags_faults[GUEST_MAX_VCPUS];
TagsFault tags_sync_faults[TAGS_SYNC_ACCESSES];
uint64_t tags_sync_addr[TAGS_SYNC_ACCESSES];
uint64_t tags_sync_data_after_store;
uint64_t tags_async_tfsr_after_fault;
uint64_t tags_async_tfsr_after_exit;
uint64_t tags_async_tfsr_after_match;
TagsScan tags_tag_scan;
TagsScan tags_data_scan;
TagsIsolationParams tags_iso_params[GUEST_MAX_VCPUS];
TagsIsolationStatus tags_iso_status[GUEST_MAX_VCPUS];
TagsScan tags_race_scan;

namespace
{

using arch::mte::GRANULE_SIZE;
using arch::mte::tag_of;
using arch::mte::with_tag;

/* Stored by the faulting store of guest_sync_tag_fault(), which must not land. */
constexpr uint64_t SYNC_BAD_DATA = 0xbad0'bad0'bad0'bad0;
/* Offset inside the granule, so FAR is seen to be the byte address, not the granule's. */
constexpr uint64_t ACCESS_OFFSET = 8;
/* Flipping the top bit of a tag always gives a different tag. */
constexpr uint64_t OTHER_TAG = 0x8;

/* Tags for guest_store_load_tags(): any distinct non-zero values. */
constexpr uint64_t TAG_A = 0x3;
constexpr uint64_t TAG_B = 0xc;
constexpr uint64_t TAG_C = 0x9;
constexpr uint64_t TAG_D = 0x6;
constexpr uint64_t STORE_LOAD_SEED = 5;
constexpr uint64_t STZG_DATA = 0x5a5a'5a5a'5a5a'5a5a;

/* Isolation worker: a stride through the page that visits every granule. */
constexpr uint64_t GRANULE_STRIDE = 37;

uint64_t cpu_index()
{
	return read_sysreg(mpidr_el1) & arch::mpidr::AFF0_MASK;
}

/* Makes earlier tag check faults visible in TFSR_EL1 before it is read. */
void sync_tag_faults()
{
	asm volatile("dsb sy\n\tisb" : : : "memory");
}

/* Allocation tag access on (SCTLR_EL1.ATA), tag check mode tcf, PSTATE.TCO clear. */
void mte_enable(uint64_t tcf)
{
	using namespace arch::sctlr;
	uint64_t sctlr = read_sysreg(sctlr_el1);

	sctlr &= ~(TCF_MASK << TCF_SHIFT);
	sctlr |= ATA | (tcf << TCF_SHIFT);
	write_sysreg(sctlr_el1, sctlr);
	isb();
	asm volatile("msr tco, #0" : : : "memory");
}

uint64_t irg(uint64_t p)
{
	uint64_t tagged;

	asm volatile("irg %0, %1" : "=r"(tagged) : "r"(p));
	return tagged;
}

void stg(uint64_t tagged)
{
	asm volatile("stg %0, [%0]" : : "r"(tagged) : "memory");
}

void st2g(uint64_t tagged)
{
	asm volatile("st2g %0, [%0]" : : "r"(tagged) : "memory");
}

void stzg(uint64_t tagged)
{
	asm volatile("stzg %0, [%0]" : : "r"(tagged) : "memory");
}

/* Tag and 16 bytes of data of one granule in one instruction. */
void stgp(uint64_t tagged, uint64_t lo, uint64_t hi)
{
	asm volatile("stgp %1, %2, [%0]" : : "r"(tagged), "r"(lo), "r"(hi) : "memory");
}

uint64_t ldg(uint64_t p)
{
	uint64_t v = arch::untagged(p);

	asm volatile("ldg %0, [%1]" : "+r"(v) : "r"(p) : "memory");
	return tag_of(v);
}

/* Single instructions, so the fault handler can skip them by advancing ELR by 4. */
uint64_t load(uint64_t p)
{
	uint64_t v;

	asm volatile("ldr %0, [%1]" : "=r"(v) : "r"(p) : "memory");
	return v;
}

void store(uint64_t p, uint64_t v)
{
	asm volatile("str %0, [%1]" : : "r"(v), "r"(p) : "memory");
}

/* Records a synchronous tag check fault of this vCPU and skips the access. */
bool record_tag_fault(guest_exception_frame *frame, uint64_t vector)
{
	if (vector != arch::vector::SYNC_CUR_SPX ||
	    arch::esr::ec(frame->esr) != arch::esr::EC_DABT_CUR ||
	    (frame->esr & arch::esr::DFSC_MASK) != arch::esr::DFSC_TAG_CHECK)
		return false;

	TagsFault &f = tags_faults[cpu_index()];

	f.count++;
	f.esr = frame->esr;
	f.far = frame->far;
	f.elr = frame->elr;
	frame->elr += 4;
	return true;
}

void scan_note(TagsScan &scan, uint64_t addr, uint64_t found, uint64_t expected)
{
	scan.checked++;
	if (found == expected)
		return;
	if (!scan.mismatches++) {
		scan.first_addr = addr;
		scan.first_found = found;
		scan.first_expected = expected;
	}
}

} // namespace

/* IRG `samples` times with GCR_EL1.Exclude = exclude, RRND = 0, starting from seed. */
extern "C" void guest_irg_sequence(uint64_t base, uint64_t exclude, uint64_t seed, uint64_t samples)
{
	TagsIrgResult &r = tags_irg_result;
	uint64_t model = seed << arch::rgsr::SEED_SHIFT;

	guest_memset(&r, 0, sizeof(r));
	mte_enable(arch::sctlr::TCF_NONE);
	write_sysreg(gcr_el1, exclude & arch::gcr::EXCLUDE_MASK);
	write_sysreg(rgsr_el1, model);
	isb();

	for (uint64_t i = 0; i < samples; i++) {
		const uint64_t tag = tag_of(irg(base));
		const uint64_t rgsr = read_sysreg(rgsr_el1);

		r.generated[tag]++;
		r.model_mismatches += tag != tags_irg_model(model, exclude);
		if (rgsr != model && !r.rgsr_mismatches++) {
			r.first_bad_rgsr = rgsr;
			r.expected_rgsr = model;
		}
	}
}

/* STG/ST2G/STZG set the tags of exactly the granules they address; LDG reads them. */
extern "C" void guest_store_load_tags(uint64_t page)
{
	auto granule = [page](uint64_t n) { return page + n * GRANULE_SIZE; };

	mte_enable(arch::sctlr::TCF_NONE);

	/* One tag per granule: granule 3's tag must not show up in granule 0. */
	stg(with_tag(granule(0), TAG_A));
	stg(with_tag(granule(3), TAG_B));
	GUEST_ASSERT_EQ(ldg(granule(0)), TAG_A);
	GUEST_ASSERT_EQ(ldg(granule(1)), 0);
	GUEST_ASSERT_EQ(ldg(granule(2)), 0);
	GUEST_ASSERT_EQ(ldg(granule(3)), TAG_B);
	/* LDG ignores the address's own tag. */
	GUEST_ASSERT_EQ(ldg(with_tag(granule(3), TAG_A)), TAG_B);

	/* Every granule of the page on its own. */
	for (uint64_t g = 0; g < arch::mte::GRANULES_PER_PAGE; g++)
		stg(with_tag(granule(g), tags_pattern(STORE_LOAD_SEED, granule(g))));
	for (uint64_t g = 0; g < arch::mte::GRANULES_PER_PAGE; g++)
		GUEST_ASSERT_EQ(ldg(granule(g)), tags_pattern(STORE_LOAD_SEED, granule(g)));

	/* ST2G: exactly two granules. */
	st2g(with_tag(granule(4), TAG_C));
	GUEST_ASSERT_EQ(ldg(granule(3)), tags_pattern(STORE_LOAD_SEED, granule(3)));
	GUEST_ASSERT_EQ(ldg(granule(4)), TAG_C);
	GUEST_ASSERT_EQ(ldg(granule(5)), TAG_C);
	GUEST_ASSERT_EQ(ldg(granule(6)), tags_pattern(STORE_LOAD_SEED, granule(6)));

	/* STZG: tag and zeroed data of one granule, the next one untouched. */
	for (uint64_t off = 0; off < 2 * GRANULE_SIZE; off += sizeof(uint64_t))
		store(granule(8) + off, STZG_DATA);
	stzg(with_tag(granule(8), TAG_D));
	GUEST_ASSERT_EQ(ldg(granule(8)), TAG_D);
	GUEST_ASSERT_EQ(ldg(granule(9)), tags_pattern(STORE_LOAD_SEED, granule(9)));
	for (uint64_t off = 0; off < GRANULE_SIZE; off += sizeof(uint64_t)) {
		GUEST_ASSERT_EQ(load(granule(8) + off), 0);
		GUEST_ASSERT_EQ(load(granule(9) + off), STZG_DATA);
	}
}

/* A load and a store with a wrong pointer tag under TCF=sync; one matching access. */
extern "C" void guest_sync_tag_fault(uint64_t page)
{
	const uint64_t tag = tags_pattern(STORE_LOAD_SEED, page);
	const uint64_t good = with_tag(page, tag) + ACCESS_OFFSET;
	const uint64_t bad = with_tag(page, tag ^ OTHER_TAG) + ACCESS_OFFSET;
	TagsFault &f = tags_faults[cpu_index()];

	guest_memset(&f, 0, sizeof(f));
	guest_set_exception_handler(record_tag_fault);
	mte_enable(arch::sctlr::TCF_SYNC);
	stg(with_tag(page, tag));

	store(good, TAGS_SYNC_GOOD_DATA);
	GUEST_ASSERT_EQ(load(good), TAGS_SYNC_GOOD_DATA);
	GUEST_ASSERT_EQ(f.count, 0);

	tags_sync_addr[TAGS_SYNC_LOAD] = bad;
	load(bad);
	tags_sync_faults[TAGS_SYNC_LOAD] = f;

	tags_sync_addr[TAGS_SYNC_STORE] = bad;
	store(bad, SYNC_BAD_DATA);
	tags_sync_faults[TAGS_SYNC_STORE] = f;

	/* The faulting store must not have reached memory. */
	tags_sync_data_after_store = load(good);
	guest_set_exception_handler(nullptr);
}

/* A load with a wrong pointer tag under TCF=async: TFSR_EL1, not an exception. */
extern "C" void guest_async_tag_fault(uint64_t page)
{
	const uint64_t tag = tags_pattern(STORE_LOAD_SEED, page);
	TagsFault &f = tags_faults[cpu_index()];

	guest_memset(&f, 0, sizeof(f));
	guest_set_exception_handler(record_tag_fault);
	mte_enable(arch::sctlr::TCF_ASYNC);
	write_sysreg(tfsr_el1, 0);
	isb();
	stg(with_tag(page, tag));

	load(with_tag(page, tag));
	sync_tag_faults();
	tags_async_tfsr_after_match = read_sysreg(tfsr_el1);

	load(with_tag(page, tag ^ OTHER_TAG));
	sync_tag_faults();
	tags_async_tfsr_after_fault = read_sysreg(tfsr_el1);

	/* Still pending after a trip through the host. */
	GUEST_SYNC(TAGS_ASYNC_FAULT_PENDING);
	tags_async_tfsr_after_exit = read_sysreg(tfsr_el1);

	write_sysreg(tfsr_el1, 0);
	isb();
	GUEST_ASSERT_EQ(read_sysreg(tfsr_el1), 0);
	GUEST_ASSERT_EQ(f.count, 0);
	guest_set_exception_handler(nullptr);
}

/* Tags (STGP, if tag_seed) and data of every granule in [base, base + len). */
extern "C" void guest_write_pattern(uint64_t base, uint64_t len, uint64_t tag_seed,
				    uint64_t data_seed)
{
	if (tag_seed != TAGS_NO_PATTERN)
		mte_enable(arch::sctlr::TCF_NONE);
	for (uint64_t addr = base; addr < base + len; addr += GRANULE_SIZE) {
		const uint64_t lo = tags_data(data_seed, addr);
		const uint64_t hi = tags_data(data_seed, addr + sizeof(uint64_t));

		if (tag_seed != TAGS_NO_PATTERN) {
			stgp(with_tag(addr, tags_pattern(tag_seed, addr)), lo, hi);
		} else {
			store(addr, lo);
			store(addr + sizeof(uint64_t), hi);
		}
	}
}

/* Compares every granule's tag and every data word of [base, base + len). */
extern "C" void guest_scan(uint64_t base, uint64_t len, uint64_t tag_seed, uint64_t data_seed,
			   TagsDataLayout layout)
{
	guest_memset(&tags_tag_scan, 0, sizeof(tags_tag_scan));
	guest_memset(&tags_data_scan, 0, sizeof(tags_data_scan));
	/* No tag checks: data is read through untagged pointers. */
	mte_enable(arch::sctlr::TCF_NONE);

	for (uint64_t addr = base; addr < base + len; addr += GRANULE_SIZE)
		scan_note(tags_tag_scan, addr, ldg(addr), tags_pattern(tag_seed, addr));

	for (uint64_t addr = base; addr < base + len; addr += sizeof(uint64_t))
		scan_note(tags_data_scan, addr, load(addr),
			  tags_expected_data(layout, data_seed, (addr - base) / arch::PAGE_SIZE,
					     addr));
}

/* The same word everywhere; tags from the pattern unless tag_seed is TAGS_NO_PATTERN. */
extern "C" void guest_fill_identical(uint64_t base, uint64_t len, uint64_t word, uint64_t tag_seed)
{
	if (tag_seed != TAGS_NO_PATTERN)
		mte_enable(arch::sctlr::TCF_NONE);
	for (uint64_t addr = base; addr < base + len; addr += GRANULE_SIZE) {
		if (tag_seed != TAGS_NO_PATTERN) {
			stgp(with_tag(addr, tags_pattern(tag_seed, addr)), word, word);
		} else {
			store(addr, word);
			store(addr + sizeof(uint64_t), word);
		}
	}
}

/*
 * Sets up this vCPU's MTE state from tags_iso_params[vCPU id], then checks
 * on every iteration that it is still its own: GCR_EL1, TFSRE0_EL1, the
 * RGSR_EL1 sequence IRG must follow, the tags of its page, and its tag check
 * fault mode (sync: exception with the right FAR, TFSR_EL1 stays clear;
 * async: no exception, TFSR_EL1.TF0 set by the fault of the previous
 * iteration, across the SYNC exit in between).
 */
extern "C" void guest_isolation_worker()
{
	const uint64_t idx = cpu_index();
	const TagsIsolationParams &p = tags_iso_params[idx];
	TagsIsolationStatus &st = tags_iso_status[idx];
	const bool sync = p.tcf == arch::sctlr::TCF_SYNC;
	uint64_t model = p.seed << arch::rgsr::SEED_SHIFT;

	guest_memset(&st, 0, sizeof(st));
	guest_memset(&tags_faults[idx], 0, sizeof(tags_faults[idx]));
	guest_set_exception_handler(record_tag_fault);
	mte_enable(p.tcf);
	write_sysreg(gcr_el1, p.gcr_exclude);
	write_sysreg(rgsr_el1, model);
	write_sysreg(tfsre0_el1, p.tfsre0);
	write_sysreg(tfsr_el1, 0);
	isb();
	for (uint64_t g = 0; g < arch::mte::GRANULES_PER_PAGE; g++) {
		const uint64_t addr = p.page + g * GRANULE_SIZE;

		stg(with_tag(addr, tags_pattern(p.tag_seed, addr)));
	}
	if (!sync)
		load(with_tag(p.page, tags_pattern(p.tag_seed, p.page) ^ OTHER_TAG));

	for (uint64_t i = 0; i < p.iterations; i++) {
		const uint64_t addr =
			p.page + (i * GRANULE_STRIDE) % arch::mte::GRANULES_PER_PAGE * GRANULE_SIZE;
		const uint64_t tag = tags_pattern(p.tag_seed, addr);
		const uint64_t bad = with_tag(addr, tag ^ OTHER_TAG);
		const uint64_t faults_before = tags_faults[idx].count;

		GUEST_ASSERT_EQ(read_sysreg(gcr_el1), p.gcr_exclude);
		GUEST_ASSERT_EQ(read_sysreg(tfsre0_el1), p.tfsre0);
		GUEST_ASSERT_EQ(read_sysreg(rgsr_el1), model);
		for (uint64_t k = 0; k < TAGS_IRG_PER_ITERATION; k++) {
			const uint64_t t = tag_of(irg(p.page));

			GUEST_ASSERT_EQ(t, tags_irg_model(model, p.gcr_exclude));
			st.tags_generated++;
		}
		GUEST_ASSERT_EQ(read_sysreg(rgsr_el1), model);
		GUEST_ASSERT_EQ(ldg(addr), tag);
		load(with_tag(addr, tag));
		GUEST_ASSERT_EQ(tags_faults[idx].count, faults_before);

		sync_tag_faults();
		if (sync) {
			GUEST_ASSERT_EQ(read_sysreg(tfsr_el1), 0);
			load(bad);
			GUEST_ASSERT_EQ(tags_faults[idx].count, faults_before + 1);
			GUEST_ASSERT_EQ(tags_faults[idx].far & TAGS_FAR_KNOWN_MASK,
					bad & TAGS_FAR_KNOWN_MASK);
			sync_tag_faults();
			GUEST_ASSERT_EQ(read_sysreg(tfsr_el1), 0);
			st.sync_faults++;
		} else {
			GUEST_ASSERT_EQ(read_sysreg(tfsr_el1), arch::tfsr::TF0);
			write_sysreg(tfsr_el1, 0);
			isb();
			load(bad);
			GUEST_ASSERT_EQ(tags_faults[idx].count, faults_before);
			st.async_faults++;
		}
		st.iterations = i + 1;
		GUEST_SYNC(i);
	}
	/* The handler stays: the other vCPUs of this VM may still be running. */
}

/*
 * First-touch race, the tagging side: tags [base, base + len) with
 * tag_seed's pattern, then reads every tag back. A tag may also be other_seed's (the
 * VMM tagging the same page at the same time), but never anything else:
 * in particular never 0, which is what a late first initialisation leaves.
 */
extern "C" void guest_tag_then_verify(uint64_t base, uint64_t len, uint64_t tag_seed,
				      uint64_t other_seed)
{
	guest_memset(&tags_race_scan, 0, sizeof(tags_race_scan));
	mte_enable(arch::sctlr::TCF_NONE);
	for (uint64_t addr = base; addr < base + len; addr += GRANULE_SIZE)
		stg(with_tag(addr, tags_pattern(tag_seed, addr)));
	for (uint64_t addr = base; addr < base + len; addr += GRANULE_SIZE) {
		const uint64_t tag = ldg(addr);
		const uint64_t want = tags_pattern(tag_seed, addr);

		if (other_seed != TAGS_NO_PATTERN && tag == tags_pattern(other_seed, addr))
			scan_note(tags_race_scan, addr, tag, tag);
		else
			scan_note(tags_race_scan, addr, tag, want);
	}
}

/*
 * First-touch race, the other side: a store that faults the memory in
 * (a load could map the huge zero page, and no THP would be made).
 */
extern "C" void guest_touch(uint64_t addr)
{
	store(addr, 0);
}
