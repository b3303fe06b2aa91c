// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side syscall plumbing: RAII owners for file descriptors and mappings,
 * a SysResult that keeps errno next to the return value, errno names, and
 * gVisor-style matchers so tests can state the expected outcome of a raw
 * ioctl in one line.
 */
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace kvmt
{

/* "EINVAL" etc.; unknown values come back as "errno <n>". */
std::string errno_name(int err);

/* Outcome of one syscall; op names it in messages ("KVM_ENABLE_CAP"). */
struct SysResult {
	long value;
	int err;
	std::string op;

	bool ok() const { return err == 0; }
	/* "EINVAL" or "success (<value>)", as matcher messages print it. */
	std::string outcome() const;
};

/* Captures errno right after a libc call that returns -1 on failure. */
SysResult make_result(std::string op, long ret);

class SysError : public std::runtime_error
{
public:
	SysError(const std::string &op, int err);
	int err() const { return err_; }

private:
	int err_;
};

/* Returns the value of a successful result, throws SysError otherwise. */
long check(const SysResult &res);

class FileDesc
{
public:
	FileDesc() = default;
	explicit FileDesc(int fd) : fd_(fd) {}
	FileDesc(FileDesc &&other) noexcept;
	FileDesc &operator=(FileDesc &&other) noexcept;
	FileDesc(const FileDesc &) = delete;
	FileDesc &operator=(const FileDesc &) = delete;
	~FileDesc();

	int get() const { return fd_; }
	explicit operator bool() const { return fd_ >= 0; }

private:
	int fd_ = -1;
};

class Mapping
{
public:
	Mapping() = default;
	/* Adopts an mmap() result; MAP_FAILED is rejected by the factory below. */
	Mapping(void *addr, size_t len) : addr_(addr), len_(len) {}
	Mapping(Mapping &&other) noexcept;
	Mapping &operator=(Mapping &&other) noexcept;
	Mapping(const Mapping &) = delete;
	Mapping &operator=(const Mapping &) = delete;
	~Mapping();

	/* mmap() that throws SysError(op) on failure. */
	static Mapping map(const std::string &op, void *hint, size_t len, int prot, int flags,
			   int fd, off_t off);

	void *get() const { return addr_; }
	size_t size() const { return len_; }

private:
	void *addr_ = nullptr;
	size_t len_ = 0;
};

enum class SyscallExpect { succeeds, succeeds_with_value, fails_with_errno };

class SyscallMatcher
{
public:
	SyscallMatcher(SyscallExpect kind, long expected) : kind_(kind), expected_(expected) {}

	/* On mismatch fills why with e.g. "OP: expected failure with EINVAL, got EFAULT". */
	bool match(const SysResult &res, std::string &why) const;

private:
	SyscallExpect kind_;
	long expected_;
};

inline SyscallMatcher SyscallSucceeds()
{
	return {SyscallExpect::succeeds, 0};
}

inline SyscallMatcher SyscallSucceedsWithValue(long value)
{
	return {SyscallExpect::succeeds_with_value, value};
}

inline SyscallMatcher SyscallFailsWithErrno(int err)
{
	return {SyscallExpect::fails_with_errno, err};
}

} // namespace kvmt
