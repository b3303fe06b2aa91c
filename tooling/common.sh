# shellcheck shell=bash
# Shared helpers for the test bed scripts.
#
# Environment (all optional; README lists every variable the scripts read):
#   KVM_MTE_BASE  base version from tooling/bases (default: its first entry)
#   BUILD         where everything is generated (default: build/)
#   TREE          the composed kernel tree (default: the base's linux/)
#   PYTHON        the Python to run (default: /usr/bin/python3)

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CROSS_COMPILE=${CROSS_COMPILE:-aarch64-linux-gnu-}
# Debian's Python, which has the packages the test bed installs (docutils),
# rather than whatever else comes first in PATH.
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
export ARCH=arm64 CROSS_COMPILE

die() {
	echo "error: $*" >&2
	exit 1
}

say() {
	echo "==> $*"
}

need_cmd() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

# base_field VERSION N: field N of VERSION's line in tooling/bases.
base_field() {
	awk -v v="$1" -v n="$2" '$1 == v { print $n; exit }' "$TOP/tooling/bases"
}

known_bases() {
	awk '!/^#/ && NF { print $1 }' "$TOP/tooling/bases"
}

DEFAULT_BASE=$(known_bases | head -n 1)
BASE_VERSION=${KVM_MTE_BASE:-$DEFAULT_BASE}
[ -n "$(base_field "$BASE_VERSION" 1)" ] ||
	die "base '$BASE_VERSION' is not in tooling/bases (known: $(known_bases | tr '\n' ' '))"
BASE_DEB_VERSION=$(base_field "$BASE_VERSION" 2)
BASE_SUITE=$(base_field "$BASE_VERSION" 3)
BASE_CACHE=$BUILD/cache/linux-$BASE_VERSION
# Everything made from one base: the default base's right under build/,
# any other base's under build/base-VERSION/.
if [ "$BASE_VERSION" = "$DEFAULT_BASE" ]; then
	WORK=$BUILD
else
	WORK=$BUILD/base-$BASE_VERSION
fi
TREE=${TREE:-$WORK/linux}

# shellcheck source=tooling/apt-env.sh
. "$TOP/tooling/apt-env.sh"
