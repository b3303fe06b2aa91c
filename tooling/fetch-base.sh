#!/usr/bin/env bash
# Fetch the pristine 5.10 base (Debian bullseye's linux-source-5.10) with apt,
# check it against the SHA-256 kept in the repo and unpack it once into
# build/cache.
. "$(dirname "$0")/common.sh"

[ -f "$BASE_CACHE/.complete" ] && exit 0

sums=$TOP/tooling/base.sha256
deb=linux-source-5.10_${BASE_DEB_VERSION}_all.deb
dl=$BUILD/cache/dl
mkdir -p "$dl"

if [ ! -f "$dl/$deb" ]; then
	apt_setup
	say "downloading linux-source-5.10=$BASE_DEB_VERSION"
	(cd "$dl" && apt_private apt-get download -q "linux-source-5.10=$BASE_DEB_VERSION") \
		>"$dl/download.log" 2>&1 ||
		die "cannot download linux-source-5.10=$BASE_DEB_VERSION (see $dl/download.log)"
fi
(cd "$dl" && grep " $deb\$" "$sums" | sha256sum -c --quiet -) ||
	{ rm -f "$dl/$deb"; die "$deb does not match tooling/base.sha256 (corrupt download removed)"; }

say "unpacking the base into $BASE_CACHE"
tmp=$BUILD/cache/unpack.$$
rm -rf "$tmp"
mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$dl/$deb" |
	tar -x -C "$tmp" --wildcards './usr/src/linux-source-5.10.tar.xz' ||
	die "$deb is not a valid package"
tarball=$tmp/usr/src/linux-source-5.10.tar.xz
(cd "$dl" && grep ' linux-source-5.10.tar.xz$' "$sums" |
	sed "s|linux-source-5.10.tar.xz|$tarball|" | sha256sum -c --quiet -) ||
	die "the tarball inside $deb does not match tooling/base.sha256"
tar -xJf "$tarball" -C "$tmp" || die "cannot unpack $tarball"
rm -rf "$BASE_CACHE"
mv "$tmp/linux-source-5.10" "$BASE_CACHE"
rm -rf "$tmp"
touch "$BASE_CACHE/.complete"
