#!/usr/bin/env bash
# The main job: compose the series onto the 5.10 base, build the VHE kernel
# and the selftests, boot under QEMU with MTE and EL2, and show the suite
# running on the console.
. "$(dirname "$0")/common.sh"

"$TOP/tooling/deps.sh"
"$TOP/tooling/compose.sh"
image=$("$TOP/tooling/build-kernel.sh" vhe | tail -n 1)
initrd=$("$TOP/tooling/build-selftests.sh" | tail -n 1)
log=$WORK/runs/demo.log
# The console is long: show the demo's narration, what the kernel and KVM
# report, and the test results; everything is in the log.
TESTBED_DEMO=1 QUIET=1 "$TOP/tooling/run-qemu.sh" "$image" "$initrd" "$log" vhe on || true
grep -E '^(testbed: |demo: |ok |not ok )' "$log" | sed -E 's/^(testbed|demo): //'

"$PYTHON" "$TOP/tooling/report.py" "vhe-mte-on=$log"
