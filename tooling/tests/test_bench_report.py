"""Unit tests of tooling/bench_report.py over saved benchmark consoles in logs/.

bench-ours-vhe.log is a whole boot of this series' release VHE kernel;
bench-mainline-vhe-killed.log is Debian's 6.12 cut off in the middle (its
hugetlb memory slots refused, as mainline before 6.13 does).

Run from the repository root:
    python3 -m unittest discover -s tooling/tests
"""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOGS = HERE / "logs"
BENCH_REPORT = HERE.parent / "bench_report.py"
OURS = LOGS / "bench-ours-vhe.log"
MAINLINE_KILLED = LOGS / "bench-mainline-vhe-killed.log"

sys.path.insert(0, str(BENCH_REPORT.parent))
import bench_report  # noqa: E402
import report  # noqa: E402

MARKERS = report.load_markers()


def finished(text):
    return text + "testbed: benchmarks finished rc=0\n"


class ParseLog(unittest.TestCase):
    def test_whole_run_gives_every_figure(self):
        samples = bench_report.parse_log(OURS.read_text(), MARKERS)
        figures = {fields["figure"] for fields, _ in samples}
        self.assertEqual(figures, {"copy", "limit", "first-touch", "exits", "save-restore"})
        copy_1g = [v for f, v in samples if f == {"figure": "copy", "backing": "hugetlb-1g",
                                                   "size_mib": "1024", "op": "to-tagged"}]
        self.assertEqual(len(copy_1g), 1)
        self.assertGreater(copy_1g[0], 0)

    def test_cut_off_run_is_refused(self):
        with self.assertRaisesRegex(bench_report.RunError, "never finished"):
            bench_report.parse_log(MAINLINE_KILLED.read_text(), MARKERS)

    def test_failed_benchmark_is_refused(self):
        text = OURS.read_text().replace("ok 2 copy.small_256m", "not ok 2 copy.small_256m")
        with self.assertRaisesRegex(bench_report.RunError, "copy.small_256m: not ok"):
            bench_report.parse_log(text, MARKERS)

    def test_splat_is_refused(self):
        text = OURS.read_text().replace("# RUN exits.hvc", "BUG: KASAN: use-after-free\n# RUN exits.hvc")
        with self.assertRaisesRegex(bench_report.RunError, "kernel splat"):
            bench_report.parse_log(text, MARKERS)

    def test_refused_memslot_is_a_result_for_mainline(self):
        samples = bench_report.parse_log(finished(MAINLINE_KILLED.read_text()), MARKERS)
        results = bench_report.Results()
        results.add("mainline-vhe", samples)
        self.assertEqual(results.refusal("mainline-vhe", "hugetlb-1g", 1024), "refused (EINVAL)")
        self.assertIsNone(results.refusal("mainline-vhe", "4k", 64))

    def test_refused_memslot_fails_this_series(self):
        samples = bench_report.parse_log(finished(MAINLINE_KILLED.read_text()), MARKERS)
        with self.assertRaisesRegex(bench_report.RunError, "this series refused a hugetlb-2m"):
            bench_report.Results().add("ours-vhe", samples)


class Report(unittest.TestCase):
    def run_report(self, *runs):
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([sys.executable, str(BENCH_REPORT), "--no-plot", "--out", out,
                                   *runs], capture_output=True, text=True)
            table = (Path(out) / "bench.md").read_text()
        return proc.returncode, proc.stdout + proc.stderr, table

    def test_same_log_as_both_kernels_gives_ratio_one(self):
        rc, _, table = self.run_report(f"ours-vhe={OURS}", f"mainline-vhe={OURS}")
        self.assertEqual(rc, 0)
        self.assertIn("| 4k | 64 | from-tagged |", table)
        row = next(line for line in table.splitlines() if line.startswith("| 4k | 64 | from-tagged |"))
        self.assertIn("1.00x", row)
        self.assertIn("### Goals", table)

    def test_failed_run_fails_the_report(self):
        rc, out, _ = self.run_report(f"ours-vhe={OURS}", f"mainline-vhe={MAINLINE_KILLED}")
        self.assertEqual(rc, 1)
        self.assertIn("FAILED RUN mainline-vhe", out)

    def test_unknown_kernel_is_a_usage_error(self):
        proc = subprocess.run([sys.executable, str(BENCH_REPORT), f"peer={OURS}"],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main()
