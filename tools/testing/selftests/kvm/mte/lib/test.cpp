// SPDX-License-Identifier: GPL-2.0
/*
 * Test registry, result bookkeeping and the KTAP-printing main() shared by
 * every test binary. Usage: <test> [glob...] runs the tests whose
 * "suite.name" matches any of the globs (all tests without arguments).
 */
#include "test.hpp"

#include <atomic>
#include <cstdio>
#include <exception>
#include <fnmatch.h>
#include <mutex>
#include <sstream>
#include <vector>

namespace ktest
{

namespace
{

struct TestCase {
	std::string name;
	TestFn fn;
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

/* One line at a time, flushed, so output interleaves sanely with the runner's. */
void emit(const std::string &line)
{
	std::lock_guard guard(output_lock);

	std::fputs(line.c_str(), stdout);
	std::fputc('\n', stdout);
	std::fflush(stdout);
}

enum class Outcome { pass, fail, skip };

Outcome run_one(const TestCase &t, std::string &skip_reason)
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

bool selected(const std::string &name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (!fnmatch(argv[i], name.c_str(), 0))
			return true;
	return false;
}

} // namespace

Registrar::Registrar(const char *suite, const char *name, TestFn fn)
{
	registry().push_back({std::string(suite) + "." + name, fn});
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
	std::vector<const TestCase *> chosen;
	unsigned int pass = 0, failed = 0, skipped = 0;

	for (const auto &t : registry())
		if (selected(t.name, argc, argv))
			chosen.push_back(&t);

	emit("TAP version 13");
	emit("1.." + std::to_string(chosen.size()));
	if (chosen.empty()) {
		diag("no test matches the given patterns");
		return KSFT_FAIL;
	}

	for (size_t i = 0; i < chosen.size(); i++) {
		const std::string num = std::to_string(i + 1);
		std::string reason;

		switch (run_one(*chosen[i], reason)) {
		case Outcome::pass:
			pass++;
			emit("ok " + num + " " + chosen[i]->name);
			break;
		case Outcome::fail:
			failed++;
			emit("not ok " + num + " " + chosen[i]->name);
			break;
		case Outcome::skip:
			skipped++;
			emit("ok " + num + " " + chosen[i]->name + " # SKIP " + reason);
			break;
		}
	}

	emit("# Totals: pass:" + std::to_string(pass) + " fail:" + std::to_string(failed) +
	     " xfail:0 xpass:0 skip:" + std::to_string(skipped) + " error:0");

	if (failed)
		return KSFT_FAIL;
	return skipped == chosen.size() ? KSFT_SKIP : KSFT_PASS;
}
