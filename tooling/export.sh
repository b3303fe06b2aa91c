#!/usr/bin/env bash
# Export the review series from build/linux: git format-patch with a cover
# letter whose subject and text come from patches/cover-letter.txt.
#
#   tooling/export.sh [OUTDIR]   default build/series
. "$(dirname "$0")/common.sh"

out=$(realpath -m "${1:-$BUILD/series}")
cover=$TOP/patches/cover-letter.txt
[ -f "$cover" ] || die "no patches/cover-letter.txt"
git -C "$TREE" rev-parse -q --verify refs/tags/base >/dev/null || die "no composed tree (make compose)"
rm -rf "$out"
mkdir -p "$out"
git -C "$TREE" format-patch -q --cover-letter --thread=shallow -o "$out" base..HEAD
letter=$(ls "$out"/0000-cover-letter.patch)
python3 - "$letter" "$cover" "$TOP/tooling/checkpatch-exceptions" <<'PY'
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
say "exported $(ls "$out" | wc -l) files to $out"
