// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kmsg reader behind kmsg.hpp. Each read() returns one record,
 * "prio,seq,time,flags;message\n" followed by " KEY=value" lines.
 */
#include "kmsg.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <regex>
#include <string_view>
#include <unistd.h>

namespace kvmt
{

namespace
{

constexpr const char *KMSG_PATH = "/dev/kmsg";
/* Larger than any record the kernel hands out (its limit is about 1 KiB). */
constexpr size_t RECORD_MAX = 8192;

/*
 * What counts as a splat: the patterns of lib/splat-markers.txt, the list
 * the test bed also judges the console with, generated into this array at
 * build time.
 */
constexpr const char *SPLAT_PATTERNS[] = {
#include "splat_markers.inc"
};

const std::vector<std::regex> &splat_regexes()
{
	static const std::vector<std::regex> regexes = [] {
		std::vector<std::regex> v;

		for (const char *p : SPLAT_PATTERNS)
			v.emplace_back(p, std::regex::extended | std::regex::nosubs);
		return v;
	}();

	return regexes;
}

std::string_view message_of(std::string_view record)
{
	const size_t start = record.find(';');
	const size_t end = record.find('\n');

	if (start == std::string_view::npos)
		return record;
	return record.substr(start + 1, end == std::string_view::npos ? end : end - start - 1);
}

} // namespace

bool is_kernel_splat(const std::string &line)
{
	return std::any_of(splat_regexes().begin(), splat_regexes().end(),
			   [&line](const std::regex &re) { return std::regex_search(line, re); });
}

KmsgWatch::KmsgWatch()
{
	splat_regexes();

	int fd = open(KMSG_PATH, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return;
	fd_ = FileDesc(fd);
	lseek(fd_.get(), 0, SEEK_END);
}

std::vector<std::string> KmsgWatch::new_messages()
{
	std::vector<std::string> messages;
	char buf[RECORD_MAX];

	if (!fd_)
		return messages;
	for (;;) {
		const ssize_t n = read(fd_.get(), buf, sizeof(buf));

		if (n < 0 && errno == EPIPE)
			continue; /* records were overwritten; carry on with the next */
		if (n <= 0)
			break;
		messages.emplace_back(message_of(std::string_view(buf, static_cast<size_t>(n))));
	}
	return messages;
}

std::vector<std::string> KmsgWatch::new_splats()
{
	std::vector<std::string> found = new_messages();

	std::erase_if(found, [](const std::string &line) { return !is_kernel_splat(line); });
	return found;
}

} // namespace kvmt
