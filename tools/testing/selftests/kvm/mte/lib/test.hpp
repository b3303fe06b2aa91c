// SPDX-License-Identifier: GPL-2.0
/*
 * Minimal host-side test framework printing KTAP, so the binaries plug into
 * kselftest's runner. TEST() registers a test at static-init time;
 * EXPECT_* record a failure and continue, ASSERT_* record and abort the test,
 * SKIP() ends it as skipped. Failures recorded from vCPU threads are fine.
 *
 * Every test runs in a child process of its own, in its own process group,
 * with a timeout: a test that crashes, hangs or exits is reported as failed
 * and the remaining tests still run (see test.cpp for the command line).
 */
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <source_location>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

namespace ktest
{

/* kselftest exit codes (tools/testing/selftests/kselftest.h). */
constexpr int KSFT_PASS = 0;
constexpr int KSFT_FAIL = 1;
constexpr int KSFT_SKIP = 4;

/*
 * Seconds a test may run before it is killed, unless it registers with
 * TEST_TIMEOUT(). Measured under QEMU 10 TCG (VHE, mte=on) on a 2-core
 * host, no test without its own limit took more than 0.65 s on an idle
 * host, 1.33 s on a busy one (kernel builds or a second QEMU competing for
 * the CPUs). Every limit is about 4x the slowest time measured, rounded up
 * to a multiple of 5 s; the few tests that take seconds set their own.
 * --timeout stretches all of them for a slower emulator.
 */
constexpr unsigned int DEFAULT_TIMEOUT_S = 10;

/*
 * Environment variable that makes the harness self-tests exist (TEST_SELFTEST:
 * tests that crash, hang or exit on purpose, which framework_test runs in a
 * copy of itself to prove the isolation). Without it they are neither listed
 * nor run, so a normal run never sees them.
 */
constexpr const char *SELFTEST_ENV = "KTEST_SELFTEST";
/*
 * A POSIX extended regular expression that selects tests like -r when the
 * command line selects none: how a partial run reaches binaries that
 * kselftest's runner starts without arguments.
 */
constexpr const char *FILTER_ENV = "KTEST_FILTER";

/* Thrown by SKIP(); carries the reason printed after "# SKIP". */
struct Skip {
	std::string reason;
};

/* Thrown after an ASSERT_* failure has been recorded, to leave the test. */
struct AssertionAbort {
};

using TestFn = std::function<void()>;

/* What a test asks of the harness at registration. */
struct TestOptions {
	/* Seconds before the test is killed; 0 takes DEFAULT_TIMEOUT_S. */
	unsigned int timeout_s = 0;
	/* Exists only with SELFTEST_ENV=1 in the environment. */
	bool selftest = false;
};

struct Registrar {
	Registrar(const char *suite, const std::string &name, TestFn fn, TestOptions opts);
};

/*
 * One row of a table-driven test: the test's name and what its body gets.
 * TEST_VARIANTS() registers one test per row, each calling the same body
 * with the row's parameter.
 */
template <typename P> struct Variant {
	const char *name;
	P param;
};

template <typename P, size_t N> struct VariantRegistrar {
	VariantRegistrar(const char *suite, const Variant<P> (&rows)[N], void (*body)(const P &),
			 TestOptions opts)
	{
		for (const Variant<P> &row : rows) {
			const P param = row.param;

			Registrar(
				suite, row.name, [body, param] { body(param); }, opts);
		}
	}
};

/* Print "# <line>" for every line of msg. */
void diag(const std::string &msg);
void record_failure(const std::source_location &loc, const std::string &msg);
[[noreturn]] void fail(const std::source_location &loc, const std::string &msg);
[[noreturn]] void skip(std::string reason);

template <typename T>
concept Streamable = requires(std::ostream &os, const T &v)
{
	os << v;
};

template <typename T> std::string format_value(const T &v)
{
	std::ostringstream os;

	if constexpr (std::is_same_v<T, bool>) {
		os << (v ? "true" : "false");
	} else if constexpr (std::is_enum_v<T> && !std::is_convertible_v<T, int> && Streamable<T>) {
		os << v;
	} else if constexpr (std::is_enum_v<T>) {
		os << format_value(static_cast<std::underlying_type_t<T>>(v));
	} else if constexpr (std::is_integral_v<T>) {
		os << +v << " (0x" << std::hex << +v << ")";
	} else if constexpr (std::is_pointer_v<T> && !std::is_convertible_v<T, const char *>) {
		os << static_cast<const void *>(v);
	} else if constexpr (std::is_convertible_v<T, std::string>) {
		os << '"' << std::string(v) << '"';
	} else if constexpr (Streamable<T>) {
		os << v;
	} else {
		os << "<" << sizeof(T) << "-byte object>";
	}
	return os.str();
}

/* Integers compare by value regardless of signedness (-1 != UINT64_MAX). */
template <typename A, typename B> bool values_equal(const A &a, const B &b)
{
	constexpr bool a_int = std::is_integral_v<A> && !std::is_same_v<A, bool>;
	constexpr bool b_int = std::is_integral_v<B> && !std::is_same_v<B, bool>;

	if constexpr (a_int && b_int)
		return std::cmp_equal(a, b);
	else
		return a == b;
}

template <typename A, typename B>
void report_compare(bool fatal, const std::source_location &loc, const char *what, const A &a,
		    const B &b)
{
	std::string msg = std::string(what) + " failed\n  left:  " + format_value(a) +
			  "\n  right: " + format_value(b);

	if (fatal)
		fail(loc, msg);
	record_failure(loc, msg);
}

template <typename V, typename M>
void report_that(bool fatal, const std::source_location &loc, const V &value, const M &matcher)
{
	std::string why;

	if (matcher.match(value, why))
		return;
	if (fatal)
		fail(loc, why);
	record_failure(loc, why);
}

} // namespace ktest

#define KTEST_REGISTER(suite, name, ...)                                                           \
	static void suite##_##name##_body();                                                       \
	static const ::ktest::Registrar suite##_##name##_registrar(                                \
		#suite, #name, &suite##_##name##_body, ::ktest::TestOptions{__VA_ARGS__});         \
	static void suite##_##name##_body()

#define TEST(suite, name) KTEST_REGISTER(suite, name)
/* One test per row of rows (a Variant<P> array), each running body(row.param). */
#define TEST_VARIANTS(suite, rows, body, ...)                                                      \
	static const ::ktest::VariantRegistrar suite##_##body##_registrar(                         \
		#suite, rows, &body, ::ktest::TestOptions{__VA_ARGS__})
/* For the few tests that need longer than DEFAULT_TIMEOUT_S; say why next to it. */
#define TEST_TIMEOUT(suite, name, seconds) KTEST_REGISTER(suite, name, .timeout_s = (seconds))
/* A harness self-test (see SELFTEST_ENV); seconds 0 takes the default timeout. */
#define TEST_SELFTEST(suite, name, seconds)                                                        \
	KTEST_REGISTER(suite, name, .timeout_s = (seconds), .selftest = true)

#define KTEST_HERE std::source_location::current()

#define KTEST_CMP(fatal, macro, op, a, b)                                                          \
	do {                                                                                       \
		const auto &ktest_a = (a);                                                         \
		const auto &ktest_b = (b);                                                         \
		if (!(op))                                                                         \
			::ktest::report_compare(fatal, KTEST_HERE, macro "(" #a ", " #b ")",       \
						ktest_a, ktest_b);                                 \
	} while (0)

#define KTEST_BOOL(fatal, macro, expect, cond)                                                     \
	do {                                                                                       \
		if (static_cast<bool>(cond) != (expect)) {                                         \
			if (fatal)                                                                 \
				::ktest::fail(KTEST_HERE, macro "(" #cond ") failed");             \
			::ktest::record_failure(KTEST_HERE, macro "(" #cond ") failed");           \
		}                                                                                  \
	} while (0)

#define EXPECT_EQ(a, b) KTEST_CMP(false, "EXPECT_EQ", ::ktest::values_equal(ktest_a, ktest_b), a, b)
#define EXPECT_NE(a, b)                                                                            \
	KTEST_CMP(false, "EXPECT_NE", !::ktest::values_equal(ktest_a, ktest_b), a, b)
#define ASSERT_EQ(a, b) KTEST_CMP(true, "ASSERT_EQ", ::ktest::values_equal(ktest_a, ktest_b), a, b)
#define ASSERT_NE(a, b) KTEST_CMP(true, "ASSERT_NE", !::ktest::values_equal(ktest_a, ktest_b), a, b)
#define EXPECT_TRUE(cond) KTEST_BOOL(false, "EXPECT_TRUE", true, cond)
#define EXPECT_FALSE(cond) KTEST_BOOL(false, "EXPECT_FALSE", false, cond)
#define ASSERT_TRUE(cond) KTEST_BOOL(true, "ASSERT_TRUE", true, cond)
#define ASSERT_FALSE(cond) KTEST_BOOL(true, "ASSERT_FALSE", false, cond)
#define EXPECT_THAT(value, matcher) ::ktest::report_that(false, KTEST_HERE, (value), (matcher))
#define ASSERT_THAT(value, matcher) ::ktest::report_that(true, KTEST_HERE, (value), (matcher))
#define SKIP(reason) ::ktest::skip(reason)
