#!/usr/bin/env bash
# Upstream readiness of the series, checked on every run:
#   1. patches/ and the overlay round-trip through build/linux byte for byte
#   2. the exported series applies to the pristine base with git am (no fuzz)
#   3. checkpatch.pl --strict is clean but for tooling/checkpatch-exceptions
#   4. every commit builds, VHE and nVHE
#   5. W=1 and sparse give no new warning in the kernel files the series touches
#   6. the C++ selftests are clang-format clean and cppcheck clean
#   7. Documentation/virt/kvm/api.rst gives no new docutils warning
# Each failure names the patch (or file) and line. Steps can be picked:
#   tooling/check-series.sh [roundtrip am checkpatch build warnings cxx docs]
. "$(dirname "$0")/common.sh"

steps=${*:-roundtrip am checkpatch build warnings cxx docs}
results=${SERIES_RESULTS:-$BUILD/series-check.txt}
failed=()
fail() {
	echo "FAIL: $*"
	echo "FAIL $*" >>"$results"
	failed+=("$1")
}
git_t() { git -C "$TREE" "$@"; }

"$TOP/tooling/compose.sh" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
series=$BUILD/series
"$TOP/tooling/export.sh" "$series" >/dev/null
mapfile -t patches < <(ls "$series"/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-cover-letter.patch$')
mapfile -t commits < <(git_t rev-list --reverse base..HEAD)

step_roundtrip() {
	say "round trip: build/linux -> patches/ + overlay"
	"$TOP/tooling/refresh.sh" "$work/rt" >/dev/null
	diff -r -x cover-letter.txt "$work/rt/patches" "$TOP/patches" >"$work/rt.diff" ||
		fail roundtrip "patches/ differs from the composed commits: $(head -n 5 "$work/rt.diff")"
	. "$TOP/tooling/series.sh"
	for f in $(series_overlay_files); do
		cmp -s "$work/rt/$f" "$TOP/$f" || fail roundtrip "overlay file $f differs from its commit"
	done
}

step_am() {
	local am=$BUILD/am
	say "git am of the exported series onto the pristine base"
	if [ ! -d "$am/.git" ] && [ ! -f "$am/.git" ]; then
		git_t worktree prune
		git_t worktree add -q --detach "$am" base
	fi
	git -C "$am" am --abort >/dev/null 2>&1 || true
	git -C "$am" checkout -q -f --detach base
	git -C "$am" clean -q -fdx
	for p in "${patches[@]}"; do
		if ! git -C "$am" -c user.name=check -c user.email=check@invalid \
			am -q --whitespace=error-all "$p" >"$work/am.log" 2>&1; then
			fail am "$(basename "$p") does not apply: $(grep -m 3 -E 'error|patch failed' "$work/am.log" | tr '\n' ' ')"
			git -C "$am" am --abort >/dev/null 2>&1 || true
			return
		fi
	done
	[ "$(git -C "$am" rev-parse 'HEAD^{tree}')" = "$(git_t rev-parse 'HEAD^{tree}')" ] ||
		fail am "the series applied with git am differs from build/linux"
}

step_checkpatch() {
	say "checkpatch.pl --strict"
	local p subject
	for p in "${patches[@]}"; do
		subject=$(git mailinfo /dev/null /dev/null <"$p" | sed -n 's/^Subject: //p')
		"$TREE/scripts/checkpatch.pl" --strict --no-tree --terse --show-types "$p" 2>&1 |
			grep -E ': (ERROR|WARNING|CHECK):' >"$work/cp.out" || true
		while IFS= read -r finding; do
			excepted "$subject" "$finding" ||
				fail checkpatch "$(basename "$p"): $finding"
		done <"$work/cp.out"
	done
}

# A finding is accepted when an exception line matches both the subject
# and the finding.
excepted() {
	local subject=$1 finding=$2 line pat_s pat_f
	while IFS= read -r line; do
		case $line in '#'* | '') continue ;; esac
		pat_s=$(echo "$line" | awk -F ' [|] ' '{ print $1 }')
		pat_f=$(echo "$line" | awk -F ' [|] ' '{ print $2 }')
		echo "$subject" | grep -qE -- "$pat_s" && echo "$finding" | grep -qE -- "$pat_f" && return 0
	done <"$TOP/tooling/checkpatch-exceptions"
	return 1
}

step_build() {
	local c subject f
	say "building every commit, VHE and nVHE"
	for c in "${commits[@]}"; do
		subject=$(git_t log -1 --format=%s "$c")
		git_t checkout -q --detach "$c"
		for f in vhe nvhe; do
			if ! "$TOP/tooling/build-kernel.sh" "$f" >"$work/build.log" 2>&1; then
				fail build "$f build of '$subject': $(grep -m 5 -E 'error' "$BUILD/out-$f/build.log" | tr '\n' ' ')"
			fi
		done
	done
	git_t checkout -q main
}

# Warnings of one kind for a list of objects, without line numbers so that
# base and series compare although lines moved.
object_warnings() {
	local tree=$1 out=$2 kind=$3
	shift 3
	local make_args=(-C "$tree" O="$out" ARCH=arm64 CROSS_COMPILE="$CROSS_COMPILE" -k)
	case $kind in
	w1) make_args+=(W=1) ;;
	sparse) make_args+=(C=2 CHECK=sparse) ;;
	esac
	make "${make_args[@]}" -j"$(nproc)" prepare >/dev/null 2>&1
	# Warnings are only printed when an object is compiled.
	for o in "$@"; do rm -f "$out/$o"; done
	{ make "${make_args[@]}" "$@" 2>&1 || true; } | { grep -E '(warning|error):' || true; } |
		sed -E -e "s|^$tree/||" -e 's|^([^:]*):[0-9]+:[0-9]+:|\1:|' -e 's|^([^:]*):[0-9]+:|\1:|' |
		LC_ALL=C sort
}

step_warnings() {
	local objs=() f
	say "W=1 and sparse on the kernel files the series touches"
	for f in $(git_t diff --name-only base HEAD -- '*.c' ':!tools/'); do
		objs+=("${f%.c}.o")
	done
	[ ${#objs[@]} -gt 0 ] || return 0
	# The base only needs a configured tree: object_warnings() prepares it
	# and compiles just the touched files.
	CONFIG_ONLY=1 "$TOP/tooling/build-kernel.sh" vhe "$BASE_CACHE" "$BUILD/out-base-vhe" >/dev/null
	[ -f "$BUILD/out-vhe/.config" ] || "$TOP/tooling/build-kernel.sh" vhe >/dev/null
	for kind in w1 sparse; do
		local existing=()
		for f in "${objs[@]}"; do
			[ -f "$BASE_CACHE/${f%.o}.c" ] && existing+=("$f")
		done
		object_warnings "$BASE_CACHE" "$BUILD/out-base-vhe" "$kind" "${existing[@]}" >"$work/$kind.base"
		object_warnings "$TREE" "$BUILD/out-vhe" "$kind" "${objs[@]}" >"$work/$kind.tip"
		comm -13 "$work/$kind.base" "$work/$kind.tip" >"$work/$kind.new"
		echo "  $kind: $(wc -l <"$work/$kind.base") warning(s) in the base, $(wc -l <"$work/$kind.tip") with the series, $(wc -l <"$work/$kind.new") new"
		while IFS= read -r w; do
			fail warnings "$kind: $w"
		done <"$work/$kind.new"
	done
}

step_cxx() {
	local dir=$TOP/tools/testing/selftests/kvm/mte files
	say "clang-format and cppcheck on the C++ selftests"
	mapfile -t files < <(cd "$dir" && find . -name '*.cpp' -o -name '*.hpp' -o -name '*.h' | LC_ALL=C sort)
	(cd "$dir" && clang-format --dry-run --Werror "${files[@]}") >"$work/fmt.log" 2>&1 ||
		fail cxx "clang-format: $(grep -m 5 -E 'error|warning' "$work/fmt.log" | tr '\n' ' ')"
	(cd "$dir" && cppcheck -q --language=c++ --std=c++20 --enable=warning,portability,performance \
		--error-exitcode=1 --inline-suppr -D__aarch64__ -I. -Ilib \
		--suppress=missingIncludeSystem "${files[@]}") >"$work/cppcheck.log" 2>&1 ||
		fail cxx "cppcheck: $(head -n 5 "$work/cppcheck.log" | tr '\n' ' ')"
}

rst_warnings() {
	python3 - "$1" <<'PY'
import io, re, sys
import docutils.core, docutils.utils
src = open(sys.argv[1]).read()
err = io.StringIO()
docutils.core.publish_doctree(src, settings_overrides={
    "warning_stream": err, "report_level": 2, "halt_level": 5})
for line in err.getvalue().splitlines():
    # Unknown Sphinx roles and directives are not ours to judge.
    if re.search(r'Unknown (interpreted text role|directive type)|No role entry|No directive entry', line):
        continue
    if re.match(r'^<string>:\d+: \(', line) or line.startswith('<string>'):
        print(re.sub(r'^<string>:\d+: ', '', line))
PY
}

step_docs() {
	say "docutils on Documentation/virt/kvm/api.rst"
	python3 -c 'import docutils' 2>/dev/null || { fail docs "python3-docutils is not installed"; return; }
	rst_warnings "$BASE_CACHE/Documentation/virt/kvm/api.rst" | LC_ALL=C sort >"$work/doc.base"
	rst_warnings "$TREE/Documentation/virt/kvm/api.rst" | LC_ALL=C sort >"$work/doc.tip"
	comm -13 "$work/doc.base" "$work/doc.tip" >"$work/doc.new"
	while IFS= read -r w; do
		fail docs "$w"
	done <"$work/doc.new"
}

: >"$results"
for s in $steps; do
	before=${#failed[@]}
	"step_$s"
	[ ${#failed[@]} -gt "$before" ] || echo "PASS $s" >>"$results"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "series checks failed: ${#failed[@]} finding(s)"
	exit 1
fi
say "series checks passed ($steps)"
