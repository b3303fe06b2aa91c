// SPDX-License-Identifier: GPL-2.0
/*
 * Implementation of the syscall plumbing declared in sys.hpp.
 */
#include "sys.hpp"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <utility>

namespace kvmt
{

namespace
{

struct ErrnoEntry {
	int err;
	const char *name;
};

constexpr ErrnoEntry errno_entry(int err, const char *name)
{
	return {err, name};
}

#define ERRNO_ENTRY(e) errno_entry(e, #e)

/* The errnos KVM and mm hand back; others print numerically. */
constexpr ErrnoEntry errno_table[] = {
	ERRNO_ENTRY(EPERM),	 ERRNO_ENTRY(ENOENT),	 ERRNO_ENTRY(ESRCH),
	ERRNO_ENTRY(EINTR),	 ERRNO_ENTRY(EIO),	 ERRNO_ENTRY(ENXIO),
	ERRNO_ENTRY(E2BIG),	 ERRNO_ENTRY(ENOEXEC),	 ERRNO_ENTRY(EBADF),
	ERRNO_ENTRY(EAGAIN),	 ERRNO_ENTRY(ENOMEM),	 ERRNO_ENTRY(EACCES),
	ERRNO_ENTRY(EFAULT),	 ERRNO_ENTRY(EBUSY),	 ERRNO_ENTRY(EEXIST),
	ERRNO_ENTRY(ENODEV),	 ERRNO_ENTRY(EINVAL),	 ERRNO_ENTRY(ENOSPC),
	ERRNO_ENTRY(ENOTTY),	 ERRNO_ENTRY(ERANGE),	 ERRNO_ENTRY(ENOSYS),
	ERRNO_ENTRY(EOPNOTSUPP), ERRNO_ENTRY(EOVERFLOW), ERRNO_ENTRY(EHWPOISON),
};

#undef ERRNO_ENTRY

} // namespace

std::string errno_name(int err)
{
	for (const auto &e : errno_table)
		if (e.err == err)
			return e.name;
	return "errno " + std::to_string(err);
}

std::string SysResult::outcome() const
{
	if (ok())
		return "success (" + std::to_string(value) + ")";
	return errno_name(err);
}

SysResult make_result(std::string op, long ret)
{
	return {ret, ret == -1 ? errno : 0, std::move(op)};
}

SysError::SysError(const std::string &op, int err)
	: std::runtime_error(op + ": " + errno_name(err) + " (" + std::strerror(err) + ")"),
	  err_(err)
{
}

long check(const SysResult &res)
{
	if (!res.ok())
		throw SysError(res.op, res.err);
	return res.value;
}

FileDesc::FileDesc(FileDesc &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileDesc &FileDesc::operator=(FileDesc &&other) noexcept
{
	if (this != &other) {
		if (fd_ >= 0)
			close(fd_);
		fd_ = std::exchange(other.fd_, -1);
	}
	return *this;
}

FileDesc::~FileDesc()
{
	if (fd_ >= 0)
		close(fd_);
}

Mapping::Mapping(Mapping &&other) noexcept
	: addr_(std::exchange(other.addr_, nullptr)), len_(std::exchange(other.len_, 0))
{
}

Mapping &Mapping::operator=(Mapping &&other) noexcept
{
	if (this != &other) {
		if (addr_)
			munmap(addr_, len_);
		addr_ = std::exchange(other.addr_, nullptr);
		len_ = std::exchange(other.len_, 0);
	}
	return *this;
}

Mapping::~Mapping()
{
	if (addr_)
		munmap(addr_, len_);
}

Mapping Mapping::map(const std::string &op, void *hint, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	void *addr = mmap(hint, len, prot, flags, fd, off);

	if (addr == MAP_FAILED)
		throw SysError(op, errno);
	return Mapping(addr, len);
}

bool SyscallMatcher::match(const SysResult &res, std::string &why) const
{
	std::string expected;

	switch (kind_) {
	case SyscallExpect::succeeds:
		if (res.ok())
			return true;
		expected = "success";
		break;
	case SyscallExpect::succeeds_with_value:
		if (res.ok() && res.value == expected_)
			return true;
		expected = "success with value " + std::to_string(expected_);
		break;
	case SyscallExpect::fails_with_errno:
		if (!res.ok() && res.err == expected_)
			return true;
		expected = "failure with " + errno_name(static_cast<int>(expected_));
		break;
	}
	why = res.op + ": expected " + expected + ", got " + res.outcome();
	return false;
}

} // namespace kvmt
