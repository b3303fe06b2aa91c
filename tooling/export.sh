#!/usr/bin/env bash
# Export the review series from the composed tree, signed off by the person
# exporting: git format-patch with a cover letter (subject and text from
# patches/cover-letter.txt, plus the checkpatch findings kept and why) and
# the base-commit a maintainer's tools read, ready for git send-email.
#
#   tooling/export.sh [OUTDIR]   default build/series
#
# The committed series carries the project's neutral identity; the export
# replaces it with yours (git config user.name and user.email), as author
# and in the Signed-off-by line. EXPORT_UNSIGNED=1 keeps the neutral one
# (for the series checks, which need no identity).
. "$(dirname "$0")/common.sh"

out=$(realpath -m "${1:-$WORK/series}")
cover=$TOP/patches/cover-letter.txt
team="KVM MTE 5.10 Team <kvm-mte-5.10@example.org>"
[ -f "$cover" ] || die "no patches/cover-letter.txt"
git_t() { git -C "$TREE" "$@"; }
git_t rev-parse -q --verify refs/tags/base >/dev/null || die "no composed tree (make compose)"
[ -z "$(git_t status --porcelain --untracked-files=no)" ] ||
	die "$TREE has uncommitted changes: commit them and run 'make refresh' first"

if [ -n "${EXPORT_UNSIGNED:-}" ]; then
	name=${team% <*} email=${team#*<} email=${email%>}
else
	name=$(git -C "$TOP" config user.name || true)
	email=$(git -C "$TOP" config user.email || true)
	[ -n "$name" ] && [ -n "$email" ] ||
		die "the exported series is signed off by you: set git config user.name and user.email first"
fi

# The series again, with the exporter as author and in the sign-off: the
# same trees, so it applies exactly as patches/ does.
base=$(git_t rev-parse base)
head=$base
msg=$(mktemp)
trap 'rm -f "$msg"' EXIT
for c in $(git_t rev-list --reverse base..HEAD); do
	git_t log -1 --format=%B "$c" |
		sed "s|^Signed-off-by: $team\$|Signed-off-by: $name <$email>|" >"$msg"
	grep -qxF "Signed-off-by: $name <$email>" "$msg" ||
		die "commit '$(git_t log -1 --format=%s "$c")' has no Signed-off-by: $team"
	head=$(GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email \
		GIT_AUTHOR_DATE=$(git_t log -1 --format=%aD "$c") \
		GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email \
		git_t commit-tree "$c^{tree}" -p "$head" -F "$msg")
done
[ "$(git_t rev-parse "$head^{tree}")" = "$(git_t rev-parse 'HEAD^{tree}')" ] ||
	die "the signed series differs from the composed tree"
git_t update-ref refs/export/signed "$head"

rm -rf "$out"
mkdir -p "$out"
# The cover letter takes its From: line from the committer identity, which
# a fresh machine does not have: give it the exporter's.
git_t -c user.name="$name" -c user.email="$email" format-patch -q --cover-letter --thread=shallow --base="$base" -o "$out" "$base..$head"
letter=$(ls "$out"/0000-cover-letter.patch)
"$PYTHON" - "$letter" "$cover" "$TOP/tooling/checkpatch-exceptions" <<'PY'
import sys
letter, cover, exceptions = sys.argv[1:4]
subject, _, body = open(cover).read().partition("\n")
kept = []
for line in open(exceptions):
    if line.strip() and not line.startswith("#"):
        who, what, why = (f.strip() for f in line.split(" | ", 2))
        kept.append(f"- {what.replace(chr(92), '')}: {why}")
if kept:
    body = body.rstrip("\n") + "\n\ncheckpatch.pl --strict findings kept, and why:\n" + "\n".join(kept) + "\n"
text = open(letter).read()
text = text.replace("*** SUBJECT HERE ***", subject.strip(), 1)
text = text.replace("*** BLURB HERE ***", body.strip("\n"), 1)
open(letter, "w").write(text)
PY
say "exported $(ls "$out" | wc -l) files to $out, signed off by $name <$email>"
