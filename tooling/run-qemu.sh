#!/usr/bin/env bash
# Boot one kernel under QEMU with MTE emulation and EL2, run the initramfs's
# kselftests, and keep the serial console in a log.
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

case $mte in on | off) ;; *) die "MTE must be on or off, not '$mte'" ;; esac
[ -f "$image" ] || die "no kernel image $image"
[ -f "$initrd" ] || die "no initramfs $initrd"
"$TOP/tooling/deps.sh" >/dev/null

mkdir -p "$(dirname "$log")"
say "booting $flavour kernel, mte=$mte (timeout ${limit}s); console: $log"
set +e
timeout -k 10 "$limit" qemu-system-aarch64 \
	-machine "virt,virtualization=on,mte=$mte,gic-version=3" \
	-cpu max,pauth-impdef=on -smp 2 -m 2048 \
	-display none -monitor none -serial stdio -no-reboot \
	-kernel "$image" -initrd "$initrd" \
	-append "console=ttyAMA0 panic=-1 loglevel=6 testbed.flavour=$flavour testbed.mte=$mte testbed.args=$args testbed.demo=${TESTBED_DEMO:-0}" \
	</dev/null 2>&1 | tr -d '\r' | tee "$log" | { if [ -n "${QUIET:-}" ]; then cat >/dev/null; else cat; fi; }
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "testbed: QEMU timed out after ${limit}s" >>"$log"
	die "QEMU ($flavour, mte=$mte) timed out after ${limit}s"
fi
[ "$rc" = 0 ] || die "QEMU ($flavour, mte=$mte) exited with status $rc"
