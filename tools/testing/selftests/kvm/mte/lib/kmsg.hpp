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

class KmsgWatch
{
public:
	/* Starts at the current end of the log; unavailable without /dev/kmsg. */
	KmsgWatch();

	bool available() const { return static_cast<bool>(fd_); }
	/* Messages logged since construction (or the last call) that look like a splat. */
	std::vector<std::string> new_splats();

private:
	FileDesc fd_;
};

} // namespace kvmt
