// SPDX-License-Identifier: GPL-2.0
/*
 * MTE as seen by the host process itself (EL0): the tag instructions on host
 * pointers, the per-thread tagged address ABI (PR_SET_TAGGED_ADDR_CTRL) and
 * PROT_MTE. Lets a test act as a VMM that reads and writes the allocation
 * tags of guest memory through its own PROT_MTE mapping, or as an ordinary
 * MTE-using process next to MTE guests.
 */
#pragma once

#include <cstdint>

#include <sys/prctl.h>

/* 5.10 uapi values; older libc headers lack some of them. */
#ifndef PR_SET_TAGGED_ADDR_CTRL
#define PR_SET_TAGGED_ADDR_CTRL 55
#define PR_GET_TAGGED_ADDR_CTRL 56
#define PR_TAGGED_ADDR_ENABLE (1UL << 0)
#endif
#ifndef PR_MTE_TCF_SHIFT
#define PR_MTE_TCF_SHIFT 1
#define PR_MTE_TCF_NONE (0UL << PR_MTE_TCF_SHIFT)
#define PR_MTE_TCF_SYNC (1UL << PR_MTE_TCF_SHIFT)
#define PR_MTE_TCF_ASYNC (2UL << PR_MTE_TCF_SHIFT)
#define PR_MTE_TCF_MASK (3UL << PR_MTE_TCF_SHIFT)
#define PR_MTE_TAG_SHIFT 3
#define PR_MTE_TAG_MASK (0xffffUL << PR_MTE_TAG_SHIFT)
#endif
#ifndef PROT_MTE
#define PROT_MTE 0x20
#endif
#ifndef SEGV_MTEAERR
#define SEGV_MTEAERR 8
#endif
#ifndef SEGV_MTESERR
#define SEGV_MTESERR 9
#endif

namespace kvmt::host_mte
{

/* Every one of the 16 tags may be generated. */
constexpr uint64_t INCLUDE_ALL = 0xffff;

/* HWCAP2_MTE: the host kernel offers MTE to user space. */
bool supported();

/* Tag check fault mode of the calling thread, PR_MTE_TCF_* without the shift. */
enum class TagCheck : unsigned long {
	none = PR_MTE_TCF_NONE,
	sync = PR_MTE_TCF_SYNC,
	async = PR_MTE_TCF_ASYNC,
};

/*
 * Enables the tagged address ABI for the calling thread (5.10 keeps it per
 * thread) with a fault mode and the set of tags IRG may generate
 * (include_mask bit n allows tag n); restores the previous setting on
 * destruction, so construct and destroy on the same thread.
 */
class TaggedAddrCtrl
{
public:
	TaggedAddrCtrl(TagCheck mode, uint64_t include_mask);
	~TaggedAddrCtrl();
	TaggedAddrCtrl(const TaggedAddrCtrl &) = delete;
	TaggedAddrCtrl &operator=(const TaggedAddrCtrl &) = delete;

	/* Changes the calling thread's setting; the destructor still restores the original. */
	void set(TagCheck mode, uint64_t include_mask);

private:
	long saved_;
};

/* p with its logical tag (bits 59:56) replaced. */
void *with_tag(const void *p, uint64_t tag);
uint64_t tag_of(const void *p);

/*
 * The tag instructions, executed by the host at EL0 on memory mapped
 * PROT_MTE. irg() returns p with a random tag that honours the thread's
 * include mask; stg() stores p's logical tag as the allocation tag of the
 * 16-byte granule p points into; ldg() returns that allocation tag.
 */
void *irg(const void *p);
void stg(const void *tagged);
uint64_t ldg(const void *p);
/* One 64-bit load through p, kept by the compiler; may take a tag check fault. */
uint64_t load(const void *p);

} // namespace kvmt::host_mte
