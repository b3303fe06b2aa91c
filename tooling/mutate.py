#!/usr/bin/env python3
"""Mutation check of the kernel series: break the code, watch the tests fail.

usage: mutate.py [--list] [NAME...]

Reads tooling/mutations, applies each mutation (one exact text replacement
in a file of the composed tree), rebuilds the kernel flavours it names
incrementally, boots them under QEMU running only the selftests it names,
and judges each run with tooling/report.py --partial. A mutation is
"killed" when a run fails (a failed or crashed test, a kernel splat),
"survived" when every run passes, and "explained" when the list says why
no test can observe it (those are not run). The tree is restored after
each mutation, and the kernels are rebuilt clean at the end.

Prints a table (mutation, verdict, failed tests, seconds) and writes it to
build/mutations/result.txt. Exit status 0 when every mutation that ran was
killed, 1 otherwise, 2 on a bad list or a tree that is not clean.

The list: blocks that start with "== NAME", then fields, one per line:
    rule: the contract rule the code implements
    patch: the subject of the series patch that holds the code
    file: path in the kernel tree
    runs: FLAVOUR-MODE ... (vhe-on, nvhe-on, vhe-off, nvhe-off)
    tests: BINARY [REGEX]  (repeatable; REGEX selects tests, as KTEST_FILTER)
    explained: why no test can observe it (instead of runs/tests)
and the replacement: lines starting with "- " (the text as it is, exactly
once in the file) followed by lines starting with "+ " (what it becomes;
"+" alone for an empty line, no "+" lines to delete the text).
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
LIST = TOP / "tooling" / "mutations"


class ListError(Exception):
    pass


def parse(text):
    muts, cur = [], None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\n")
        if line.startswith("#") or (not line.strip() and cur is None):
            continue
        if line.startswith("== "):
            cur = {"name": line[3:].strip(), "line": number, "tests": [], "old": [],
                   "new": []}
            muts.append(cur)
            continue
        if cur is None:
            raise ListError(f"line {number}: text before the first '== NAME'")
        if not line.strip():
            continue
        if line.startswith("- ") or line == "-":
            if cur["new"]:
                raise ListError(f"line {number}: '-' after '+' in {cur['name']}")
            cur["old"].append(line[2:])
        elif line.startswith("+ ") or line == "+":
            cur["new"].append(line[2:])
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise ListError(f"line {number}: not a field: {line}")
            key, value = key.strip(), value.strip()
            if key == "tests":
                binary, _, regex = value.partition(" ")
                cur["tests"].append((binary, regex.strip()))
            elif key in ("rule", "patch", "file", "runs", "explained"):
                cur[key] = value
            else:
                raise ListError(f"line {number}: unknown field {key}")
    names = set()
    for m in muts:
        where = f"mutation {m['name']} (line {m['line']})"
        if m["name"] in names:
            raise ListError(f"{where}: duplicate name")
        names.add(m["name"])
        for key in ("rule", "patch", "file"):
            if key not in m:
                raise ListError(f"{where}: no {key}")
        if not m["old"]:
            raise ListError(f"{where}: no '-' lines")
        if "explained" in m:
            continue
        if "runs" not in m or not m["tests"]:
            raise ListError(f"{where}: needs runs and tests, or explained")
        for run in m["runs"].split():
            if not re.fullmatch(r"(vhe|nvhe)-(on|off)", run):
                raise ListError(f"{where}: bad run {run}")
    return muts


def sh(cmd, env=None, log=None):
    full_env = dict(os.environ, **(env or {}))
    with open(log, "w") if log else open(os.devnull, "w") as out:
        return subprocess.run(cmd, cwd=TOP, env=full_env, stdout=out, stderr=subprocess.STDOUT).returncode


def tree_path():
    out = subprocess.run(["bash", "-c", ". tooling/common.sh && echo $TREE && echo $WORK"],
                         cwd=TOP, capture_output=True, text=True, check=True).stdout.split()
    return Path(out[0]), Path(out[1])


def apply(tree, m):
    path = tree / m["file"]
    text = path.read_text()
    old = "\n".join(m["old"]) + "\n"
    if text.count(old) != 1:
        raise ListError(f"mutation {m['name']}: the '-' text occurs {text.count(old)} times "
                        f"in {m['file']}, not once")
    new = "\n".join(m["new"]) + "\n" if m["new"] else ""
    path.write_text(text.replace(old, new))


def restore(tree, m):
    subprocess.run(["git", "-C", str(tree), "checkout", "-q", "--", m["file"]], check=True)


def failed_tests(report_out):
    names = []
    for line in report_out.splitlines():
        mm = re.match(r"\s+FAIL\s+(\S+: \S+|.*)", line)
        if mm:
            names.append(mm.group(1).strip()[:70])
    return names


def run_mutation(m, work, outdir):
    flavours = sorted({r.split("-")[0] for r in m["runs"].split()})
    for f in flavours:
        if sh(["tooling/build-kernel.sh", f], log=outdir / f"{m['name']}-build-{f}.log"):
            return "broken", ["the mutated kernel does not build"]
    regex = "|".join(f"({r})" for _b, r in m["tests"] if r)
    binaries = sorted({b for b, _r in m["tests"]})
    args = ",".join(f"-t,kvm/mte:{b}" for b in binaries)
    failures = []
    for run in m["runs"].split():
        f, mode = run.split("-")
        log = outdir / f"{m['name']}-{run}.log"
        sh(["tooling/run-qemu.sh", str(work / f"out-{f}/arch/arm64/boot/Image"),
            str(work / "initramfs.cpio"), str(log), f, mode, "600"],
           env={"TESTBED_ARGS": args, "TESTBED_FILTER": regex, "QUIET": "1"})
        rep = subprocess.run([sys.executable, "tooling/report.py", "--partial",
                              f"{f}-mte-{mode}={log}"], cwd=TOP, capture_output=True, text=True)
        (outdir / f"{m['name']}-{run}.report").write_text(rep.stdout)
        if rep.returncode:
            failures += [f"{run}: {t}" for t in failed_tests(rep.stdout)] or [f"{run}: run failed"]
    return ("killed" if failures else "survived"), failures


def main(argv):
    listing = "--list" in argv
    wanted = [a for a in argv[1:] if a != "--list"]
    try:
        muts = parse(LIST.read_text())
    except (OSError, ListError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if wanted:
        unknown = set(wanted) - {m["name"] for m in muts}
        if unknown:
            print(f"error: no mutation named {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        muts = [m for m in muts if m["name"] in wanted]
    if listing:
        for m in muts:
            print(f"{m['name']:40} {m['patch']}")
        return 0

    tree, work = tree_path()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout
    if dirty:
        print(f"error: {tree} has uncommitted changes; mutations need a clean composed tree",
              file=sys.stderr)
        return 2
    outdir = work / "mutations"
    outdir.mkdir(parents=True, exist_ok=True)
    if sh(["tooling/build-selftests.sh"], log=outdir / "selftests.log"):
        print("error: the selftests do not build", file=sys.stderr)
        return 2

    start = time.time()
    rows = []
    for i, m in enumerate(muts, 1):
        t0 = time.time()
        print(f"[{i}/{len(muts)}] {m['name']} ({int(t0 - start)} s so far)", flush=True)
        if "explained" in m:
            try:
                apply(tree, m)
            except ListError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            restore(tree, m)
            rows.append((m, "explained", [m["explained"]], 0))
            continue
        try:
            apply(tree, m)
            verdict, notes = run_mutation(m, work, outdir)
        except ListError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        finally:
            restore(tree, m)
        rows.append((m, verdict, notes, int(time.time() - t0)))
        print(f"    {verdict}: {'; '.join(notes[:3])}", flush=True)

    flavours = sorted({r.split("-")[0] for m in muts if "runs" in m for r in m["runs"].split()})
    for f in flavours:
        sh(["tooling/build-kernel.sh", f], log=outdir / f"clean-build-{f}.log")

    lines = [f"{'mutation':36} {'verdict':9} {'s':>4}  tests that failed / why"]
    for m, verdict, notes, secs in rows:
        lines.append(f"{m['name']:36} {verdict:9} {secs:4}  {notes[0] if notes else ''}")
        for n in notes[1:4]:
            lines.append(f"{'':36} {'':9} {'':4}  {n}")
    counts = {v: sum(1 for r in rows if r[1] == v) for v in ("killed", "survived", "explained", "broken")}
    lines.append("")
    lines.append(f"{len(rows)} mutations: {counts['killed']} killed, {counts['survived']} survived, "
                 f"{counts['explained']} explained, {counts['broken']} broken; "
                 f"{int(time.time() - start)} s")
    table = "\n".join(lines)
    print("\n" + table)
    (outdir / "result.txt").write_text(table + "\n")
    return 0 if not counts["survived"] and not counts["broken"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
