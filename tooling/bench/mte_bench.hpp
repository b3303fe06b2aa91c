// SPDX-License-Identifier: GPL-2.0
/*
 * Shared by mte_bench_test.cpp (host) and mte_bench_guest.cpp (guest): the
 * benchmark guest's entry points and the SMCCC call it makes for exits
 * that KVM handles without leaving the kernel.
 */
#pragma once

#include <stdint.h>

/*
 * SMCCC_VERSION: every arm64 KVM answers it in the kernel, so an HVC with
 * it is one guest exit and entry with no trip to user space.
 */
constexpr uint64_t SMCCC_VERSION_FUNC_ID = 0x8000'0000;

/* Stages of the exit loops: the host times from BEGIN to END. */
constexpr uint64_t BENCH_SYNC_BEGIN = 1;
constexpr uint64_t BENCH_SYNC_END = 2;
/* Each exit of the MMIO loop is a sync ucall with this stage. */
constexpr uint64_t BENCH_SYNC_EXIT = 3;

/* The tag the save/restore guest gives the first granule of the page at addr. */
constexpr uint64_t bench_page_tag(uint64_t addr)
{
	return ((addr >> 12) * 7 + 1) & 0xf;
}

extern "C" {
/* One 64-bit store per 4 KiB page of [base, base + size). */
void guest_touch_pages(uint64_t base, uint64_t size);
/* BEGIN, n HVCs, END. */
void guest_hvc_loop(uint64_t n);
/* BEGIN, n sync ucalls (MMIO exits to the VMM), END. */
void guest_mmio_loop(uint64_t n);
/* Tags the first granule of every page and writes a word there; sync; checks both. */
void guest_tag_pages_then_check(uint64_t base, uint64_t size);
}
