// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of framework_test: small EL1 functions that exercise guest
 * memory access, ucalls and exception reporting.
 */
#include "framework.hpp"
#include "lib/guest/runtime.hpp"

uint64_t framework_last_seed;
uint64_t framework_host_value;
uint64_t framework_assert_line;

static uint64_t undef_esr;

extern "C" void guest_fill(uint64_t *dst, uint64_t words, uint64_t seed)
{
	for (uint64_t i = 0; i < words; i++)
		dst[i] = framework_pattern(seed, i);
	framework_last_seed = seed;
}

extern "C" void guest_sync_roundtrip()
{
	/* We run with the host-programmed MMU, else nothing above would have worked. */
	GUEST_ASSERT(read_sysreg(sctlr_el1) & arch::sctlr::M);
	GUEST_SYNC(FRAMEWORK_SYNC_BEFORE);
	GUEST_ASSERT_EQ(framework_host_value, FRAMEWORK_HOST_VALUE);
	GUEST_SYNC(FRAMEWORK_SYNC_AFTER);
}

extern "C" void guest_read_unmapped(uint64_t gva)
{
	(void)*reinterpret_cast<volatile uint64_t *>(gva);
}

static bool skip_undef(guest_exception_frame *frame, uint64_t vector)
{
	if (vector != arch::vector::SYNC_CUR_SPX)
		return false;
	undef_esr = frame->esr;
	/* A64 instructions are 4 bytes; resume after the faulting one. */
	frame->elr += 4;
	return true;
}

extern "C" void guest_undef_with_handler()
{
	guest_set_exception_handler(skip_undef);
	asm volatile("udf #0" : : : "memory");
	guest_set_exception_handler(nullptr);
	GUEST_ASSERT_EQ(arch::esr::ec(undef_esr), arch::esr::EC_UNKNOWN);
}

extern "C" void guest_assert_mismatch(uint64_t observed)
{
	const uint64_t expected = observed + 1;

	framework_assert_line = __LINE__ + 1;
	GUEST_ASSERT_EQ(observed, expected);
}
