#!/usr/bin/env bash
# Compose the series onto its base: a git repository whose first commit (tag
# "base") is the pristine base and whose following commits are the patches
# of patches/series, in order.
#
# The new commits are built in a private index without touching the working
# tree, and only then checked out, so a re-compose rewrites only the files
# whose content changed (the kernel build stays incremental).
#
#   tooling/compose.sh [--force]   --force discards uncommitted edits
. "$(dirname "$0")/common.sh"
. "$TOP/tooling/series.sh"

force=0
[ "${1:-}" = "--force" ] && force=1

"$TOP/tooling/fetch-base.sh"

git_t() { git -C "$TREE" "$@"; }

# The base commit is the same on every machine (fixed identity and date),
# so its id can be quoted as the series' base-commit.
if ! git_t rev-parse -q --verify refs/tags/base >/dev/null 2>&1; then
	say "creating $TREE from the pristine $BASE_VERSION base (once)"
	rm -rf "$TREE"
	mkdir -p "$TREE"
	cp -a "$BASE_CACHE/." "$TREE/"
	rm -f "$TREE/.complete"
	git_t init -q -b main
	git_t config core.autocrlf false
	git_t config gc.auto 0
	git_t add -A -f .
	GIT_AUTHOR_NAME="kvm-mte testbed" GIT_AUTHOR_EMAIL="testbed@invalid" \
		GIT_COMMITTER_NAME="kvm-mte testbed" GIT_COMMITTER_EMAIL="testbed@invalid" \
		GIT_AUTHOR_DATE="2024-08-10T00:00:00+0000" GIT_COMMITTER_DATE="2024-08-10T00:00:00+0000" \
		git_t commit -q -m "Linux $BASE_VERSION (Debian linux-source-5.10 $BASE_DEB_VERSION)"
	git_t tag base
fi

if [ $force = 0 ] && [ -n "$(git_t status --porcelain --untracked-files=no)" ]; then
	die "$TREE has uncommitted changes: commit them and run 'make refresh', or 'make compose FORCE=1'"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_INDEX_FILE=$work/index
git_t read-tree base
head=$(git_t rev-parse base)
mapfile -t patches < <(series_patches)
n=0
for patch in "${patches[@]}"; do
	n=$((n + 1))
	pfile=$TOP/patches/$patch
	[ -f "$pfile" ] || die "patches/series names $patch, which does not exist"
	git_t mailinfo "$work/msg" "$work/diff" <"$pfile" >"$work/info" ||
		die "$patch: not a git format-patch file"
	subject=$(sed -n 's/^Subject: //p' "$work/info")
	author=$(sed -n 's/^Author: //p' "$work/info")
	email=$(sed -n 's/^Email: //p' "$work/info")
	date=$(sed -n 's/^Date: //p' "$work/info")
	[ -n "$subject" ] && [ -n "$author" ] || die "$patch: no Subject or From line"
	grep -q "^diff --git " "$work/diff" || die "$patch has no diff: it would be an empty commit"
	git_t apply --cached --whitespace=nowarn "$work/diff" 2>"$work/apply.err" ||
		die "patch $n/${#patches[@]} ($patch) does not apply to the $BASE_VERSION base: $(head -n 3 "$work/apply.err" | tr '\n' ' ')"
	tree=$(git_t write-tree)
	{
		echo "$subject"
		if [ -s "$work/msg" ]; then
			echo
			cat "$work/msg"
		fi
	} >"$work/commit-msg"
	head=$(GIT_AUTHOR_NAME=$author GIT_AUTHOR_EMAIL=$email GIT_AUTHOR_DATE=$date \
		GIT_COMMITTER_NAME=$author GIT_COMMITTER_EMAIL=$email GIT_COMMITTER_DATE=$date \
		git_t commit-tree "$tree" -p "$head" -F "$work/commit-msg")
done
unset GIT_INDEX_FILE

old=$(git_t rev-parse HEAD)
if [ "$old" != "$head" ]; then
	git_t update-ref refs/compose/previous "$old"
	if [ $force = 1 ]; then
		git_t checkout -q -f -B main "$head"
	else
		git_t checkout -q -B main "$head"
	fi
fi
say "composed $TREE: $BASE_VERSION base + $n commits"
