// SPDX-License-Identifier: GPL-2.0
/*
 * Minimal host-side test framework printing KTAP, so the binaries plug into
 * kselftest's runner. TEST()/TEST_F() register tests at static-init time;
 * EXPECT_* record a failure and continue, ASSERT_* record and abort the test,
 * SKIP() ends it as skipped. Failures recorded from vCPU threads are fine.
 */
#pragma once

#include <concepts>
#include <cstdint>
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

/* Thrown by SKIP(); carries the reason printed after "# SKIP". */
struct Skip {
	std::string reason;
};

/* Thrown after an ASSERT_* failure has been recorded, to leave the test. */
struct AssertionAbort {
};

using TestFn = void (*)();

struct Registrar {
	Registrar(const char *suite, const char *name, TestFn fn);
};

/* Base for TEST_F fixtures: set up in the constructor, tear down in the destructor. */
class Fixture
{
public:
	virtual ~Fixture() = default;
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

#define TEST(suite, name)                                                                          \
	static void suite##_##name##_body();                                                       \
	static const ::ktest::Registrar suite##_##name##_registrar(#suite, #name,                  \
								   &suite##_##name##_body);        \
	static void suite##_##name##_body()

#define TEST_F(fixture, name)                                                                      \
	namespace                                                                                  \
	{                                                                                          \
	class fixture##_##name##_test : public fixture                                             \
	{                                                                                          \
	public:                                                                                    \
		void body();                                                                       \
	};                                                                                         \
	void fixture##_##name##_run()                                                              \
	{                                                                                          \
		fixture##_##name##_test t;                                                         \
		t.body();                                                                          \
	}                                                                                          \
	const ::ktest::Registrar fixture##_##name##_registrar(#fixture, #name,                     \
							      &fixture##_##name##_run);            \
	}                                                                                          \
	void fixture##_##name##_test::body()

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
