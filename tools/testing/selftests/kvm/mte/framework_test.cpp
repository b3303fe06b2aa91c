// SPDX-License-Identifier: GPL-2.0
/*
 * Self-tests of the guest test framework itself, before any MTE test relies
 * on it: guest memory and globals are visible to the host, ucalls (SYNC,
 * ASSERT_FAIL, DONE) and exception reports carry the right data, errno
 * matchers report what KVM returned, and ONE_REG access by name works.
 */
#include <cerrno>
#include <string>

#include "framework.hpp"
#include "lib/arch.hpp"
#include "lib/kvm.hpp"
#include "lib/test.hpp"

using namespace kvmt;

namespace
{

/* An ioctl number in KVMIO's space that 5.10 does not define. */
constexpr unsigned long KVM_UNDEFINED_IOCTL = _IO(KVMIO, 0xff);
/* Far above KVM_MAX_VCPU_ID. */
constexpr unsigned long HUGE_VCPU_ID = UINT32_MAX;

constexpr uint64_t REG_TEST_X1 = 0x0123'4567'89ab'cdef;
constexpr uint64_t REG_TEST_TPIDR = 0xfeed'face'0000'1234;

} // namespace

/* Guest stores to a separate memslot and to a guest global land where the host looks. */
TEST(framework, guest_writes_memory_seen_by_host)
{
	Kvm kvm;
	Vm vm(kvm);
	MemRegion &data = vm.add_region({
		.slot = FRAMEWORK_DATA_SLOT,
		.gpa = FRAMEWORK_DATA_GPA,
		.size = FRAMEWORK_DATA_SIZE,
	});

	/* Two vCPUs on threads fill one half each: exercises per-vCPU stacks. */
	const uint64_t half_words = FRAMEWORK_DATA_SIZE / 2 / sizeof(uint64_t);
	Vcpu &v0 = vm.add_vcpu(0);
	Vcpu &v1 = vm.add_vcpu(1);
	auto *base = reinterpret_cast<uint64_t *>(FRAMEWORK_DATA_GPA);

	v0.start(guest_fill, base, half_words, uint64_t{0});
	v1.start(guest_fill, base + half_words, half_words, uint64_t{1});
	run_concurrently({[&] { v0.run_until_done(); }, [&] { v1.run_until_done(); }});

	const auto *host = reinterpret_cast<const uint64_t *>(data.host());
	uint64_t mismatches = 0;

	for (uint64_t i = 0; i < half_words; i++) {
		mismatches += host[i] != framework_pattern(0, i);
		mismatches += host[half_words + i] != framework_pattern(1, i);
	}
	EXPECT_EQ(mismatches, 0);
	/* Both vCPUs wrote it; either order is fine. */
	EXPECT_TRUE(vm.guest_var(&framework_last_seed) <= 1);

	/* SYNC round trip: the guest must see the value the host wrote in between. */
	v0.start(guest_sync_roundtrip);
	v0.expect_sync(FRAMEWORK_SYNC_BEFORE);
	vm.guest_var(&framework_host_value) = FRAMEWORK_HOST_VALUE;
	v0.expect_sync(FRAMEWORK_SYNC_AFTER);
	v0.run_until_done();
}

/* Unhandled faults reach the host decoded; handled ones let the guest carry on. */
TEST(framework, guest_exception_reports_esr)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_read_unmapped, FRAMEWORK_UNMAPPED_GVA);
	Ucall u = vcpu.run();

	ASSERT_EQ(u.cmd, UcallCmd::unexpected_exception);
	EXPECT_EQ(u.args[UCALL_EXC_VECTOR], arch::vector::SYNC_CUR_SPX);
	EXPECT_EQ(arch::esr::ec(u.args[UCALL_EXC_ESR]), arch::esr::EC_DABT_CUR);
	EXPECT_EQ(u.args[UCALL_EXC_ESR] & arch::esr::DFSC_MASK, arch::esr::DFSC_TRANSLATION_L0);
	EXPECT_EQ(u.args[UCALL_EXC_FAR], FRAMEWORK_UNMAPPED_GVA);
	ktest::diag("reported as: " + u.describe());

	vcpu.start(guest_undef_with_handler);
	vcpu.run_until_done();
}

/* A failing GUEST_ASSERT_EQ arrives with its expression, location and both values. */
TEST(framework, guest_assert_reports_values)
{
	constexpr uint64_t observed = 41;
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_assert_mismatch, observed);
	Ucall u = vcpu.run();

	ASSERT_EQ(u.cmd, UcallCmd::assert_fail);
	EXPECT_EQ(u.msg, std::string("observed == expected"));
	EXPECT_NE(u.file.find("framework_guest.cpp"), std::string::npos);
	EXPECT_EQ(u.line, vm.guest_var(&framework_assert_line));
	EXPECT_EQ(u.args[UCALL_ASSERT_HAS_VALUES], 1);
	EXPECT_EQ(u.args[UCALL_ASSERT_LHS], observed);
	EXPECT_EQ(u.args[UCALL_ASSERT_RHS], observed + 1);
}

/* Matchers and errno names report exactly what 5.10 KVM returns on bad input. */
TEST(framework, errno_helpers_on_bad_ioctl)
{
	std::string why;

	EXPECT_EQ(errno_name(EINVAL), std::string("EINVAL"));
	EXPECT_EQ(errno_name(ENOTTY), std::string("ENOTTY"));
	EXPECT_FALSE(SyscallFailsWithErrno(EINVAL).match(SysResult{0, 0, "KVM_ENABLE_CAP"}, why));
	EXPECT_EQ(why,
		  std::string("KVM_ENABLE_CAP: expected failure with EINVAL, got success (0)"));
	EXPECT_FALSE(SyscallFailsWithErrno(EINVAL).match(SysResult{-1, EFAULT, "KVM_RUN"}, why));
	EXPECT_EQ(why, std::string("KVM_RUN: expected failure with EINVAL, got EFAULT"));

	Kvm kvm;
	Vm vm(kvm);

	EXPECT_THAT(vm.ioctl_raw(KVM_CREATE_VCPU, HUGE_VCPU_ID), SyscallFailsWithErrno(EINVAL));
	/* arm64's kvm_arch_dev_ioctl() rejects unknown /dev/kvm ioctls with EINVAL, not ENOTTY. */
	EXPECT_THAT(kvm.ioctl_raw(KVM_UNDEFINED_IOCTL, 0), SyscallFailsWithErrno(EINVAL));
	EXPECT_THAT(kvm.ioctl_raw(KVM_GET_API_VERSION, 0),
		    SyscallSucceedsWithValue(KVM_API_VERSION));

	Vcpu &vcpu = vm.add_vcpu(0);
	uint64_t val;

	EXPECT_THAT(vcpu.get_reg_raw(reg::NONEXISTENT_SYSREG.id, &val),
		    SyscallFailsWithErrno(ENOENT));
}

/* ONE_REG round trips through the named register table. */
TEST(framework, get_set_one_reg_by_name)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.set_reg(reg::x(1), REG_TEST_X1);
	EXPECT_EQ(vcpu.get_reg(reg::x(1)), REG_TEST_X1);
	EXPECT_EQ(vcpu.get_reg("x1"), REG_TEST_X1);

	vcpu.set_reg(reg::TCR_EL1, stage1_tcr());
	EXPECT_EQ(vcpu.get_reg(reg::TCR_EL1), stage1_tcr());

	vcpu.set_reg("TPIDR_EL1", REG_TEST_TPIDR);
	EXPECT_EQ(vcpu.get_reg(reg::TPIDR_EL1), REG_TEST_TPIDR);

	bool has_tcr = false, has_pc = false;

	for (uint64_t id : vcpu.get_reg_list()) {
		has_tcr |= id == reg::TCR_EL1.id;
		has_pc |= id == reg::PC.id;
	}
	EXPECT_TRUE(has_tcr);
	EXPECT_TRUE(has_pc);
}
