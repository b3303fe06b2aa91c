#!/usr/bin/env bash
# Pack the installed kselftests, busybox and the init script into an
# uncompressed cpio initramfs.
#
#   tooling/mkinitramfs.sh KSELFTEST_INSTALL_DIR OUTPUT.cpio
. "$(dirname "$0")/common.sh"

inst=${1:?usage: mkinitramfs.sh KSELFTEST_INSTALL_DIR OUTPUT.cpio}
out=${2:?usage: mkinitramfs.sh KSELFTEST_INSTALL_DIR OUTPUT.cpio}
bb=$BUILD/cache/busybox/bin/busybox
[ -x "$bb" ] || die "no arm64 busybox at $bb (run tooling/deps.sh)"
[ -x "$inst/run_kselftest.sh" ] || die "no kselftest install in $inst (run make selftests)"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$TOP/tooling/initramfs/init" "$root/init"
chmod 755 "$root/init"
# kselftest's runner enforces the per-test timeout of the "settings" file
# with /usr/bin/timeout --foreground, an option busybox does not take.
mkdir -p "$root/usr/bin"
cp "$TOP/tooling/initramfs/timeout" "$root/usr/bin/timeout"
chmod 755 "$root/usr/bin/timeout"
cp -a "$inst" "$root/kselftest"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
