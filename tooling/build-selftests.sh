#!/usr/bin/env bash
# Build and install the series' C++ KVM selftests through the kernel's own
# kselftest entry points, then pack them into an initramfs.
#
#   tooling/build-selftests.sh [TREE]   -> build/kselftest-install, build/initramfs.cpio
. "$(dirname "$0")/common.sh"

tree=$(realpath -m "${1:-$TREE}")
out=$WORK/out-selftests
inst=$WORK/kselftest-install
targets=${KSFT_TARGETS:-kvm/mte}

need_cmd "${CROSS_COMPILE}g++" "install g++-aarch64-linux-gnu (tooling/deps.sh)"
for t in $targets; do
	[ -d "$tree/tools/testing/selftests/$t" ] || die "no selftest target $t in $tree (run make compose)"
done

say "building selftests ($targets)"
rm -rf "$inst"
make -C "$tree/tools/testing/selftests" TARGETS="$targets" ARCH=arm64 \
	CROSS_COMPILE="$CROSS_COMPILE" KBUILD_OUTPUT="$out" KSFT_INSTALL_PATH="$inst" \
	KHDR_INCLUDES="-I$out/kselftest/usr/include" FORCE_TARGETS=1 \
	install >"$WORK/selftests.log" 2>&1 ||
	{ grep -E 'error|Error' "$WORK/selftests.log" | head -20 >&2; die "selftest build failed (see $WORK/selftests.log)"; }
[ -s "$inst/kselftest-list.txt" ] || die "selftest install produced no test list (see $WORK/selftests.log)"
"$TOP/tooling/mkinitramfs.sh" "$inst" "$WORK/initramfs.cpio"
echo "$WORK/initramfs.cpio"
