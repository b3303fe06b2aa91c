#!/usr/bin/env bash
# Write the commits made in the composed tree (base..HEAD) back into
# patches/ (one complete format-patch file each, and patches/series) and the
# overlay (the new files at the end of the series): the inverse of
# compose.sh, so compose followed by refresh gives no diff.
#
#   tooling/refresh.sh [OUTDIR]   OUTDIR defaults to the repo itself
. "$(dirname "$0")/common.sh"
. "$TOP/tooling/series.sh"

dest=$(realpath -m "${1:-$TOP}")
git_t() { git -C "$TREE" "$@"; }
git_t rev-parse -q --verify refs/tags/base >/dev/null || die "no composed tree at $TREE"
[ -z "$(git_t status --porcelain --untracked-files=no)" ] ||
	die "$TREE has uncommitted changes: commit them first"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/patches" "$work/overlay"

# Neutral, reproducible patch files: no commit ids, no version signature.
git_t format-patch -q --zero-commit --no-signature --no-numbered -o "$work/patches" base..HEAD
empty=$(grep -L '^diff --git ' "$work"/patches/*.patch || true)
[ -z "$empty" ] || die "commits without changes (they would be empty commits): $(basename -a $empty | tr '\n' ' ')"
{
	sed -n '/^#/p' "$SERIES" 2>/dev/null || true
	(cd "$work/patches" && ls -- *.patch)
} >"$work/patches/series"

while IFS= read -r f; do
	mkdir -p "$work/overlay/$(dirname "$f")"
	git_t show "HEAD:$f" >"$work/overlay/$f"
	[ "$(git_t ls-tree HEAD -- "$f" | cut -c1-6)" = 100755 ] && chmod +x "$work/overlay/$f"
done < <(git_t diff --name-only --diff-filter=A base HEAD)

# Replace, never merge: patches and overlay files that are gone go.
mkdir -p "$dest/patches"
rm -f "$dest"/patches/*.patch
for d in $(overlay_roots "$dest"); do rm -rf "${dest:?}/$d"; done
cp -a "$work/patches/." "$dest/patches/"
cp -a "$work/overlay/." "$dest/"
say "refreshed $(ls "$work"/patches/*.patch | wc -l) patches and $(find "$work/overlay" -type f | wc -l) overlay files into $dest"
