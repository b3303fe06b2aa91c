// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-only API: ucalls to the host, guest-side assertions, exception
 * handler installation and system register access. Included by *_guest.cpp
 * files, which are built freestanding and may only use what is declared here
 * (the build rejects a guest image with undefined symbols).
 */
#pragma once

#include <stdint.h>

#include "../arch.hpp"
#include "../guest.hpp"

/* Returns true if the exception was handled; the frame is restored on eret. */
using guest_exception_handler = bool (*)(guest_exception_frame *frame, uint64_t vector);

extern "C" {
void guest_ucall(UcallCmd cmd, const char *msg, const char *file, uint64_t line,
		 const uint64_t *args, unsigned int nargs);
void guest_sync(uint64_t stage);
void guest_print(const char *msg, uint64_t value);
[[noreturn]] void guest_done();
[[noreturn]] void guest_assert_fail(const char *expr, const char *file, uint64_t line,
				    bool has_values, uint64_t lhs, uint64_t rhs);
/* One handler for the whole VM: all vCPUs share the guest image's globals. */
void guest_set_exception_handler(guest_exception_handler fn);
/* Not named memset/memcpy so they can never satisfy, or clash with, libc's. */
void *guest_memset(void *dst, int c, uint64_t len);
void *guest_memcpy(void *dst, const void *src, uint64_t len);
}

#define GUEST_SYNC(stage) guest_sync(stage)
#define GUEST_DONE() guest_done()

#define GUEST_ASSERT(cond)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			guest_assert_fail(#cond, __FILE__, __LINE__, false, 0, 0);                 \
	} while (0)

#define GUEST_ASSERT_EQ(a, b)                                                                      \
	do {                                                                                       \
		const uint64_t guest_assert_a = (uint64_t)(a);                                     \
		const uint64_t guest_assert_b = (uint64_t)(b);                                     \
		if (guest_assert_a != guest_assert_b)                                              \
			guest_assert_fail(#a " == " #b, __FILE__, __LINE__, true, guest_assert_a,  \
					  guest_assert_b);                                         \
	} while (0)

/* The register name must be a literal: it is pasted into the instruction. */
#define read_sysreg(reg)                                                                           \
	([] {                                                                                      \
		uint64_t read_sysreg_val;                                                          \
		asm volatile("mrs %0, " #reg : "=r"(read_sysreg_val));                             \
		return read_sysreg_val;                                                            \
	}())

#define write_sysreg(reg, val) asm volatile("msr " #reg ", %0" : : "r"((uint64_t)(val)) : "memory")

static inline void isb()
{
	asm volatile("isb" : : : "memory");
}
