#!/usr/bin/env bash
# Build the benchmark binary (tooling/bench) with the composed tree's
# selftest Makefile and library, and pack it with the selftests into the
# benchmarks' initramfs.
#
#   tooling/build-bench.sh [TREE]   -> prints the initramfs's path
. "$(dirname "$0")/common.sh"

exec 3>&1 1>&2
tree=$(realpath -m "${1:-$TREE}")
mte=$tree/tools/testing/selftests/kvm/mte
bench=$WORK/bench
src=$bench/src

"$TOP/tooling/build-selftests.sh" "$tree" >/dev/null
say "building the benchmark"
# Written in the selftests' style, and kept in it.
(cd "$TOP/tooling/bench" && clang-format --dry-run --Werror --style="file:$mte/.clang-format" \
	./*.cpp ./*.hpp) >"$WORK/bench-format.log" 2>&1 ||
	die "tooling/bench is not clang-format clean (see $WORK/bench-format.log)"
# The selftest Makefile builds every *_test.cpp of its directory with the
# library next to it: give it a directory holding just the benchmark.
rm -rf "$src" && mkdir -p "$src"
ln -s "$mte/lib" "$src/lib"
ln -s "$TOP"/tooling/bench/mte_bench* "$src/"
make -C "$src" -f "$mte/Makefile" OUTPUT="$bench/out" CROSS_COMPILE="$CROSS_COMPILE" \
	KHDR_INCLUDES="-I$WORK/out-selftests/kselftest/usr/include" \
	"$bench/out/mte_bench_test" >"$bench/build.log" 2>&1 ||
	{ grep -E 'error' "$bench/build.log" | head -20 >&2; die "benchmark build failed (see $bench/build.log)"; }
rm -rf "$bench/inst"
cp -a "$WORK/kselftest-install" "$bench/inst"
cp "$bench/out/mte_bench_test" "$bench/inst/mte_bench"
"$TOP/tooling/mkinitramfs.sh" "$bench/inst" "$bench/initramfs.cpio"
echo "$bench/initramfs.cpio" >&3
