"""Unit tests of tooling/report.py over the hand-written console logs in logs/.

Run from the repository root:
    python3 -m unittest discover -s tooling/tests
"""

import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOGS = HERE / "logs"
REPORT = ROOT / "tooling" / "report.py"
EXPECTED = LOGS / "expected-results"
MARKERS = ROOT / "tools" / "testing" / "selftests" / "kvm" / "mte" / "lib" / "splat-markers.txt"
TEST_SOURCES = ROOT / "tools" / "testing" / "selftests" / "kvm" / "mte"

sys.path.insert(0, str(REPORT.parent))
import report  # noqa: E402


def run_report(*args, expected=EXPECTED):
    """(exit status, stdout + stderr) of report.py with the given arguments."""
    cmd = [sys.executable, str(REPORT)]
    if expected is not None:
        cmd += ["--expected", str(expected)]
    cmd += [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def log(name):
    """LABEL=LOG for a log in logs/, its label taken from the file name's end."""
    label = re.search(r"(n?vhe-mte-(?:on|off))\.log$", name).group(1)
    return f"{label}={LOGS / name}"


class CleanRuns(unittest.TestCase):
    def test_clean_logs_pass(self):
        rc, out = run_report(log("clean-vhe-mte-on.log"), log("clean-nvhe-mte-off.log"))
        self.assertEqual(rc, 0, out)
        self.assertIn("failed runs: none", out)
        self.assertEqual(out.rstrip().splitlines()[-1], "5 passed, 0 failed, 5 skipped")

    def test_table_shows_each_test(self):
        rc, out = run_report(log("clean-nvhe-mte-off.log"))
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"PASS  mte_cap_test: mte_cap\.check_extension_matches_host_mte")
        self.assertRegex(out, r"SKIP  mte_tags_test: mte_tags\.irg_honours_gcr_exclude +"
                         r"KVM_CAP_ARM_MTE not supported")

    def test_matrix_invocation(self):
        # What tooling/matrix.sh passes: --series FILE, then LABEL=LOG arguments.
        rc, out = run_report("--series", LOGS / "series-pass.txt",
                             log("clean-vhe-mte-on.log"), log("clean-nvhe-mte-off.log"))
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.rstrip().splitlines()[-1], "12 passed, 0 failed, 5 skipped")

    def test_demo_invocation(self):
        # tooling/demo.sh: one vhe-mte-on log with "demo:" and "testbed:" lines.
        text = (LOGS / "clean-vhe-mte-on.log").read_text()
        self.assertIn("demo: 1. VM A", text)
        rc, out = run_report(log("clean-vhe-mte-on.log"))
        self.assertEqual(rc, 0, out)

    def test_real_expectations_are_the_default(self):
        # Without --expected the checked-in file is used: the small logs then
        # lack most tests.
        rc, out = run_report(log("clean-vhe-mte-on.log"), expected=None)
        self.assertEqual(rc, 1, out)
        n = len(report.load_expected(report.EXPECTED_FILE).binaries["framework_test"])
        self.assertIn(f"framework_test: ({n} tests)", out)
        self.assertIn(f"the binary did not run: {n} expected tests missing", out)


class BadRuns(unittest.TestCase):
    """Every bad log fails the run, with the problem named."""

    def check_fails(self, name, *needles, args=()):
        rc, out = run_report(*args, log(name))
        self.assertEqual(rc, 1, out)
        label = re.search(r"(n?vhe-mte-(?:on|off))\.log$", name).group(1)
        self.assertIn(f"failed runs: {label}", out)
        for needle in needles:
            if isinstance(needle, re.Pattern):
                self.assertRegex(out, needle)
            else:
                self.assertIn(needle, out)
        self.assertRegex(out.rstrip().splitlines()[-1], r"^\d+ passed, [1-9]\d* failed, \d+ skipped$")
        return out

    def test_panic_midway(self):
        self.check_fails("panic-vhe-mte-on.log",
                         "kernel splat at line 69: Kernel panic - not syncing: Oops: Fatal exception",
                         "kernel splat at line 55: Internal error: Oops",
                         "no end marker 'testbed: kselftests finished rc=N'",
                         "mte_tags_test: its output started (line 44) but no top-level result followed "
                         "while running mte_tags.fresh_pages_read_tag_zero",
                         re.compile(r"FAIL  mte_tags_test: mte_tags\.fresh_pages_read_tag_zero +"
                                    r"missing from the log"))

    def test_crashed_binary(self):
        self.check_fails("sigsegv-vhe-mte-on.log",
                         "mte_tags_test: killed by SIGSEGV (exit=139) while running "
                         "mte_tags.fresh_pages_read_tag_zero",
                         "mte_tags_test: plan 1..2 but 1 results",
                         re.compile(r"mte_tags\.fresh_pages_read_tag_zero +missing from the log"))

    def test_missing_binary_plan(self):
        self.check_fails("no-plan-vhe-mte-on.log",
                         "mte_cap_test: printed no KTAP plan (1..N) but 3 results")

    def test_skip_under_the_wrong_mode(self):
        self.check_fails("skip-wrong-mode-vhe-mte-on.log",
                         re.compile(r"FAIL  mte_cap_test: mte_cap\.enable_twice_succeeds +skipped "
                                    r"\(KVM_CAP_ARM_MTE not supported: the host has no MTE "
                                    r"\(QEMU mte=off\)\), but expected pass"))

    def test_skip_with_unlisted_reason_under_mte_off(self):
        self.check_fails("skip-unlisted-reason-nvhe-mte-off.log",
                         "skip reason '/dev/kvm not available: ENOENT' does not match the expected "
                         r"/^KVM_CAP_ARM_MTE not supported: the host has no MTE \(HWCAP2_MTE clear\)$/")

    def test_splat_inside_test_output(self):
        out = self.check_fails(
            "splat-in-output-vhe-mte-on.log",
            "kernel splat at line 55: # WARNING: CPU: 1 PID: 233 at arch/arm64/kvm/mmu.c:862",
            "kernel splat at line 54: # ------------[ cut here ]------------",
            "kernel splat at line 56: # Call trace:")
        # The tests themselves all passed: the splat alone fails the run.
        self.assertNotRegex(out, r"FAIL  mte_")

    def test_leftover_results(self):
        self.check_fails("leftover-vhe-mte-on.log",
                         "mte_tags_test: its output started (line 44) but no top-level result followed",
                         "the log stops mid-binary",
                         "top-level plan 1..2 but 1 binaries reported",
                         "no end marker")

    def test_qemu_timeout(self):
        self.check_fails("qemu-timeout-vhe-mte-on.log",
                         "QEMU timed out: testbed: QEMU timed out after 900s",
                         "no end marker")

    def test_kselftest_timeout(self):
        self.check_fails("ksft-timeout-vhe-mte-on.log",
                         "mte_tags_test: timed out (top-level 'not ok # TIMEOUT 300 seconds')",
                         "mte_tags_test: plan 1..2 but 1 results")

    def test_missing_test(self):
        out = self.check_fails("missing-test-vhe-mte-on.log",
                               re.compile(r"FAIL  mte_tags_test: mte_tags\.fresh_pages_read_tag_zero +"
                                          r"missing from the log"))
        self.assertNotIn("plan 1..", out)  # plan and results agree: only the expectation catches it

    def test_extra_test(self):
        self.check_fails("extra-test-vhe-mte-on.log",
                         re.compile(r"FAIL  mte_tags_test: mte_tags\.fresh_thp_reads_tag_zero +"
                                    r"extra test, not in the expectation file \(pass\)"))

    def test_top_level_plan_mismatch(self):
        self.check_fails("top-plan-vhe-mte-on.log", "top-level plan 1..3 but 2 binaries reported")

    def test_exit_code_disagrees_with_results(self):
        self.check_fails("exit-mismatch-vhe-mte-on.log",
                         "mte_cap_test: exit code disagrees with its results: top-level "
                         "'not ok # exit=1' (exit 1) but the results (2 pass, 1 skip) give exit 0",
                         "mte_tags_test: exit code disagrees with its results: top-level 'ok' "
                         "(exit 0) but the results (1 pass, 1 fail) give exit 1",
                         re.compile(r"FAIL  mte_tags_test: mte_tags\.fresh_pages_read_tag_zero +"
                                    r"failed \(expected pass\)"))

    def test_label_disagrees_with_log(self):
        rc, out = run_report(f"nvhe-mte-on={LOGS / 'clean-vhe-mte-on.log'}")
        self.assertEqual(rc, 1, out)
        self.assertIn("the label says flavour=nvhe mte=on but the log says: "
                      "testbed: flavour=vhe mte=on", out)

    def test_label_without_mode(self):
        rc, out = run_report(f"vhe={LOGS / 'clean-vhe-mte-on.log'}")
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot tell flavour and mode from the label 'vhe'", out)

    def test_unreadable_log(self):
        rc, out = run_report(f"vhe-mte-on={LOGS / 'no-such.log'}")
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot read the log", out)


class Series(unittest.TestCase):
    def test_missing_step(self):
        rc, out = run_report("--series", LOGS / "series-missing-step.txt", log("clean-vhe-mte-on.log"))
        self.assertEqual(rc, 1, out)
        self.assertIn("series step warnings did not report", out)
        self.assertIn("failed runs: series", out)
        self.assertEqual(out.rstrip().splitlines()[-1], "10 passed, 1 failed, 1 skipped")

    def test_failed_step(self):
        rc, out = run_report("--series", LOGS / "series-fail.txt", log("clean-vhe-mte-on.log"))
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"FAIL  checkpatch +0011-KVM-arm64-Expose-KVM_CAP_ARM_MTE\.patch: "
                         r"WARNING:LONG_LINE")
        self.assertIn("failed runs: series", out)

    def test_reader(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "series-check.txt"
            path.write_text("".join(f"PASS {s}\n" for s in report.SERIES_STEPS)
                            + "FAIL build 0004-x.patch does not build\nwhat is this\n")
            rows = report.judge_series(path)
            self.assertIn(("FAIL", "build", "0004-x.patch does not build"), rows)
            self.assertIn(("FAIL", "build", "reported both PASS and FAIL"), rows)
            self.assertIn(("FAIL", "series", "line 9 is neither PASS nor FAIL: what is this"), rows)
            path.write_text("")
            rows = report.judge_series(path)
            self.assertEqual(len(rows), 7)
            self.assertTrue(all(v == "FAIL" and "did not report" in n for v, _s, n in rows))
            self.assertEqual(report.judge_series(Path(tmp) / "none")[0][0], "FAIL")

    def test_required_subset(self):
        # Another base: the matrix requires only the am step there.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "series-check.txt"
            path.write_text("PASS am\n")
            rc, out = run_report("--series", f"{path}:am", log("clean-vhe-mte-on.log"))
            self.assertEqual(rc, 0, out)
            rc, out = run_report("--series", str(path), log("clean-vhe-mte-on.log"))
            self.assertEqual(rc, 1, out)
            self.assertIn("series step roundtrip did not report", out)
            path.write_text("")
            rc, out = run_report("--series", f"{path}:am", log("clean-vhe-mte-on.log"))
            self.assertEqual(rc, 1, out)
            self.assertIn("series step am did not report", out)
            rc, out = run_report("--series", f"{path}:bogus", log("clean-vhe-mte-on.log"))
            self.assertEqual(rc, 2, out)


class Partial(unittest.TestCase):
    def test_quick_log_fails_without_partial(self):
        rc, out = run_report(log("quick-vhe-mte-on.log"))
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"mte_cap\.aarch32_el1_vcpu_accepted_without_mte +missing from the log")
        self.assertNotIn("PARTIAL RUN", out)

    def test_quick_log_passes_with_partial(self):
        rc, out = run_report("--partial", log("quick-vhe-mte-on.log"))
        self.assertEqual(rc, 0, out)
        self.assertIn("PARTIAL RUN: 3 expected tests were not run", out)
        self.assertEqual(out.rstrip().splitlines()[-1], "2 passed, 0 failed, 0 skipped")

    def test_partial_still_fails_on_everything_else(self):
        for name, needle in [("splat-in-output-vhe-mte-on.log", "kernel splat at line 55"),
                             ("sigsegv-vhe-mte-on.log", "killed by SIGSEGV"),
                             ("skip-wrong-mode-vhe-mte-on.log", "but expected pass"),
                             ("extra-test-vhe-mte-on.log", "extra test"),
                             ("top-plan-vhe-mte-on.log", "top-level plan 1..3 but 2")]:
            with self.subTest(name):
                rc, out = run_report("--partial", log(name))
                self.assertEqual(rc, 1, out)
                self.assertIn(needle, out)


class WriteExpected(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)

    def test_round_trip_from_clean_logs(self):
        target = self.tmp / "expected"
        runs = [log("clean-vhe-mte-on.log"), log("clean-nvhe-mte-off.log")]
        rc, out = run_report("--write-expected", target, *runs, expected=None)
        self.assertEqual(rc, 0, out)
        self.assertIn("wrote", out)
        exp = report.load_expected(target)
        self.assertEqual(exp.count(), 5)
        entry = exp.entry("mte_cap_test", "mte_cap.enable_twice_succeeds")
        self.assertEqual(entry.lookup("nvhe", "on").text, "pass")
        self.assertEqual(entry.lookup("vhe", "off").text,
                         r"skip:^KVM_CAP_ARM_MTE not supported: the host has no MTE \(QEMU mte=off\)$")
        rc, out = run_report(*runs, expected=target)
        self.assertEqual(rc, 0, out)
        # Writing again from the same logs changes nothing.
        before = target.read_text()
        rc, out = run_report("--write-expected", target, *runs, expected=None)
        self.assertEqual(rc, 0, out)
        self.assertEqual(target.read_text(), before)

    def test_keeps_what_logs_do_not_cover(self):
        target = self.tmp / "expected"
        shutil.copy(EXPECTED, target)
        before = target.read_text()
        rc, out = run_report("--write-expected", target, log("clean-vhe-mte-on.log"), expected=None)
        self.assertEqual(rc, 0, out)
        # The hand-written regexes match the logs, so they and the header stay.
        self.assertEqual(target.read_text(), before)

    def test_flavour_difference_is_written_per_flavour(self):
        target = self.tmp / "expected"
        shutil.copy(EXPECTED, target)
        nvhe = self.tmp / "nvhe-mte-on.log"
        nvhe.write_text((LOGS / "clean-vhe-mte-on.log").read_text()
                        .replace("testbed: flavour=vhe", "testbed: flavour=nvhe")
                        .replace("# ok 2 mte_cap.enable_twice_succeeds\n",
                                 "# ok 2 mte_cap.enable_twice_succeeds # SKIP only for this test\n"))
        rc, out = run_report("--write-expected", target, f"nvhe-mte-on={nvhe}", expected=None)
        self.assertEqual(rc, 0, out)
        self.assertRegex(target.read_text(),
                         r"mte_cap_test mte_cap\.enable_twice_succeeds  vhe:on=pass  "
                         r"nvhe:on=skip:\^only for this test\$  off=skip:the host has no MTE\n")
        rc, out = run_report(log("clean-vhe-mte-on.log"), f"nvhe-mte-on={nvhe}", expected=target)
        self.assertEqual(rc, 0, out)

    def test_refuses_failing_logs(self):
        target = self.tmp / "expected"
        for name in ("panic-vhe-mte-on.log", "exit-mismatch-vhe-mte-on.log",
                     "splat-in-output-vhe-mte-on.log"):
            with self.subTest(name):
                rc, out = run_report("--write-expected", target, log(name), expected=None)
                self.assertEqual(rc, 1, out)
                self.assertIn("does not pass, so it cannot set expectations", out)
                self.assertIn("expectations not written", out)
                self.assertFalse(target.exists())

    def test_new_test_needs_both_modes(self):
        target = self.tmp / "expected"
        shutil.copy(EXPECTED, target)
        before = target.read_text()
        rc, out = run_report("--write-expected", target, log("extra-test-vhe-mte-on.log"), expected=None)
        self.assertEqual(rc, 1, out)
        self.assertIn("mte_tags.fresh_thp_reads_tag_zero: no log with mte=off shows it", out)
        self.assertEqual(target.read_text(), before)


class ExpectationFile(unittest.TestCase):
    def parse(self, body):
        return report.parse_expected(body, "test")

    def test_format(self):
        exp = self.parse("# header\n\n"
                         "b_test s.one  on=pass  off=skip:no MTE (here)  # a comment\n"
                         "b_test s.two  on=pass off=pass nvhe:off=skip:^x$\n")
        one = exp.entry("b_test", "s.one")
        self.assertEqual(one.comment, "a comment")
        self.assertEqual(one.lookup("vhe", "off").text, "skip:no MTE (here)")
        self.assertTrue(one.lookup("nvhe", "off").accepts("skip", "KVM: no MTE here"))
        self.assertFalse(one.lookup("nvhe", "off").accepts("pass", ""))
        two = exp.entry("b_test", "s.two")
        self.assertEqual(two.lookup("vhe", "off").text, "pass")
        self.assertEqual(two.lookup("nvhe", "off").text, "skip:^x$")
        self.assertEqual(exp.header, "# header\n")

    def test_errors(self):
        for body, message in [
            ("b t  on=pass\n", "no verdict for vhe, mte=off"),
            ("b t  on=pass  vhe:off=pass\n", "no verdict for nvhe, mte=off"),
            ("b t  on=pass  off=maybe\n", "neither 'pass' nor 'skip:REGEX'"),
            ("b t  on=pass  off=skip:\n", "neither 'pass' nor 'skip:REGEX'"),
            ("b t  on=pass  off=skip:(\n", "off:"),
            ("b t  on=pass  on=pass  off=pass\n", "on given twice"),
            ("b t  on=pass  off=pass\nb t  on=pass  off=pass\n", "listed twice"),
            ("b t\n", "want 'BINARY SUITE.NAME"),
            ("b t  sometimes=pass\n", "cannot read"),
        ]:
            with self.subTest(body):
                with self.assertRaises(report.ConfigError) as ctx:
                    self.parse(body)
                self.assertIn(message, str(ctx.exception))

    def test_bad_expectation_file_is_an_error(self):
        bad = Path(tempfile.mkdtemp()) / "expected"
        self.addCleanup(shutil.rmtree, bad.parent)
        bad.write_text("b t  on=pass\n")
        rc, out = run_report(log("clean-vhe-mte-on.log"), expected=bad)
        self.assertEqual(rc, 2, out)
        self.assertIn("no verdict for vhe, mte=off", out)

    def test_checked_in_file_lists_every_test_of_the_sources(self):
        exp = report.load_expected(report.EXPECTED_FILE)
        listed = {(b, t) for b, tests in exp.binaries.items() for t in tests}
        in_sources = set()
        for source in TEST_SOURCES.glob("*_test.cpp"):
            text = source.read_text()
            # TEST(suite, name) and TEST_TIMEOUT(suite, name, s); harness
            # self-tests (TEST_SELFTEST) exist only on request.
            for suite, name in re.findall(r"^TEST(?:_TIMEOUT)?\((\w+),\s*(\w+)[,)]", text, re.M):
                in_sources.add((source.stem, f"{suite}.{name}"))
            # TEST_VARIANTS(suite, ROWS, body): one test per {"name", ...} row of ROWS.
            for suite, rows in re.findall(r"^TEST_VARIANTS\((\w+),\s*(\w+),", text, re.M):
                table = re.search(rf"{rows}\[\] = \{{(.*?)\n\}};", text, re.S)
                self.assertIsNotNone(table, f"no table {rows} in {source.name}")
                for name in re.findall(r'^\s*\{"(\w+)",', table.group(1), re.M):
                    in_sources.add((source.stem, f"{suite}.{name}"))
        self.assertTrue(in_sources)
        self.assertEqual(sorted(in_sources - listed), [], "tests missing from expected-results")
        self.assertEqual(sorted(listed - in_sources), [], "expected-results lists unknown tests")

    def test_checked_in_file_reads_back_unchanged(self):
        text = report.EXPECTED_FILE.read_text()
        self.assertEqual(report.format_expected(report.parse_expected(text)), text)


class SplatMarkers(unittest.TestCase):
    SPLATS = [
        "WARNING: CPU: 0 PID: 1 at arch/arm64/kvm/mmu.c:862 user_mem_abort+0x5f0/0x6c0",
        "# WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:4947 __alloc_pages_nodemask+0x2b4/0x330",
        "[   12.345678] BUG: sleeping function called from invalid context at mm/slab.h:496",
        "Internal error: Oops: 96000047 [#1] PREEMPT SMP",
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
        "Kernel panic - not syncing: Oops: Fatal exception",
        "------------[ cut here ]------------",
        "Call trace:",
        "# # Call trace:",
        "WARNING: possible recursive locking detected",
        "WARNING: possible circular locking dependency detected",
        "WARNING: inconsistent lock state",
        "WARNING: suspicious RCU usage",
        "possible circular locking dependency detected",
        "inconsistent lock state",
        "suspicious RCU usage",
        "INFO: lockdep is turned off.",
        "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
        "rcu: INFO: rcu_sched self-detected stall on CPU",
        "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [mte_tags_test:230]",
        "INFO: task kworker/0:1:12 blocked for more than 120 seconds.",
        "BUG: KASAN: use-after-free in kvm_mte_copy_tags+0x1c8/0x2a0",
        "BUG: KFENCE: out-of-bounds read in mte_sync_tags+0x30/0x90",
        "UBSAN: shift-out-of-bounds in arch/arm64/kvm/sys_regs.c:1208:20",
        "unreferenced object 0xffff000003f2c000 (size 4096):",
        "kmemleak: Cannot allocate a kmemleak_object structure",
    ]
    BENIGN = [
        "Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
        "... MAX_LOCKDEP_SUBCLASSES:  8",
        "\tRCU lockdep checking is enabled.",
        "kvm [1]: VHE mode initialized successfully",
        "# Warning: file mte_cap_test is missing!",
        "# ok 3 mte_cap.enable_after_vcpu_fails_with_einval",
        "testbed: host MTE enabled",
        "demo: 2. The guest tags its memory and takes a tag check fault: ESR 0x96000011.",
        "random: crng init done",
    ]

    def setUp(self):
        self.markers = report.load_markers(MARKERS)

    def matches(self, line):
        return any(regex.search(line) for _text, regex in self.markers)

    def test_splats_match(self):
        for line in self.SPLATS:
            with self.subTest(line):
                self.assertTrue(self.matches(line))

    def test_benign_lines_do_not(self):
        for line in self.BENIGN:
            with self.subTest(line):
                self.assertFalse(self.matches(line))

    def test_grep_reads_the_file_alike(self):
        # quick-test.sh greps with the same file: grep -E -f on the pattern lines.
        grep = shutil.which("grep")
        if grep is None:
            self.skipTest("no grep")
        patterns = "".join(text + "\n" for text, _regex in self.markers)
        with tempfile.TemporaryDirectory() as tmp:
            pat = Path(tmp) / "patterns"
            pat.write_text(patterns)
            for line in self.SPLATS + self.BENIGN:
                with self.subTest(line):
                    proc = subprocess.run([grep, "-a", "-q", "-E", "-f", str(pat)], input=line + "\n",
                                          text=True, timeout=10)
                    self.assertEqual(proc.returncode == 0, self.matches(line))

    def test_file_rules(self):
        for line in MARKERS.read_text().splitlines():
            if not line or line.startswith("#"):
                continue
            with self.subTest(line):
                self.assertEqual(line, line.strip())
                self.assertFalse(line.startswith("^"), "markers are searched anywhere")
                self.assertNotRegex(line, r"\\[bBdDsSwW]|\[\[:", "outside the common ERE subset")

    def test_bad_marker_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "markers"
            path.write_text("# nothing\n")
            with self.assertRaises(report.ConfigError):
                report.load_markers(path)
            path.write_text("ok\n(\n")
            with self.assertRaises(report.ConfigError):
                report.load_markers(path)
            path.write_text("trailing \n")
            with self.assertRaises(report.ConfigError):
                report.load_markers(path)
            # Python reads \] as ], std::regex (extended) throws.
            path.write_text("\\[ cut here \\]\n")
            with self.assertRaises(report.ConfigError) as ctx:
                report.load_markers(path)
            self.assertIn("'\\\\]'", str(ctx.exception))
            path.write_text("ends in \\\n")
            with self.assertRaises(report.ConfigError):
                report.load_markers(path)
            path.write_text("\\[ \\\\ \\. \\( \\) \\* \\+ \\? \\{ \\| \\^ \\$\n")
            self.assertEqual(len(report.load_markers(path)), 1)


class Parser(unittest.TestCase):
    """Details of reading KTAP that the logs above do not show."""

    def judge(self, body, label="vhe-mte-on", partial=False):
        exp = report.parse_expected("t_test s.a  on=pass  off=pass\nt_test s.b  on=pass  off=pass\n")
        text = ("testbed: running kselftests\nTAP version 13\n1..1\n# selftests: kvm/mte: t_test\n"
                + body + "testbed: kselftests finished rc=0\n")
        return report.judge_run(label, text, exp, report.load_markers(MARKERS), partial)

    def test_forked_child_reasons_and_run_lines(self):
        r = self.judge("# TAP version 13\n# 1..2\n#  RUN           s.a ...\n# # RUN s.a\n"
                       "# not ok 1 s.a # timed out\n# RUN s.b\n# not ok 2 s.b # signal SIGSEGV\n"
                       "not ok 1 selftests: kvm/mte: t_test # exit=1\n")
        self.assertEqual(r.problems, [])
        self.assertEqual([row[3] for row in r.rows],
                         ["failed: timed out (expected pass)", "failed: signal SIGSEGV (expected pass)"])

    def test_clean(self):
        r = self.judge("# TAP version 13\n# 1..2\n# ok 1 s.a\n# ok 2 s.b\n"
                       "ok 1 selftests: kvm/mte: t_test\n")
        self.assertFalse(r.failed, r.problems)

    def test_numbering_and_duplicates(self):
        r = self.judge("# TAP version 13\n# 1..2\n# ok 1 s.a\n# ok 1 s.a\n"
                       "ok 1 selftests: kvm/mte: t_test\n")
        self.assertIn("t_test: result s.a is numbered 1 where 2 was due", r.problems)
        self.assertIn("t_test: s.a reported 2 times", r.problems)

    def test_all_skipped_must_exit_skip(self):
        r = self.judge("# TAP version 13\n# 1..2\n# ok 1 s.a # SKIP x\n# ok 2 s.b # SKIP x\n"
                       "ok 1 selftests: kvm/mte: t_test\n")
        self.assertTrue(any("give exit 4" in p for p in r.problems), r.problems)

    def test_skip_without_reason(self):
        exp = report.parse_expected("t_test s.a  on=skip:.*  off=pass\n")
        text = ("testbed: running kselftests\nTAP version 13\n1..1\n# selftests: kvm/mte: t_test\n"
                "# 1..1\n# ok 1 s.a # SKIP\nok 1 selftests: kvm/mte: t_test # SKIP\n"
                "testbed: kselftests finished rc=0\n")
        r = report.judge_run("vhe-mte-on", text, exp, report.load_markers(MARKERS))
        self.assertFalse(r.failed)  # ".*" accepts an empty reason; "pass" would not
        r = report.judge_run("vhe-mte-off", text,
                             report.parse_expected("t_test s.a  on=pass  off=skip:x\n"),
                             report.load_markers(MARKERS))
        self.assertIn("skipped without a reason (expected skip:x)", r.rows[0][3])

    def test_binary_not_listed(self):
        exp = report.parse_expected("t_test s.a  on=pass  off=pass\n")
        text = ("testbed: running kselftests\nTAP version 13\n1..1\n# selftests: kvm/mte: u_test\n"
                "# 1..1\n# ok 1 u.a\nok 1 selftests: kvm/mte: u_test\n"
                "testbed: kselftests finished rc=0\n")
        r = report.judge_run("vhe-mte-on", text, exp, report.load_markers(MARKERS))
        self.assertIn("u_test: binary not listed in the expectation file", r.problems)

    def test_garbled_result_line(self):
        r = self.judge("# TAP version 13\n# 1..2\n# ok 1 s.aUnable to continue\n# ok 2 s.b\n"
                       "ok 1 selftests: kvm/mte: t_test\n")
        self.assertTrue(any("garbled result at line" in p for p in r.problems), r.problems)

    def test_missing_binary_file(self):
        r = self.judge("# Warning: file t_test is missing!\nnot ok 1 selftests: kvm/mte: t_test\n")
        self.assertIn("t_test: printed no KTAP plan (1..N)", r.problems)
        self.assertIn("t_test: top-level 'not ok' gives no exit code (missing or not executable?)",
                      r.problems)

    def test_carriage_returns(self):
        r = self.judge("# TAP version 13\r\n# 1..2\r\n# ok 1 s.a\r\n# ok 2 s.b\r\n"
                       "ok 1 selftests: kvm/mte: t_test\r\n")
        self.assertFalse(r.failed, r.problems)


if __name__ == "__main__":
    unittest.main()
