#!/usr/bin/env bash
# Refresh patches/ and the overlay from the commits made in build/linux
# (base..HEAD): the inverse of compose.sh, so compose followed by refresh
# gives no diff.
#
#   tooling/refresh.sh [OUTDIR]   OUTDIR defaults to the repo itself
. "$(dirname "$0")/common.sh"
. "$TOP/tooling/series.sh"

dest=$(realpath -m "${1:-$TOP}")
git_t() { git -C "$TREE" "$@"; }
git_t rev-parse -q --verify refs/tags/base >/dev/null || die "no composed tree at $TREE"
[ -z "$(git_t status --porcelain --untracked-files=no)" ] ||
	die "$TREE has uncommitted changes: commit them first"

old_overlay=$(series_overlay_files || true)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/patches"
fp=(format-patch --zero-commit --no-signature --no-numbered)

n=0
while read -r c; do
	n=$((n + 1))
	added=$(git_t diff-tree -r --no-commit-id --name-only --diff-filter=A "$c^" "$c")
	name=$(basename "$(git_t "${fp[@]}" --start-number "$n" -o "$work/full" -1 "$c")")
	excl=()
	for f in $added; do excl+=(":(exclude)$f"); done
	if git_t diff --quiet "$c^" "$c" -- . "${excl[@]}"; then
		# Only new files: the patch keeps just the commit message.
		sed '/^---$/q' "$work/full/$name" >"$work/patches/$name"
	else
		git_t "${fp[@]}" --stdout "$c^..$c" -- . "${excl[@]}" >"$work/patches/$name"
	fi
	for f in $added; do
		mkdir -p "$work/overlay/$(dirname "$f")"
		git_t show "$c:$f" >"$work/overlay/$f"
		[ "$(git_t ls-tree "$c" -- "$f" | cut -c1-6)" = 100755 ] && chmod +x "$work/overlay/$f"
	done
	echo "$name" $added >>"$work/patches/series"
done < <(git_t rev-list --reverse base..HEAD)

mkdir -p "$dest/patches"
rm -f "$dest"/patches/*.patch
for f in $old_overlay; do rm -f "$dest/$f"; done
{
	sed -n '/^#/p' "$SERIES" 2>/dev/null || true
	cat "$work/patches/series" 2>/dev/null || true
} >"$work/series.new"
[ -s "$work/series.new" ] && mv "$work/series.new" "$work/patches/series"
cp -a "$work/patches/." "$dest/patches/"
[ -d "$work/overlay" ] && cp -a "$work/overlay/." "$dest/"
say "refreshed $n patches into $dest"
