// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side KVM objects, see kvm.hpp for the model. The guest image copied
 * into slot 0 is the guest_image section of this very binary; the stage-1
 * tables map it at its link address so guest code needs no relocation.
 */
#include "kvm.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <stdexcept>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

#include "arch.hpp"

/* arm64 mmap() flag for tag-checked memory; older libc headers lack it. */
#ifndef PROT_MTE
#define PROT_MTE 0x20
#endif

/* Defined by the linker around the guest_image section (see guest_image.lds). */
extern "C" const uint8_t __start_guest_image[];
extern "C" const uint8_t __stop_guest_image[];

namespace kvmt
{

namespace
{

constexpr const char *KVM_DEV_PATH = "/dev/kvm";
/* KVM_CREATE_VM machine type 0: default 40-bit IPA space on arm64. */
constexpr unsigned long VM_TYPE_DEFAULT_IPA = 0;

uint64_t page_align_up(uint64_t v)
{
	return (v + arch::PAGE_SIZE - 1) & ~(arch::PAGE_SIZE - 1);
}

uint64_t image_va()
{
	return reinterpret_cast<uint64_t>(__start_guest_image);
}

/* The linker symbols bound one section: compare addresses, not pointers. */
uint64_t image_bytes()
{
	return reinterpret_cast<uintptr_t>(__stop_guest_image) -
	       reinterpret_cast<uintptr_t>(__start_guest_image);
}

uint64_t image_size()
{
	return page_align_up(image_bytes());
}

/*
 * The instruction at a guest code address as the guest's memory holds it
 * and as the image the guest was loaded from does: different words mean a
 * wrong page under the guest, equal ones a wrong PC or register.
 */
std::string code_at(const Vm &vm, uint64_t va)
{
	uint32_t in_guest;
	uint32_t in_image;

	if (va < image_va() || va + sizeof(in_image) > image_va() + image_bytes() ||
	    va % sizeof(in_image))
		return "ELR is not in the guest image's code";
	std::memcpy(&in_image, reinterpret_cast<const void *>(va), sizeof(in_image));
	try {
		vm.read_guest(&in_guest, va, sizeof(in_guest));
	} catch (const std::exception &e) {
		return std::string("the instruction at ELR is unreadable: ") + e.what();
	}
	return "instruction at ELR " + hex(in_guest) +
	       (in_guest == in_image ? ", as in the image" : ", the image has " + hex(in_image));
}

SysResult ioctl_result(int fd, unsigned long request, unsigned long arg)
{
	return make_result(kvm_ioctl_name(request), ioctl(fd, request, arg));
}

int map_flags(Backing backing)
{
	switch (backing) {
	case Backing::anon_private:
		return MAP_PRIVATE | MAP_ANONYMOUS;
	case Backing::anon_shared:
		return MAP_SHARED | MAP_ANONYMOUS;
	case Backing::memfd:
		return MAP_SHARED;
	}
	throw std::logic_error("bad Backing");
}

/* Slot 0 holds the image first, then the page-table pool. */
std::deque<MemRegion> make_guest_ram(const VmOptions &opts)
{
	std::deque<MemRegion> regions;
	RegionSpec spec;

	if (image_size() + arch::PAGE_SIZE > opts.ram_size)
		throw std::invalid_argument("guest RAM too small for the guest image");
	spec.slot = GUEST_RAM_SLOT;
	spec.gpa = GUEST_RAM_GPA;
	spec.size = opts.ram_size;
	spec.stage1.attr = Stage1::unmapped;
	regions.emplace_back(spec);
	std::memcpy(regions.front().host(), __start_guest_image, image_bytes());
	return regions;
}

PageTable make_page_table(MemRegion &ram)
{
	return PageTable(ram.host() + image_size(), ram.gpa() + image_size(),
			 ram.size() - image_size());
}

} // namespace

Kvm::Kvm()
{
	int fd = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		ktest::skip(std::string(KVM_DEV_PATH) + " not available: " + errno_name(errno));
	fd_ = FileDesc(fd);
	if (api_version() != KVM_API_VERSION)
		throw std::runtime_error("unexpected KVM_GET_API_VERSION " +
					 std::to_string(api_version()));
}

int Kvm::check_extension(long cap) const
{
	return static_cast<int>(check(ioctl_raw(KVM_CHECK_EXTENSION, cap)));
}

int Kvm::api_version() const
{
	return static_cast<int>(check(ioctl_raw(KVM_GET_API_VERSION, 0)));
}

size_t Kvm::vcpu_mmap_size() const
{
	return static_cast<size_t>(check(ioctl_raw(KVM_GET_VCPU_MMAP_SIZE, 0)));
}

SysResult Kvm::ioctl_raw(unsigned long request, unsigned long arg) const
{
	return ioctl_result(fd_.get(), request, arg);
}

MemRegion::MemRegion(const RegionSpec &spec) : spec_(spec)
{
	const uint64_t align = spec.thp ? arch::BLOCK_SIZE_2M : arch::PAGE_SIZE;
	const int prot = PROT_READ | PROT_WRITE | (spec.host_prot_mte ? PROT_MTE : 0);
	const std::string op = spec.host_prot_mte ? "mmap(PROT_MTE)" : "mmap";
	int fd = -1;

	if (!spec.size || spec.size % arch::PAGE_SIZE || spec.gpa % arch::PAGE_SIZE)
		throw std::invalid_argument("memory region size/IPA not page aligned");

	if (spec.backing == Backing::memfd) {
		memfd_ = FileDesc(static_cast<int>(check(
			make_result("memfd_create", memfd_create("kvm_mte_region", MFD_CLOEXEC)))));
		check(make_result("ftruncate", ftruncate(memfd_.get(), spec.size)));
		fd = memfd_.get();
	}

	/*
	 * Reserve with slack so the real mapping can be placed at the
	 * alignment THP needs, then map over the reservation.
	 */
	map_ = Mapping::map("mmap(reserve)", nullptr, spec.size + align - arch::PAGE_SIZE,
			    PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	host_ = reinterpret_cast<uint8_t *>((reinterpret_cast<uint64_t>(map_.get()) + align - 1) &
					    ~(align - 1));
	if (mmap(host_, spec.size, prot, map_flags(spec.backing) | MAP_FIXED, fd, 0) == MAP_FAILED)
		throw SysError(op, errno);
	if (spec.thp)
		check(make_result("madvise(MADV_HUGEPAGE)",
				  madvise(host_, spec.size, MADV_HUGEPAGE)));
}

kvm_userspace_memory_region MemRegion::kvm_region() const
{
	kvm_userspace_memory_region r = {};

	r.slot = spec_.slot;
	r.flags = spec_.flags;
	r.guest_phys_addr = spec_.gpa;
	r.memory_size = spec_.size;
	r.userspace_addr = reinterpret_cast<uint64_t>(host_);
	return r;
}

std::string Ucall::describe() const
{
	switch (cmd) {
	case UcallCmd::none:
		return kvm_exit_name(exit_reason) + (exit_detail.empty() ? "" : ": " + exit_detail);
	case UcallCmd::sync:
		return "SYNC stage " + std::to_string(args[UCALL_SYNC_STAGE]);
	case UcallCmd::print:
		return "PRINT " + msg + " " + hex(args[0]);
	case UcallCmd::done:
		return "DONE";
	case UcallCmd::assert_fail: {
		std::string s = "guest assertion failed at " + file + ":" + std::to_string(line) +
				": " + msg;

		if (args[UCALL_ASSERT_HAS_VALUES])
			s += "\n  left:  " + ktest::format_value(args[UCALL_ASSERT_LHS]) +
			     "\n  right: " + ktest::format_value(args[UCALL_ASSERT_RHS]);
		return s;
	}
	case UcallCmd::unexpected_exception:
		return "unexpected guest exception at vector " +
		       vector_name(args[UCALL_EXC_VECTOR]) + ": " +
		       esr_class_name(args[UCALL_EXC_ESR]) + ", ESR " + hex(args[UCALL_EXC_ESR]) +
		       ", FAR " + hex(args[UCALL_EXC_FAR]) + ", ELR " + hex(args[UCALL_EXC_ELR]) +
		       (exit_detail.empty() ? "" : "; " + exit_detail);
	}
	return "unknown ucall command " + std::to_string(static_cast<uint64_t>(cmd));
}

Vcpu::Vcpu(Vm &vm, uint32_t id, FileDesc fd, size_t mmap_size)
	: vm_(&vm), id_(id), fd_(std::move(fd)),
	  run_map_(Mapping::map("mmap(kvm_run)", nullptr, mmap_size, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd_.get(), 0))
{
}

SysResult Vcpu::ioctl_raw(unsigned long request, void *arg) const
{
	return ioctl_result(fd_.get(), request, reinterpret_cast<unsigned long>(arg));
}

SysResult Vcpu::init_raw(std::initializer_list<uint32_t> features)
{
	constexpr unsigned int bits_per_word = 32;
	kvm_vcpu_init init = {};

	check(vm_->ioctl_raw(KVM_ARM_PREFERRED_TARGET, &init));
	for (uint32_t f : features) {
		if (f / bits_per_word >= std::size(init.features))
			throw std::invalid_argument("vCPU feature bit out of range");
		init.features[f / bits_per_word] |= 1u << (f % bits_per_word);
	}
	return ioctl_raw(KVM_ARM_VCPU_INIT, &init);
}

SysResult Vcpu::get_reg_raw(uint64_t id, uint64_t *val) const
{
	kvm_one_reg r = {id, reinterpret_cast<uint64_t>(val)};
	SysResult res = ioctl_raw(KVM_GET_ONE_REG, &r);

	res.op += "(" + reg::name_of(id) + ")";
	return res;
}

SysResult Vcpu::set_reg_raw(uint64_t id, uint64_t val)
{
	kvm_one_reg r = {id, reinterpret_cast<uint64_t>(&val)};
	SysResult res = ioctl_raw(KVM_SET_ONE_REG, &r);

	res.op += "(" + reg::name_of(id) + ")";
	return res;
}

uint64_t Vcpu::get_reg(const reg::Reg &r) const
{
	uint64_t val;

	check(get_reg_raw(r.id, &val));
	return val;
}

void Vcpu::set_reg(const reg::Reg &r, uint64_t val)
{
	check(set_reg_raw(r.id, val));
}

namespace
{

reg::Reg reg_by_name(std::string_view name)
{
	auto r = reg::find(name);

	if (!r)
		throw std::invalid_argument("unknown register name " + std::string(name));
	return *r;
}

} // namespace

uint64_t Vcpu::get_reg(std::string_view name) const
{
	return get_reg(reg_by_name(name));
}

void Vcpu::set_reg(std::string_view name, uint64_t val)
{
	set_reg(reg_by_name(name), val);
}

std::vector<uint64_t> Vcpu::get_reg_list() const
{
	kvm_reg_list probe = {};
	SysResult res = ioctl_raw(KVM_GET_REG_LIST, &probe);

	/* The first call only learns the count: KVM reports it with E2BIG. */
	if (res.ok())
		throw std::runtime_error(res.op + " with n = 0 unexpectedly succeeded");
	if (res.err != E2BIG)
		throw SysError(res.op, res.err);

	std::vector<uint64_t> buf(1 + probe.n);
	auto *list = reinterpret_cast<kvm_reg_list *>(buf.data());

	static_assert(sizeof(kvm_reg_list) == sizeof(uint64_t));
	list->n = probe.n;
	check(ioctl_raw(KVM_GET_REG_LIST, list));
	return std::vector<uint64_t>(list->reg, list->reg + list->n);
}

void Vcpu::start_raw(uint64_t entry, std::initializer_list<uint64_t> args)
{
	using namespace arch;
	unsigned int n = 1;

	if (id_ >= GUEST_MAX_VCPUS)
		throw std::invalid_argument("vCPU id " + std::to_string(id_) +
					    " has no guest stack");
	if (args.size() > GUEST_MAX_ENTRY_ARGS)
		throw std::invalid_argument("too many guest entry arguments");

	set_reg(reg::MAIR_EL1, mair::VALUE);
	set_reg(reg::TCR_EL1, stage1_tcr());
	set_reg(reg::TTBR0_EL1, vm_->page_table_root());
	set_reg(reg::VBAR_EL1, reinterpret_cast<uint64_t>(guest_vectors));
	set_reg(reg::CPACR_EL1, cpacr::FPEN_NO_TRAP << cpacr::FPEN_SHIFT);
	set_reg(reg::SCTLR_EL1, sctlr::GUEST_DEFAULT);
	set_reg(reg::SP_EL1, reinterpret_cast<uint64_t>(guest_stacks[id_] + GUEST_STACK_SIZE));
	set_reg(reg::PSTATE, PSR_MODE_EL1h | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT);
	set_reg(reg::PC, reinterpret_cast<uint64_t>(&guest_entry));
	set_reg(reg::x(0), entry);
	for (uint64_t a : args)
		set_reg(reg::x(n++), a);
}

SysResult Vcpu::run_raw()
{
	return ioctl_result(fd_.get(), KVM_RUN, 0);
}

Ucall Vcpu::decode_exit() const
{
	const kvm_run *r = run_state();
	Ucall u;

	u.exit_reason = r->exit_reason;
	switch (r->exit_reason) {
	case KVM_EXIT_MMIO:
		if (r->mmio.phys_addr == UCALL_MMIO_GPA && r->mmio.is_write &&
		    r->mmio.len == sizeof(uint64_t)) {
			uint64_t gva;
			struct ucall uc;

			std::memcpy(&gva, r->mmio.data, sizeof(gva));
			vm_->read_guest(&uc, gva, sizeof(uc));
			u.cmd = uc.cmd;
			std::copy(std::begin(uc.args), std::end(uc.args), u.args);
			if (uc.msg)
				u.msg = vm_->read_guest_string(uc.msg);
			if (uc.file)
				u.file = vm_->read_guest_string(uc.file);
			u.line = uc.line;
			if (u.cmd == UcallCmd::unexpected_exception)
				u.exit_detail = code_at(*vm_, u.args[UCALL_EXC_ELR]);
			return u;
		}
		u.exit_detail = std::string(r->mmio.is_write ? "write" : "read") + " of " +
				std::to_string(r->mmio.len) + " bytes at IPA " +
				hex(r->mmio.phys_addr);
		break;
	case KVM_EXIT_ARM_NISV:
		u.exit_detail = "esr_iss " + hex(r->arm_nisv.esr_iss) + ", fault_ipa " +
				hex(r->arm_nisv.fault_ipa);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		u.exit_detail = "hardware_entry_failure_reason " +
				hex(r->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		u.exit_detail = "type " + std::to_string(r->system_event.type);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		u.exit_detail = "suberror " + std::to_string(r->internal.suberror);
		break;
	}
	return u;
}

Ucall Vcpu::run()
{
	for (;;) {
		check(run_raw());

		Ucall u = decode_exit();

		if (u.cmd != UcallCmd::print)
			return u;
		ktest::diag("guest vCPU " + std::to_string(id_) + ": " + u.msg + " " +
			    hex(u.args[0]));
	}
}

void Vcpu::run_until_done(std::source_location loc)
{
	Ucall u = run();

	if (u.cmd != UcallCmd::done)
		ktest::fail(loc,
			    "vCPU " + std::to_string(id_) + ": expected DONE, got " + u.describe());
}

Ucall Vcpu::expect_sync(uint64_t stage, std::source_location loc)
{
	Ucall u = run();

	if (u.cmd != UcallCmd::sync || u.args[UCALL_SYNC_STAGE] != stage)
		ktest::fail(loc, "vCPU " + std::to_string(id_) + ": expected SYNC stage " +
					 std::to_string(stage) + ", got " + u.describe());
	return u;
}

Vm::Vm(Kvm &kvm, const VmOptions &opts)
	: fd_(static_cast<int>(check(kvm.ioctl_raw(KVM_CREATE_VM, VM_TYPE_DEFAULT_IPA)))),
	  vcpu_mmap_size_(kvm.vcpu_mmap_size()), regions_(make_guest_ram(opts)),
	  pt_(make_page_table(regions_.front()))
{
	kvm_userspace_memory_region ram = slot0().kvm_region();
	MapOptions mmio;

	check(ioctl_raw(KVM_SET_USER_MEMORY_REGION, &ram));
	map(image_va(), GUEST_RAM_GPA, image_size(), MapOptions{});
	mmio.attr = Stage1::device;
	map(UCALL_MMIO_GPA, UCALL_MMIO_GPA, arch::PAGE_SIZE, mmio);
}

Vm::Vm(Vm &&other) noexcept
	: fd_(std::move(other.fd_)), vcpu_mmap_size_(other.vcpu_mmap_size_),
	  regions_(std::move(other.regions_)), pt_(other.pt_), vcpus_(std::move(other.vcpus_))
{
	for (Vcpu &v : vcpus_)
		v.vm_ = this;
}

Vm &Vm::operator=(Vm &&other) noexcept
{
	if (this != &other) {
		/* vCPUs first: they must not outlive the VM fd they belong to. */
		vcpus_ = std::move(other.vcpus_);
		fd_ = std::move(other.fd_);
		vcpu_mmap_size_ = other.vcpu_mmap_size_;
		regions_ = std::move(other.regions_);
		pt_ = other.pt_;
		for (Vcpu &v : vcpus_)
			v.vm_ = this;
	}
	return *this;
}

MemRegion &Vm::slot0()
{
	return regions_.front();
}

int Vm::check_extension(long cap) const
{
	return static_cast<int>(check(ioctl_raw(KVM_CHECK_EXTENSION, cap)));
}

SysResult Vm::enable_cap(uint32_t cap, uint64_t flags, std::initializer_list<uint64_t> args)
{
	kvm_enable_cap c = {};

	if (args.size() > std::size(c.args))
		throw std::invalid_argument("too many KVM_ENABLE_CAP arguments");
	c.cap = cap;
	c.flags = static_cast<uint32_t>(flags);
	std::copy(args.begin(), args.end(), c.args);
	return ioctl_raw(KVM_ENABLE_CAP, &c);
}

SysResult Vm::ioctl_raw(unsigned long request, void *arg) const
{
	return ioctl_result(fd_.get(), request, reinterpret_cast<unsigned long>(arg));
}

SysResult Vm::ioctl_raw(unsigned long request, unsigned long arg) const
{
	return ioctl_result(fd_.get(), request, arg);
}

MemRegion &Vm::add_region(const RegionSpec &spec)
{
	MemRegion r(spec);
	kvm_userspace_memory_region kr = r.kvm_region();

	check(ioctl_raw(KVM_SET_USER_MEMORY_REGION, &kr));
	regions_.push_back(std::move(r));
	if (spec.stage1.attr != Stage1::unmapped)
		map(spec.gpa, spec.gpa, spec.size, spec.stage1);
	return regions_.back();
}

MemRegion &Vm::region(uint32_t slot)
{
	for (MemRegion &r : regions_)
		if (r.slot() == slot)
			return r;
	throw std::invalid_argument("no memory region in slot " + std::to_string(slot));
}

void Vm::map(uint64_t va, uint64_t gpa, uint64_t size, const MapOptions &opts)
{
	pt_.map(va, gpa, size, opts);
}

Vcpu &Vm::add_vcpu(uint32_t id, std::initializer_list<uint32_t> features)
{
	FileDesc fd(static_cast<int>(check(ioctl_raw(KVM_CREATE_VCPU, id))));
	Vcpu &v = vcpus_.emplace_back(*this, id, std::move(fd), vcpu_mmap_size_);

	check(v.init_raw(features));
	return v;
}

std::optional<uint64_t> Vm::gva_to_gpa(uint64_t gva) const
{
	return pt_.translate(gva);
}

void *Vm::host_ptr(uint64_t gva) const
{
	const auto gpa = gva_to_gpa(gva);

	if (!gpa)
		throw std::runtime_error("guest VA " + hex(gva) + " is not mapped in stage 1");
	for (const MemRegion &r : regions_)
		if (r.contains_gpa(*gpa))
			return r.host() + (*gpa - r.gpa());
	throw std::runtime_error("IPA " + hex(*gpa) + " (guest VA " + hex(gva) +
				 ") is not backed by a memslot");
}

void Vm::read_guest(void *dst, uint64_t gva, size_t len) const
{
	auto *out = static_cast<uint8_t *>(dst);

	/* Page by page: contiguous guest VAs need not be contiguous in the host. */
	while (len) {
		const size_t chunk =
			std::min<uint64_t>(len, arch::PAGE_SIZE - gva % arch::PAGE_SIZE);

		std::memcpy(out, host_ptr(gva), chunk);
		out += chunk;
		gva += chunk;
		len -= chunk;
	}
}

std::string Vm::read_guest_string(uint64_t gva, size_t max_len) const
{
	std::string s;

	while (s.size() < max_len) {
		const char c = *static_cast<const char *>(host_ptr(gva++));

		if (!c)
			break;
		s += c;
	}
	return s;
}

void run_concurrently(const std::vector<std::function<void()>> &jobs)
{
	std::vector<std::exception_ptr> errors(jobs.size());
	std::vector<std::thread> threads;

	for (size_t i = 0; i < jobs.size(); i++)
		threads.emplace_back([&, i] {
			try {
				jobs[i]();
			} catch (...) {
				errors[i] = std::current_exception();
			}
		});
	for (auto &t : threads)
		t.join();
	for (auto &e : errors)
		if (e)
			std::rethrow_exception(e);
}

} // namespace kvmt
