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

# apt_config ROOT SOURCELIST SOURCEPARTS [EXTRA_LINE...]: write ROOT/apt.conf
# for a private apt state under ROOT and refresh its package lists (once).
apt_config() {
	local r=$1 list=$2 parts=$3 line
	shift 3
	[ -f "$r/.updated" ] && return 0
	mkdir -p "$r/lists/partial" "$r/archives/partial"
	{
		echo "Dir::Etc::SourceList \"$list\";"
		echo "Dir::Etc::SourceParts \"$parts\";"
		for d in Dir::State::Lists=lists Dir::Cache::Archives=archives \
			Dir::Cache::pkgcache=pkgcache.bin Dir::Cache::srcpkgcache=srcpkgcache.bin; do
			echo "${d%%=*} \"$r/${d#*=}\";"
		done
		echo 'APT::Get::Assume-Yes "true";'
		echo 'Acquire::Retries "3";'
		echo 'APT::Sandbox::User "root";'
		for line in "$@"; do echo "$line"; done
	} >"$r/apt.conf"
	APT_CONFIG="$r/apt.conf" apt-get update -q >"$r/update.log" 2>&1 ||
		die "apt-get update failed (see $r/update.log)"
	touch "$r/.updated"
}

# The system's suites (so that dependencies resolve) plus bullseye for the
# base and bookworm-backports for QEMU.
apt_setup() {
	local mirror key=/usr/share/keyrings/debian-archive-keyring.gpg s
	[ -f "$APT_ROOT/.updated" ] && return 0
	mirror=$(apt_mirror)
	mkdir -p "$APT_ROOT/sources.d"
	for s in /etc/apt/sources.list.d/*.sources; do
		[ -r "$s" ] && cp "$s" "$APT_ROOT/sources.d/"
	done
	{
		cat <<EOT
deb [signed-by=$key] $mirror bullseye main
deb [signed-by=$key] $mirror bookworm-backports main
EOT
		# A machine with a one-line-style sources.list instead.
		[ -r /etc/apt/sources.list ] && grep -E '^deb ' /etc/apt/sources.list || true
	} >"$APT_ROOT/extra.list"
	apt_config "$APT_ROOT" "$APT_ROOT/extra.list" "$APT_ROOT/sources.d"
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
	mkdir -p "$r"
	echo "deb [arch=arm64 signed-by=$key] $mirror bookworm main" >"$r/sources.list"
	apt_config "$r" "$r/sources.list" /dev/null 'APT::Architecture "arm64";' \
		'APT::Architectures { "arm64"; };'
}

apt_private_arm64() {
	APT_CONFIG="$APT_ROOT_ARM64/apt.conf" DEBIAN_FRONTEND=noninteractive "$@"
}
