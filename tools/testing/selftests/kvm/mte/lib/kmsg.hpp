// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel log watcher: lets a stress test assert that the kernel printed no
 * splat (WARNING, BUG, Oops, lockdep report, ...) while it ran, instead of
 * leaving that to whoever reads the console afterwards.
 */
#pragma once

#include <string>
#include <vector>

#include "sys.hpp"

namespace kvmt
{

/* Whether a kernel log line matches one of lib/splat-markers.txt. */
bool is_kernel_splat(const std::string &line);

class KmsgWatch
{
public:
	/*
	 * Starts at the current end of the log; unavailable without /dev/kmsg.
	 * Compiles the splat markers first, so that a marker std::regex cannot
	 * read fails here, not only once the kernel has logged something.
	 */
	KmsgWatch();

	bool available() const { return static_cast<bool>(fd_); }
	/* Messages logged since construction or the last call. */
	std::vector<std::string> new_messages();
	/* Of those, the ones that look like a splat. */
	std::vector<std::string> new_splats();

private:
	FileDesc fd_;
};

} // namespace kvmt
