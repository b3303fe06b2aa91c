#!/usr/bin/env bash
# The whole selftest suite on the debug kernel (tooling/config/debug.config:
# KASAN, lockdep, DEBUG_VM, DEBUG_PAGEALLOC, PAGE_OWNER, kmemleak, fault
# injection), VHE with mte=on. The run fails on any test that does not
# pass as in tooling/expected-results, and on any report of the debug
# options in the console: KASAN, lockdep, a page-flag or list check, and
# every object kmemleak finds leaked when the suite has finished.
#
#   tooling/test-debug.sh        (make test-debug)
. "$(dirname "$0")/common.sh"

t0=$SECONDS
"$TOP/tooling/deps.sh" >/dev/null
"$TOP/tooling/compose.sh"
image=$("$TOP/tooling/build-kernel.sh" debug)
initrd=$("$TOP/tooling/build-selftests.sh" | tail -n 1)
log=$WORK/runs/debug-vhe-mte-on.log
say "debug kernel and selftests ready after $((SECONDS - t0))s"
# KASAN and the page checks make the kernel several times slower under
# TCG: QEMU gets an hour, the tests their own limits.
KERNEL_APPEND="hugepagesz=1G hugepages=1 debug_pagealloc=on page_owner=on" \
	TESTBED_KMEMLEAK=1 QUIET=1 \
	"$TOP/tooling/run-qemu.sh" "$image" "$initrd" "$log" vhe on 3600 || true
say "debug run took $((SECONDS - t0))s"
rc=0
"$PYTHON" "$TOP/tooling/report.py" "debug-vhe-mte-on=$log" || rc=$?
# A leaked object is a splat line for the report; no scan at all is a
# broken debug run.
grep '^testbed: kmemleak scan: [0-9]* leaked objects' "$log" ||
	{ echo "error: no kmemleak scan in $log" >&2; rc=1; }
exit $rc
