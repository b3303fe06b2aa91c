#!/usr/bin/env bash
# Build the composed tree for one flavour: vhe or nvhe (the test bed's
# kernels), release-vhe or release-nvhe (the benchmarks'), debug (KASAN,
# lockdep, page and list checking, fault injection).
#
#   tooling/build-kernel.sh FLAVOUR [TREE] [OUT]
#
# The configuration is allnoconfig plus tooling/config/base.config (plus
# nvhe.config for nVHE); every option the fragments ask for is checked to be
# in the final .config, so a dependency that silently drops an option fails
# the build instead of producing a kernel that tests less than it claims.
. "$(dirname "$0")/common.sh"

# Progress goes to stderr; stdout carries only the image's path.
exec 3>&1 1>&2

flavour=${1:?usage: build-kernel.sh FLAVOUR [TREE] [OUT]}
tree=${2:-$TREE}
out=$(realpath -m "${3:-$WORK/out-$flavour}")
tree=$(realpath -m "$tree")
cfgdir=$TOP/tooling/config

case $flavour in
vhe) frags=("$cfgdir/base.config") ;;
nvhe) frags=("$cfgdir/base.config" "$cfgdir/nvhe.config") ;;
release-vhe) frags=("$cfgdir/base.config" "$cfgdir/release.config") ;;
release-nvhe) frags=("$cfgdir/base.config" "$cfgdir/nvhe.config" "$cfgdir/release.config") ;;
debug) frags=("$cfgdir/base.config" "$cfgdir/debug.config") ;;
*) die "unknown flavour '$flavour' (vhe, nvhe, release-vhe, release-nvhe or debug)" ;;
esac

need_cmd "${CROSS_COMPILE}gcc" "install gcc-aarch64-linux-gnu (make deps)"
[ -f "$tree/Makefile" ] || die "no kernel tree at $tree (run make compose)"

cc="${CROSS_COMPILE}gcc"
if command -v ccache >/dev/null 2>&1; then
	cc="ccache $cc"
	# Hits across checkouts in other folders (CI clones): hash paths
	# relative to the checkout, not the folder the build runs in.
	export CCACHE_BASEDIR=$TOP CCACHE_NOHASHDIR=true
fi
kmake=(make -C "$tree" O="$out" ARCH=arm64 CROSS_COMPILE="$CROSS_COMPILE" CC="$cc"
	KBUILD_BUILD_TIMESTAMP="@0" KBUILD_BUILD_USER=kvm-mte KBUILD_BUILD_HOST=testbed
	-j"$(nproc)")

mkdir -p "$out"
stamp=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -f "$out/.config" ] || [ "$(cat "$out/.fragments" 2>/dev/null)" != "$stamp" ]; then
	say "configuring $flavour"
	"${kmake[@]}" -s allnoconfig >/dev/null
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" \
		>"$out/merge_config.log" 2>&1 || die "merge_config failed (see $out/merge_config.log)"
	"${kmake[@]}" -s olddefconfig >/dev/null
	# The last fragment that names an option wins, as in merge_config.sh.
	missing=$(cat "${frags[@]}" | awk '
		/^CONFIG_[A-Z0-9_]*=/ { split($0, kv, "="); want[kv[1]] = $0; next }
		/^# CONFIG_[A-Z0-9_]* is not set$/ { want[$2] = $0 }
		END { for (k in want) print want[k] }' |
		while IFS= read -r want; do
			case $want in
			# Off: also when its dependencies keep it out of .config.
			"# CONFIG_"*" is not set")
				opt=${want#\# }
				opt=${opt%% *}
				! grep -q "^$opt=" "$out/.config" || echo "$want" ;;
			*) grep -qxF -- "$want" "$out/.config" || echo "$want" ;;
			esac
		done)
	[ -z "$missing" ] || die "kernel config for $flavour lacks: $(echo $missing)"
	echo "$stamp" >"$out/.fragments"
fi

# CONFIG_ONLY=1: stop at the configured tree (single-object builds follow).
if [ -n "${CONFIG_ONLY:-}" ]; then
	exit 0
fi

say "building $flavour kernel in $out"
# A cold build takes minutes on 2 cores: say every 30 s how far it got.
"${kmake[@]}" Image >"$out/build.log" 2>&1 &
pid=$! t0=$SECONDS next=30
while kill -0 "$pid" 2>/dev/null; do
	sleep 1
	if [ $((SECONDS - t0)) -ge $next ]; then
		printf '    [%4ds] %s kernel: %d files compiled\n' $((SECONDS - t0)) "$flavour" \
			"$(grep -c '^  CC ' "$out/build.log" || true)"
		next=$((next + 30))
	fi
done
wait "$pid" ||
	{ grep -E 'error|Error' "$out/build.log" | head -20 >&2; die "$flavour kernel build failed (see $out/build.log)"; }
grep -E '(warning|error):' "$out/build.log" | grep -v '^make' >"$out/warnings.log" || true
echo "$out/arch/arm64/boot/Image" >&3
