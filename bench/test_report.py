#!/usr/bin/env python3
"""Tests of bench/compare.py and bench/report.py on hand-made results files.

    python3 bench/test_report.py

Plain unittest, standard library only; the PNG test is skipped where no python3 has
matplotlib. Run by ctest as bench/report.
"""

import contextlib
import copy
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # noqa: E402  (bench/charts.py, beside this file)
import compare  # noqa: E402
import pair  # noqa: E402  (bench/pair.py)
import report  # noqa: E402
import run  # noqa: E402  (bench/run.py)
import sweep  # noqa: E402


def row(name, unit, beamline, beam=None, go=None, spread=None, **extra):
    w = {"name": name, "unit": unit, "beamline": beamline, "beam": beam, "go": go}
    if spread:
        w["spread"] = {col: {"min": lo, "max": hi, "runs": 3} for col, (lo, hi) in spread.items()}
    w.update(extra)
    return w


FIXTURE = {
    "workloads": [
        row("spawn_exit", "ns", 300.0, 2800.0, 2000.0, peer_ahead=[]),
        row("pingpong_same_sched", "ns", 250.0, 1100.0, 700.0),
        row("million_procs", "ms", 900.0, 600.0, 400.0, peer_ahead=["beam", "go"]),
        row("idle_process_bytes", "bytes", 900.0, 2700.0, 2500.0),
        row("many_to_one_call", "per_s", 2.5e6, 1.0e6, 3.0e6, peer_ahead=["go"]),
        row("http_plaintext_rps", "per_s", 90000.0, nginx=120000.0, vs_nginx=0.75),
        row("agent_update", "ns", None, 900.0),
    ],
    "config": {"schedulers": 2, "bind": None, "wake": "eventfd", "io": {"wake": "eventfd",
                                                                         "sqpoll": "off"}},
    "machine": {"cpus": 2, "kernel": "6.1.0", "date": "2026-01-01T00:00:00+00:00"},
    "http": {"wrk": "-t2 -c64 -d5s", "runs": 5, "nginx_version": "1.22.1", "nginx_workers": 2},
    "problems": ["Go: FAILED: something"],
}


def results(*workloads, **top):
    out = {"workloads": list(workloads), "config": {"schedulers": 2},
           "machine": {"cpus": 2, "kernel": "6.1.0", "date": "2026-01-01T00:00:00+00:00"}}
    out.update(top)
    return out


class Files:
    """Results files in a temporary directory."""

    def __init__(self, test):
        self.dir = tempfile.TemporaryDirectory()
        test.addCleanup(self.dir.cleanup)

    def write(self, name, data):
        path = Path(self.dir.name) / name
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(path)


def run_compare(*argv):
    """compare.main's (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = compare.main(list(argv))
        except SystemExit as e:  # argparse
            status = e.code
    return status, out.getvalue(), err.getvalue()


class Verdicts(unittest.TestCase):
    def v(self, old, new, unit="ns", osp=None, nsp=None, threshold=5.0):
        return compare.verdict(old, new, unit, osp, nsp, threshold)[1]

    def test_threshold_without_spreads(self):
        self.assertEqual(self.v(100, 90), "faster")
        self.assertEqual(self.v(100, 110), "slower")
        self.assertEqual(self.v(100, 104), "within noise")
        self.assertEqual(self.v(100, 104, threshold=2), "slower")

    def test_direction_of_the_unit(self):
        self.assertEqual(self.v(100, 120, "per_s"), "faster")
        self.assertEqual(self.v(100, 80, "per_s"), "slower")
        self.assertEqual(self.v(100, 80, "bytes"), "smaller")
        self.assertEqual(self.v(100, 120, "bytes"), "larger")

    def test_spreads_overlapping_are_noise(self):
        # 20% slower, but the runs' ranges overlap.
        self.assertEqual(self.v(100, 120, osp=(90, 125), nsp=(110, 130)), "within noise")

    def test_spreads_apart_count_below_the_threshold(self):
        self.assertEqual(self.v(100, 103, osp=(99, 101), nsp=(102, 104)), "slower")
        self.assertEqual(self.v(100, 97, osp=(99, 101), nsp=(96, 98)), "faster")

    def test_one_spread_holding_the_other_figure(self):
        self.assertEqual(self.v(100, 120, osp=(80, 125)), "within noise")
        self.assertEqual(self.v(100, 120, osp=(95, 105)), "slower")

    def test_change_of_a_zero_figure(self):
        self.assertEqual(compare.verdict(0, 5, "ns", None, None, 5.0), (None, "within noise"))


class CompareFiles(unittest.TestCase):
    def setUp(self):
        self.files = Files(self)

    def test_table_and_exit_status(self):
        old = self.files.write("old.json", results(
            row("spawn_exit", "ns", 300.0, 2800.0, spread={"beamline": (290, 310)}),
            row("ring_1000x1000", "ns", 100.0),
            row("only_old", "ns", 1.0)))
        new = self.files.write("new.json", results(
            row("spawn_exit", "ns", 330.0, 2000.0, spread={"beamline": (320, 340)}),
            row("ring_1000x1000", "ns", 102.0),
            row("only_new", "ns", 1.0)))
        status, out, err = run_compare(old, new)
        self.assertEqual(status, 0, err)
        self.assertRegex(out, r"spawn_exit +\| ns +\| Beamline +\| 300\.0 \[290\.0-310\.0\] "
                              r"\| 330\.0 \[320\.0-340\.0\] \| +\+10\.0% \| slower")
        self.assertRegex(out, r"ring_1000x1000 .*\| +\+2\.0% \| within noise")
        self.assertNotIn("BEAM", out.split("\n\n")[1])  # no peers without --peers
        self.assertIn("note: only in OLD: only_old", out)
        self.assertIn("note: only in NEW: only_new", out)
        status, out, err = run_compare(old, new, "--fail-on-slower")
        self.assertEqual(status, 1)
        self.assertIn("spawn_exit", err)
        status, out, _ = run_compare(old, new, "--peers")
        self.assertRegex(out, r"spawn_exit +\| ns +\| BEAM +\| +2,800 \| +2,000 \| +-28\.6% "
                              r"\| faster")

    def test_nothing_slower_passes(self):
        old = self.files.write("old.json", results(row("spawn_exit", "ns", 300.0)))
        new = self.files.write("new.json", results(row("spawn_exit", "ns", 200.0)))
        status, out, _ = run_compare(old, new, "--fail-on-slower")
        self.assertEqual(status, 0)
        self.assertIn("1 faster", out)

    def test_units_differing_refuse_the_row(self):
        old = self.files.write("old.json", results(row("timers_100k", "ms", 2.0)))
        new = self.files.write("new.json", results(row("timers_100k", "us", 2000.0)))
        status, out, _ = run_compare(old, new, "--fail-on-slower")
        self.assertEqual(status, 0)
        self.assertIn("note: timers_100k: unit 'ms' in OLD, 'us' in NEW; not compared", out)
        self.assertIn("No workload has a figure in both files.", out)

    def test_missing_figure(self):
        old = self.files.write("old.json", results(row("spawn_exit", "ns", None)))
        new = self.files.write("new.json", results(row("spawn_exit", "ns", 5.0)))
        status, out, _ = run_compare(old, new)
        self.assertEqual(status, 0)
        self.assertIn("note: spawn_exit: no Beamline figure in OLD", out)

    def test_settings_differing_are_noted(self):
        old = self.files.write("old.json", results(row("spawn_exit", "ns", 1.0)))
        new = results(row("spawn_exit", "ns", 1.0))
        new["config"]["schedulers"] = 1
        status, out, _ = run_compare(old, self.files.write("new.json", new))
        self.assertIn("note: the settings differ: schedulers 2 -> 1", out)

    def test_malformed_files(self):
        good = self.files.write("good.json", results(row("spawn_exit", "ns", 1.0)))
        bad = {
            "not_json.json": "{\"workloads\": [",
            "no_workloads.json": {"benchmarks": []},
            "a_list.json": [1, 2],
            "no_unit.json": {"workloads": [{"name": "spawn_exit", "beamline": 1.0}]},
            "text_figure.json": results(row("spawn_exit", "ns", "fast")),
            "bad_spread.json": results(dict(row("spawn_exit", "ns", 1.0), spread="wide")),
            "text_min.json": results(dict(row("spawn_exit", "ns", 1.0),
                                          spread={"beamline": {"min": "0", "max": 2}})),
        }
        for name, data in bad.items():
            path = self.files.write(name, data)
            for argv in ((good, path), (path, good)):
                status, out, err = run_compare(*argv)
                self.assertEqual(status, 2, name)
                self.assertIn(f"compare.py: {path}", err)
                self.assertEqual(out, "")
        status, _, err = run_compare(good, str(Path(good).parent / "missing.json"))
        self.assertEqual(status, 2)
        self.assertIn("No such file", err)


class Report(unittest.TestCase):
    def setUp(self):
        self.files = Files(self)

    def test_markdown(self):
        text = report.markdown(FIXTURE, "latest.png")
        self.assertTrue(text.startswith("# Beamline benchmarks\n"))
        self.assertIn("- Run: 2026-01-01T00:00:00+00:00, on 2 CPUs, Linux 6.1.0\n", text)
        self.assertIn("- Config: schedulers=2, bind=default, wake=eventfd (BEAM +S 2", text)
        self.assertIn("- I/O rows taken with: wake=eventfd, sqpoll=off\n", text)
        self.assertIn("![peer / Beamline per workload](latest.png)", text)
        self.assertIn("| `spawn_exit` | ns | 300.0 | 2,800 | 2,000 | 9.33x | 6.67x | - |", text)
        self.assertIn("| `million_procs` | ms | 900.0 | 600.0 | 400.0 | 0.67x | 0.44x | BEAM, Go |",
                      text)
        self.assertIn("| `many_to_one_call` | per_s | 2,500,000 | 1,000,000 | 3,000,000 | 2.50x | "
                      "0.83x | Go |", text)
        self.assertIn("| `http_plaintext_rps` | per_s | 90,000 | 120,000 | 0.75x |", text)
        self.assertIn("## Problems\n\n- Go: FAILED: something\n", text)

    def test_markdown_https_rows(self):
        # The https rows join the HTTP table, nginx their peer; the certificate is named.
        data = results(row("http_plaintext_rps", "per_s", 90000.0, nginx=120000.0, vs_nginx=0.75),
                       row("https_plaintext_rps", "per_s", 40000.0, nginx=50000.0, vs_nginx=0.8),
                       row("https_plaintext_p99", "ms", 4.0, nginx=5.0, vs_nginx=1.25),
                       http={"wrk": "-t2 -c64 -d5s", "runs": 3, "nginx_version": "1.22.1",
                             "nginx_workers": 2, "certificate": "self-signed, EC P-256"})
        text = report.markdown(data, None, "no ratios")
        self.assertIn("https: both servers with one certificate, self-signed, EC P-256.\n", text)
        self.assertIn("| `https_plaintext_rps` | per_s | 40,000 | 50,000 | 0.80x |", text)
        self.assertIn("| `https_plaintext_p99` | ms | 4.00 | 5.00 | 1.25x |", text)
        self.assertNotIn("certificate", report.markdown(FIXTURE, None, "no ratios"))
        spec = report.ratio_spec(data, "x.png")
        self.assertEqual(spec["rows"][:1], ["https_plaintext_p99 (ms)"])
        self.assertEqual(list(spec["series"]), ["nginx"])

    def test_markdown_with_spreads_and_no_chart(self):
        data = results(row("spawn_exit", "ns", 300.0, 2800.0,
                           spread={"beamline": (290.0, 310.0), "beam": (2500.0, 3000.0)}),
                       runs=3)
        text = report.markdown(data, None, "matplotlib is missing")
        self.assertIn("median of 3 runs", text)
        self.assertIn("| `spawn_exit` | ns | 300.0 [290.0-310.0] | 2,800 [2,500-3,000] | - |", text)
        self.assertIn("No chart: matplotlib is missing.", text)
        self.assertNotIn("![", text)
        self.assertIn("## Problems\n\nNone.\n", text)

    def test_floor_before_each_run(self):
        # The floor of each run is listed after the line's usual figures.
        floor = {"cpus": [0, 1], "ns_one_way_min": 55.0, "ns_one_way_median": 60.0,
                 "runs_ns": [55.0, 60.0], "min_before": 55.0, "min_after": 58.0,
                 "min_per_run": [60.0, 59.4, 244.4, None]}
        line = sweep.c2c_line(floor, {"beamline": 10.7, "beam": None, "go": 1444.2})
        self.assertIn("pingpong_cross_sched = 10.7x the core-to-core floor", line)
        self.assertIn("Floor before each run (ns): 60, 59, 244, -;", line)
        self.assertNotIn("mailbox round trip before each run", line)
        floor["mailbox_min_per_run"] = [180.2, 104.4, None, 374.0]
        line = sweep.c2c_line(floor, {"beamline": 10.7, "beam": None, "go": None})
        self.assertIn("Floor before each run (ns): 60, 59, 244, -; mailbox round trip before "
                      "each run (ns): 180, 104, -, 374; a run's", line)
        del floor["min_per_run"]
        line = sweep.c2c_line(floor, {"beamline": 10.7, "beam": None, "go": None})
        self.assertNotIn("before each run", line)

    def test_mailbox_floor(self):
        # c2c_floor's mailbox round trip: merged over both measurements, told as a
        # multiple of the one-way floor; an older output without it says nothing of it.
        before = {"cpus": [0, 1], "ns_one_way_min": 30.0, "ns_one_way_median": 31.0,
                  "runs_ns": [30.0, 31.0, 32.0], "mailbox_runs_ns": [190.0, 185.0, 200.0],
                  "mailbox_ns_round_trip_min": 185.0, "mailbox_ns_round_trip_median": 190.0}
        after = dict(before, ns_one_way_min=29.0, runs_ns=[29.0, 33.0, 35.0],
                     mailbox_runs_ns=[180.0, 210.0, 220.0], mailbox_ns_round_trip_min=180.0)
        floor = sweep.merge_floors(before, after)
        self.assertEqual(floor["mailbox_ns_round_trip_min"], 180.0)
        self.assertEqual(floor["mailbox_ns_round_trip_median"], 195.0)
        self.assertEqual(len(floor["mailbox_runs_ns"]), 6)
        line = sweep.c2c_line(floor, {"beamline": 11.2, "beam": None, "go": None})
        self.assertIn("c2c_floor's mailbox round trip), take 180 ns (6.2x the floor).", line)
        old = {k: v for k, v in before.items() if not k.startswith("mailbox")}
        floor = sweep.merge_floors(old, dict(old))
        self.assertNotIn("mailbox_ns_round_trip_min", floor)
        self.assertNotIn("mailbox", sweep.c2c_line(floor, {"beamline": 11.2, "beam": None,
                                                           "go": None}))

    def test_local_floor(self):
        # c2c_floor's one-core round trip: merged over both measurements, pingpong_same_sched
        # told as a multiple of it; an older output without it gives no multiples.
        before = {"cpus": [0, 1], "ns_one_way_min": 30.0, "ns_one_way_median": 31.0,
                  "runs_ns": [30.0, 31.0, 32.0], "local_runs_ns": [36.0, 37.0, 38.0],
                  "local_ns_round_trip_min": 36.0, "local_ns_round_trip_median": 37.0}
        after = dict(before, local_runs_ns=[35.0, 40.0, 41.0], local_ns_round_trip_min=35.0)
        floor = sweep.merge_floors(before, after)
        self.assertEqual(floor["local_ns_round_trip_min"], 35.0)
        self.assertEqual(floor["local_ns_round_trip_median"], 37.5)
        mult = sweep.local_multiples(floor, {"beamline": 105.0, "beam": 350.0, "go": None})
        self.assertEqual(mult, {"beamline": 3.0, "beam": 10.0, "go": None})
        line = sweep.local_line(floor, mult)
        self.assertIn("pingpong_same_sched = 3.0x the one-core floor for Beamline (BEAM 10.0x, "
                      "Go -)", line)
        self.assertIn("on CPU 0): 35.0 ns, min of 6 runs, median 37.5 ns.", line)
        old = {k: v for k, v in before.items() if not k.startswith("local")}
        self.assertIsNone(sweep.local_multiples(sweep.merge_floors(old, dict(old)),
                                                {"beamline": 105.0}))

    def test_host_speed_line(self):
        # Each harness's figures before/after, per run; a warning when the host's speed
        # moved by more than a fifth; nothing when nothing was measured.
        steady = {"beamline": [[0.55, 0.56]], "beam": [[0.55, None]], "go": [[0.56, 0.55]]}
        line = sweep.speed_line(steady)
        self.assertIn("Beamline 0.55/0.56; BEAM 0.55/-; Go 0.56/0.55.", line)
        self.assertNotIn("changed by", line)
        slow = {"beamline": [[0.55, 0.56], [1.10, 1.12]], "go": [[0.56, 0.55], [0.55, 0.55]]}
        line = sweep.speed_line(slow)
        self.assertIn("Beamline 0.55/0.56, 1.10/1.12; Go", line)
        self.assertIn("changed by 2.04x", line)
        self.assertIsNone(sweep.speed_line({"beamline": [[None, None]]}))
        data = copy.deepcopy(FIXTURE)
        data["host_speed"] = slow
        self.assertIn("changed by 2.04x", report.markdown(data, None, "x"))
        # The turns probe around every row: many pairs are summed up, and the gate's
        # waits are told.
        turns = {"beam": [[1.40, 1.45]],
                 "beamline": [[1.40, 1.50], [1.45, 1.41], [1.60, 1.43], [1.42, 1.44]]}
        gate = {"ratio": 1.2, "fastest": 1.38, "starts": 5, "delayed": 2, "waited_s": 3.5,
                "not_quiet": 0}
        line = sweep.speed_line(turns, gate)
        self.assertIn("BEAM 1.40/1.45; Beamline 4 starts, 1.40-1.60 (median 1.44).", line)
        self.assertIn("within 1.2x of the fastest, 1.38): 2 of 5 waited, 3.5 s in all.", line)
        gate["not_quiet"] = 1
        self.assertIn("1 started in a slow spell", sweep.speed_line(turns, gate))
        data["quiet_gate"] = gate
        self.assertIn("2 of 5 waited", report.markdown(data, None, "x"))

    def test_quiet_gate(self):
        # A start waits while the probe reads slower than 1.2x the fastest seen, up to its
        # bound; a quiet probe just taken is used as it is.
        gate = run.QuietGate("cpu_probe")
        reads = iter([1.40, 2.00, 1.90, 1.45, 2.5])
        with mock.patch.object(sweep, "run_cpu_probe", lambda b: next(reads)), \
                mock.patch.object(run.time, "sleep", lambda s: None):
            self.assertEqual(gate.wait(), 1.40)
            self.assertEqual(gate.wait(), 1.45)  # 2.00 and 1.90 were waited out
            self.assertEqual(gate.wait(last=1.41), 1.41)  # no new probe
        self.assertEqual(gate.summary()["delayed"], 0)  # the waits took no time here
        self.assertEqual((gate.starts, gate.unquiet, gate.best), (3, 0, 1.40))
        gate = run.QuietGate("cpu_probe")
        gate.best = 1.0
        clock = iter(range(0, 1000, 5))
        with mock.patch.object(sweep, "run_cpu_probe", lambda b: 2.0), \
                mock.patch.object(run.time, "sleep", lambda s: None), \
                mock.patch.object(run.time, "monotonic", lambda: next(clock)):
            self.assertEqual(gate.wait(), 2.0)  # still slow when the wait ran out
        self.assertEqual((gate.unquiet, gate.delayed), (1, 1))
        self.assertLessEqual(gate.waited, run.QUIET_WAIT_S + 5)

    def test_chart_spec(self):
        spec = report.ratio_spec(FIXTURE, "x.png")
        # Sorted by the geometric mean of the ratios, Beamline furthest ahead first; the
        # row without a Beamline figure is left out.
        self.assertEqual(spec["rows"], ["spawn_exit (ns)", "pingpong_same_sched (ns)",
                                        "idle_process_bytes (bytes)", "many_to_one_call (per_s)",
                                        "http_plaintext_rps (per_s)", "million_procs (ms)"])
        self.assertEqual(list(spec["series"]), ["BEAM", "Go", "nginx"])
        self.assertAlmostEqual(spec["series"]["Go"][3], 2.5 / 3)
        self.assertEqual(spec["series"]["BEAM"][4], None)
        self.assertIsNone(report.ratio_spec(results(row("a", "ns", 1.0)), "x.png"))

    def test_files_beside_the_json(self):
        path = Path(self.files.write("latest.json", FIXTURE))
        md, png, why = report.write_report(copy.deepcopy(FIXTURE), path)
        self.assertEqual(md, path.with_suffix(".md"))
        text = md.read_text()
        self.assertIn("| `spawn_exit` |", text)
        if why == charts.MATPLOTLIB_HINT:
            self.assertIsNone(png)
            self.assertIn("No chart: matplotlib is missing", text)
            self.skipTest("no python3 here has matplotlib")
        self.assertIsNone(why)
        self.assertEqual(png, path.with_suffix(".png"))
        self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        self.assertIn("](latest.png)", text)

    def test_no_matplotlib(self):
        path = Path(self.files.write("latest.json", FIXTURE))
        with mock.patch.object(charts.importlib.util, "find_spec", return_value=None), \
                mock.patch.object(charts.os, "access", return_value=False):
            md, png, why = report.write_report(copy.deepcopy(FIXTURE), path)
        self.assertEqual(why, charts.MATPLOTLIB_HINT)
        self.assertIsNone(png)
        self.assertFalse(path.with_suffix(".png").exists())
        self.assertIn("No chart: matplotlib is missing: install Debian's python3-matplotlib",
                      md.read_text())

    def test_no_ratio_no_chart(self):
        path = Path(self.files.write("r.json", "{}"))
        path.with_suffix(".png").write_bytes(b"an earlier chart")
        md, png, why = report.write_report(results(row("a", "ns", 1.0)), path)
        self.assertIsNone(png)
        self.assertFalse(path.with_suffix(".png").exists())
        self.assertIn("No chart: no row has a figure for Beamline and a peer.", md.read_text())


class Pair(unittest.TestCase):
    """bench/pair.py's verdicts, on made-up pairs of runs."""

    @staticmethod
    def pairs(unit, a_b):
        return [({"r": (a, unit)}, {"r": (b, unit)}) for a, b in a_b]

    def verdict(self, unit, a_b):
        (r,) = pair.summarize(self.pairs(unit, a_b), 2.0)
        return r

    def test_seven_of_eight_by_five_percent_is_faster(self):
        r = self.verdict("ns", [(100, 95)] * 7 + [(100, 101)])
        self.assertEqual(r["verdict"], "B faster")
        self.assertEqual(r["wins"], 7)
        self.assertAlmostEqual(r["median"], 100 / 95)

    def test_a_rate_counts_the_other_way(self):
        self.assertEqual(self.verdict("per_s", [(100, 95)] * 8)["verdict"], "B slower")
        self.assertEqual(self.verdict("per_s", [(100, 105)] * 8)["verdict"], "B faster")

    def test_six_of_eight_is_no_change(self):
        # What two copies of one build did against each other.
        r = self.verdict("ns", [(100, 103)] * 6 + [(100, 97)] * 2)
        self.assertEqual(r["verdict"], "no clear change")

    def test_below_the_threshold_is_no_change(self):
        self.assertEqual(self.verdict("ns", [(100, 99)] * 8)["verdict"], "no clear change")

    def test_only_rows_both_gave(self):
        rows = pair.summarize([({"x": (1.0, "ns"), "y": (2.0, "ns")}, {"y": (1.0, "ns")})], 2.0)
        self.assertEqual([r["name"] for r in rows], ["y"])

    def test_the_cpus_swap_every_pair(self):
        self.assertEqual([pair.cpus_of_pair(i, [0, 3]) for i in range(3)],
                         [(0, 3), (3, 0), (0, 3)])


if __name__ == "__main__":
    unittest.main()
