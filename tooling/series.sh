# shellcheck shell=bash
# The series: patches/series names the patches of patches/ in order, one per
# line (blank lines and lines starting with '#' are ignored). Each patch is a
# complete git format-patch file, new files included, so that
#
#   git am $(sed '/^#/d' patches/series | sed 's|^|patches/|')
#
# (the same as git am patches/*.patch) gives the whole series on the base.
#
# The overlay, the files the series adds at the path where they land (arch/,
# tools/, ...), is a browsable view of the series' new files as they are at
# its end. tooling/refresh.sh writes it together with patches/, and
# tooling/check-series.sh proves that both equal the composed tree.

SERIES=$TOP/patches/series

series_patches() {
	[ -f "$SERIES" ] || return 0
	grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#' "$SERIES"
}

# The overlay's top-level folders in DIR: those the kernel tree has too.
overlay_roots() {
	local dir=$1 d
	for d in "$dir"/*/; do
		d=$(basename "$d")
		[ -e "$BASE_CACHE/$d" ] && echo "$d"
	done
	return 0
}
