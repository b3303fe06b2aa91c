// SPDX-License-Identifier: GPL-2.0
/*
 * ABI shared between the host test and the guest image linked into it: the
 * guest memory layout, the ucall protocol and the exception frame. Both sides
 * are aarch64 and built from the same declarations, so structs are laid out
 * identically. Freestanding: guest code includes this too.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest/frame.h"

/* Slot 0: guest image copy, stage-1 page tables, free space. */
constexpr uint32_t GUEST_RAM_SLOT = 0;
constexpr uint64_t GUEST_RAM_GPA = 0x4000'0000;
constexpr uint64_t GUEST_RAM_DEFAULT_SIZE = 32 << 20;

/*
 * ucalls are 64-bit stores to this IPA. It lies outside every memslot, so the
 * store exits to the host as KVM_EXIT_MMIO; tests must not put a slot here.
 */
constexpr uint64_t UCALL_MMIO_GPA = 0x3000'0000;

constexpr unsigned int GUEST_MAX_VCPUS = 8;
constexpr uint64_t GUEST_STACK_SIZE = 64 << 10;
/* x0 carries the entry function, x1..x5 its arguments. */
constexpr unsigned int GUEST_MAX_ENTRY_ARGS = 5;

enum class UcallCmd : uint64_t {
	none = 0, /* not a ucall: some other KVM exit */
	sync,
	assert_fail,
	print,
	done,
	unexpected_exception,
};

constexpr unsigned int UCALL_MAX_ARGS = 6;

/* Argument slots of an assert_fail ucall. */
constexpr unsigned int UCALL_ASSERT_LHS = 0;
constexpr unsigned int UCALL_ASSERT_RHS = 1;
constexpr unsigned int UCALL_ASSERT_HAS_VALUES = 2;

/* Argument slots of an unexpected_exception ucall. */
constexpr unsigned int UCALL_EXC_VECTOR = 0;
constexpr unsigned int UCALL_EXC_ESR = 1;
constexpr unsigned int UCALL_EXC_FAR = 2;
constexpr unsigned int UCALL_EXC_ELR = 3;
constexpr unsigned int UCALL_EXC_SPSR = 4;

/* Argument slot of a sync ucall holding the stage number. */
constexpr unsigned int UCALL_SYNC_STAGE = 0;

/* Pointers are guest VAs, stored as u64 so the host never dereferences them. */
struct ucall {
	UcallCmd cmd;
	uint64_t args[UCALL_MAX_ARGS];
	uint64_t msg;
	uint64_t file;
	uint64_t line;
};

struct guest_exception_frame {
	uint64_t x[31];
	uint64_t sp;
	uint64_t elr;
	uint64_t spsr;
	uint64_t esr;
	uint64_t far;
};

static_assert(offsetof(guest_exception_frame, x) == GUEST_FRAME_X(0));
static_assert(offsetof(guest_exception_frame, sp) == GUEST_FRAME_SP);
static_assert(offsetof(guest_exception_frame, elr) == GUEST_FRAME_ELR);
static_assert(offsetof(guest_exception_frame, spsr) == GUEST_FRAME_SPSR);
static_assert(offsetof(guest_exception_frame, esr) == GUEST_FRAME_ESR);
static_assert(offsetof(guest_exception_frame, far) == GUEST_FRAME_FAR);
static_assert(sizeof(guest_exception_frame) == GUEST_FRAME_SIZE);

/* Guest runtime symbols the host needs to program a vCPU. */
extern "C" {
void guest_entry();
extern char guest_vectors[];
extern uint8_t guest_stacks[GUEST_MAX_VCPUS][GUEST_STACK_SIZE];
}
