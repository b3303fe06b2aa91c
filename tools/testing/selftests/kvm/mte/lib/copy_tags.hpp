// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM_ARM_MTE_COPY_TAGS VM ioctl, which copies the allocation tags of
 * guest memory to or from a user buffer of one tag per byte, without a
 * PROT_MTE mapping. The uapi layout is checked at compile time against
 * mainline's, which VMMs are built for.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include <linux/kvm.h>

#include "arch.hpp"
#include "kvm.hpp"
#include "sys.hpp"

/* Added to the uapi by the MTE series; older headers lack it. */
#ifndef KVM_ARM_MTE_COPY_TAGS
struct kvm_arm_copy_mte_tags {
	__u64 guest_ipa;
	__u64 length;
	void *addr;
	__u64 flags;
	__u64 reserved[2];
};
#define KVM_ARM_MTE_COPY_TAGS _IOR(KVMIO, 0xb4, struct kvm_arm_copy_mte_tags)
#define KVM_ARM_TAGS_TO_GUEST 0
#define KVM_ARM_TAGS_FROM_GUEST 1
#endif

namespace kvmt
{

/* The ABI of mainline Linux (5.14+), which unmodified VMMs use. */
namespace mainline_abi
{
constexpr unsigned long KVM_ARM_MTE_COPY_TAGS_NR = 0x8030aeb4;
constexpr size_t COPY_MTE_TAGS_SIZE = 48;
constexpr size_t GUEST_IPA_OFFSET = 0;
constexpr size_t LENGTH_OFFSET = 8;
constexpr size_t ADDR_OFFSET = 16;
constexpr size_t FLAGS_OFFSET = 24;
constexpr size_t RESERVED_OFFSET = 32;
constexpr uint64_t TAGS_TO_GUEST = 0;
constexpr uint64_t TAGS_FROM_GUEST = 1;
} // namespace mainline_abi

static_assert(KVM_ARM_MTE_COPY_TAGS == mainline_abi::KVM_ARM_MTE_COPY_TAGS_NR);
static_assert(sizeof(kvm_arm_copy_mte_tags) == mainline_abi::COPY_MTE_TAGS_SIZE);
static_assert(offsetof(kvm_arm_copy_mte_tags, guest_ipa) == mainline_abi::GUEST_IPA_OFFSET);
static_assert(offsetof(kvm_arm_copy_mte_tags, length) == mainline_abi::LENGTH_OFFSET);
static_assert(offsetof(kvm_arm_copy_mte_tags, addr) == mainline_abi::ADDR_OFFSET);
static_assert(sizeof(kvm_arm_copy_mte_tags::addr) == sizeof(uint64_t));
static_assert(offsetof(kvm_arm_copy_mte_tags, flags) == mainline_abi::FLAGS_OFFSET);
static_assert(offsetof(kvm_arm_copy_mte_tags, reserved) == mainline_abi::RESERVED_OFFSET);
static_assert(sizeof(kvm_arm_copy_mte_tags::reserved) == 2 * sizeof(uint64_t));
static_assert(KVM_ARM_TAGS_TO_GUEST == mainline_abi::TAGS_TO_GUEST);
static_assert(KVM_ARM_TAGS_FROM_GUEST == mainline_abi::TAGS_FROM_GUEST);

/* Tag buffer bytes for length bytes of guest memory: one per granule. */
constexpr uint64_t mte_tag_bytes(uint64_t length)
{
	return length / arch::mte::GRANULE_SIZE;
}

constexpr uint64_t MTE_TAG_BYTES_PER_PAGE = mte_tag_bytes(arch::PAGE_SIZE);

/*
 * KVM_ARM_MTE_COPY_TAGS on vm; the result's value is the byte count the
 * kernel returned. The op name in messages carries direction and range.
 */
SysResult mte_copy_tags(const Vm &vm, uint64_t ipa, uint64_t length, void *buf, uint64_t flags);
/* With every field, reserved ones included, as the caller filled them. */
SysResult mte_copy_tags_raw(const Vm &vm, const kvm_arm_copy_mte_tags &args);
/* Passes arg as the ioctl argument unchanged, for unreadable-struct tests. */
SysResult mte_copy_tags_at(const Vm &vm, const void *arg);

} // namespace kvmt
