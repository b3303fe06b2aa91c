// SPDX-License-Identifier: GPL-2.0
/*
 * Page probes, kernel knobs and CPU pinning, see mm_probe.hpp.
 */
#include "mm_probe.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "arch.hpp"
#include "sys.hpp"

namespace kvmt::mm
{

namespace
{

constexpr const char *SLAB_SYSFS = "/sys/kernel/slab";

/* /proc/self/pagemap entry layout (Documentation/admin-guide/mm/pagemap.rst). */
constexpr uint64_t PAGEMAP_PRESENT = arch::bit(63);
constexpr uint64_t PAGEMAP_SWAPPED = arch::bit(62);
constexpr uint64_t PAGEMAP_PFN_MASK = arch::bit(55) - 1;
constexpr size_t PAGEMAP_ENTRY_SIZE = sizeof(uint64_t);

FileDesc open_file(const std::string &path, int flags)
{
	return FileDesc(static_cast<int>(
		check(make_result("open(" + path + ")", open(path.c_str(), flags | O_CLOEXEC)))));
}

uint64_t pread_u64(const std::string &path, uint64_t offset)
{
	FileDesc fd = open_file(path, O_RDONLY);
	uint64_t v;
	long n = check(make_result("pread(" + path + ")",
				   pread(fd.get(), &v, sizeof(v), static_cast<off_t>(offset))));

	if (n != sizeof(v))
		throw std::runtime_error("short read from " + path);
	return v;
}

} // namespace

std::vector<PageInfo> page_info(const void *addr, size_t len)
{
	const uint64_t first = reinterpret_cast<uint64_t>(addr) / arch::PAGE_SIZE;
	const size_t pages = len / arch::PAGE_SIZE;
	std::vector<uint64_t> raw(pages);
	FileDesc fd = open_file("/proc/self/pagemap", O_RDONLY);
	const size_t bytes = pages * PAGEMAP_ENTRY_SIZE;
	long n = check(make_result("pread(/proc/self/pagemap)",
				   pread(fd.get(), raw.data(), bytes,
					 static_cast<off_t>(first * PAGEMAP_ENTRY_SIZE))));
	std::vector<PageInfo> info;

	if (static_cast<size_t>(n) != bytes)
		throw std::runtime_error("short read from /proc/self/pagemap");
	for (uint64_t e : raw)
		info.push_back({bool(e & PAGEMAP_PRESENT), bool(e & PAGEMAP_SWAPPED),
				e & PAGEMAP_PFN_MASK});
	return info;
}

uint64_t kpageflags(uint64_t pfn)
{
	return pread_u64("/proc/kpageflags", pfn * sizeof(uint64_t));
}

std::string read_file(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream content;

	if (!f)
		throw SysError("open(" + path + ")", errno);
	content << f.rdbuf();
	return content.str();
}

void write_file(const std::string &path, const std::string &value)
{
	FileDesc fd = open_file(path, O_WRONLY);

	check(make_result("write(" + path + ")", write(fd.get(), value.data(), value.size())));
}

uint64_t read_number(const std::string &path)
{
	uint64_t v;
	std::istringstream s(read_file(path));

	if (!(s >> v))
		throw std::runtime_error(path + " does not hold a number");
	return v;
}

std::map<std::string, uint64_t> meminfo()
{
	std::istringstream in(read_file("/proc/meminfo"));
	std::map<std::string, uint64_t> fields;
	std::string line;

	while (std::getline(in, line)) {
		std::istringstream fields_of_line(line);
		std::string key;
		uint64_t value;

		if (fields_of_line >> key >> value && key.ends_with(':'))
			fields[key.substr(0, key.size() - 1)] = value;
	}
	if (fields.empty())
		throw std::runtime_error("/proc/meminfo has no fields");
	return fields;
}

std::optional<uint64_t> vmstat(const std::string &key)
{
	std::istringstream in(read_file("/proc/vmstat"));
	std::string k;
	uint64_t v;

	while (in >> k >> v)
		if (k == key)
			return v;
	return std::nullopt;
}

void settle_kernel_memory()
{
	write_file("/proc/sys/vm/drop_caches", "3");
	if (!std::filesystem::is_directory(SLAB_SYSFS))
		return;
	/* Real caches only: the other entries are symlinks to merged ones. */
	for (const auto &cache : std::filesystem::directory_iterator(SLAB_SYSFS)) {
		if (cache.is_symlink() || !cache.is_directory())
			continue;
		try {
			write_file(cache.path() / "shrink", "1");
		} catch (const SysError &) {
			/* A cache without shrink support keeps its slabs: only less settled. */
		}
	}
}

ScopedSetting::ScopedSetting(std::string path, const std::string &value)
	: path_(std::move(path)), saved_(read_file(path_))
{
	write_file(path_, value);
}

ScopedSetting::~ScopedSetting()
{
	try {
		write_file(path_, saved_);
	} catch (...) {
		/* Best effort: a destructor must not throw. */
	}
}

std::vector<int> online_cpus()
{
	std::vector<int> cpus;
	const long n = sysconf(_SC_NPROCESSORS_ONLN);

	for (int cpu = 0; cpu < n; cpu++)
		cpus.push_back(cpu);
	return cpus;
}

void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	check(make_result("sched_setaffinity(CPU " + std::to_string(cpu) + ")",
			  sched_setaffinity(0, sizeof(set), &set)));
}

ScopedPin::ScopedPin(int cpu)
{
	check(make_result("sched_getaffinity", sched_getaffinity(0, sizeof(saved_), &saved_)));
	pin_to_cpu(cpu);
}

ScopedPin::~ScopedPin()
{
	sched_setaffinity(0, sizeof(saved_), &saved_);
}

} // namespace kvmt::mm
