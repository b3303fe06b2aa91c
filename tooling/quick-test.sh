#!/usr/bin/env bash
# Iterate on selftests without composing or rebuilding anything else: build
# the C++ selftests straight from this repo's overlay, pack one test binary
# into a throw-away initramfs, and run it under QEMU on an already built
# kernel. Prints the test's KTAP output.
#
#   tooling/quick-test.sh TEST [FILTER] [FLAVOUR] [MTE]
#     TEST     binary name, e.g. mte_cap_test
#     FILTER   glob on suite.name, comma separated (default: all tests)
#     FLAVOUR  vhe (default) or nvhe: uses build/out-FLAVOUR/arch/arm64/boot/Image
#     MTE      on (default) or off
# Environment: QUICK_DIR (scratch dir, default build/quick), QEMU_TIMEOUT.
. "$(dirname "$0")/common.sh"

test=${1:?usage: quick-test.sh TEST [FILTER] [FLAVOUR] [MTE]}
filter=${2:-}
flavour=${3:-vhe}
mte=${4:-on}
dir=$(realpath -m "${QUICK_DIR:-$BUILD/quick}")
src=$TOP/tools/testing/selftests/kvm/mte
hdr=$BUILD/out-selftests/kselftest/usr/include
image=$BUILD/out-$flavour/arch/arm64/boot/Image

[ -f "$image" ] || die "no $flavour kernel: run tooling/build-kernel.sh $flavour"
[ -d "$hdr/linux" ] || die "no exported uapi headers in $hdr: run tooling/build-selftests.sh once"

make -s -C "$src" OUTPUT="$dir/out" KHDR_INCLUDES="-I$hdr" CROSS_COMPILE="$CROSS_COMPILE" \
	"$dir/out/$test" || die "build of $test failed"

root=$dir/root
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$BUILD/cache/busybox/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$dir/out/$test" "$root/$test"
cat >"$root/init" <<EOT
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
if [ -e /sys/block/zram0 ]; then
	echo 256M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0
fi
echo "quick-test: start"
/$test $(echo "$filter" | tr ',' ' ')
echo "quick-test: rc=\$?"
poweroff -f
EOT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$dir/initramfs.cpio"
QUIET=1 "$TOP/tooling/run-qemu.sh" "$image" "$dir/initramfs.cpio" "$dir/console.log" \
	"$flavour" "$mte" "${QEMU_TIMEOUT:-300}" || true
sed -n '/^quick-test: start/,/^quick-test: rc=/p' "$dir/console.log" | grep -v '^quick-test: start'
grep -E 'WARNING:|BUG:|Oops|Internal error|Kernel panic|Call trace:|lockdep|circular locking' \
	"$dir/console.log" && echo "quick-test: console shows a kernel splat (see $dir/console.log)"
exit 0
