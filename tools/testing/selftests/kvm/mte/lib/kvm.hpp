// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side KVM objects for arm64 guest tests.
 *
 *   Kvm        /dev/kvm; SKIPs the test if KVM is unavailable.
 *   Vm         a VM with slot 0 holding the guest image and stage-1 tables;
 *              tests add data regions (identity mapped, VA == IPA) and vCPUs.
 *   Vcpu       an initialised vCPU; start() points it at a guest function,
 *              run() enters the guest and decodes the ucall it exits with.
 *   MemRegion  host memory backing one memslot.
 *
 * Raw *_raw()/ioctl_raw() calls return a SysResult for error-path tests;
 * everything else throws SysError, which fails the running test.
 */
#pragma once

#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <linux/kvm.h>

#include "guest.hpp"
#include "names.hpp"
#include "pagetable.hpp"
#include "regs.hpp"
#include "sys.hpp"
#include "test.hpp"

/* Added to the uapi by the MTE series; lets tests probe for it on older headers. */
#ifndef KVM_CAP_ARM_MTE
#define KVM_CAP_ARM_MTE 205
#endif

/* Lets EXPECT_EQ(u.cmd, UcallCmd::done) print command names. */
inline std::ostream &operator<<(std::ostream &os, UcallCmd cmd)
{
	return os << kvmt::ucall_cmd_name(cmd);
}

namespace kvmt
{

class Kvm
{
public:
	Kvm();

	int check_extension(long cap) const;
	int api_version() const;
	size_t vcpu_mmap_size() const;
	SysResult ioctl_raw(unsigned long request, unsigned long arg) const;
	int fd() const { return fd_.get(); }

private:
	FileDesc fd_;
};

enum class Backing {
	anon_private, /* MAP_PRIVATE | MAP_ANONYMOUS */
	anon_shared,  /* MAP_SHARED | MAP_ANONYMOUS */
	memfd,	      /* memfd_create() + MAP_SHARED */
};

struct RegionSpec {
	uint32_t slot = 0;
	uint64_t gpa = 0;
	uint64_t size = 0;
	Backing backing = Backing::anon_private;
	/* Also map PROT_MTE in the host, so the host can access tags. */
	bool host_prot_mte = false;
	/* 2 MiB aligned host address plus MADV_HUGEPAGE. */
	bool thp = false;
	/* KVM_MEM_READONLY, KVM_MEM_LOG_DIRTY_PAGES. */
	uint32_t flags = 0;
	/* How the guest sees it; Stage1::unmapped leaves it out of the tables. */
	MapOptions stage1 = {};
};

class MemRegion
{
public:
	explicit MemRegion(const RegionSpec &spec);

	const RegionSpec &spec() const { return spec_; }
	uint32_t slot() const { return spec_.slot; }
	uint64_t gpa() const { return spec_.gpa; }
	uint64_t size() const { return spec_.size; }
	uint8_t *host() const { return host_; }
	bool contains_gpa(uint64_t gpa) const { return gpa - spec_.gpa < spec_.size; }
	/* Argument for KVM_SET_USER_MEMORY_REGION. */
	kvm_userspace_memory_region kvm_region() const;

private:
	RegionSpec spec_;
	FileDesc memfd_;
	/* Covers the whole reservation, which exceeds size when thp aligns host_. */
	Mapping map_;
	uint8_t *host_ = nullptr;
};

/* A decoded KVM_RUN exit: a ucall, or cmd == none for any other exit. */
struct Ucall {
	UcallCmd cmd = UcallCmd::none;
	uint64_t args[UCALL_MAX_ARGS] = {};
	std::string msg;
	std::string file;
	uint64_t line = 0;
	uint32_t exit_reason = 0;
	/*
	 * For non-ucall exits: the interesting kvm_run fields, already
	 * formatted; for an unexpected exception: the instruction at ELR in
	 * guest memory against the image's.
	 */
	std::string exit_detail;

	std::string describe() const;
};

class Vm;

class Vcpu
{
public:
	Vcpu(Vm &vm, uint32_t id, FileDesc fd, size_t mmap_size);
	Vcpu(Vcpu &&) noexcept = default;
	Vcpu &operator=(Vcpu &&) noexcept = default;

	uint32_t id() const { return id_; }
	int fd() const { return fd_.get(); }
	kvm_run *run_state() const { return static_cast<kvm_run *>(run_map_.get()); }

	SysResult ioctl_raw(unsigned long request, void *arg) const;
	SysResult init_raw(std::initializer_list<uint32_t> features);

	uint64_t get_reg(const reg::Reg &r) const;
	void set_reg(const reg::Reg &r, uint64_t val);
	uint64_t get_reg(std::string_view name) const;
	void set_reg(std::string_view name, uint64_t val);
	SysResult get_reg_raw(uint64_t id, uint64_t *val) const;
	SysResult set_reg_raw(uint64_t id, uint64_t val);
	std::vector<uint64_t> get_reg_list() const;

	/*
	 * Program MMU, vectors, stack and PSTATE so the next run() calls
	 * fn(args...) at EL1 through guest_entry. Tests that need different
	 * system register values (e.g. SCTLR_EL1 tag-check bits) set them
	 * after start() and before run().
	 */
	template <typename Ret, typename... Params, typename... Args>
	void start(Ret (*fn)(Params...), Args... args)
	{
		static_assert(sizeof...(Args) == sizeof...(Params), "argument count mismatch");
		static_assert(sizeof...(Args) <= GUEST_MAX_ENTRY_ARGS, "too many arguments");
		static_assert((std::is_convertible_v<Args, Params> && ...),
			      "argument type mismatch");
		start_raw(reinterpret_cast<uint64_t>(fn), {to_u64(args)...});
	}
	void start_raw(uint64_t entry, std::initializer_list<uint64_t> args);

	SysResult run_raw();
	/* The exit of the last KVM_RUN, for callers that issue it themselves. */
	Ucall decode_exit() const;
	/* KVM_RUN until a non-PRINT exit; PRINT ucalls are logged as diagnostics. */
	Ucall run();
	/* Fails the test unless the guest reaches DONE without other exits. */
	void run_until_done(std::source_location loc = std::source_location::current());
	/* Fails the test unless the next exit is SYNC with this stage. */
	Ucall expect_sync(uint64_t stage,
			  std::source_location loc = std::source_location::current());

private:
	friend class Vm;

	template <typename T> static uint64_t to_u64(T v)
	{
		if constexpr (std::is_pointer_v<T>)
			return reinterpret_cast<uint64_t>(v);
		else
			return static_cast<uint64_t>(v);
	}

	Vm *vm_;
	uint32_t id_;
	FileDesc fd_;
	Mapping run_map_;
};

struct VmOptions {
	/* Size of slot 0 (image + page tables); the IPA space is the 40-bit default. */
	uint64_t ram_size = GUEST_RAM_DEFAULT_SIZE;
};

class Vm
{
public:
	explicit Vm(Kvm &kvm, const VmOptions &opts = {});
	/* Moves re-point the owned vCPUs at the new object. */
	Vm(Vm &&other) noexcept;
	Vm &operator=(Vm &&other) noexcept;
	Vm(const Vm &) = delete;
	Vm &operator=(const Vm &) = delete;

	int fd() const { return fd_.get(); }
	int check_extension(long cap) const;
	/* Raw result so tests can assert on the errno of a refused capability. */
	SysResult enable_cap(uint32_t cap, uint64_t flags = 0,
			     std::initializer_list<uint64_t> args = {});
	SysResult ioctl_raw(unsigned long request, void *arg) const;
	SysResult ioctl_raw(unsigned long request, unsigned long arg) const;

	/* Registers the slot with KVM and, unless unmapped, maps it VA == IPA. */
	MemRegion &add_region(const RegionSpec &spec);
	MemRegion &region(uint32_t slot);
	void map(uint64_t va, uint64_t gpa, uint64_t size, const MapOptions &opts);

	/* KVM_CREATE_VCPU + KVM_ARM_VCPU_INIT with the preferred target. */
	Vcpu &add_vcpu(uint32_t id, std::initializer_list<uint32_t> features = {});

	uint64_t page_table_root() const { return pt_.root_gpa(); }
	std::optional<uint64_t> gva_to_gpa(uint64_t gva) const;
	/* Host pointer for a guest VA (tag byte ignored); throws if unmapped. */
	void *host_ptr(uint64_t gva) const;
	void read_guest(void *dst, uint64_t gva, size_t len) const;
	std::string read_guest_string(uint64_t gva, size_t max_len = 4096) const;

	/*
	 * The guest's copy of a guest global. Guest symbols are mapped in the
	 * guest at their host link address, so &sym is also the guest VA.
	 */
	template <typename T> T &guest_var(T *sym) const
	{
		return *static_cast<T *>(host_ptr(reinterpret_cast<uint64_t>(sym)));
	}

private:
	MemRegion &slot0();

	FileDesc fd_;
	size_t vcpu_mmap_size_;
	/* deques keep element addresses stable as regions and vCPUs are added. */
	std::deque<MemRegion> regions_;
	PageTable pt_;
	std::deque<Vcpu> vcpus_;
};

template <typename T>
concept ExtensionChecker = requires(const T &t, long cap)
{
	t.check_extension(cap);
};

/* SKIP the running test unless the KVM or VM fd reports the capability. */
template <ExtensionChecker T>
void require_cap(const T &kvm_or_vm, long cap, std::string_view reason)
{
	if (kvm_or_vm.check_extension(cap) <= 0)
		ktest::skip(kvm_cap_name(cap) + " not supported: " + std::string(reason));
}

/* Runs each job on its own thread; rethrows the first exception after all joined. */
void run_concurrently(const std::vector<std::function<void()>> &jobs);

} // namespace kvmt
