#!/usr/bin/env bash
# The main job: compose the series onto the 5.10 base, build the VHE kernel
# and the selftests, boot under QEMU with MTE and EL2, and show the suite
# running on the console.
. "$(dirname "$0")/common.sh"

"$TOP/tooling/deps.sh"
"$TOP/tooling/compose.sh"
image=$("$TOP/tooling/build-kernel.sh" vhe | tail -n 1)
initrd=$("$TOP/tooling/build-selftests.sh" | tail -n 1)
log=$BUILD/runs/demo.log
"$TOP/tooling/run-qemu.sh" "$image" "$initrd" "$log" vhe on
python3 "$TOP/tooling/report.py" "vhe-mte-on=$log"
