#!/usr/bin/env bash
# Boot one kernel under QEMU with MTE emulation and EL2, run the initramfs's
# kselftests, and keep the serial console in a log.
#
# The machine has exactly the devices the runs use: the virt board's own
# PL011 UART and GIC, no default devices (-nodefaults) and no network
# (-nic none), so that no ROM or firmware package is needed.
#
#   tooling/run-qemu.sh IMAGE INITRAMFS LOG FLAVOUR MTE(on|off) [TIMEOUT_S]
. "$(dirname "$0")/common.sh"

image=${1:?usage: run-qemu.sh IMAGE INITRAMFS LOG FLAVOUR on|off [TIMEOUT]}
initrd=${2:?}
log=${3:?}
flavour=${4:?}
mte=${5:?}
limit=${6:-${QEMU_TIMEOUT:-900}}
args=${TESTBED_ARGS:-}
# The benchmarks boot with more memory and hugetlb pools, and the mainline
# peer in nVHE mode with kvm-arm.mode=nvhe.
mem=${QEMU_MEM:-3072}
append=${KERNEL_APPEND:-hugepagesz=1G hugepages=1}

case $mte in on | off) ;; *) die "MTE must be on or off, not '$mte'" ;; esac
[ -f "$image" ] || die "no kernel image $image"
[ -f "$initrd" ] || die "no initramfs $initrd"
"$TOP/tooling/deps.sh" >/dev/null

# QUIET=1: instead of the whole console, one line per test binary as it
# finishes, with the time since boot, so a long run shows where it is.
progress() {
	local line t0=$SECONDS
	while IFS= read -r line; do
		case $line in
		"ok "*" selftests: "* | "not ok "*" selftests: "*)
			printf '    [%4ds] %-6s %s\n' $((SECONDS - t0)) "${line%% [0-9]*}" "${line#* selftests: }" ;;
		"ok "[0-9]*" "* | "not ok "[0-9]*" "*)
			# The benchmark binary, run on its own.
			printf '    [%4ds] %-6s %s\n' $((SECONDS - t0)) "${line%% [0-9]*}" "${line#*ok [0-9]* }" ;;
		"testbed: kselftests finished"* | "testbed: benchmarks finished"* | "testbed: QEMU"*)
			printf '    [%4ds] %s\n' $((SECONDS - t0)) "${line#testbed: }" ;;
		esac
	done
}

mkdir -p "$(dirname "$log")"
# A log left from an earlier run must never be judged as this run's.
rm -f "$log"
say "booting $flavour kernel, mte=$mte (timeout ${limit}s); console: $log"
set +e
timeout -k 10 "$limit" qemu-system-aarch64 \
	-machine "virt,virtualization=on,mte=$mte,gic-version=3" \
	-cpu max,pauth-impdef=on -smp 2 -m "$mem" \
	-nodefaults -nic none -display none -monitor none -serial stdio -no-reboot \
	-kernel "$image" -initrd "$initrd" \
	-append "console=ttyAMA0 panic=-1 loglevel=6 $append testbed.flavour=$flavour testbed.mte=$mte testbed.args=$args testbed.filter=${TESTBED_FILTER:-} testbed.demo=${TESTBED_DEMO:-0} testbed.bench=${TESTBED_BENCH:-0} testbed.kmemleak=${TESTBED_KMEMLEAK:-0}" \
	</dev/null 2>&1 | stdbuf -oL tr -d '\r' | tee "$log" | { if [ -n "${QUIET:-}" ]; then progress; else cat; fi; }
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "testbed: QEMU timed out after ${limit}s" >>"$log"
	die "QEMU ($flavour, mte=$mte) timed out after ${limit}s"
fi
[ "$rc" = 0 ] || die "QEMU ($flavour, mte=$mte) exited with status $rc"
