#!/usr/bin/env bash
# The full test matrix: {VHE, nVHE} x {mte=on, mte=off}, one QEMU boot each,
# judged by tooling/report.py.
. "$(dirname "$0")/common.sh"

start=$(date +%s)
"$TOP/tooling/deps.sh"
"$TOP/tooling/compose.sh"
# The series checks build every commit in both flavours, ending at the tip:
# the kernels the matrix boots below.
"$TOP/tooling/check-series.sh" || true
for f in vhe nvhe; do
	"$TOP/tooling/build-kernel.sh" "$f" >/dev/null
done
"$TOP/tooling/build-selftests.sh" >/dev/null

runs=()
for f in vhe nvhe; do
	for m in on off; do
		log=$BUILD/runs/$f-mte-$m.log
		QUIET=1 "$TOP/tooling/run-qemu.sh" "$BUILD/out-$f/arch/arm64/boot/Image" \
			"$BUILD/initramfs.cpio" "$log" "$f" "$m" || true
		runs+=("$f-mte-$m=$log")
	done
done
echo "matrix: builds, checks and runs took $(($(date +%s) - start))s"
exec python3 "$TOP/tooling/report.py" --series "$BUILD/series-check.txt" "${runs[@]}"
