// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side MTE helpers: the tag instructions on one granule, single
 * instruction loads and stores that a fault handler can step over, and a
 * handler that counts synchronous tag check faults.
 */
#pragma once

#include <stdint.h>

#include "../arch.hpp"
#include "runtime.hpp"

namespace guest_mte
{

/* Set the allocation tag of the granule at addr. */
static inline void stg(uint64_t addr, uint64_t tag)
{
	asm volatile("stg %0, [%1]" : : "r"(arch::mte::with_tag(addr, tag)), "r"(addr) : "memory");
}

/* The allocation tag of the granule at addr. */
static inline uint64_t ldg(uint64_t addr)
{
	uint64_t tagged = 0;

	asm volatile("ldg %0, [%1]" : "+r"(tagged) : "r"(addr) : "memory");
	return arch::mte::tag_of(tagged);
}

/* One 4-byte load instruction through ptr, tag checked when enabled. */
static inline uint64_t load(uint64_t ptr)
{
	uint64_t val;

	asm volatile("ldr %0, [%1]" : "=r"(val) : "r"(ptr) : "memory");
	return val;
}

/* One 4-byte store instruction through ptr, tag checked when enabled. */
static inline void store(uint64_t ptr, uint64_t val)
{
	asm volatile("str %0, [%1]" : : "r"(val), "r"(ptr) : "memory");
}

/* Synchronous tag check faults taken since count_tag_faults(), and the last one. */
struct TagFaults {
	uint64_t count;
	uint64_t esr;
	uint64_t far;
};

extern volatile TagFaults tag_faults;

/*
 * Install a handler that records each synchronous tag check fault at EL1
 * in tag_faults and resumes after the faulting instruction (load() or
 * store() above); any other exception still goes to the host.
 */
void count_tag_faults();

} // namespace guest_mte
