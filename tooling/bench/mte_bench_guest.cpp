// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of mte_bench_test: loops that fault pages in, exit to the
 * hypervisor or the VMM, and tag memory, for the host to time.
 */
#include "lib/guest/mte.hpp"
#include "mte_bench.hpp"

using namespace guest_mte;

extern "C" void guest_touch_pages(uint64_t base, uint64_t size)
{
	for (uint64_t a = base; a < base + size; a += arch::PAGE_SIZE)
		store(a, a);
}

extern "C" void guest_hvc_loop(uint64_t n)
{
	GUEST_SYNC(BENCH_SYNC_BEGIN);
	for (uint64_t i = 0; i < n; i++) {
		register uint64_t x0 asm("x0") = SMCCC_VERSION_FUNC_ID;

		/* SMCCC lets the callee use x0-x17. */
		asm volatile("hvc #0"
			     : "+r"(x0)
			     :
			     : "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
			       "x12", "x13", "x14", "x15", "x16", "x17", "memory");
	}
	GUEST_SYNC(BENCH_SYNC_END);
}

extern "C" void guest_mmio_loop(uint64_t n)
{
	GUEST_SYNC(BENCH_SYNC_BEGIN);
	for (uint64_t i = 0; i < n; i++)
		GUEST_SYNC(BENCH_SYNC_EXIT);
	GUEST_SYNC(BENCH_SYNC_END);
}

extern "C" void guest_tag_pages_then_check(uint64_t base, uint64_t size)
{
	for (uint64_t a = base; a < base + size; a += arch::PAGE_SIZE) {
		stg(a, bench_page_tag(a));
		store(arch::mte::with_tag(a, bench_page_tag(a)), a);
	}
	GUEST_SYNC(BENCH_SYNC_END);
	/* From here on, in the VM the host restored the guest into. */
	for (uint64_t a = base; a < base + size; a += arch::PAGE_SIZE) {
		GUEST_ASSERT_EQ(ldg(a), bench_page_tag(a));
		GUEST_ASSERT_EQ(load(arch::mte::with_tag(a, bench_page_tag(a))), a);
	}
}
