# shellcheck shell=bash
# Shared helpers for the test bed scripts.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
BASE_VERSION=5.10.223
BASE_DEB_VERSION=5.10.223-1
BASE_CACHE=$BUILD/cache/linux-$BASE_VERSION
TREE=${TREE:-$BUILD/linux}
CROSS_COMPILE=${CROSS_COMPILE:-aarch64-linux-gnu-}
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

# shellcheck source=tooling/apt-env.sh
. "$TOP/tooling/apt-env.sh"
