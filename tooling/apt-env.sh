# shellcheck shell=bash
# Private apt configuration for the test bed.
#
# The system's apt configuration is never modified: every apt call made by
# the test bed goes through the config file written here, which reuses the
# mirrors that the machine's own sources name and adds the suites the test
# bed needs (bullseye and bullseye-security for the 5.10 bases,
# bookworm-backports for QEMU >= 8).

APT_ROOT=${APT_ROOT:-$BUILD/apt}
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The URIs of the machine's Debian sources, deb822 or one-line style, one
# per line: "MAIN URI" for the archive, "SECURITY URI" for the security one.
apt_system_uris() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
			function flush() { if (uri != "" && suites != "") print (suites ~ /-security/ ? "SECURITY " : "MAIN ") uri; uri = suites = "" }
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { suites = $0 }
			# Only the Debian archive'"'"'s own sources, not third-party ones.
			/^Signed-By:/ && $2 != "'"$DEBIAN_KEYRING"'" { uri = ""; suites = "" }
			END { flush() }' "$f"
	done
	if [ -r /etc/apt/sources.list ]; then
		awk '$1 == "deb" {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { uri = $i; suite = $(i + 1); break }
			if (uri ~ /debian/) print (suite ~ /-security/ ? "SECURITY " : "MAIN ") uri
		}' /etc/apt/sources.list
	fi
}

apt_mirror() {
	local uri
	uri=$(apt_system_uris | awk '$1 == "MAIN" { print $2; exit }')
	[ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt/sources.list{,.d/*.sources}"
	echo "$uri"
}

apt_security_mirror() {
	apt_system_uris | awk '$1 == "SECURITY" { print $2; exit }'
}

# apt_config ROOT SOURCELIST [EXTRA_LINE...]: write ROOT/apt.conf for a
# private apt state under ROOT and refresh its package lists when the
# sources changed.
apt_config() {
	local r=$1 list=$2 line stamp
	shift 2
	stamp=$(cat "$list" | sha256sum | cut -d' ' -f1)
	[ "$(cat "$r/.updated" 2>/dev/null)" = "$stamp" ] && return 0
	mkdir -p "$r/lists/partial" "$r/archives/partial"
	{
		echo "Dir::Etc::SourceList \"$list\";"
		echo "Dir::Etc::SourceParts \"/dev/null\";"
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
		die "apt-get update failed, is the mirror reachable? ($(grep -m 1 -E '^(Err|E):' "$r/update.log" || echo "see $r/update.log"))"
	echo "$stamp" >"$r/.updated"
}

# The system's Debian suites (so that dependencies resolve), bullseye and
# bullseye-security for the bases, bookworm-backports for QEMU.
apt_setup() {
	local mirror security
	[ -n "${APT_SETUP_DONE:-}" ] && return 0
	mirror=$(apt_mirror)
	security=$(apt_security_mirror)
	mkdir -p "$APT_ROOT"
	{
		echo "deb [signed-by=$DEBIAN_KEYRING] $mirror bookworm bookworm-updates main"
		echo "deb [signed-by=$DEBIAN_KEYRING] $mirror bookworm-backports main"
		echo "deb [signed-by=$DEBIAN_KEYRING] $mirror bullseye main"
		if [ -n "$security" ]; then
			echo "deb [signed-by=$DEBIAN_KEYRING] $security bookworm-security main"
			echo "deb [signed-by=$DEBIAN_KEYRING] $security bullseye-security main"
		fi
	} >"$APT_ROOT/sources.list.new"
	mv "$APT_ROOT/sources.list.new" "$APT_ROOT/sources.list"
	apt_config "$APT_ROOT" "$APT_ROOT/sources.list"
	APT_SETUP_DONE=1
}

# apt_need_suite SUITE: die unless the private sources carry SUITE.
apt_need_suite() {
	grep -q " $1 " "$APT_ROOT/sources.list" ||
		die "no apt source for $1: the machine's apt sources name no Debian security mirror"
}

apt_private() {
	APT_CONFIG="$APT_ROOT/apt.conf" DEBIAN_FRONTEND=noninteractive "$@"
}

# A second private configuration whose only architecture is arm64, for
# downloading (never installing) arm64 packages for the QEMU guest.
APT_ROOT_ARM64=$APT_ROOT/arm64

apt_setup_arm64() {
	local mirror r=$APT_ROOT_ARM64
	mirror=$(apt_mirror)
	mkdir -p "$r"
	echo "deb [arch=arm64 signed-by=$DEBIAN_KEYRING] $mirror bookworm main" >"$r/sources.list"
	apt_config "$r" "$r/sources.list" 'APT::Architecture "arm64";' \
		'APT::Architectures { "arm64"; };'
}

apt_private_arm64() {
	APT_CONFIG="$APT_ROOT_ARM64/apt.conf" DEBIAN_FRONTEND=noninteractive "$@"
}
