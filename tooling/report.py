#!/usr/bin/env python3
"""Read the serial console logs of test bed runs and judge them.

Each log holds the kernel's console and the KTAP that run_kselftest.sh
prints: a top-level line per test binary and, prefixed with "# ", the
binary's own KTAP. A run fails on any failed test, a binary that did not
report every test of its plan, a missing end marker (hang, panic), a kernel
splat on the console, or (under mte=on) a skipped test whose reason is not
allowed by tooling/allowed-skips.

usage: report.py [--series RESULTS] LABEL=LOG [LABEL=LOG ...]

RESULTS is the file tooling/check-series.sh writes: one "PASS step" or
"FAIL step: finding" line each, counted like tests.
"""

import re
import sys
from pathlib import Path

SPLATS = [
    (re.compile(r"\bWARNING:"), "WARNING"),
    (re.compile(r"\bBUG:"), "BUG"),
    (re.compile(r"\bOops\b|Internal error:"), "Oops"),
    (re.compile(r"Unable to handle kernel"), "kernel fault"),
    (re.compile(r"Kernel panic"), "panic"),
    (re.compile(r"possible (recursive|circular) locking|inconsistent lock state|"
                r"lockdep|suspicious RCU usage"), "lockdep"),
    (re.compile(r"rcu: INFO: .*stall|soft lockup|hung_task"), "stall"),
    (re.compile(r"^Call trace:"), "call trace"),
]
RESULT = re.compile(r"^(ok|not ok) (\d+) ([^#]*?)\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)")
TOP_NAME = re.compile(r"selftests: (\S+): (\S+)")
END = re.compile(r"^testbed: kselftests finished rc=(\d+)")


def allowed_skips():
    path = Path(__file__).with_name("allowed-skips")
    pats = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(re.compile(line))
    return pats


def parse(label, text, allowed):
    mte_on = "mte-on" in label or "mte=on" in label
    rows = []  # (binary, test, verdict, note)
    problems = []
    sub = []  # results of the binary currently printing
    plan = None
    console = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("# "):
            inner = line[2:]
            m = PLAN.match(inner)
            if m:
                plan = int(m.group(1))
                continue
            m = RESULT.match(inner)
            if m:
                sub.append(m.groups())
            continue
        m = RESULT.match(line)
        tm = TOP_NAME.search(line)
        if m and tm:
            binary = tm.group(2)
            for status, _num, name, directive in sub:
                verdict, note = judge(status, directive, mte_on, allowed)
                rows.append((binary, name, verdict, note))
            if plan is not None and len(sub) < plan:
                rows.append((binary, "(missing results)", "FAIL",
                             f"{plan - len(sub)} of {plan} tests did not report"))
            if m.group(1) == "not ok" and not any(s[0] == "not ok" for s in sub):
                directive = m.group(4) or ""
                if not (directive.upper().startswith("SKIP") and not sub):
                    rows.append((binary, "(binary)", "FAIL", directive or "non-zero exit"))
            if not sub and (m.group(4) or "").upper().startswith("SKIP"):
                verdict, note = judge("ok", m.group(4), mte_on, allowed)
                rows.append((binary, "(binary)", verdict, note))
            sub, plan = [], None
            continue
        console.append(line)
    for line in console:
        for pat, what in SPLATS:
            if pat.search(line):
                problems.append(f"console shows {what}: {line.strip()[:160]}")
                break
    if not any(END.match(line) for line in console):
        problems.append("the run did not finish (no end marker: hang, panic or timeout)")
    if not rows:
        problems.append("no test results at all")
    return rows, problems


def judge(status, directive, mte_on, allowed):
    directive = (directive or "").strip()
    if directive.upper().startswith("SKIP"):
        reason = directive[4:].strip()
        if not reason:
            return "FAIL", "skipped without a reason"
        if mte_on and not any(p.search(reason) for p in allowed):
            return "FAIL", f"skipped under mte=on: {reason}"
        return "SKIP", reason
    if status == "ok":
        return "PASS", ""
    return "FAIL", directive


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    allowed = allowed_skips()
    totals = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    bad_runs = []
    args = argv[1:]
    if args[:1] == ["--series"]:
        series_path, args = args[1], args[2:]
        print(f"\n== series checks ({series_path})")
        try:
            lines = Path(series_path).read_text().splitlines()
        except OSError as err:
            lines = [f"FAIL series: cannot read {series_path}: {err}"]
        if not lines:
            lines = ["FAIL series: no series check results"]
        for line in lines:
            verdict, _, what = line.partition(" ")
            verdict = "PASS" if verdict == "PASS" else "FAIL"
            totals[verdict] += 1
            print(f"  {verdict:4}  {what}")
            if verdict == "FAIL" and "series" not in bad_runs:
                bad_runs.append("series")
    for arg in args:
        label, _, path = arg.partition("=")
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as err:
            print(f"{label}: cannot read {path}: {err}")
            bad_runs.append(label)
            continue
        rows, problems = parse(label, text, allowed)
        print(f"\n== {label} ({path})")
        width = max([len(f"{b}: {t}") for b, t, _, _ in rows] + [20])
        for binary, test, verdict, note in rows:
            totals[verdict] += 1
            name = f"{binary}: {test}"
            print(f"  {verdict:4}  {name:<{width}}  {note}".rstrip())
        for p in problems:
            totals["FAIL"] += 1
            print(f"  FAIL  {p}")
        if problems or any(r[2] == "FAIL" for r in rows):
            bad_runs.append(label)
    print()
    if bad_runs:
        print("failed runs: " + ", ".join(bad_runs))
    print(f"{totals['PASS']} passed, {totals['FAIL']} failed, "
          f"{totals['SKIP']} skipped")
    return 1 if bad_runs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
