// SPDX-License-Identifier: GPL-2.0
/*
 * The one way the tests get a VM with MTE, so that they all follow one
 * rule: a host without MTE (QEMU mte=off) skips a test that needs MTE for
 * guests; a host with MTE whose KVM does not offer KVM_CAP_ARM_MTE fails
 * it, since that is the series missing or broken, not the hardware.
 */
#pragma once

#include <cstdint>
#include <source_location>
#include <string>

#include "kvm.hpp"

namespace kvmt
{

/* What every test that needs MTE for guests says when it skips under mte=off. */
std::string no_guest_mte_reason();

/* Skips the test on a host without MTE; fails it if KVM does not offer MTE on one with it. */
void require_guest_mte(const Kvm &kvm, std::source_location loc = std::source_location::current());

/* /dev/kvm, after require_guest_mte(). */
Kvm mte_kvm();

/* A VM with KVM_CAP_ARM_MTE enabled, before any vCPU exists. */
Vm mte_vm(Kvm &kvm, const VmOptions &opts = {});

/* A memslot that the guest maps with the Normal Tagged attribute. */
RegionSpec tagged_region(uint32_t slot, uint64_t gpa, uint64_t size,
			 Backing backing = Backing::anon_private, bool host_prot_mte = false,
			 bool thp = false);

} // namespace kvmt
