#!/usr/bin/env python3
"""Tables, goals and a plot from the benchmark runs of tooling/bench.sh.

    bench_report.py [--out DIR] [--peer TEXT] [--no-plot] KERNEL=LOG...

Each LOG is the console of one boot that ran the benchmark binary; its
"# bench figure=... ns=N" lines are the measurements. KERNEL is one of
ours-vhe, ours-nvhe, mainline-vhe, mainline-nvhe; a kernel may have several
logs (rounds). A run counts only if the binary finished with every
benchmark "ok" and the console has no kernel splat; otherwise this exits 1.

Every figure is the median over the rounds, with the range; ratios compare
medians of the same run, so they are what to quote (TCG's absolute times
are not a machine's). Writes DIR/bench.md (the tables), DIR/bench.json
(every sample) and DIR/bench.svg (throughput against size and backing).
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the splat markers and their matcher)

KERNELS = ["ours-vhe", "mainline-vhe", "ours-nvhe", "mainline-nvhe"]
PAIRS = [("vhe", "ours-vhe", "mainline-vhe"), ("nvhe", "ours-nvhe", "mainline-nvhe")]
BENCH_RE = re.compile(r"^# bench (.*)$")
RESULT_RE = re.compile(r"^(not ok|ok) \d+ (\S+)(.*)$")
FINISHED_RE = re.compile(r"^testbed: benchmarks finished rc=(\d+)")
BACKINGS = ["4k", "thp", "hugetlb-2m", "hugetlb-1g"]
COPY_OPS = ["from-untouched", "to-untouched", "from-tagged", "to-tagged"]
MIB = 1 << 20

# The goals of the benchmark issue.
GOAL_COPY_VS_MAINLINE = 3.0
GOAL_COPY_VS_MEMCPY = 2.0
GOAL_FIRST_TOUCH_OVERHEAD = 1.15
GOAL_EXIT_OVERHEAD = 1.05


class RunError(Exception):
    pass


def parse_fields(text):
    """'figure=copy size_mib=64 ns=5' -> {'figure': 'copy', ...}."""
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def parse_log(text, markers):
    """The measurements of one console log: [(fields, value)], or RunError."""
    lines = text.splitlines()
    problems = []
    samples = []
    finished = None
    for line in lines:
        m = BENCH_RE.match(line)
        if m:
            fields = parse_fields(m.group(1))
            if "refused" in fields:
                samples.append((fields, None))
                continue
            key = "ns" if "ns" in fields else "kib"
            if key not in fields:
                problems.append(f"bench line without a value: {line}")
                continue
            value = int(fields.pop(key))
            samples.append((fields, value))
            continue
        m = RESULT_RE.match(line)
        if m and (m.group(1) == "not ok" or "# SKIP" in m.group(3)):
            problems.append(f"{m.group(2)}: {m.group(1)}{m.group(3)}")
            continue
        m = FINISHED_RE.match(line)
        if m:
            finished = int(m.group(1))
    if finished is None:
        problems.append("the benchmark binary never finished (timeout or panic?)")
    elif finished != 0:
        problems.append(f"the benchmark binary exited with {finished}")
    for number, line in report.find_splats(lines, markers)[:5]:
        problems.append(f"kernel splat at line {number}: {line.strip()[:160]}")
    if not samples:
        problems.append("no measurement in the log")
    if problems:
        raise RunError("; ".join(problems))
    return samples


def key_of(fields):
    return tuple(sorted(fields.items()))


class Results:
    """samples[kernel][key] = [value per round]."""

    def __init__(self, peer="mainline"):
        self.peer = peer
        self.samples = {}
        # refused[kernel][(backing, size_mib)] = errno name of the memslot.
        self.refused = {}

    def add(self, kernel, samples):
        per_key = self.samples.setdefault(kernel, {})
        for fields, value in samples:
            if value is None:
                where = (fields.get("backing"), int(fields.get("size_mib", 0)))
                self.refused.setdefault(kernel, {})[where] = fields["refused"]
                if kernel.startswith("ours"):
                    raise RunError(f"this series refused a {where[0]} memslot with {fields['refused']}")
                continue
            per_key.setdefault(key_of(fields), []).append(value)

    def refusal(self, kernel, backing, size):
        err = self.refused.get(kernel, {}).get((backing, size))
        return f"refused ({err})" if err else None

    def values(self, kernel, **fields):
        want = key_of({k: str(v) for k, v in fields.items()})
        return self.samples.get(kernel, {}).get(want, [])

    def median(self, kernel, **fields):
        vals = self.values(kernel, **fields)
        return statistics.median(vals) if vals else None

    def kernels(self):
        return [k for k in KERNELS if k in self.samples]

    def copy_sizes(self):
        sizes = {int(dict(k)["size_mib"]) for k in self.keys("copy")}
        return sorted(sizes | {size for per in self.refused.values() for _, size in per})

    def keys(self, figure):
        seen = set()
        for per_key in self.samples.values():
            for key in per_key:
                if dict(key).get("figure") == figure:
                    seen.add(key)
        return seen


def cell(vals, scale, fmt="{:.1f}"):
    """'median [min-max]' of vals mapped through scale."""
    if not vals:
        return "-"
    scaled = sorted(scale(v) for v in vals)
    med = fmt.format(statistics.median(scaled))
    if len(scaled) == 1:
        return med
    return f"{med} [{fmt.format(scaled[0])}-{fmt.format(scaled[-1])}]"


def ratio_cell(num, den):
    if num is None or den is None or den == 0:
        return "-"
    return f"{num / den:.2f}x"


def paired_ratio(on, off):
    """Median over the boots of on/off measured back to back in the same boot.

    The MTE overhead is a ratio within one boot: a boot that TCG runs slower
    as a whole slows both, and must not count as overhead.
    """
    return statistics.median(a / b for a, b in zip(on, off))


def mib_per_s(size_mib):
    return lambda ns: size_mib / (ns / 1e9)


class Table:
    def __init__(self, title, header):
        self.title = title
        self.header = header
        self.rows = []

    def add(self, row):
        self.rows.append([str(c) for c in row])

    def markdown(self):
        out = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |",
               "|" + "|".join("---" for _ in self.header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out) + "\n"


def speedup(results, ours, peer, fields):
    """How many times less time ours takes than the peer, by medians."""
    a = results.median(ours, **fields)
    b = results.median(peer, **fields)
    if a is None or b is None:
        return None
    return b / a


def copy_table(results, goals):
    sizes = results.copy_sizes()
    header = ["backing", "MiB", "op"]
    for _, ours, peer in PAIRS:
        header += [f"{ours} MiB/s", f"{peer} MiB/s", "ours/mainline"]
    header += ["memcpy limit MiB/s", "LDG loop MiB/s", "memcpy/ours-vhe"]
    t = Table("KVM_ARM_MTE_COPY_TAGS: guest memory per second (median [min-max])", header)
    for backing in BACKINGS:
        for size in sizes:
            for op in COPY_OPS:
                f = dict(figure="copy", backing=backing, size_mib=size, op=op)
                if not any(results.values(k, **f) or results.refusal(k, backing, size)
                           for k in results.kernels()):
                    continue
                row = [backing, size, op]
                for flavour, ours, peer in PAIRS:
                    a, b = results.median(ours, **f), results.median(peer, **f)
                    row += [results.refusal(ours, backing, size) or
                            cell(results.values(ours, **f), mib_per_s(size)),
                            results.refusal(peer, backing, size) or
                            cell(results.values(peer, **f), mib_per_s(size)),
                            ratio_cell(b, a)]
                    if a is not None and b is not None:
                        goals.check_copy(flavour, backing, size, op, b / a)
                lim = dict(figure="limit", size_mib=size)
                memcpy = results.median("ours-vhe", op="memcpy", **lim)
                ours_vhe = results.median("ours-vhe", **f)
                row += [cell(results.values("ours-vhe", op="memcpy", **lim), mib_per_s(size), "{:.0f}"),
                        cell(results.values("ours-vhe", op="ldg-loop", **lim), mib_per_s(size)),
                        ratio_cell(ours_vhe, memcpy)]
                if memcpy and ours_vhe and op.endswith("tagged") and size == max(sizes):
                    goals.check_limit(backing, size, op, ours_vhe / memcpy)
                t.add(row)
    return t


def kmem_table(results):
    t = Table("Kernel memory taken during one FROM_GUEST call (KiB, MemFree sampled)",
              ["backing", "MiB"] + results.kernels())
    for backing in BACKINGS:
        for size in results.copy_sizes():
            f = dict(figure="copy", backing=backing, size_mib=size, op="kmem-from")
            if any(results.values(k, **f) for k in results.kernels()):
                t.add([backing, size] + [cell(results.values(k, **f), float, "{:.0f}")
                                         for k in results.kernels()])
    return t


def overhead_table(results, goals, figure, title, unit, per, variants, goal_name, goal):
    header = [figure.split("-")[0] if figure != "exits" else "kind"]
    for k in results.kernels():
        header += [f"{k} off {unit}", f"{k} on {unit}", "on/off"]
    t = Table(title, header)
    for name, fields in variants:
        row = [name]
        for k in results.kernels():
            off = results.values(k, mte="off", **fields)
            on = results.values(k, mte="on", **fields)
            if not off or not on:
                row += ["-", "-", "-"]
                continue
            count = per(fields)
            r = paired_ratio(on, off)
            row += [cell(off, lambda ns: ns / 1e3 / count, "{:.2f}"),
                    cell(on, lambda ns: ns / 1e3 / count, "{:.2f}"),
                    f"{r:.2f}x"]
            goals.check_overhead(goal_name, k, name, r, goal)
        t.add(row)
    # What the series adds is the MTE overhead; the absolute times also
    # carry the difference between the 5.10 base and mainline's.
    for flavour, ours, peer in PAIRS:
        for name, fields in variants:
            o = [results.median(ours, mte=m, **fields) for m in ("on", "off")]
            p = [results.median(peer, mte=m, **fields) for m in ("on", "off")]
            if None in o or None in p:
                continue
            goals.check_overhead_vs_mainline(
                f"{figure} {name} ({flavour})",
                paired_ratio(results.values(ours, mte="on", **fields), results.values(ours, mte="off", **fields)),
                paired_ratio(results.values(peer, mte="on", **fields), results.values(peer, mte="off", **fields)))
            goals.note(f"{figure} {name} ({flavour}): ours {p[1] / o[1]:.2f}x mainline's speed with MTE off, "
                       f"{p[0] / o[0]:.2f}x with MTE on (absolute: the 5.10 base against {results.peer})")
    return t


def save_restore_table(results, goals):
    ops = ["save-ram", "save-tags", "restore-ram", "restore-tags", "registers", "total"]
    header = ["op"]
    for _, ours, peer in PAIRS:
        header += [f"{ours} ms", f"{peer} ms", "mainline/ours"]
    t = Table("Save and restore of a 1 GiB MTE guest (ms, median [min-max])", header)
    for op in ops:
        f = dict(figure="save-restore", size_mib=1024, op=op)
        if not any(results.values(k, **f) for k in results.kernels()):
            continue
        row = [op]
        for flavour, ours, peer in PAIRS:
            row += [cell(results.values(ours, **f), lambda ns: ns / 1e6),
                    cell(results.values(peer, **f), lambda ns: ns / 1e6),
                    ratio_cell(results.median(peer, **f), results.median(ours, **f))]
            s = speedup(results, ours, peer, f)
            if s is not None and op.endswith("tags"):
                goals.check_not_worse(f"save-restore {op} ({flavour})", s)
        t.add(row)
    return t


class Goals:
    def __init__(self):
        self.lines = []
        self.notes = []
        self.missed = 0

    def note(self, text):
        self.notes.append(text)

    def check_overhead_vs_mainline(self, what, ours, peer):
        # An overhead below 1 is noise (MTE cannot make a path faster): it
        # counts as none, and 5% either way is a tie.
        self._add(ours <= max(peer, 1.0) * 1.05,
                  f"{what}: MTE overhead {ours:.2f}x, mainline's {peer:.2f}x (goal: not worse than mainline)")

    def _add(self, ok, text):
        self.lines.append(("met   " if ok else "MISSED") + " " + text)
        self.missed += not ok

    def check_copy(self, flavour, backing, size, op, s):
        if size >= 1024 and op.endswith("tagged"):
            self._add(s >= GOAL_COPY_VS_MAINLINE,
                      f"copy {op} {backing} {size} MiB ({flavour}): {s:.2f}x mainline (goal >= {GOAL_COPY_VS_MAINLINE}x)")
        else:
            self.check_not_worse(f"copy {op} {backing} {size} MiB ({flavour})", s)

    def check_limit(self, backing, size, op, r):
        self._add(r <= GOAL_COPY_VS_MEMCPY,
                  f"copy {op} {backing} {size} MiB (ours-vhe): memcpy limit is {r:.2f}x faster (goal <= {GOAL_COPY_VS_MEMCPY}x)")

    def check_overhead(self, name, kernel, variant, r, goal):
        if kernel.startswith("ours"):
            self._add(r <= goal, f"{name} {variant} ({kernel}): MTE on/off {r:.2f}x (goal <= {goal}x)")

    def check_not_worse(self, what, s):
        # Within the noise of the medians: 5% either way is a tie.
        if s < 0.95:
            self._add(False, f"{what}: {s:.2f}x mainline (worse than mainline)")

    def markdown(self):
        text = "### Goals\n\n"
        text += "\n".join(f"- {line}" for line in self.lines) if self.lines else "no goal applies to these figures"
        if self.notes:
            text += "\n\nNot goals, for the record:\n\n" + "\n".join(f"- {n}" for n in self.notes)
        return text + "\n"


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results.copy_sizes()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, op in zip(axes, ["from-tagged", "to-tagged"]):
        for backing, marker in zip(BACKINGS, "osD^"):
            for kernel, style in [("ours-vhe", "-"), ("mainline-vhe", "--")]:
                xs, ys = [], []
                for size in sizes:
                    med = results.median(kernel, figure="copy", backing=backing, size_mib=size, op=op)
                    if med:
                        xs.append(size)
                        ys.append(size / (med / 1e9))
                if xs:
                    ax.plot(xs, ys, style, marker=marker, label=f"{kernel} {backing}")
        xs = [s for s in sizes if results.median("ours-vhe", figure="limit", size_mib=s, op="memcpy")]
        if xs:
            ax.plot(xs, [s / (results.median("ours-vhe", figure="limit", size_mib=s, op="memcpy") / 1e9)
                         for s in xs], ":", color="grey", label="memcpy of the tag bytes")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("guest memory (MiB)")
        ax.set_title(f"KVM_ARM_MTE_COPY_TAGS {op.replace('-tagged', '').upper()}_GUEST, tagged pages")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("guest memory per second (MiB/s, QEMU TCG)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--peer", default="mainline")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("runs", nargs="+", metavar="KERNEL=LOG")
    args = ap.parse_args(argv)

    markers = report.load_markers()
    results = Results(args.peer)
    failed = []
    for run in args.runs:
        kernel, _, log = run.partition("=")
        if kernel not in KERNELS:
            ap.error(f"unknown kernel {kernel!r} in {run!r}")
        try:
            results.add(kernel, parse_log(Path(log).read_text(errors="replace"), markers))
        except (OSError, RunError) as err:
            failed.append(f"{kernel} ({log}): {err}")

    goals = Goals()
    rounds = {k: sum(r.startswith(k + "=") for r in args.runs) for k in results.kernels()}
    parts = [f"Mainline peer: {args.peer}. Rounds: "
             + ", ".join(f"{k} {n}" for k, n in rounds.items()) + ".\n"]
    if results.keys("copy"):
        parts.append(copy_table(results, goals).markdown())
        parts.append(kmem_table(results).markdown())
    if results.keys("first-touch"):
        parts.append(overhead_table(
            results, goals, "first-touch", "Guest first touch (µs per 4 KiB page), MTE off vs on (on/off: median of each boot's ratio)",
            "µs", lambda f: int(f["pages"]),
            [(b, dict(figure="first-touch", backing=b, pages=16384)) for b in ["4k", "thp"]
             if any(dict(k)["backing"] == b for k in results.keys("first-touch"))],
            "first-touch", GOAL_FIRST_TOUCH_OVERHEAD).markdown())
    if results.keys("exits"):
        variants = []
        for kind in ["hvc", "mmio"]:
            exits = {dict(k)["exits"] for k in results.keys("exits") if dict(k)["kind"] == kind}
            for n in sorted(exits):
                variants.append((kind, dict(figure="exits", kind=kind, exits=n)))
        parts.append(overhead_table(
            results, goals, "exits", "Exit round trip (µs per exit), MTE off vs on (on/off: median of each boot's ratio)", "µs",
            lambda f: int(f["exits"]), variants, "exit round trip", GOAL_EXIT_OVERHEAD).markdown())
    if results.keys("save-restore"):
        parts.append(save_restore_table(results, goals).markdown())
    parts.append(goals.markdown())
    text = "\n".join(parts)
    print(text)

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.md").write_text(text)
        dump = {k: [{"fields": dict(key), "values": v} for key, v in per.items()]
                for k, per in results.samples.items()}
        (args.out / "bench.json").write_text(json.dumps(dump, indent=1, sort_keys=True))
        if not args.no_plot and results.keys("copy"):
            plot(results, args.out / "bench.svg")
            print(f"plot: {args.out / 'bench.svg'}")

    if failed:
        for f in failed:
            print(f"FAILED RUN {f}", file=sys.stderr)
        return 1
    print(f"{len(args.runs)} runs, {goals.missed} goals missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
