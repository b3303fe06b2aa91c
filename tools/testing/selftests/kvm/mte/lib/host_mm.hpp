// SPDX-License-Identifier: GPL-2.0
/*
 * What the host's memory management did with a range of this process's
 * memory, as /proc reports it: whether a page is resident or was swapped
 * out (pagemap), how much of a mapping is backed by transparent huge pages
 * (smaps), and whether there is swap at all. Tests use these to prove that
 * the situation they want to exercise really happened.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvmt
{

/* Bits of a /proc/<pid>/pagemap entry (Documentation/admin-guide/mm/pagemap.rst). */
namespace pagemap
{
constexpr uint64_t PRESENT = uint64_t{1} << 63;
constexpr uint64_t SWAPPED = uint64_t{1} << 62;
} // namespace pagemap

/* The pagemap entry of the page holding addr. */
uint64_t pagemap_entry(const void *addr);

/* Pages of [addr, addr + len) that are swapped out (not present, swap entry). */
size_t pages_swapped_out(const void *addr, size_t len);

/* AnonHugePages of the mapping containing addr, in bytes. */
size_t anon_huge_bytes(const void *addr);

/* True if /proc/swaps lists an active swap area. */
bool swap_available();

/*
 * True if the kernel has madvise() at all: it is optional
 * (CONFIG_ADVISE_SYSCALLS), and without it there is no MADV_HUGEPAGE,
 * MADV_PAGEOUT, MADV_DONTNEED or MADV_MERGEABLE.
 */
bool madvise_available();

} // namespace kvmt
