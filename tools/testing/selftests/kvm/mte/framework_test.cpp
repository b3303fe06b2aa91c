// SPDX-License-Identifier: GPL-2.0
/*
 * Self-tests of the guest test framework itself, before any MTE test relies
 * on it: guest memory and globals are visible to the host, ucalls (SYNC,
 * ASSERT_FAIL, DONE) and exception reports carry the right data, errno
 * matchers report what KVM returned, ONE_REG access by name works, and the
 * kernel log watch reads new messages and knows a splat when it sees one.
 *
 * The harness itself is tested from outside: the binary runs a copy of
 * itself with the hidden "harness" self-tests enabled (KTEST_SELFTEST=1),
 * which crash, hang, exit or leave helpers behind on purpose, and checks
 * the KTAP and exit status the copy gives, so that every run proves that a
 * broken test is reported and the next one still runs.
 */
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <source_location>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "framework.hpp"
#include "lib/arch.hpp"
#include "lib/kmsg.hpp"
#include "lib/kvm.hpp"
#include "lib/test.hpp"

using namespace kvmt;

namespace
{

/* An ioctl number in KVMIO's space that 5.10 does not define. */
constexpr unsigned long KVM_UNDEFINED_IOCTL = _IO(KVMIO, 0xff);
/* Far above KVM_MAX_VCPU_ID. */
constexpr unsigned long HUGE_VCPU_ID = UINT32_MAX;

constexpr uint64_t REG_TEST_X1 = 0x0123'4567'89ab'cdef;
constexpr uint64_t REG_TEST_TPIDR = 0xfeed'face'0000'1234;

} // namespace

/* Guest stores to a separate memslot and to a guest global land where the host looks. */
TEST(framework, guest_writes_memory_seen_by_host)
{
	Kvm kvm;
	Vm vm(kvm);
	MemRegion &data = vm.add_region({
		.slot = FRAMEWORK_DATA_SLOT,
		.gpa = FRAMEWORK_DATA_GPA,
		.size = FRAMEWORK_DATA_SIZE,
	});

	/* Two vCPUs on threads fill one half each: exercises per-vCPU stacks. */
	const uint64_t half_words = FRAMEWORK_DATA_SIZE / 2 / sizeof(uint64_t);
	Vcpu &v0 = vm.add_vcpu(0);
	Vcpu &v1 = vm.add_vcpu(1);
	auto *base = reinterpret_cast<uint64_t *>(FRAMEWORK_DATA_GPA);

	v0.start(guest_fill, base, half_words, uint64_t{0});
	v1.start(guest_fill, base + half_words, half_words, uint64_t{1});
	run_concurrently({[&] { v0.run_until_done(); }, [&] { v1.run_until_done(); }});

	const auto *host = reinterpret_cast<const uint64_t *>(data.host());
	uint64_t mismatches = 0;

	for (uint64_t i = 0; i < half_words; i++) {
		mismatches += host[i] != framework_pattern(0, i);
		mismatches += host[half_words + i] != framework_pattern(1, i);
	}
	EXPECT_EQ(mismatches, 0);
	/* Both vCPUs wrote it; either order is fine. */
	EXPECT_TRUE(vm.guest_var(&framework_last_seed) <= 1);

	/* SYNC round trip: the guest must see the value the host wrote in between. */
	v0.start(guest_sync_roundtrip);
	v0.expect_sync(FRAMEWORK_SYNC_BEFORE);
	vm.guest_var(&framework_host_value) = FRAMEWORK_HOST_VALUE;
	v0.expect_sync(FRAMEWORK_SYNC_AFTER);
	v0.run_until_done();
}

/* Unhandled faults reach the host decoded; handled ones let the guest carry on. */
TEST(framework, guest_exception_reports_esr)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_read_unmapped, FRAMEWORK_UNMAPPED_GVA);
	Ucall u = vcpu.run();

	ASSERT_EQ(u.cmd, UcallCmd::unexpected_exception);
	EXPECT_EQ(u.args[UCALL_EXC_VECTOR], arch::vector::SYNC_CUR_SPX);
	EXPECT_EQ(arch::esr::ec(u.args[UCALL_EXC_ESR]), arch::esr::EC_DABT_CUR);
	EXPECT_EQ(u.args[UCALL_EXC_ESR] & arch::esr::DFSC_MASK, arch::esr::DFSC_TRANSLATION_L0);
	EXPECT_EQ(u.args[UCALL_EXC_FAR], FRAMEWORK_UNMAPPED_GVA);
	EXPECT_TRUE(u.describe().ends_with(", as in the image"));
	ktest::diag("reported as: " + u.describe());

	/* A wrong page under the guest's code would show as a different word. */
	uint32_t &insn = vm.guest_var(reinterpret_cast<uint32_t *>(u.args[UCALL_EXC_ELR]));
	const uint32_t original = insn;

	insn = ~original;
	EXPECT_TRUE(vcpu.decode_exit().describe().ends_with(", the image has " + hex(original)));
	insn = original;

	vcpu.start(guest_undef_with_handler);
	vcpu.run_until_done();
}

/* A failing GUEST_ASSERT_EQ arrives with its expression, location and both values. */
TEST(framework, guest_assert_reports_values)
{
	constexpr uint64_t observed = 41;
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.start(guest_assert_mismatch, observed);
	Ucall u = vcpu.run();

	ASSERT_EQ(u.cmd, UcallCmd::assert_fail);
	EXPECT_EQ(u.msg, std::string("observed == expected"));
	EXPECT_NE(u.file.find("framework_guest.cpp"), std::string::npos);
	EXPECT_EQ(u.line, vm.guest_var(&framework_assert_line));
	EXPECT_EQ(u.args[UCALL_ASSERT_HAS_VALUES], 1);
	EXPECT_EQ(u.args[UCALL_ASSERT_LHS], observed);
	EXPECT_EQ(u.args[UCALL_ASSERT_RHS], observed + 1);
}

/* Matchers and errno names report exactly what 5.10 KVM returns on bad input. */
TEST(framework, errno_helpers_on_bad_ioctl)
{
	std::string why;

	EXPECT_EQ(errno_name(EINVAL), std::string("EINVAL"));
	EXPECT_EQ(errno_name(ENOTTY), std::string("ENOTTY"));
	EXPECT_FALSE(SyscallFailsWithErrno(EINVAL).match(SysResult{0, 0, "KVM_ENABLE_CAP"}, why));
	EXPECT_EQ(why,
		  std::string("KVM_ENABLE_CAP: expected failure with EINVAL, got success (0)"));
	EXPECT_FALSE(SyscallFailsWithErrno(EINVAL).match(SysResult{-1, EFAULT, "KVM_RUN"}, why));
	EXPECT_EQ(why, std::string("KVM_RUN: expected failure with EINVAL, got EFAULT"));

	Kvm kvm;
	Vm vm(kvm);

	EXPECT_THAT(vm.ioctl_raw(KVM_CREATE_VCPU, HUGE_VCPU_ID), SyscallFailsWithErrno(EINVAL));
	/* arm64's kvm_arch_dev_ioctl() rejects unknown /dev/kvm ioctls with EINVAL, not ENOTTY. */
	EXPECT_THAT(kvm.ioctl_raw(KVM_UNDEFINED_IOCTL, 0), SyscallFailsWithErrno(EINVAL));
	EXPECT_THAT(kvm.ioctl_raw(KVM_GET_API_VERSION, 0),
		    SyscallSucceedsWithValue(KVM_API_VERSION));

	Vcpu &vcpu = vm.add_vcpu(0);
	uint64_t val;

	EXPECT_THAT(vcpu.get_reg_raw(reg::NONEXISTENT_SYSREG.id, &val),
		    SyscallFailsWithErrno(ENOENT));
}

/* ONE_REG round trips through the named register table. */
TEST(framework, get_set_one_reg_by_name)
{
	Kvm kvm;
	Vm vm(kvm);
	Vcpu &vcpu = vm.add_vcpu(0);

	vcpu.set_reg(reg::x(1), REG_TEST_X1);
	EXPECT_EQ(vcpu.get_reg(reg::x(1)), REG_TEST_X1);
	EXPECT_EQ(vcpu.get_reg("x1"), REG_TEST_X1);

	vcpu.set_reg(reg::TCR_EL1, stage1_tcr());
	EXPECT_EQ(vcpu.get_reg(reg::TCR_EL1), stage1_tcr());

	vcpu.set_reg("TPIDR_EL1", REG_TEST_TPIDR);
	EXPECT_EQ(vcpu.get_reg(reg::TPIDR_EL1), REG_TEST_TPIDR);

	bool has_tcr = false, has_pc = false;

	for (uint64_t id : vcpu.get_reg_list()) {
		has_tcr |= id == reg::TCR_EL1.id;
		has_pc |= id == reg::PC.id;
	}
	EXPECT_TRUE(has_tcr);
	EXPECT_TRUE(has_pc);
}

namespace
{

/* What the kernel prints when things go wrong, one line of each kind. */
constexpr const char *KERNEL_SPLATS[] = {
	"------------[ cut here ]------------",
	"WARNING: CPU: 1 PID: 230 at arch/arm64/kvm/mmu.c:862 user_mem_abort+0x5f0/0x6c0",
	"Call trace:",
	"Internal error: Oops: 96000047 [#1] PREEMPT SMP",
	"BUG: KASAN: slab-out-of-bounds in kvm_vm_ioctl_mte_copy_tags+0x1c8/0x2a0",
	"WARNING: possible circular locking dependency detected",
	"rcu: INFO: rcu_preempt self-detected stall on CPU",
	"unreferenced object 0xffff000003f2c000 (size 4096):",
	"kmemleak: Cannot allocate a kmemleak_object structure",
};

/* Lines a healthy debug kernel logs, close to the markers. */
constexpr const char *KERNEL_NON_SPLATS[] = {
	"RCU lockdep checking is enabled.",
	"kmemleak: Kernel memory leak detector initialized (mem pool available: 15892)",
	"kvm [1]: VHE mode initialized successfully",
	"FAULT_INJECTION: forcing a failure.",
};

} // namespace

/*
 * The stress tests' kernel log check: every marker compiles in std::regex
 * (one that did not once made each check throw) and tells splats from
 * healthy lines.
 */
TEST(framework, kernel_log_splat_markers_match_splats)
{
	for (const char *line : KERNEL_SPLATS)
		if (!is_kernel_splat(line))
			ktest::record_failure(KTEST_HERE,
					      std::string("not taken for a splat: ") + line);
	for (const char *line : KERNEL_NON_SPLATS)
		if (is_kernel_splat(line))
			ktest::record_failure(KTEST_HERE,
					      std::string("taken for a splat: ") + line);
}

/* The watch reads what the kernel logs after it starts, and nothing before. */
TEST(framework, kernel_log_watch_reads_new_messages)
{
	KmsgWatch watch;

	if (!watch.available())
		SKIP("no /dev/kmsg to read");

	const std::string probe =
		"kvm-mte framework: kernel log probe from pid " + std::to_string(getpid());
	/*
	 * KERN_INFO: below the test bed's console level, so not a console
	 * line. The newline ends the record: without it the kernel keeps it
	 * open for a continuation, and readers see it only once another
	 * message comes.
	 */
	const std::string record = "<6>" + probe + "\n";
	FileDesc kmsg(open("/dev/kmsg", O_WRONLY | O_CLOEXEC));

	ASSERT_TRUE(static_cast<bool>(kmsg));
	ASSERT_EQ(write(kmsg.get(), record.data(), record.size()),
		  static_cast<ssize_t>(record.size()));

	KmsgWatch later;
	const std::vector<std::string> seen = watch.new_messages();

	EXPECT_EQ(std::count(seen.begin(), seen.end(), probe), 1);
	EXPECT_TRUE(watch.new_messages().empty());
	EXPECT_TRUE(later.new_messages().empty());
}

/*
 * The harness self-tests: each fails in one of the ways a test can, and
 * harness.passes, defined last so it runs after any of them, shows that the
 * run went on. Only a copy of this binary started by the tests below, with
 * KTEST_SELFTEST=1, has them.
 */

TEST_SELFTEST(harness, crashes, 0)
{
	/* A real fault on an inaccessible page, not a raise(): what a broken test does. */
	const Mapping page = Mapping::map("mmap", nullptr, static_cast<size_t>(getpagesize()),
					  PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	*static_cast<volatile int *>(page.get()) = 1;
}

TEST_SELFTEST(harness, hangs, 1)
{
	for (;;)
		pause();
}

/* The helper inherits stdout: the copy's output only ends if the helper is killed too. */
TEST_SELFTEST(harness, hangs_with_helper, 1)
{
	check(make_result("fork", fork()));
	for (;;)
		pause();
}

/* Passes, but leaves a helper holding stdout, which the harness must not leave running. */
TEST_SELFTEST(harness, leaves_helper, 0)
{
	if (check(make_result("fork", fork())) == 0)
		for (;;)
			pause();
}

TEST_SELFTEST(harness, exits_3, 0)
{
	std::exit(3);
}

/* Status 0 but no outcome reported: the harness must not take it for a pass. */
TEST_SELFTEST(harness, exits_0_without_result, 0)
{
	std::exit(0);
}

TEST_SELFTEST(harness, fails, 0)
{
	EXPECT_EQ(1, 2);
}

TEST_SELFTEST(harness, skips, 0)
{
	SKIP("skipped on purpose");
}

TEST_SELFTEST(harness, passes, 0) {}

namespace
{

/*
 * Longest a copy of the binary may take, far above the 2.5 s its slowest
 * run takes (a 2 s timeout), so that a harness that fails to time a test
 * out is reported here rather than by this test's own timeout.
 */
constexpr auto SELF_RUN_DEADLINE = std::chrono::seconds(10);

struct SelfRun {
	/* Exit status, or -1 if the copy did not exit normally. */
	int status;
	/* stdout and stderr, interleaved as written. */
	std::string output;
};

/*
 * Runs /proc/self/exe with args, with or without the harness self-tests, and
 * collects all it prints until every writer has closed stdout: the copy,
 * its tests and any helper those forked.
 */
SelfRun run_self(const std::vector<std::string> &args, bool selftests)
{
	constexpr const char *exe = "/proc/self/exe";
	const std::string env_prefix = std::string(ktest::SELFTEST_ENV) + "=";
	const std::string env_on = env_prefix + "1";
	std::vector<char *> argv{const_cast<char *>(exe)};
	std::vector<char *> envp;

	/* Built before fork(), so that the child has only to exec. */
	for (const auto &a : args)
		argv.push_back(const_cast<char *>(a.c_str()));
	argv.push_back(nullptr);
	for (char **e = environ; *e; e++)
		if (std::strncmp(*e, env_prefix.c_str(), env_prefix.size()))
			envp.push_back(*e);
	if (selftests)
		envp.push_back(const_cast<char *>(env_on.c_str()));
	envp.push_back(nullptr);

	int fds[2];

	check(make_result("pipe2", pipe2(fds, O_CLOEXEC)));

	FileDesc rd(fds[0]);
	FileDesc wr(fds[1]);
	const pid_t pid = static_cast<pid_t>(check(make_result("fork", fork())));

	if (pid == 0) {
		dup2(wr.get(), STDOUT_FILENO);
		dup2(wr.get(), STDERR_FILENO);
		execve(exe, argv.data(), envp.data());

		/* Says why in the output the test prints, as 127 alone would not. */
		const std::string why =
			std::string("execve ") + exe + ": " + errno_name(errno) + "\n";

		/* Should this write fail too, status 127 still fails the test. */
		static_cast<void>(write(STDERR_FILENO, why.data(), why.size()));
		_exit(127);
	}
	wr = FileDesc();

	SelfRun run{-1, ""};
	const auto deadline = std::chrono::steady_clock::now() + SELF_RUN_DEADLINE;
	bool eof = false;

	while (!eof) {
		const auto left = std::chrono::ceil<std::chrono::milliseconds>(
			deadline - std::chrono::steady_clock::now());
		struct pollfd pfd = {.fd = rd.get(), .events = POLLIN, .revents = 0};
		char buf[4096];

		if (left.count() <= 0)
			break;
		if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
			continue;

		const ssize_t n = read(rd.get(), buf, sizeof(buf));

		if (n > 0)
			run.output.append(buf, static_cast<size_t>(n));
		else if (n == 0 || errno != EINTR)
			eof = true;
	}
	if (!eof) {
		ktest::record_failure(
			KTEST_HERE,
			"a copy of the binary (" + args.front() +
				" ...) still holds stdout after " +
				std::to_string(SELF_RUN_DEADLINE.count()) +
				" s: it hangs, or a helper of one of its tests survived");
		kill(pid, SIGKILL);
	}

	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		run.status = WEXITSTATUS(status);
	return run;
}

std::vector<std::string> split_lines(const std::string &text)
{
	std::vector<std::string> lines;
	std::string::size_type start = 0, end;

	while ((end = text.find('\n', start)) != std::string::npos) {
		lines.push_back(text.substr(start, end - start));
		start = end + 1;
	}
	if (start < text.size())
		lines.push_back(text.substr(start));
	return lines;
}

/* Every expected line appears, whole and in this order; prints the output if not. */
void expect_lines(const SelfRun &run, const std::vector<std::string> &expected,
		  std::source_location loc = std::source_location::current())
{
	const std::vector<std::string> lines = split_lines(run.output);
	auto pos = lines.begin();

	for (const auto &want : expected) {
		const auto found = std::find(pos, lines.end(), want);

		if (found == lines.end()) {
			ktest::record_failure(loc, "missing, or out of order: \"" + want +
							   "\"; the copy printed:\n" + run.output);
			return;
		}
		pos = found + 1;
	}
}

/* No line starts with prefix. */
void expect_no_line_starting(const SelfRun &run, const std::string &prefix,
			     std::source_location loc = std::source_location::current())
{
	for (const auto &line : split_lines(run.output))
		if (line.starts_with(prefix))
			ktest::record_failure(loc, "unexpected line \"" + line +
							   "\"; the copy printed:\n" + run.output);
}

/* Runs the self-test `test`, then harness.passes; `test` must fail with `reason`. */
void expect_fails_then_next_runs(const std::string &test, const std::string &reason,
				 const std::vector<std::string> &extra_args = {},
				 std::source_location loc = std::source_location::current())
{
	std::vector<std::string> args = extra_args;

	args.insert(args.end(), {"-t", test, "-t", "harness.passes"});

	const SelfRun run = run_self(args, true);

	if (run.status != ktest::KSFT_FAIL)
		ktest::record_failure(loc, test + ": the copy exited with " +
						   std::to_string(run.status) + ", not KSFT_FAIL");
	expect_lines(run,
		     {"1..2", "# RUN " + test, "not ok 1 " + test + " # " + reason,
		      "# RUN harness.passes", "ok 2 harness.passes",
		      "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0"},
		     loc);
}

} // namespace

/* A test that dies of a signal fails with the signal's name; the next one runs. */
TEST(framework, harness_survives_crashing_test)
{
	expect_fails_then_next_runs("harness.crashes", "killed by signal SIGSEGV");
}

/*
 * A hanging test is killed at its own timeout, with helpers it forked (else
 * the copy's stdout would stay open); --timeout overrides a test's own.
 * Waits out 1 + 1 + 2 s of timeouts (4.1-4.2 s in all under TCG); its own
 * limit lets all three copies run into SELF_RUN_DEADLINE if timeouts broke,
 * so that this test, not its timeout, says what went wrong.
 */
TEST_TIMEOUT(framework, harness_times_out_hanging_test, 40)
{
	expect_fails_then_next_runs("harness.hangs", "timed out after 1 s");
	expect_fails_then_next_runs("harness.hangs_with_helper", "timed out after 1 s");
	expect_fails_then_next_runs("harness.hangs", "timed out after 2 s", {"--timeout", "2"});
}

/* exit() from a test fails it, even with status 0, as it reported nothing. */
TEST(framework, harness_fails_exiting_test)
{
	expect_fails_then_next_runs("harness.exits_3", "exited with status 3");
	expect_fails_then_next_runs("harness.exits_0_without_result", "exited without a result");
}

/* Outcomes and skip reasons cross from child to parent; exit codes follow kselftest. */
TEST(framework, harness_reports_outcomes)
{
	SelfRun run = run_self({"-t", "harness.fails", "-t", "harness.passes"}, true);

	EXPECT_EQ(run.status, ktest::KSFT_FAIL);
	expect_lines(run, {"# RUN harness.fails", "not ok 1 harness.fails", "ok 2 harness.passes"});

	run = run_self({"-t", "harness.skips"}, true);
	EXPECT_EQ(run.status, ktest::KSFT_SKIP);
	expect_lines(run, {"ok 1 harness.skips # SKIP skipped on purpose"});

	/* Also proves the leftover helper is gone: else the output would not end. */
	run = run_self({"-t", "harness.leaves_helper", "-t", "harness.skips"}, true);
	EXPECT_EQ(run.status, ktest::KSFT_PASS);
	expect_lines(run, {"ok 1 harness.leaves_helper",
			   "ok 2 harness.skips # SKIP skipped on purpose"});
}

/* -l, -t, -r and globs select; the self-tests exist only on request; bad usage fails. */
TEST(framework, harness_selects_tests)
{
	SelfRun run = run_self({"-l"}, false);

	EXPECT_EQ(run.status, ktest::KSFT_PASS);
	expect_lines(run, {"framework.guest_writes_memory_seen_by_host",
			   "framework.harness_selects_tests"});
	expect_no_line_starting(run, "harness.");
	expect_no_line_starting(run, "TAP version");

	run = run_self({"-l", "-r", "^harness\\.(crashes|passes)$"}, true);
	EXPECT_EQ(run.status, ktest::KSFT_PASS);
	EXPECT_EQ(run.output, std::string("harness.crashes\nharness.passes\n"));

	/* A short name, a regex and a glob together, run in definition order. */
	run = run_self({"harness.sk*", "-r", "^harness\\.pa", "-t", "fails"}, true);
	EXPECT_EQ(run.status, ktest::KSFT_FAIL);
	expect_lines(run, {"1..3", "not ok 1 harness.fails",
			   "ok 2 harness.skips # SKIP skipped on purpose", "ok 3 harness.passes"});

	/* Not registered without KTEST_SELFTEST=1, so an unknown name. */
	run = run_self({"-t", "harness.passes"}, false);
	EXPECT_EQ(run.status, ktest::KSFT_FAIL);
	EXPECT_NE(run.output.find("no test named 'harness.passes'"), std::string::npos);
	expect_no_line_starting(run, "# RUN");

	for (const auto &bad : std::vector<std::vector<std::string>>{{"--bogus"},
								     {"-x"},
								     {"-t"},
								     {"--timeout", "0"},
								     {"--timeout", "1s"},
								     {"-r", "("}}) {
		run = run_self(bad, true);
		EXPECT_EQ(run.status, ktest::KSFT_FAIL);
		EXPECT_NE(run.output.find("usage: "), std::string::npos);
		expect_no_line_starting(run, "# RUN");
	}

	run = run_self({"-h"}, false);
	EXPECT_EQ(run.status, ktest::KSFT_PASS);
	EXPECT_NE(run.output.find("usage: "), std::string::npos);
}
