// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation tags of MTE guests (KVM_CAP_ARM_MTE), end to end:
 *
 *  - tagging inside the guest works as on hardware: IRG honours
 *    GCR_EL1.Exclude, STG/ST2G/STZG/STGP and LDG act on exactly one 16-byte
 *    granule each, synchronous tag check faults are reported with the right
 *    ESR and FAR, asynchronous ones set TFSR_EL1.TF0 and survive exits;
 *  - the MTE register state (GCR_EL1, RGSR_EL1, TFSR_EL1, TFSRE0_EL1) and
 *    fault mode stay per vCPU and per VM while vCPUs run concurrently,
 *    exit thousands of times and migrate between host CPUs;
 *  - a page's first mapping into an MTE guest has all tags zero, for small
 *    pages of every backing and for THP, also when the host wrote data first
 *    and the page previously held someone else's tags, and also when the
 *    page replaces, behind the guest's back, the zero page the guest read
 *    (the VMM's write CoWs it and the MMU notifier's change_pte fires);
 *  - a VMM's PROT_MTE mapping and the guest see the same tags;
 *  - swap (also through a VMM mapping without PROT_MTE), THP split and
 *    compaction keep guest tags, KSM never merges tagged pages, and the
 *    untagged pages it does merge reach the guest only with tags zeroed;
 *  - the small pages of a THP keep their own PG_mte_tagged: when stage 2
 *    maps a THP page by page (dirty logging), and when khugepaged collapses
 *    tagged and untagged small pages into one, a split neither drops the
 *    tags the guest (or the VMM, with KVM_ARM_MTE_COPY_TAGS) wrote nor
 *    passes stale tags off as valid;
 *  - a host process using MTE itself never sees a guest's exclusion mask or
 *    a guest's tag check faults;
 *  - tags a guest wrote never reach the next user of its memory once the VM
 *    is gone, a new VM or a host process, whether the memory comes back as
 *    small pages, as THPs or through the swap slots it was swapped out to;
 *  - a guest's tag access between its memslots reaches no memory.
 *
 * Without KVM's tag sanitising, register switching or PG_mte_tagged
 * handling, guests would see stale tags, lose tags across host memory
 * management, or disturb each other and the host: these tests catch each.
 */
#include <algorithm>
#include <atomic>
#include <barrier>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <optional>
#include <string>
#include <sys/mman.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <thread>
#include <ucontext.h>
#include <unistd.h>
#include <unordered_set>
#include <vector>

#include "lib/arch.hpp"
#include "lib/copy_tags.hpp"
#include "lib/host_mm.hpp"
#include "lib/host_mte.hpp"
#include "lib/kvm.hpp"
#include "lib/mm_probe.hpp"
#include "lib/mte_vm.hpp"
#include "lib/names.hpp"
#include "lib/test.hpp"
#include "mte_tags.hpp"

using namespace kvmt;
using arch::PAGE_SIZE;
using arch::mte::GRANULE_SIZE;
using arch::mte::GRANULES_PER_PAGE;

namespace
{

constexpr uint64_t KIB = 1024;
constexpr uint64_t MIB = 1024 * KIB;
constexpr uint64_t THP_SIZE = arch::BLOCK_SIZE_2M;
constexpr uint64_t SUBPAGES_PER_THP = THP_SIZE / PAGE_SIZE;

/* Seeds of the tag and data patterns (any distinct non-zero values). */
constexpr uint64_t TAG_SEED = 3;
constexpr uint64_t OTHER_TAG_SEED = 8;
constexpr uint64_t DATA_SEED = 0xd47a'0000'0000'0001;

/* IRG: enough samples that every allowed tag shows up. */
constexpr uint64_t IRG_SAMPLES = 4096;
constexpr uint64_t IRG_SEED = 0x5a17;
constexpr uint64_t EXCLUDE_NONE = 0;
constexpr uint64_t EXCLUDE_ALTERNATE = 0xa5a5;
constexpr uint64_t EXCLUDE_ALL = arch::gcr::EXCLUDE_MASK;

/* State isolation: iterations (one SYNC exit each) per vCPU, and how often to migrate. */
constexpr uint64_t ISOLATION_ITERATIONS = 5000;
constexpr uint64_t MIGRATE_EVERY_EXITS = 16;
constexpr uint64_t REG_CHECK_EVERY_EXITS = 64;

/* Memory left with non-zero tags just before the first-touch tests allocate theirs. */
constexpr uint64_t DIRTY_SIZE = 8 * MIB;
constexpr uint64_t DIRTY_TAG_SEED = 13;
constexpr uint64_t FIRST_TOUCH_SIZE = 16 * PAGE_SIZE;

/* Host memory management. */
constexpr uint64_t SWAP_SIZE = 16 * PAGE_SIZE;
constexpr unsigned int PAGEOUT_ATTEMPTS = 4;
constexpr uint64_t COMPACT_SIZE = 2 * MIB;
constexpr unsigned int COMPACT_ATTEMPTS = 3;
/* Memory to leave half used above the guest's pages; compaction works per pageblock. */
constexpr uint64_t COMPACT_SPREAD_SIZE = 128 * MIB;
constexpr uint64_t COMPACT_PAGEBLOCK_SIZE = arch::BLOCK_SIZE_2M;
/* The THP subpage the split test unmaps. */
constexpr uint64_t SPLIT_ZAPPED_SUBPAGE = 7;
/* THP subpages the guest tags while stage 2 maps page by page: never the head. */
constexpr uint64_t THP_HEAD_SUBPAGE = 0;
constexpr uint64_t TAIL_SUBPAGES_TAGGED[] = {1, SUBPAGES_PER_THP / 2, SUBPAGES_PER_THP - 1};

/* khugepaged: settings that make it collapse at once, and how long to wait for it. */
constexpr const char *KHUGEPAGED_DIR = "/sys/kernel/mm/transparent_hugepage/khugepaged/";
constexpr const char *KHUGEPAGED_SLEEP_MS = "10";
constexpr const char *KHUGEPAGED_PAGES_TO_SCAN = "4096";
/* Collapse even when most of the range was never touched (the default too). */
constexpr const char *KHUGEPAGED_MAX_PTES_NONE = "511";
constexpr auto COLLAPSE_POLL = std::chrono::milliseconds(20);
constexpr auto COLLAPSE_TIMEOUT = std::chrono::seconds(60);

/* KSM: identical pages, tagged in the MTE VM and untagged in the control VM. */
constexpr uint64_t KSM_PAGES = 32;
constexpr uint64_t KSM_WORD = 0x4b53'4d4b'534d'4b53;
constexpr unsigned int KSM_FULL_SCANS = 4;
constexpr const char *KSM_DIR = "/sys/kernel/mm/ksm/";
constexpr const char *KSM_PAGES_TO_SCAN = "1000";
constexpr const char *KSM_SLEEP_MS = "20";
constexpr const char *KSM_RUN = "1";
constexpr const char *KSM_UNMERGE = "2";
constexpr auto KSM_POLL = std::chrono::milliseconds(20);
constexpr auto KSM_TIMEOUT = std::chrono::seconds(30);

/* Host isolation: the host thread's include mask is disjoint from the guests'. */
constexpr uint64_t HOST_INCLUDE = 0x000e;	  /* tags 1..3 */
constexpr uint64_t GUEST_REMOTE_EXCLUDE = 0x00ff; /* tags 8..15 */
constexpr uint64_t GUEST_LOCAL_EXCLUDE = 0x0f0f;  /* tags 4..7, 12..15 */
constexpr uint64_t HOST_IRG_PER_ROUND = 16;
/* Tag of the granule the host accesses in async mode, from its include mask. */
constexpr uint64_t HOST_ASYNC_TAG = 0x2;
constexpr uint64_t HOST_ROUNDS = 1000;
constexpr uint64_t REMOTE_ITERATIONS = 3000;
/* Flipping the top tag bit always gives another tag. */
constexpr uint64_t OTHER_TAG = 0x8;

void add_failure(const std::string &msg, std::source_location loc = std::source_location::current())
{
	ktest::record_failure(loc, msg);
}

/* What SIGSEGV told the process; updated from the handler, so lock-free atomics only. */
struct SegvLog {
	std::atomic<uint64_t> sync_faults{0};
	std::atomic<uint64_t> async_faults{0};
	std::atomic<uint64_t> last_sync_addr{0};
};

SegvLog segv_log;

/*
 * Counts MTE faults; a synchronous one is skipped (the faulting access is a
 * single 4-byte load). Anything else is a real crash: the default action
 * takes over when the access is retried.
 */
void on_segv(int, siginfo_t *si, void *ctx)
{
	auto *uc = static_cast<ucontext_t *>(ctx);

	switch (si->si_code) {
	case SEGV_MTESERR:
		segv_log.sync_faults++;
		segv_log.last_sync_addr = reinterpret_cast<uint64_t>(si->si_addr);
		uc->uc_mcontext.pc += 4;
		return;
	case SEGV_MTEAERR:
		segv_log.async_faults++;
		return;
	}
	signal(SIGSEGV, SIG_DFL);
}

/* Installs on_segv() for the test's lifetime and restores the previous action. */
class SegvCatcher
{
public:
	SegvCatcher()
	{
		struct sigaction sa = {};

		segv_log.sync_faults = 0;
		segv_log.async_faults = 0;
		segv_log.last_sync_addr = 0;
		sa.sa_sigaction = on_segv;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		check(make_result("sigaction(SIGSEGV)", sigaction(SIGSEGV, &sa, &saved_)));
	}
	~SegvCatcher() { sigaction(SIGSEGV, &saved_, nullptr); }
	SegvCatcher(const SegvCatcher &) = delete;
	SegvCatcher &operator=(const SegvCatcher &) = delete;

private:
	struct sigaction saved_;
};

/*
 * THP in madvise mode, MADV_PAGEOUT and KSM all need madvise(); a kernel
 * built without it cannot show that guest tags survive them, which is a
 * failure of the test bed, not a reason to skip.
 */
void require_madvise(std::source_location loc = std::source_location::current())
{
	if (!madvise_available())
		ktest::fail(loc, "madvise() is not implemented (kernel built without "
				 "CONFIG_ADVISE_SYSCALLS): THP, MADV_PAGEOUT and KSM are unusable");
}

/* An MTE VM with one tagged page and vCPU 0: the setup of single-page tests. */
struct OnePageMteGuest {
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), PAGE_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);
};

std::string backing_name(Backing b)
{
	switch (b) {
	case Backing::anon_private:
		return "anonymous private";
	case Backing::anon_shared:
		return "anonymous shared";
	case Backing::memfd:
		return "memfd";
	}
	return "?";
}

void expect_clean(const TagsScan &scan, uint64_t expected_checks, const std::string &what,
		  std::source_location loc = std::source_location::current())
{
	if (scan.checked != expected_checks)
		ktest::record_failure(loc, what + ": checked " + std::to_string(scan.checked) +
						   " units, expected " +
						   std::to_string(expected_checks));
	if (scan.mismatches)
		ktest::record_failure(loc, what + ": " + std::to_string(scan.mismatches) + " of " +
						   std::to_string(scan.checked) +
						   " differ; first at guest address " +
						   hex(scan.first_addr) + ": found " +
						   hex(scan.first_found) + ", expected " +
						   hex(scan.first_expected));
}

/*
 * Has the guest compare every tag and data word of [gpa, gpa + len) with
 * the patterns and fails the test on any difference.
 */
void guest_expect(Vm &vm, Vcpu &vcpu, uint64_t gpa, uint64_t len, uint64_t tag_seed,
		  uint64_t data_seed, TagsDataLayout layout, const std::string &what,
		  std::source_location loc = std::source_location::current())
{
	vcpu.start(guest_scan, gpa, len, tag_seed, data_seed, layout);
	vcpu.run_until_done(loc);
	expect_clean(vm.guest_var(&tags_tag_scan), len / GRANULE_SIZE, what + " (tags)", loc);
	expect_clean(vm.guest_var(&tags_data_scan), len / sizeof(uint64_t), what + " (data)", loc);
}

void guest_write(Vcpu &vcpu, uint64_t gpa, uint64_t len, uint64_t tag_seed, uint64_t data_seed)
{
	vcpu.start(guest_write_pattern, gpa, len, tag_seed, data_seed);
	vcpu.run_until_done();
}

/* Host write of the data pattern (guest addresses) into one page of a region. */
void host_write_page(MemRegion &r, uint64_t page, uint64_t data_seed)
{
	auto *words = reinterpret_cast<uint64_t *>(r.host() + page * PAGE_SIZE);
	const uint64_t gpa = r.gpa() + page * PAGE_SIZE;

	for (uint64_t i = 0; i < PAGE_SIZE / sizeof(uint64_t); i++)
		words[i] = tags_data(data_seed, gpa + i * sizeof(uint64_t));
}

/*
 * Leaves `size` bytes of freshly freed memory with non-zero tags, so that
 * pages allocated right after (on this CPU) are likely to carry stale tags
 * that KVM must clear before a guest sees them. Freed small pages are
 * handed out again to small allocations, freed THPs to THP allocations, so
 * the memory is dirtied in the size the test will allocate. Returns the
 * PFNs it dirtied.
 */
std::unordered_set<uint64_t> dirty_free_memory_tags(uint64_t size, bool thp)
{
	Mapping reserve = Mapping::map("mmap(dirty reserve)", nullptr, size + THP_SIZE, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	auto *base = reinterpret_cast<uint8_t *>(
		(reinterpret_cast<uint64_t>(reserve.get()) + THP_SIZE - 1) & ~(THP_SIZE - 1));
	std::unordered_set<uint64_t> pfns;

	if (mmap(base, size, PROT_READ | PROT_WRITE | PROT_MTE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		throw SysError("mmap(PROT_MTE)", errno);
	if (thp)
		check(make_result("madvise(MADV_HUGEPAGE)", madvise(base, size, MADV_HUGEPAGE)));
	for (uint64_t off = 0; off < size; off += GRANULE_SIZE)
		host_mte::stg(host_mte::with_tag(base + off, tags_pattern(DIRTY_TAG_SEED, off)));
	for (const auto &p : mm::page_info(base, size))
		pfns.insert(p.pfn);
	/* The reservation's destructor unmaps it all and frees the pages. */
	return pfns;
}

/* How many pages of the region now use a PFN from `dirtied`. */
uint64_t pages_reusing(const MemRegion &r, const std::unordered_set<uint64_t> &dirtied)
{
	uint64_t n = 0;

	for (const auto &p : mm::page_info(r.host(), r.size()))
		n += p.present && dirtied.count(p.pfn);
	return n;
}

/*
 * Present pages of the region whose tags the kernel does not consider
 * valid, not counting the zero page: nothing of the series tags it (the
 * guest only ever maps it read-only), and whether it is PG_mte_tagged from
 * boot depends on the 5.10.y release.
 */
uint64_t pages_not_mte_tagged(const MemRegion &r)
{
	uint64_t n = 0;

	for (const auto &p : mm::page_info(r.host(), r.size())) {
		if (!p.present)
			continue;

		const uint64_t flags = mm::kpageflags(p.pfn);

		n += !((flags >> mm::kpf::ARCH_2) & 1) && !((flags >> mm::kpf::ZERO_PAGE) & 1);
	}
	return n;
}

/* Pages of the region that the VMM's page table maps to the shared zero page. */
uint64_t pages_mapping_zero_page(const MemRegion &r)
{
	uint64_t n = 0;

	for (const auto &p : mm::page_info(r.host(), r.size()))
		n += p.present && ((mm::kpageflags(p.pfn) >> mm::kpf::ZERO_PAGE) & 1);
	return n;
}

/* Present pages of the region that still belong to a THP (compound head or tail). */
uint64_t pages_in_thp(const MemRegion &r)
{
	uint64_t n = 0;

	for (const auto &p : mm::page_info(r.host(), r.size())) {
		if (!p.present)
			continue;

		const uint64_t flags = mm::kpageflags(p.pfn);

		n += (flags >> mm::kpf::THP | flags >> mm::kpf::COMPOUND_HEAD |
		      flags >> mm::kpf::COMPOUND_TAIL) &
		     1;
	}
	return n;
}

/* Present pages of the region. */
uint64_t pages_present(const MemRegion &r)
{
	uint64_t n = 0;

	for (const auto &p : mm::page_info(r.host(), r.size()))
		n += p.present;
	return n;
}

/* "{a, b, ...}" for messages and comparisons. */
std::string page_list(const std::vector<uint64_t> &pages)
{
	std::string s;

	for (uint64_t p : pages)
		s += (s.empty() ? "" : ", ") + std::to_string(p);
	return "{" + s + "}";
}

/* Pages of the region that KVM's dirty log reports written since the last call. */
std::vector<uint64_t> fetch_dirty_pages(const Vm &vm, const MemRegion &r)
{
	constexpr uint64_t bits_per_word = 64;
	const uint64_t pages = r.size() / PAGE_SIZE;
	std::vector<uint64_t> bitmap((pages + bits_per_word - 1) / bits_per_word);
	std::vector<uint64_t> dirty;
	kvm_dirty_log log = {};

	log.slot = r.slot();
	log.dirty_bitmap = bitmap.data();
	check(vm.ioctl_raw(KVM_GET_DIRTY_LOG, &log));
	for (uint64_t p = 0; p < pages; p++)
		if ((bitmap[p / bits_per_word] >> (p % bits_per_word)) & 1)
			dirty.push_back(p);
	return dirty;
}

/*
 * Has the guest check a region page by page: the pages in `tagged` hold the
 * tag and data patterns guest_write() gave them, every other page reads
 * tag 0 and zero data. Runs of untagged pages are checked in one go.
 */
void guest_expect_only_pages_tagged(Vm &vm, Vcpu &vcpu, const MemRegion &r,
				    const std::vector<uint64_t> &tagged, const std::string &what,
				    std::source_location loc = std::source_location::current())
{
	const uint64_t pages = r.size() / PAGE_SIZE;
	auto is_tagged = [&tagged](uint64_t page) {
		return std::find(tagged.begin(), tagged.end(), page) != tagged.end();
	};

	for (uint64_t page = 0, end; page < pages; page = end) {
		const bool guest_tagged = is_tagged(page);
		const uint64_t gpa = r.gpa() + page * PAGE_SIZE;

		for (end = page + 1; !guest_tagged && end < pages && !is_tagged(end); end++)
			;
		if (guest_tagged)
			guest_expect(vm, vcpu, gpa, PAGE_SIZE, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
				     what + ", page " + std::to_string(page) + " (guest tagged)",
				     loc);
		else
			guest_expect(vm, vcpu, gpa, (end - page) * PAGE_SIZE, TAGS_NO_PATTERN,
				     TAGS_NO_PATTERN, TAGS_DATA_ZERO,
				     what + ", pages " + std::to_string(page) + ".." +
					     std::to_string(end - 1) + " (never written)",
				     loc);
	}
}

/* Every page of the region has left memory: swapped (anonymous) or not resident (shmem). */
bool region_paged_out(const MemRegion &r)
{
	if (r.spec().backing == Backing::anon_private)
		return pages_swapped_out(r.host(), r.size()) == r.size() / PAGE_SIZE;

	std::vector<unsigned char> resident(r.size() / PAGE_SIZE);

	check(make_result("mincore", mincore(r.host(), r.size(), resident.data())));
	for (unsigned char v : resident)
		if (v & 1)
			return false;
	return true;
}

/* MADV_PAGEOUT until the whole region is in swap; fails the test if it never gets there. */
void page_out(const MemRegion &r)
{
	/* The first pass may only age the pages the guest just used. */
	for (unsigned int i = 0; i < PAGEOUT_ATTEMPTS; i++) {
		check(make_result("madvise(MADV_PAGEOUT)",
				  madvise(r.host(), r.size(), MADV_PAGEOUT)));
		if (region_paged_out(r))
			return;
	}
	ktest::fail(std::source_location::current(),
		    "MADV_PAGEOUT did not swap out the " + backing_name(r.spec().backing) +
			    " region; the test would prove nothing");
}

/* The host's own view, through its PROT_MTE mapping, of the tags the guest set. */
void expect_host_sees_tags(const MemRegion &r, uint64_t offset, uint64_t len, uint64_t tag_seed,
			   std::source_location loc = std::source_location::current())
{
	uint64_t bad = 0, first = 0;

	for (uint64_t off = offset; off < offset + len; off += GRANULE_SIZE)
		if (host_mte::ldg(r.host() + off) != tags_pattern(tag_seed, r.gpa() + off) &&
		    !bad++)
			first = r.gpa() + off;
	if (bad)
		ktest::record_failure(
			loc, "host PROT_MTE mapping: " + std::to_string(bad) +
				     " granule tags differ from the guest's, first at IPA " +
				     hex(first));
}

} // namespace

/* IRG only generates tags that GCR_EL1.Exclude allows, exactly as RRND=0 defines. */
TEST(mte_tags, irg_honours_gcr_exclude)
{
	OnePageMteGuest guest;
	auto &[kvm, vm, r, vcpu] = guest;

	for (uint64_t exclude : {EXCLUDE_NONE, EXCLUDE_ALTERNATE, EXCLUDE_ALL}) {
		vcpu.start(guest_irg_sequence, r.gpa(), exclude, IRG_SEED, IRG_SAMPLES);
		vcpu.run_until_done();

		const TagsIrgResult res = vm.guest_var(&tags_irg_result);
		const std::string mask = "GCR_EL1.Exclude " + hex(exclude);

		EXPECT_EQ(res.model_mismatches, 0);
		if (res.rgsr_mismatches)
			add_failure(mask + ": RGSR_EL1 left the architected sequence: " +
				    hex(res.first_bad_rgsr) + " instead of " +
				    hex(res.expected_rgsr));
		for (uint64_t t = 0; t < arch::mte::NUM_TAGS; t++) {
			const bool excluded = (exclude >> t) & 1;
			/* With every tag excluded, IRG gives tag 0. */
			const bool allowed = exclude == EXCLUDE_ALL ? t == 0 : !excluded;

			if (allowed && !res.generated[t])
				add_failure(mask + ": allowed tag " + std::to_string(t) +
					    " never generated");
			if (!allowed && res.generated[t])
				add_failure(mask + ": tag " + std::to_string(t) + " generated " +
					    std::to_string(res.generated[t]) + " times");
		}
	}
}

/* STG, ST2G, STZG set the tag of exactly the granules they address; LDG reads each back. */
TEST(mte_tags, tag_stores_and_ldg_per_granule)
{
	OnePageMteGuest guest;
	auto &[kvm, vm, r, vcpu] = guest;

	/* All checks are GUEST_ASSERTs: a failure names the line and both values. */
	vcpu.start(guest_store_load_tags, r.gpa());
	vcpu.run_until_done();
}

/* A mismatched load and store under TCF=sync fault with DABT_CUR/0x11 and the exact FAR. */
TEST(mte_tags, sync_tag_check_fault_reports_esr_and_far)
{
	OnePageMteGuest guest;
	auto &[kvm, vm, r, vcpu] = guest;

	vcpu.start(guest_sync_tag_fault, r.gpa());
	vcpu.run_until_done();

	for (unsigned int a = 0; a < TAGS_SYNC_ACCESSES; a++) {
		const TagsFault f = vm.guest_var(&tags_sync_faults[a]);
		const uint64_t addr = vm.guest_var(&tags_sync_addr[a]);
		const bool is_store = a == TAGS_SYNC_STORE;

		ktest::diag(std::string(is_store ? "store" : "load") + " at " + hex(addr) +
			    ": ESR " + hex(f.esr) + ", FAR " + hex(f.far));
		/* Counted cumulatively: the load's fault is the first, the store's the second. */
		EXPECT_EQ(f.count, a + 1);
		EXPECT_EQ(arch::esr::ec(f.esr), arch::esr::EC_DABT_CUR);
		EXPECT_EQ(f.esr & arch::esr::DFSC_MASK, arch::esr::DFSC_TAG_CHECK);
		EXPECT_EQ(bool(f.esr & arch::esr::WNR), is_store);
		/*
		 * FAR holds the faulting byte address including its logical tag
		 * (bits 59:56, TBI); bits 63:60 are UNKNOWN for tag check faults.
		 */
		EXPECT_EQ(f.far & TAGS_FAR_KNOWN_MASK, addr & TAGS_FAR_KNOWN_MASK);
	}
	/* The faulting store did not write; the matching accesses took no fault. */
	EXPECT_EQ(vm.guest_var(&tags_sync_data_after_store), TAGS_SYNC_GOOD_DATA);
}

/* A mismatched load under TCF=async sets TFSR_EL1.TF0 only, and it survives an exit. */
TEST(mte_tags, async_tag_check_fault_sets_tfsr)
{
	OnePageMteGuest guest;
	auto &[kvm, vm, r, vcpu] = guest;

	vcpu.start(guest_async_tag_fault, r.gpa());
	vcpu.expect_sync(TAGS_ASYNC_FAULT_PENDING);
	/* The guest's pending fault is in its saved TFSR_EL1 while it is out. */
	EXPECT_EQ(vcpu.get_reg(reg::TFSR_EL1), arch::tfsr::TF0);
	vcpu.run_until_done();

	EXPECT_EQ(vm.guest_var(&tags_async_tfsr_after_match), 0);
	/* The guest's addresses use TTBR0 (bit 55 clear), so TF0 and not TF1. */
	EXPECT_EQ(vm.guest_var(&tags_async_tfsr_after_fault), arch::tfsr::TF0);
	EXPECT_EQ(vm.guest_var(&tags_async_tfsr_after_exit), arch::tfsr::TF0);
	EXPECT_EQ(vm.guest_var(&tags_faults[0]).count, 0);
}

namespace
{

/* One isolation worker's MTE state; no two workers share a value. */
struct IsolationSetup {
	uint64_t gcr_exclude;
	uint64_t tcf;
	uint64_t tfsre0;
	uint64_t seed;
	uint64_t tag_seed;
};

constexpr IsolationSetup ISOLATION_SYNC = {
	.gcr_exclude = 0x00ff, /* tags 8..15 */
	.tcf = arch::sctlr::TCF_SYNC,
	.tfsre0 = 0,
	.seed = 0x1234,
	.tag_seed = 3,
};

constexpr IsolationSetup ISOLATION_ASYNC = {
	.gcr_exclude = 0xff00, /* tags 0..7 */
	.tcf = arch::sctlr::TCF_ASYNC,
	.tfsre0 = arch::tfsr::TF0,
	.seed = 0xbeef,
	.tag_seed = 11,
};

/* Gives vCPU vcpu_id of vm its worker setup, with the page at gpa as its own. */
void setup_worker(Vm &vm, uint32_t vcpu_id, const IsolationSetup &s, uint64_t gpa,
		  uint64_t iterations)
{
	vm.guest_var(&tags_iso_params[vcpu_id]) = {
		.gcr_exclude = s.gcr_exclude,
		.tcf = s.tcf,
		.tfsre0 = s.tfsre0,
		.seed = s.seed,
		.page = gpa,
		.tag_seed = s.tag_seed,
		.iterations = iterations,
	};
}

/*
 * The CPU a worker thread runs on in migration phase `phase`: thread 0
 * alternates every phase, thread 1 every other phase, so the two threads
 * share a CPU in some phases and not in others.
 */
int phase_cpu(const std::vector<int> &cpus, unsigned int thread, uint64_t phase)
{
	return cpus[(phase / (thread + 1)) % cpus.size()];
}

/*
 * Runs a vCPU started at guest_isolation_worker to completion on the
 * calling thread, migrating the thread between CPUs and checking through
 * ONE_REG that KVM's saved copy of the registers is the worker's own.
 */
void drive_worker(Vcpu &vcpu, const IsolationSetup &s, uint64_t iterations,
		  const std::vector<int> &cpus, unsigned int thread)
{
	uint64_t exits = 0;

	mm::pin_to_cpu(phase_cpu(cpus, thread, 0));
	for (;;) {
		const Ucall u = vcpu.run();

		if (u.cmd == UcallCmd::done)
			break;
		if (u.cmd != UcallCmd::sync || u.args[UCALL_SYNC_STAGE] != exits)
			ktest::fail(std::source_location::current(),
				    "vCPU " + std::to_string(vcpu.id()) + " after " +
					    std::to_string(exits) + " exits: " + u.describe());
		exits++;
		if (exits % MIGRATE_EVERY_EXITS == 0)
			mm::pin_to_cpu(phase_cpu(cpus, thread, exits / MIGRATE_EVERY_EXITS));
		if (exits % REG_CHECK_EVERY_EXITS == 0) {
			EXPECT_EQ(vcpu.get_reg(reg::GCR_EL1), s.gcr_exclude);
			EXPECT_EQ(vcpu.get_reg(reg::TFSRE0_EL1), s.tfsre0);
		}
	}
	EXPECT_EQ(exits, iterations);
}

void expect_worker_finished(const Vm &vm, uint32_t vcpu_id, const IsolationSetup &s,
			    uint64_t iterations)
{
	const TagsIsolationStatus st = vm.guest_var(&tags_iso_status[vcpu_id]);
	const bool sync = s.tcf == arch::sctlr::TCF_SYNC;

	EXPECT_EQ(st.iterations, iterations);
	EXPECT_EQ(st.tags_generated, iterations * TAGS_IRG_PER_ITERATION);
	EXPECT_EQ(st.sync_faults, sync ? iterations : 0);
	EXPECT_EQ(st.async_faults, sync ? 0 : iterations);
}

} // namespace

namespace
{

/* One vCPU running guest_isolation_worker in a given mode, at gpa. */
struct IsolationWorker {
	Vm &vm;
	Vcpu &vcpu;
	const IsolationSetup &setup;
	uint64_t gpa;
};

/*
 * Run two isolation workers at the same time on their own threads, which
 * hop between CPUs, and check that each kept its own MTE state and that no
 * guest tag check fault reached a vCPU thread.
 */
void run_isolation_workers(const IsolationWorker &a, const IsolationWorker &b)
{
	const auto cpus = mm::online_cpus();
	SegvCatcher catcher;

	for (const IsolationWorker *w : {&a, &b}) {
		setup_worker(w->vm, w->vcpu.id(), w->setup, w->gpa, ISOLATION_ITERATIONS);
		w->vcpu.start(guest_isolation_worker);
	}
	run_concurrently({
		[&] { drive_worker(a.vcpu, a.setup, ISOLATION_ITERATIONS, cpus, 0); },
		[&] { drive_worker(b.vcpu, b.setup, ISOLATION_ITERATIONS, cpus, 1); },
	});
	for (const IsolationWorker *w : {&a, &b})
		expect_worker_finished(w->vm, w->vcpu.id(), w->setup, ISOLATION_ITERATIONS);
	/* A guest's TFSRE0_EL1.TF0 or tag faults must never reach the vCPU threads. */
	EXPECT_EQ(segv_log.async_faults.load(), 0);
	EXPECT_EQ(segv_log.sync_faults.load(), 0);
}

} // namespace

/*
 * Two vCPUs of one VM, sync and async, keep their own MTE state under load.
 * ISOLATION_ITERATIONS on two vCPU threads: 1.6 s under TCG on an idle
 * host, up to 4.7 s on a busy one.
 */
TEST_TIMEOUT(mte_tags, vcpus_keep_own_mte_state, 20)
{
	Kvm kvm;
	require_guest_mte(kvm);
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), 2 * PAGE_SIZE));
	Vcpu &v0 = vm.add_vcpu(0);
	Vcpu &v1 = vm.add_vcpu(1);

	run_isolation_workers({vm, v0, ISOLATION_SYNC, r.gpa()},
			      {vm, v1, ISOLATION_ASYNC, r.gpa() + PAGE_SIZE});
}

/*
 * Two MTE VMs running at the same time keep their own MTE state. 1.5 s
 * under TCG on an idle host, up to 6.2 s on a busy one.
 */
TEST_TIMEOUT(mte_tags, vms_keep_own_mte_state, 25)
{
	OnePageMteGuest sync_guest;
	OnePageMteGuest async_guest;
	auto &[kvm_sync, vm_sync, r_sync, v_sync] = sync_guest;
	auto &[kvm_async, vm_async, r_async, v_async] = async_guest;

	run_isolation_workers({vm_sync, v_sync, ISOLATION_SYNC, r_sync.gpa()},
			      {vm_async, v_async, ISOLATION_ASYNC, r_async.gpa()});
}

/*
 * Fresh small pages of every backing read tag 0 in every granule, also those
 * the host wrote data into first; that data is intact for the guest.
 */
TEST(mte_tags, fresh_pages_read_tag_zero)
{
	Kvm kvm;
	require_guest_mte(kvm);
	/* Freed dirty-tagged pages are handed out again first on the CPU that freed them. */
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	const Backing backings[] = {Backing::anon_private, Backing::anon_shared, Backing::memfd};
	std::vector<MemRegion *> regions;

	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, false);

	for (Backing b : backings) {
		const uint32_t slot = TAGS_FIRST_SLOT + static_cast<uint32_t>(regions.size());
		MemRegion &r = vm.add_region(
			tagged_region(slot, tags_slot_gpa(slot), FIRST_TOUCH_SIZE, b));

		/* Even pages exist in the host before the guest faults them. */
		for (uint64_t page = 0; page < FIRST_TOUCH_SIZE / PAGE_SIZE; page += 2)
			host_write_page(r, page, DATA_SEED);
		regions.push_back(&r);
	}

	Vcpu &vcpu = vm.add_vcpu(0);

	uint64_t reused = 0;

	for (MemRegion *r : regions) {
		const uint64_t n = pages_reusing(*r, dirtied);

		guest_expect(vm, vcpu, r->gpa(), r->size(), TAGS_NO_PATTERN, DATA_SEED,
			     TAGS_DATA_EVEN_PAGES, backing_name(r->spec().backing) + " region");
		ktest::diag(backing_name(r->spec().backing) + ": " + std::to_string(n) + " of " +
			    std::to_string(r->size() / PAGE_SIZE) +
			    " pages reuse memory left with non-zero tags");
		reused += n;
		/* Everything the guest has mapped is PG_mte_tagged from now on. */
		EXPECT_EQ(pages_not_mte_tagged(*r), 0);
	}
	/* Only pages that had stale tags show that KVM cleared them. */
	EXPECT_NE(reused, 0);
}

/*
 * A THP-backed region reads tag 0 in every granule of all 512 subpages:
 * when the host created and wrote the THP first, when the guest's own write
 * creates it, and when the guest only reads (the huge zero page).
 */
TEST(mte_tags, fresh_thp_reads_tag_zero)
{
	enum { HOST_FIRST, GUEST_FIRST, READ_ONLY, NR_REGIONS };
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion *r[NR_REGIONS];

	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, true);

	for (uint32_t i = 0; i < NR_REGIONS; i++)
		r[i] = &vm.add_region(tagged_region(TAGS_FIRST_SLOT + i,
						    tags_slot_gpa(TAGS_FIRST_SLOT + i), THP_SIZE,
						    Backing::anon_private, false, true));
	for (uint64_t page = 0; page < SUBPAGES_PER_THP; page += 2)
		host_write_page(*r[HOST_FIRST], page, DATA_SEED);
	ASSERT_EQ(anon_huge_bytes(r[HOST_FIRST]->host()), THP_SIZE);

	Vcpu &vcpu = vm.add_vcpu(0);

	guest_expect(vm, vcpu, r[HOST_FIRST]->gpa(), THP_SIZE, TAGS_NO_PATTERN, DATA_SEED,
		     TAGS_DATA_EVEN_PAGES, "THP written by the host first");

	guest_write(vcpu, r[GUEST_FIRST]->gpa(), THP_SIZE, TAGS_NO_PATTERN, DATA_SEED);
	ASSERT_EQ(anon_huge_bytes(r[GUEST_FIRST]->host()), THP_SIZE);
	guest_expect(vm, vcpu, r[GUEST_FIRST]->gpa(), THP_SIZE, TAGS_NO_PATTERN, DATA_SEED,
		     TAGS_DATA_ALL, "THP created by a guest write");

	guest_expect(vm, vcpu, r[READ_ONLY]->gpa(), THP_SIZE, TAGS_NO_PATTERN, TAGS_NO_PATTERN,
		     TAGS_DATA_ZERO, "THP region the guest only read");
	uint64_t reused = 0;

	for (uint32_t i = HOST_FIRST; i <= GUEST_FIRST; i++) {
		const uint64_t n = pages_reusing(*r[i], dirtied);

		ktest::diag(std::to_string(n) + " of " + std::to_string(SUBPAGES_PER_THP) +
			    " THP subpages reuse memory left with non-zero tags");
		reused += n;
		/* The block mapping made every subpage PG_mte_tagged. */
		EXPECT_EQ(pages_not_mte_tagged(*r[i]), 0);
	}
	/* Only pages that had stale tags show that KVM cleared them. */
	EXPECT_NE(reused, 0);
}

/*
 * A page the guest has only read maps the shared zero page, in the VMM's
 * page table and in stage 2. The VMM's write then CoWs it into a new page,
 * which may hold a previous user's tags, and the MMU notifier's change_pte
 * announces the new page. KVM must not map that page into the guest from
 * change_pte, where it would keep its stale tags (and stay without
 * PG_mte_tagged); the guest's next access faults and the fault path gives
 * it tags. The guest then reads tag 0 everywhere and the VMM's data.
 */
TEST(mte_tags, vmm_write_after_guest_read_gives_tag_zero)
{
	constexpr uint64_t pages = FIRST_TOUCH_SIZE / PAGE_SIZE;
	Kvm kvm;
	require_guest_mte(kvm);
	/* The CoW copies are allocated right after the dirty pages are freed, on the same CPU. */
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), FIRST_TOUCH_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);

	guest_expect(vm, vcpu, r.gpa(), FIRST_TOUCH_SIZE, TAGS_NO_PATTERN, TAGS_NO_PATTERN,
		     TAGS_DATA_ZERO, "pages the guest reads first");
	/* The guest's read faults went to the zero page: the CoW below is what is tested. */
	ASSERT_EQ(pages_mapping_zero_page(r), pages);

	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, false);

	for (uint64_t page = 0; page < pages; page++)
		host_write_page(r, page, DATA_SEED);
	EXPECT_EQ(pages_mapping_zero_page(r), 0);
	/* Fresh copies without valid tags: only KVM's fault path may give them some. */
	EXPECT_EQ(pages_not_mte_tagged(r), pages);

	const uint64_t reused = pages_reusing(r, dirtied);

	ktest::diag(std::to_string(reused) + " of " + std::to_string(pages) +
		    " CoW copies reuse memory left with non-zero tags");
	/* Only copies that had stale tags show that KVM cleared them. */
	EXPECT_NE(reused, 0);
	guest_expect(vm, vcpu, r.gpa(), FIRST_TOUCH_SIZE, TAGS_NO_PATTERN, DATA_SEED, TAGS_DATA_ALL,
		     "pages the VMM wrote after the guest's read");
	/* The guest reached them through the fault path, which flagged them. */
	EXPECT_EQ(pages_not_mte_tagged(r), 0);
	/* Only copies that held stale tags show that none was mapped with them. */
	EXPECT_NE(reused, 0);
}

/*
 * The VMM turns PROT_MTE on for guest memory it mapped without it, after
 * the guest tagged the memory: the tagged mapping shows the guest's tags,
 * and making it must not initialise them again.
 */
TEST(mte_tags, vmm_mprotect_prot_mte_keeps_guest_tags)
{
	constexpr uint64_t size = 8 * PAGE_SIZE;
	Kvm kvm;
	require_guest_mte(kvm);
	host_mte::TaggedAddrCtrl ctrl(host_mte::TagCheck::none, host_mte::INCLUDE_ALL);
	Vm vm = mte_vm(kvm);
	MemRegion &r =
		vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), size));
	Vcpu &vcpu = vm.add_vcpu(0);

	guest_write(vcpu, r.gpa(), size, TAG_SEED, DATA_SEED);
	check(make_result("mprotect(PROT_MTE)",
			  mprotect(r.host(), size, PROT_READ | PROT_WRITE | PROT_MTE)));
	expect_host_sees_tags(r, 0, size, TAG_SEED);
	guest_expect(vm, vcpu, r.gpa(), size, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "after the VMM's mprotect(PROT_MTE)");
}

/* Tags the VMM stores through its PROT_MTE mapping are what the guest's LDG reads, and back. */
TEST(mte_tags, vmm_prot_mte_mapping_sees_guest_tags)
{
	constexpr uint64_t pages = 8, half = pages / 2 * PAGE_SIZE;
	Kvm kvm;
	require_guest_mte(kvm);
	host_mte::TaggedAddrCtrl ctrl(host_mte::TagCheck::none, host_mte::INCLUDE_ALL);
	Vm vm = mte_vm(kvm);
	const Backing backings[] = {Backing::memfd, Backing::anon_shared};
	std::vector<MemRegion *> regions;

	for (Backing b : backings) {
		const uint32_t slot = TAGS_FIRST_SLOT + static_cast<uint32_t>(regions.size());

		regions.push_back(&vm.add_region(tagged_region(
			slot, tags_slot_gpa(slot), pages * PAGE_SIZE, b, /*host_prot_mte=*/true)));
	}

	Vcpu &vcpu = vm.add_vcpu(0);

	for (MemRegion *r : regions) {
		const std::string name = backing_name(r->spec().backing);

		/* VMM to guest: the first half, before the guest ever touched it. */
		for (uint64_t off = 0; off < half; off += GRANULE_SIZE)
			host_mte::stg(host_mte::with_tag(r->host() + off,
							 tags_pattern(TAG_SEED, r->gpa() + off)));
		guest_expect(vm, vcpu, r->gpa(), half, TAG_SEED, TAGS_NO_PATTERN, TAGS_DATA_ZERO,
			     name + ": tags the VMM set");

		/* Guest to VMM: the second half. */
		guest_write(vcpu, r->gpa() + half, half, OTHER_TAG_SEED, DATA_SEED);
		expect_host_sees_tags(*r, half, half, OTHER_TAG_SEED);

		/* VMM to guest again, on pages the guest has mapped already. */
		for (uint64_t off = half; off < 2 * half; off += GRANULE_SIZE)
			host_mte::stg(host_mte::with_tag(r->host() + off,
							 tags_pattern(TAG_SEED, r->gpa() + off)));
		guest_expect(vm, vcpu, r->gpa() + half, half, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
			     name + ": tags the VMM changed under the guest");
	}
}

namespace
{

/*
 * The guest tags and fills a region, the host swaps it all out, then either
 * the guest or first the VMM (reading data through its own mapping) brings
 * it back; the guest must find every tag and data word again. Between the
 * two, the memory the region had is reused and left with other tags, so
 * that the pages swapped in carry no tags but those swap restores.
 */
void swap_round_trip(Backing backing, bool host_prot_mte, bool vmm_reads_first)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	ASSERT_TRUE(swap_available());
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT),
						   SWAP_SIZE, backing, host_prot_mte));
	Vcpu &vcpu = vm.add_vcpu(0);
	const std::string name = backing_name(backing) +
				 (host_prot_mte ? ", VMM maps PROT_MTE" : ", VMM maps untagged");

	guest_write(vcpu, r.gpa(), SWAP_SIZE, TAG_SEED, DATA_SEED);
	page_out(r);
	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, false);

	if (vmm_reads_first) {
		const auto *words = reinterpret_cast<const volatile uint64_t *>(r.host());
		uint64_t bad = 0;

		for (uint64_t i = 0; i < SWAP_SIZE / sizeof(uint64_t); i++)
			bad += words[i] != tags_data(DATA_SEED, r.gpa() + i * sizeof(uint64_t));
		EXPECT_EQ(bad, 0);
		EXPECT_FALSE(region_paged_out(r));
	}

	guest_expect(vm, vcpu, r.gpa(), SWAP_SIZE, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     name + ", after swap");
	if (host_prot_mte)
		expect_host_sees_tags(r, 0, SWAP_SIZE, TAG_SEED);
	/* Without stale tags in the pages swapped in, the tags prove nothing. */
	EXPECT_NE(pages_reusing(r, dirtied), 0);
}

} // namespace

/* Tags survive swap when the VMM maps guest memory without PROT_MTE. */
TEST(mte_tags, swap_keeps_tags_untagged_vmm_mapping)
{
	swap_round_trip(Backing::anon_private, false, false);
	swap_round_trip(Backing::memfd, false, false);
}

/* Tags survive swap when the VMM maps guest memory PROT_MTE, and the VMM sees them too. */
TEST(mte_tags, swap_keeps_tags_prot_mte_vmm_mapping)
{
	swap_round_trip(Backing::anon_private, true, false);
	swap_round_trip(Backing::memfd, true, false);
}

/* Pages swapped in by the VMM's untagged mapping get their saved tags back. */
TEST(mte_tags, swap_in_by_untagged_vmm_access_keeps_tags)
{
	swap_round_trip(Backing::anon_private, false, true);
	swap_round_trip(Backing::memfd, false, true);
}

/* Splitting a guest THP into 4 KiB pages keeps the tags of every remaining subpage. */
TEST(mte_tags, thp_split_keeps_tags)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT),
						   THP_SIZE, Backing::anon_private, false, true));
	Vcpu &vcpu = vm.add_vcpu(0);
	const uint64_t zapped = SPLIT_ZAPPED_SUBPAGE * PAGE_SIZE;
	uint64_t compound = 0;

	guest_write(vcpu, r.gpa(), THP_SIZE, TAG_SEED, DATA_SEED);
	ASSERT_EQ(anon_huge_bytes(r.host()), THP_SIZE);

	/* Unmapping one subpage splits the PMD; MADV_COLD then splits the page itself. */
	check(make_result("madvise(MADV_DONTNEED)",
			  madvise(r.host() + zapped, PAGE_SIZE, MADV_DONTNEED)));
	check(make_result("madvise(MADV_COLD)", madvise(r.host(), THP_SIZE, MADV_COLD)));

	const auto info = mm::page_info(r.host(), THP_SIZE);

	for (uint64_t i = 0; i < SUBPAGES_PER_THP; i++) {
		if (i == SPLIT_ZAPPED_SUBPAGE)
			continue;
		ASSERT_TRUE(info[i].present);

		const uint64_t flags = mm::kpageflags(info[i].pfn);

		compound += (flags >> mm::kpf::THP | flags >> mm::kpf::COMPOUND_HEAD |
			     flags >> mm::kpf::COMPOUND_TAIL) &
			    1;
	}
	ASSERT_EQ(compound, 0);

	guest_expect(vm, vcpu, r.gpa(), zapped, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "subpages before the unmapped one");
	guest_expect(vm, vcpu, r.gpa() + zapped + PAGE_SIZE, THP_SIZE - zapped - PAGE_SIZE,
		     TAG_SEED, DATA_SEED, TAGS_DATA_ALL, "subpages after the unmapped one");
	guest_expect(vm, vcpu, r.gpa() + zapped, PAGE_SIZE, TAGS_NO_PATTERN, TAGS_NO_PATTERN,
		     TAGS_DATA_ZERO, "the unmapped subpage, faulted in again");
}

namespace
{

/* A THP-backed region with dirty logging on, so that stage 2 maps it 4 KiB at a time. */
RegionSpec per_page_thp_region(uint32_t slot)
{
	RegionSpec spec = tagged_region(slot, tags_slot_gpa(slot), THP_SIZE, Backing::anon_private,
					false, true);

	spec.flags = KVM_MEM_LOG_DIRTY_PAGES;
	return spec;
}

/*
 * Leaves THP-sized memory with stale tags, then has the guest tag and fill
 * the given subpages of the per-page mapped THP region r, whose THP its
 * first write creates. Checks the premises (a THP made of polluted memory,
 * mapped by stage 2 page by page) and that exactly the mapped subpages got
 * tags.
 */
void guest_tags_subpages_of_new_thp(Vm &vm, Vcpu &vcpu, const MemRegion &r,
				    const std::vector<uint64_t> &subpages)
{
	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, true);

	for (uint64_t page : subpages)
		guest_write(vcpu, r.gpa() + page * PAGE_SIZE, PAGE_SIZE, TAG_SEED, DATA_SEED);
	ASSERT_EQ(anon_huge_bytes(r.host()), THP_SIZE);
	/* With dirty logging, only the written subpages were mapped writable and logged. */
	ASSERT_EQ(page_list(fetch_dirty_pages(vm, r)), page_list(subpages));

	const uint64_t reused = pages_reusing(r, dirtied);

	ktest::diag(std::to_string(reused) + " of " + std::to_string(SUBPAGES_PER_THP) +
		    " THP subpages reuse memory left with non-zero tags");
	/* Without stale tags in the THP, lost tag zeroing would go unseen. */
	ASSERT_EQ(reused, SUBPAGES_PER_THP);
	/* Each small page has its own flag: only the mapped ones were given tags. */
	EXPECT_EQ(pages_not_mte_tagged(r), SUBPAGES_PER_THP - subpages.size());
}

} // namespace

/*
 * The guest tags some tail subpages of a THP that stage 2 maps page by page,
 * so the head is untagged; MADV_PAGEOUT splits the THP and swaps it out.
 * The guest's tags come back from swap, and the subpages it never wrote
 * read tag 0.
 */
TEST(mte_tags, thp_split_after_per_page_mapping_keeps_tags)
{
	const std::vector<uint64_t> tagged(std::begin(TAIL_SUBPAGES_TAGGED),
					   std::end(TAIL_SUBPAGES_TAGGED));
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	ASSERT_TRUE(swap_available());
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(per_page_thp_region(TAGS_FIRST_SLOT));
	Vcpu &vcpu = vm.add_vcpu(0);

	guest_tags_subpages_of_new_thp(vm, vcpu, r, tagged);
	/* THPs are swapped out 4 KiB at a time here: all 512 subpages must reach swap. */
	page_out(r);
	guest_expect_only_pages_tagged(vm, vcpu, r, tagged, "THP split and swapped");
}

/*
 * The guest tags only the head subpage of a THP made of memory with stale
 * tags while stage 2 maps it page by page; unmapping another subpage and
 * MADV_COLD split the THP. The subpages the guest never touched must read
 * tag 0, not the stale tags that handing the head's PG_mte_tagged to every
 * subpage would let through.
 */
TEST(mte_tags, thp_split_after_head_only_mapping_reads_tag_zero)
{
	const std::vector<uint64_t> tagged = {THP_HEAD_SUBPAGE};
	const uint64_t zapped = SPLIT_ZAPPED_SUBPAGE * PAGE_SIZE;
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(per_page_thp_region(TAGS_FIRST_SLOT));
	Vcpu &vcpu = vm.add_vcpu(0);

	guest_tags_subpages_of_new_thp(vm, vcpu, r, tagged);
	/* Unmapping one subpage splits the PMD; MADV_COLD then splits the page itself. */
	check(make_result("madvise(MADV_DONTNEED)",
			  madvise(r.host() + zapped, PAGE_SIZE, MADV_DONTNEED)));
	check(make_result("madvise(MADV_COLD)", madvise(r.host(), THP_SIZE, MADV_COLD)));
	ASSERT_EQ(pages_present(r), SUBPAGES_PER_THP - 1);
	ASSERT_EQ(pages_in_thp(r), 0);

	guest_expect_only_pages_tagged(vm, vcpu, r, tagged, "THP split");
}

namespace
{

/* Who else initialises a fresh page's tags while the guest tags it. */
enum class RaceOpponent {
	vcpu,	       /* a second vCPU whose load faults the page in */
	copy_tags,     /* the VMM: TO_GUEST of other tags, then FROM_GUEST */
	host_prot_mte, /* the VMM through a PROT_MTE mapping: STG, then LDG */
};

/*
 * Rounds of the first-touch races, each on a THP that was just zapped:
 * both sides initialise its 512 small pages one after the other, which
 * gives a late initialiser a window longer than the other side's way
 * from its fault to its first tag store, even under QEMU TCG.
 */
constexpr uint64_t RACE_ROUNDS = 200;
constexpr uint64_t RACE_SIZE = THP_SIZE;
constexpr uint64_t RACE_OTHER_SEED = 11;

/* Granules of the range whose tag is neither seed's pattern; the first is logged. */
uint64_t race_bad_tags(const std::function<uint64_t(uint64_t)> &tag_at, uint64_t gpa,
		       const std::string &who)
{
	uint64_t bad = 0;

	for (uint64_t off = 0; off < RACE_SIZE; off += GRANULE_SIZE) {
		const uint64_t tag = tag_at(off);

		if (tag == tags_pattern(TAG_SEED, gpa + off) ||
		    tag == tags_pattern(RACE_OTHER_SEED, gpa + off))
			continue;
		if (!bad++)
			ktest::diag(who + ": tag " + std::to_string(tag) + " at IPA " +
				    hex(gpa + off) + ", written by nobody");
	}
	return bad;
}

/* The opponent's half of one round, on the range the tagging vCPU races for. */
uint64_t race_opponent_round(RaceOpponent opp, Vm &vm, Vcpu *toucher, MemRegion &r)
{
	std::vector<uint8_t> tags(mte_tag_bytes(RACE_SIZE));

	switch (opp) {
	case RaceOpponent::vcpu:
		toucher->start(guest_touch, r.gpa());
		toucher->run_until_done();
		return 0;
	case RaceOpponent::copy_tags:
		for (uint64_t i = 0; i < tags.size(); i++)
			tags[i] = tags_pattern(RACE_OTHER_SEED, r.gpa() + i * GRANULE_SIZE);
		EXPECT_THAT(
			mte_copy_tags(vm, r.gpa(), RACE_SIZE, tags.data(), KVM_ARM_TAGS_TO_GUEST),
			SyscallSucceedsWithValue(RACE_SIZE));
		EXPECT_THAT(
			mte_copy_tags(vm, r.gpa(), RACE_SIZE, tags.data(), KVM_ARM_TAGS_FROM_GUEST),
			SyscallSucceedsWithValue(RACE_SIZE));
		return race_bad_tags([&](uint64_t off) { return tags[off / GRANULE_SIZE]; },
				     r.gpa(), "FROM_GUEST");
	case RaceOpponent::host_prot_mte:
		for (uint64_t off = 0; off < RACE_SIZE; off += GRANULE_SIZE)
			host_mte::stg(host_mte::with_tag(
				r.host() + off, tags_pattern(RACE_OTHER_SEED, r.gpa() + off)));
		return race_bad_tags([&](uint64_t off) { return host_mte::ldg(r.host() + off); },
				     r.gpa(), "the VMM's PROT_MTE mapping");
	}
	return 0;
}

/*
 * Each round zaps the THP, so that both sides' next access is its first
 * touch, then lets vCPU 0 tag all of it and read its tags back while the
 * opponent initialises the same memory. Tags once written are never
 * zeroed by a late initialiser: every tag either side reads is one of the
 * two patterns.
 */
void first_touch_race(const RaceOpponent &opp)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT),
						   RACE_SIZE, Backing::anon_private,
						   opp == RaceOpponent::host_prot_mte, true));
	Vcpu &tagger = vm.add_vcpu(0);
	Vcpu *toucher = opp == RaceOpponent::vcpu ? &vm.add_vcpu(1) : nullptr;
	const uint64_t other_seed = opp == RaceOpponent::vcpu ? TAGS_NO_PATTERN : RACE_OTHER_SEED;
	std::barrier sync(2);
	std::atomic<uint64_t> guest_bad_rounds = 0, opponent_bad_rounds = 0, thp_rounds = 0;
	/* A side that fails leaves the barrier, so the other one does not wait forever. */
	auto guarded = [&sync](const std::function<void()> &body) {
		return [&sync, body] {
			try {
				body();
			} catch (...) {
				sync.arrive_and_drop();
				throw;
			}
		};
	};

	run_concurrently({
		guarded([&] {
			for (uint64_t round = 0; round < RACE_ROUNDS; round++) {
				sync.arrive_and_wait();
				tagger.start(guest_tag_then_verify, r.gpa(), RACE_SIZE, TAG_SEED,
					     other_seed);
				tagger.run_until_done();

				const TagsScan scan = vm.guest_var(&tags_race_scan);

				if (scan.mismatches && !guest_bad_rounds++)
					ktest::diag("round " + std::to_string(round) +
						    ": the guest read tag " +
						    std::to_string(scan.first_found) + " at IPA " +
						    hex(scan.first_addr) + " after storing " +
						    std::to_string(scan.first_expected));
				thp_rounds += anon_huge_bytes(r.host()) == RACE_SIZE;
				sync.arrive_and_wait();
			}
		}),
		guarded([&] {
			for (uint64_t round = 0; round < RACE_ROUNDS; round++) {
				check(make_result("madvise(MADV_DONTNEED)",
						  madvise(r.host(), RACE_SIZE, MADV_DONTNEED)));
				sync.arrive_and_wait();
				opponent_bad_rounds +=
					race_opponent_round(opp, vm, toucher, r) != 0;
				sync.arrive_and_wait();
			}
		}),
	});
	ktest::diag(std::to_string(thp_rounds.load()) + " of " + std::to_string(RACE_ROUNDS) +
		    " rounds raced on a THP");
	/* Small pages alone give a window too short to lose anything in. */
	EXPECT_EQ(thp_rounds.load(), RACE_ROUNDS);
	EXPECT_EQ(guest_bad_rounds.load(), 0);
	EXPECT_EQ(opponent_bad_rounds.load(), 0);
}

} // namespace

/*
 * First-touch races on a fresh THP: vCPU 0 tags it while a second vCPU
 * faults it in, while the VMM copies other tags to it with TO_GUEST and
 * reads them back, or while the VMM tags it through a PROT_MTE mapping.
 * Whoever tags it never loses its tags to a late initialiser.
 */
constexpr ktest::Variant<RaceOpponent> FIRST_TOUCH_RACES[] = {
	{"first_touch_race_between_vcpus", RaceOpponent::vcpu},
	{"first_touch_race_with_copy_tags", RaceOpponent::copy_tags},
	{"first_touch_race_with_prot_mte_mapping", RaceOpponent::host_prot_mte},
};
/* 200 rounds of 2 MiB: about 5 s under TCG. */
TEST_VARIANTS(mte_tags, FIRST_TOUCH_RACES, first_touch_race, .timeout_s = 40);

namespace
{

/* Who gives half of the small pages their tags before khugepaged collapses them. */
enum class TagWriter {
	guest,	  /* the guest's STG, with data */
	vmm_copy, /* the VMM: data through its mapping, tags with KVM_ARM_TAGS_TO_GUEST */
};

/*
 * A khugepaged collapse of small pages of which one half carries guest tags
 * and the other never did. The head of the new THP copies the first half:
 * with the upper half tagged it is untagged, with the lower half tagged it
 * is tagged, and a split must neither drop nor invent tags either way.
 */
struct CollapseVariant {
	TagWriter writer;
	bool lower_half_tagged;
};

constexpr uint64_t HALF_THP = THP_SIZE / 2;

uint64_t tagged_half_offset(const CollapseVariant &v)
{
	return v.lower_half_tagged ? 0 : HALF_THP;
}

/* Tags (and data) for [offset, offset + HALF_THP) of r, by the variant's writer. */
void tag_half(Vm &vm, Vcpu &vcpu, MemRegion &r, const CollapseVariant &v)
{
	const uint64_t offset = tagged_half_offset(v);

	if (v.writer == TagWriter::guest) {
		guest_write(vcpu, r.gpa() + offset, HALF_THP, TAG_SEED, DATA_SEED);
		return;
	}

	std::vector<uint8_t> tags(mte_tag_bytes(HALF_THP));

	for (uint64_t page = offset / PAGE_SIZE; page < (offset + HALF_THP) / PAGE_SIZE; page++)
		host_write_page(r, page, DATA_SEED);
	for (uint64_t i = 0; i < tags.size(); i++)
		tags[i] = tags_pattern(TAG_SEED, r.gpa() + offset + i * GRANULE_SIZE);
	ASSERT_THAT(
		mte_copy_tags(vm, r.gpa() + offset, HALF_THP, tags.data(), KVM_ARM_TAGS_TO_GUEST),
		SyscallSucceedsWithValue(HALF_THP));
}

/* Lets khugepaged collapse the region into a THP; fails the test if it never does. */
void collapse_with_khugepaged(const MemRegion &r)
{
	const std::string dir = KHUGEPAGED_DIR;
	mm::ScopedSetting scan_sleep(dir + "scan_sleep_millisecs", KHUGEPAGED_SLEEP_MS);
	mm::ScopedSetting alloc_sleep(dir + "alloc_sleep_millisecs", KHUGEPAGED_SLEEP_MS);
	mm::ScopedSetting to_scan(dir + "pages_to_scan", KHUGEPAGED_PAGES_TO_SCAN);
	mm::ScopedSetting ptes_none(dir + "max_ptes_none", KHUGEPAGED_MAX_PTES_NONE);
	const auto deadline = std::chrono::steady_clock::now() + COLLAPSE_TIMEOUT;

	check(make_result("madvise(MADV_HUGEPAGE)", madvise(r.host(), r.size(), MADV_HUGEPAGE)));
	while (anon_huge_bytes(r.host()) != THP_SIZE) {
		if (std::chrono::steady_clock::now() > deadline)
			ktest::fail(std::source_location::current(),
				    "khugepaged did not collapse the region into a THP; "
				    "the test would prove nothing");
		std::this_thread::sleep_for(COLLAPSE_POLL);
	}
}

/* FROM_GUEST over the whole region: the tagged half has the pattern, the rest tag 0. */
void expect_copied_tags(const Vm &vm, const MemRegion &r, const CollapseVariant &v,
			std::source_location loc = std::source_location::current())
{
	const uint64_t tagged_begin = tagged_half_offset(v);
	std::vector<uint8_t> tags(mte_tag_bytes(THP_SIZE));
	uint64_t lost = 0, invented = 0;

	ASSERT_THAT(mte_copy_tags(vm, r.gpa(), THP_SIZE, tags.data(), KVM_ARM_TAGS_FROM_GUEST),
		    SyscallSucceedsWithValue(THP_SIZE));
	for (uint64_t i = 0; i < tags.size(); i++) {
		const uint64_t off = i * GRANULE_SIZE;
		const bool tagged = off - tagged_begin < HALF_THP;
		const uint64_t want = tagged ? tags_pattern(TAG_SEED, r.gpa() + off) : 0;

		if (tags[i] != want)
			(tagged ? lost : invented)++;
	}
	if (lost)
		ktest::record_failure(loc, "FROM_GUEST: " + std::to_string(lost) + " of " +
						   std::to_string(mte_tag_bytes(HALF_THP)) +
						   " tags written before the collapse are gone");
	if (invented)
		ktest::record_failure(loc,
				      "FROM_GUEST: " + std::to_string(invented) + " of " +
					      std::to_string(mte_tag_bytes(HALF_THP)) +
					      " never written tags read non-zero (stale tags)");
}

/*
 * The whole story: small pages, half of them tagged by the variant's writer,
 * memory with stale tags freed just before, a khugepaged collapse into a
 * THP, a split and swap-out by MADV_PAGEOUT, then every tag checked with
 * FROM_GUEST and, after that, by the guest itself.
 */
void collapse_then_split_keeps_tags(const CollapseVariant &v)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	ASSERT_TRUE(swap_available());
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT),
						   THP_SIZE, Backing::anon_private, false, true));
	Vcpu &vcpu = vm.add_vcpu(0);
	const uint64_t offset = tagged_half_offset(v);

	/* Small pages first: khugepaged is what makes the THP. */
	check(make_result("madvise(MADV_NOHUGEPAGE)",
			  madvise(r.host(), THP_SIZE, MADV_NOHUGEPAGE)));
	tag_half(vm, vcpu, r, v);
	ASSERT_EQ(anon_huge_bytes(r.host()), 0);

	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, true);

	collapse_with_khugepaged(r);

	const uint64_t reused = pages_reusing(r, dirtied);

	ktest::diag(std::to_string(reused) + " of " + std::to_string(SUBPAGES_PER_THP) +
		    " pages of the collapsed THP reuse memory left with non-zero tags");
	/* A leak of stale tags shows only where the never written half had some. */
	if (v.lower_half_tagged)
		ASSERT_EQ(reused, SUBPAGES_PER_THP);
	/* Collapsing copies tags page by page: only the written half is flagged. */
	EXPECT_EQ(pages_not_mte_tagged(r), SUBPAGES_PER_THP / 2);

	page_out(r);

	expect_copied_tags(vm, r, v);
	guest_expect(vm, vcpu, r.gpa() + offset, HALF_THP, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "the tagged half after collapse and split");
	guest_expect(vm, vcpu, r.gpa() + (HALF_THP - offset), HALF_THP, TAGS_NO_PATTERN,
		     TAGS_NO_PATTERN, TAGS_DATA_ZERO, "the never written half");
}

} // namespace

/*
 * khugepaged collapses small pages of which half carry tags, written by
 * the guest or by the VMM with TO_GUEST, then reclaim splits the THP:
 *  - with the upper half tagged, the THP's head is untagged, and the split
 *    must keep the upper half's tags, not hand the head's missing flag to
 *    every page;
 *  - with the lower half tagged, the head is tagged while the never touched
 *    upper half holds a previous owner's tags, and the split must not flag
 *    that half as tagged: it reads tag 0.
 */
constexpr ktest::Variant<CollapseVariant> KHUGEPAGED_COLLAPSES[] = {
	{"khugepaged_collapse_keeps_guest_tags_of_tail_pages", {TagWriter::guest, false}},
	{"khugepaged_collapse_keeps_copied_tags_of_tail_pages", {TagWriter::vmm_copy, false}},
	{"khugepaged_collapse_does_not_leak_stale_tags", {TagWriter::guest, true}},
	{"khugepaged_collapse_after_copy_does_not_leak_stale_tags", {TagWriter::vmm_copy, true}},
};
/* About 1 s each under TCG; khugepaged gets up to COLLAPSE_TIMEOUT to collapse. */
TEST_VARIANTS(mte_tags, KHUGEPAGED_COLLAPSES, collapse_then_split_keeps_tags, .timeout_s = 90);

/*
 * The VMM writes data into pages the guest never touched, which reuse
 * memory left with stale tags. FROM_GUEST reads tag 0 for all of them and
 * leaves them untagged (no PG_mte_tagged): only the guest's first access,
 * through the fault path, gives them tags, and those are 0 too.
 */
TEST(mte_tags, from_guest_of_untouched_pages_reads_zero_and_tags_nothing)
{
	Kvm kvm;
	require_guest_mte(kvm);
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), FIRST_TOUCH_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);
	const uint64_t pages = FIRST_TOUCH_SIZE / PAGE_SIZE;
	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, false);
	std::vector<uint8_t> tags(mte_tag_bytes(FIRST_TOUCH_SIZE), 0xff);
	uint64_t nonzero = 0;

	for (uint64_t page = 0; page < pages; page++)
		host_write_page(r, page, DATA_SEED);
	/* Without stale tags in the pages, reading them would prove nothing. */
	ASSERT_NE(pages_reusing(r, dirtied), 0);

	ASSERT_THAT(
		mte_copy_tags(vm, r.gpa(), FIRST_TOUCH_SIZE, tags.data(), KVM_ARM_TAGS_FROM_GUEST),
		SyscallSucceedsWithValue(FIRST_TOUCH_SIZE));
	for (uint8_t tag : tags)
		nonzero += tag != 0;
	EXPECT_EQ(nonzero, 0);
	EXPECT_EQ(pages_not_mte_tagged(r), pages);

	guest_expect(vm, vcpu, r.gpa(), FIRST_TOUCH_SIZE, TAGS_NO_PATTERN, DATA_SEED, TAGS_DATA_ALL,
		     "pages only the VMM and FROM_GUEST touched");
	EXPECT_EQ(pages_not_mte_tagged(r), 0);
}

/*
 * Pages only the VMM wrote, through its untagged mapping, go to swap and
 * come back through that mapping: swap saved no tags for them, and the
 * swap-in must not give them any (an untagged mapping only restores tags).
 */
TEST(mte_tags, untagged_vmm_swap_in_tags_nothing)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	ASSERT_TRUE(swap_available());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), SWAP_SIZE));
	const uint64_t pages = SWAP_SIZE / PAGE_SIZE;

	for (uint64_t page = 0; page < pages; page++)
		host_write_page(r, page, DATA_SEED);
	page_out(r);
	for (uint64_t page = 0; page < pages; page++)
		ASSERT_EQ(*reinterpret_cast<volatile uint64_t *>(r.host() + page * PAGE_SIZE),
			  tags_data(DATA_SEED, r.gpa() + page * PAGE_SIZE));
	ASSERT_EQ(pages_present(r), pages);
	EXPECT_EQ(pages_not_mte_tagged(r), pages);
}

/*
 * Tags the VMM writes with TO_GUEST into a page that a read just brought
 * back from swap (so its swap copy, holding the old tags, still exists)
 * must not be lost by the next page-out: the page is dirty again.
 */
TEST(mte_tags, to_guest_after_swap_in_survives_next_page_out)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	ASSERT_TRUE(swap_available());
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), SWAP_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);
	std::vector<uint8_t> tags(mte_tag_bytes(SWAP_SIZE));

	guest_write(vcpu, r.gpa(), SWAP_SIZE, TAG_SEED, DATA_SEED);
	page_out(r);

	/* A read swaps the pages in clean, keeping their swap slots. */
	ASSERT_THAT(mte_copy_tags(vm, r.gpa(), SWAP_SIZE, tags.data(), KVM_ARM_TAGS_FROM_GUEST),
		    SyscallSucceedsWithValue(SWAP_SIZE));
	ASSERT_EQ(pages_swapped_out(r.host(), SWAP_SIZE), 0);

	for (uint64_t i = 0; i < tags.size(); i++)
		tags[i] = tags_pattern(OTHER_TAG_SEED, r.gpa() + i * GRANULE_SIZE);
	ASSERT_THAT(mte_copy_tags(vm, r.gpa(), SWAP_SIZE, tags.data(), KVM_ARM_TAGS_TO_GUEST),
		    SyscallSucceedsWithValue(SWAP_SIZE));
	page_out(r);

	guest_expect(vm, vcpu, r.gpa(), SWAP_SIZE, OTHER_TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "tags written with TO_GUEST between two page-outs");
}

/* Memory compaction migrates guest pages together with their tags: 2.0-3.7 s under TCG. */
TEST_TIMEOUT(mte_tags, compaction_keeps_tags, 15)
{
	Kvm kvm;
	require_guest_mte(kvm);
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(
		tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), COMPACT_SIZE));
	Vcpu &vcpu = vm.add_vcpu(0);
	uint64_t moved = 0;

	guest_write(vcpu, r.gpa(), COMPACT_SIZE, TAG_SEED, DATA_SEED);

	const auto before = mm::page_info(r.host(), COMPACT_SIZE);
	/*
	 * Compaction moves pages from the bottom of the zone into partly used
	 * pageblocks at the top, never into wholly free ones, and stops where
	 * the two meet. Pages allocated right after the guest's and then half
	 * freed give it such targets above the guest's pages.
	 */
	Mapping spread =
		Mapping::map("mmap(spread)", nullptr, COMPACT_SPREAD_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	for (uint64_t off = 0; off < COMPACT_SPREAD_SIZE; off += COMPACT_PAGEBLOCK_SIZE)
		check(make_result("munmap", munmap(static_cast<uint8_t *>(spread.get()) + off,
						   COMPACT_PAGEBLOCK_SIZE / 2)));

	for (unsigned int i = 0; i < COMPACT_ATTEMPTS && !moved; i++) {
		mm::write_file("/proc/sys/vm/compact_memory", "1");

		const auto after = mm::page_info(r.host(), COMPACT_SIZE);

		for (size_t p = 0; p < after.size(); p++)
			moved += after[p].present && after[p].pfn != before[p].pfn;
	}
	ktest::diag("compaction moved " + std::to_string(moved) + " of " +
		    std::to_string(before.size()) + " guest pages");
	/* Without migration the test would prove nothing. */
	ASSERT_NE(moved, 0);

	guest_expect(vm, vcpu, r.gpa(), COMPACT_SIZE, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "after compaction");
}

namespace
{

/* Waits for ksmd to finish `scans` more full scans of all mergeable memory. */
void wait_ksm_scans(unsigned int scans)
{
	const std::string path = std::string(KSM_DIR) + "full_scans";
	const uint64_t target = mm::read_number(path) + scans;
	const auto deadline = std::chrono::steady_clock::now() + KSM_TIMEOUT;

	while (mm::read_number(path) < target) {
		if (std::chrono::steady_clock::now() > deadline)
			ktest::fail(std::source_location::current(),
				    "ksmd did not complete its scans in time");
		std::this_thread::sleep_for(KSM_POLL);
	}
}

uint64_t ksm_counter(const char *name)
{
	return mm::read_number(std::string(KSM_DIR) + name);
}

} // namespace

/*
 * KSM never merges an MTE guest's pages, however identical their data, while
 * the same pages of a guest without MTE are merged (the positive control).
 */
TEST(mte_tags, ksm_never_merges_tagged_pages)
{
	constexpr uint64_t size = KSM_PAGES * PAGE_SIZE, half = size / 2;
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	Vm vm = mte_vm(kvm);
	MemRegion &r =
		vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), size));
	Vcpu &vcpu = vm.add_vcpu(0);

	/* Same data everywhere: tagged by the guest in one half, all tags 0 in the other. */
	vcpu.start(guest_fill_identical, r.gpa(), half, KSM_WORD, TAG_SEED);
	vcpu.run_until_done();
	vcpu.start(guest_fill_identical, r.gpa() + half, half, KSM_WORD, TAGS_NO_PATTERN);
	vcpu.run_until_done();
	check(make_result("madvise(MADV_MERGEABLE)", madvise(r.host(), size, MADV_MERGEABLE)));

	mm::ScopedSetting to_scan(std::string(KSM_DIR) + "pages_to_scan", KSM_PAGES_TO_SCAN);
	mm::ScopedSetting sleep(std::string(KSM_DIR) + "sleep_millisecs", KSM_SLEEP_MS);
	mm::ScopedSetting run(std::string(KSM_DIR) + "run", KSM_RUN);

	wait_ksm_scans(KSM_FULL_SCANS);
	EXPECT_EQ(ksm_counter("pages_shared"), 0);
	EXPECT_EQ(ksm_counter("pages_sharing"), 0);

	/* Positive control: the very same pages without MTE do get merged. */
	Vm plain(kvm);
	RegionSpec spec = tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), size);

	spec.stage1.attr = Stage1::normal;

	MemRegion &pr = plain.add_region(spec);
	Vcpu &pv = plain.add_vcpu(0);

	pv.start(guest_fill_identical, pr.gpa(), size, KSM_WORD, TAGS_NO_PATTERN);
	pv.run_until_done();
	check(make_result("madvise(MADV_MERGEABLE)", madvise(pr.host(), size, MADV_MERGEABLE)));
	wait_ksm_scans(KSM_FULL_SCANS);
	/* One KSM page for all control pages, and none of the MTE guest's joined it. */
	EXPECT_EQ(ksm_counter("pages_shared"), 1);
	EXPECT_EQ(ksm_counter("pages_sharing"), KSM_PAGES - 1);

	guest_expect(vm, vcpu, r.gpa(), half, TAG_SEED, KSM_WORD, TAGS_DATA_CONSTANT,
		     "MTE guest pages the guest tagged");
	guest_expect(vm, vcpu, r.gpa() + half, half, TAGS_NO_PATTERN, KSM_WORD, TAGS_DATA_CONSTANT,
		     "MTE guest pages with all tags 0");
	mm::write_file(std::string(KSM_DIR) + "run", KSM_UNMERGE);
}

/*
 * Pages of an MTE guest that only the VMM has written (untagged, never
 * mapped into the guest) may be merged by KSM. Write-protecting them and
 * replacing them with the KSM page goes through the MMU notifier's
 * change_pte, which must not map either page into the guest with the
 * stale tags it holds: the guest's access faults, and the fault path gives
 * the KSM page tags.
 */
TEST(mte_tags, ksm_merging_untagged_page_does_not_map_stale_tags)
{
	constexpr uint64_t size = KSM_PAGES * PAGE_SIZE, first_merged = 1;
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	mm::ScopedPin pin(mm::online_cpus().front());
	Vm vm = mte_vm(kvm);
	MemRegion &r =
		vm.add_region(tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), size));
	Vcpu &vcpu = vm.add_vcpu(0);

	/* Page 0 gives stage 2 the page table change_pte would install the other pages in. */
	guest_expect(vm, vcpu, r.gpa(), PAGE_SIZE, TAGS_NO_PATTERN, TAGS_NO_PATTERN, TAGS_DATA_ZERO,
		     "page 0, read by the guest");

	const auto dirtied = dirty_free_memory_tags(DIRTY_SIZE, false);

	for (uint64_t page = first_merged; page < KSM_PAGES; page++)
		std::fill_n(reinterpret_cast<uint64_t *>(r.host() + page * PAGE_SIZE),
			    PAGE_SIZE / sizeof(uint64_t), KSM_WORD);
	check(make_result("madvise(MADV_MERGEABLE)", madvise(r.host(), size, MADV_MERGEABLE)));
	{
		mm::ScopedSetting to_scan(std::string(KSM_DIR) + "pages_to_scan",
					  KSM_PAGES_TO_SCAN);
		mm::ScopedSetting sleep(std::string(KSM_DIR) + "sleep_millisecs", KSM_SLEEP_MS);
		mm::ScopedSetting run(std::string(KSM_DIR) + "run", KSM_RUN);

		wait_ksm_scans(KSM_FULL_SCANS);
	}

	/* All VMM-written pages now share one page, which holds stale tags. */
	const auto info = mm::page_info(r.host(), size);
	const uint64_t ksm_pfn = info[first_merged].pfn;
	uint64_t merged = 0;

	for (uint64_t page = first_merged; page < KSM_PAGES; page++)
		merged += info[page].present && info[page].pfn == ksm_pfn;
	ASSERT_EQ(merged, KSM_PAGES - first_merged);
	ASSERT_TRUE(dirtied.count(ksm_pfn));
	ASSERT_FALSE((mm::kpageflags(ksm_pfn) >> mm::kpf::ARCH_2) & 1);

	guest_expect(vm, vcpu, r.gpa() + first_merged * PAGE_SIZE, size - first_merged * PAGE_SIZE,
		     TAGS_NO_PATTERN, KSM_WORD, TAGS_DATA_CONSTANT, "pages merged by KSM");
	/* The guest's fault gave the KSM page tags. */
	EXPECT_TRUE((mm::kpageflags(ksm_pfn) >> mm::kpf::ARCH_2) & 1);
	mm::write_file(std::string(KSM_DIR) + "run", KSM_UNMERGE);
}

namespace
{

/* Enters the kernel, where a pending asynchronous tag check fault of this thread is noticed. */
void enter_kernel()
{
	syscall(SYS_getppid);
}

/* What the host thread found wrong, counted rather than reported one by one. */
struct HostChecks {
	uint64_t foreign_tags = 0;  /* IRG tag outside the host's include mask */
	uint64_t first_foreign = 0; /* ... the first such tag */
	uint64_t bad_sync = 0;	    /* mismatch without exactly one SEGV_MTESERR at its address */
	uint64_t spurious_sync = 0; /* SEGV_MTESERR on a matching access */
	uint64_t async_seen = 0;    /* rounds with a SEGV_MTEAERR where none was due */
};

/*
 * One round of the host's own MTE use in sync mode on its PROT_MTE buffer:
 * IRG honours its include mask, a matching load passes, a mismatched load
 * raises SEGV_MTESERR at the (untagged) faulting address.
 */
void host_sync_round(uint8_t *buf, uint64_t round, HostChecks &c)
{
	uint8_t *granule = buf + round % GRANULES_PER_PAGE * GRANULE_SIZE;
	void *tagged = nullptr;

	for (uint64_t k = 0; k < HOST_IRG_PER_ROUND; k++) {
		tagged = host_mte::irg(granule);

		const uint64_t tag = host_mte::tag_of(tagged);

		if (!((HOST_INCLUDE >> tag) & 1) && !c.foreign_tags++)
			c.first_foreign = tag;
	}
	host_mte::stg(tagged);

	const uint64_t before = segv_log.sync_faults;

	host_mte::load(tagged);
	if (segv_log.sync_faults != before)
		c.spurious_sync++;
	host_mte::load(host_mte::with_tag(granule, host_mte::tag_of(tagged) ^ OTHER_TAG));
	if (segv_log.sync_faults != before + 1 ||
	    segv_log.last_sync_addr != reinterpret_cast<uint64_t>(granule))
		c.bad_sync++;
}

/* Both guests fault asynchronously and keep TFSRE0_EL1.TF0 set all along. */
constexpr IsolationSetup HOST_TEST_REMOTE_GUEST = {
	.gcr_exclude = GUEST_REMOTE_EXCLUDE,
	.tcf = arch::sctlr::TCF_ASYNC,
	.tfsre0 = arch::tfsr::TF0,
	.seed = 0x7777,
	.tag_seed = 5,
};

constexpr IsolationSetup HOST_TEST_LOCAL_GUEST = {
	.gcr_exclude = GUEST_LOCAL_EXCLUDE,
	.tcf = arch::sctlr::TCF_ASYNC,
	.tfsre0 = arch::tfsr::TF0,
	.seed = 0x4321,
	.tag_seed = 9,
};

} // namespace

/*
 * A host thread using MTE itself (sync, then async mode, its own include
 * mask) always sees exactly its own behaviour, while MTE guests with other
 * masks and pending asynchronous faults run on the other CPU and, between
 * its rounds, on its own thread. 1.3 s under TCG on an idle host, up to
 * 3.5 s on a busy one.
 */
TEST_TIMEOUT(mte_tags, host_mte_unaffected_by_guests, 15)
{
	OnePageMteGuest remote_guest;
	OnePageMteGuest local_guest;
	auto &[remote_kvm, remote, rr, rv] = remote_guest;
	auto &[local_kvm, local, lr, lv] = local_guest;
	ASSERT_TRUE(host_mte::supported());
	const auto cpus = mm::online_cpus();
	const IsolationSetup &remote_setup = HOST_TEST_REMOTE_GUEST;
	const IsolationSetup &local_setup = HOST_TEST_LOCAL_GUEST;
	SegvCatcher catcher;
	HostChecks c;

	setup_worker(remote, 0, remote_setup, rr.gpa(), REMOTE_ITERATIONS);
	setup_worker(local, 0, local_setup, lr.gpa(), 2 * HOST_ROUNDS);
	rv.start(guest_isolation_worker);
	lv.start(guest_isolation_worker);

	auto host = [&] {
		Mapping buf = Mapping::map("mmap(PROT_MTE)", nullptr, PAGE_SIZE,
					   PROT_READ | PROT_WRITE | PROT_MTE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		auto *p = static_cast<uint8_t *>(buf.get());
		host_mte::TaggedAddrCtrl ctrl(host_mte::TagCheck::sync, HOST_INCLUDE);
		uint64_t exits = 0;
		auto run_local = [&] {
			lv.expect_sync(exits++);
			if (exits % MIGRATE_EVERY_EXITS == 0)
				mm::pin_to_cpu(phase_cpu(cpus, 0, exits / MIGRATE_EVERY_EXITS));
		};

		mm::pin_to_cpu(phase_cpu(cpus, 0, 0));
		for (uint64_t round = 0; round < HOST_ROUNDS; round++) {
			host_sync_round(p, round, c);
			run_local();
		}

		/* Async mode: guest faults and TFSRE0 must never show up as the host's. */
		ctrl.set(host_mte::TagCheck::async, HOST_INCLUDE);
		host_mte::stg(host_mte::with_tag(p, HOST_ASYNC_TAG));
		for (uint64_t round = 0; round < HOST_ROUNDS; round++) {
			const uint64_t before = segv_log.async_faults;

			run_local();
			host_mte::load(host_mte::with_tag(p, HOST_ASYNC_TAG));
			enter_kernel();
			c.async_seen += segv_log.async_faults != before;
		}
		lv.run_until_done();

		/* Positive control: the host's own asynchronous fault is reported. */
		host_mte::load(host_mte::with_tag(p, HOST_ASYNC_TAG ^ OTHER_TAG));
		enter_kernel();
	};
	auto guest = [&] { drive_worker(rv, remote_setup, REMOTE_ITERATIONS, cpus, 1); };

	run_concurrently({host, guest});

	EXPECT_EQ(c.foreign_tags, 0);
	if (c.foreign_tags)
		add_failure("host IRG generated excluded tag " + std::to_string(c.first_foreign));
	EXPECT_EQ(c.spurious_sync, 0);
	EXPECT_EQ(c.bad_sync, 0);
	EXPECT_EQ(segv_log.sync_faults.load(), HOST_ROUNDS);
	EXPECT_EQ(c.async_seen, 0);
	EXPECT_EQ(segv_log.async_faults.load(), 1);
	expect_worker_finished(remote, 0, remote_setup, REMOTE_ITERATIONS);
	expect_worker_finished(local, 0, local_setup, 2 * HOST_ROUNDS);
}

namespace
{

/* Isolation: how a dead VM's tagged memory comes back into use, and for whom. */
enum class Reuse { small_pages, thp, swap };
enum class Reader { vm, host_process };

struct ReuseCase {
	Reuse via;
	Reader reader;
};

constexpr uint64_t REUSE_SIZE = 2 * THP_SIZE;
/*
 * The swap variants page out to a swap device of their own, exactly as large
 * as the memory, above the test bed's swap in priority: the reader's pages
 * can only go to the slots the dead VM's pages were in.
 */
constexpr uint64_t REUSE_SWAP_SIZE = 512 * PAGE_SIZE;
constexpr int SWAP_PRIORITY = 32767;
/* include/linux/swap.h: union swap_header. */
constexpr size_t SWAP_HEADER_INFO_OFFSET = 1024;
constexpr uint32_t SWAP_HEADER_VERSION = 1;
constexpr char SWAP_MAGIC[] = "SWAPSPACE2";
constexpr size_t SWAP_MAGIC_LEN = sizeof(SWAP_MAGIC) - 1;
constexpr const char *ZRAM_CONTROL = "/sys/class/zram-control/";

/* A zram device of its own, used as swap at top priority while the object lives. */
class PrivateSwap
{
public:
	explicit PrivateSwap(uint64_t size)
	{
		if (access(ZRAM_CONTROL, F_OK))
			SKIP("no " + std::string(ZRAM_CONTROL) +
			     ": the kernel is built without CONFIG_ZRAM");
		id_ = mm::read_file(std::string(ZRAM_CONTROL) + "hot_add");
		id_.erase(id_.find_last_not_of('\n') + 1);
		dev_ = "/dev/zram" + id_;
		try {
			/* One more page for the header. */
			mm::write_file(sysfs() + "disksize", std::to_string(size + PAGE_SIZE));
			write_header(size / PAGE_SIZE);
			check(make_result(
				"swapon(" + dev_ + ")",
				swapon(dev_.c_str(),
				       SWAP_FLAG_PREFER | (SWAP_PRIORITY & SWAP_FLAG_PRIO_MASK))));
		} catch (...) {
			remove_device();
			throw;
		}
	}

	/* Everything swapped to it is freed by now: swapoff has nothing to bring back. */
	~PrivateSwap()
	{
		if (swapoff(dev_.c_str()))
			ktest::record_failure(std::source_location::current(),
					      "swapoff(" + dev_ + ") failed with " +
						      errno_name(errno) +
						      "; the device stays in use");
		else
			remove_device();
	}

	PrivateSwap(const PrivateSwap &) = delete;
	PrivateSwap &operator=(const PrivateSwap &) = delete;

private:
	std::string sysfs() const { return "/sys/block/zram" + id_ + "/"; }

	void remove_device() const noexcept
	{
		try {
			mm::write_file(sysfs() + "reset", "1");
			mm::write_file(std::string(ZRAM_CONTROL) + "hot_remove", id_);
		} catch (...) {
			/* Best effort: it runs on the way out of a failure or a destructor. */
		}
	}

	void write_header(uint64_t pages) const
	{
		std::vector<char> page(PAGE_SIZE, 0);
		const uint32_t info[] = {SWAP_HEADER_VERSION, static_cast<uint32_t>(pages),
					 /* nr_badpages */ 0};
		FileDesc fd(open(dev_.c_str(), O_WRONLY | O_CLOEXEC));

		if (!fd)
			throw SysError("open(" + dev_ + ")", errno);
		std::memcpy(page.data() + SWAP_HEADER_INFO_OFFSET, info, sizeof(info));
		std::memcpy(page.data() + PAGE_SIZE - SWAP_MAGIC_LEN, SWAP_MAGIC, SWAP_MAGIC_LEN);
		check(make_result("write(" + dev_ + ")",
				  pwrite(fd.get(), page.data(), PAGE_SIZE, 0)));
	}

	std::string id_;
	std::string dev_;
};

uint64_t reuse_size(Reuse via)
{
	return via == Reuse::swap ? REUSE_SWAP_SIZE : REUSE_SIZE;
}

/* Where [addr, addr + size) lives: the PFNs of its pages, or the swap slots of those swapped out.
 */
std::unordered_set<uint64_t> backing_of(const void *addr, uint64_t size, Reuse via)
{
	std::unordered_set<uint64_t> where;

	for (const auto &p : mm::page_info(addr, size))
		if (via == Reuse::swap ? p.swapped : p.present)
			where.insert(p.pfn);
	return where;
}

uint64_t reused(const std::unordered_set<uint64_t> &now, const std::unordered_set<uint64_t> &before)
{
	return std::count_if(now.begin(), now.end(), [&](uint64_t x) { return before.count(x); });
}

/* The memory of the dead VM and of the new one: small pages or THPs. */
RegionSpec reuse_region(Reuse via)
{
	return tagged_region(TAGS_FIRST_SLOT, tags_slot_gpa(TAGS_FIRST_SLOT), reuse_size(via),
			     Backing::anon_private, false, via == Reuse::thp);
}

/*
 * A VM whose guest tagged every granule of its memory, and for swap then
 * had it all swapped out, is destroyed. Returns where that memory was.
 */
std::unordered_set<uint64_t> dead_vm_tags(Kvm &kvm, Reuse via)
{
	const uint64_t size = reuse_size(via);
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(reuse_region(via));
	Vcpu &vcpu = vm.add_vcpu(0);

	guest_write(vcpu, r.gpa(), size, TAG_SEED, DATA_SEED);
	if (via == Reuse::thp)
		EXPECT_EQ(anon_huge_bytes(r.host()), size);
	if (via == Reuse::swap)
		page_out(r);
	return backing_of(r.host(), size, via);
}

/* A new VM's guest finds tag 0 everywhere, and the VMM's data, in memory the dead VM had. */
uint64_t new_vm_sees_no_tags(Kvm &kvm, Reuse via, const std::unordered_set<uint64_t> &dead)
{
	const uint64_t size = reuse_size(via);
	Vm vm = mte_vm(kvm);
	MemRegion &r = vm.add_region(reuse_region(via));
	Vcpu &vcpu = vm.add_vcpu(0);

	/* The VMM loads the guest's memory before the guest first runs, as for an image. */
	for (uint64_t page = 0; page < size / PAGE_SIZE; page++)
		host_write_page(r, page, DATA_SEED);
	if (via == Reuse::swap)
		page_out(r);

	const uint64_t n = reused(backing_of(r.host(), size, via), dead);

	guest_expect(vm, vcpu, r.gpa(), size, TAGS_NO_PATTERN, DATA_SEED, TAGS_DATA_ALL,
		     "new VM in the dead VM's memory");
	return n;
}

/* A host process's PROT_MTE mapping reads tag 0 everywhere in memory the dead VM had. */
uint64_t host_process_sees_no_tags(Reuse via, const std::unordered_set<uint64_t> &dead)
{
	const uint64_t size = reuse_size(via);
	Mapping reserve = Mapping::map("mmap(reader)", nullptr, size + THP_SIZE, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	auto *base = reinterpret_cast<uint8_t *>(
		(reinterpret_cast<uint64_t>(reserve.get()) + THP_SIZE - 1) & ~(THP_SIZE - 1));
	/* Swap: written and swapped out untagged, then swapped in through PROT_MTE. */
	const int prot = PROT_READ | PROT_WRITE | (via == Reuse::swap ? 0 : PROT_MTE);

	if (mmap(base, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		throw SysError("mmap(reader)", errno);
	if (via == Reuse::thp)
		check(make_result("madvise(MADV_HUGEPAGE)", madvise(base, size, MADV_HUGEPAGE)));
	for (uint64_t off = 0; off < size; off += PAGE_SIZE)
		std::memset(base + off, 0x5a, PAGE_SIZE);
	if (via == Reuse::thp)
		EXPECT_EQ(anon_huge_bytes(base), size);
	if (via == Reuse::swap) {
		for (unsigned int i = 0;
		     i < PAGEOUT_ATTEMPTS && pages_swapped_out(base, size) < size / PAGE_SIZE; i++)
			check(make_result("madvise(MADV_PAGEOUT)",
					  madvise(base, size, MADV_PAGEOUT)));
		ASSERT_EQ(pages_swapped_out(base, size), size / PAGE_SIZE);
	}

	const uint64_t n = reused(backing_of(base, size, via), dead);
	uint64_t tagged = 0;

	if (via == Reuse::swap)
		check(make_result("mprotect(PROT_MTE)",
				  mprotect(base, size, PROT_READ | PROT_WRITE | PROT_MTE)));
	for (uint64_t off = 0; off < size; off += GRANULE_SIZE)
		tagged += host_mte::ldg(base + off) != 0;
	EXPECT_EQ(tagged, 0);
	return n;
}

/*
 * Tags a VM's guest wrote never reach the next user of the memory: a new
 * VM's guest or a host process, whether the memory comes back as small
 * pages, as THPs, or through the swap slots it was swapped out to. Each
 * variant proves that the reader's memory really is the dead VM's (PFNs,
 * or swap slots of a swap device of the test's own).
 */
void dead_vm_tags_never_reach_next_user(const ReuseCase &c)
{
	Kvm kvm;
	require_guest_mte(kvm);
	require_madvise();
	/* Freed pages go back to the per-CPU lists of the CPU that frees them. */
	mm::ScopedPin pin(mm::online_cpus().front());
	std::optional<PrivateSwap> swap;

	if (c.via == Reuse::swap)
		swap.emplace(REUSE_SWAP_SIZE);

	const auto dead = dead_vm_tags(kvm, c.via);
	const uint64_t n = c.reader == Reader::vm ? new_vm_sees_no_tags(kvm, c.via, dead)
						  : host_process_sees_no_tags(c.via, dead);

	ktest::diag(std::to_string(n) + " of " + std::to_string(reuse_size(c.via) / PAGE_SIZE) +
		    (c.via == Reuse::swap ? " swap slots" : " pages") + " reused from the dead VM");
	/* Without reuse the test would prove nothing. */
	EXPECT_NE(n, 0);
}

} // namespace

constexpr ktest::Variant<ReuseCase> DEAD_VM_REUSES[] = {
	{"dead_vm_small_pages_reused_by_vm_read_tag_zero", {Reuse::small_pages, Reader::vm}},
	{"dead_vm_small_pages_reused_by_host_read_tag_zero",
	 {Reuse::small_pages, Reader::host_process}},
	{"dead_vm_thp_reused_by_vm_reads_tag_zero", {Reuse::thp, Reader::vm}},
	{"dead_vm_thp_reused_by_host_reads_tag_zero", {Reuse::thp, Reader::host_process}},
	{"dead_vm_swap_slots_reused_by_vm_read_tag_zero", {Reuse::swap, Reader::vm}},
	{"dead_vm_swap_slots_reused_by_host_read_tag_zero", {Reuse::swap, Reader::host_process}},
};
TEST_VARIANTS(mte_tags, DEAD_VM_REUSES, dead_vm_tags_never_reach_next_user, .timeout_s = 30);

/*
 * A guest's tag store or tag load at an IPA between two memslots reaches
 * no memory: KVM cannot emulate it (no syndrome for a tag access), so
 * KVM_RUN fails with ENOSYS, or, with KVM_CAP_ARM_NISV_TO_USER, exits to
 * the VMM with that IPA; the memslots on both sides keep their tags and
 * data.
 */
TEST(mte_tags, tag_access_between_memslots_reaches_no_memory)
{
	Kvm kvm;
	require_guest_mte(kvm);
	Vm vm = mte_vm(kvm);
	const uint64_t below = tags_slot_gpa(TAGS_FIRST_SLOT);
	const uint64_t hole = below + PAGE_SIZE;
	const uint64_t above = hole + PAGE_SIZE;
	const RegionSpec hole_spec = tagged_region(TAGS_FIRST_SLOT + 1, hole, PAGE_SIZE);

	vm.add_region(tagged_region(TAGS_FIRST_SLOT, below, PAGE_SIZE));
	vm.add_region(tagged_region(TAGS_FIRST_SLOT + 1, above, PAGE_SIZE));
	/* The guest's page tables map the hole like memory; stage 2 has nothing there. */
	vm.map(hole, hole, PAGE_SIZE, hole_spec.stage1);
	Vcpu &vcpu = vm.add_vcpu(0);

	guest_write(vcpu, below, PAGE_SIZE, TAG_SEED, DATA_SEED);
	guest_write(vcpu, above, PAGE_SIZE, TAG_SEED, DATA_SEED);

	vcpu.start(guest_tag_then_verify, hole, PAGE_SIZE, OTHER_TAG_SEED, TAGS_NO_PATTERN);
	EXPECT_THAT(vcpu.run_raw(), SyscallFailsWithErrno(ENOSYS));

	ASSERT_THAT(vm.enable_cap(KVM_CAP_ARM_NISV_TO_USER), SyscallSucceeds());
	for (const bool store : {true, false}) {
		if (store)
			vcpu.start(guest_tag_then_verify, hole, PAGE_SIZE, OTHER_TAG_SEED,
				   TAGS_NO_PATTERN);
		else
			vcpu.start(guest_scan, hole, PAGE_SIZE, TAG_SEED, DATA_SEED, TAGS_DATA_ALL);
		ASSERT_THAT(vcpu.run_raw(), SyscallSucceeds());
		ASSERT_EQ(kvm_exit_name(vcpu.run_state()->exit_reason),
			  kvm_exit_name(KVM_EXIT_ARM_NISV));
		EXPECT_EQ(vcpu.run_state()->arm_nisv.fault_ipa, hole);
	}

	guest_expect(vm, vcpu, below, PAGE_SIZE, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "memslot below the hole");
	guest_expect(vm, vcpu, above, PAGE_SIZE, TAG_SEED, DATA_SEED, TAGS_DATA_ALL,
		     "memslot above the hole");
}
