// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CAP_ARM_MTE and what it changes for a VM: the capability itself
 * (reported exactly when the host has MTE, enabled only before the first
 * vCPU, race-free against KVM_CREATE_VCPU), the refusal of AArch32 EL1
 * vCPUs, the guest's view (ID_AA64PFR1_EL1.MTE, the four MTE system
 * registers, the tag set/way maintenance instructions, PSTATE.TCO on an
 * exception KVM injects), the registers' ONE_REG interface and their
 * per-vCPU switching on every entry and exit, and which memory may back the
 * memslots of an MTE VM: anonymous, shmem and memfd memory and anonymous
 * hugetlb pages (each of whose 4 KiB pages gets zeroed tags, and whose tags
 * do not survive the page's return to the hugetlb pool, for the next VM or
 * host process that gets it), but not a ramfs file or a VM_PFNMAP mapping
 * of /dev/mem, including a /dev/mem memslot created before MTE was enabled,
 * which 5.10 maps into stage 2 at once and which must fault afterwards.
 *
 * Every rule is also checked from the other side: a VM without MTE, and a
 * host without it (QEMU mte=off), must keep 5.10's behaviour, so those
 * tests run and pass under both mte=on and mte=off.
 */
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <sched.h>
#include <source_location>
#include <sstream>
#include <string>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>
#include <vector>

#include "lib/arch.hpp"
#include "lib/copy_tags.hpp"
#include "lib/host_mte.hpp"
#include "lib/kvm.hpp"
#include "lib/mm_probe.hpp"
#include "lib/mte_vm.hpp"
#include "lib/test.hpp"
#include "lib/vcpu_state.hpp"
#include "mte_cap.hpp"

/* arm64 hwcaps; older libc headers lack them (values from asm/hwcap.h). */
#ifndef HWCAP_CPUID
#define HWCAP_CPUID (1 << 11)
#endif
#ifndef HWCAP2_MTE
#define HWCAP2_MTE (1 << 18)
#endif

using namespace kvmt;

namespace
{

constexpr const char *NO_MTE_REASON = "the host has no MTE (QEMU mte=off)";

/* /proc/<pid>/smaps VmFlags mnemonic of VM_PFNMAP. */
constexpr const char *SMAPS_PFNMAP_FLAG = "pf";

/* The registers of MteCapReg, in its order. */
constexpr reg::Reg mte_regs[MTE_CAP_NR_REGS] = {
	reg::GCR_EL1,
	reg::RGSR_EL1,
	reg::TFSR_EL1,
	reg::TFSRE0_EL1,
};

constexpr const char *dc_op_names[MTE_CAP_NR_DC_OPS] = {
	"DC IGSW", "DC IGDSW", "DC CGSW", "DC CGDSW", "DC CIGSW", "DC CIGDSW",
};

/* Big enough for a few pages of tags, small enough to stay quick under TCG. */
constexpr uint64_t DATA_SIZE = 64 << 10;

/* Rounds of enable-vs-create races, each on a fresh VM. */
constexpr unsigned int RACE_ROUNDS = 200;
/* Busy-wait steps that skew one racer per round, so both orders happen. */
constexpr unsigned int RACE_SKEW_STEPS = 16;
constexpr unsigned int RACE_SKEW_SPINS_PER_STEP = 500;
/* Violations printed in full before only counting them. */
constexpr unsigned int RACE_MAX_REPORTS = 5;

/* Host/guest rounds of the migration test; each has two exits per vCPU. */
constexpr uint64_t MIGRATION_ROUNDS = 32;

constexpr const char *NR_HUGEPAGES_PATH = "/proc/sys/vm/nr_hugepages";
constexpr const char *FREE_HUGEPAGES_PATH =
	"/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";

/*
 * Physical memory /dev/mem may map under STRICT_DEVMEM (not RAM, not claimed
 * by a driver): QEMU virt's pflash0 at physical 0 (64 MiB), unused because
 * the test bed boots with -kernel and no -bios. Read only, never written: a
 * write would be a flash command.
 */
constexpr const char *DEVMEM_PATH = "/dev/mem";
constexpr off_t DEVMEM_FLASH_PHYS = 0;
constexpr uint64_t DEVMEM_SIZE = DATA_SIZE;
uint64_t mte_field(uint64_t pfr1)
{
	return (pfr1 >> arch::id_aa64pfr1::MTE_SHIFT) & arch::id_aa64pfr1::MTE_MASK;
}

/* ID_AA64PFR1_EL1 as user space sees it: the kernel emulates the mrs. */
uint64_t host_pfr1()
{
	uint64_t val;

	if (!(getauxval(AT_HWCAP) & HWCAP_CPUID))
		ktest::skip("the kernel does not emulate ID register reads (no HWCAP_CPUID)");
	/* ID_AA64PFR1_EL1 by encoding, for assemblers that do not know the name. */
	asm volatile("mrs %0, s3_0_c0_c4_1" : "=r"(val));
	return val;
}

/* KVM_CREATE_VCPU only, for tests that call KVM_ARM_VCPU_INIT themselves. */
Vcpu create_vcpu(const Kvm &kvm, Vm &vm, uint32_t id)
{
	FileDesc fd(static_cast<int>(check(vm.ioctl_raw(KVM_CREATE_VCPU, id))));

	return Vcpu(vm, id, std::move(fd), kvm.vcpu_mmap_size());
}

bool vcpu_sees_mte(const Vcpu &vcpu)
{
	return mte_field(vcpu.get_reg(reg::ID_AA64PFR1_EL1)) != 0;
}

unsigned int mte_regs_listed(const Vcpu &vcpu)
{
	const std::vector<uint64_t> list = vcpu.get_reg_list();
	unsigned int n = 0;

	for (const reg::Reg &r : mte_regs)
		for (uint64_t id : list)
			n += id == r.id;
	return n;
}

std::string esr_text(uint64_t esr)
{
	if (esr == MTE_CAP_NO_EXCEPTION)
		return "no exception";
	return esr_class_name(esr) + " (ESR " + hex(esr) + ")";
}

void expect_undef(const std::string &what, uint64_t esr,
		  std::source_location loc = std::source_location::current())
{
	if (esr == MTE_CAP_NO_EXCEPTION || arch::esr::ec(esr) != arch::esr::EC_UNKNOWN)
		ktest::record_failure(loc, what + ": expected an UNDEF (EC 0x00 UNKNOWN), got " +
						   esr_text(esr));
}

void expect_no_exception(const std::string &what, uint64_t esr,
			 std::source_location loc = std::source_location::current())
{
	if (esr != MTE_CAP_NO_EXCEPTION)
		ktest::record_failure(loc, what + ": expected no exception, got " + esr_text(esr));
}

std::string probe_name(unsigned int reg, unsigned int kind)
{
	return std::string(kind == MTE_CAP_PROBE_READ ? "mrs " : "msr ") +
	       std::string(mte_regs[reg].name);
}

/* Values KVM_GET_ONE_REG returns for the MTE registers must be the given step's. */
void expect_reg_values(const Vcpu &vcpu, uint64_t step, const std::string &when,
		       std::source_location loc = std::source_location::current())
{
	for (unsigned int r = 0; r < MTE_CAP_NR_REGS; r++) {
		const uint64_t expected = mte_cap_reg_pattern(r, vcpu.id(), step);
		const uint64_t got = vcpu.get_reg(mte_regs[r]);

		if (got != expected)
			ktest::record_failure(loc, "vCPU " + std::to_string(vcpu.id()) + " " +
							   std::string(mte_regs[r].name) + " " +
							   when + ": got " + hex(got) +
							   ", expected " + hex(expected));
	}
}

void set_reg_values(Vcpu &vcpu, uint64_t step)
{
	for (unsigned int r = 0; r < MTE_CAP_NR_REGS; r++)
		vcpu.set_reg(mte_regs[r], mte_cap_reg_pattern(r, vcpu.id(), step));
}

/* KVM injects a synchronous external data abort into the vCPU right away. */
void inject_ext_dabt(Vcpu &vcpu)
{
	kvm_vcpu_events events = {};

	events.exception.ext_dabt_pending = 1;
	ASSERT_THAT(vcpu.ioctl_raw(KVM_SET_VCPU_EVENTS, &events), SyscallSucceeds());
}

/* Pins the calling thread to one CPU at a time; restores its affinity at the end. */
class CpuPin
{
public:
	const std::vector<int> &cpus() const { return cpus_; }

	/* Moves to the next online CPU, round robin, and checks we got there. */
	void hop()
	{
		const int cpu = cpus_[next_++ % cpus_.size()];

		pin_.reset();
		pin_.emplace(cpu);
		ASSERT_EQ(sched_getcpu(), cpu);
	}

private:
	std::vector<int> cpus_ = mm::online_cpus();
	size_t next_ = 0;
	std::optional<mm::ScopedPin> pin_;
};

/* A private ramfs mount: page-cache memory that is not shmem, so it cannot hold tags. */
class Ramfs
{
public:
	Ramfs()
	{
		char dir[] = "/tmp/mte_cap_ramfs.XXXXXX";

		if (!mkdtemp(dir))
			throw SysError("mkdtemp", errno);
		dir_ = dir;
		if (mount("none", dir_.c_str(), "ramfs", 0, nullptr)) {
			const int err = errno;

			rmdir(dir_.c_str());
			throw SysError("mount(ramfs)", err);
		}
	}
	Ramfs(const Ramfs &) = delete;
	Ramfs &operator=(const Ramfs &) = delete;
	~Ramfs()
	{
		umount2(dir_.c_str(), MNT_DETACH);
		rmdir(dir_.c_str());
	}

	/* A file of size bytes; mappings of it are MAP_SHARED page cache. */
	FileDesc create_file(uint64_t size) const
	{
		const std::string path = dir_ + "/guest_ram";
		FileDesc fd(static_cast<int>(check(
			make_result("open(ramfs file)",
				    open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)))));

		check(make_result("ftruncate(ramfs file)", ftruncate(fd.get(), size)));
		return fd;
	}

private:
	std::string dir_;
};

Mapping map_file(const FileDesc &fd, uint64_t size)
{
	return Mapping::map("mmap(ramfs file)", nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			    fd.get(), 0);
}

/* Raises vm.nr_hugepages by the pages a test needs; restores it at the end. */
class HugepageReservation
{
public:
	explicit HugepageReservation(uint64_t pages)
	{
		const uint64_t before = mm::read_number(NR_HUGEPAGES_PATH);

		setting_.emplace(NR_HUGEPAGES_PATH, std::to_string(before + pages));
		/* The pool grows only as far as free memory allows. */
		if (mm::read_number(NR_HUGEPAGES_PATH) < before + pages)
			ktest::fail(std::source_location::current(),
				    "no 2 MiB page could be added to the hugetlb pool");
	}

private:
	std::optional<mm::ScopedSetting> setting_;
};

/* Free pages of the default (2 MiB) hugetlb pool. */
uint64_t free_huge_pages()
{
	return mm::read_number(FREE_HUGEPAGES_PATH);
}
/* One 2 MiB huge page; extra_prot is PROT_MTE for a tagged host mapping. */
Mapping map_hugetlb(int extra_prot = 0)
{
	return Mapping::map("mmap(MAP_HUGETLB)", nullptr, arch::BLOCK_SIZE_2M,
			    PROT_READ | PROT_WRITE | extra_prot,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
}

/* The ways a process gets hugetlb memory; all of them must be able to hold tags. */
enum class HugetlbKind {
	anonymous,	/* mmap(MAP_ANONYMOUS | MAP_HUGETLB) */
	hugetlbfs_file, /* a file of a hugetlbfs mount, MAP_SHARED */
	memfd,		/* memfd_create(MFD_HUGETLB), MAP_SHARED */
};

/* One 2 MiB huge page of the given kind, mapped with PROT_READ | PROT_WRITE | extra_prot. */
class HugetlbPage
{
public:
	HugetlbPage(HugetlbKind kind, int extra_prot)
	{
		const int prot = PROT_READ | PROT_WRITE | extra_prot;

		switch (kind) {
		case HugetlbKind::anonymous:
			map_ = map_hugetlb(extra_prot);
			return;
		case HugetlbKind::hugetlbfs_file:
			mount_hugetlbfs();
			fd_ = FileDesc(static_cast<int>(
				check(make_result("open(hugetlbfs file)",
						  open((dir_ + "/guest_ram").c_str(),
						       O_RDWR | O_CREAT | O_CLOEXEC, 0600)))));
			break;
		case HugetlbKind::memfd:
			fd_ = FileDesc(static_cast<int>(check(make_result(
				"memfd_create(MFD_HUGETLB)",
				memfd_create("guest_ram", MFD_CLOEXEC | MFD_HUGETLB)))));
			break;
		}
		check(make_result("ftruncate(hugetlb file)",
				  ftruncate(fd_.get(), arch::BLOCK_SIZE_2M)));
		map_ = Mapping::map("mmap(hugetlb file)", nullptr, arch::BLOCK_SIZE_2M, prot,
				    MAP_SHARED, fd_.get(), 0);
	}
	HugetlbPage(const HugetlbPage &) = delete;
	HugetlbPage &operator=(const HugetlbPage &) = delete;
	~HugetlbPage()
	{
		/* The mapping and the file go before the file system does. */
		map_ = Mapping();
		fd_ = FileDesc();
		if (!dir_.empty()) {
			umount2(dir_.c_str(), MNT_DETACH);
			rmdir(dir_.c_str());
		}
	}

	void *get() const { return map_.get(); }
	uint64_t size() const { return map_.size(); }

private:
	void mount_hugetlbfs()
	{
		char dir[] = "/tmp/mte_cap_hugetlbfs.XXXXXX";

		if (!mkdtemp(dir))
			throw SysError("mkdtemp", errno);
		if (mount("none", dir, "hugetlbfs", 0, nullptr)) {
			const int err = errno;

			rmdir(dir);
			throw SysError("mount(hugetlbfs)", err);
		}
		dir_ = dir;
	}

	std::string dir_;
	FileDesc fd_;
	Mapping map_;
};

/* Physical frame of the resident page at addr (pagemap shows PFNs to root only). */
uint64_t resident_pfn(const void *addr, const std::string &what)
{
	const mm::PageInfo info = mm::page_info(addr, arch::PAGE_SIZE).front();

	if (!info.present)
		ktest::fail(std::source_location::current(), what + " is not resident");
	if (!info.pfn)
		ktest::fail(std::source_location::current(),
			    "/proc/self/pagemap hides the PFN of " + what + " (not root?)");
	return info.pfn;
}

/* 4 KiB pages of the 2 MiB page at head_pfn whose PG_mte_tagged is set. */
uint64_t huge_subpages_flagged(uint64_t head_pfn)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < MTE_CAP_HUGE_PAGES; i++)
		n += (mm::kpageflags(head_pfn + i) >> mm::kpf::ARCH_2) & 1;
	return n;
}

/* What a scan of a 2 MiB page found, see guest_scan_huge_tags(). */
struct HugeScan {
	uint64_t nonzero;
	/* Offset into the page of the first granule with a non-zero tag. */
	uint64_t first_off;
	uint64_t first_tag;
	uint64_t mismatched;
};

/* Maps the 2 MiB data slot tagged in the guest and scans it with one vCPU. */
HugeScan run_huge_scan(Vm &vm, uint64_t page_stride, bool store)
{
	vm.map(MTE_CAP_DATA_GPA, MTE_CAP_DATA_GPA, arch::BLOCK_SIZE_2M,
	       MapOptions{.attr = Stage1::tagged});

	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_scan_huge_tags, MTE_CAP_DATA_GPA, arch::BLOCK_SIZE_2M, page_stride, store);
	/* EL1 tag loads and stores need SCTLR_EL1.ATA; tag checks stay off. */
	vcpu.set_reg(reg::SCTLR_EL1, arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA);
	vcpu.run_until_done();
	return {
		.nonzero = vm.guest_var(&mte_cap_nonzero_granules),
		.first_off = vm.guest_var(&mte_cap_first_nonzero_addr) - MTE_CAP_DATA_GPA,
		.first_tag = vm.guest_var(&mte_cap_first_nonzero_tag),
		.mismatched = vm.guest_var(&mte_cap_mismatched_granules),
	};
}

/*
 * The scan found every granule with tag 0. After a previous owner of the
 * page stored mte_cap_huge_tag() everywhere, say whether that is what leaked.
 */
void expect_zero_tags(const HugeScan &scan, const std::string &who, bool after_previous_owner,
		      std::source_location loc = std::source_location::current())
{
	std::string msg;

	if (!scan.nonzero)
		return;
	msg = who + " found " + std::to_string(scan.nonzero) +
	      " granules with a non-zero tag, the first at offset " + hex(scan.first_off) +
	      " with tag " + std::to_string(scan.first_tag);
	if (after_previous_owner)
		msg += " (the previous owner stored " +
		       std::to_string(mte_cap_huge_tag(scan.first_off)) + " there)";
	ktest::record_failure(loc, msg);
}

/* guest_scan_huge_tags() of every page, run by the host on its PROT_MTE mapping. */
HugeScan host_scan_huge_tags(uint8_t *base, bool store)
{
	using namespace host_mte;
	HugeScan scan = {};

	for (uint64_t off = 0; off < arch::BLOCK_SIZE_2M; off += arch::mte::GRANULE_SIZE) {
		const uint64_t tag = ldg(base + off);

		if (tag && !scan.nonzero++) {
			scan.first_off = off;
			scan.first_tag = tag;
		}
	}
	if (!store)
		return scan;
	for (uint64_t off = 0; off < arch::BLOCK_SIZE_2M; off += arch::mte::GRANULE_SIZE)
		stg(with_tag(base + off, mte_cap_huge_tag(off)));
	for (uint64_t off = 0; off < arch::BLOCK_SIZE_2M; off += arch::mte::GRANULE_SIZE)
		scan.mismatched += ldg(base + off) != mte_cap_huge_tag(off);
	return scan;
}

/* The huge page freed to the pool at head_pfn must have forgotten its tags. */
void expect_pool_page_untagged(uint64_t head_pfn,
			       std::source_location loc = std::source_location::current())
{
	const uint64_t flagged = huge_subpages_flagged(head_pfn);

	if (flagged)
		ktest::record_failure(loc,
				      "back in the pool, " + std::to_string(flagged) + " of " +
					      std::to_string(MTE_CAP_HUGE_PAGES) +
					      " pages of the huge page still have PG_mte_tagged");
}

/* The VmFlags mnemonics of the vma holding addr, from /proc/self/smaps. */
std::vector<std::string> vma_flags(const void *addr)
{
	const uint64_t a = reinterpret_cast<uint64_t>(addr);
	std::ifstream smaps("/proc/self/smaps");
	std::string line;
	bool inside = false;

	while (std::getline(smaps, line)) {
		uint64_t start, end;
		char dash;

		/* A vma header starts "start-end perms ..."; field lines start with a name. */
		if (std::sscanf(line.c_str(), "%lx%c%lx", &start, &dash, &end) == 3 &&
		    dash == '-') {
			inside = start <= a && a < end;
			continue;
		}
		if (!inside || line.rfind("VmFlags:", 0) != 0)
			continue;

		std::istringstream words(line.substr(std::string("VmFlags:").size()));
		std::vector<std::string> flags;
		std::string w;

		while (words >> w)
			flags.push_back(w);
		return flags;
	}
	ktest::fail(std::source_location::current(),
		    "no VmFlags in /proc/self/smaps for " + hex(a));
}

/*
 * DEVMEM_SIZE bytes of QEMU's flash mapped through /dev/mem: a VM_PFNMAP
 * mapping. The test bed promises CONFIG_DEVMEM, so not getting one fails
 * the test, naming the cause.
 */
Mapping map_devmem(std::source_location loc = std::source_location::current())
{
	const int raw = open(DEVMEM_PATH, O_RDWR | O_SYNC | O_CLOEXEC);

	if (raw < 0)
		ktest::fail(loc, std::string("cannot open ") + DEVMEM_PATH + ": " +
					 errno_name(errno) +
					 " (the test bed promises CONFIG_DEVMEM=y)");

	FileDesc fd(raw);
	void *p = mmap(nullptr, DEVMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(),
		       DEVMEM_FLASH_PHYS);

	if (p == MAP_FAILED)
		ktest::fail(loc, std::string("mmap of ") + DEVMEM_PATH + " at physical " +
					 hex(DEVMEM_FLASH_PHYS) + ": " + errno_name(errno) +
					 " (STRICT_DEVMEM refused QEMU's flash?)");

	Mapping map(p, DEVMEM_SIZE);
	const std::vector<std::string> flags = vma_flags(p);
	bool pfnmap = false;

	for (const std::string &f : flags)
		pfnmap |= f == SMAPS_PFNMAP_FLAG;
	if (!pfnmap)
		ktest::fail(loc, std::string("the mapping of ") + DEVMEM_PATH +
					 " is not VM_PFNMAP (no '" + SMAPS_PFNMAP_FLAG +
					 "' in its smaps VmFlags)");
	return map;
}

SysResult set_data_slot(Vm &vm, void *host, uint64_t size)
{
	kvm_userspace_memory_region r = {};

	r.slot = MTE_CAP_DATA_SLOT;
	r.guest_phys_addr = MTE_CAP_DATA_GPA;
	r.memory_size = size;
	r.userspace_addr = reinterpret_cast<uint64_t>(host);
	return vm.ioctl_raw(KVM_SET_USER_MEMORY_REGION, &r);
}

/* The guest loads the first word of the data slot: it must see what the host stored. */
void expect_guest_reads_data_slot(Vm &vm, void *host, uint64_t size)
{
	*static_cast<volatile uint64_t *>(host) = MTE_CAP_HOST_WORD;
	vm.map(MTE_CAP_DATA_GPA, MTE_CAP_DATA_GPA, size, MapOptions{});

	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_read_word, reinterpret_cast<const uint64_t *>(MTE_CAP_DATA_GPA));
	vcpu.run_until_done();
	EXPECT_EQ(vm.guest_var(&mte_cap_word), MTE_CAP_HOST_WORD);
}

/* A memslot of this backing is accepted on an MTE VM and the guest can tag it. */
void expect_backing_taggable(const Backing &backing)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);
	MemRegion &data = vm.add_region({
		.slot = MTE_CAP_DATA_SLOT,
		.gpa = MTE_CAP_DATA_GPA,
		.size = DATA_SIZE,
		.backing = backing,
		.stage1 = {.attr = Stage1::tagged},
	});
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_tag_region, data.gpa(), data.size());
	/* EL1 tag loads and stores need SCTLR_EL1.ATA; tag checks stay off. */
	vcpu.set_reg(reg::SCTLR_EL1, arch::sctlr::GUEST_DEFAULT | arch::sctlr::ATA);
	vcpu.run_until_done();
}

/*
 * Parks the guest, has KVM inject a synchronous external abort and looks at
 * the handler's PSTATE.TCO from both sides: KVM_GET_ONE_REG(pstate) while
 * the handler is stopped in a ucall, and (MTE only) the guest's own mrs.
 */
void check_injected_abort(Vm &vm, bool has_mte)
{
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_wait_for_injected_abort, has_mte);
	vcpu.expect_sync(MTE_CAP_SYNC_PARKED);
	ASSERT_EQ(vcpu.get_reg(reg::PSTATE) & arch::pstate::TCO, 0);
	complete_pending_mmio(vcpu);
	inject_ext_dabt(vcpu);

	vcpu.expect_sync(MTE_CAP_SYNC_IN_HANDLER);
	EXPECT_EQ((vcpu.get_reg(reg::PSTATE) & arch::pstate::TCO) != 0, has_mte);
	vcpu.run_until_done();

	const uint64_t esr = vm.guest_var(&mte_cap_abort_esr);

	EXPECT_EQ(vm.guest_var(&mte_cap_abort_taken), 1);
	EXPECT_EQ(arch::esr::ec(esr), arch::esr::EC_DABT_CUR);
	EXPECT_EQ(esr & arch::esr::DFSC_MASK, arch::esr::DFSC_SYNC_EXT_ABORT);
	/* It interrupted code running with PSTATE.TCO clear. */
	EXPECT_EQ(vm.guest_var(&mte_cap_abort_spsr) & arch::pstate::TCO, 0);
	if (has_mte)
		EXPECT_NE(vm.guest_var(&mte_cap_abort_tco) & arch::pstate::TCO, 0);
}

} // namespace

/* KVM_CHECK_EXTENSION reports MTE on /dev/kvm and on a VM exactly when the host has it. */
TEST(mte_cap, check_extension_matches_host_mte)
{
	const int expected = host_mte::supported() ? 1 : 0;
	Kvm kvm;
	Vm vm(kvm);

	ktest::diag(std::string("host HWCAP2_MTE: ") + (expected ? "yes" : "no"));
	EXPECT_EQ(kvm.check_extension(KVM_CAP_ARM_MTE), expected);
	EXPECT_EQ(vm.check_extension(KVM_CAP_ARM_MTE), expected);
}

/* Enabling before vCPU 0 succeeds and takes effect on an MTE host, and is EINVAL without. */
TEST(mte_cap, enable_before_vcpu_succeeds_iff_host_has_mte)
{
	Kvm kvm;
	Vm vm(kvm);

	if (!host_mte::supported()) {
		EXPECT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallFailsWithErrno(EINVAL));
		EXPECT_FALSE(vcpu_sees_mte(vm.add_vcpu(0)));
		return;
	}
	ASSERT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallSucceeds());
	EXPECT_TRUE(vcpu_sees_mte(vm.add_vcpu(0)));
}

/* Enabling a second time, still before any vCPU, is not an error. */
TEST(mte_cap, enable_twice_succeeds)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm(kvm);

	EXPECT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallSucceeds());
	EXPECT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallSucceeds());
	EXPECT_TRUE(vcpu_sees_mte(vm.add_vcpu(0)));
}

/* Non-zero flags are refused, and the refused call leaves the VM without MTE. */
TEST(mte_cap, enable_with_flags_fails_with_einval)
{
	constexpr uint64_t undefined_flag = 1;
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm(kvm);

	EXPECT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE, undefined_flag), SyscallFailsWithErrno(EINVAL));
	EXPECT_FALSE(vcpu_sees_mte(vm.add_vcpu(0)));
}

/* Once a vCPU exists the capability is refused, and later vCPUs do not get MTE either. */
TEST(mte_cap, enable_after_vcpu_fails_with_einval)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm(kvm);

	vm.add_vcpu(0);
	EXPECT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallFailsWithErrno(EINVAL));

	Vcpu &late = vm.add_vcpu(1);
	uint64_t val;

	EXPECT_FALSE(vcpu_sees_mte(late));
	EXPECT_THAT(late.get_reg_raw(reg::GCR_EL1.id, &val), SyscallFailsWithErrno(ENOENT));
}

/*
 * KVM_ENABLE_CAP races KVM_CREATE_VCPU + KVM_ARM_VCPU_INIT on fresh VMs.
 * Per round, with E = the enable result and C = "KVM_CREATE_VCPU had
 * returned before KVM_ENABLE_CAP was issued" (seq_cst flag set right after
 * the create, read right before the enable):
 *  - E is 0 or EINVAL, and C implies EINVAL;
 *  - the vCPU agrees with E: E == 0 exactly when its ID_AA64PFR1_EL1.MTE
 *    is non-zero and KVM_GET_ONE_REG(GCR_EL1) works;
 *  - if E == 0, the vCPU's guest reads and writes all four MTE registers
 *    without trapping, i.e. KVM_ARM_VCPU_INIT already saw MTE and set
 *    HCR_EL2.ATA (a vCPU initialised before the enable would UNDEF);
 *  - a further enable, with the vCPU now created, fails with EINVAL.
 *
 * RACE_ROUNDS fresh VMs take 2.3 s under QEMU TCG on an idle host, up to
 * 6.6 s on a busy one: more than the default limit allows for.
 */
TEST_TIMEOUT(mte_cap, enable_races_vcpu_creation, 30)
{
	Kvm kvm;

	require_guest_mte(kvm);

	unsigned int enable_won = 0, create_won = 0, violations = 0;
	auto violation = [&](unsigned int round, const std::string &what) {
		if (violations++ < RACE_MAX_REPORTS)
			ktest::diag("round " + std::to_string(round) + ": " + what);
	};

	for (unsigned int round = 0; round < RACE_ROUNDS; round++) {
		Vm vm(kvm);
		std::atomic<unsigned int> arrived{0};
		std::atomic<bool> created{false};
		bool created_before_enable = false;
		SysResult enable_res{};
		SysResult init_res{};
		std::optional<Vcpu> vcpu;
		/* Alternate which side is held back, by a varying amount. */
		const unsigned int skew = (round / 2) % RACE_SKEW_STEPS * RACE_SKEW_SPINS_PER_STEP;
		const unsigned int enable_skew = round % 2 ? skew : 0;
		const unsigned int create_skew = round % 2 ? 0 : skew;
		auto start_line = [&](unsigned int spins) {
			arrived++;
			while (arrived.load() < 2)
				;
			for (unsigned int i = 0; i < spins; i++)
				asm volatile("yield" : : : "memory");
		};

		run_concurrently({
			[&] {
				start_line(enable_skew);
				created_before_enable = created.load();
				enable_res = vm.enable_cap(KVM_CAP_ARM_MTE);
			},
			[&] {
				start_line(create_skew);
				FileDesc fd(static_cast<int>(
					check(vm.ioctl_raw(KVM_CREATE_VCPU, 0UL))));
				created.store(true);
				vcpu.emplace(vm, 0, std::move(fd), kvm.vcpu_mmap_size());
				init_res = vcpu->init_raw({});
			},
		});
		ASSERT_THAT(init_res, SyscallSucceeds());

		const bool enabled = enable_res.ok();
		uint64_t gcr;
		const bool gcr_visible = vcpu->get_reg_raw(reg::GCR_EL1.id, &gcr).ok();

		if (!enabled && enable_res.err != EINVAL)
			violation(round,
				  "KVM_ENABLE_CAP failed with " + errno_name(enable_res.err));
		if (enabled && created_before_enable)
			violation(round, "KVM_ENABLE_CAP succeeded after KVM_CREATE_VCPU returned");
		if (vcpu_sees_mte(*vcpu) != enabled)
			violation(round, std::string("ID_AA64PFR1_EL1.MTE disagrees with ") +
						 "KVM_ENABLE_CAP's " + enable_res.outcome());
		if (gcr_visible != enabled)
			violation(round, "ONE_REG GCR_EL1 disagrees with KVM_ENABLE_CAP's " +
						 enable_res.outcome());
		if (enabled) {
			enable_won++;
			vcpu->start(guest_probe_mte_regs);
			vcpu->run_until_done();
			for (unsigned int i = 0; i < MTE_CAP_NR_PROBES; i++)
				if (vm.guest_var(&mte_cap_probe_esr[i]) != MTE_CAP_NO_EXCEPTION)
					violation(round, "MTE enabled but the guest's " +
								 probe_name(i % MTE_CAP_NR_REGS,
									    i / MTE_CAP_NR_REGS) +
								 " took " +
								 esr_text(vm.guest_var(
									 &mte_cap_probe_esr[i])));
		} else {
			create_won++;
		}
		const SysResult again = vm.enable_cap(KVM_CAP_ARM_MTE);

		if (again.ok() || again.err != EINVAL)
			violation(round, "KVM_ENABLE_CAP with vCPU 0 created: " + again.outcome());
	}
	ktest::diag("enable first: " + std::to_string(enable_won) +
		    " rounds, vCPU first: " + std::to_string(create_won) + " rounds");
	EXPECT_EQ(violations, 0);
	/* A race that always went one way tested only that order. */
	EXPECT_NE(enable_won, 0);
	EXPECT_NE(create_won, 0);
}

/* MTE VMs are AArch64 only: an AArch32 EL1 vCPU is refused at KVM_ARM_VCPU_INIT. */
TEST(mte_cap, aarch32_el1_vcpu_refused_on_mte_vm)
{
	Kvm kvm;

	require_guest_mte(kvm);
	/* Without AArch32 EL1 the vCPU is refused anyway, and the test would prove nothing. */
	require_cap(kvm, KVM_CAP_ARM_EL1_32BIT, "the CPU has no AArch32 EL1");

	Vm vm = mte_vm(kvm);
	Vcpu vcpu = create_vcpu(kvm, vm, 0);

	EXPECT_THAT(vcpu.init_raw({KVM_ARM_VCPU_EL1_32BIT}), SyscallFailsWithErrno(EINVAL));
}

/* Control: the same AArch32 EL1 vCPU is accepted on a VM without MTE. */
TEST(mte_cap, aarch32_el1_vcpu_accepted_without_mte)
{
	Kvm kvm;

	require_cap(kvm, KVM_CAP_ARM_EL1_32BIT, "32-bit EL1 not supported by this CPU");

	Vm vm(kvm);
	Vcpu vcpu = create_vcpu(kvm, vm, 0);

	EXPECT_THAT(vcpu.init_raw({KVM_ARM_VCPU_EL1_32BIT}), SyscallSucceeds());
}

/* With MTE the guest and ONE_REG see the host's sanitised ID_AA64PFR1_EL1.MTE. */
TEST(mte_cap, guest_id_reg_shows_host_mte_when_enabled)
{
	Kvm kvm;

	require_guest_mte(kvm);

	const uint64_t host_mte = mte_field(host_pfr1());
	Vm vm = mte_vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);
	const uint64_t one_reg = vcpu.get_reg(reg::ID_AA64PFR1_EL1);

	/* HWCAP2_MTE means at least FEAT_MTE2. */
	EXPECT_TRUE(host_mte >= arch::id_aa64pfr1::MTE_MTE2);
	EXPECT_EQ(mte_field(one_reg), host_mte);

	vcpu.start(guest_read_id_aa64pfr1);
	vcpu.run_until_done();
	EXPECT_EQ(vm.guest_var(&mte_cap_guest_pfr1), one_reg);
}

/* Without MTE enabled the field reads 0 through both the guest's mrs and ONE_REG. */
TEST(mte_cap, guest_id_reg_hides_mte_when_not_enabled)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);
	const uint64_t one_reg = vcpu.get_reg(reg::ID_AA64PFR1_EL1);

	EXPECT_EQ(mte_field(one_reg), 0);
	vcpu.start(guest_read_id_aa64pfr1);
	vcpu.run_until_done();
	EXPECT_EQ(vm.guest_var(&mte_cap_guest_pfr1), one_reg);
}

namespace
{

/* The guest reads and writes each MTE register; check each access's ESR. */
void probe_mte_regs(const Vm &vm, Vcpu &vcpu,
		    void (*check)(const std::string &, uint64_t, std::source_location),
		    std::source_location loc = std::source_location::current())
{
	vcpu.start(guest_probe_mte_regs);
	vcpu.run_until_done();
	for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++)
		for (unsigned int kind : {MTE_CAP_PROBE_READ, MTE_CAP_PROBE_WRITE})
			check(probe_name(reg, kind),
			      vm.guest_var(&mte_cap_probe_esr[mte_cap_probe_index(reg, kind)]),
			      loc);
}

} // namespace

/* Without MTE every read and write of GCR/RGSR/TFSR/TFSRE0_EL1 UNDEFs. */
TEST(mte_cap, mte_regs_undef_without_mte)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	probe_mte_regs(vm, vcpu, expect_undef);
}

/* With MTE no access to the four registers traps into an exception. */
TEST(mte_cap, mte_regs_accessible_with_mte)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	probe_mte_regs(vm, vcpu, expect_no_exception);
}

/* With MTE the guest reads back what it wrote to every writable field. */
TEST(mte_cap, mte_regs_hold_guest_written_values)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_write_read_mte_regs);
	vcpu.run_until_done();
	for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++) {
		for (unsigned int i = 0; i < MTE_CAP_NR_RW_PATTERNS; i++) {
			const uint64_t got = vm.guest_var(&mte_cap_readback[reg][i]);

			if (got != mte_cap_rw_pattern(reg, i))
				ktest::record_failure(std::source_location::current(),
						      std::string(mte_regs[reg].name) + ": wrote " +
							      hex(mte_cap_rw_pattern(reg, i)) +
							      ", read back " + hex(got));
		}
	}
}

/* KVM_GET_REG_LIST lists the four MTE registers on a vCPU of an MTE VM. */
TEST(mte_cap, reg_list_includes_mte_regs_when_enabled)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);

	EXPECT_EQ(mte_regs_listed(vm.add_vcpu(0)), MTE_CAP_NR_REGS);
}

/* Without MTE none of them is listed. */
TEST(mte_cap, reg_list_hides_mte_regs_without_mte)
{
	Kvm kvm;
	Vm vm(kvm);

	EXPECT_EQ(mte_regs_listed(vm.add_vcpu(0)), 0);
}

/* KVM_SET_ONE_REG then KVM_GET_ONE_REG returns every writable pattern unchanged. */
TEST(mte_cap, one_reg_round_trip)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	for (unsigned int reg = 0; reg < MTE_CAP_NR_REGS; reg++) {
		for (unsigned int i = 0; i < MTE_CAP_NR_RW_PATTERNS; i++) {
			vcpu.set_reg(mte_regs[reg], mte_cap_rw_pattern(reg, i));
			EXPECT_EQ(vcpu.get_reg(mte_regs[reg]), mte_cap_rw_pattern(reg, i));
		}
	}
}

/* Without MTE the registers do not exist for ONE_REG: GET and SET give ENOENT. */
TEST(mte_cap, one_reg_enoent_without_mte)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	for (const reg::Reg &r : mte_regs) {
		uint64_t val;

		EXPECT_THAT(vcpu.get_reg_raw(r.id, &val), SyscallFailsWithErrno(ENOENT));
		EXPECT_THAT(vcpu.set_reg_raw(r.id, 0), SyscallFailsWithErrno(ENOENT));
	}
}

/* What the VMM sets the guest reads, and what the guest writes the VMM gets. */
TEST(mte_cap, vmm_and_guest_see_each_others_values)
{
	constexpr uint64_t round = 0;
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_exchange_mte_regs, vcpu.id(), round + 1);
	set_reg_values(vcpu, mte_cap_host_step(round));
	vcpu.expect_sync(mte_cap_exchange_stage(round, MTE_CAP_PHASE_GUEST_WROTE));
	expect_reg_values(vcpu, mte_cap_guest_step(round), "after the guest wrote it");
	vcpu.expect_sync(mte_cap_exchange_stage(round, MTE_CAP_PHASE_GUEST_REREAD));
	vcpu.run_until_done();
}

/*
 * Two vCPUs with complementary values take turns on one thread that hops
 * between host CPUs before every KVM_RUN: each vCPU must always find its own
 * values, whether set by the VMM or written by itself before an exit.
 */
TEST(mte_cap, values_survive_exits_and_migration)
{
	Kvm kvm;

	require_guest_mte(kvm);

	CpuPin pin;

	if (pin.cpus().size() < 2)
		ktest::skip("only one host CPU to run the vCPU thread on");

	Vm vm = mte_vm(kvm);
	Vcpu *vcpus[] = {&vm.add_vcpu(0), &vm.add_vcpu(1)};

	for (Vcpu *v : vcpus) {
		v->start(guest_exchange_mte_regs, v->id(), MIGRATION_ROUNDS);
		set_reg_values(*v, mte_cap_host_step(0));
	}
	for (uint64_t round = 0; round < MIGRATION_ROUNDS; round++) {
		for (Vcpu *v : vcpus) {
			pin.hop();
			v->expect_sync(mte_cap_exchange_stage(round, MTE_CAP_PHASE_GUEST_WROTE));
			expect_reg_values(*v, mte_cap_guest_step(round),
					  "round " + std::to_string(round));
		}
		for (Vcpu *v : vcpus) {
			pin.hop();
			v->expect_sync(mte_cap_exchange_stage(round, MTE_CAP_PHASE_GUEST_REREAD));
			if (round + 1 < MIGRATION_ROUNDS)
				set_reg_values(*v, mte_cap_host_step(round + 1));
		}
	}
	for (Vcpu *v : vcpus) {
		pin.hop();
		v->run_until_done();
	}
}

/* An exception KVM injects into an MTE guest enters the handler with PSTATE.TCO set. */
TEST(mte_cap, injected_exception_sets_tco)
{
	Kvm kvm;

	require_guest_mte(kvm);
	require_cap(kvm, KVM_CAP_ARM_INJECT_EXT_DABT, "cannot make KVM inject an abort");

	Vm vm = mte_vm(kvm);

	check_injected_abort(vm, true);
}

/* Without MTE the injected exception leaves PSTATE.TCO clear. */
TEST(mte_cap, injected_exception_leaves_tco_clear_without_mte)
{
	Kvm kvm;

	require_cap(kvm, KVM_CAP_ARM_INJECT_EXT_DABT, "cannot make KVM inject an abort");

	Vm vm(kvm);

	check_injected_abort(vm, false);
}

/* With MTE the tag set/way maintenance instructions complete without an exception. */
TEST(mte_cap, dc_tag_set_way_ops_complete_with_mte)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Vm vm = mte_vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_dc_tag_set_way);
	vcpu.run_until_done();
	for (unsigned int op = 0; op < MTE_CAP_NR_DC_OPS; op++)
		expect_no_exception(dc_op_names[op], vm.guest_var(&mte_cap_dc_esr[op]));
}

/* Without MTE each of them UNDEFs. */
TEST(mte_cap, dc_tag_set_way_ops_undef_without_mte)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_dc_tag_set_way);
	vcpu.run_until_done();
	for (unsigned int op = 0; op < MTE_CAP_NR_DC_OPS; op++)
		expect_undef(dc_op_names[op], vm.guest_var(&mte_cap_dc_esr[op]));
}

/*
 * Anonymous private memory, MAP_SHARED | MAP_ANONYMOUS memory (shmem) and a
 * memfd each back an MTE memslot, and the guest can tag them.
 */
constexpr ktest::Variant<Backing> TAGGABLE_BACKINGS[] = {
	{"anon_private_slot_taggable", Backing::anon_private},
	{"anon_shared_slot_taggable", Backing::anon_shared},
	{"memfd_slot_taggable", Backing::memfd},
};
TEST_VARIANTS(mte_cap, TAGGABLE_BACKINGS, expect_backing_taggable);

/* A ramfs file mapping cannot hold tags: the memslot is refused with EINVAL. */
TEST(mte_cap, ramfs_slot_refused_on_mte_vm)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Ramfs ramfs;
	FileDesc file = ramfs.create_file(DATA_SIZE);
	Mapping map = map_file(file, DATA_SIZE);
	Vm vm = mte_vm(kvm);

	EXPECT_THAT(set_data_slot(vm, map.get(), DATA_SIZE), SyscallFailsWithErrno(EINVAL));
}

/* Control: the same ramfs mapping is a working memslot of a VM without MTE. */
TEST(mte_cap, ramfs_slot_accepted_without_mte)
{
	Kvm kvm;
	Ramfs ramfs;
	FileDesc file = ramfs.create_file(DATA_SIZE);
	Mapping map = map_file(file, DATA_SIZE);
	Vm vm(kvm);

	ASSERT_THAT(set_data_slot(vm, map.get(), DATA_SIZE), SyscallSucceeds());
	expect_guest_reads_data_slot(vm, map.get(), DATA_SIZE);
}

/*
 * With one free page in the pool, MTE VM 0 tags all of its hugetlb slot and
 * goes away with the mapping; VM 1 gets the same physical page and must
 * find tag 0 in every granule, not VM 0's tags.
 */
TEST(mte_cap, hugetlb_tags_do_not_leak_between_vms)
{
	Kvm kvm;

	require_guest_mte(kvm);

	HugepageReservation reservation(1);
	uint64_t first_pfn;

	ASSERT_EQ(free_huge_pages(), 1);
	{
		Mapping map = map_hugetlb();
		Vm vm = mte_vm(kvm);

		ASSERT_THAT(set_data_slot(vm, map.get(), map.size()), SyscallSucceeds());

		const HugeScan scan = run_huge_scan(vm, MTE_CAP_HUGE_EVERY_PAGE, true);

		expect_zero_tags(scan, "VM 0", false);
		ASSERT_EQ(scan.mismatched, 0);
		first_pfn = resident_pfn(map.get(), "VM 0's huge page");
		/* vm goes first, then map: the page returns to the pool. */
	}
	ASSERT_EQ(free_huge_pages(), 1);
	expect_pool_page_untagged(first_pfn);

	Mapping map = map_hugetlb();
	Vm vm = mte_vm(kvm);

	ASSERT_THAT(set_data_slot(vm, map.get(), map.size()), SyscallSucceeds());

	const HugeScan scan = run_huge_scan(vm, MTE_CAP_HUGE_EVERY_PAGE, false);

	/* Otherwise the test proves nothing. */
	ASSERT_EQ(resident_pfn(map.get(), "VM 1's huge page"), first_pfn);
	expect_zero_tags(scan, "VM 1", true);
}

/*
 * The same between two PROT_MTE mappings of the host process: tags stored
 * through the first are not what the second, given the same pool page,
 * reads.
 */
TEST(mte_cap, hugetlb_tags_do_not_leak_between_host_mappings)
{
	if (!host_mte::supported())
		ktest::skip(NO_MTE_REASON);

	host_mte::TaggedAddrCtrl ctrl(host_mte::TagCheck::none, host_mte::INCLUDE_ALL);
	HugepageReservation reservation(1);
	uint64_t first_pfn;

	ASSERT_EQ(free_huge_pages(), 1);
	{
		Mapping map = map_hugetlb(PROT_MTE);
		auto *base = static_cast<uint8_t *>(map.get());
		const HugeScan scan = host_scan_huge_tags(base, true);

		expect_zero_tags(scan, "the first mapping", false);
		ASSERT_EQ(scan.mismatched, 0);
		first_pfn = resident_pfn(base, "the first mapping's huge page");
	}
	ASSERT_EQ(free_huge_pages(), 1);
	expect_pool_page_untagged(first_pfn);

	Mapping map = map_hugetlb(PROT_MTE);
	auto *base = static_cast<uint8_t *>(map.get());

	/* A data store faults the page in; only tag-setting instructions change tags. */
	*reinterpret_cast<volatile uint64_t *>(base) = MTE_CAP_HOST_WORD;
	/* Otherwise the test proves nothing. */
	ASSERT_EQ(resident_pfn(base, "the second mapping's huge page"), first_pfn);
	expect_zero_tags(host_scan_huge_tags(base, false), "the second mapping", true);
}

namespace
{

/*
 * A huge page of this kind backs an MTE memslot, whatever the base's
 * arch_calc_vm_flag_bits() says about MAP_HUGETLB: the guest finds tag 0
 * everywhere and can set tags, and all 512 small pages get PG_mte_tagged.
 */
void expect_hugetlb_slot_taggable(const HugetlbKind &kind)
{
	Kvm kvm;

	require_guest_mte(kvm);

	HugepageReservation reservation(1);
	HugetlbPage page(kind, 0);
	Vm vm = mte_vm(kvm);

	ASSERT_THAT(set_data_slot(vm, page.get(), page.size()), SyscallSucceeds());

	const HugeScan scan = run_huge_scan(vm, MTE_CAP_HUGE_SAMPLE_STRIDE, true);

	expect_zero_tags(scan, "the guest", false);
	EXPECT_EQ(scan.mismatched, 0);
	EXPECT_EQ(huge_subpages_flagged(resident_pfn(page.get(), "the huge page")),
		  MTE_CAP_HUGE_PAGES);
}

/* The host itself may map a huge page of this kind with PROT_MTE and use its tags. */
void expect_hugetlb_prot_mte_usable(const HugetlbKind &kind)
{
	if (!host_mte::supported())
		ktest::skip(NO_MTE_REASON);

	host_mte::TaggedAddrCtrl ctrl(host_mte::TagCheck::none, host_mte::INCLUDE_ALL);
	HugepageReservation reservation(1);
	HugetlbPage page(kind, PROT_MTE);
	const HugeScan scan = host_scan_huge_tags(static_cast<uint8_t *>(page.get()), true);

	expect_zero_tags(scan, "the host's PROT_MTE mapping", false);
	EXPECT_EQ(scan.mismatched, 0);
}

} // namespace

/*
 * Hugetlb memory of every kind backs an MTE memslot: anonymous
 * (MAP_HUGETLB), a hugetlbfs file and a memfd_create(MFD_HUGETLB) file.
 */
constexpr ktest::Variant<HugetlbKind> HUGETLB_SLOTS[] = {
	{"hugetlb_slot_accepted_on_mte_vm", HugetlbKind::anonymous},
	{"hugetlbfs_file_slot_accepted_on_mte_vm", HugetlbKind::hugetlbfs_file},
	{"hugetlb_memfd_slot_accepted_on_mte_vm", HugetlbKind::memfd},
};
TEST_VARIANTS(mte_cap, HUGETLB_SLOTS, expect_hugetlb_slot_taggable);

/* The host may map each kind with PROT_MTE and use its tags, on every supported base. */
constexpr ktest::Variant<HugetlbKind> HUGETLB_PROT_MTE[] = {
	{"anon_hugetlb_prot_mte_mapping_holds_tags", HugetlbKind::anonymous},
	{"hugetlbfs_prot_mte_mapping_holds_tags", HugetlbKind::hugetlbfs_file},
	{"hugetlb_memfd_prot_mte_mapping_holds_tags", HugetlbKind::memfd},
};
TEST_VARIANTS(mte_cap, HUGETLB_PROT_MTE, expect_hugetlb_prot_mte_usable);

/* Control: the same huge page is a working memslot of a VM without MTE. */
TEST(mte_cap, hugetlb_slot_accepted_without_mte)
{
	Kvm kvm;
	HugepageReservation reservation(1);
	Mapping map = map_hugetlb();
	Vm vm(kvm);

	ASSERT_THAT(set_data_slot(vm, map.get(), map.size()), SyscallSucceeds());
	expect_guest_reads_data_slot(vm, map.get(), map.size());
}

/* A /dev/mem mapping (VM_PFNMAP, no struct page, no tags) is refused on an MTE VM. */
TEST(mte_cap, pfnmap_slot_refused_on_mte_vm)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Mapping dev = map_devmem();
	Vm vm = mte_vm(kvm);

	EXPECT_THAT(set_data_slot(vm, dev.get(), dev.size()), SyscallFailsWithErrno(EINVAL));
}

/* Control: without MTE the same mapping is a memslot the guest reads the flash through. */
TEST(mte_cap, pfnmap_slot_accepted_without_mte)
{
	Kvm kvm;
	Mapping dev = map_devmem();
	Vm vm(kvm);
	const uint64_t host_word = *static_cast<const volatile uint64_t *>(dev.get());

	ktest::diag("first flash word as the host reads it: " + hex(host_word));
	ASSERT_THAT(set_data_slot(vm, dev.get(), dev.size()), SyscallSucceeds());
	vm.map(MTE_CAP_DATA_GPA, MTE_CAP_DATA_GPA, dev.size(), MapOptions{.attr = Stage1::device});

	Vcpu &vcpu = vm.add_vcpu(0);

	/* Differs from the flash word, so only a real load can produce it. */
	vm.guest_var(&mte_cap_word) = ~host_word;
	vcpu.start(guest_read_word, reinterpret_cast<const uint64_t *>(MTE_CAP_DATA_GPA));
	vcpu.run_until_done();
	EXPECT_EQ(vm.guest_var(&mte_cap_word), host_word);
}

/*
 * A /dev/mem memslot created before MTE is enabled, which 5.10 maps into
 * stage 2 right away: enabling MTE succeeds, and the guest's access to the
 * slot then makes KVM_RUN fail with EFAULT instead of reading untagged
 * device memory.
 */
TEST(mte_cap, pfnmap_slot_made_before_enable_faults)
{
	Kvm kvm;

	require_guest_mte(kvm);

	Mapping dev = map_devmem();
	Vm vm(kvm);

	ASSERT_THAT(set_data_slot(vm, dev.get(), dev.size()), SyscallSucceeds());
	ASSERT_THAT(vm.enable_cap(KVM_CAP_ARM_MTE), SyscallSucceeds());
	vm.map(MTE_CAP_DATA_GPA, MTE_CAP_DATA_GPA, dev.size(), MapOptions{.attr = Stage1::device});

	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_read_word, reinterpret_cast<const uint64_t *>(MTE_CAP_DATA_GPA));
	EXPECT_THAT(vcpu.run_raw(), SyscallFailsWithErrno(EFAULT));
}

namespace
{

/*
 * An MTE VM with an anonymous data slot, and a ramfs file the VMM can map
 * over the slot's memory (MAP_FIXED) behind KVM's back.
 */
struct ReplaceableSlotVm {
	Kvm kvm = mte_kvm();
	Ramfs ramfs;
	FileDesc file = ramfs.create_file(DATA_SIZE);
	Vm vm = mte_vm(kvm);
	MemRegion &data = vm.add_region({
		.slot = MTE_CAP_DATA_SLOT,
		.gpa = MTE_CAP_DATA_GPA,
		.size = DATA_SIZE,
	});

	/* The slot's memory becomes the ramfs file, which cannot hold tags. */
	void map_ramfs() const
	{
		ASSERT_NE(mmap(data.host(), DATA_SIZE, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, file.get(), 0),
			  MAP_FAILED);
	}

	/* And back to anonymous memory. */
	void map_anonymous() const
	{
		ASSERT_NE(mmap(data.host(), DATA_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
			  MAP_FAILED);
	}
};

} // namespace

/* A slot whose memory is replaced by a ramfs mapping afterwards makes KVM_RUN fail with EFAULT. */
TEST(mte_cap, replaced_slot_mapping_faults_with_efault)
{
	ReplaceableSlotVm t;
	Vcpu &vcpu = t.vm.add_vcpu(0);

	t.map_ramfs();
	vcpu.start(guest_read_word, reinterpret_cast<const uint64_t *>(t.data.gpa()));
	EXPECT_THAT(vcpu.run_raw(), SyscallFailsWithErrno(EFAULT));
}

/*
 * KVM_ARM_MTE_COPY_TAGS checks the memory behind the slot again: once it is
 * replaced by a ramfs mapping, both directions fail with EFAULT.
 */
TEST(mte_cap, replaced_slot_mapping_refused_by_copy_tags)
{
	ReplaceableSlotVm t;
	std::vector<uint8_t> tags(mte_tag_bytes(DATA_SIZE));

	ASSERT_THAT(
		mte_copy_tags(t.vm, t.data.gpa(), DATA_SIZE, tags.data(), KVM_ARM_TAGS_TO_GUEST),
		SyscallSucceedsWithValue(DATA_SIZE));
	t.map_ramfs();
	EXPECT_THAT(
		mte_copy_tags(t.vm, t.data.gpa(), DATA_SIZE, tags.data(), KVM_ARM_TAGS_TO_GUEST),
		SyscallFailsWithErrno(EFAULT));
	EXPECT_THAT(
		mte_copy_tags(t.vm, t.data.gpa(), DATA_SIZE, tags.data(), KVM_ARM_TAGS_FROM_GUEST),
		SyscallFailsWithErrno(EFAULT));
}

namespace
{

/* How long the remap race runs; every remap invalidates the slot's stage 2. */
constexpr auto REMAP_RACE_DURATION = std::chrono::seconds(3);

/* Pages of [addr, addr + len) whose PG_mte_tagged is set. */
uint64_t pages_flagged(const void *addr, uint64_t len)
{
	uint64_t n = 0;

	for (const auto &p : mm::page_info(addr, len))
		n += p.present && ((mm::kpageflags(p.pfn) >> mm::kpf::ARCH_2) & 1);
	return n;
}

} // namespace

/*
 * The VMM keeps swapping the slot's memory between anonymous memory and a
 * ramfs file (MAP_FIXED) while the guest keeps faulting on it. What the
 * fault path reads from the VMA must be used only if no invalidation came
 * since: the guest's accesses succeed or fail with EFAULT, and no page of
 * the file, which cannot hold tags, is ever given tags and mapped.
 */
TEST_TIMEOUT(mte_cap, slot_remapped_during_faults_never_maps_untaggable_pages, 20)
{
	ReplaceableSlotVm t;
	Mapping file_view = map_file(t.file, DATA_SIZE);
	Vcpu &vcpu = t.vm.add_vcpu(0);
	std::atomic<bool> stop = false;
	uint64_t remaps = 0, passes = 0, efaults = 0;

	/* The file's pages exist (and have PFNs) before the race starts. */
	std::memset(file_view.get(), 0, DATA_SIZE);
	vcpu.start(guest_read_pages_forever, t.data.gpa(), DATA_SIZE);
	run_concurrently({
		[&] {
			const auto deadline =
				std::chrono::steady_clock::now() + REMAP_RACE_DURATION;

			while (std::chrono::steady_clock::now() < deadline) {
				t.map_ramfs();
				t.map_anonymous();
				remaps++;
			}
			stop = true;
		},
		[&] {
			while (!stop) {
				const SysResult r = vcpu.run_raw();

				if (!r.ok()) {
					ASSERT_THAT(r, SyscallFailsWithErrno(EFAULT));
					efaults++;
					continue;
				}
				ASSERT_EQ(vcpu.run_state()->exit_reason, KVM_EXIT_MMIO);
				passes++;
			}
		},
	});
	ktest::diag(std::to_string(remaps) + " remaps, " + std::to_string(passes) +
		    " exits of the guest, " + std::to_string(efaults) + " EFAULTs");
	ASSERT_NE(remaps, 0);
	EXPECT_EQ(pages_flagged(file_view.get(), DATA_SIZE), 0);
}

/* Control: without MTE the guest simply reads the replacement memory. */
TEST(mte_cap, replaced_slot_mapping_usable_without_mte)
{
	Kvm kvm;
	Ramfs ramfs;
	FileDesc file = ramfs.create_file(DATA_SIZE);
	Vm vm(kvm);
	MemRegion &data = vm.add_region({
		.slot = MTE_CAP_DATA_SLOT,
		.gpa = MTE_CAP_DATA_GPA,
		.size = DATA_SIZE,
	});
	Vcpu &vcpu = vm.add_vcpu(0);

	ASSERT_NE(mmap(data.host(), DATA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       file.get(), 0),
		  MAP_FAILED);
	*reinterpret_cast<volatile uint64_t *>(data.host()) = MTE_CAP_HOST_WORD;
	vcpu.start(guest_read_word, reinterpret_cast<const uint64_t *>(data.gpa()));
	vcpu.run_until_done();
	EXPECT_EQ(vm.guest_var(&mte_cap_word), MTE_CAP_HOST_WORD);
}
