#!/usr/bin/env bash
# Upstream readiness of the series, checked on every run:
#   1. patches/ and the overlay round-trip through the composed tree byte
#      for byte
#   2. patches/ and the exported series apply to the pristine base with
#      git am (no fuzz), one commit each, giving the composed tree
#   3. checkpatch.pl --strict is clean but for tooling/checkpatch-exceptions
#   4. every commit builds (VHE; nVHE at the tip and where it can differ)
#   5. W=1 and sparse give no new warning in the kernel files the series touches
#   6. the C++ selftests are clang-format clean and cppcheck clean
#   7. Documentation/virt/kvm/api.rst gives no new docutils warning
# Each failure names the patch (or file) and line. Steps can be picked:
#   tooling/check-series.sh [roundtrip am checkpatch build warnings cxx docs]
. "$(dirname "$0")/common.sh"

steps=${*:-roundtrip am checkpatch build warnings cxx docs}
results=${SERIES_RESULTS:-$WORK/series-check.txt}
failed=()
fail() {
	echo "FAIL: $*"
	echo "FAIL $*" >>"$results"
	failed+=("$1")
}
git_t() { git -C "$TREE" "$@"; }

# Every step leaves a line: PASS, its findings, or, if the script dies or
# is killed halfway, a FAIL saying that the step did not finish.
: >"$results"
current=""
work=$(mktemp -d)
finish() {
	[ -z "$current" ] || echo "FAIL $current: the step did not finish" >>"$results"
	git_t checkout -q main 2>/dev/null || true
	rm -rf "$work"
}
trap finish EXIT

# Composing and exporting come before any step: a failure here is recorded too.
current=prepare
"$TOP/tooling/compose.sh" >/dev/null
series=$WORK/series
EXPORT_UNSIGNED=1 "$TOP/tooling/export.sh" "$series" >/dev/null
mapfile -t exported < <(ls "$series"/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-cover-letter.patch$')
. "$TOP/tooling/series.sh"
mapfile -t committed < <(series_patches | sed "s|^|$TOP/patches/|")
mapfile -t commits < <(git_t rev-list --reverse base..HEAD)
current=""

step_roundtrip() {
	local d
	say "round trip: composed tree -> patches/ + overlay"
	"$TOP/tooling/refresh.sh" "$work/rt" >/dev/null
	diff -r -x cover-letter.txt "$work/rt/patches" "$TOP/patches" >"$work/rt.diff" ||
		fail roundtrip "patches/ differs from the composed commits: $(head -n 5 "$work/rt.diff" | tr '\n' ' ')"
	for d in $( (overlay_roots "$work/rt"; overlay_roots "$TOP") | sort -u); do
		diff -r "$work/rt/$d" "$TOP/$d" >"$work/ov.diff" 2>&1 ||
			fail roundtrip "the overlay differs from the series' new files: $(head -n 3 "$work/ov.diff" | tr '\n' ' ')"
	done
}

# git am PATCH... onto the pristine base in a scratch worktree; the result
# must be the composed tree.
am_onto_base() {
	local what=$1 am=$WORK/am p i=0
	shift
	if [ ! -e "$am/.git" ]; then
		git_t worktree prune
		git_t worktree add -q --detach "$am" base
	fi
	git -C "$am" am --abort >/dev/null 2>&1 || true
	git -C "$am" checkout -q -f --detach base
	git -C "$am" clean -q -fdx
	for p in "$@"; do
		i=$((i + 1))
		if ! git -C "$am" -c user.name=check -c user.email=check@invalid \
			am -q --whitespace=error-all "$p" >"$work/am.log" 2>&1; then
			fail am "$what: patch $i/$# $(basename "$p") does not apply to $BASE_VERSION: $(grep -m 3 -E 'error|patch failed' "$work/am.log" | tr '\n' ' ')"
			git -C "$am" am --abort >/dev/null 2>&1 || true
			return
		fi
	done
	[ "$(git -C "$am" rev-list --count base..HEAD)" = "${#commits[@]}" ] ||
		fail am "$what: git am made $(git -C "$am" rev-list --count base..HEAD) commits, the series has ${#commits[@]}"
	[ "$(git -C "$am" rev-parse 'HEAD^{tree}')" = "$(git_t rev-parse 'HEAD^{tree}')" ] ||
		fail am "$what: the tree git am gives differs from the composed tree"
}

step_am() {
	say "git am of patches/ and of the exported series onto the pristine $BASE_VERSION base"
	am_onto_base "patches/" "${committed[@]}"
	am_onto_base "exported series" "${exported[@]}"
}

step_checkpatch() {
	say "checkpatch.pl --strict"
	local p subject
	for p in "${exported[@]}"; do
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

# Files whose code depends on CONFIG_ARM64_VHE, the only option in which the
# nVHE configuration differs (tooling/config/nvhe.config): a commit that
# builds for VHE builds for nVHE too unless it changes one of them, so nVHE
# is built at the tip and at such commits only.
NVHE_SENSITIVE='arch/arm64/Kconfig arch/arm64/kernel/cpufeature.c arch/arm64/kernel/head.S'

step_build() {
	local c subject f i=0 t0 flavours
	say "building every commit (${#commits[@]}), VHE; nVHE where it can differ"
	for c in "${commits[@]}"; do
		i=$((i + 1))
		subject=$(git_t log -1 --format=%s "$c")
		flavours=vhe
		if [ "$c" = "${commits[-1]}" ] ||
			[ -n "$(git_t diff --name-only "$c^" "$c" -- $NVHE_SENSITIVE)" ]; then
			flavours="vhe nvhe"
		fi
		git_t checkout -q --detach "$c"
		for f in $flavours; do
			t0=$(date +%s)
			echo "    commit $i/${#commits[@]} $f: building  $subject"
			# The log gets the output; the console the build's progress lines.
			if ! "$TOP/tooling/build-kernel.sh" "$f" 2>&1 >"$work/build.log" |
				{ grep --line-buffered '^    \[' || true; }; then
				fail build "$f build of '$subject': $(grep -m 5 -E 'error' "$WORK/out-$f/build.log" | tr '\n' ' ')"
			fi
			echo "    commit $i/${#commits[@]} $f: $(($(date +%s) - t0))s  $subject"
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
	CONFIG_ONLY=1 "$TOP/tooling/build-kernel.sh" vhe "$BASE_CACHE" "$WORK/out-base-vhe" >/dev/null
	[ -f "$WORK/out-vhe/.config" ] || "$TOP/tooling/build-kernel.sh" vhe >/dev/null
	for kind in w1 sparse; do
		local existing=()
		for f in "${objs[@]}"; do
			[ -f "$BASE_CACHE/${f%.o}.c" ] && existing+=("$f")
		done
		object_warnings "$BASE_CACHE" "$WORK/out-base-vhe" "$kind" "${existing[@]}" >"$work/$kind.base"
		object_warnings "$TREE" "$WORK/out-vhe" "$kind" "${objs[@]}" >"$work/$kind.tip"
		comm -13 "$work/$kind.base" "$work/$kind.tip" >"$work/$kind.new"
		echo "  $kind: $(wc -l <"$work/$kind.base") warning(s) in the base, $(wc -l <"$work/$kind.tip") with the series, $(wc -l <"$work/$kind.new") new"
		while IFS= read -r w; do
			fail warnings "$kind: $w"
		done <"$work/$kind.new"
	done
}

step_cxx() {
	local dir=$TREE/tools/testing/selftests/kvm/mte files
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
	"$PYTHON" - "$1" <<'PY'
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
	"$PYTHON" -c 'import docutils' 2>/dev/null || { fail docs "python3-docutils is not installed"; return; }
	rst_warnings "$BASE_CACHE/Documentation/virt/kvm/api.rst" | LC_ALL=C sort >"$work/doc.base"
	rst_warnings "$TREE/Documentation/virt/kvm/api.rst" | LC_ALL=C sort >"$work/doc.tip"
	comm -13 "$work/doc.base" "$work/doc.tip" >"$work/doc.new"
	while IFS= read -r w; do
		fail docs "$w"
	done <"$work/doc.new"
}

for s in $steps; do
	current=$s
	before=${#failed[@]}
	"step_$s"
	[ ${#failed[@]} -gt "$before" ] || echo "PASS $s" >>"$results"
	current=""
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "series checks failed: ${#failed[@]} finding(s)"
	exit 1
fi
say "series checks passed ($steps)"
