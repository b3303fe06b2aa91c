// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side MTE helpers: the tag check fault counter.
 */
#include "mte.hpp"

namespace guest_mte
{

volatile TagFaults tag_faults;

namespace
{

bool record_tag_fault(guest_exception_frame *frame, uint64_t vector)
{
	if (vector != arch::vector::SYNC_CUR_SPX ||
	    arch::esr::ec(frame->esr) != arch::esr::EC_DABT_CUR ||
	    (frame->esr & arch::esr::DFSC_MASK) != arch::esr::DFSC_TAG_CHECK)
		return false;
	tag_faults.esr = frame->esr;
	tag_faults.far = frame->far;
	tag_faults.count = tag_faults.count + 1;
	/* A64 instructions are 4 bytes: resume after the faulting access. */
	frame->elr += 4;
	return true;
}

} // namespace

void count_tag_faults()
{
	tag_faults.count = 0;
	guest_set_exception_handler(record_tag_fault);
}

} // namespace guest_mte
