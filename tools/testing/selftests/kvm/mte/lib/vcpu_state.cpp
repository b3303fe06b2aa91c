// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU state transfer for save/restore tests.
 */
#include "vcpu_state.hpp"

#include <array>
#include <cerrno>
#include <cstdint>

namespace kvmt
{

namespace
{
/* Large enough for the widest register ONE_REG moves (2048-bit SVE). */
using RegValue = std::array<uint64_t, 32>;
} // namespace

void complete_pending_mmio(Vcpu &vcpu)
{
	vcpu.run_state()->immediate_exit = 1;
	SysResult res = vcpu.run_raw();
	vcpu.run_state()->immediate_exit = 0;
	ASSERT_THAT(res, SyscallFailsWithErrno(EINTR));
}

void copy_vcpu_registers(const Vcpu &from, Vcpu &to)
{
	const std::vector<uint64_t> ids = from.get_reg_list();

	EXPECT_EQ(to.get_reg_list(), ids);
	for (uint64_t id : ids) {
		RegValue val = {};
		kvm_one_reg r = {id, reinterpret_cast<uint64_t>(val.data())};

		ASSERT_TRUE(KVM_REG_SIZE(id) <= sizeof(val));
		SysResult get = from.ioctl_raw(KVM_GET_ONE_REG, &r);
		get.op += "(" + reg::name_of(id) + ")";
		ASSERT_THAT(get, SyscallSucceeds());
		SysResult set = to.ioctl_raw(KVM_SET_ONE_REG, &r);
		set.op += "(" + reg::name_of(id) + ")";
		EXPECT_THAT(set, SyscallSucceeds());
	}
}

} // namespace kvmt
