/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Memory Tagging Extension support for KVM guests.
 */
#ifndef __ARM64_KVM_MTE_H__
#define __ARM64_KVM_MTE_H__

#include <linux/kvm_types.h>
#include <linux/mm_types.h>

#ifdef CONFIG_ARM64_MTE

bool kvm_vma_mte_allowed(struct vm_area_struct *vma);
void kvm_mte_sanitise_pages(kvm_pfn_t pfn, unsigned long size);

#else

static inline bool kvm_vma_mte_allowed(struct vm_area_struct *vma)
{
	return false;
}

static inline void kvm_mte_sanitise_pages(kvm_pfn_t pfn, unsigned long size)
{
}

#endif /* CONFIG_ARM64_MTE */

#endif /* __ARM64_KVM_MTE_H__ */
