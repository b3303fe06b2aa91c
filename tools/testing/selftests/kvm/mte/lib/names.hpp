// SPDX-License-Identifier: GPL-2.0
/*
 * Human-readable names for the numbers KVM, the architecture and the kernel
 * hand back, so failure messages say "KVM_EXIT_MMIO", "EC 0x25 DABT_CUR" or
 * "SIGSEGV" instead of leaving the reader to decode them.
 */
#pragma once

#include <cstdint>
#include <string>

#include "guest.hpp"

namespace kvmt
{

std::string kvm_exit_name(uint32_t reason);
std::string kvm_ioctl_name(unsigned long request);
std::string kvm_cap_name(long cap);
/* "EC 0x25 DABT_CUR" for an ESR value. */
std::string esr_class_name(uint64_t esr);
/* "sync, current EL with SPx" for a vector table index 0..15. */
std::string vector_name(uint64_t index);
/* "SYNC", "DONE", ... as the guest API spells the commands. */
std::string ucall_cmd_name(UcallCmd cmd);
/* "SIGSEGV" for a signal number, as a test's death is reported; "signal <n>" if unnamed. */
std::string signal_name(int sig);
/* "0x1f" */
std::string hex(uint64_t v);

} // namespace kvmt
