// SPDX-License-Identifier: GPL-2.0
/*
 * Steering and observing the host kernel from a test beyond what
 * host_mm.hpp offers: which physical page backs an address and what the
 * kernel says about it (/proc/self/pagemap PFNs, /proc/kpageflags, which
 * need root, as in the test initramfs), procfs/sysfs knobs that are put
 * back when the test ends, and pinning the calling thread to a CPU.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <sched.h>
#include <string>
#include <vector>

namespace kvmt::mm
{

/* One /proc/self/pagemap entry, decoded. */
struct PageInfo {
	bool present;
	bool swapped;
	/* Valid only when present and the reader is privileged. */
	uint64_t pfn;
};

/* Entries for the pages of [addr, addr + len); addr page aligned. */
std::vector<PageInfo> page_info(const void *addr, size_t len);

/* /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
namespace kpf
{
constexpr unsigned int COMPOUND_HEAD = 15;
constexpr unsigned int COMPOUND_TAIL = 16;
constexpr unsigned int THP = 22;
/* The shared zero page (or huge zero page) that read faults map. */
constexpr unsigned int ZERO_PAGE = 24;
/* PG_arch_2, which arm64 uses as PG_mte_tagged: the page's tags are valid. */
constexpr unsigned int ARCH_2 = 41;
} // namespace kpf

uint64_t kpageflags(uint64_t pfn);

std::string read_file(const std::string &path);
/* Writes value to path; throws SysError naming the path on failure. */
void write_file(const std::string &path, const std::string &value);
/* The file's content as an unsigned decimal number. */
uint64_t read_number(const std::string &path);

/* Every field of /proc/meminfo by name (without the colon), in KiB. */
std::map<std::string, uint64_t> meminfo();
/* A counter of /proc/vmstat, or nothing where the kernel has none. */
std::optional<uint64_t> vmstat(const std::string &key);

/*
 * Gives back what the kernel keeps for speed or for debugging rather than
 * for anyone's use: the page cache, every slab cache's empty slabs and,
 * under KASAN, the freed objects in its quarantine (shrinking a cache
 * empties its part). What MemFree still misses afterwards is held.
 */
void settle_kernel_memory();

/* Writes value to a procfs/sysfs knob and writes back the old content on destruction. */
class ScopedSetting
{
public:
	ScopedSetting(std::string path, const std::string &value);
	~ScopedSetting();
	ScopedSetting(const ScopedSetting &) = delete;
	ScopedSetting &operator=(const ScopedSetting &) = delete;

private:
	std::string path_;
	std::string saved_;
};

/* Online CPUs, assumed numbered 0 .. n-1 as in the test VMs. */
std::vector<int> online_cpus();
/* Restricts the calling thread to one CPU (sched_setaffinity(0, ...)). */
void pin_to_cpu(int cpu);

/* Pins the calling thread to one CPU until destroyed, then restores its affinity. */
class ScopedPin
{
public:
	explicit ScopedPin(int cpu);
	~ScopedPin();
	ScopedPin(const ScopedPin &) = delete;
	ScopedPin &operator=(const ScopedPin &) = delete;

private:
	cpu_set_t saved_;
};

} // namespace kvmt::mm
