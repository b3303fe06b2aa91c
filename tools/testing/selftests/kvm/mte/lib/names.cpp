// SPDX-License-Identifier: GPL-2.0
/*
 * Name tables behind names.hpp. Entries use the uapi macros themselves, so
 * each name is exactly the constant a reader would grep for.
 */
#include "names.hpp"

#include <csignal>
#include <cstdio>
#include <linux/kvm.h>

#include "arch.hpp"
#include "kvm.hpp"

namespace kvmt
{

namespace
{

struct NameEntry {
	unsigned long value;
	const char *name;
};

constexpr NameEntry name_entry(unsigned long value, const char *name)
{
	return {value, name};
}

#define NAME_ENTRY(c) name_entry(static_cast<unsigned long>(c), #c)

constexpr NameEntry exit_names[] = {
	NAME_ENTRY(KVM_EXIT_UNKNOWN),
	NAME_ENTRY(KVM_EXIT_EXCEPTION),
	NAME_ENTRY(KVM_EXIT_IO),
	NAME_ENTRY(KVM_EXIT_HYPERCALL),
	NAME_ENTRY(KVM_EXIT_DEBUG),
	NAME_ENTRY(KVM_EXIT_HLT),
	NAME_ENTRY(KVM_EXIT_MMIO),
	NAME_ENTRY(KVM_EXIT_IRQ_WINDOW_OPEN),
	NAME_ENTRY(KVM_EXIT_SHUTDOWN),
	NAME_ENTRY(KVM_EXIT_FAIL_ENTRY),
	NAME_ENTRY(KVM_EXIT_INTR),
	NAME_ENTRY(KVM_EXIT_NMI),
	NAME_ENTRY(KVM_EXIT_INTERNAL_ERROR),
	NAME_ENTRY(KVM_EXIT_WATCHDOG),
	NAME_ENTRY(KVM_EXIT_SYSTEM_EVENT),
	NAME_ENTRY(KVM_EXIT_ARM_NISV),
};

/* The ioctls this library issues; others print numerically. */
constexpr NameEntry ioctl_names[] = {
	NAME_ENTRY(KVM_GET_API_VERSION),
	NAME_ENTRY(KVM_CREATE_VM),
	NAME_ENTRY(KVM_CHECK_EXTENSION),
	NAME_ENTRY(KVM_GET_VCPU_MMAP_SIZE),
	NAME_ENTRY(KVM_CREATE_VCPU),
	NAME_ENTRY(KVM_SET_USER_MEMORY_REGION),
	NAME_ENTRY(KVM_ENABLE_CAP),
	NAME_ENTRY(KVM_GET_DIRTY_LOG),
	NAME_ENTRY(KVM_RUN),
	NAME_ENTRY(KVM_GET_ONE_REG),
	NAME_ENTRY(KVM_SET_ONE_REG),
	NAME_ENTRY(KVM_GET_REG_LIST),
	NAME_ENTRY(KVM_ARM_PREFERRED_TARGET),
	NAME_ENTRY(KVM_ARM_VCPU_INIT),
	NAME_ENTRY(KVM_ARM_VCPU_FINALIZE),
	NAME_ENTRY(KVM_SET_DEVICE_ATTR),
	NAME_ENTRY(KVM_GET_DEVICE_ATTR),
	NAME_ENTRY(KVM_CREATE_DEVICE),
};

constexpr NameEntry cap_names[] = {
	NAME_ENTRY(KVM_CAP_USER_MEMORY),
	NAME_ENTRY(KVM_CAP_SYNC_MMU),
	NAME_ENTRY(KVM_CAP_ONE_REG),
	NAME_ENTRY(KVM_CAP_READONLY_MEM),
	NAME_ENTRY(KVM_CAP_NR_VCPUS),
	NAME_ENTRY(KVM_CAP_MAX_VCPUS),
	NAME_ENTRY(KVM_CAP_MAX_VCPU_ID),
	NAME_ENTRY(KVM_CAP_NR_MEMSLOTS),
	NAME_ENTRY(KVM_CAP_CHECK_EXTENSION_VM),
	NAME_ENTRY(KVM_CAP_ARM_PSCI_0_2),
	NAME_ENTRY(KVM_CAP_ARM_EL1_32BIT),
	NAME_ENTRY(KVM_CAP_ARM_PMU_V3),
	NAME_ENTRY(KVM_CAP_ARM_VM_IPA_SIZE),
	NAME_ENTRY(KVM_CAP_ARM_SVE),
	NAME_ENTRY(KVM_CAP_ARM_PTRAUTH_ADDRESS),
	NAME_ENTRY(KVM_CAP_ARM_PTRAUTH_GENERIC),
	NAME_ENTRY(KVM_CAP_ARM_INJECT_SERROR_ESR),
	NAME_ENTRY(KVM_CAP_ARM_INJECT_EXT_DABT),
	NAME_ENTRY(KVM_CAP_ARM_NISV_TO_USER),
	NAME_ENTRY(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2),
	NAME_ENTRY(KVM_CAP_ARM_MTE),
};

/* Linux's signals on arm64: what a test that dies is reported as. */
constexpr NameEntry signal_names[] = {
	NAME_ENTRY(SIGHUP),  NAME_ENTRY(SIGINT),    NAME_ENTRY(SIGQUIT), NAME_ENTRY(SIGILL),
	NAME_ENTRY(SIGTRAP), NAME_ENTRY(SIGABRT),   NAME_ENTRY(SIGBUS),	 NAME_ENTRY(SIGFPE),
	NAME_ENTRY(SIGKILL), NAME_ENTRY(SIGUSR1),   NAME_ENTRY(SIGSEGV), NAME_ENTRY(SIGUSR2),
	NAME_ENTRY(SIGPIPE), NAME_ENTRY(SIGALRM),   NAME_ENTRY(SIGTERM), NAME_ENTRY(SIGSTKFLT),
	NAME_ENTRY(SIGCHLD), NAME_ENTRY(SIGCONT),   NAME_ENTRY(SIGSTOP), NAME_ENTRY(SIGTSTP),
	NAME_ENTRY(SIGTTIN), NAME_ENTRY(SIGTTOU),   NAME_ENTRY(SIGURG),	 NAME_ENTRY(SIGXCPU),
	NAME_ENTRY(SIGXFSZ), NAME_ENTRY(SIGVTALRM), NAME_ENTRY(SIGPROF), NAME_ENTRY(SIGWINCH),
	NAME_ENTRY(SIGIO),   NAME_ENTRY(SIGPWR),    NAME_ENTRY(SIGSYS),
};

#undef NAME_ENTRY

struct EcEntry {
	uint64_t ec;
	const char *name;
};

/* Names follow the kernel's ESR_ELx_EC_* suffixes. */
constexpr EcEntry ec_names[] = {
	{0x00, "UNKNOWN"},     {0x01, "WFx"},	      {0x03, "CP15_32"},     {0x04, "CP15_64"},
	{0x05, "CP14_MR"},     {0x06, "CP14_LS"},     {0x07, "FP_ASIMD"},    {0x08, "CP10_ID"},
	{0x09, "PAC"},	       {0x0c, "CP14_64"},     {0x0d, "BTI"},	     {0x0e, "ILL"},
	{0x11, "SVC32"},       {0x12, "HVC32"},	      {0x13, "SMC32"},	     {0x15, "SVC64"},
	{0x16, "HVC64"},       {0x17, "SMC64"},	      {0x18, "SYS64"},	     {0x19, "SVE"},
	{0x1a, "ERET"},	       {0x1c, "FPAC"},	      {0x1f, "IMP_DEF"},     {0x20, "IABT_LOW"},
	{0x21, "IABT_CUR"},    {0x22, "PC_ALIGN"},    {0x24, "DABT_LOW"},    {0x25, "DABT_CUR"},
	{0x26, "SP_ALIGN"},    {0x28, "FP_EXC32"},    {0x2c, "FP_EXC64"},    {0x2f, "SERROR"},
	{0x30, "BREAKPT_LOW"}, {0x31, "BREAKPT_CUR"}, {0x32, "SOFTSTP_LOW"}, {0x33, "SOFTSTP_CUR"},
	{0x34, "WATCHPT_LOW"}, {0x35, "WATCHPT_CUR"}, {0x38, "BKPT32"},	     {0x3a, "VECTOR32"},
	{0x3c, "BRK64"},
};

template <typename Table> const char *lookup(const Table &table, unsigned long value)
{
	for (const auto &e : table)
		if (e.value == value)
			return e.name;
	return nullptr;
}

std::string named_or_number(const char *name, const char *kind, unsigned long value)
{
	return name ? std::string(name) : std::string(kind) + " " + hex(value);
}

} // namespace

std::string hex(uint64_t v)
{
	char buf[24];

	std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
	return buf;
}

std::string kvm_exit_name(uint32_t reason)
{
	return named_or_number(lookup(exit_names, reason), "exit reason", reason);
}

std::string kvm_ioctl_name(unsigned long request)
{
	return named_or_number(lookup(ioctl_names, request), "ioctl", request);
}

std::string kvm_cap_name(long cap)
{
	return named_or_number(lookup(cap_names, static_cast<unsigned long>(cap)), "KVM_CAP",
			       static_cast<unsigned long>(cap));
}

std::string signal_name(int sig)
{
	const char *name =
		sig > 0 ? lookup(signal_names, static_cast<unsigned long>(sig)) : nullptr;

	return name ? std::string(name) : "signal " + std::to_string(sig);
}

std::string esr_class_name(uint64_t esr)
{
	const uint64_t ec = arch::esr::ec(esr);

	char prefix[16];

	std::snprintf(prefix, sizeof(prefix), "EC 0x%02llx ", static_cast<unsigned long long>(ec));
	for (const auto &e : ec_names)
		if (e.ec == ec)
			return prefix + std::string(e.name);
	return prefix + std::string("(reserved)");
}

std::string ucall_cmd_name(UcallCmd cmd)
{
	switch (cmd) {
	case UcallCmd::none:
		return "none (not a ucall)";
	case UcallCmd::sync:
		return "SYNC";
	case UcallCmd::assert_fail:
		return "ASSERT_FAIL";
	case UcallCmd::print:
		return "PRINT";
	case UcallCmd::done:
		return "DONE";
	case UcallCmd::unexpected_exception:
		return "UNEXPECTED_EXCEPTION";
	}
	return "ucall " + std::to_string(static_cast<uint64_t>(cmd));
}

std::string vector_name(uint64_t index)
{
	static const char *const kinds[] = {"sync", "IRQ", "FIQ", "SError"};
	static const char *const origins[] = {"current EL with SP0", "current EL with SPx",
					      "lower EL AArch64", "lower EL AArch32"};
	constexpr unsigned int kinds_per_origin = 4;

	if (index >= arch::vector::COUNT)
		return "vector " + std::to_string(index) + " (invalid)";
	return std::to_string(index) + " (" + kinds[index % kinds_per_origin] + ", " +
	       origins[index / kinds_per_origin] + ")";
}

} // namespace kvmt
