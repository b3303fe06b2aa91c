#!/usr/bin/env bash
# Run some of the selftests on an already built kernel, through the same
# kselftest install, initramfs and init as the matrix, and judge the run
# with tooling/report.py --partial (a partial run says so, and fails on
# everything else that fails a matrix run).
#
#   tooling/quick-test.sh BINARY [REGEX] [FLAVOUR] [MTE]
#     BINARY   test binary, e.g. mte_cap_test, or "all"
#     REGEX    POSIX extended regular expression on suite.name (default: all
#              tests of the binary), e.g. 'mte_cap\.enable_.*'
#     FLAVOUR  vhe (default), nvhe, or debug: the debug kernel of
#              tooling/test-debug.sh, booted as it does (VHE, its command
#              line), without the kmemleak scan at the end
#     MTE      on (default) or off
#
# The selftests are rebuilt from the composed tree first (make only redoes
# what changed); the kernel is not rebuilt. Environment: QEMU_TIMEOUT.
. "$(dirname "$0")/common.sh"

binary=${1:?usage: quick-test.sh BINARY [REGEX] [FLAVOUR] [MTE]}
filter=${2:-}
flavour=${3:-vhe}
mte=${4:-on}
kernel=$flavour
image=$WORK/out-$kernel/arch/arm64/boot/Image
log=$WORK/runs/quick-$flavour-mte-$mte.log
label=$flavour-mte-$mte
if [ "$flavour" = debug ]; then
	flavour=vhe
	label=debug-vhe-mte-$mte
	export KERNEL_APPEND="hugepagesz=1G hugepages=1 debug_pagealloc=on page_owner=on"
fi

[ -f "$image" ] || die "no $kernel kernel: run tooling/build-kernel.sh $kernel"
"$TOP/tooling/build-selftests.sh" >/dev/null
args=""
[ "$binary" = all ] || args="-t,kvm/mte:$binary"
TESTBED_ARGS=$args TESTBED_FILTER=$filter QUIET=1 \
	"$TOP/tooling/run-qemu.sh" "$image" "$WORK/initramfs.cpio" "$log" "$flavour" "$mte" \
	"${QEMU_TIMEOUT:-900}" || true
exec "$PYTHON" "$TOP/tooling/report.py" --partial "$label=$log"
