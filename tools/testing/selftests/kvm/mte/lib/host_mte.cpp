// SPDX-License-Identifier: GPL-2.0
/*
 * Host (EL0) MTE helpers, see host_mte.hpp. The host objects are built for
 * the base architecture, so only the functions holding tag instructions are
 * compiled for ARMv8.5-A with MTE.
 */
#include "host_mte.hpp"

#include <cerrno>
#include <sys/auxv.h>

#include <asm/hwcap.h>

#include "arch.hpp"
#include "sys.hpp"

#define MTE_INSNS __attribute__((target("arch=armv8.5-a+memtag")))

namespace kvmt::host_mte
{

namespace
{

long ctrl_value(TagCheck mode, uint64_t include_mask)
{
	return static_cast<long>(PR_TAGGED_ADDR_ENABLE | static_cast<unsigned long>(mode) |
				 ((include_mask << PR_MTE_TAG_SHIFT) & PR_MTE_TAG_MASK));
}

} // namespace

bool supported()
{
	return getauxval(AT_HWCAP2) & HWCAP2_MTE;
}

TaggedAddrCtrl::TaggedAddrCtrl(TagCheck mode, uint64_t include_mask)
	: saved_(check(make_result("prctl(PR_GET_TAGGED_ADDR_CTRL)",
				   prctl(PR_GET_TAGGED_ADDR_CTRL, 0, 0, 0, 0))))
{
	set(mode, include_mask);
}

TaggedAddrCtrl::~TaggedAddrCtrl()
{
	prctl(PR_SET_TAGGED_ADDR_CTRL, saved_, 0, 0, 0);
}

void TaggedAddrCtrl::set(TagCheck mode, uint64_t include_mask)
{
	check(make_result("prctl(PR_SET_TAGGED_ADDR_CTRL)",
			  prctl(PR_SET_TAGGED_ADDR_CTRL, ctrl_value(mode, include_mask), 0, 0, 0)));
}

void *with_tag(const void *p, uint64_t tag)
{
	return reinterpret_cast<void *>(arch::mte::with_tag(reinterpret_cast<uint64_t>(p), tag));
}

uint64_t tag_of(const void *p)
{
	return arch::mte::tag_of(reinterpret_cast<uint64_t>(p));
}

MTE_INSNS void *irg(const void *p)
{
	void *tagged;

	asm volatile("irg %0, %1" : "=r"(tagged) : "r"(p));
	return tagged;
}

MTE_INSNS void stg(const void *tagged)
{
	asm volatile("stg %0, [%0]" : : "r"(tagged) : "memory");
}

MTE_INSNS uint64_t ldg(const void *p)
{
	uint64_t v = reinterpret_cast<uint64_t>(p);

	asm volatile("ldg %0, [%1]" : "+r"(v) : "r"(p) : "memory");
	return arch::mte::tag_of(v);
}

uint64_t load(const void *p)
{
	uint64_t v;

	/* One instruction, so a signal handler may skip it by advancing the PC by 4. */
	asm volatile("ldr %0, [%1]" : "=r"(v) : "r"(p) : "memory");
	return v;
}

} // namespace kvmt::host_mte
