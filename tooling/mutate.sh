#!/usr/bin/env bash
# The mutation check (not part of .ci/run: it rebuilds and boots a kernel per
# mutation): see tooling/mutate.py and the list in tooling/mutations.
#
#   tooling/mutate.sh [--list] [NAME...]
. "$(dirname "$0")/common.sh"

"$TOP/tooling/deps.sh"
"$TOP/tooling/compose.sh"
exec "$PYTHON" "$TOP/tooling/mutate.py" "$@"
