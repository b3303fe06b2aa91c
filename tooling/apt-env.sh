# shellcheck shell=bash
# Private apt configuration for the test bed.
#
# The system's apt configuration is never modified: every apt call made by
# the test bed goes through the config file written here, which reuses the
# mirror that the machine's own sources name and adds the suites the test
# bed needs (bullseye for the 5.10 base, bookworm-backports for QEMU >= 8).

APT_ROOT=${APT_ROOT:-$TOP/build/apt}

apt_mirror() {
	local uri=""
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt/sources.list{,.d/debian.sources}"
	echo "$uri"
}

# apt_setup: write $APT_ROOT/apt.conf and refresh its package lists (once).
apt_setup() {
	local mirror key=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$APT_ROOT/.updated" ] && return 0
	mirror=$(apt_mirror)
	mkdir -p "$APT_ROOT/lists/partial" "$APT_ROOT/archives/partial"
	{
		# The system's own suites, so that dependencies resolve.
		for s in /etc/apt/sources.list.d/*.sources; do
			[ -r "$s" ] && cat "$s" && echo
		done
	} > "$APT_ROOT/system.sources"
	cat > "$APT_ROOT/extra.list" <<EOT
deb [signed-by=$key] $mirror bullseye main
deb [signed-by=$key] $mirror bookworm-backports main
EOT
	mkdir -p "$APT_ROOT/sources.d"
	cp "$APT_ROOT/system.sources" "$APT_ROOT/sources.d/system.sources"
	cat > "$APT_ROOT/apt.conf" <<EOT
Dir::Etc::SourceList "$APT_ROOT/extra.list";
Dir::Etc::SourceParts "$APT_ROOT/sources.d";
Dir::State::Lists "$APT_ROOT/lists";
Dir::Cache::Archives "$APT_ROOT/archives";
Dir::Cache::pkgcache "$APT_ROOT/pkgcache.bin";
Dir::Cache::srcpkgcache "$APT_ROOT/srcpkgcache.bin";
APT::Get::Assume-Yes "true";
Acquire::Retries "3";
APT::Sandbox::User "root";
EOT
	APT_CONFIG="$APT_ROOT/apt.conf" apt-get update -q >"$APT_ROOT/update.log" 2>&1 ||
		die "apt-get update failed (see $APT_ROOT/update.log)"
	touch "$APT_ROOT/.updated"
}

apt_private() {
	APT_CONFIG="$APT_ROOT/apt.conf" DEBIAN_FRONTEND=noninteractive "$@"
}

# A second private configuration whose only architecture is arm64, for
# downloading (never installing) arm64 packages for the QEMU guest.
APT_ROOT_ARM64=$APT_ROOT/arm64

apt_setup_arm64() {
	local mirror key=/usr/share/keyrings/debian-archive-keyring.gpg r=$APT_ROOT_ARM64
	[ -f "$r/.updated" ] && return 0
	mirror=$(apt_mirror)
	mkdir -p "$r/lists/partial" "$r/archives/partial"
	echo "deb [arch=arm64 signed-by=$key] $mirror bookworm main" >"$r/sources.list"
	cat >"$r/apt.conf" <<EOT
Dir::Etc::SourceList "$r/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::State::Lists "$r/lists";
Dir::Cache::Archives "$r/archives";
Dir::Cache::pkgcache "$r/pkgcache.bin";
Dir::Cache::srcpkgcache "$r/srcpkgcache.bin";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Acquire::Retries "3";
EOT
	APT_CONFIG="$r/apt.conf" apt-get update -q >"$r/update.log" 2>&1 ||
		die "apt-get update for arm64 failed (see $r/update.log)"
	touch "$r/.updated"
}

apt_private_arm64() {
	APT_CONFIG="$APT_ROOT_ARM64/apt.conf" DEBIAN_FRONTEND=noninteractive "$@"
}
