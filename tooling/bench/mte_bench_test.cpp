// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmarks of KVM's MTE support, from a VMM's point of view: the
 * KVM_ARM_MTE_COPY_TAGS ioctl in both directions over 4 KiB pages, THP and
 * hugetlb, the guest's first touch of its memory, exit round trips, and a
 * whole save and restore of an MTE guest. Each result is one diagnostic
 * line, "bench figure=... key=value ... ns=N", that tooling/bench.py
 * collects from runs on this series' kernels and on mainline's.
 *
 * The same binary runs on both, so it only uses the mainline ABI. Every
 * measurement also checks its result (byte counts, tags read back, the
 * guest's own checks): a fast wrong answer must not count.
 */
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <linux/mman.h>
#include <sys/mman.h>

#include "lib/arch.hpp"
#include "lib/copy_tags.hpp"
#include "lib/host_mte.hpp"
#include "lib/kvm.hpp"
#include "lib/mm_probe.hpp"
#include "lib/mte_vm.hpp"
#include "lib/test.hpp"
#include "lib/vcpu_state.hpp"
#include "mte_bench.hpp"

using namespace kvmt;
using Clock = std::chrono::steady_clock;

namespace
{

constexpr uint32_t DATA_SLOT = 1;
constexpr uint64_t DATA_GPA = uint64_t{1} << 32;
constexpr uint64_t MIB = uint64_t{1} << 20;
constexpr uint64_t PAGE = arch::PAGE_SIZE;
constexpr uint64_t FROM_GUEST = KVM_ARM_TAGS_FROM_GUEST;
constexpr uint64_t TO_GUEST = KVM_ARM_TAGS_TO_GUEST;
constexpr int HUGE_2M_SHIFT = 21;
constexpr int HUGE_1G_SHIFT = 30;
/* Exits per loop: enough for the loop to take about a second under TCG. */
constexpr uint64_t HVC_EXITS = 20000;
constexpr uint64_t MMIO_EXITS = 5000;
/* Memory the first-touch figure faults in. */
constexpr uint64_t FIRST_TOUCH_SIZE = 64 * MIB;
constexpr uint64_t SAVE_RESTORE_SIZE = 1024 * MIB;
/* How often the kernel-memory sampler reads /proc/meminfo. */
constexpr auto KMEM_SAMPLE_PERIOD = std::chrono::milliseconds(1);

enum class BenchBacking { small, thp, hugetlb_2m, hugetlb_1g };

const char *backing_name(BenchBacking b)
{
	switch (b) {
	case BenchBacking::small:
		return "4k";
	case BenchBacking::thp:
		return "thp";
	case BenchBacking::hugetlb_2m:
		return "hugetlb-2m";
	case BenchBacking::hugetlb_1g:
		return "hugetlb-1g";
	}
	return "?";
}

uint64_t ns_since(Clock::time_point t0)
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

/* One result line; tooling/bench.py keys on everything but ns. */
void report(const std::string &keys, uint64_t ns)
{
	ktest::diag("bench " + keys + " ns=" + std::to_string(ns));
}

/*
 * Guest memory for the copy figures, backed the way a VMM would back it:
 * 4 KiB pages (THP explicitly refused, as distribution kernels enable THP
 * for every mapping), THP (2 MiB aligned, MADV_HUGEPAGE) or hugetlb pages
 * from the pools the test bed reserves on the kernel command line.
 */
class GuestMemory
{
public:
	GuestMemory(BenchBacking backing, uint64_t size) : size_(size)
	{
		const int prot = PROT_READ | PROT_WRITE;
		const int anon = MAP_PRIVATE | MAP_ANONYMOUS;

		switch (backing) {
		case BenchBacking::small:
			map_ = Mapping::map("mmap(4 KiB pages)", nullptr, size, prot, anon, -1, 0);
			check(make_result("madvise(MADV_NOHUGEPAGE)",
					  madvise(map_.get(), size, MADV_NOHUGEPAGE)));
			host_ = static_cast<uint8_t *>(map_.get());
			break;
		case BenchBacking::thp: {
			map_ = Mapping::map("mmap(THP)", nullptr, size + arch::BLOCK_SIZE_2M, prot,
					    anon | MAP_NORESERVE, -1, 0);
			const uint64_t base = reinterpret_cast<uint64_t>(map_.get());
			const uint64_t aligned =
				(base + arch::BLOCK_SIZE_2M - 1) & ~(arch::BLOCK_SIZE_2M - 1);

			host_ = reinterpret_cast<uint8_t *>(aligned);
			check(make_result("madvise(MADV_HUGEPAGE)",
					  madvise(host_, size, MADV_HUGEPAGE)));
			break;
		}
		case BenchBacking::hugetlb_2m:
		case BenchBacking::hugetlb_1g: {
			const int shift =
				backing == BenchBacking::hugetlb_2m ? HUGE_2M_SHIFT : HUGE_1G_SHIFT;

			map_ = Mapping::map(std::string("mmap(MAP_HUGETLB, ") +
						    backing_name(backing) +
						    ") (is the pool reserved on the command line?)",
					    nullptr, size, prot,
					    anon | MAP_HUGETLB | (shift << MAP_HUGE_SHIFT), -1, 0);
			host_ = static_cast<uint8_t *>(map_.get());
			break;
		}
		}
	}

	uint8_t *host() const { return host_; }

	/* Raw: mainline before 6.13 refuses hugetlb memslots in MTE VMs. */
	SysResult add_to(Vm &vm, uint32_t slot, uint64_t gpa) const
	{
		kvm_userspace_memory_region r = {};

		r.slot = slot;
		r.guest_phys_addr = gpa;
		r.memory_size = size_;
		r.userspace_addr = reinterpret_cast<uint64_t>(host_);
		return vm.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &r);
	}

private:
	uint64_t size_;
	Mapping map_;
	uint8_t *host_ = nullptr;
};

/* A buffer the size of size bytes' tags, faulted in so the copy times only KVM. */
std::vector<uint8_t> tag_buffer(uint64_t size, uint8_t fill)
{
	return std::vector<uint8_t>(mte_tag_bytes(size), fill);
}

/* Tags that differ from granule to granule, so a copy that drops any shows. */
std::vector<uint8_t> tag_pattern(uint64_t size)
{
	std::vector<uint8_t> tags = tag_buffer(size, 0);

	for (uint64_t i = 0; i < tags.size(); i++)
		tags[i] = (i * 5 + i / 256) & arch::mte::TAG_MASK;
	return tags;
}

uint64_t mem_free_kib()
{
	std::ifstream in("/proc/meminfo");
	std::string key;
	uint64_t kib = 0;

	while (in >> key >> kib) {
		if (key == "MemFree:")
			return kib;
		in.ignore(64, '\n');
	}
	ktest::fail(std::source_location::current(), "no MemFree in /proc/meminfo");
}

/*
 * The most memory the system took while fn ran, in KiB, sampled from
 * MemFree: with the guest's pages and the user buffer faulted in before,
 * that is what the kernel allocated for the call.
 */
template <typename Fn> uint64_t peak_kernel_kib(Fn fn)
{
	const uint64_t before = mem_free_kib();
	std::atomic<bool> stop = false;
	std::atomic<uint64_t> lowest = before;
	std::thread sampler([&] {
		while (!stop) {
			lowest = std::min<uint64_t>(lowest, mem_free_kib());
			std::this_thread::sleep_for(KMEM_SAMPLE_PERIOD);
		}
	});

	fn();
	stop = true;
	sampler.join();
	return before - std::min<uint64_t>(lowest, before);
}

uint64_t timed_copy(Vm &vm, uint64_t size, uint8_t *buf, uint64_t dir)
{
	const auto t0 = Clock::now();

	EXPECT_THAT(mte_copy_tags(vm, DATA_GPA, size, buf, dir), SyscallSucceedsWithValue(size));
	return ns_since(t0);
}

/*
 * Figure 1: the ioctl in both directions over size bytes of one backing,
 * first on memory the guest never touched, then on memory that has tags,
 * and what one call costs in kernel memory.
 */
void bench_copy(BenchBacking backing, uint64_t size)
{
	Kvm kvm = mte_kvm();
	Vm vm = mte_vm(kvm);
	GuestMemory mem(backing, size);
	const std::string keys = std::string("figure=copy backing=") + backing_name(backing) +
				 " size_mib=" + std::to_string(size / MIB);
	const std::vector<uint8_t> tags = tag_pattern(size);
	std::vector<uint8_t> back = tag_buffer(size, 0xff);

	const SysResult added = mem.add_to(vm, DATA_SLOT, DATA_GPA);

	/*
	 * A kernel that cannot give this backing tags says so with the
	 * memslot's errno, which the table shows in place of figures; the
	 * report fails the run if that kernel is this series'.
	 */
	if (!added.ok() && backing != BenchBacking::small && backing != BenchBacking::thp) {
		ktest::diag("bench " + keys + " op=memslot refused=" + errno_name(added.err));
		return;
	}
	check(added);
	report(keys + " op=from-untouched", timed_copy(vm, size, back.data(), FROM_GUEST));
	EXPECT_EQ(std::count(back.begin(), back.end(), 0), static_cast<long>(back.size()));
	report(keys + " op=to-untouched",
	       timed_copy(vm, size, const_cast<uint8_t *>(tags.data()), TO_GUEST));
	report(keys + " op=from-tagged", timed_copy(vm, size, back.data(), FROM_GUEST));
	EXPECT_TRUE(back == tags);
	report(keys + " op=to-tagged",
	       timed_copy(vm, size, const_cast<uint8_t *>(tags.data()), TO_GUEST));

	/* Untimed: the sampler thread competes with the copy for CPU time. */
	const uint64_t kib = peak_kernel_kib([&] {
		EXPECT_THAT(mte_copy_tags(vm, DATA_GPA, size, back.data(), FROM_GUEST),
			    SyscallSucceedsWithValue(size));
	});
	ktest::diag("bench " + keys + " op=kmem-from kib=" + std::to_string(kib));
}

/* The limits: memcpy of the tag bytes, and a VMM reading tags through PROT_MTE with LDG. */
void bench_limits(uint64_t size)
{
	const std::string keys = "figure=limit size_mib=" + std::to_string(size / MIB);
	const std::vector<uint8_t> tags = tag_pattern(size);
	std::vector<uint8_t> dst = tag_buffer(size, 0xff);
	auto t0 = Clock::now();

	std::memcpy(dst.data(), tags.data(), tags.size());
	report(keys + " op=memcpy", ns_since(t0));
	EXPECT_TRUE(dst == tags);

	if (!host_mte::supported())
		ktest::skip("the host offers no PROT_MTE: " + no_guest_mte_reason());
	Mapping ram =
		Mapping::map("mmap(PROT_MTE)", nullptr, size, PROT_READ | PROT_WRITE | PROT_MTE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *p = static_cast<uint8_t *>(ram.get());

	for (uint64_t off = 0; off < size; off += PAGE)
		p[off] = 1;
	t0 = Clock::now();
	for (uint64_t i = 0; i < dst.size(); i++)
		dst[i] = host_mte::ldg(p + i * arch::mte::GRANULE_SIZE);
	report(keys + " op=ldg-loop", ns_since(t0));
	EXPECT_EQ(std::count(dst.begin(), dst.end(), 0), static_cast<long>(dst.size()));
}

/*
 * Keeps a region on 4 KiB pages: distribution kernels enable THP for every
 * mapping, the test bed's only where asked.
 */
void refuse_thp(const MemRegion &r)
{
	check(make_result("madvise(MADV_NOHUGEPAGE)",
			  madvise(r.host(), r.size(), MADV_NOHUGEPAGE)));
}

/* A VM with or without MTE and one data slot the guest maps at DATA_GPA. */
struct BenchVm {
	Kvm kvm;
	Vm vm;
	Vcpu *vcpu = nullptr;
	bool mte;

	BenchVm(bool with_mte, uint64_t size, bool thp) : vm(make(kvm, with_mte)), mte(with_mte)
	{
		RegionSpec spec =
			tagged_region(DATA_SLOT, DATA_GPA, size, Backing::anon_private, false, thp);

		if (!with_mte)
			spec.stage1.attr = Stage1::normal;
		const MemRegion &r = vm.add_region(spec);

		if (!thp)
			refuse_thp(r);
		vcpu = &vm.add_vcpu(0);
	}

	static Vm make(Kvm &kvm, bool with_mte)
	{
		if (with_mte)
			return mte_vm(kvm);
		return Vm(kvm);
	}

	template <typename... Args> void start(void (*fn)(Args...), Args... args)
	{
		vcpu->start(fn, args...);
		if (mte)
			vcpu->set_reg(reg::SCTLR_EL1,
				      arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA);
	}

	const char *name() const { return mte ? "on" : "off"; }
};

/* Figure 2: a guest's first store to each page of its memory, MTE on vs off. */
void bench_first_touch(bool thp)
{
	require_guest_mte(Kvm());
	for (bool mte : {false, true}) {
		BenchVm b(mte, FIRST_TOUCH_SIZE, thp);

		b.start(guest_touch_pages, DATA_GPA, FIRST_TOUCH_SIZE);
		const auto t0 = Clock::now();

		b.vcpu->run_until_done();
		report(std::string("figure=first-touch backing=") + (thp ? "thp" : "4k") + " mte=" +
			       b.name() + " pages=" + std::to_string(FIRST_TOUCH_SIZE / PAGE),
		       ns_since(t0));
	}
}

/* Figure 3: exit round trips, in the kernel (HVC) or to the VMM (MMIO), MTE on vs off. */
void bench_exits(bool mmio)
{
	require_guest_mte(Kvm());
	for (bool mte : {false, true}) {
		BenchVm b(mte, PAGE, false);
		const uint64_t n = mmio ? MMIO_EXITS : HVC_EXITS;

		if (mmio)
			b.start(guest_mmio_loop, n);
		else
			b.start(guest_hvc_loop, n);
		b.vcpu->expect_sync(BENCH_SYNC_BEGIN);
		const auto t0 = Clock::now();

		if (mmio) {
			for (uint64_t i = 0; i < n; i++)
				b.vcpu->expect_sync(BENCH_SYNC_EXIT);
		}
		b.vcpu->expect_sync(BENCH_SYNC_END);
		report(std::string("figure=exits kind=") + (mmio ? "mmio" : "hvc") +
			       " mte=" + b.name() + " exits=" + std::to_string(n),
		       ns_since(t0));
		b.vcpu->run_until_done();
	}
}

/*
 * Figure 4: the main job end to end. A 1 GiB MTE guest has tagged and
 * written every page; the VMM saves RAM, tags and registers, restores
 * them into a new VM, and the guest checks every page there.
 */
void bench_save_restore()
{
	Kvm kvm = mte_kvm();
	Vm a = mte_vm(kvm);
	Vcpu &va = a.add_vcpu(0);
	const std::string keys =
		"figure=save-restore size_mib=" + std::to_string(SAVE_RESTORE_SIZE / MIB);

	refuse_thp(a.add_region(tagged_region(DATA_SLOT, DATA_GPA, SAVE_RESTORE_SIZE)));
	va.start(guest_tag_pages_then_check, DATA_GPA, SAVE_RESTORE_SIZE);
	va.set_reg(reg::SCTLR_EL1, arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA |
					   arch::sctlr::TCF_SYNC << arch::sctlr::TCF_SHIFT);
	va.expect_sync(BENCH_SYNC_END);
	complete_pending_mmio(va);

	std::vector<uint8_t> ram(SAVE_RESTORE_SIZE);
	std::vector<uint8_t> ram0(a.region(GUEST_RAM_SLOT).size());
	std::vector<uint8_t> tags = tag_buffer(SAVE_RESTORE_SIZE, 0xff);
	auto t0 = Clock::now();

	std::memcpy(ram0.data(), a.region(GUEST_RAM_SLOT).host(), ram0.size());
	std::memcpy(ram.data(), a.region(DATA_SLOT).host(), ram.size());
	const uint64_t save_ram = ns_since(t0);
	t0 = Clock::now();
	ASSERT_THAT(mte_copy_tags(a, DATA_GPA, SAVE_RESTORE_SIZE, tags.data(), FROM_GUEST),
		    SyscallSucceedsWithValue(SAVE_RESTORE_SIZE));
	const uint64_t save_tags = ns_since(t0);

	Vm b = mte_vm(kvm);
	Vcpu &vb = b.add_vcpu(0);

	refuse_thp(b.add_region(tagged_region(DATA_SLOT, DATA_GPA, SAVE_RESTORE_SIZE)));
	t0 = Clock::now();
	std::memcpy(b.region(GUEST_RAM_SLOT).host(), ram0.data(), ram0.size());
	std::memcpy(b.region(DATA_SLOT).host(), ram.data(), ram.size());
	const uint64_t restore_ram = ns_since(t0);
	t0 = Clock::now();
	ASSERT_THAT(mte_copy_tags(b, DATA_GPA, SAVE_RESTORE_SIZE, tags.data(), TO_GUEST),
		    SyscallSucceedsWithValue(SAVE_RESTORE_SIZE));
	const uint64_t restore_tags = ns_since(t0);
	t0 = Clock::now();
	copy_vcpu_registers(va, vb);
	const uint64_t regs = ns_since(t0);

	report(keys + " op=save-ram", save_ram);
	report(keys + " op=save-tags", save_tags);
	report(keys + " op=restore-ram", restore_ram);
	report(keys + " op=restore-tags", restore_tags);
	report(keys + " op=registers", regs);
	report(keys + " op=total", save_ram + save_tags + restore_ram + restore_tags + regs);
	a = Vm(kvm);
	vb.run_until_done();
}

} // namespace

/* The longest figure (1 GiB TO_GUEST into never-touched memory) takes about a minute under TCG. */
constexpr unsigned int BENCH_TIMEOUT_S = 900;

#define COPY_BENCH(backing, mib)                                                                   \
	TEST_TIMEOUT(copy, backing##_##mib##m, BENCH_TIMEOUT_S)                                    \
	{                                                                                          \
		bench_copy(BenchBacking::backing, (mib)*MIB);                                      \
	}

COPY_BENCH(small, 64)
COPY_BENCH(small, 256)
COPY_BENCH(small, 1024)
COPY_BENCH(thp, 64)
COPY_BENCH(thp, 256)
COPY_BENCH(thp, 1024)
COPY_BENCH(hugetlb_2m, 64)
COPY_BENCH(hugetlb_2m, 256)
COPY_BENCH(hugetlb_2m, 1024)
COPY_BENCH(hugetlb_1g, 1024)

#define LIMIT_BENCH(mib)                                                                           \
	TEST_TIMEOUT(limit, tags_of_##mib##m, BENCH_TIMEOUT_S)                                     \
	{                                                                                          \
		bench_limits((mib)*MIB);                                                           \
	}

LIMIT_BENCH(64)
LIMIT_BENCH(256)
LIMIT_BENCH(1024)

TEST_TIMEOUT(first_touch, small_pages, BENCH_TIMEOUT_S)
{
	bench_first_touch(false);
}

TEST_TIMEOUT(first_touch, thp, BENCH_TIMEOUT_S)
{
	bench_first_touch(true);
}

TEST_TIMEOUT(exits, hvc, BENCH_TIMEOUT_S)
{
	bench_exits(false);
}

TEST_TIMEOUT(exits, mmio, BENCH_TIMEOUT_S)
{
	bench_exits(true);
}

TEST_TIMEOUT(save_restore, guest_of_1g, BENCH_TIMEOUT_S)
{
	bench_save_restore();
}
