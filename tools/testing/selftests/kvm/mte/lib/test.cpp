// SPDX-License-Identifier: GPL-2.0
/*
 * Test registry, result bookkeeping and the KTAP-printing main() shared by
 * every test binary:
 *
 *   <test> [-l] [-t NAME]... [-r REGEX]... [--timeout S] [GLOB]...
 *
 * A test runs when its "suite.name" equals a -t NAME (or its "name" part
 * does), matches a POSIX extended -r REGEX anywhere, or matches a shell
 * GLOB; without any of them every test runs. -l lists the selected tests
 * instead of running them; --timeout gives every selected test S seconds
 * instead of its own limit, for emulators slower than the one the limits
 * were measured on. -h prints the usage. Without any selection on the
 * command line, a KTEST_FILTER regular expression in the environment
 * selects like -r, and a binary it leaves without tests is skipped.
 *
 * Each test runs in a forked child that leads its own process group, so a
 * test that crashes, hangs or calls exit() fails alone, and helpers it forks
 * die with it. The child sends its outcome through a pipe: an exit status
 * can come from anywhere (a library calling exit(), a stray return), so a
 * child that exits without reporting fails even with status 0. The parent
 * prints a test's result only after the child is reaped and its group
 * killed; the child's own lines go out whole and flushed, so the two never
 * interleave mid-line.
 */
#include "test.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <mutex>
#include <optional>
#include <poll.h>
#include <regex>
#include <sstream>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "names.hpp"
#include "sys.hpp"

namespace ktest
{

namespace
{

using kvmt::FileDesc;

struct TestCase {
	/* The part after the dot; -t accepts it alone. */
	std::string name;
	/* "suite.name": what KTAP prints and what -r and globs match. */
	std::string full_name;
	TestFn fn;
	TestOptions opts;
};

/* Function-local so registration from other translation units is order-safe. */
std::vector<TestCase> &registry()
{
	static std::vector<TestCase> tests;
	return tests;
}

std::mutex output_lock;
std::atomic<unsigned int> current_failures;

void count_failure(const std::string &msg)
{
	current_failures++;
	diag(msg);
}

/*
 * One whole line per flushed write: the lines of a test's vCPU threads, of
 * the test's process and of the parent then never cut into each other.
 */
void emit(const std::string &line)
{
	const std::string out = line + "\n";
	std::lock_guard guard(output_lock);

	std::fwrite(out.data(), 1, out.size(), stdout);
	std::fflush(stdout);
}

enum class Outcome { pass, fail, skip };

/* Runs the body in the calling process; only ever called in a test's child. */
Outcome run_body(const TestCase &t, std::string &skip_reason)
{
	bool skipped = false;

	current_failures = 0;
	try {
		t.fn();
	} catch (const Skip &s) {
		skipped = true;
		skip_reason = s.reason;
	} catch (const AssertionAbort &) {
		/* Already recorded. */
	} catch (const std::exception &e) {
		count_failure(std::string("unexpected exception: ") + e.what());
	} catch (...) {
		count_failure("unexpected non-std exception");
	}

	if (current_failures)
		return Outcome::fail;
	return skipped ? Outcome::skip : Outcome::pass;
}

/*
 * The child's report: one letter for the outcome, then the skip reason. It
 * is written once, before the child exits, and is shorter than PIPE_BUF, so
 * it lands whole in the empty pipe and the parent reads it in one go after
 * reaping the child.
 */
constexpr char REPORT_PASS = 'P';
constexpr char REPORT_FAIL = 'F';
constexpr char REPORT_SKIP = 'S';
constexpr size_t MAX_REPORT = 1024;
static_assert(MAX_REPORT <= PIPE_BUF);

/* Longest --timeout accepted: a day, far above any emulator's need. */
constexpr unsigned long MAX_TIMEOUT_S = 24 * 60 * 60;

/*
 * What ends the harness from outside: Ctrl-C, a closed terminal, and the
 * SIGTERM that kselftest's runner (timeout(1)) sends when the whole binary
 * overruns the settings file's limit. None of them reaches the running
 * test, which leads a process group of its own, so the parent passes them
 * on (see on_terminate()).
 */
constexpr int TERMINATING_SIGNALS[] = {SIGHUP, SIGINT, SIGTERM};

/* Process group of the running test, for on_terminate(); 0 between tests. */
volatile sig_atomic_t running_group;

void on_terminate(int sig)
{
	if (running_group > 0)
		kill(-running_group, SIGKILL);
	/* Die of the same signal, so whoever sent it sees what it expects. */
	signal(sig, SIG_DFL);
	raise(sig);
}

sigset_t terminating_set()
{
	sigset_t set;

	sigemptyset(&set);
	for (int sig : TERMINATING_SIGNALS)
		sigaddset(&set, sig);
	return set;
}

/*
 * The child's side: become a group leader, run the test, report, and leave
 * with _exit(), since static destructors and atexit handlers belong to the
 * parent.
 */
[[noreturn]] void run_child(const TestCase &t, const FileDesc &report, const sigset_t &old_mask)
{
	std::string reason;

	for (int sig : TERMINATING_SIGNALS)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old_mask, nullptr);
	setpgid(0, 0);

	const Outcome outcome = run_body(t, reason);
	int status = KSFT_PASS;
	std::string msg(1, REPORT_PASS);

	if (outcome == Outcome::fail) {
		status = KSFT_FAIL;
		msg[0] = REPORT_FAIL;
	} else if (outcome == Outcome::skip) {
		status = KSFT_SKIP;
		msg = REPORT_SKIP + reason.substr(0, MAX_REPORT - 1);
	}
	/* Without a report the parent fails the test, which is what we want then. */
	if (write(report.get(), msg.data(), msg.size()) != static_cast<ssize_t>(msg.size()))
		diag("cannot report the outcome to the harness: " + kvmt::errno_name(errno));
	std::fflush(stdout);
	_exit(status);
}

struct Verdict {
	Outcome outcome;
	/* The skip reason, or why the test failed when the test could not say. */
	std::string note;
};

/* Waits for the child behind pidfd to exit: true if it did within timeout. */
bool wait_for_exit(const FileDesc &pidfd, std::chrono::seconds timeout)
{
	using namespace std::chrono;
	const auto deadline = steady_clock::now() + timeout;

	for (;;) {
		const auto left = ceil<milliseconds>(deadline - steady_clock::now()).count();
		struct pollfd pfd = {.fd = pidfd.get(), .events = POLLIN, .revents = 0};

		if (left <= 0)
			return false;
		/* MAX_TIMEOUT_S in milliseconds fits an int. */
		const int ret = poll(&pfd, 1, static_cast<int>(left));
		if (ret > 0)
			return true;
		if (ret < 0 && errno != EINTR)
			kvmt::check(kvmt::make_result("poll(pidfd)", ret));
	}
}

/* Reads the child's report, if any; never blocks, as a helper may hold the pipe open. */
std::string read_report(const FileDesc &pipe_rd)
{
	char buf[MAX_REPORT];
	const ssize_t n = read(pipe_rd.get(), buf, sizeof(buf));

	return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

/* The verdict of a child that exited on its own (not timed out). */
Verdict judge(int status, const std::string &report)
{
	if (WIFSIGNALED(status))
		return {Outcome::fail, "killed by signal " + kvmt::signal_name(WTERMSIG(status))};

	const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	const std::string exited = "exited with status " + std::to_string(code);

	if (report.empty())
		return {Outcome::fail, code == 0 ? "exited without a result" : exited};
	switch (report[0]) {
	case REPORT_PASS:
		if (code == KSFT_PASS)
			return {Outcome::pass, ""};
		break;
	case REPORT_FAIL:
		if (code == KSFT_FAIL)
			return {Outcome::fail, ""};
		break;
	case REPORT_SKIP:
		if (code == KSFT_SKIP)
			return {Outcome::skip, report.substr(1)};
		break;
	}
	/* Something other than run_child() ended the process after the report. */
	return {Outcome::fail, exited};
}

/* Runs t in a child process of its own, killed after timeout. */
Verdict run_isolated(const TestCase &t, std::chrono::seconds timeout)
{
	const sigset_t block = terminating_set();
	sigset_t old_mask;
	int fds[2];

	/* Non-blocking: a helper the test forked may keep the write end open. */
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK))
		return {Outcome::fail, "pipe2: " + kvmt::errno_name(errno)};

	FileDesc pipe_rd(fds[0]);
	FileDesc pipe_wr(fds[1]);

	/* Nothing buffered may be written twice, once by each process. */
	std::fflush(stdout);
	std::fflush(stderr);
	/* Until running_group names the child, a terminating signal must wait. */
	sigprocmask(SIG_BLOCK, &block, &old_mask);

	const pid_t pid = fork();

	if (pid == 0) {
		pipe_rd = FileDesc();
		run_child(t, pipe_wr, old_mask);
	}
	if (pid < 0) {
		const int err = errno;

		sigprocmask(SIG_SETMASK, &old_mask, nullptr);
		return {Outcome::fail, "fork: " + kvmt::errno_name(err)};
	}
	/* Also here: the group must exist before the parent may have to kill it. */
	setpgid(pid, pid);
	running_group = pid;
	sigprocmask(SIG_SETMASK, &old_mask, nullptr);
	pipe_wr = FileDesc();

	std::optional<Verdict> verdict;

	try {
		const FileDesc pidfd(static_cast<int>(kvmt::check(
			kvmt::make_result("pidfd_open", syscall(SYS_pidfd_open, pid, 0)))));

		if (!wait_for_exit(pidfd, timeout))
			verdict = Verdict{Outcome::fail, "timed out after " +
								 std::to_string(timeout.count()) +
								 " s"};
	} catch (const kvmt::SysError &e) {
		verdict = Verdict{Outcome::fail, std::string("harness: ") + e.what()};
	}
	/*
	 * Whether the test ended or not: the group goes, with any helper it left
	 * behind. The child is not reaped yet, so its pid, the group's id, cannot
	 * have been reused by an unrelated process.
	 */
	kill(-pid, SIGKILL);

	int status = 0;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	running_group = 0;
	if (verdict)
		return *verdict;
	return judge(status, read_report(pipe_rd));
}

/* A KTAP line must stay one line whatever a skip reason holds. */
std::string one_line(std::string s)
{
	std::replace(s.begin(), s.end(), '\n', ' ');
	return s;
}

struct Options {
	bool list = false;
	std::vector<std::string> names;
	std::vector<std::regex> regexes;
	std::vector<std::string> globs;
	/* From --timeout; 0 leaves every test its own limit. */
	unsigned int timeout_s = 0;
	/* The only selection is the KTEST_FILTER of the environment. */
	bool from_env = false;
};

void print_usage(const char *prog)
{
	std::fprintf(stderr, "usage: %s [-l] [-t NAME]... [-r REGEX]... [--timeout S] [GLOB]...\n",
		     prog);
}

void print_help(const char *prog)
{
	std::printf("usage: %s [-l] [-t NAME]... [-r REGEX]... [--timeout S] [GLOB]...\n"
		    "Runs the tests in KTAP, each in a child process of its own.\n"
		    "  -l, --list        list the selected tests, one suite.name a line; run none\n"
		    "  -t, --test NAME   run the test suite.name, or name in any suite\n"
		    "  -r, --regex REGEX run the tests whose suite.name matches the POSIX\n"
		    "                    extended REGEX\n"
		    "  --timeout S       give every selected test S seconds (default: %u s, or\n"
		    "                    the test's own limit)\n"
		    "  GLOB              run the tests whose suite.name matches the shell GLOB\n"
		    "  -h, --help        print this\n"
		    "-t, -r and GLOB may be repeated and combined; a test matching any of them\n"
		    "runs, in the order the binary defines them. Without them all tests run.\n"
		    "Exit status: 0 all passed, 1 a test failed or bad usage, 4 all skipped.\n",
		    prog, DEFAULT_TIMEOUT_S);
}

std::optional<unsigned int> parse_seconds(const char *s)
{
	char *end = nullptr;

	if (*s < '0' || *s > '9')
		return std::nullopt;
	errno = 0;

	const unsigned long v = std::strtoul(s, &end, 10);

	if (*end || errno || v == 0 || v > MAX_TIMEOUT_S)
		return std::nullopt;
	return static_cast<unsigned int>(v);
}

/* An option error: message and usage on stderr, KSFT_FAIL like any failed run. */
int usage_error(const char *prog, const std::string &msg)
{
	std::fprintf(stderr, "%s: %s\n", prog, msg.c_str());
	print_usage(prog);
	return KSFT_FAIL;
}

/* Fills opts from the command line; returns an exit status if main() is done. */
std::optional<int> parse_options(int argc, char **argv, Options &opts)
{
	enum { OPT_TIMEOUT = 256 };
	static const struct option long_opts[] = {
		{"list", no_argument, nullptr, 'l'},
		{"test", required_argument, nullptr, 't'},
		{"regex", required_argument, nullptr, 'r'},
		{"timeout", required_argument, nullptr, OPT_TIMEOUT},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	const char *prog = argv[0];
	int opt;

	/* A leading ':' lets a missing argument be told apart from an unknown option. */
	while ((opt = getopt_long(argc, argv, ":lt:r:h", long_opts, nullptr)) != -1) {
		switch (opt) {
		case 'l':
			opts.list = true;
			break;
		case 't':
			opts.names.emplace_back(optarg);
			break;
		case 'r':
			try {
				opts.regexes.emplace_back(optarg, std::regex::extended |
									  std::regex::nosubs);
			} catch (const std::regex_error &e) {
				return usage_error(prog, std::string("bad regular expression '") +
								 optarg + "': " + e.what());
			}
			break;
		case OPT_TIMEOUT: {
			const auto s = parse_seconds(optarg);

			if (!s)
				return usage_error(
					prog, std::string("--timeout wants whole seconds, 1 to ") +
						      std::to_string(MAX_TIMEOUT_S) + ", not '" +
						      optarg + "'");
			opts.timeout_s = *s;
			break;
		}
		case 'h':
			print_help(prog);
			return KSFT_PASS;
		case ':':
			return usage_error(prog, std::string("option ") + argv[optind - 1] +
							 " needs an argument");
		default:
			if (optopt)
				return usage_error(prog, std::string("unknown option -") +
								 static_cast<char>(optopt));
			return usage_error(prog, std::string("unknown option ") + argv[optind - 1]);
		}
	}
	for (int i = optind; i < argc; i++)
		opts.globs.emplace_back(argv[i]);

	const char *filter = std::getenv(FILTER_ENV);

	if (filter && *filter && opts.names.empty() && opts.regexes.empty() && opts.globs.empty()) {
		try {
			opts.regexes.emplace_back(filter,
						  std::regex::extended | std::regex::nosubs);
		} catch (const std::regex_error &e) {
			return usage_error(prog, std::string("bad regular expression in ") +
							 FILTER_ENV + " '" + filter +
							 "': " + e.what());
		}
		opts.from_env = true;
	}
	return std::nullopt;
}

bool names_test(const std::string &name, const TestCase &t)
{
	return name == t.full_name || name == t.name;
}

bool selected(const TestCase &t, const Options &opts)
{
	if (opts.names.empty() && opts.regexes.empty() && opts.globs.empty())
		return true;
	for (const auto &name : opts.names)
		if (names_test(name, t))
			return true;
	for (const auto &re : opts.regexes)
		if (std::regex_search(t.full_name, re))
			return true;
	for (const auto &glob : opts.globs)
		if (!fnmatch(glob.c_str(), t.full_name.c_str(), 0))
			return true;
	return false;
}

/* The tests this run knows about: the harness self-tests only on request. */
std::vector<const TestCase *> known_tests()
{
	const char *env = std::getenv(SELFTEST_ENV);
	const bool with_selftests = env && !std::strcmp(env, "1");
	std::vector<const TestCase *> tests;

	for (const auto &t : registry())
		if (!t.opts.selftest || with_selftests)
			tests.push_back(&t);
	return tests;
}

} // namespace

Registrar::Registrar(const char *suite, const std::string &name, TestFn fn, TestOptions opts)
{
	registry().push_back({name, std::string(suite) + "." + name, std::move(fn), opts});
}

void diag(const std::string &msg)
{
	std::istringstream lines(msg);
	std::string line;

	while (std::getline(lines, line))
		emit("# " + line);
}

void record_failure(const std::source_location &loc, const std::string &msg)
{
	count_failure(std::string(loc.file_name()) + ":" + std::to_string(loc.line()) + ": " + msg);
}

void fail(const std::source_location &loc, const std::string &msg)
{
	record_failure(loc, msg);
	throw AssertionAbort{};
}

void skip(std::string reason)
{
	throw Skip{std::move(reason)};
}

} // namespace ktest

int main(int argc, char **argv)
{
	using namespace ktest;
	Options opts;

	if (auto done = parse_options(argc, argv, opts))
		return *done;

	const std::vector<const TestCase *> known = known_tests();
	std::vector<const TestCase *> chosen;

	/* A mistyped -t must not pass for a run of nothing or of the rest. */
	for (const auto &name : opts.names) {
		if (std::none_of(known.begin(), known.end(),
				 [&](const TestCase *t) { return names_test(name, *t); })) {
			std::fprintf(stderr,
				     "%s: no test named '%s' (-l lists them); nothing run\n",
				     argv[0], name.c_str());
			return KSFT_FAIL;
		}
	}
	for (const TestCase *t : known)
		if (selected(*t, opts))
			chosen.push_back(t);

	if (opts.list) {
		for (const TestCase *t : chosen)
			emit(t->full_name);
		return KSFT_PASS;
	}

	emit("TAP version 13");
	emit("1.." + std::to_string(chosen.size()));
	if (chosen.empty()) {
		if (opts.from_env) {
			diag(std::string("no test of this binary matches ") + FILTER_ENV);
			return KSFT_SKIP;
		}
		diag("no test matches the given patterns");
		return KSFT_FAIL;
	}
	for (int sig : TERMINATING_SIGNALS)
		signal(sig, on_terminate);

	unsigned int pass = 0, failed = 0, skipped = 0;

	for (size_t i = 0; i < chosen.size(); i++) {
		const TestCase &t = *chosen[i];
		const unsigned int timeout_s = opts.timeout_s	  ? opts.timeout_s
					       : t.opts.timeout_s ? t.opts.timeout_s
								  : DEFAULT_TIMEOUT_S;
		const std::string num = std::to_string(i + 1);
		const auto start = std::chrono::steady_clock::now();

		emit("# RUN " + t.full_name);

		const Verdict v = run_isolated(t, std::chrono::seconds(timeout_s));
		const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
			std::chrono::steady_clock::now() - start);

		/* Kept in every run: it is what the timeouts are chosen from. */
		emit("# " + t.full_name + ": " + std::to_string(ms.count()) + " ms");
		switch (v.outcome) {
		case Outcome::pass:
			pass++;
			emit("ok " + num + " " + t.full_name);
			break;
		case Outcome::fail:
			failed++;
			emit("not ok " + num + " " + t.full_name +
			     (v.note.empty() ? "" : " # " + one_line(v.note)));
			break;
		case Outcome::skip:
			skipped++;
			emit("ok " + num + " " + t.full_name + " # SKIP " + one_line(v.note));
			break;
		}
	}

	emit("# Totals: pass:" + std::to_string(pass) + " fail:" + std::to_string(failed) +
	     " xfail:0 xpass:0 skip:" + std::to_string(skipped) + " error:0");

	if (failed)
		return KSFT_FAIL;
	return skipped == chosen.size() ? KSFT_SKIP : KSFT_PASS;
}
