#!/usr/bin/env bash
# Prove the README's two commands on a fresh Debian 12 machine: build a
# minimal Debian 12 root with debootstrap (or mmdebstrap) from the mirror
# this machine's apt uses, copy a clean clone of this repository's HEAD into
# it, and run, as a new user would (as root, in a chroot with /proc, /sys
# and /dev bound; QEMU runs under TCG and needs no /dev/kvm):
#
#   tooling/demo.sh      the main job
#   tooling/matrix.sh    the full test matrix
#
# Prints the wall time of each and its last lines; exits non-zero if either
# fails. Not part of .ci/run (it takes most of an hour on 2 cores).
#
#   tooling/fresh-machine.sh [--only demo|matrix] [--new-root]
#     --new-root   debootstrap again instead of reusing the cached root
#                  tarball (the root is unpacked afresh every run anyway)
# Environment: FRESH_DIR (default build/fresh).
. "$(dirname "$0")/common.sh"

only="" new_root=0
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=${2:?--only needs demo or matrix}; shift 2 ;;
	--new-root) new_root=1; shift ;;
	*) die "usage: fresh-machine.sh [--only demo|matrix] [--new-root]" ;;
	esac
done
case $only in "" | demo | matrix) ;; *) die "--only takes demo or matrix, not '$only'" ;; esac

[ "$(id -u)" = 0 ] || die "fresh-machine.sh needs root (debootstrap, chroot and bind mounts)"
[ -e /proc/self/exe ] || die "/proc is not mounted on this machine"
dir=$(realpath -m "${FRESH_DIR:-$BUILD/fresh}")
root=$dir/root
tarball=$dir/debian12-minbase.tar
mirror=$(apt_mirror)

if ! command -v mmdebstrap >/dev/null 2>&1 && ! command -v debootstrap >/dev/null 2>&1; then
	say "installing debootstrap"
	apt_setup
	apt_private apt-get install -q --no-install-recommends debootstrap >"$APT_ROOT/install-debootstrap.log" 2>&1 ||
		die "neither mmdebstrap nor debootstrap is installed, and installing debootstrap failed (see $APT_ROOT/install-debootstrap.log)"
fi

mounted=()
cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -l "${mounted[$i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT

if [ $new_root = 1 ] || [ ! -s "$tarball" ]; then
	say "building a minimal Debian 12 root from $mirror"
	mkdir -p "$dir"
	rm -rf "$dir/stage"
	if command -v mmdebstrap >/dev/null 2>&1; then
		mmdebstrap --variant=minbase bookworm "$tarball.tmp" "$mirror" >"$dir/bootstrap.log" 2>&1 ||
			die "mmdebstrap failed: $(grep -m 1 -iE 'error|fail|unable' "$dir/bootstrap.log" || echo "see $dir/bootstrap.log")"
	else
		debootstrap --variant=minbase bookworm "$dir/stage" "$mirror" >"$dir/bootstrap.log" 2>&1 ||
			die "debootstrap failed: $(grep -m 1 -E '^[EW]:' "$dir/bootstrap.log" || echo "see $dir/bootstrap.log")"
		tar -C "$dir/stage" -cf "$tarball.tmp" .
		rm -rf "$dir/stage"
	fi
	mv "$tarball.tmp" "$tarball"
fi

say "unpacking a fresh root in $root"
# A run killed before its EXIT trap leaves the host's /dev bound in the old
# root: removing that root would empty the host's /dev.
mounts_under() { awk -v r="$1/" 'index($2 "/", r) == 1 { print $2 }' /proc/self/mounts | sort -r; }
for m in $(mounts_under "$root"); do
	umount -l "$m" || die "cannot unmount $m, left bound by an earlier run"
done
[ -z "$(mounts_under "$root")" ] || die "something is still mounted under $root; not removing it"
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
# The mirror this machine uses, as a fresh install from it would have.
security=$(apt_security_mirror)
{
	echo "deb $mirror bookworm bookworm-updates main"
	[ -z "$security" ] || echo "deb $security bookworm-security main"
} >"$root/etc/apt/sources.list"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
commit=$(git -C "$TOP" rev-parse --short HEAD)
git clone -q --no-local "$TOP" "$root/root/kvm-mte" || die "cannot clone $TOP"
[ -z "$(git -C "$TOP" status --porcelain --untracked-files=no)" ] ||
	echo "note: uncommitted changes in $TOP are not part of the clone (HEAD $commit)"

for m in proc sys dev dev/pts; do
	mkdir -p "$root/$m"
	mount --bind "/$m" "$root/$m" || die "cannot bind /$m into $root"
	mounted+=("$root/$m")
done

# run NAME COMMAND: one README command in the chroot, timed.
results=()
status=0
run() {
	local name=$1 cmd=$2 t0 rc
	say "fresh machine: $cmd (clone of $commit)"
	t0=$(date +%s)
	set +e
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash -c "cd /root/kvm-mte && $cmd" 2>&1 | tee "$dir/$name.log" |
		grep --line-buffered -E '^(==>|matrix:|error:|FAIL|    \[|    commit )'
	rc=${PIPESTATUS[0]}
	set -e
	local secs=$(($(date +%s) - t0))
	results+=("$(printf '%-20s exit %d  %dm%02ds' "$cmd" "$rc" $((secs / 60)) $((secs % 60)))")
	echo "--- last lines of $cmd:"
	tail -n 6 "$dir/$name.log"
	[ "$rc" = 0 ] || status=1
}

[ "$only" = matrix ] || run demo tooling/demo.sh
[ "$only" = demo ] || run matrix tooling/matrix.sh
echo
echo "fresh Debian 12 root, clone of $commit, $(nproc) cores:"
printf '  %s\n' "${results[@]}"
exit $status
