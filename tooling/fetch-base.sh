#!/usr/bin/env bash
# Fetch the pristine 5.10 base (Debian's linux-source-5.10 of the version
# that KVM_MTE_BASE names in tooling/bases) with apt, check it against the
# SHA-256 sums kept there and unpack it once into build/cache.
. "$(dirname "$0")/common.sh"

[ -f "$BASE_CACHE/.complete" ] && exit 0

deb=linux-source-5.10_${BASE_DEB_VERSION}_all.deb
deb_sum=$(base_field "$BASE_VERSION" 4)
tar_sum=$(base_field "$BASE_VERSION" 5)
dl=$BUILD/cache/dl
mkdir -p "$dl"

if [ ! -f "$dl/$deb" ]; then
	apt_setup
	apt_need_suite "$BASE_SUITE"
	say "downloading linux-source-5.10=$BASE_DEB_VERSION ($BASE_SUITE)"
	(cd "$dl" && apt_private apt-get download -q "linux-source-5.10=$BASE_DEB_VERSION") \
		>"$dl/download.log" 2>&1 ||
		die "cannot download linux-source-5.10=$BASE_DEB_VERSION: $(grep -m 1 -E '^(E|Err):' "$dl/download.log" || echo "see $dl/download.log")"
fi
echo "$deb_sum  $dl/$deb" | sha256sum -c --quiet - >/dev/null 2>&1 ||
	{ rm -f "$dl/$deb"; die "$deb does not match its SHA-256 in tooling/bases (corrupt download removed)"; }

say "unpacking the $BASE_VERSION base into $BASE_CACHE"
tmp=$BUILD/cache/unpack.$$
rm -rf "$tmp"
mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$dl/$deb" |
	tar -x -C "$tmp" --wildcards './usr/src/linux-source-5.10.tar.xz' ||
	die "$deb is not a valid package"
tarball=$tmp/usr/src/linux-source-5.10.tar.xz
echo "$tar_sum  $tarball" | sha256sum -c --quiet - >/dev/null 2>&1 ||
	die "the tarball inside $deb does not match its SHA-256 in tooling/bases"
tar -xJf "$tarball" -C "$tmp" || die "cannot unpack $tarball"
rm -rf "$BASE_CACHE"
mv "$tmp/linux-source-5.10" "$BASE_CACHE"
rm -rf "$tmp"
touch "$BASE_CACHE/.complete"
