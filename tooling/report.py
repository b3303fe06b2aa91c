#!/usr/bin/env python3
"""Judge the serial console logs of test bed runs against tooling/expected-results.

usage: report.py [--series RESULTS[:STEPS]]... [--partial] [--expected FILE] LABEL=LOG ...
       report.py --write-expected FILE LABEL=LOG ...

LABEL names the run as tooling/matrix.sh does, FLAVOUR-mte-MODE (vhe-mte-on,
nvhe-mte-off, ...): the flavour and mode pick each test's expected verdict.
A log holds the kernel console, "testbed: ..." lines from the initramfs init
and the KTAP that run_kselftest.sh prints: a plan and one top-level result
per test binary and, prefixed with "# ", each binary's own KTAP.

A run fails when:
  - a test listed in the expectation file is missing from the log (unless
    --partial), or the log shows a test that is not listed;
  - a test's verdict differs from its expectation: a failure, a pass where a
    skip is expected, a skip where a pass is expected, or a skip whose reason
    does not match the expected regular expression (in either mode);
  - a binary printed no plan, or its plan and the number of its results
    disagree, or its results are not numbered 1..N;
  - a binary's exit code (top-level ok / not ok / # SKIP / exit=N) disagrees
    with its results, it was killed by a signal, or it timed out;
  - a binary's output started but no top-level result followed;
  - the top-level plan and the number of top-level results disagree;
  - the end marker "testbed: kselftests finished rc=N" is missing, or the
    log says "testbed: QEMU timed out", or the narrated demo failed;
  - the label's flavour or mode differs from the log's "testbed: flavour=F
    mte=M" line, or the label names neither;
  - any line of the log (test output included) matches a kernel splat marker
    of tools/testing/selftests/kvm/mte/lib/splat-markers.txt.

--partial is for runs of a few tests only (quick runs): expected tests that
did not run are counted and announced ("PARTIAL RUN: N expected tests were
not run") instead of failing the run; everything else still fails it.

--series RESULTS reads what tooling/check-series.sh writes, one "PASS step"
or "FAIL step: finding" line each: every step of roundtrip am checkpatch
build warnings cxx docs must report PASS and none may report FAIL. With
RESULTS:STEPS (comma separated), only those steps are required, as for the
other bases of tooling/bases, where the matrix checks that the series
applies. The option may be repeated.

--write-expected FILE writes the expectation file from passing logs: each
log must pass every check above but the comparison with the expectations.
Entries for tests, modes or flavours that the logs do not cover are kept
from FILE, as are its header and the comments at line ends; a new test needs
a log of each mode. Only this option writes the file: a check reads it and
nothing else sets expectations.

Output: a table per run (verdict, binary: test, note), the run's problems,
a "failed runs:" line, and last "N passed, N failed, N skipped". Exit
status 0 only if everything passed, 1 on any failure, 2 on a usage error or
an unreadable expectation or marker file.
"""

import argparse
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_FILE = ROOT / "tooling" / "expected-results"
MARKERS_FILE = ROOT / "tools" / "testing" / "selftests" / "kvm" / "mte" / "lib" / "splat-markers.txt"
SERIES_STEPS = ("roundtrip", "am", "checkpatch", "build", "warnings", "cxx", "docs")
FLAVOURS = ("vhe", "nvhe")
MODES = ("on", "off")
MAX_SPLAT_LINES = 20

KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4

VERSION_RE = re.compile(r"^K?TAP version \d+\s*$")
PLAN_RE = re.compile(r"^1\.\.(\d+)\s*(?:#.*)?$")
RESULT_RE = re.compile(r"^(ok|not ok)\s+(\d+)\s+(?:-\s+)?([^#]*?)\s*(?:#\s*(.*?))?\s*$")
HEADER_RE = re.compile(r"^selftests: (\S+): (\S+)\s*$")
TOP_NAME_RE = re.compile(r"^selftests: (\S+): (\S+)$")
RUN_RE = re.compile(r"^(?:#\s*)?RUN\s+(\S+)")
EXIT_RE = re.compile(r"^exit=(\d+)\s*$")
END_RE = re.compile(r"^testbed: kselftests finished rc=(\d+)")
START_RE = re.compile(r"^testbed: running kselftests")
QEMU_TIMEOUT_RE = re.compile(r"^testbed: QEMU timed out")
DEMO_FAILED_RE = re.compile(r"^testbed: -+ demo FAILED")
TESTBED_CONFIG_RE = re.compile(r"^testbed: flavour=(\S*) mte=(\S*)")
LABEL_RE = re.compile(r"(?<![a-z])(vhe|nvhe)-mte-(on|off)(?![a-z])")


class ConfigError(Exception):
    """An expectation or marker file that cannot be used."""


# --------------------------------------------------------------------------
# Splat markers


# The characters a backslash may escape in a POSIX extended expression.
# Escaping any other is undefined, and the selftests' std::regex (extended)
# throws on it.
ERE_SPECIAL = ".[\\()*+?{|^$"


def bad_ere_escape(pattern):
    """The first escape of pattern that POSIX leaves undefined, or None."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            if i + 1 == len(pattern) or pattern[i + 1] not in ERE_SPECIAL:
                return pattern[i:i + 2]
            i += 1
        i += 1
    return None


def load_markers(path=MARKERS_FILE):
    """The compiled patterns of a splat marker file: [(text, regex)]."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ConfigError(f"cannot read splat markers {path}: {err}") from err
    markers = []
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if line != line.strip():
            raise ConfigError(f"{path}:{number}: leading or trailing blank in marker {line!r}")
        bad_escape = bad_ere_escape(line)
        if bad_escape:
            raise ConfigError(f"{path}:{number}: {bad_escape!r} in marker {line!r}: "
                              f"escape only one of {ERE_SPECIAL}")
        try:
            markers.append((line, re.compile(line)))
        except re.error as err:
            raise ConfigError(f"{path}:{number}: bad regular expression {line!r}: {err}") from err
    if not markers:
        raise ConfigError(f"{path}: no splat markers")
    return markers


def find_splats(lines, markers):
    """(line number, line) of every log line that matches a marker."""
    return [(n, line) for n, line in enumerate(lines, 1)
            if any(regex.search(line) for _text, regex in markers)]


# --------------------------------------------------------------------------
# The expectation file

EXPECTED_HEADER = """\
# Expected verdict of every kselftest the test bed runs, per QEMU mode and
# kernel flavour; read by tooling/report.py, which fails a run on any test
# missing from the log, any test not listed here, and any other verdict.
#
# One test per line:
#   BINARY SUITE.NAME  on=VERDICT  off=VERDICT
# on/off is the QEMU MTE mode (the run label's "mte-on" / "mte-off"). A
# flavour prefix gives a verdict for one kernel flavour only and overrides
# the plain one: "nvhe:off=VERDICT" (flavours: vhe, nvhe). Every flavour
# needs a verdict in both modes.
# VERDICT is "pass", or "skip:REGEX": the test must skip, with a reason that
# Python's re.search() finds REGEX in (anchor with ^ and $ for the whole
# reason). A REGEX may contain blanks, but not " #" or " on=" / " off=".
# Text after " #" is a comment, as are lines starting with "#".
#
# Write or update this file from passing logs (a new test is one command):
#   tooling/report.py --write-expected tooling/expected-results \\
#       vhe-mte-on=build/runs/vhe-mte-on.log vhe-mte-off=build/runs/vhe-mte-off.log ...
# It keeps the entries the logs do not cover and the comments at line ends.
"""

KEY_SPLIT_RE = re.compile(r"\s+(?=(?:(?:vhe|nvhe):)?(?:on|off)=)")
KEY_RE = re.compile(r"^(?:(vhe|nvhe):)?(on|off)=(.*)$")
COMMENT_RE = re.compile(r"\s#")


@dataclass
class Verdict:
    kind: str  # "pass" or "skip"
    text: str  # as written: "pass" or "skip:REGEX"
    regex: re.Pattern = None

    @classmethod
    def parse(cls, text):
        if text == "pass":
            return cls("pass", text)
        if text.startswith("skip:") and text[5:]:
            return cls("skip", text, re.compile(text[5:]))
        raise ValueError(f"verdict {text!r} is neither 'pass' nor 'skip:REGEX'")

    def accepts(self, outcome, reason):
        if self.kind == "pass":
            return outcome == "pass"
        return outcome == "skip" and self.regex.search(reason) is not None


@dataclass
class Entry:
    verdicts: dict  # "on", "off", "vhe:on", ... -> Verdict
    comment: str = ""

    def lookup(self, flavour, mode):
        return self.verdicts.get(f"{flavour}:{mode}") or self.verdicts.get(mode)


@dataclass
class Expectations:
    binaries: dict = field(default_factory=dict)  # binary -> {test: Entry}, in file order
    header: str = EXPECTED_HEADER

    def entry(self, binary, test):
        return self.binaries.get(binary, {}).get(test)

    def count(self):
        return sum(len(tests) for tests in self.binaries.values())


def parse_expected(text, name="expected-results"):
    exp = Expectations()
    header = []
    in_header = True
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if in_header and (line.startswith("#") or not line):
            header.append(raw)
            continue
        in_header = False
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{name}:{number}"
        comment = ""
        m = COMMENT_RE.search(line)
        if m:
            comment = line[m.start():].strip()[1:].strip()
            line = line[:m.start()]
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise ConfigError(f"{where}: want 'BINARY SUITE.NAME on=... off=...': {raw!r}")
        binary, test, rest = parts
        verdicts = {}
        for item in KEY_SPLIT_RE.split(rest.strip()):
            km = KEY_RE.match(item)
            if not km:
                raise ConfigError(f"{where}: cannot read {item!r} (want [FLAVOUR:]on|off=VERDICT)")
            key = f"{km.group(1)}:{km.group(2)}" if km.group(1) else km.group(2)
            if key in verdicts:
                raise ConfigError(f"{where}: {key} given twice")
            try:
                verdicts[key] = Verdict.parse(km.group(3).strip())
            except (ValueError, re.error) as err:
                raise ConfigError(f"{where}: {key}: {err}") from err
        entry = Entry(verdicts, comment)
        for flavour in FLAVOURS:
            for mode in MODES:
                if entry.lookup(flavour, mode) is None:
                    raise ConfigError(f"{where}: {binary} {test}: no verdict for {flavour}, mte={mode}")
        tests = exp.binaries.setdefault(binary, {})
        if test in tests:
            raise ConfigError(f"{where}: {binary} {test} listed twice")
        tests[test] = entry
    while header and not header[-1].strip():
        header.pop()
    if header:
        exp.header = "\n".join(header) + "\n"
    return exp


def load_expected(path):
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read expectations {path}: {err}") from err
    return parse_expected(text, str(path))


def key_order(key):
    """on, vhe:on, nvhe:on, off, vhe:off, nvhe:off."""
    flavour, _, mode = key.rpartition(":")
    return (MODES.index(mode), FLAVOURS.index(flavour) + 1 if flavour else 0)


def format_expected(exp):
    out = [exp.header.rstrip("\n"), ""]
    for binary, tests in exp.binaries.items():
        for test, entry in tests.items():
            keys = sorted(entry.verdicts, key=key_order)
            line = f"{binary} {test}  " + "  ".join(f"{k}={entry.verdicts[k].text}" for k in keys)
            if entry.comment:
                line += f"  # {entry.comment}"
            out.append(line)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Reading a console log


@dataclass
class Result:
    number: int
    name: str
    status: str  # "ok" or "not ok"
    directive: str
    line: int

    @property
    def outcome(self):
        if self.status != "ok":
            return "fail"
        return "skip" if self.is_skip_directive else "pass"

    @property
    def is_skip_directive(self):
        return self.directive.upper().startswith("SKIP")

    @property
    def reason(self):
        return self.directive[4:].strip() if self.is_skip_directive else self.directive


@dataclass
class Binary:
    name: str
    line: int
    header: bool = True
    plan: int = None
    results: list = field(default_factory=list)
    top: Result = None  # the run_kselftest.sh line
    running: str = None  # last "RUN suite.name" seen
    notes: list = field(default_factory=list)  # structural problems found while reading


@dataclass
class Log:
    binaries: list = field(default_factory=list)
    top_plan: int = None
    top_results: int = 0
    end_rc: int = None
    problems: list = field(default_factory=list)


def parse_log(lines):
    """The KTAP structure of a console log (lines without line ends)."""
    log = Log()
    numbered = list(enumerate(lines, 1))
    for n, line in numbered:
        if START_RE.match(line):
            numbered = numbered[n:]
            break
    current = None  # the binary whose output is being read

    def close_leftover():
        if current is not None and current.top is None:
            what = f" while running {current.running}" if current.running else ""
            current.notes.append(
                f"its output started (line {current.line}) but no top-level result followed{what}: "
                "the log stops mid-binary")

    for number, line in numbered:
        line = line.rstrip()
        if END_RE.match(line):
            log.end_rc = int(END_RE.match(line).group(1))
            break
        if line.startswith("#"):
            inner = line[2:] if line.startswith("# ") else line[1:]
            if not inner.strip():
                continue
            m = HEADER_RE.match(inner)
            if m:
                close_leftover()
                current = Binary(m.group(2), number)
                log.binaries.append(current)
                continue
            m = RUN_RE.match(inner)
            if m and current is not None:
                current.running = m.group(1)
                continue
            if inner.startswith("#"):
                continue  # the binary's diagnostics
            is_tap = VERSION_RE.match(inner) or PLAN_RE.match(inner) or RESULT_RE.match(inner)
            if not is_tap:
                continue
            if current is None or current.top is not None:
                log.problems.append(f"line {number}: KTAP outside any binary's output: {inner}")
                continue
            m = PLAN_RE.match(inner)
            if m:
                if current.plan is not None:
                    current.notes.append(f"printed a second plan at line {number}")
                current.plan = int(m.group(1))
                continue
            m = RESULT_RE.match(inner)
            if m:
                result = make_result(m, number)
                words = result.name.split()
                if len(words) != 1:
                    current.notes.append(f"garbled result at line {number}: {inner}")
                    result.name = words[0] if words else "(no name)"
                expected = len(current.results) + 1
                if result.number != expected:
                    current.notes.append(
                        f"result {result.name} is numbered {result.number} where {expected} was due")
                current.results.append(result)
            continue
        if VERSION_RE.match(line):
            if log.top_plan is not None or log.binaries:
                log.problems.append(f"line {number}: a second top-level KTAP stream starts")
            continue
        m = PLAN_RE.match(line)
        if m:
            if log.top_plan is not None:
                log.problems.append(f"line {number}: a second top-level plan 1..{m.group(1)}")
            log.top_plan = int(m.group(1))
            continue
        m = RESULT_RE.match(line)
        if m:
            result = make_result(m, number)
            tm = TOP_NAME_RE.match(result.name)
            if not tm:
                log.problems.append(f"line {number}: a top-level result that names no binary: {line}")
                continue
            log.top_results += 1
            if result.number != log.top_results:
                log.problems.append(f"line {number}: top-level result numbered {result.number} "
                                    f"where {log.top_results} was due")
            name = tm.group(2)
            if current is None or current.top is not None or current.name != name:
                close_leftover()
                current = Binary(name, number, header=False)
                current.notes.append("top-level result without a '# selftests:' header")
                log.binaries.append(current)
            current.top = result
            continue
    close_leftover()
    return log


def make_result(m, number):
    return Result(int(m.group(2)), m.group(3).strip(), m.group(1), (m.group(4) or "").strip(), number)


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def binary_problems(b):
    """What is wrong with one binary's output, apart from its tests' verdicts."""
    problems = list(b.notes)
    complete = b.plan is not None and len(b.results) == b.plan
    if b.plan is None:
        problems.append("printed no KTAP plan (1..N)" +
                        (f" but {len(b.results)} results" if b.results else ""))
    elif not complete:
        what = f"; the last test started was {b.running}" if b.running else ""
        problems.append(f"plan 1..{b.plan} but {len(b.results)} results{what}")
    names = [r.name for r in b.results]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name} reported {names.count(name)} times")
    if b.top is None:
        return problems
    top = b.top
    shown = f"'{top.status}" + (f" # {top.directive}'" if top.directive else "'")
    rc = None
    if top.status == "ok" and top.is_skip_directive:
        rc = KSFT_SKIP
    elif top.directive.upper().startswith("TIMEOUT"):
        problems.append(f"timed out (top-level {shown})")
    elif EXIT_RE.match(top.directive):
        rc = int(EXIT_RE.match(top.directive).group(1))
    elif top.status == "ok":
        rc = KSFT_PASS
    else:
        problems.append(f"top-level {shown} gives no exit code (missing or not executable?)")
    if rc is not None and rc > 128:
        problems.append(f"killed by {signal_name(rc - 128)} (exit={rc})" +
                        (f" while running {b.running}" if b.running else ""))
    elif rc is not None and rc not in (KSFT_PASS, KSFT_FAIL, KSFT_SKIP):
        problems.append(f"exit code {rc} is none of kselftest's (0 pass, 1 fail, 4 skip)")
    elif rc is not None and (rc == KSFT_PASS and top.status != "ok"):
        problems.append(f"top-level {shown} although exit=0")
    elif rc is not None and complete:
        outcomes = [r.outcome for r in b.results]
        if "fail" in outcomes:
            want = KSFT_FAIL
        elif all(o == "skip" for o in outcomes):
            # No test at all (plan 1..0) is what a binary says when a
            # KTEST_FILTER leaves it nothing to run; in a full run the
            # expected tests it did not run fail the run anyway.
            want = KSFT_SKIP
        else:
            want = KSFT_PASS
        if rc != want:
            summary = ", ".join(f"{outcomes.count(o)} {o}" for o in ("pass", "fail", "skip")
                                if outcomes.count(o))
            problems.append(f"exit code disagrees with its results: top-level {shown} "
                            f"(exit {rc}) but the results ({summary or 'none'}) give exit {want}")
    elif rc in (KSFT_PASS, KSFT_SKIP) and b.plan is not None and not complete:
        problems.append(f"top-level {shown} although results are missing")
    return problems


def label_config(label):
    m = LABEL_RE.search(label)
    return (m.group(1), m.group(2)) if m else (None, None)


# --------------------------------------------------------------------------
# Judging a run


@dataclass
class RunReport:
    label: str
    rows: list = field(default_factory=list)  # (verdict, binary, test, note, count)
    problems: list = field(default_factory=list)
    not_run: int = 0
    partial: bool = False

    @property
    def failed(self):
        return bool(self.problems) or any(r[0] == "FAIL" for r in self.rows)

    def totals(self):
        t = {"PASS": 0, "FAIL": len(self.problems), "SKIP": 0}
        for verdict, _b, _t, _n, count in self.rows:
            t[verdict] += count
        return t


def check_structure(label, lines, markers):
    """The parsed log and every run-level problem not about expectations."""
    log = parse_log(lines)
    problems = list(log.problems)
    for b in log.binaries:
        problems += [f"{b.name}: {p}" for p in binary_problems(b)]
    if log.top_plan is None:
        problems.append("no top-level plan (1..N): run_kselftest.sh did not start or its output is lost")
    elif log.top_plan != log.top_results:
        problems.append(f"top-level plan 1..{log.top_plan} but {log.top_results} binaries reported")
    if log.end_rc is None:
        problems.append("no end marker 'testbed: kselftests finished rc=N' "
                        "(hang, panic, or QEMU stopped)")
    for line in lines:
        if QEMU_TIMEOUT_RE.match(line):
            problems.append(f"QEMU timed out: {line.strip()}")
        if DEMO_FAILED_RE.match(line):
            problems.append(f"the demo failed: {line.strip()}")
    flavour, mode = label_config(label)
    if flavour is None:
        problems.append(f"cannot tell flavour and mode from the label {label!r} "
                        "(want FLAVOUR-mte-MODE, e.g. vhe-mte-on or nvhe-mte-off)")
    for line in lines:
        m = TESTBED_CONFIG_RE.match(line)
        if m and flavour is not None and m.groups() != (flavour, mode):
            problems.append(f"the label says flavour={flavour} mte={mode} but the log says: "
                            f"{line.strip()}")
    splats = find_splats(lines, markers)
    for number, line in splats[:MAX_SPLAT_LINES]:
        problems.append(f"kernel splat at line {number}: {line.strip()[:160]}")
    if len(splats) > MAX_SPLAT_LINES:
        problems.append(f"... and {len(splats) - MAX_SPLAT_LINES} more splat lines")
    if not any(b.results for b in log.binaries):
        problems.append("no test results at all")
    return log, problems


def judge_run(label, text, exp, markers, partial=False):
    report = RunReport(label, partial=partial)
    lines = text.replace("\r", "").splitlines()
    log, report.problems = check_structure(label, lines, markers)
    flavour, mode = label_config(label)
    seen = {}
    present = {b.name for b in log.binaries}
    for b in log.binaries:
        listed = exp.binaries.get(b.name)
        if listed is None:
            report.problems.append(f"{b.name}: binary not listed in the expectation file")
        for r in b.results:
            seen.setdefault(b.name, set()).add(r.name)
            entry = exp.entry(b.name, r.name)
            if entry is None:
                note = (f"extra test, not in the expectation file ({r.outcome}"
                        + (f": {r.reason}" if r.reason else "") + ")")
                report.rows.append(("FAIL", b.name, r.name, note, 1))
            elif flavour is None:
                report.rows.append(("FAIL", b.name, r.name, f"{r.outcome} (run label unknown)", 1))
            else:
                report.rows.append(judge_test(b.name, r, entry.lookup(flavour, mode)))
    for binary, tests in exp.binaries.items():
        missing = [t for t in tests if t not in seen.get(binary, ())]
        if not missing:
            continue
        if partial:
            report.not_run += len(missing)
        elif binary not in seen:
            why = "printed no results" if binary in present else "did not run"
            report.rows.append(("FAIL", binary, f"({len(missing)} tests)",
                                f"the binary {why}: {len(missing)} expected tests missing",
                                len(missing)))
        else:
            for t in missing:
                report.rows.append(("FAIL", binary, t, "missing from the log", 1))
    return report


def judge_test(binary, r, want):
    reason = r.reason
    if r.outcome == "fail":
        note = "failed" + (f": {r.directive}" if r.directive else "")
        if r.status == "not ok" and r.is_skip_directive:
            note = f"'not ok' with a SKIP directive: {r.directive}"
        return ("FAIL", binary, r.name, f"{note} (expected {want.text})", 1)
    if want.accepts(r.outcome, reason):
        return ("PASS", binary, r.name, "", 1) if r.outcome == "pass" else \
            ("SKIP", binary, r.name, reason, 1)
    if r.outcome == "pass":
        return ("FAIL", binary, r.name, f"passed, but expected {want.text}", 1)
    if not reason:
        return ("FAIL", binary, r.name, f"skipped without a reason (expected {want.text})", 1)
    if want.kind == "skip":
        return ("FAIL", binary, r.name,
                f"skip reason '{reason}' does not match the expected /{want.regex.pattern}/", 1)
    return ("FAIL", binary, r.name, f"skipped ({reason}), but expected pass", 1)


def print_run(report, path):
    flavour, mode = label_config(report.label)
    what = f"flavour={flavour} mte={mode}" if flavour else "flavour and mode unknown"
    print(f"\n== {report.label} ({path}), {what}")
    if report.partial and report.not_run:
        print(f"  !!!! PARTIAL RUN: {report.not_run} expected tests were not run !!!!")
    width = max([len(f"{b}: {t}") for _v, b, t, _n, _c in report.rows] + [20])
    for verdict, binary, test, note, _count in report.rows:
        print(f"  {verdict:4}  {binary + ': ' + test:<{width}}  {note}".rstrip())
    if report.problems:
        print("  problems:")
    for p in report.problems:
        print(f"  FAIL  {p}")


# --------------------------------------------------------------------------
# Series checks

SERIES_LINE_RE = re.compile(r"^(PASS|FAIL)\s+([A-Za-z0-9_.-]+?):?(?:\s+(.*?))?\s*$")


def parse_series_arg(arg):
    """RESULTS[:step,step...] -> (path, required steps); all seven by default."""
    path, sep, steps = arg.rpartition(":")
    if not sep or "/" in steps or not steps:
        return arg, SERIES_STEPS
    wanted = tuple(s for s in steps.split(",") if s)
    unknown = [s for s in wanted if s not in SERIES_STEPS]
    if unknown:
        raise ConfigError(f"--series {arg}: unknown step(s) {', '.join(unknown)}")
    return path, wanted


def judge_series(path, required=SERIES_STEPS):
    """Rows (verdict, step, note) of the series checks; the problems in FAIL rows."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as err:
        return [("FAIL", "series", f"cannot read {path}: {err}")]
    passed, failed, rows = [], {}, []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = SERIES_LINE_RE.match(line.strip())
        if not m:
            rows.append(("FAIL", "series", f"line {number} is neither PASS nor FAIL: {line.strip()}"))
            continue
        if m.group(1) == "PASS":
            passed.append(m.group(2))
        else:
            failed.setdefault(m.group(2), []).append(m.group(3) or "(no finding given)")
    steps = list(required) + [s for s in passed + list(failed) if s not in required]
    for step in dict.fromkeys(steps):
        if step in failed:
            for finding in failed[step]:
                rows.append(("FAIL", step, finding))
            if step in passed:
                rows.append(("FAIL", step, "reported both PASS and FAIL"))
        elif step in passed:
            rows.append(("PASS", step, ""))
        else:
            rows.append(("FAIL", step, f"series step {step} did not report"))
    return rows


# --------------------------------------------------------------------------
# Writing the expectation file


def skip_regex(reason):
    """A regular expression matching exactly reason, readable in the file."""
    return "^" + re.sub(r"([\\.^$*+?()\[\]{}|#])", r"\\\1", reason) + "$"


def write_expected(path, runs, markers):
    """Update (or create) the expectation file from passing logs; 0 on success."""
    try:
        exp = load_expected(path) if Path(path).exists() else Expectations()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    observed = {}  # (binary, test) -> {(flavour, mode): (outcome, reason)}
    order = {}  # binary -> [test] in log order
    bad = False
    for label, log_path in runs:
        flavour, mode = label_config(label)
        try:
            text = Path(log_path).read_text(errors="replace")
        except OSError as err:
            print(f"{label}: cannot read {log_path}: {err}")
            bad = True
            continue
        lines = text.replace("\r", "").splitlines()
        log, problems = check_structure(label, lines, markers)
        for b in log.binaries:
            for r in b.results:
                if r.outcome == "fail":
                    problems.append(f"{b.name}: {r.name} failed")
                key = (flavour, mode)
                got = observed.setdefault((b.name, r.name), {})
                if key in got and got[key] != (r.outcome, r.reason):
                    problems.append(f"{b.name}: {r.name}: two logs of {flavour}-mte-{mode} disagree")
                got[key] = (r.outcome, r.reason)
                order.setdefault(b.name, [])
                if r.name not in order[b.name]:
                    order[b.name].append(r.name)
        if problems:
            bad = True
            print(f"{label} ({log_path}) does not pass, so it cannot set expectations:")
            for p in problems:
                print(f"  {p}")
    if bad:
        print("expectations not written")
        return 1

    errors, changes = [], []
    new = Expectations(header=exp.header)
    binaries = merge_order(list(exp.binaries), list(order))
    for binary in binaries:
        tests = merge_order(list(exp.binaries.get(binary, {})), order.get(binary, []))
        for test in tests:
            old = exp.entry(binary, test)
            seen = observed.get((binary, test), {})
            entry = merge_entry(binary, test, old, seen, errors)
            if entry is None:
                continue
            new.binaries.setdefault(binary, {})[test] = entry
            if old is None:
                changes.append(f"added {binary} {test}")
            elif format_entry(old) != format_entry(entry):
                changes.append(f"changed {binary} {test}: {format_entry(old)} -> {format_entry(entry)}")
    kept = [f"{b} {t}" for b, tests in exp.binaries.items() for t in tests
            if (b, t) not in observed]
    if errors:
        for e in errors:
            print(f"error: {e}")
        print("expectations not written")
        return 1
    text = format_expected(new)
    check = parse_expected(text, str(path))
    if format_expected(check) != text:
        print("error: the written file would not read back the same (a skip reason with ' on='?)")
        return 1
    Path(path).write_text(text)
    for c in changes:
        print(c)
    if kept:
        print(f"kept {len(kept)} entries that no log shows (remove them by hand if the tests are gone):")
        for k in kept:
            print(f"  {k}")
    print(f"wrote {path}: {new.count()} tests")
    return 0


def merge_order(old, seen):
    """old, with the names only seen inserted after their predecessor in seen."""
    order = list(old)
    prev = None
    for name in seen:
        if name not in order:
            order.insert(order.index(prev) + 1 if prev in order else len(order) if prev else 0, name)
        prev = name
    return order


def format_entry(entry):
    return "  ".join(f"{k}={entry.verdicts[k].text}" for k in sorted(entry.verdicts, key=key_order))


def merge_entry(binary, test, old, seen, errors):
    """The entry of one test from its observed outcomes and its old entry."""
    per = {}  # (flavour, mode) -> Verdict
    for flavour in FLAVOURS:
        for mode in MODES:
            previous = old.lookup(flavour, mode) if old else None
            if (flavour, mode) in seen:
                outcome, reason = seen[(flavour, mode)]
                if previous is not None and previous.accepts(outcome, reason):
                    per[(flavour, mode)] = previous
                elif outcome == "pass":
                    per[(flavour, mode)] = Verdict.parse("pass")
                else:
                    per[(flavour, mode)] = Verdict.parse("skip:" + skip_regex(reason))
            elif previous is not None:
                per[(flavour, mode)] = previous
    for mode in MODES:
        for flavour in FLAVOURS:
            if (flavour, mode) in per:
                continue
            # Not seen in this flavour and not listed: take the other flavour's.
            others = [per[(f, mode)] for f in FLAVOURS if (f, mode) in per]
            if not others:
                errors.append(f"{binary} {test}: no log with mte={mode} shows it (give one, or write its line by hand)")
                return None
            per[(flavour, mode)] = others[0]
    verdicts = {}
    for mode in MODES:
        texts = {per[(f, mode)].text for f in FLAVOURS}
        if len(texts) == 1:
            verdicts[mode] = per[(FLAVOURS[0], mode)]
        else:
            for f in FLAVOURS:
                verdicts[f"{f}:{mode}"] = per[(f, mode)]
    fully_seen = all((f, m) in seen for f in FLAVOURS for m in MODES)
    if fully_seen:
        comment = ""
    elif old is not None:
        comment = old.comment
    else:
        runs = ", ".join(f"{f}-mte-{m}" for f in FLAVOURS for m in MODES if (f, m) in seen)
        comment = f"seen only in {runs}"
    return Entry(verdicts, comment)


# --------------------------------------------------------------------------


def parse_runs(args, parser):
    runs = []
    for arg in args:
        label, sep, path = arg.partition("=")
        if not sep or not label or not path:
            parser.error(f"want LABEL=LOG, not {arg!r}")
        runs.append((label, path))
    return runs


def main(argv):
    parser = argparse.ArgumentParser(
        prog="report.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", metavar="RESULTS[:STEPS]", action="append", default=[],
                        help="series check results to require (repeatable); STEPS is a comma "
                        "separated subset of the seven steps, all of them by default")
    parser.add_argument("--partial", action="store_true",
                        help="a run of a few tests: expected tests that did not run do not fail it")
    parser.add_argument("--expected", metavar="FILE", default=str(EXPECTED_FILE),
                        help="the expectation file (default: tooling/expected-results)")
    parser.add_argument("--write-expected", metavar="FILE",
                        help="write FILE from the given passing logs instead of checking")
    parser.add_argument("runs", nargs="*", metavar="LABEL=LOG")
    args = parser.parse_args(argv[1:])
    runs = parse_runs(args.runs, parser)
    try:
        markers = load_markers()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.write_expected:
        if args.series or args.partial or not runs:
            parser.error("--write-expected takes LABEL=LOG arguments and no --series or --partial")
        return write_expected(args.write_expected, runs, markers)
    if not runs and not args.series:
        parser.error("nothing to judge: give --series RESULTS and/or LABEL=LOG")
    try:
        exp = load_expected(args.expected)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    totals = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    bad_runs = []
    partial_runs = []
    for arg in args.series:
        try:
            path, required = parse_series_arg(arg)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"\n== series checks ({path}: {' '.join(required)})")
        rows = judge_series(path, required)
        for verdict, step, note in rows:
            print(f"  {verdict:4}  {step:<10}  {note}".rstrip())
        for step in dict.fromkeys(step for _v, step, _n in rows):
            verdicts = {v for v, s, _n in rows if s == step}
            totals["FAIL" if "FAIL" in verdicts else "PASS"] += 1
        if any(v == "FAIL" for v, _s, _n in rows):
            bad_runs.append(f"series ({path})")
    for label, path in runs:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as err:
            print(f"\n== {label} ({path})\n  FAIL  cannot read the log: {err}")
            totals["FAIL"] += 1
            bad_runs.append(label)
            continue
        report = judge_run(label, text, exp, markers, partial=args.partial)
        print_run(report, path)
        for k, v in report.totals().items():
            totals[k] += v
        if report.failed:
            bad_runs.append(label)
        if report.not_run:
            partial_runs.append(f"{label}: {report.not_run}")
    print()
    if partial_runs:
        total = sum(int(p.rsplit(": ", 1)[1]) for p in partial_runs)
        print(f"PARTIAL RUN: {total} expected tests were not run ({', '.join(partial_runs)})")
    print("failed runs: " + (", ".join(bad_runs) if bad_runs else "none"))
    print(f"{totals['PASS']} passed, {totals['FAIL']} failed, {totals['SKIP']} skipped")
    return 1 if bad_runs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
