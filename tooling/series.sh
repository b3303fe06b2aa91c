# shellcheck shell=bash
# The series manifest, patches/series: one line per commit, in order:
#
#   NNNN-subject.patch [overlay/file/path ...]
#
# The patch holds the commit message and the changes to files that exist in
# the base; the overlay files listed after it are new files that land, whole,
# in that commit (their content is kept at their path in this repo).
# Blank lines and lines starting with '#' are ignored.

SERIES=$TOP/patches/series

series_lines() {
	[ -f "$SERIES" ] || return 0
	grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#' "$SERIES"
}

# All overlay paths named by the manifest.
series_overlay_files() {
	series_lines | while read -r _patch files; do
		for f in $files; do echo "$f"; done
	done
}
