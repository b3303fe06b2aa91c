#!/usr/bin/env bash
# Fetch the mainline peers of the benchmarks: Debian's arm64 cloud kernels
# (trixie's 6.12 and bookworm's 6.1), downloaded with apt and unpacked, never
# installed or built. They have KVM, MTE and the PL011 console built in and
# boot under the test bed's QEMU with the same initramfs.
#
#   tooling/fetch-peer.sh [SUITE...]    (default: trixie)
#
# Prints one line per suite: SUITE VERSION IMAGE.
. "$(dirname "$0")/common.sh"

exec 3>&1 1>&2
[ $# -gt 0 ] || set -- trixie

r=$APT_ROOT/peer
mirror=$(apt_mirror)
mkdir -p "$r"
: >"$r/sources.list.new"
for suite in "$@"; do
	case $suite in trixie | bookworm) ;; *) die "no cloud kernel suite '$suite' (trixie or bookworm)" ;; esac
	echo "deb [arch=arm64 signed-by=$DEBIAN_KEYRING] $mirror $suite main" >>"$r/sources.list.new"
done
mv "$r/sources.list.new" "$r/sources.list"
apt_config "$r" "$r/sources.list" 'APT::Architecture "arm64";' 'APT::Architectures { "arm64"; };'

for suite in "$@"; do
	# The metapackage names the suite's current kernel package.
	pkg=$(APT_CONFIG="$r/apt.conf" apt-cache depends -q "linux-image-cloud-arm64/$suite" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || die "no linux-image-cloud-arm64 in $suite"
	ver=${pkg#linux-image-}
	ver=${ver%-cloud-arm64}
	dir=$BUILD/cache/peer/$pkg
	if [ ! -f "$dir/boot/vmlinuz-$ver-cloud-arm64" ]; then
		say "fetching $pkg ($suite)"
		rm -rf "$dir" && mkdir -p "$dir"
		(cd "$dir" && APT_CONFIG="$r/apt.conf" apt-get download -q "$pkg/$suite") \
			>"$r/$pkg.log" 2>&1 || die "cannot download $pkg (see $r/$pkg.log)"
		dpkg-deb --fsys-tarfile "$dir"/*.deb | tar -x -C "$dir" ./boot ||
			die "cannot unpack $pkg"
		rm -f "$dir"/*.deb
	fi
	cfg=$dir/boot/config-$ver-cloud-arm64
	for opt in CONFIG_KVM=y CONFIG_ARM64_MTE=y CONFIG_SERIAL_AMBA_PL011_CONSOLE=y; do
		grep -qx "$opt" "$cfg" || die "$pkg lacks $opt"
	done
	echo "$suite $ver $dir/boot/vmlinuz-$ver-cloud-arm64" >&3
done
