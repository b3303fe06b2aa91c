#!/usr/bin/env bash
# Install what the test bed needs on a Debian 12 machine, with apt:
# the arm64 cross toolchain, kernel build dependencies, QEMU >= 8.0 from
# bookworm-backports (Debian 12's own QEMU 7.2 keeps one MTE tag per page
# under TCG and corrupts tags), and a static arm64 busybox for the
# initramfs. Quick when everything is already there.
#
#   tooling/deps.sh [bench]
. "$(dirname "$0")/common.sh"

# A chroot without /proc breaks apt, the builds and QEMU in obscure ways.
[ -e /proc/self/exe ] || die "/proc is not mounted (in a chroot, bind /proc, /sys and /dev first)"

pkgs=(make gcc g++ gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu
	bc flex bison libssl-dev libelf-dev cpio ccache python3 xz-utils git rsync
	perl kmod sparse python3-docutils clang-format cppcheck)
# "deps.sh bench": also what the benchmarks' plot needs.
[ "${1:-}" != bench ] || pkgs+=(python3-matplotlib)
qemu_min=8.0

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

qemu_ok() {
	local v
	command -v qemu-system-aarch64 >/dev/null 2>&1 || return 1
	v=$(qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9]*\.[0-9]*\).*/\1/p')
	[ -n "$v" ] && [ "$(printf '%s\n%s\n' "$qemu_min" "$v" | sort -V | head -n 1)" = "$qemu_min" ]
}

if [ ${#missing[@]} -gt 0 ] || ! qemu_ok; then
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 ||
			die "missing packages (${missing[*]} qemu-system-arm>=$qemu_min): run as root"
		exec sudo "$0" "$@"
	fi
	apt_setup
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		apt_private apt-get install -q --no-install-recommends "${missing[@]}" \
			>"$APT_ROOT/install.log" 2>&1 || die "apt-get install failed (see $APT_ROOT/install.log)"
	fi
	if ! qemu_ok; then
		say "installing qemu-system-arm from bookworm-backports"
		apt_private apt-get install -q --no-install-recommends -t bookworm-backports \
			qemu-system-arm qemu-efi-aarch64- >"$APT_ROOT/install-qemu.log" 2>&1 ||
			die "cannot install qemu-system-arm from bookworm-backports (see $APT_ROOT/install-qemu.log)"
	fi
fi
qemu_ok || die "QEMU $qemu_min or later is required (found: $(qemu-system-aarch64 --version 2>/dev/null | head -n 1)); Debian 12's QEMU 7.2 corrupts MTE tags under TCG"

# A static arm64 busybox: the shell, mount and poweroff of the initramfs.
bb=$BUILD/cache/busybox/bin/busybox
if [ ! -x "$bb" ]; then
	say "fetching busybox-static for arm64"
	apt_setup_arm64
	mkdir -p "$BUILD/cache/busybox"
	(cd "$BUILD/cache/busybox" && apt_private_arm64 apt-get download -q busybox-static) \
		>"$APT_ROOT/busybox.log" 2>&1 || die "cannot download busybox-static:arm64 (see $APT_ROOT/busybox.log)"
	dpkg-deb -x "$BUILD"/cache/busybox/busybox-static_*_arm64.deb "$BUILD/cache/busybox" ||
		die "cannot unpack busybox-static"
	[ -x "$bb" ] || die "busybox-static has no bin/busybox"
fi
