// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory Tagging Extension support for KVM guests.
 *
 * A guest with MTE has allocation tags for all of its memory. KVM keeps
 * every page it maps into such a guest PG_mte_tagged, so that the host's
 * memory management (swap, migration, compaction, hibernation, KSM) treats
 * the tags as part of the page's content and never loses them.
 */

#include <linux/kvm_host.h>
#include <linux/mm.h>

#include <asm/kvm_mte.h>
#include <asm/mte.h>

/* Only memory whose tags the host preserves can back an MTE guest. */
bool kvm_vma_mte_allowed(struct vm_area_struct *vma)
{
	return vma->vm_flags & VM_MTE_ALLOWED;
}

/*
 * Give every page of [pfn, pfn + size) valid tags before the guest can see
 * it. A page that is already tagged keeps its tags: they were written by
 * the guest before a swap or a migration, by the VMM, or by a host PROT_MTE
 * mapping of the same page.
 */
void kvm_mte_sanitise_pages(kvm_pfn_t pfn, unsigned long size)
{
	unsigned long i, nr_pages = size >> PAGE_SHIFT;
	struct page *page = pfn_to_page(pfn);

	/* The zero page's tags were cleared at boot; it is not ours to flag. */
	if (is_zero_pfn(pfn))
		return;

	/*
	 * A THP or hugetlb page is tagged as a whole however little of it is
	 * mapped, see mte_ensure_compound_tags(). That includes the huge zero
	 * page, whose tags nobody cleared before.
	 */
	if (PageCompound(page)) {
		mte_ensure_compound_tags(page);
		return;
	}

	for (i = 0; i < nr_pages; i++, page++)
		mte_ensure_page_tags(page);
}
