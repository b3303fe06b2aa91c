// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_ARM_MTE_COPY_TAGS, the VM ioctl that lets a VMM save and restore the
 * MTE allocation tags of guest memory without a PROT_MTE mapping. This is
 * what makes an MTE guest migratable, so every part of the contract is
 * checked against what the guest itself sees:
 *
 *  - round trips: tags the guest sets (pages, a THP block, two adjacent
 *    memslots in one call) are exactly what FROM_GUEST returns; tags the
 *    VMM writes are exactly what LDG reads and what tag checking enforces;
 *  - memory nobody touched reads as zero tags and can be given tags;
 *  - every argument error returns its documented errno, before any page;
 *  - partial progress: the byte count of the whole pages done before an
 *    error (memslot end, read-only memslot, buffer fault), and no page is
 *    ever left half updated;
 *  - TO_GUEST marks pages in the dirty log, FROM_GUEST does not;
 *  - tags written by TO_GUEST survive swap-out and swap-in through the
 *    VMM's untagged mapping;
 *  - a full save/restore (RAM, tags, every ONE_REG register) into a fresh
 *    VM resumes the guest with its tags, MTE registers and tag checking;
 *  - concurrent copies, vCPU faults, memslot changes and MMU-notifier
 *    invalidations give only documented results and no kernel splat;
 *  - a pre-copy live migration with the dirty log loses no tag and no data,
 *    including tags changed by STG alone;
 *  - a VMM killed in the middle of a copy, a fault storm or memslot changes
 *    leaves no page, pin or lock behind.
 *  - with the VMM's own kernel allocations failing at random (failslab,
 *    fail_page_alloc), enabling MTE, the guest's faults and copies give a
 *    clean errno or a partial count, lose no tag and leak nothing;
 *  - three MTE VMs under memory pressure (swap, THP splits, compaction,
 *    khugepaged, KSM, memslot churn, copies both ways) lose no tag or data.
 *
 * Under mte=off only the "not enabled" rule is asserted; everything else
 * skips, since KVM_CAP_ARM_MTE cannot be enabled. The THP and swap tests
 * need madvise() (MADV_HUGEPAGE, MADV_PAGEOUT) and skip, saying so, on a
 * kernel built without it; the fault injection tests skip on a kernel
 * without CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC or their debugfs knobs.
 */
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <poll.h>
#include <random>
#include <sched.h>
#include <source_location>
#include <span>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "lib/arch.hpp"
#include "lib/copy_tags.hpp"
#include "lib/host_mm.hpp"
#include "lib/host_mte.hpp"
#include "lib/kmsg.hpp"
#include "lib/kvm.hpp"
#include "lib/mm_probe.hpp"
#include "lib/mte_vm.hpp"
#include "lib/test.hpp"
#include "lib/vcpu_state.hpp"
#include "mte_copy_tags.hpp"

using namespace kvmt;

namespace
{

constexpr uint64_t PAGE = arch::PAGE_SIZE;
constexpr uint64_t TO_GUEST = KVM_ARM_TAGS_TO_GUEST;
constexpr uint64_t FROM_GUEST = KVM_ARM_TAGS_FROM_GUEST;
constexpr uint64_t DIRECTIONS[] = {TO_GUEST, FROM_GUEST};

/* Fill for buffers the kernel should overwrite: not a valid tag byte. */
constexpr uint8_t POISON = 0xff;

/* Round-trip layout: small pages, a THP block, and two adjacent memslots. */
constexpr uint32_t PAGES_SLOT = 1;
constexpr uint64_t PAGES_GPA = 0x8000'0000;
constexpr uint64_t PAGES_SIZE = 8 * PAGE;
constexpr uint32_t THP_SLOT = 2;
constexpr uint64_t THP_GPA = 0x8020'0000;
constexpr uint64_t THP_SIZE = arch::BLOCK_SIZE_2M;
constexpr uint32_t ADJ_LOW_SLOT = 3;
constexpr uint64_t ADJ_LOW_GPA = 0x8040'0000;
constexpr uint64_t ADJ_LOW_SIZE = 3 * PAGE;
constexpr uint32_t ADJ_HIGH_SLOT = 4;
constexpr uint64_t ADJ_HIGH_GPA = ADJ_LOW_GPA + ADJ_LOW_SIZE;
constexpr uint64_t ADJ_HIGH_SIZE = 5 * PAGE;

/* Slots of the other tests; each test uses only what it needs. */
constexpr uint32_t EXTRA_SLOT_A = 5;
constexpr uint32_t EXTRA_SLOT_B = 6;
constexpr uint32_t EXTRA_SLOT_C = 7;
constexpr uint64_t EXTRA_GPA_A = 0x8100'0000;
constexpr uint64_t EXTRA_GPA_B = 0x8200'0000;
constexpr uint64_t EXTRA_GPA_C = 0x8300'0000;

/* No memslot covers this IPA in any test. */
constexpr uint64_t UNBACKED_GPA = 0x9000'0000;

/* The largest length the ABI accepts: the count must fit the int return value. */
constexpr uint64_t MAX_LENGTH = (uint64_t{1} << 31) - PAGE;
/* A 2-page slot with nothing above it up to MAX_LENGTH. */
constexpr uint64_t LIMIT_GPA = uint64_t{1} << 32;
constexpr uint64_t LIMIT_SLOT_SIZE = 2 * PAGE;
/* Page-aligned IPA in the last page of the 64-bit space. */
constexpr uint64_t LAST_PAGE_IPA = ~uint64_t{0} & ~(PAGE - 1);
/* A kernel linear-map address: never accessible from user space. */
constexpr uint64_t KERNEL_ADDR = 0xffff'0000'0000'0000;

/* Seeds of the tag patterns: what the guest sets, what the VMM writes. */
constexpr uint64_t SEED_GUEST = 0x6775'6573'7400'0001;
constexpr uint64_t SEED_VMM = 0x766d'6d00'0000'0002;
constexpr uint64_t SEED_OLD = 0x6f6c'6400'0000'0003;

/* Save/restore: a small slot 0 keeps the tag copy of guest RAM quick. */
constexpr uint64_t SR_RAM_SIZE = 4 << 20;
constexpr uint64_t SR_PAGES_SIZE = 5 * PAGE;
/* Tag copy chunk of the migration loop; no slot size is a multiple of it. */
constexpr uint64_t SR_CHUNK = 3 * PAGE;

/* Concurrency: how long the threads race, and the slots they share. */
constexpr auto STRESS_DURATION = std::chrono::seconds(3);
constexpr uint64_t STRESS_VCPU_SIZE = 64 * PAGE;
constexpr uint64_t STRESS_STABLE_SIZE = 16 * PAGE;
constexpr uint64_t STRESS_CHURN_SIZE = 8 * PAGE;
constexpr uint64_t STRESS_MAX_PAGES = 12;
constexpr unsigned int STRESS_VCPUS = 2;
constexpr unsigned int STRESS_REMAP_EVERY = 4;
/* A copier goes against its preferred direction once in this many copies. */
constexpr unsigned int STRESS_OTHER_WAY_ONE_IN = 4;
constexpr unsigned int STRESS_PAGEOUT_EVERY = 7;

/* MADV_PAGEOUT is advice: a page may still sit on a per-CPU LRU list. */
constexpr unsigned int PAGEOUT_ATTEMPTS = 10;

/* SCTLR_EL1 for a guest using MTE: tag access, optionally sync tag checks. */
enum class TagCheck { off, sync };

constexpr uint64_t mte_sctlr(TagCheck check)
{
	using namespace arch::sctlr;

	return GUEST_DEFAULT | ATA | (check == TagCheck::sync ? TCF_SYNC << TCF_SHIFT : 0);
}

template <typename Fn, typename... Args>
void run_guest(Vcpu &vcpu, TagCheck check, Fn fn, Args... args)
{
	vcpu.start(fn, args...);
	vcpu.set_reg(reg::SCTLR_EL1, mte_sctlr(check));
	vcpu.run_until_done();
}

std::vector<uint8_t> pattern_tags(uint64_t gpa, uint64_t size, uint64_t seed)
{
	std::vector<uint8_t> tags(mte_tag_bytes(size));

	for (uint64_t i = 0; i < tags.size(); i++)
		tags[i] = copy_tags_pattern(seed, gpa + i * arch::mte::GRANULE_SIZE);
	return tags;
}

/* Granules whose tag byte in buf is not the pattern's; the first one is reported. */
uint64_t pattern_mismatches(const uint8_t *buf, uint64_t gpa, uint64_t size, uint64_t seed)
{
	uint64_t bad = 0;

	for (uint64_t i = 0; i < mte_tag_bytes(size); i++) {
		const uint64_t granule = gpa + i * arch::mte::GRANULE_SIZE;
		const uint8_t want = copy_tags_pattern(seed, granule);

		if (buf[i] == want)
			continue;
		if (!bad++)
			ktest::diag("granule at IPA " + hex(granule) + ": tag byte " + hex(buf[i]) +
				    ", expected " + hex(want));
	}
	return bad;
}

/* FROM_GUEST of the whole range, which must fully succeed. */
std::vector<uint8_t> read_tags(const Vm &vm, uint64_t gpa, uint64_t size)
{
	std::vector<uint8_t> tags(mte_tag_bytes(size), POISON);

	EXPECT_THAT(mte_copy_tags(vm, gpa, size, tags.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(size));
	return tags;
}

/* TO_GUEST of the pattern over the whole range, which must fully succeed. */
void write_tags(const Vm &vm, uint64_t gpa, uint64_t size, uint64_t seed)
{
	std::vector<uint8_t> tags = pattern_tags(gpa, size, seed);

	EXPECT_THAT(mte_copy_tags(vm, gpa, size, tags.data(), TO_GUEST),
		    SyscallSucceedsWithValue(size));
}

void expect_tags(const Vm &vm, uint64_t gpa, uint64_t size, uint64_t seed)
{
	const std::vector<uint8_t> tags = read_tags(vm, gpa, size);

	EXPECT_EQ(pattern_mismatches(tags.data(), gpa, size, seed), 0);
}

struct Range {
	uint64_t gpa;
	uint64_t size;
};

/* SKIP unless the kernel has madvise(), which what is needed depends on. */
void require_madvise(const std::string &what)
{
	if (!madvise_available())
		SKIP("madvise() is not built into this kernel (CONFIG_ADVISE_SYSCALLS=n), "
		     "needed for " +
		     what);
}

/* Fails the test on every splat the kernel logged since kmsg started watching. */
void expect_quiet_kernel_log(KmsgWatch &kmsg,
			     std::source_location loc = std::source_location::current())
{
	EXPECT_TRUE(kmsg.available());
	for (const std::string &splat : kmsg.new_splats())
		ktest::record_failure(loc, "kernel log: " + splat);
}

/* Round trips run over small pages and two adjacent memslots, or over a THP block. */
enum class Layout { pages, thp };

/* Whole slots (the adjacent pair as one range) for the guest and TO_GUEST. */
constexpr Range PAGES_SLOTS[] = {
	{PAGES_GPA, PAGES_SIZE},
	{ADJ_LOW_GPA, ADJ_LOW_SIZE + ADJ_HIGH_SIZE},
};
constexpr Range THP_SLOTS[] = {{THP_GPA, THP_SIZE}};

/* What FROM_GUEST reads: whole slots, interior slices, across the slot boundary. */
constexpr Range PAGES_READS[] = {
	{PAGES_GPA, PAGES_SIZE},
	{PAGES_GPA + 2 * PAGE, 3 * PAGE},
	{ADJ_LOW_GPA, ADJ_LOW_SIZE + ADJ_HIGH_SIZE},
	{ADJ_HIGH_GPA - 2 * PAGE, 4 * PAGE},
};
constexpr Range THP_READS[] = {
	{THP_GPA, THP_SIZE},
	{THP_GPA + THP_SIZE / 2 + PAGE, 5 * PAGE},
};

/* The round-trip VM with the slots of one layout. */
struct RoundTripVm {
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	MemRegion *thp = nullptr;
	std::span<const Range> slots;
	std::span<const Range> reads;

	explicit RoundTripVm(Layout layout)
	{
		if (layout == Layout::thp) {
			RegionSpec spec = tagged_region(THP_SLOT, THP_GPA, THP_SIZE);

			require_madvise("MADV_HUGEPAGE");
			spec.thp = true;
			thp = &vm.add_region(spec);
			slots = THP_SLOTS;
			reads = THP_READS;
			return;
		}
		vm.add_region(tagged_region(PAGES_SLOT, PAGES_GPA, PAGES_SIZE));
		vm.add_region(tagged_region(ADJ_LOW_SLOT, ADJ_LOW_GPA, ADJ_LOW_SIZE));
		vm.add_region(tagged_region(ADJ_HIGH_SLOT, ADJ_HIGH_GPA, ADJ_HIGH_SIZE));
		slots = PAGES_SLOTS;
		reads = PAGES_READS;
	}

	/* The THP slot must really be one huge page, or the test proves less. */
	void assert_thp_backed() const
	{
		if (thp)
			ASSERT_EQ(anon_huge_bytes(thp->host()), THP_SIZE);
	}
};

void from_guest_reads_guest_tags(const Layout &layout)
{
	RoundTripVm t(layout);
	Vcpu &vcpu = t.vm.add_vcpu(0);

	for (const Range &r : t.slots)
		run_guest(vcpu, TagCheck::off, guest_set_tags, r.gpa, r.size, SEED_GUEST);
	t.assert_thp_backed();

	for (const Range &r : t.reads) {
		const std::vector<uint8_t> tags = read_tags(t.vm, r.gpa, r.size);

		EXPECT_EQ(pattern_mismatches(tags.data(), r.gpa, r.size, SEED_GUEST), 0);
	}
}

void to_guest_tags_read_by_guest(const Layout &layout)
{
	RoundTripVm t(layout);
	Vcpu &vcpu = t.vm.add_vcpu(0);

	/* The guest tags the first half of each range, the VMM then overwrites all of it. */
	for (const Range &r : t.slots)
		run_guest(vcpu, TagCheck::off, guest_set_tags, r.gpa, r.size / 2, SEED_GUEST);
	for (const Range &r : t.slots)
		write_tags(t.vm, r.gpa, r.size, SEED_VMM);
	t.assert_thp_backed();

	for (const Range &r : t.slots)
		run_guest(vcpu, TagCheck::off, guest_check_tags, r.gpa, r.size, SEED_VMM);
	for (const Range &r : t.reads)
		expect_tags(t.vm, r.gpa, r.size, SEED_VMM);
}

void to_guest_tags_enforced_by_tag_checks(const Layout &layout)
{
	RoundTripVm t(layout);
	Vcpu &vcpu = t.vm.add_vcpu(0);

	for (const Range &r : t.slots)
		write_tags(t.vm, r.gpa, r.size, SEED_VMM);
	for (const Range &r : t.slots)
		run_guest(vcpu, TagCheck::sync, guest_check_tag_faults, r.gpa, r.size, SEED_VMM);
	t.assert_thp_backed();
}

/* A buffer whose tail is PROT_NONE: only readable_bytes of it may be used. */
class EdgeBuffer
{
public:
	explicit EdgeBuffer(size_t readable_bytes)
		: map_(Mapping::map("mmap(edge buffer)", nullptr, 2 * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
	{
		uint8_t *base = static_cast<uint8_t *>(map_.get());

		check(make_result("mprotect(PROT_NONE)", mprotect(base + PAGE, PAGE, PROT_NONE)));
		data_ = base + PAGE - readable_bytes;
	}

	uint8_t *data() const { return data_; }

private:
	Mapping map_;
	uint8_t *data_;
};

/* An address range that was mapped and is no longer. */
void *unmapped_address()
{
	void *p = mmap(nullptr, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		throw SysError("mmap", errno);
	check(make_result("munmap", munmap(p, PAGE)));
	return p;
}

/* Pushes [addr, addr + len) out to swap; fails the test if it stays resident. */
void page_out(void *addr, size_t len)
{
	const size_t pages = len / PAGE;

	for (unsigned int i = 0; i < PAGEOUT_ATTEMPTS && pages_swapped_out(addr, len) < pages; i++)
		check(make_result("madvise(MADV_PAGEOUT)", madvise(addr, len, MADV_PAGEOUT)));
	ASSERT_EQ(pages_swapped_out(addr, len), pages);
}

std::vector<uint64_t> get_dirty_log(const Vm &vm, uint32_t slot, uint64_t size)
{
	constexpr uint64_t bits_per_word = 64;
	std::vector<uint64_t> bitmap((size / PAGE + bits_per_word - 1) / bits_per_word);
	kvm_dirty_log log = {};

	log.slot = slot;
	log.dirty_bitmap = bitmap.data();
	check(vm.ioctl_raw(KVM_GET_DIRTY_LOG, &log));
	return bitmap;
}

std::vector<uint64_t> dirty_pages(const std::vector<uint64_t> &bitmap)
{
	constexpr uint64_t bits_per_word = 64;
	std::vector<uint64_t> pages;

	for (uint64_t i = 0; i < bitmap.size() * bits_per_word; i++)
		if (bitmap[i / bits_per_word] & (uint64_t{1} << (i % bits_per_word)))
			pages.push_back(i);
	return pages;
}

std::string page_list(const std::vector<uint64_t> &pages)
{
	std::string s = "{";

	for (uint64_t p : pages)
		s += (s.size() > 1 ? ", " : "") + std::to_string(p);
	return s + "}";
}

} // namespace

/* Without KVM_CAP_ARM_MTE enabled on the VM, the ioctl is refused even with valid arguments. */
TEST(mte_copy_tags, einval_unless_mte_enabled)
{
	Kvm kvm;
	Vm vm(kvm);
	std::vector<uint8_t> tags = pattern_tags(PAGES_GPA, PAGES_SIZE, SEED_VMM);

	vm.add_region(tagged_region(PAGES_SLOT, PAGES_GPA, PAGES_SIZE));
	for (uint64_t dir : DIRECTIONS)
		EXPECT_THAT(mte_copy_tags(vm, PAGES_GPA, PAGES_SIZE, tags.data(), dir),
			    SyscallFailsWithErrno(EINVAL));

	if (kvm.check_extension(KVM_CAP_ARM_MTE) <= 0) {
		/* Host without MTE: the capability cannot make the call valid. */
		EXPECT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallFailsWithErrno(EINVAL));
		EXPECT_THAT(mte_copy_tags(vm, PAGES_GPA, PAGES_SIZE, tags.data(), TO_GUEST),
			    SyscallFailsWithErrno(EINVAL));
		return;
	}

	/* The very same calls on the same VM work once MTE is enabled. */
	ASSERT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallSucceeds());
	for (uint64_t dir : DIRECTIONS)
		EXPECT_THAT(mte_copy_tags(vm, PAGES_GPA, PAGES_SIZE, tags.data(), dir),
			    SyscallSucceedsWithValue(PAGES_SIZE));
	EXPECT_EQ(pattern_mismatches(tags.data(), PAGES_GPA, PAGES_SIZE, SEED_VMM), 0);
}

/*
 * Round trips over small pages (two adjacent memslots read and written in
 * one call) and over a THP-backed 2 MiB block:
 *  - FROM_GUEST returns exactly the tags the guest set;
 *  - TO_GUEST tags are exactly what LDG reads, over touched and untouched
 *    pages alike;
 *  - tag checking enforces the TO_GUEST tags: synchronous faults exactly on
 *    mismatching pointers.
 */
constexpr ktest::Variant<Layout> FROM_GUEST_ROUND_TRIPS[] = {
	{"from_guest_reads_guest_tags", Layout::pages},
	{"thp_from_guest_reads_guest_tags", Layout::thp},
};
TEST_VARIANTS(mte_copy_tags, FROM_GUEST_ROUND_TRIPS, from_guest_reads_guest_tags);

constexpr ktest::Variant<Layout> TO_GUEST_ROUND_TRIPS[] = {
	{"to_guest_tags_read_by_guest", Layout::pages},
	{"thp_to_guest_tags_read_by_guest", Layout::thp},
};
TEST_VARIANTS(mte_copy_tags, TO_GUEST_ROUND_TRIPS, to_guest_tags_read_by_guest);

constexpr ktest::Variant<Layout> TAG_CHECK_ROUND_TRIPS[] = {
	{"to_guest_tags_enforced_by_tag_checks", Layout::pages},
	{"thp_to_guest_tags_enforced_by_tag_checks", Layout::thp},
};
TEST_VARIANTS(mte_copy_tags, TAG_CHECK_ROUND_TRIPS, to_guest_tags_enforced_by_tag_checks);

/* Memory nobody touched reads as zero tags, and TO_GUEST gives it tags the guest sees. */
TEST(mte_copy_tags, untouched_memory_reads_zero_then_takes_tags)
{
	constexpr uint64_t size = 4 * PAGE;
	constexpr struct {
		uint32_t slot;
		uint64_t gpa;
		Backing backing;
	} slots[] = {
		{EXTRA_SLOT_A, EXTRA_GPA_A, Backing::anon_private},
		{EXTRA_SLOT_B, EXTRA_GPA_B, Backing::anon_shared},
		{EXTRA_SLOT_C, EXTRA_GPA_C, Backing::memfd},
	};
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);

	for (const auto &s : slots) {
		RegionSpec spec = tagged_region(s.slot, s.gpa, size);

		spec.backing = s.backing;
		vm.add_region(spec);
	}
	Vcpu &vcpu = vm.add_vcpu(0);

	for (const auto &s : slots) {
		const std::vector<uint8_t> tags = read_tags(vm, s.gpa, size);

		EXPECT_EQ(std::count(tags.begin(), tags.end(), 0), mte_tag_bytes(size));
		write_tags(vm, s.gpa, size, SEED_VMM);
		expect_tags(vm, s.gpa, size, SEED_VMM);
		run_guest(vcpu, TagCheck::off, guest_check_tags, s.gpa, size, SEED_VMM);
	}
}

namespace
{

/* A VM with MTE and one tagged slot whose tags are the SEED_OLD pattern. */
struct ArgsVm {
	static constexpr uint64_t GPA = EXTRA_GPA_A;
	static constexpr uint64_t SIZE = 4 * PAGE;

	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	std::vector<uint8_t> tags = pattern_tags(GPA, SIZE, SEED_VMM);

	ArgsVm()
	{
		vm.add_region(tagged_region(EXTRA_SLOT_A, GPA, SIZE));
		write_tags(vm, GPA, SIZE, SEED_OLD);
	}

	kvm_arm_copy_mte_tags args(uint64_t flags) const
	{
		kvm_arm_copy_mte_tags a = {};

		a.guest_ipa = GPA;
		a.length = SIZE;
		a.addr = const_cast<uint8_t *>(tags.data());
		a.flags = flags;
		return a;
	}

	/* A refused TO_GUEST must not have changed a single tag. */
	void expect_unchanged() const { expect_tags(vm, GPA, SIZE, SEED_OLD); }
};

} // namespace

/* flags other than TO_GUEST/FROM_GUEST are EINVAL, even with length 0. */
TEST(mte_copy_tags, einval_for_unknown_flags)
{
	constexpr uint64_t bad_flags[] = {2, 3, uint64_t{1} << 63, ~uint64_t{0}};
	ArgsVm t;

	for (uint64_t flags : bad_flags) {
		kvm_arm_copy_mte_tags a = t.args(flags);

		EXPECT_THAT(mte_copy_tags_raw(t.vm, a), SyscallFailsWithErrno(EINVAL));
		a.length = 0;
		EXPECT_THAT(mte_copy_tags_raw(t.vm, a), SyscallFailsWithErrno(EINVAL));
	}
	t.expect_unchanged();
}

/* Either reserved word non-zero is EINVAL. */
TEST(mte_copy_tags, einval_for_nonzero_reserved)
{
	constexpr uint64_t values[] = {1, uint64_t{1} << 63};
	ArgsVm t;

	for (uint64_t dir : DIRECTIONS)
		for (unsigned int i = 0; i < std::size(kvm_arm_copy_mte_tags{}.reserved); i++)
			for (uint64_t v : values) {
				kvm_arm_copy_mte_tags a = t.args(dir);

				a.reserved[i] = v;
				EXPECT_THAT(mte_copy_tags_raw(t.vm, a),
					    SyscallFailsWithErrno(EINVAL));
			}
	t.expect_unchanged();
}

/* guest_ipa or length not page aligned is EINVAL, granule alignment is not enough. */
TEST(mte_copy_tags, einval_for_unaligned_ipa_or_length)
{
	constexpr uint64_t ipa_offsets[] = {1, arch::mte::GRANULE_SIZE, PAGE / 2, PAGE - 1};
	constexpr uint64_t lengths[] = {1, arch::mte::GRANULE_SIZE, PAGE - arch::mte::GRANULE_SIZE,
					PAGE + arch::mte::GRANULE_SIZE};
	ArgsVm t;

	for (uint64_t dir : DIRECTIONS) {
		for (uint64_t off : ipa_offsets)
			EXPECT_THAT(
				mte_copy_tags(t.vm, ArgsVm::GPA + off, PAGE, t.tags.data(), dir),
				SyscallFailsWithErrno(EINVAL));
		for (uint64_t len : lengths)
			EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, len, t.tags.data(), dir),
				    SyscallFailsWithErrno(EINVAL));
	}
	t.expect_unchanged();
}

/* length above 2^31 - PAGE_SIZE is EINVAL; exactly that much is accepted and processed. */
TEST(mte_copy_tags, length_limit)
{
	constexpr uint64_t too_long[] = {
		MAX_LENGTH + PAGE,
		(uint64_t{1} << 32) + PAGE, /* 0x1000 if truncated to 32 bits */
		LAST_PAGE_IPA,
	};
	ArgsVm t;

	for (uint64_t dir : DIRECTIONS)
		for (uint64_t len : too_long)
			EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, len, t.tags.data(), dir),
				    SyscallFailsWithErrno(EINVAL));
	t.expect_unchanged();

	/*
	 * A buffer for all of MAX_LENGTH (reserved, never touched) and a
	 * 2-page slot with nothing above it: however the kernel walks the
	 * range, it can only stop at the end of the slot.
	 */
	Mapping buf = Mapping::map("mmap(tag buffer)", nullptr, mte_tag_bytes(MAX_LENGTH),
				   PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	t.vm.add_region(tagged_region(EXTRA_SLOT_B, LIMIT_GPA, LIMIT_SLOT_SIZE));
	for (uint64_t dir : DIRECTIONS)
		EXPECT_THAT(mte_copy_tags(t.vm, LIMIT_GPA, MAX_LENGTH, buf.get(), dir),
			    SyscallSucceedsWithValue(LIMIT_SLOT_SIZE));
}

/* A range whose end wraps past 2^64 is EINVAL, not a search for a memslot. */
TEST(mte_copy_tags, einval_for_wrapping_range)
{
	ArgsVm t;

	for (uint64_t dir : DIRECTIONS) {
		EXPECT_THAT(mte_copy_tags(t.vm, LAST_PAGE_IPA, 2 * PAGE, t.tags.data(), dir),
			    SyscallFailsWithErrno(EINVAL));
		/* Ends at exactly 2^64: guest_ipa + length is 0. */
		EXPECT_THAT(mte_copy_tags(t.vm, LAST_PAGE_IPA, PAGE, t.tags.data(), dir),
			    SyscallFailsWithErrno(EINVAL));
		/* Just below: valid arguments, no memslot. */
		EXPECT_THAT(mte_copy_tags(t.vm, LAST_PAGE_IPA - PAGE, PAGE, t.tags.data(), dir),
			    SyscallFailsWithErrno(EFAULT));
	}
	t.expect_unchanged();
}

/* A buffer that cannot be accessed is EFAULT and changes no tag. */
TEST(mte_copy_tags, efault_for_bad_buffer)
{
	ArgsVm t;
	Mapping prot_none = Mapping::map("mmap(PROT_NONE)", nullptr, PAGE, PROT_NONE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *const bad[] = {
		nullptr,
		unmapped_address(),
		prot_none.get(),
		reinterpret_cast<void *>(KERNEL_ADDR),
	};

	for (uint64_t dir : DIRECTIONS)
		for (void *buf : bad)
			EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, ArgsVm::SIZE, buf, dir),
				    SyscallFailsWithErrno(EFAULT));
	t.expect_unchanged();

	/* A read-only buffer can be copied to the guest, not filled from it. */
	Mapping ro = Mapping::map("mmap(PROT_READ)", nullptr, mte_tag_bytes(ArgsVm::SIZE),
				  PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, ArgsVm::SIZE, ro.get(), FROM_GUEST),
		    SyscallFailsWithErrno(EFAULT));
	EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, ArgsVm::SIZE, ro.get(), TO_GUEST),
		    SyscallSucceedsWithValue(ArgsVm::SIZE));

	const std::vector<uint8_t> zeros = read_tags(t.vm, ArgsVm::GPA, ArgsVm::SIZE);

	EXPECT_EQ(std::count(zeros.begin(), zeros.end(), 0), zeros.size());
}

/* No memslot at guest_ipa is EFAULT, even if later pages of the range have one. */
TEST(mte_copy_tags, efault_without_memslot)
{
	ArgsVm t;

	for (uint64_t dir : DIRECTIONS) {
		EXPECT_THAT(mte_copy_tags(t.vm, UNBACKED_GPA, PAGE, t.tags.data(), dir),
			    SyscallFailsWithErrno(EFAULT));
		EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA - PAGE, 2 * PAGE, t.tags.data(), dir),
			    SyscallFailsWithErrno(EFAULT));
	}
	t.expect_unchanged();
}

/* A read-only memslot refuses TO_GUEST with EFAULT and still serves FROM_GUEST. */
TEST(mte_copy_tags, readonly_memslot)
{
	constexpr uint64_t size = 4 * PAGE;
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	RegionSpec spec = tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, size);

	spec.flags = KVM_MEM_READONLY;
	spec.host_prot_mte = true;
	spec.stage1.writable = false;
	MemRegion &ro = vm.add_region(spec);
	Vcpu &vcpu = vm.add_vcpu(0);

	/* Only the host can tag it: through its own PROT_MTE mapping. */
	for (uint64_t off = 0; off < size; off += arch::mte::GRANULE_SIZE)
		host_mte::stg(host_mte::with_tag(ro.host() + off,
						 copy_tags_pattern(SEED_OLD, EXTRA_GPA_A + off)));

	std::vector<uint8_t> tags = pattern_tags(EXTRA_GPA_A, size, SEED_VMM);

	EXPECT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, size, tags.data(), TO_GUEST),
		    SyscallFailsWithErrno(EFAULT));
	expect_tags(vm, EXTRA_GPA_A, size, SEED_OLD);
	run_guest(vcpu, TagCheck::off, guest_check_tags, EXTRA_GPA_A, size, SEED_OLD);
}

/* The struct itself unreadable (NULL, unmapped, partly PROT_NONE, kernel) is EFAULT. */
TEST(mte_copy_tags, efault_for_unreadable_struct)
{
	ArgsVm t;
	const kvm_arm_copy_mte_tags valid = t.args(TO_GUEST);
	/* The struct's last 8 bytes fall on a PROT_NONE page. */
	EdgeBuffer edge(sizeof(valid) - sizeof(uint64_t));

	std::memcpy(edge.data(), &valid, sizeof(valid) - sizeof(uint64_t));
	EXPECT_THAT(mte_copy_tags_at(t.vm, nullptr), SyscallFailsWithErrno(EFAULT));
	EXPECT_THAT(mte_copy_tags_at(t.vm, unmapped_address()), SyscallFailsWithErrno(EFAULT));
	EXPECT_THAT(mte_copy_tags_at(t.vm, edge.data()), SyscallFailsWithErrno(EFAULT));
	EXPECT_THAT(mte_copy_tags_at(t.vm, reinterpret_cast<void *>(KERNEL_ADDR)),
		    SyscallFailsWithErrno(EFAULT));
	t.expect_unchanged();
	/* The same struct, readable, is a valid call. */
	EXPECT_THAT(mte_copy_tags_at(t.vm, &valid), SyscallSucceedsWithValue(ArgsVm::SIZE));
}

/* length 0 returns 0 without looking at the buffer or the memslots. */
TEST(mte_copy_tags, zero_length_returns_zero)
{
	ArgsVm t;
	std::vector<uint8_t> buf(MTE_TAG_BYTES_PER_PAGE, POISON);

	for (uint64_t dir : DIRECTIONS) {
		EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, 0, buf.data(), dir),
			    SyscallSucceedsWithValue(0));
		EXPECT_THAT(mte_copy_tags(t.vm, ArgsVm::GPA, 0, nullptr, dir),
			    SyscallSucceedsWithValue(0));
		EXPECT_THAT(mte_copy_tags(t.vm, UNBACKED_GPA, 0, nullptr, dir),
			    SyscallSucceedsWithValue(0));
	}
	EXPECT_EQ(std::count(buf.begin(), buf.end(), POISON), buf.size());
	t.expect_unchanged();
}

/* A range running off the end of a memslot returns the bytes inside it, and copies them. */
TEST(mte_copy_tags, partial_at_memslot_end)
{
	constexpr uint64_t slot_size = 4 * PAGE;
	/* Starts 2 pages before the end; a hole, then another slot. */
	constexpr uint64_t start = EXTRA_GPA_A + 2 * PAGE;
	constexpr uint64_t inside = EXTRA_GPA_A + slot_size - start;
	constexpr uint64_t after_gpa = EXTRA_GPA_A + slot_size + PAGE;
	constexpr uint64_t length = after_gpa + PAGE - start;
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);

	vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, slot_size));
	vm.add_region(tagged_region(EXTRA_SLOT_B, after_gpa, PAGE));
	write_tags(vm, EXTRA_GPA_A, slot_size, SEED_OLD);
	write_tags(vm, after_gpa, PAGE, SEED_OLD);

	std::vector<uint8_t> buf(mte_tag_bytes(length), POISON);

	EXPECT_THAT(mte_copy_tags(vm, start, length, buf.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(inside));
	EXPECT_EQ(pattern_mismatches(buf.data(), start, inside, SEED_OLD), 0);

	buf = pattern_tags(start, length, SEED_VMM);
	EXPECT_THAT(mte_copy_tags(vm, start, length, buf.data(), TO_GUEST),
		    SyscallSucceedsWithValue(inside));
	expect_tags(vm, EXTRA_GPA_A, start - EXTRA_GPA_A, SEED_OLD);
	expect_tags(vm, start, inside, SEED_VMM);
	/* Nothing was copied past the hole either. */
	expect_tags(vm, after_gpa, PAGE, SEED_OLD);
}

/* TO_GUEST into a read-only memslot stops there; FROM_GUEST goes through. */
TEST(mte_copy_tags, partial_at_readonly_memslot)
{
	constexpr uint64_t rw_size = 3 * PAGE;
	constexpr uint64_t ro_size = 2 * PAGE;
	constexpr uint64_t ro_gpa = EXTRA_GPA_A + rw_size;
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	RegionSpec ro = tagged_region(EXTRA_SLOT_B, ro_gpa, ro_size);

	ro.flags = KVM_MEM_READONLY;
	ro.stage1.writable = false;
	vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, rw_size));
	vm.add_region(ro);

	std::vector<uint8_t> buf = pattern_tags(EXTRA_GPA_A, rw_size + ro_size, SEED_VMM);

	EXPECT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, rw_size + ro_size, buf.data(), TO_GUEST),
		    SyscallSucceedsWithValue(rw_size));
	EXPECT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, rw_size + ro_size, buf.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(rw_size + ro_size));
	EXPECT_EQ(pattern_mismatches(buf.data(), EXTRA_GPA_A, rw_size, SEED_VMM), 0);
	EXPECT_EQ(std::count(buf.begin() + mte_tag_bytes(rw_size), buf.end(), 0),
		  mte_tag_bytes(ro_size));
}

namespace
{

/*
 * Buffer-fault layout: the tags of FAULT_DONE_PAGES pages fit before the
 * PROT_NONE page, plus half of the next page's tags.
 */
constexpr uint64_t FAULT_SLOT_SIZE = 6 * PAGE;
constexpr uint64_t FAULT_DONE_PAGES = 3;
constexpr uint64_t FAULT_DONE = FAULT_DONE_PAGES * PAGE;
constexpr size_t FAULT_READABLE = mte_tag_bytes(FAULT_DONE) + MTE_TAG_BYTES_PER_PAGE / 2;

} // namespace

/* TO_GUEST stops at the page whose tags hit a buffer fault, and leaves that page untouched. */
TEST(mte_copy_tags, partial_at_buffer_fault_to_guest)
{
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	EdgeBuffer buf(FAULT_READABLE);

	vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, FAULT_SLOT_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);

	run_guest(vcpu, TagCheck::off, guest_set_tags, EXTRA_GPA_A, FAULT_SLOT_SIZE, SEED_OLD);
	/* New tags for everything readable, including half of the next page. */
	const std::vector<uint8_t> fresh = pattern_tags(EXTRA_GPA_A, FAULT_SLOT_SIZE, SEED_VMM);

	std::memcpy(buf.data(), fresh.data(), FAULT_READABLE);
	EXPECT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, FAULT_SLOT_SIZE, buf.data(), TO_GUEST),
		    SyscallSucceedsWithValue(FAULT_DONE));

	expect_tags(vm, EXTRA_GPA_A, FAULT_DONE, SEED_VMM);
	/* No page half updated: the next one keeps all of its old tags. */
	expect_tags(vm, EXTRA_GPA_A + FAULT_DONE, FAULT_SLOT_SIZE - FAULT_DONE, SEED_OLD);
	run_guest(vcpu, TagCheck::off, guest_check_tags, EXTRA_GPA_A, FAULT_DONE, SEED_VMM);
	run_guest(vcpu, TagCheck::off, guest_check_tags, EXTRA_GPA_A + FAULT_DONE,
		  FAULT_SLOT_SIZE - FAULT_DONE, SEED_OLD);
}

/* FROM_GUEST stops at the page whose tags do not fit the buffer; the pages before are done. */
TEST(mte_copy_tags, partial_at_buffer_fault_from_guest)
{
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	EdgeBuffer buf(FAULT_READABLE);

	vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, FAULT_SLOT_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);

	run_guest(vcpu, TagCheck::off, guest_set_tags, EXTRA_GPA_A, FAULT_SLOT_SIZE, SEED_GUEST);
	std::memset(buf.data(), POISON, FAULT_READABLE);
	EXPECT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, FAULT_SLOT_SIZE, buf.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(FAULT_DONE));
	EXPECT_EQ(pattern_mismatches(buf.data(), EXTRA_GPA_A, FAULT_DONE, SEED_GUEST), 0);
}

/* TO_GUEST puts exactly the pages it wrote into the dirty log; FROM_GUEST none. */
TEST(mte_copy_tags, to_guest_marks_dirty_log)
{
	constexpr uint64_t size = 16 * PAGE;
	constexpr struct {
		uint64_t first;
		uint64_t count;
	} writes[] = {{1, 1}, {4, 3}, {11, 1}}; /* in pages */
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	RegionSpec spec = tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, size);

	spec.flags = KVM_MEM_LOG_DIRTY_PAGES;
	vm.add_region(spec);
	Vcpu &vcpu = vm.add_vcpu(0);

	/* The guest has everything mapped (and dirty) before logging starts over. */
	run_guest(vcpu, TagCheck::off, guest_set_tags, EXTRA_GPA_A, size, SEED_GUEST);
	get_dirty_log(vm, EXTRA_SLOT_A, size);
	ASSERT_EQ(page_list(dirty_pages(get_dirty_log(vm, EXTRA_SLOT_A, size))), "{}");

	std::vector<uint64_t> expected;

	for (const auto &w : writes) {
		write_tags(vm, EXTRA_GPA_A + w.first * PAGE, w.count * PAGE, SEED_VMM);
		for (uint64_t p = w.first; p < w.first + w.count; p++)
			expected.push_back(p);
	}
	EXPECT_EQ(page_list(dirty_pages(get_dirty_log(vm, EXTRA_SLOT_A, size))),
		  page_list(expected));

	expect_tags(vm, EXTRA_GPA_A + PAGE, PAGE, SEED_VMM);
	read_tags(vm, EXTRA_GPA_A, size);
	EXPECT_EQ(page_list(dirty_pages(get_dirty_log(vm, EXTRA_SLOT_A, size))), "{}");
}

namespace
{

/*
 * A 1 GiB hugetlb page: the work KVM does per 4 KiB fault or copied page
 * must not grow with it, or these tests run into their time limit.
 */
constexpr uint32_t GIANT_SLOT = 8;
constexpr uint64_t GIANT_GPA = uint64_t{1} << 32;
constexpr uint64_t GIANT_SIZE = arch::BLOCK_SIZE_1G;
constexpr int GIANT_HUGE_SHIFT = 30;
/* Written by the guest with dirty logging on: 4 KiB faults, 64 MiB worth. */
constexpr uint64_t GIANT_DIRTY_SIZE = 64 << 20;
constexpr uint64_t GIANT_WORD = 0x6769'616e'7400'0001;
constexpr const char *GIANT_POOL = "/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages";

/*
 * The 1 GiB page that the test bed reserves on the kernel command line
 * (hugepagesz=1G hugepages=1): none can be had once the system has run a
 * while, so a missing one is a broken test bed, not a reason to skip.
 */
Mapping map_giant_page()
{
	uint64_t free_pages = 0;

	try {
		free_pages = mm::read_number(GIANT_POOL);
	} catch (const SysError &) {
		ktest::fail(std::source_location::current(),
			    std::string("no ") + GIANT_POOL +
				    ": the kernel has no 1 GiB hugetlb pages");
	}
	if (!free_pages)
		ktest::fail(std::source_location::current(),
			    "no free 1 GiB hugetlb page: boot the test kernel with "
			    "hugepagesz=1G hugepages=1");
	return Mapping::map("mmap(MAP_HUGETLB 1 GiB)", nullptr, GIANT_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
				    (GIANT_HUGE_SHIFT << MAP_HUGE_SHIFT),
			    -1, 0);
}

/* An MTE VM whose slot GIANT_SLOT is the 1 GiB page, mapped tagged in the guest. */
struct GiantPageVm {
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	Mapping giant = map_giant_page();

	GiantPageVm()
	{
		set_slot(0);
		vm.map(GIANT_GPA, GIANT_GPA, GIANT_SIZE, MapOptions{.attr = Stage1::tagged});
	}

	void set_slot(uint32_t flags)
	{
		kvm_userspace_memory_region r = {};

		r.slot = GIANT_SLOT;
		r.flags = flags;
		r.guest_phys_addr = GIANT_GPA;
		r.memory_size = GIANT_SIZE;
		r.userspace_addr = reinterpret_cast<uint64_t>(giant.get());
		ASSERT_THAT(vm.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &r), SyscallSucceeds());
	}
};

uint64_t elapsed_ms(std::chrono::steady_clock::time_point since)
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(
		       std::chrono::steady_clock::now() - since)
		.count();
}

} // namespace

/*
 * A full restore of a 1 GiB hugetlb page's tags (262144 pages, TO_GUEST)
 * and a full read back. Each copied page costs the same as for a small
 * page: walking the whole compound page per 4 KiB page would make this
 * quadratic and run into the time limit.
 */
TEST_TIMEOUT(mte_copy_tags, giant_hugetlb_page_full_restore, 120)
{
	GiantPageVm g;
	const std::vector<uint8_t> tags = pattern_tags(GIANT_GPA, GIANT_SIZE, SEED_VMM);
	std::vector<uint8_t> back(tags.size(), POISON);
	auto t0 = std::chrono::steady_clock::now();

	ASSERT_THAT(mte_copy_tags(g.vm, GIANT_GPA, GIANT_SIZE, const_cast<uint8_t *>(tags.data()),
				  TO_GUEST),
		    SyscallSucceedsWithValue(GIANT_SIZE));
	ktest::diag("TO_GUEST of 1 GiB: " + std::to_string(elapsed_ms(t0)) + " ms");
	t0 = std::chrono::steady_clock::now();
	ASSERT_THAT(mte_copy_tags(g.vm, GIANT_GPA, GIANT_SIZE, back.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(GIANT_SIZE));
	ktest::diag("FROM_GUEST of 1 GiB: " + std::to_string(elapsed_ms(t0)) + " ms");
	EXPECT_EQ(pattern_mismatches(back.data(), GIANT_GPA, GIANT_SIZE, SEED_VMM), 0);
}

/*
 * With dirty logging on, stage 2 maps the 1 GiB page 4 KiB at a time: the
 * guest's writes to 64 MiB of it fault 16384 times, and each fault must
 * do the tag work of one page. The dirty log then shows exactly those
 * pages, and the tags the guest set before are still there.
 */
TEST_TIMEOUT(mte_copy_tags, giant_hugetlb_page_dirty_logged_faults, 120)
{
	GiantPageVm g;
	Vcpu &vcpu = g.vm.add_vcpu(0);

	run_guest(vcpu, TagCheck::off, guest_set_tags, GIANT_GPA, GIANT_DIRTY_SIZE, SEED_GUEST);
	g.set_slot(KVM_MEM_LOG_DIRTY_PAGES);

	const auto t0 = std::chrono::steady_clock::now();

	run_guest(vcpu, TagCheck::off, guest_touch_pages, GIANT_GPA, GIANT_DIRTY_SIZE, GIANT_WORD);
	ktest::diag("16384 dirty-logged 4 KiB faults: " + std::to_string(elapsed_ms(t0)) + " ms");

	const std::vector<uint64_t> dirty =
		dirty_pages(get_dirty_log(g.vm, GIANT_SLOT, GIANT_SIZE));

	EXPECT_EQ(dirty.size(), GIANT_DIRTY_SIZE / PAGE);
	EXPECT_TRUE(!dirty.empty() && dirty.back() == GIANT_DIRTY_SIZE / PAGE - 1);
	expect_tags(g.vm, GIANT_GPA, GIANT_DIRTY_SIZE, SEED_GUEST);
}

/* Tags the VMM wrote survive swap-out and swap-in through its untagged mapping. */
TEST(mte_copy_tags, to_guest_tags_survive_swap)
{
	constexpr uint64_t size = 8 * PAGE;
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);

	require_madvise("MADV_PAGEOUT");
	if (!swap_available())
		SKIP("no swap device to page guest memory out to");
	MemRegion &r = vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, size));
	Vcpu &vcpu = vm.add_vcpu(0);
	mm::ScopedPin pin(sched_getcpu());

	/* Half of it the guest has mapped already, half only the ioctl brings in. */
	run_guest(vcpu, TagCheck::off, guest_set_tags, EXTRA_GPA_A, size / 2, SEED_GUEST);
	write_tags(vm, EXTRA_GPA_A, size, SEED_VMM);

	page_out(r.host(), size);
	expect_tags(vm, EXTRA_GPA_A, size, SEED_VMM);

	/* And once more, this time swapped in by guest faults. */
	page_out(r.host(), size);
	run_guest(vcpu, TagCheck::off, guest_check_tags, EXTRA_GPA_A, size, SEED_VMM);
}

namespace
{

/* Every region of a VM in the order they were added: the save/restore layout. */
struct SrSlot {
	uint32_t slot;
	uint64_t gpa;
	uint64_t size;
};

constexpr SrSlot SR_SLOTS[] = {
	{GUEST_RAM_SLOT, GUEST_RAM_GPA, SR_RAM_SIZE},
	{PAGES_SLOT, PAGES_GPA, SR_PAGES_SIZE},
	{THP_SLOT, THP_GPA, THP_SIZE},
};

/* A VM of the save/restore layout (same for source and destination). */
Vm make_sr_vm(Kvm &kvm, Layout layout)
{
	Vm vm = mte_vm(kvm, VmOptions{.ram_size = SR_RAM_SIZE});
	RegionSpec thp = tagged_region(THP_SLOT, THP_GPA, THP_SIZE);

	if (layout == Layout::thp)
		require_madvise("MADV_HUGEPAGE");
	thp.thp = layout == Layout::thp;
	vm.add_region(tagged_region(PAGES_SLOT, PAGES_GPA, SR_PAGES_SIZE));
	vm.add_region(thp);
	return vm;
}

/*
 * The copy loop of a migrating VMM: requests of SR_CHUNK bytes, each
 * continuing where the previous result says the kernel stopped. The
 * last request of a slot runs past its end and comes back partial.
 * tags needs the tag bytes of SR_CHUNK as slack. Returns the number of partial results.
 */
unsigned int copy_tags_chunked(const Vm &vm, const SrSlot &s, uint8_t *tags, uint64_t flags)
{
	unsigned int partial = 0;
	uint64_t done = 0;

	while (done < s.size) {
		const SysResult r = mte_copy_tags(vm, s.gpa + done, SR_CHUNK,
						  tags + mte_tag_bytes(done), flags);

		ASSERT_THAT(r, SyscallSucceeds());
		if (r.value <= 0 || r.value % PAGE || static_cast<uint64_t>(r.value) > SR_CHUNK)
			ktest::fail(KTEST_HERE, r.op + " returned " + std::to_string(r.value));
		partial += static_cast<uint64_t>(r.value) < SR_CHUNK;
		done += r.value;
	}
	EXPECT_EQ(done, s.size);
	return partial;
}

bool has_reg(const std::vector<uint64_t> &list, const reg::Reg &r)
{
	return std::find(list.begin(), list.end(), r.id) != list.end();
}

void copy_registers(const Vcpu &from, Vcpu &to)
{
	const std::vector<uint64_t> ids = from.get_reg_list();

	ASSERT_TRUE(has_reg(ids, reg::GCR_EL1));
	ASSERT_TRUE(has_reg(ids, reg::RGSR_EL1));
	ASSERT_TRUE(has_reg(ids, reg::TFSR_EL1));
	ASSERT_TRUE(has_reg(ids, reg::TFSRE0_EL1));
	ASSERT_TRUE(has_reg(ids, reg::PC));
	copy_vcpu_registers(from, to);
}

} // namespace

namespace
{

/*
 * Migrates a guest parked at its save point from VM A into a fresh VM B:
 * RAM by memcpy, tags by the chunked ioctl loop, registers by ONE_REG.
 * Layout::thp backs the 2 MiB slot with a transparent huge page.
 */
void save_restore_into_new_vm(const Layout &layout)
{
	Kvm kvm = mte_kvm();
	Vm a = make_sr_vm(kvm, layout);
	Vcpu &va = a.add_vcpu(0);

	va.start(guest_save_restore, PAGES_GPA, SR_PAGES_SIZE, THP_GPA, THP_SIZE, SEED_GUEST);
	va.set_reg(reg::SCTLR_EL1, mte_sctlr(TagCheck::sync));
	va.expect_sync(COPY_TAGS_SYNC_SAVE_POINT);
	complete_pending_mmio(va);

	if (layout == Layout::thp)
		ASSERT_EQ(anon_huge_bytes(a.region(THP_SLOT).host()), THP_SIZE);

	Vm b = make_sr_vm(kvm, layout);
	Vcpu &vb = b.add_vcpu(0);
	unsigned int partial = 0;

	for (const SrSlot &s : SR_SLOTS) {
		std::vector<uint8_t> tags(mte_tag_bytes(s.size + SR_CHUNK), POISON);

		std::memcpy(b.region(s.slot).host(), a.region(s.slot).host(), s.size);
		partial += copy_tags_chunked(a, s, tags.data(), FROM_GUEST);
		partial += copy_tags_chunked(b, s, tags.data(), TO_GUEST);
	}
	/* Each slot's last chunk ran past its end, in both directions. */
	EXPECT_EQ(partial, 2 * std::size(SR_SLOTS));
	copy_registers(va, vb);

	EXPECT_EQ(vb.get_reg(reg::GCR_EL1), COPY_TAGS_GCR);
	EXPECT_EQ(vb.get_reg(reg::RGSR_EL1), COPY_TAGS_RGSR);
	EXPECT_EQ(vb.get_reg(reg::TFSR_EL1), COPY_TAGS_TFSR);
	EXPECT_EQ(vb.get_reg(reg::TFSRE0_EL1), COPY_TAGS_TFSRE0);
	EXPECT_EQ(vb.get_reg(reg::PC), va.get_reg(reg::PC));
	/* The source VM holds its data and tags in its own pages; destroy it first. */
	a = Vm(kvm);
	vb.run_until_done();
	if (layout == Layout::thp)
		EXPECT_EQ(anon_huge_bytes(b.region(THP_SLOT).host()), THP_SIZE);
}

} // namespace

/*
 * A running guest is saved (RAM, tags, registers) and restored into a new
 * VM, over small pages and over a THP-backed block.
 */
constexpr ktest::Variant<Layout> SAVE_RESTORE_LAYOUTS[] = {
	{"save_restore_into_new_vm", Layout::pages},
	{"thp_save_restore_into_new_vm", Layout::thp},
};
TEST_VARIANTS(mte_copy_tags, SAVE_RESTORE_LAYOUTS, save_restore_into_new_vm);

namespace
{

/* The concurrency VM: a slot for the vCPUs, a stable one and a churning one after it. */
constexpr uint64_t STRESS_VCPU_GPA = EXTRA_GPA_A;
constexpr uint64_t STRESS_STABLE_GPA = EXTRA_GPA_B;
constexpr uint64_t STRESS_CHURN_GPA = STRESS_STABLE_GPA + STRESS_STABLE_SIZE;
constexpr uint32_t STRESS_CHURN_SLOT = EXTRA_SLOT_C;

/* Outcomes of the racing copies; anything not counted here is a failure. */
struct StressCounts {
	std::atomic<uint64_t> full{0};
	std::atomic<uint64_t> partial{0};
	std::atomic<uint64_t> efault{0};
	std::atomic<uint64_t> invalid{0};
};

/*
 * Checks one racing result for the range r. The vCPU and stable slots never
 * lose their memslot, so their pages are always copied, whatever races with
 * them (vCPU faults, MMU-notifier invalidations from replacing the vCPUs'
 * memory and from MADV_PAGEOUT, other copies): a range inside them must
 * be copied completely. Only the churning slot may be missing when its
 * pages come up, so a range reaching into it may stop there: a count of
 * whole pages no smaller than the part before the churning slot, or EFAULT
 * if the very first page is in it (no memslot, nothing done). EINVAL is not
 * allowed: the arguments are always valid and are checked before any
 * memslot is looked at, so a racing memslot cannot turn into EINVAL.
 * EINTR and ENOMEM are not allowed either: they need a fatal signal or an
 * allocation failure, and this test causes neither.
 */
void check_stress_result(const SysResult &r, const Range &range, StressCounts &counts)
{
	const bool reaches_churn = range.gpa + range.size > STRESS_CHURN_GPA &&
				   range.gpa < STRESS_CHURN_GPA + STRESS_CHURN_SIZE;
	const uint64_t before_churn =
		range.gpa < STRESS_CHURN_GPA ? STRESS_CHURN_GPA - range.gpa : 0;
	const uint64_t done = r.ok() ? static_cast<uint64_t>(r.value) : 0;

	if (r.ok() && done == range.size) {
		counts.full++;
		return;
	}
	if (reaches_churn && r.ok() && done && done % PAGE == 0 && done >= before_churn &&
	    done < range.size) {
		counts.partial++;
		return;
	}
	if (reaches_churn && !before_churn && !r.ok() && r.err == EFAULT) {
		counts.efault++;
		return;
	}
	if (!counts.invalid++)
		ktest::record_failure(KTEST_HERE, r.op + ": unexpected " + r.outcome());
}

/* Ends the race when a copier finishes, however it finishes. */
struct StopOnExit {
	std::atomic<bool> &stop;

	~StopOnExit() { stop = true; }
};

/* Random page-aligned range of at most STRESS_MAX_PAGES pages inside [gpa, gpa + size). */
Range random_range(std::mt19937_64 &rng, uint64_t gpa, uint64_t size)
{
	const uint64_t pages = size / PAGE;
	const uint64_t first = rng() % pages;
	const uint64_t count = 1 + rng() % std::min(STRESS_MAX_PAGES, pages - first);

	return {gpa + first * PAGE, count * PAGE};
}

} // namespace

/*
 * Copies racing vCPU faults, memslot changes, invalidations and each other:
 * documented results. Runs for STRESS_DURATION (3 s) whatever the host's
 * speed, 3.1 s in all under TCG.
 */
TEST_TIMEOUT(mte_copy_tags, concurrent_copies_give_documented_results, 15)
{
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);

	KmsgWatch kmsg;
	MemRegion &vcpu_mem =
		vm.add_region(tagged_region(EXTRA_SLOT_A, STRESS_VCPU_GPA, STRESS_VCPU_SIZE));
	MemRegion &stable =
		vm.add_region(tagged_region(EXTRA_SLOT_B, STRESS_STABLE_GPA, STRESS_STABLE_SIZE));
	Mapping churn_mem =
		Mapping::map("mmap(churn slot)", nullptr, STRESS_CHURN_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	std::vector<Vcpu *> vcpus;

	for (unsigned int i = 0; i < STRESS_VCPUS; i++)
		vcpus.push_back(&vm.add_vcpu(i));

	const auto deadline = std::chrono::steady_clock::now() + STRESS_DURATION;
	const bool can_swap = swap_available() && madvise_available();
	std::atomic<bool> stop{false};
	StressCounts counts;
	std::atomic<uint64_t> slot_changes{0};
	std::vector<std::function<void()>> jobs;

	for (unsigned int i = 0; i < STRESS_VCPUS; i++) {
		const uint64_t share = STRESS_VCPU_SIZE / STRESS_VCPUS;
		Vcpu &v = *vcpus[i];

		v.start(guest_stress_tags, STRESS_VCPU_GPA + i * share, share, SEED_GUEST + i);
		v.set_reg(reg::SCTLR_EL1, mte_sctlr(TagCheck::off));
		jobs.push_back([&, i] {
			for (;;) {
				const Ucall u = vcpus[i]->run();

				if (u.cmd == UcallCmd::done)
					return;
				if (u.cmd != UcallCmd::sync)
					ktest::fail(KTEST_HERE, "vCPU " + std::to_string(i) + ": " +
									u.describe());
				if (stop)
					vm.guest_var(&copy_tags_stress_stop) = 1;
			}
		});
	}

	/* Two copiers; the second prefers the other direction. */
	for (uint64_t preferred : DIRECTIONS)
		jobs.push_back([&, preferred] {
			StopOnExit stopper{stop};
			std::mt19937_64 rng(SEED_VMM + preferred);
			std::vector<uint8_t> buf(mte_tag_bytes(STRESS_MAX_PAGES * PAGE));

			while (std::chrono::steady_clock::now() < deadline) {
				const uint64_t other =
					preferred == TO_GUEST ? FROM_GUEST : TO_GUEST;
				const uint64_t dir =
					rng() % STRESS_OTHER_WAY_ONE_IN ? preferred : other;
				Range r;

				switch (rng() % 3) {
				case 0:
					r = random_range(rng, STRESS_VCPU_GPA, STRESS_VCPU_SIZE);
					break;
				case 1:
					r = random_range(rng, STRESS_STABLE_GPA,
							 STRESS_STABLE_SIZE);
					break;
				default:
					/* Runs on into the churn slot, if it exists. */
					r = random_range(rng, STRESS_STABLE_GPA,
							 STRESS_STABLE_SIZE + STRESS_CHURN_SIZE);
					break;
				}
				for (uint8_t &b : buf)
					b = static_cast<uint8_t>(rng() & arch::mte::TAG_MASK);
				check_stress_result(
					mte_copy_tags(vm, r.gpa, r.size, buf.data(), dir), r,
					counts);
			}
		});

	/* Memslot churn, plus invalidations of the vCPUs' and the copiers' memory. */
	jobs.push_back([&] {
		std::mt19937_64 rng(SEED_OLD);
		kvm_userspace_memory_region churn = {};

		churn.slot = STRESS_CHURN_SLOT;
		churn.guest_phys_addr = STRESS_CHURN_GPA;
		churn.userspace_addr = reinterpret_cast<uint64_t>(churn_mem.get());
		for (unsigned int n = 0; !stop; n++) {
			churn.memory_size = n % 2 ? 0 : STRESS_CHURN_SIZE;
			check(vm.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &churn));
			slot_changes++;
			if (n % STRESS_REMAP_EVERY == 0) {
				const Range r = random_range(rng, 0, STRESS_VCPU_SIZE);

				/* Fresh zero pages in place: what MADV_DONTNEED does, without
				 * madvise(). */
				if (mmap(vcpu_mem.host() + r.gpa, r.size, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
					 0) == MAP_FAILED)
					throw SysError("mmap(MAP_FIXED)", errno);
			}
			if (can_swap && n % STRESS_PAGEOUT_EVERY == 0) {
				const Range r = random_range(rng, 0, STRESS_STABLE_SIZE);

				check(make_result(
					"madvise(MADV_PAGEOUT)",
					madvise(stable.host() + r.gpa, r.size, MADV_PAGEOUT)));
			}
			std::this_thread::yield();
		}
	});

	run_concurrently(jobs);

	/* The test bed has both: without them the copies raced less than they should. */
	EXPECT_TRUE(can_swap);
	ktest::diag("copies: " + std::to_string(counts.full) + " full, " +
		    std::to_string(counts.partial) + " partial, " + std::to_string(counts.efault) +
		    " EFAULT; " + std::to_string(slot_changes) + " memslot changes");
	EXPECT_EQ(counts.invalid.load(), 0);
	EXPECT_TRUE(counts.full > 0);
	EXPECT_TRUE(slot_changes > 0);

	/* The VM still works: a clean round trip through the vCPUs' slot. */
	write_tags(vm, STRESS_VCPU_GPA, STRESS_VCPU_SIZE, SEED_VMM);
	run_guest(*vcpus[0], TagCheck::off, guest_check_tags, STRESS_VCPU_GPA, STRESS_VCPU_SIZE,
		  SEED_VMM);

	/* As root in the test bed it is: otherwise splats would go unnoticed here. */
	expect_quiet_kernel_log(kmsg);
}

namespace
{

/* Live migration: a 2 MiB slot, pre-copied in this many rounds while the guest runs. */
constexpr uint64_t MIGRATION_SIZE = arch::BLOCK_SIZE_2M;
constexpr unsigned int MIGRATION_ROUNDS = 4;
/* Guest iterations between two rounds, so every round finds work. */
constexpr uint64_t MIGRATION_ITERATIONS_PER_ROUND = 2;

/* Copies the data and the tags of the given pages of the slot from a to b. */
uint64_t migrate_pages(const Vm &a, MemRegion &src, const Vm &b, MemRegion &dst,
		       const std::vector<uint64_t> &pages)
{
	std::vector<uint8_t> tags(MTE_TAG_BYTES_PER_PAGE);

	for (uint64_t p : pages) {
		const uint64_t gpa = src.gpa() + p * PAGE;

		EXPECT_THAT(mte_copy_tags(a, gpa, PAGE, tags.data(), FROM_GUEST),
			    SyscallSucceedsWithValue(PAGE));
		std::memcpy(dst.host() + p * PAGE, src.host() + p * PAGE, PAGE);
		EXPECT_THAT(mte_copy_tags(b, gpa, PAGE, tags.data(), TO_GUEST),
			    SyscallSucceedsWithValue(PAGE));
	}
	return pages.size();
}

} // namespace

/*
 * A VMM's pre-copy live migration of a running MTE guest: dirty logging on,
 * data and tags of the dirty pages copied round after round while the guest
 * keeps changing them, half of its iterations by retagging alone (STG needs
 * stage 2 write permission, so the dirty log must see it too), then
 * stop-and-copy and the registers. Resumed in the destination, the guest
 * finds the state of its last iteration in every page.
 */
TEST_TIMEOUT(mte_copy_tags, live_migration_loses_no_tag_or_data, 60)
{
	Kvm kvm = mte_kvm();
	Vm a = mte_vm(kvm);
	Vm b = mte_vm(kvm);
	RegionSpec spec = tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, MIGRATION_SIZE);

	spec.flags = KVM_MEM_LOG_DIRTY_PAGES;
	MemRegion &src = a.add_region(spec);
	MemRegion &dst = b.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, MIGRATION_SIZE));
	Vcpu &va = a.add_vcpu(0);
	Vcpu &vb = b.add_vcpu(0);
	std::atomic<bool> stop{false};
	std::atomic<bool> source_ended{false};
	std::atomic<uint64_t> iteration{0};
	std::vector<uint64_t> per_round;

	va.start(guest_migration_workload, EXTRA_GPA_A, MIGRATION_SIZE);
	va.set_reg(reg::SCTLR_EL1, mte_sctlr(TagCheck::off));
	run_concurrently({
		[&] {
			StopOnExit ended{source_ended};

			for (;;) {
				const Ucall u = va.run();

				if (u.cmd != UcallCmd::sync)
					ktest::fail(KTEST_HERE, "source guest: " + u.describe());
				iteration = a.guest_var(&copy_tags_migration_iter);
				/* Stop after a retag-only iteration: the last round carries it. */
				if (stop && !migration_stores_data(iteration))
					return;
			}
		},
		[&] {
			StopOnExit stopper{stop};

			/* Round 0 copies everything; the log starts empty with it. */
			get_dirty_log(a, EXTRA_SLOT_A, MIGRATION_SIZE);
			std::vector<uint64_t> all(MIGRATION_SIZE / PAGE);

			for (uint64_t p = 0; p < all.size(); p++)
				all[p] = p;
			per_round.push_back(migrate_pages(a, src, b, dst, all));
			for (unsigned int r = 1; r <= MIGRATION_ROUNDS; r++) {
				const uint64_t until = iteration + MIGRATION_ITERATIONS_PER_ROUND;

				while (iteration < until && !source_ended)
					std::this_thread::yield();
				per_round.push_back(
					migrate_pages(a, src, b, dst,
						      dirty_pages(get_dirty_log(a, EXTRA_SLOT_A,
										MIGRATION_SIZE))));
			}
		},
	});

	/* Stop-and-copy: the last dirty pages, the rest of guest RAM, the registers. */
	complete_pending_mmio(va);
	const uint64_t final_pages = migrate_pages(
		a, src, b, dst, dirty_pages(get_dirty_log(a, EXTRA_SLOT_A, MIGRATION_SIZE)));
	std::memcpy(b.region(GUEST_RAM_SLOT).host(), a.region(GUEST_RAM_SLOT).host(),
		    a.region(GUEST_RAM_SLOT).size());
	copy_vcpu_registers(va, vb);
	const uint64_t stopped_at = iteration;

	b.guest_var(&copy_tags_migration_last) = stopped_at + 2;

	std::string rounds;
	for (uint64_t n : per_round)
		rounds += (rounds.empty() ? "" : ", ") + std::to_string(n);
	ktest::diag("pre-copy rounds (pages, " + std::to_string(MTE_TAG_BYTES_PER_PAGE) +
		    " tags each): " + rounds + "; stop-and-copy: " + std::to_string(final_pages) +
		    " pages after guest iteration " + std::to_string(stopped_at));
	/* The guest must have changed every page since round 0, and retagged them last. */
	EXPECT_EQ(final_pages, MIGRATION_SIZE / PAGE);
	for (size_t r = 1; r < per_round.size(); r++)
		EXPECT_EQ(per_round[r], MIGRATION_SIZE / PAGE);

	for (;;) {
		const Ucall u = vb.run();

		if (u.cmd == UcallCmd::done)
			break;
		if (u.cmd != UcallCmd::sync)
			ktest::fail(KTEST_HERE,
				    "destination guest: " + u.describe() + " (granule " +
					    hex(b.guest_var(&copy_tags_bad_granule)) + ")");
	}
	EXPECT_EQ(b.guest_var(&copy_tags_migration_iter), stopped_at + 2);
}

namespace
{

/* Kill safety: what the VMM is doing when SIGKILL comes. */
enum class KillDuring { copies, faults, memslot_changes };

constexpr uint64_t KILL_SIZE = 64 << 20;
/* How long after its first loop the VMM dies, one child per delay. */
constexpr std::chrono::milliseconds KILL_DELAYS[] = {std::chrono::milliseconds(20),
						     std::chrono::milliseconds(80),
						     std::chrono::milliseconds(250)};
/* Time for a child to build its VM and start its loop. */
constexpr int KILL_START_TIMEOUT_MS = 10000;
/*
 * Free memory may come back short by what the page allocator keeps in
 * per-CPU lists and what the caches filled again right after being
 * settled; a leaked VM would be 64 MiB.
 */
constexpr uint64_t KILL_MEM_SLACK_KIB = 8 << 10;
constexpr int KILL_CHILD_ERROR = 3;

/*
 * Where the doomed VMM was when it died, in memory it shares with the
 * test: inside the calls its scenario is about, and how many it finished.
 */
struct DoomedState {
	std::atomic<bool> in_call{false};
	std::atomic<uint64_t> finished{0};
};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free);

/* The meminfo fields that moved most between two readings, for a diagnosis. */
std::string largest_changes(const std::map<std::string, uint64_t> &before,
			    const std::map<std::string, uint64_t> &after)
{
	constexpr size_t SHOWN = 6;
	std::vector<std::pair<int64_t, std::string>> moves;
	std::string s;

	for (const auto &[key, was] : before)
		if (after.contains(key) && after.at(key) != was)
			moves.emplace_back(static_cast<int64_t>(after.at(key) - was), key);
	std::sort(moves.begin(), moves.end(), [](const auto &a, const auto &b) {
		return std::abs(a.first) > std::abs(b.first);
	});
	moves.resize(std::min(moves.size(), SHOWN));
	for (const auto &[delta, key] : moves)
		s += (s.empty() ? "" : ", ") + key + " " + (delta > 0 ? "+" : "") +
		     std::to_string(delta) + " kB";
	return s;
}

/*
 * What a test reads before it builds its VMs: settled meminfo (see
 * expect_memory_back()).
 */
struct MemoryBefore {
	std::map<std::string, uint64_t> meminfo;

	MemoryBefore()
	{
		mm::settle_kernel_memory();
		meminfo = mm::meminfo();
	}
};

/*
 * MemFree back within KILL_MEM_SLACK_KIB of before, and every pin
 * released. Both readings are taken with the kernel's caches given back,
 * so that a debug kernel's slab and KASAN quarantine do not count.
 */
void expect_memory_back(const MemoryBefore &before, const std::string &what)
{
	mm::settle_kernel_memory();

	const std::map<std::string, uint64_t> after = mm::meminfo();
	const uint64_t free_before = before.meminfo.at("MemFree");
	const uint64_t free_after = after.at("MemFree");

	ktest::diag("MemFree " + std::to_string(free_before) + " kB before " + what + ", " +
		    std::to_string(free_after) + " kB after");
	if (free_after + KILL_MEM_SLACK_KIB < free_before)
		ktest::record_failure(
			KTEST_HERE,
			"MemFree short by " + std::to_string(free_before - free_after) +
				" kB; moved most: " + largest_changes(before.meminfo, after));
	if (mm::vmstat("nr_foll_pin_acquired"))
		EXPECT_EQ(mm::vmstat("nr_foll_pin_acquired").value_or(0),
			  mm::vmstat("nr_foll_pin_released").value_or(0));
}

/*
 * The dying VMM: builds an MTE VM, says so on ready, and loops until
 * killed. In the fault storm its memory is dropped after each of the
 * guest's rounds, so that every round faults every page in again.
 */
[[noreturn]] void doomed_vmm(KillDuring what, int ready, DoomedState &state)
{
	try {
		Kvm kvm = mte_kvm();
		Vm vm = mte_vm(kvm);
		MemRegion &r = vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, KILL_SIZE));
		std::vector<uint8_t> tags = pattern_tags(EXTRA_GPA_A, KILL_SIZE, SEED_VMM);
		Vcpu &vcpu = vm.add_vcpu(0);
		kvm_userspace_memory_region slot = r.kvm_region();
		const char started = 1;

		vcpu.start(guest_stress_tags, EXTRA_GPA_A, KILL_SIZE, SEED_GUEST);
		vcpu.set_reg(reg::SCTLR_EL1, mte_sctlr(TagCheck::off));
		if (write(ready, &started, 1) != 1)
			_exit(KILL_CHILD_ERROR);
		for (uint64_t i = 0;; i++) {
			state.in_call = true;
			switch (what) {
			case KillDuring::copies:
				check(mte_copy_tags(vm, EXTRA_GPA_A, KILL_SIZE, tags.data(),
						    DIRECTIONS[i % 2]));
				break;
			case KillDuring::faults:
				if (vcpu.run().cmd != UcallCmd::sync)
					_exit(KILL_CHILD_ERROR);
				break;
			case KillDuring::memslot_changes:
				slot.memory_size = i % 2 ? KILL_SIZE : 0;
				check(vm.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &slot));
				if (i % 2)
					check(mte_copy_tags(vm, EXTRA_GPA_A, KILL_SIZE, tags.data(),
							    TO_GUEST));
				break;
			}
			state.in_call = false;
			state.finished++;
			if (what == KillDuring::faults)
				check(make_result("madvise(MADV_DONTNEED)",
						  madvise(r.host(), KILL_SIZE, MADV_DONTNEED)));
		}
	} catch (...) {
		_exit(KILL_CHILD_ERROR);
	}
}

void sigkill_leaves_nothing_behind(const KillDuring &what)
{
	Kvm kvm = mte_kvm();
	KmsgWatch kmsg;
	const MemoryBefore memory_before;
	unsigned int landed = 0;

	for (auto delay : KILL_DELAYS) {
		int fds[2];

		check(make_result("pipe", pipe(fds)));
		FileDesc rd(fds[0]), wr(fds[1]);
		const Mapping shared =
			Mapping::map("mmap(shared state)", nullptr, PAGE, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		DoomedState &state = *new (shared.get()) DoomedState;
		const pid_t pid = fork();

		ASSERT_NE(pid, -1);
		if (!pid)
			doomed_vmm(what, wr.get(), state);

		pollfd p = {rd.get(), POLLIN, 0};
		char started = 0;
		const bool ready =
			poll(&p, 1, KILL_START_TIMEOUT_MS) == 1 && read(rd.get(), &started, 1) == 1;

		if (ready)
			std::this_thread::sleep_for(delay);
		kill(pid, SIGKILL);

		int status = 0;

		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_TRUE(ready);
		/* Killed in its loop, not ended by an error of its own. */
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		ktest::diag("killed after " + std::to_string(delay.count()) + " ms, " +
			    (state.in_call ? "inside" : "between") + " calls, " +
			    std::to_string(state.finished) + " finished");
		landed += state.in_call;
	}
	/* The scenario's calls take nearly all of the VMM's time: kills land in them. */
	EXPECT_NE(landed, 0U);

	/* Every page of the dead VMs is free again: nothing kept a reference. */
	expect_memory_back(memory_before, "the VMMs");

	/* And no lock was left held: a new VM works normally. */
	Vm vm = mte_vm(kvm);
	vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, PAGES_SIZE));
	std::vector<uint8_t> tags = pattern_tags(EXTRA_GPA_A, PAGES_SIZE, SEED_VMM);
	std::vector<uint8_t> back(tags.size(), POISON);

	ASSERT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, PAGES_SIZE, tags.data(), TO_GUEST),
		    SyscallSucceedsWithValue(PAGES_SIZE));
	ASSERT_THAT(mte_copy_tags(vm, EXTRA_GPA_A, PAGES_SIZE, back.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(PAGES_SIZE));
	EXPECT_TRUE(back == tags);
	expect_quiet_kernel_log(kmsg);
}

} // namespace

/*
 * SIGKILL of the VMM in the middle of a 64 MiB copy, of a vCPU's fault
 * storm, or of memslot changes (three kills each, at different times, at
 * least one inside the calls): its memory is free again, no pin is left,
 * the kernel log is quiet, and a new VM starts and copies tags normally.
 */
constexpr ktest::Variant<KillDuring> KILL_SCENARIOS[] = {
	{"sigkill_mid_copy_leaves_nothing_behind", KillDuring::copies},
	{"sigkill_mid_faults_leaves_nothing_behind", KillDuring::faults},
	{"sigkill_mid_memslot_changes_leaves_nothing_behind", KillDuring::memslot_changes},
};
TEST_VARIANTS(mte_copy_tags, KILL_SCENARIOS, sigkill_leaves_nothing_behind, .timeout_s = 60);

namespace
{

/* Fault injection: the allocator whose failures the VMM's calls meet. */
enum class Injected { slab, page_alloc };

/*
 * Large enough that a reference leaked on every page would show in
 * MemFree beyond KILL_MEM_SLACK_KIB.
 */
constexpr uint64_t FI_SIZE = 16 << 20;
constexpr unsigned int FI_ROUNDS = 4;
constexpr unsigned int FI_COPIES_PER_ROUND = 24;
/* Pages the host drops and pushes to swap after each round. */
constexpr unsigned int FI_DROPS_PER_ROUND = 16;
constexpr unsigned int FI_PAGEOUTS_PER_ROUND = 16;
/* More attempts than any call has allocations: the sweep never ended. */
constexpr unsigned int FI_MAX_ATTEMPTS = 20000;
constexpr uint64_t FI_SEED_BASE = 0x6661'696c'0000'0000;
/* The model's seed of a page whose tags are all zero (dropped, never tagged). */
constexpr uint64_t NO_TAGS = 0;

/*
 * Opens the filters of failslab or fail_page_alloc, so that the
 * allocations KVM makes count as injection points: by default both skip
 * the allocations that may sleep, and fail_page_alloc skips order 0 and
 * user pages (__GFP_HIGHMEM), which is nearly everything here. fail-nth
 * counts the allocations of every injector, so the other one is shut
 * (failslab: only caches marked for it, which none is; fail_page_alloc:
 * no order that exists) and both are kept quiet: each variant fails one
 * allocator only, whatever an earlier test killed in its middle left set.
 * The probability stays 0, so no task fails at random: only the calls a
 * test makes through NthFailure do, and only at the allocation it picks.
 */
class FaultInjector
{
public:
	explicit FaultInjector(Injected which)
	{
		if (access(FAILSLAB_DIR, F_OK) || access(FAIL_PAGE_ALLOC_DIR, F_OK) ||
		    access("/proc/thread-self/fail-nth", F_OK))
			SKIP("no fault injection: the kernel is built without CONFIG_FAILSLAB, "
			     "CONFIG_FAIL_PAGE_ALLOC or CONFIG_FAULT_INJECTION_DEBUG_FS");

		const bool slab = which == Injected::slab;

		set(FAILSLAB_DIR, "verbose", "0");
		set(FAILSLAB_DIR, "ignore-gfp-wait", slab ? "N" : "Y");
		set(FAILSLAB_DIR, "cache-filter", slab ? "N" : "Y");
		set(FAIL_PAGE_ALLOC_DIR, "verbose", "0");
		set(FAIL_PAGE_ALLOC_DIR, "ignore-gfp-wait", slab ? "Y" : "N");
		set(FAIL_PAGE_ALLOC_DIR, "ignore-gfp-highmem", slab ? "Y" : "N");
		set(FAIL_PAGE_ALLOC_DIR, "min-order", slab ? std::to_string(UINT32_MAX) : "0");
	}

	~FaultInjector()
	{
		while (!settings_.empty())
			settings_.pop_back();
	}

	FaultInjector(const FaultInjector &) = delete;
	FaultInjector &operator=(const FaultInjector &) = delete;

private:
	static constexpr const char *FAILSLAB_DIR = "/sys/kernel/debug/failslab";
	static constexpr const char *FAIL_PAGE_ALLOC_DIR = "/sys/kernel/debug/fail_page_alloc";

	void set(const char *dir, const char *knob, const std::string &value)
	{
		settings_.push_back(
			std::make_unique<mm::ScopedSetting>(std::string(dir) + "/" + knob, value));
	}

	std::vector<std::unique_ptr<mm::ScopedSetting>> settings_;
};

/*
 * /proc/thread-self/fail-nth: the n-th allocation this thread makes after
 * the write fails. Armed only for the length of one ioctl, so that nothing
 * in user space meets the failure: a page fault of the VMM's own that
 * fails would wake the OOM killer instead of returning an error.
 */
class NthFailure
{
public:
	NthFailure() : fd_(open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC))
	{
		if (!fd_)
			throw SysError("open(/proc/thread-self/fail-nth)", errno);
	}

	/*
	 * ioctl() with its n-th allocation failing, errno as the ioctl left it;
	 * fired says whether the ioctl got as far as that allocation.
	 */
	long ioctl(int fd, unsigned long request, void *arg, unsigned int n, bool &fired) const
	{
		set(n);

		const long ret = ::ioctl(fd, request, arg);
		const int err = errno;

		fired = remaining() == 0;
		set(0);
		errno = err;
		return ret;
	}

private:
	void set(unsigned int n) const
	{
		const std::string s = std::to_string(n);

		if (pwrite(fd_.get(), s.data(), s.size(), 0) != static_cast<ssize_t>(s.size()))
			throw SysError("write(/proc/thread-self/fail-nth)", errno);
	}

	unsigned long remaining() const
	{
		char buf[32] = {};

		if (pread(fd_.get(), buf, sizeof(buf) - 1, 0) <= 0)
			throw SysError("read(/proc/thread-self/fail-nth)", errno);
		return std::strtoul(buf, nullptr, 10);
	}

	FileDesc fd_;
};

/* What the calls of one kind returned with an allocation failing: counts by outcome. */
struct InjectedOutcomes {
	uint64_t calls = 0;
	uint64_t fired = 0;
	uint64_t full = 0;
	uint64_t partial = 0;
	std::map<int, uint64_t> errors;

	std::string describe() const
	{
		std::string s = std::to_string(calls) + " calls, " + std::to_string(fired) +
				" with an allocation failed: " + std::to_string(full) +
				" complete, " + std::to_string(partial) + " partial";

		for (const auto &[err, n] : errors)
			s += ", " + std::to_string(n) + " " + errno_name(err);
		return s;
	}
};

/* The model of the slot's tags: each page holds one seed's pattern, or none. */
class TagModel
{
public:
	TagModel(uint64_t gpa, uint64_t size) : gpa_(gpa), seeds_(size / PAGE, NO_TAGS) {}

	void set(uint64_t first_page, uint64_t pages, uint64_t seed)
	{
		std::fill_n(seeds_.begin() + first_page, pages, seed);
	}

	uint64_t seed(uint64_t page) const { return seeds_[page]; }
	uint64_t pages() const { return seeds_.size(); }
	uint64_t gpa(uint64_t page) const { return gpa_ + page * PAGE; }
	uint64_t page_of(uint64_t gpa) const { return (gpa - gpa_) / PAGE; }

	/* The tag bytes FROM_GUEST must give for pages [first, first + n). */
	std::vector<uint8_t> expected(uint64_t first, uint64_t n) const
	{
		std::vector<uint8_t> tags;

		for (uint64_t p = first; p < first + n; p++) {
			std::vector<uint8_t> page(MTE_TAG_BYTES_PER_PAGE, 0);

			if (seeds_[p] != NO_TAGS)
				page = pattern_tags(gpa(p), PAGE, seeds_[p]);
			tags.insert(tags.end(), page.begin(), page.end());
		}
		return tags;
	}

	/* Granules of buf (tags of pages [first, first + n)) that differ from the model. */
	uint64_t mismatches(const uint8_t *buf, uint64_t first, uint64_t n) const
	{
		const std::vector<uint8_t> want = expected(first, n);
		uint64_t bad = 0;

		for (uint64_t i = 0; i < want.size(); i++)
			if (buf[i] != want[i] && !bad++)
				ktest::diag("granule at IPA " +
					    hex(gpa(first) + i * arch::mte::GRANULE_SIZE) +
					    ": tag " + hex(buf[i]) + ", the model says " +
					    hex(want[i]));
		return bad;
	}

private:
	uint64_t gpa_;
	std::vector<uint64_t> seeds_;
};

/*
 * One copy with its n-th allocation failing, judged by the contract: all
 * of it, a count of whole pages done before the failure, or, with nothing
 * done, ENOMEM (the kernel's own allocation) or EFAULT (a page that could
 * not be brought in). A call that never reached the allocation must have
 * done all of it. Returns the bytes done.
 */
uint64_t judge_injected_copy(long ret, int err, bool fired, uint64_t length, InjectedOutcomes &out)
{
	const std::string what = "copy of " + std::to_string(length) + " bytes ";

	out.calls++;
	out.fired += fired;
	if (ret < 0) {
		out.errors[err]++;
		if (!fired || (err != ENOMEM && err != EFAULT))
			ktest::record_failure(KTEST_HERE,
					      what + "failed with " + errno_name(err) +
						      (fired ? "" : " and no injected failure"));
		return 0;
	}

	const uint64_t done = static_cast<uint64_t>(ret);

	if (done == length) {
		out.full++;
		return done;
	}
	out.partial++;
	if (!fired || !done || done > length || done % PAGE)
		ktest::record_failure(KTEST_HERE,
				      what + "returned " + std::to_string(ret) +
					      (fired ? "" : " and no injected failure"));
	return std::min(done - done % PAGE, length);
}

/*
 * Copies [r.gpa, r.gpa + r.size) with the first, second, third ...
 * allocation failing in turn until the copy makes no more allocations than
 * that: every allocation it makes fails once. The model follows what each
 * attempt reports; FROM_GUEST must give the model's tags for what it reports.
 */
void sweep_copy(const Vm &vm, const NthFailure &nth, TagModel &model, const Range &r, bool to_guest,
		uint64_t seed, InjectedOutcomes &out)
{
	const uint64_t first = model.page_of(r.gpa);

	for (unsigned int n = 1;; n++) {
		std::vector<uint8_t> buf =
			to_guest ? pattern_tags(r.gpa, r.size, seed)
				 : std::vector<uint8_t>(mte_tag_bytes(r.size), POISON);
		kvm_arm_copy_mte_tags args = {};
		bool fired = false;

		args.guest_ipa = r.gpa;
		args.length = r.size;
		args.addr = buf.data();
		args.flags = to_guest ? TO_GUEST : FROM_GUEST;

		const long ret = nth.ioctl(vm.fd(), KVM_ARM_MTE_COPY_TAGS, &args, n, fired);
		const int err = errno;
		const uint64_t done = judge_injected_copy(ret, err, fired, r.size, out);

		if (to_guest)
			model.set(first, done / PAGE, seed);
		else
			EXPECT_EQ(model.mismatches(buf.data(), first, done / PAGE), 0);
		if (!fired)
			return;
		ASSERT_TRUE(n < FI_MAX_ATTEMPTS);
	}
}

/*
 * Runs the vCPU to DONE, each KVM_RUN with its n-th allocation failing,
 * n growing by one per KVM_RUN: the guest's faults meet failures at every
 * point of their way, and a failed KVM_RUN is simply entered again.
 */
void run_failing_until_done(Vcpu &vcpu, const NthFailure &nth, InjectedOutcomes &out)
{
	for (unsigned int n = 1;; n++) {
		bool fired = false;

		ASSERT_TRUE(n < FI_MAX_ATTEMPTS);
		out.calls++;
		if (nth.ioctl(vcpu.fd(), KVM_RUN, nullptr, n, fired) < 0) {
			const int err = errno;

			out.fired += fired;
			out.errors[err]++;
			if (!fired || (err != ENOMEM && err != EFAULT))
				ktest::fail(KTEST_HERE,
					    "KVM_RUN failed with " + errno_name(err) +
						    (fired ? "" : " and no injected failure"));
			continue;
		}
		out.fired += fired;
		out.full++;

		const Ucall u = vcpu.decode_exit();

		if (u.cmd == UcallCmd::done)
			return;
		if (u.cmd != UcallCmd::print)
			ktest::fail(KTEST_HERE, "vCPU: expected DONE, got " + u.describe());
	}
}

/*
 * The whole model checked twice, with no failure injected: by FROM_GUEST,
 * and by the guest's own LDG for every page that has tags.
 */
void expect_model(const Vm &vm, Vcpu &vcpu, const TagModel &model)
{
	const std::vector<uint8_t> got = read_tags(vm, model.gpa(0), model.pages() * PAGE);

	EXPECT_EQ(model.mismatches(got.data(), 0, model.pages()), 0);
	for (uint64_t p = 0; p < model.pages();) {
		uint64_t n = 1;

		while (p + n < model.pages() && model.seed(p + n) == model.seed(p))
			n++;
		if (model.seed(p) != NO_TAGS)
			run_guest(vcpu, TagCheck::off, guest_check_tags, model.gpa(p), n * PAGE,
				  model.seed(p));
		p += n;
	}
}

/*
 * Enabling the capability, the guest's stage-2 faults and tag copies in
 * both directions, with every allocation they make failing in turn
 * (failslab or fail_page_alloc, through fail-nth). Before each copy to the
 * guest its pages are dropped, before each copy from the guest pushed to
 * swap, so that the copy has pages to bring in; the guest retags the whole
 * slot each round, after pages were dropped and swapped out. Every call
 * gives a clean errno, a partial count or its whole length; the tags it
 * reports copied are there and the rest are as before; afterwards the
 * VM's memory is free again and the kernel log is quiet.
 */
void injected_failures_lose_nothing(const Injected &which)
{
	Kvm kvm = mte_kvm();

	require_madvise("MADV_DONTNEED and MADV_PAGEOUT");

	KmsgWatch kmsg;
	const MemoryBefore memory_before;
	const bool can_swap = swap_available();
	InjectedOutcomes enables, runs, copies_to, copies_from;

	{
		FaultInjector injector(which);
		NthFailure nth;
		Vm vm(kvm);
		kvm_enable_cap cap = {};

		/* It allocates nothing today; it must stay that way or fail cleanly. */
		cap.cap = KVM_CAP_ARM_MTE;
		for (unsigned int n = 1;; n++) {
			bool fired = false;
			const long ret = nth.ioctl(vm.fd(), KVM_ENABLE_CAP, &cap, n, fired);

			enables.calls++;
			enables.fired += fired;
			if (!ret) {
				enables.full++;
				break;
			}
			const int err = errno;

			enables.errors[err]++;
			ASSERT_TRUE(fired);
			ASSERT_EQ(errno_name(err), errno_name(ENOMEM));
		}

		MemRegion &r = vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, FI_SIZE));
		Vcpu &vcpu = vm.add_vcpu(0);
		TagModel model(EXTRA_GPA_A, FI_SIZE);
		std::mt19937_64 rng(FI_SEED_BASE);
		uint64_t next_seed = FI_SEED_BASE + 1;
		const auto t0 = std::chrono::steady_clock::now();
		const auto drop = [&](uint64_t first, uint64_t pages) {
			check(make_result(
				"madvise(MADV_DONTNEED)",
				madvise(r.host() + first * PAGE, pages * PAGE, MADV_DONTNEED)));
			model.set(first, pages, NO_TAGS);
		};
		/* Pages dropped and not touched since have nothing to swap out. */
		const auto push_to_swap = [&](uint64_t first, uint64_t pages) {
			uint8_t *addr = r.host() + first * PAGE;

			for (unsigned int i = 0; can_swap && i < PAGEOUT_ATTEMPTS &&
						 pages_swapped_out(addr, pages * PAGE) < pages;
			     i++)
				check(make_result("madvise(MADV_PAGEOUT)",
						  madvise(addr, pages * PAGE, MADV_PAGEOUT)));
		};

		for (unsigned int round = 0; round < FI_ROUNDS; round++) {
			/* The guest faults in and tags the whole slot. */
			const uint64_t guest_seed = next_seed++;

			vcpu.start(guest_set_tags, EXTRA_GPA_A, FI_SIZE, guest_seed);
			vcpu.set_reg(reg::SCTLR_EL1, mte_sctlr(TagCheck::off));
			run_failing_until_done(vcpu, nth, runs);
			model.set(0, model.pages(), guest_seed);

			for (unsigned int i = 0; i < FI_COPIES_PER_ROUND; i++) {
				const Range range = random_range(rng, EXTRA_GPA_A, FI_SIZE);
				const bool to_guest = rng() % 2;

				if (to_guest)
					drop(model.page_of(range.gpa), range.size / PAGE);
				else
					push_to_swap(model.page_of(range.gpa), range.size / PAGE);
				sweep_copy(vm, nth, model, range, to_guest, next_seed++,
					   to_guest ? copies_to : copies_from);
			}
			/* All of it, also so that every page's reference goes through the copy. */
			sweep_copy(vm, nth, model, {EXTRA_GPA_A, FI_SIZE}, false, 0, copies_from);

			for (unsigned int i = 0; i < FI_DROPS_PER_ROUND; i++)
				drop(rng() % model.pages(), 1);
			for (unsigned int i = 0; i < FI_PAGEOUTS_PER_ROUND; i++)
				push_to_swap(rng() % model.pages(), 1);
			ktest::diag("round " + std::to_string(round + 1) + "/" +
				    std::to_string(FI_ROUNDS) + " after " +
				    std::to_string(elapsed_ms(t0)) +
				    " ms: " + std::to_string(runs.calls) + " KVM_RUN, " +
				    std::to_string(copies_to.calls + copies_from.calls) +
				    " copies");
		}

		ktest::diag("KVM_ENABLE_CAP: " + enables.describe());
		ktest::diag("KVM_RUN: " + runs.describe());
		ktest::diag("TO_GUEST: " + copies_to.describe());
		ktest::diag("FROM_GUEST: " + copies_from.describe());
		/* Each allocator's failures reached the calls where it has them. */
		EXPECT_NE(copies_to.fired + copies_from.fired, 0);
		if (which == Injected::slab) {
			EXPECT_NE(copies_to.errors[ENOMEM], 0);
		} else {
			EXPECT_NE(runs.fired, 0);
			EXPECT_NE(copies_to.partial, 0);
			if (can_swap)
				EXPECT_NE(copies_from.partial, 0);
		}

		expect_model(vm, vcpu, model);
	}

	/*
	 * The VM's memory is free again. The copy takes plain page references
	 * (FOLL_GET), which the pin counters do not see; they would catch a
	 * FOLL_PIN left by anything on these paths.
	 */
	expect_memory_back(memory_before, "the VM");
	expect_quiet_kernel_log(kmsg);
}

} // namespace

/*
 * Every allocation that enabling MTE, the guest's faults and copies both
 * ways make fails in turn (failslab, then fail_page_alloc, through the
 * VMM thread's fail-nth): clean errors or partial counts only, no tag lost,
 * no page leaked. Skips on a kernel without fault injection.
 */
constexpr ktest::Variant<Injected> INJECTED_FAILURES[] = {
	{"failslab_gives_clean_errors_and_loses_no_tag", Injected::slab},
	{"fail_page_alloc_gives_clean_errors_and_loses_no_tag", Injected::page_alloc},
};
TEST_VARIANTS(mte_copy_tags, INJECTED_FAILURES, injected_failures_lose_nothing, .timeout_s = 90);

namespace
{

/* Stress: several MTE VMs under memory pressure, for a bounded time. */
constexpr unsigned int PRESSURE_VMS = 3;
constexpr unsigned int PRESSURE_VCPUS = 2;
/* Per VM: the vCPUs' THP-backed slot, the VMM's THP-backed slot, a churning slot. */
constexpr uint64_t PRESSURE_GUEST_SIZE = 2 * arch::BLOCK_SIZE_2M;
constexpr uint64_t PRESSURE_VMM_SIZE = arch::BLOCK_SIZE_2M;
constexpr uint64_t PRESSURE_CHURN_SIZE = 32 * PAGE;
constexpr auto PRESSURE_DURATION = std::chrono::seconds(10);
/* The pressure thread compacts all memory once in this many passes. */
constexpr unsigned int PRESSURE_COMPACT_EVERY = 8;
constexpr auto PRESSURE_PAUSE = std::chrono::milliseconds(2);
/*
 * The host's side runs at this nice level: among a dozen busy vCPU and
 * copier threads it would otherwise get a pass or two in.
 */
constexpr int PRESSURE_NICE = -15;
constexpr uint64_t SEED_CHURN = 0x6368'7572'6e00'0004;

constexpr const char *THP_KHUGEPAGED = "/sys/kernel/mm/transparent_hugepage/khugepaged/";
constexpr const char *KSM = "/sys/kernel/mm/ksm/";

/* /proc/vmstat counters whose growth shows the pressure was real. */
constexpr const char *PRESSURE_COUNTERS[] = {
	"pswpout", "pswpin", "thp_split_page", "thp_collapse_alloc", "compact_migrate_scanned",
};

/* One VM of the stress test, its three slots and what its threads did. */
struct PressureVm {
	Vm vm;
	MemRegion *guest = nullptr;
	MemRegion *vmm = nullptr;
	Mapping churn_mem;
	std::vector<Vcpu *> vcpus;
	/* Finished guest rounds per vCPU: its tags are those of the last one. */
	std::array<std::atomic<uint64_t>, PRESSURE_VCPUS> rounds{};
	std::atomic<uint64_t> copies{0};
	std::atomic<uint64_t> slot_changes{0};
	std::atomic<uint64_t> mismatches{0};
	uint64_t vmm_seed;
	/* The VMM slot's tags: only the copier writes them, a new seed each time. */
	TagModel vmm_model{EXTRA_GPA_B, PRESSURE_VMM_SIZE};

	PressureVm(Kvm &kvm, unsigned int index)
		: vm(mte_vm(kvm)),
		  churn_mem(Mapping::map("mmap(churn slot)", nullptr, PRESSURE_CHURN_SIZE,
					 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
					 0)),
		  vmm_seed(SEED_VMM + index)
	{
		guest = &vm.add_region(tagged_region(EXTRA_SLOT_A, EXTRA_GPA_A, PRESSURE_GUEST_SIZE,
						     Backing::anon_private, false, true));
		vmm = &vm.add_region(tagged_region(EXTRA_SLOT_B, EXTRA_GPA_B, PRESSURE_VMM_SIZE,
						   Backing::anon_private, false, true));
		for (unsigned int i = 0; i < PRESSURE_VCPUS; i++)
			vcpus.push_back(&vm.add_vcpu(i));
		set_churn_slot(true);
		vm.map(EXTRA_GPA_C, EXTRA_GPA_C, PRESSURE_CHURN_SIZE,
		       tagged_region(EXTRA_SLOT_C, EXTRA_GPA_C, PRESSURE_CHURN_SIZE).stage1);
		write_tags(vm, EXTRA_GPA_B, PRESSURE_VMM_SIZE, vmm_seed);
		vmm_model.set(0, vmm_model.pages(), vmm_seed);
		write_tags(vm, EXTRA_GPA_C, PRESSURE_CHURN_SIZE, SEED_CHURN);
		for (const MemRegion *r : {guest, vmm})
			check(make_result("madvise(MADV_MERGEABLE)",
					  madvise(r->host(), r->size(), MADV_MERGEABLE)));
	}

	void set_churn_slot(bool present)
	{
		kvm_userspace_memory_region churn = {};

		churn.slot = EXTRA_SLOT_C;
		churn.guest_phys_addr = EXTRA_GPA_C;
		churn.memory_size = present ? PRESSURE_CHURN_SIZE : 0;
		churn.userspace_addr = reinterpret_cast<uint64_t>(churn_mem.get());
		check(vm.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &churn));
		slot_changes++;
	}

	uint64_t vcpu_share() const { return PRESSURE_GUEST_SIZE / PRESSURE_VCPUS; }
	uint64_t vcpu_seed(unsigned int i) const { return SEED_GUEST + i * 0x100 + vmm_seed; }
};

/* The growth of a /proc/vmstat counter, or n/a where the kernel has none (VM_EVENT_COUNTERS=n). */
std::string counter_growth(const std::string &key, const std::optional<uint64_t> &before)
{
	const std::optional<uint64_t> now = mm::vmstat(key);

	return key + " " + (now && before ? std::to_string(*now - *before) : "n/a");
}

/* Pages of a vCPU's share whose first word is not its last round's (through the VMM's mapping). */
uint64_t data_mismatches(const PressureVm &p, unsigned int i, uint64_t round)
{
	const uint8_t *share = p.guest->host() + i * p.vcpu_share();
	uint64_t bad = 0;

	for (uint64_t off = 0; off < p.vcpu_share(); off += PAGE) {
		uint64_t word;

		std::memcpy(&word, share + off, sizeof(word));
		bad += word != round;
	}
	return bad;
}

/* A FROM_GUEST of [gpa, gpa + size) that must give the seed's pattern; counts mismatches. */
void expect_pattern(PressureVm &p, uint64_t gpa, uint64_t size, uint64_t seed)
{
	std::vector<uint8_t> buf(mte_tag_bytes(size), POISON);

	check(mte_copy_tags(p.vm, gpa, size, buf.data(), FROM_GUEST));
	p.mismatches += pattern_mismatches(buf.data(), gpa, size, seed);
}

} // namespace

/*
 * Three MTE VMs of two vCPUs each for ten seconds: the vCPUs retag their
 * THP-backed memory round after round, a copier per VM copies tags both
 * ways through another slot (FROM_GUEST must always find what TO_GUEST last
 * wrote), a third slot is deleted and added back over and over, and all
 * the while the host pushes pages to swap on zram (splitting THPs),
 * compacts memory, and lets khugepaged and KSM scan it all. At the end
 * every tag of every slot is checked by FROM_GUEST and by the guests' LDG,
 * with the figures of what happened. About 30 s under TCG.
 */
TEST_TIMEOUT(mte_copy_tags, many_vms_under_memory_pressure_lose_no_tag, 120)
{
	Kvm kvm = mte_kvm();

	require_madvise("MADV_PAGEOUT, MADV_HUGEPAGE and MADV_MERGEABLE");
	if (!swap_available())
		SKIP("no swap: the test bed's init sets up swap on zram");
	if (access(THP_KHUGEPAGED, F_OK) || access(KSM, F_OK))
		SKIP("the kernel is built without THP or KSM");

	KmsgWatch kmsg;
	const std::string khugepaged = THP_KHUGEPAGED;
	const std::string ksm = KSM;
	mm::ScopedSetting scan_sleep(khugepaged + "scan_sleep_millisecs", "10");
	mm::ScopedSetting alloc_sleep(khugepaged + "alloc_sleep_millisecs", "10");
	mm::ScopedSetting ksm_sleep(ksm + "sleep_millisecs", "10");
	mm::ScopedSetting ksm_pages(ksm + "pages_to_scan", "1000");
	mm::ScopedSetting ksm_run(ksm + "run", "1");
	std::map<std::string, std::optional<uint64_t>> before;

	for (const char *c : PRESSURE_COUNTERS)
		before[c] = mm::vmstat(c);
	const uint64_t ksm_scans_before = mm::read_number(ksm + "full_scans");

	std::deque<PressureVm> vms;

	for (unsigned int i = 0; i < PRESSURE_VMS; i++)
		vms.emplace_back(kvm, i);

	const auto deadline = std::chrono::steady_clock::now() + PRESSURE_DURATION;
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> pageouts{0}, pages_out{0}, compactions{0};
	std::vector<std::function<void()>> jobs;

	for (PressureVm &p : vms) {
		for (unsigned int i = 0; i < PRESSURE_VCPUS; i++) {
			Vcpu &v = *p.vcpus[i];

			v.start(guest_stress_tags, EXTRA_GPA_A + i * p.vcpu_share(), p.vcpu_share(),
				p.vcpu_seed(i));
			v.set_reg(reg::SCTLR_EL1, mte_sctlr(TagCheck::off));
			jobs.push_back([&p, &v, &stop, i] {
				for (;;) {
					const Ucall u = v.run();

					if (u.cmd == UcallCmd::done)
						return;
					if (u.cmd != UcallCmd::sync)
						ktest::fail(KTEST_HERE, "vCPU: " + u.describe());
					p.rounds[i]++;
					if (stop)
						p.vm.guest_var(&copy_tags_stress_stop) = 1;
				}
			});
		}
		/* The copier: new tags in, and every read finds the last ones written. */
		jobs.push_back([&p, &stop, deadline] {
			StopOnExit stopper{stop};
			std::mt19937_64 rng(p.vmm_seed);
			uint64_t seed = p.vmm_seed;

			while (std::chrono::steady_clock::now() < deadline) {
				const Range r = random_range(rng, EXTRA_GPA_B, PRESSURE_VMM_SIZE);
				const uint64_t first = p.vmm_model.page_of(r.gpa);

				if (rng() % 2) {
					write_tags(p.vm, r.gpa, r.size, ++seed);
					p.vmm_model.set(first, r.size / PAGE, seed);
				} else {
					const std::vector<uint8_t> got =
						read_tags(p.vm, r.gpa, r.size);

					p.mismatches += p.vmm_model.mismatches(got.data(), first,
									       r.size / PAGE);
				}
				p.copies++;
			}
		});
		/* Memslot churn: the slot's memory, and so its tags, outlive each deletion. */
		jobs.push_back([&p, &stop] {
			while (!stop) {
				p.set_churn_slot(false);
				p.set_churn_slot(true);
				expect_pattern(p, EXTRA_GPA_C, PRESSURE_CHURN_SIZE, SEED_CHURN);
			}
		});
	}
	/* The host: swap-outs of parts of every slot (splitting THPs), and compaction. */
	jobs.push_back([&] {
		std::mt19937_64 rng(SEED_OLD);

		check(make_result("setpriority",
				  setpriority(PRIO_PROCESS, gettid(), PRESSURE_NICE)));

		const auto page_out_some = [&](uint8_t *mem, uint64_t size) {
			const Range r = random_range(rng, 0, size);

			check(make_result("madvise(MADV_PAGEOUT)",
					  madvise(mem + r.gpa, r.size, MADV_PAGEOUT)));
			pageouts++;
			pages_out += pages_swapped_out(mem + r.gpa, r.size);
		};

		for (unsigned int pass = 0; !stop; pass++) {
			for (PressureVm &p : vms) {
				page_out_some(p.guest->host(), PRESSURE_GUEST_SIZE);
				page_out_some(p.vmm->host(), PRESSURE_VMM_SIZE);
				page_out_some(static_cast<uint8_t *>(p.churn_mem.get()),
					      PRESSURE_CHURN_SIZE);
			}
			if (pass % PRESSURE_COMPACT_EVERY == 0) {
				mm::write_file("/proc/sys/vm/compact_memory", "1");
				compactions++;
			}
			std::this_thread::sleep_for(PRESSURE_PAUSE);
		}
	});

	run_concurrently(jobs);

	/* Every tag, read by FROM_GUEST and by the guests' own LDG. */
	uint64_t copies = 0, changes = 0, vcpu_rounds = 0, granules = 0;

	for (PressureVm &p : vms) {
		for (unsigned int i = 0; i < PRESSURE_VCPUS; i++) {
			const uint64_t gpa = EXTRA_GPA_A + i * p.vcpu_share();
			const uint64_t seed = p.vcpu_seed(i) + p.rounds[i] - 1;

			ASSERT_NE(p.rounds[i].load(), 0);
			EXPECT_EQ(data_mismatches(p, i, p.rounds[i] - 1), 0);
			expect_pattern(p, gpa, p.vcpu_share(), seed);
			run_guest(*p.vcpus[i], TagCheck::off, guest_check_tags, gpa, p.vcpu_share(),
				  seed);
			vcpu_rounds += p.rounds[i];
		}
		expect_model(p.vm, *p.vcpus[0], p.vmm_model);
		expect_pattern(p, EXTRA_GPA_C, PRESSURE_CHURN_SIZE, SEED_CHURN);
		run_guest(*p.vcpus[0], TagCheck::off, guest_check_tags, EXTRA_GPA_C,
			  PRESSURE_CHURN_SIZE, SEED_CHURN);
		EXPECT_EQ(p.mismatches.load(), 0);
		copies += p.copies;
		changes += p.slot_changes;
		granules += 2 * mte_tag_bytes(PRESSURE_GUEST_SIZE + PRESSURE_VMM_SIZE +
					      PRESSURE_CHURN_SIZE);
	}

	std::string figures;

	for (const char *c : PRESSURE_COUNTERS)
		figures += std::string(figures.empty() ? "" : ", ") + counter_growth(c, before[c]);
	ktest::diag(std::to_string(PRESSURE_VMS) + " VMs, " +
		    std::to_string(PRESSURE_VMS * PRESSURE_VCPUS) + " vCPUs, " +
		    std::to_string(PRESSURE_VMS *
				   (PRESSURE_GUEST_SIZE + PRESSURE_VMM_SIZE + PRESSURE_CHURN_SIZE) /
				   PAGE) +
		    " pages; " + std::to_string(vcpu_rounds) + " guest rounds, " +
		    std::to_string(copies) + " copies, " + std::to_string(changes) +
		    " memslot changes, " + std::to_string(pageouts) + " page-out calls (" +
		    std::to_string(pages_out) + " pages seen in swap after them), " +
		    std::to_string(compactions) + " compactions, " +
		    std::to_string(mm::read_number(ksm + "full_scans") - ksm_scans_before) +
		    " KSM full scans");
	ktest::diag("vmstat: " + figures);
	ktest::diag(std::to_string(granules) + " tags verified (FROM_GUEST and LDG), and " +
		    std::to_string(PRESSURE_VMS * PRESSURE_GUEST_SIZE / PAGE) + " pages' data");
	/* The pressure was real: pages went to swap, and the checks above brought them back. */
	EXPECT_NE(pages_out.load(), 0);
	expect_quiet_kernel_log(kmsg);
}
