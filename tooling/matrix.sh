#!/usr/bin/env bash
# The full test matrix, judged by tooling/report.py:
#   - the default base (first in tooling/bases): the series checks, then
#     {VHE, nVHE} x {mte=on, mte=off}, one QEMU boot each;
#   - every other base: the series applies with git am, builds, and the VHE
#     kernel passes the mte=on suite.
# Filters for quick runs (TESTBED_ARGS, KSFT_TARGETS) are ignored here: the
# matrix always runs everything.
. "$(dirname "$0")/common.sh"

start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start))s"; }
# Only what the caller's environment sets (common.sh sets TREE for itself).
for v in TESTBED_ARGS TESTBED_FILTER KSFT_TARGETS KVM_MTE_BASE TREE; do
	if printenv "$v" >/dev/null; then
		echo "matrix: ignoring $v=$(printenv "$v"): the matrix runs the whole suite on every base"
		unset "$v"
	fi
done

"$TOP/tooling/deps.sh"
runs=() series=()
mapfile -t bases < <(known_bases)
nruns=$((4 + ${#bases[@]} - 1))
n=0
for base in "${bases[@]}"; do
	export KVM_MTE_BASE=$base
	work=$(KVM_MTE_BASE=$base bash -c ". '$TOP/tooling/common.sh'; echo \$WORK")
	say "base $base: compose, series checks, builds ($(elapsed) so far)"
	"$TOP/tooling/compose.sh"
	if [ "$base" = "${bases[0]}" ]; then
		# Builds every commit in both flavours, ending at the tip: the
		# kernels booted below.
		"$TOP/tooling/check-series.sh" || true
		flavours=(vhe nvhe) modes=(on off)
		series+=("$work/series-check.txt")
	else
		"$TOP/tooling/check-series.sh" am || true
		flavours=(vhe) modes=(on)
		series+=("$work/series-check.txt:am")
	fi
	for f in "${flavours[@]}"; do
		"$TOP/tooling/build-kernel.sh" "$f" >/dev/null
	done
	"$TOP/tooling/build-selftests.sh" >/dev/null
	for f in "${flavours[@]}"; do
		for m in "${modes[@]}"; do
			n=$((n + 1))
			label=$f-mte-$m
			[ "$base" = "${bases[0]}" ] || label=$base-$label
			log=$work/runs/$f-mte-$m.log
			say "run $n/$nruns: $base $f mte=$m ($(elapsed) so far)"
			QUIET=1 "$TOP/tooling/run-qemu.sh" "$work/out-$f/arch/arm64/boot/Image" \
				"$work/initramfs.cpio" "$log" "$f" "$m" || true
			runs+=("$label=$log")
		done
	done
done
unset KVM_MTE_BASE
echo "matrix: builds, checks and runs took $(elapsed)"
series_args=()
for s in "${series[@]}"; do series_args+=(--series "$s"); done
exec "$PYTHON" "$TOP/tooling/report.py" "${series_args[@]}" "${runs[@]}"
