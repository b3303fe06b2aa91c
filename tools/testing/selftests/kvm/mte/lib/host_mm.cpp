// SPDX-License-Identifier: GPL-2.0
/*
 * /proc probes of what the host's memory management did, see host_mm.hpp.
 */
#include "host_mm.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "arch.hpp"
#include "sys.hpp"

namespace kvmt
{

namespace
{

constexpr const char *SMAPS_ANON_HUGE = "AnonHugePages:";
constexpr size_t KIB = 1024;

uint64_t page_index(const void *addr)
{
	return reinterpret_cast<uint64_t>(addr) / arch::PAGE_SIZE;
}

} // namespace

uint64_t pagemap_entry(const void *addr)
{
	FileDesc fd(static_cast<int>(check(
		make_result("open(/proc/self/pagemap)", open("/proc/self/pagemap", O_RDONLY)))));
	uint64_t entry;
	const off_t off = static_cast<off_t>(page_index(addr) * sizeof(entry));

	if (check(make_result("pread(/proc/self/pagemap)",
			      pread(fd.get(), &entry, sizeof(entry), off))) != sizeof(entry))
		throw std::runtime_error("short read from /proc/self/pagemap");
	return entry;
}

size_t pages_swapped_out(const void *addr, size_t len)
{
	const auto *p = static_cast<const uint8_t *>(addr);
	size_t n = 0;

	for (size_t off = 0; off < len; off += arch::PAGE_SIZE) {
		const uint64_t e = pagemap_entry(p + off);

		n += !(e & pagemap::PRESENT) && (e & pagemap::SWAPPED);
	}
	return n;
}

size_t anon_huge_bytes(const void *addr)
{
	const uint64_t a = reinterpret_cast<uint64_t>(addr);
	std::ifstream smaps("/proc/self/smaps");
	std::string line;
	bool inside = false;

	if (!smaps)
		throw SysError("open(/proc/self/smaps)", errno);
	while (std::getline(smaps, line)) {
		std::istringstream fields(line);
		uint64_t start, end;
		char dash;

		/* A mapping's header line starts with "start-end" in hex. */
		if (fields >> std::hex >> start >> dash >> end && dash == '-') {
			inside = a >= start && a < end;
			continue;
		}
		if (inside && line.rfind(SMAPS_ANON_HUGE, 0) == 0) {
			size_t kb = 0;

			std::istringstream(line.substr(std::string(SMAPS_ANON_HUGE).size())) >> kb;
			return kb * KIB;
		}
	}
	throw std::runtime_error("no AnonHugePages in /proc/self/smaps for " + std::to_string(a));
}

bool swap_available()
{
	std::ifstream swaps("/proc/swaps");
	std::string line;

	/* The first line is the header; every further line is an active swap area. */
	return swaps && std::getline(swaps, line) && std::getline(swaps, line);
}

bool madvise_available()
{
	Mapping probe = Mapping::map("mmap(madvise probe)", nullptr, arch::PAGE_SIZE,
				     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return madvise(probe.get(), arch::PAGE_SIZE, MADV_NORMAL) == 0 || errno != ENOSYS;
}

} // namespace kvmt
