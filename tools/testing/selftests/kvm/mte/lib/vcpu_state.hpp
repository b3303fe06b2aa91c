// SPDX-License-Identifier: GPL-2.0
/*
 * Moving a vCPU's state to another vCPU the way a VMM saves and restores a
 * guest: every register KVM_GET_REG_LIST names, through ONE_REG.
 */
#pragma once

#include "kvm.hpp"

namespace kvmt
{

/*
 * KVM completes the MMIO store of the last ucall at the start of the next
 * KVM_RUN by skipping the instruction. Do that now, without entering the
 * guest, before the vCPU's state is saved or an exception is injected.
 */
void complete_pending_mmio(Vcpu &vcpu);

/* Copies every register of from's KVM_GET_REG_LIST into to; fails the test on any error. */
void copy_vcpu_registers(const Vcpu &from, Vcpu &to);

} // namespace kvmt
