#!/usr/bin/env bash
# The series' selftests on Debian's mainline cloud kernel (trixie's 6.12,
# fetched by fetch-peer.sh, nothing built), VHE with mte=on, through the
# same QEMU, initramfs and init as the matrix: where mainline and this
# series give VMMs the same ABI, the same tests pass on both.
#
#   tooling/test-mainline.sh [REGEX]     (make test-mainline)
#     REGEX  POSIX extended regular expression on suite.name; the default
#            is the reliability tests (fuzzer, live migration, kills, fault
#            injection, stress, isolation)
#
# The run is judged as tooling/quick-test.sh judges one (report.py
# --partial against the series' expectations), so every line of the
# report that is not "ok" is a difference between the two kernels (or a
# feature the cloud kernel lacks, like fault injection): README's
# "Reliability" says which are known. Exit status: the report's.
. "$(dirname "$0")/common.sh"

default='mte_fuzz\..*|mte_copy_tags\.(live_migration|sigkill|failslab|fail_page_alloc|many_vms).*|mte_tags\.(dead_vm|tag_access_between|vcpus_keep|vms_keep).*'
filter=${1:-$default}
t0=$SECONDS
"$TOP/tooling/deps.sh" >/dev/null
"$TOP/tooling/compose.sh"
read -r suite ver image < <("$TOP/tooling/fetch-peer.sh" trixie)
initrd=$("$TOP/tooling/build-selftests.sh" | tail -n 1)
log=$WORK/runs/mainline-$ver-vhe-mte-on.log
say "mainline $ver ($suite) and the selftests ready after $((SECONDS - t0))s"
TESTBED_FILTER=$filter QUIET=1 \
	"$TOP/tooling/run-qemu.sh" "$image" "$initrd" "$log" vhe on 1800 || true
say "mainline run took $((SECONDS - t0))s"
exec "$PYTHON" "$TOP/tooling/report.py" --partial "vhe-mte-on=$log"
