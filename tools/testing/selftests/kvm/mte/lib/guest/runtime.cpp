// SPDX-License-Identifier: GPL-2.0
/*
 * Guest runtime: the ucall transport, assertion reporting, the C++ side of
 * exception handling, and the per-vCPU stacks. Runs at EL1 in the guest with
 * no libc; everything it needs lives in this image.
 */
#include "runtime.hpp"

/*
 * Page aligned so the guest_image section is too, and each vCPU gets its own
 * stack (indexed by vCPU id; the host points SP_EL1 at the top of one).
 */
alignas(arch::PAGE_SIZE) uint8_t guest_stacks[GUEST_MAX_VCPUS][GUEST_STACK_SIZE];

static guest_exception_handler installed_handler;

static uint64_t va_of(const void *p)
{
	return reinterpret_cast<uint64_t>(p);
}

extern "C" void guest_ucall(UcallCmd cmd, const char *msg, const char *file, uint64_t line,
			    const uint64_t *args, unsigned int nargs)
{
	struct ucall uc = {};

	uc.cmd = cmd;
	for (unsigned int i = 0; i < nargs && i < UCALL_MAX_ARGS; i++)
		uc.args[i] = args[i];
	uc.msg = va_of(msg);
	uc.file = va_of(file);
	uc.line = line;

	/*
	 * A single plain 64-bit store: KVM can only decode (ISV=1) accesses
	 * without writeback. The clobber makes uc visible before the exit and
	 * forces globals the host changed meanwhile to be reloaded after it.
	 */
	asm volatile("str %0, [%1]" : : "r"(va_of(&uc)), "r"(UCALL_MMIO_GPA) : "memory");
}

extern "C" void guest_sync(uint64_t stage)
{
	const uint64_t args[] = {stage};

	guest_ucall(UcallCmd::sync, nullptr, nullptr, 0, args, 1);
}

extern "C" void guest_print(const char *msg, uint64_t value)
{
	const uint64_t args[] = {value};

	guest_ucall(UcallCmd::print, msg, nullptr, 0, args, 1);
}

/* Terminal ucalls repeat forever, so re-running a finished vCPU is harmless. */
extern "C" void guest_done()
{
	for (;;)
		guest_ucall(UcallCmd::done, nullptr, nullptr, 0, nullptr, 0);
}

extern "C" void guest_assert_fail(const char *expr, const char *file, uint64_t line,
				  bool has_values, uint64_t lhs, uint64_t rhs)
{
	uint64_t args[UCALL_MAX_ARGS] = {};

	args[UCALL_ASSERT_LHS] = lhs;
	args[UCALL_ASSERT_RHS] = rhs;
	args[UCALL_ASSERT_HAS_VALUES] = has_values;
	for (;;)
		guest_ucall(UcallCmd::assert_fail, expr, file, line, args, UCALL_MAX_ARGS);
}

extern "C" void guest_set_exception_handler(guest_exception_handler fn)
{
	installed_handler = fn;
}

/* Called from vectors.S with the saved frame; returning means eret. */
extern "C" void guest_exception_dispatch(guest_exception_frame *frame, uint64_t vector)
{
	guest_exception_handler fn = installed_handler;
	uint64_t args[UCALL_MAX_ARGS] = {};

	if (fn && fn(frame, vector))
		return;

	args[UCALL_EXC_VECTOR] = vector;
	args[UCALL_EXC_ESR] = frame->esr;
	args[UCALL_EXC_FAR] = frame->far;
	args[UCALL_EXC_ELR] = frame->elr;
	args[UCALL_EXC_SPSR] = frame->spsr;
	for (;;)
		guest_ucall(UcallCmd::unexpected_exception, nullptr, nullptr, 0, args,
			    UCALL_MAX_ARGS);
}

extern "C" void *guest_memset(void *dst, int c, uint64_t len)
{
	auto *d = static_cast<uint8_t *>(dst);

	for (uint64_t i = 0; i < len; i++)
		d[i] = static_cast<uint8_t>(c);
	return dst;
}

extern "C" void *guest_memcpy(void *dst, const void *src, uint64_t len)
{
	auto *d = static_cast<uint8_t *>(dst);
	const auto *s = static_cast<const uint8_t *>(src);

	for (uint64_t i = 0; i < len; i++)
		d[i] = s[i];
	return dst;
}
