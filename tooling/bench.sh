#!/usr/bin/env bash
# The benchmarks against mainline, in one command: this series' release
# kernels (VHE and nVHE) and Debian's mainline cloud kernel (VHE, and nVHE
# with kvm-arm.mode=nvhe) each boot ROUNDS times, alternating, under the
# same QEMU with the same initramfs and benchmark binary; then
# tooling/bench_report.py prints the table of medians and ratios and draws
# the plot.
#
#   tooling/bench.sh            the whole set, ROUNDS=5 (about an hour)
#   SMOKE=1 tooling/bench.sh    one small size of each figure, one round,
#                               ours and mainline with VHE (CI)
#
# Environment: ROUNDS, BENCH_FILTER (a KTEST_FILTER regex over the figures:
# copy.*, limit.*, first_touch.*, exits.*, save_restore.*), KERNELS (a
# subset of "ours-vhe ours-nvhe mainline-vhe mainline-nvhe"), PEER_SUITE
# (trixie: 6.12, or bookworm: 6.1).
. "$(dirname "$0")/common.sh"

out=$WORK/bench
if [ -n "${SMOKE:-}" ]; then
	rounds=${ROUNDS:-1}
	filter=${BENCH_FILTER:-'copy\.small_64m|limit\.tags_of_64m|first_touch\.small_pages|exits\.hvc'}
	kernels=${KERNELS:-ours-vhe mainline-vhe}
else
	rounds=${ROUNDS:-5}
	filter=${BENCH_FILTER:-}
	kernels=${KERNELS:-ours-vhe ours-nvhe mainline-vhe mainline-nvhe}
fi
peer_suite=${PEER_SUITE:-trixie}
# 1 GiB guests with their copies side by side, and the hugetlb pools of
# the copy figures, reserved at boot while memory is not fragmented.
mem=8192
pools="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=520"

"$TOP/tooling/deps.sh" $([ -n "${SMOKE:-}" ] || echo bench) >/dev/null
t0=$SECONDS
# build-kernel.sh keeps stdout for the image path, progress goes to stderr.
declare -A image append
for k in $kernels; do
	case $k in
	ours-vhe | ours-nvhe)
		image[$k]=$("$TOP/tooling/build-kernel.sh" "release-${k#ours-}")
		append[$k]="" ;;
	mainline-vhe | mainline-nvhe)
		read -r _ peer_version image[$k] < <("$TOP/tooling/fetch-peer.sh" "$peer_suite")
		append[$k]=$([ "$k" = mainline-nvhe ] && echo "kvm-arm.mode=nvhe" || true) ;;
	*) die "unknown kernel '$k' (ours-vhe ours-nvhe mainline-vhe mainline-nvhe)" ;;
	esac
done
initrd=$("$TOP/tooling/build-bench.sh")

runs=$out/runs
rm -rf "$runs" && mkdir -p "$runs"
logs=()
nk=$(echo $kernels | wc -w)
for r in $(seq 1 "$rounds"); do
	i=0
	for k in $kernels; do
		i=$((i + 1))
		say "round $r of $rounds, kernel $i of $nk: $k [$((SECONDS - t0))s elapsed]"
		log=$runs/$k-$r.log
		flavour=${k#*-}
		QEMU_MEM=$mem KERNEL_APPEND="$pools ${append[$k]}" TESTBED_BENCH=1 \
			TESTBED_FILTER="$filter" QUIET=1 \
			"$TOP/tooling/run-qemu.sh" "${image[$k]}" "$initrd" "$log" "$flavour" on 3600
		logs+=("$k=$log")
	done
done
say "benchmarks done in $((SECONDS - t0))s"
"$PYTHON" "$TOP/tooling/bench_report.py" --peer "Debian ${peer_version:-?} ($peer_suite cloud)" \
	--out "$out" ${SMOKE:+--no-plot} "${logs[@]}"
