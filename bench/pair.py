#!/usr/bin/env python3
"""Two builds of beamline_bench side by side: which is faster, on a noisy host.

    python3 bench/pair.py A_BINARY B_BINARY [--filter REGEX] [--pairs N]
        [--cpus X,Y] [--threshold PCT] [--timeout S]

Runs A and B at the same time, each pinned to a CPU of its own with one scheduler
(BEAMLINE_SCHEDULERS=1), and swaps their CPUs from one pair to the next. A host whose
speed changes from second to second (a virtual machine beside busy neighbours) slows
both alike, so the ratio of the two figures of one pair holds still where the figures
themselves do not: here, `pingpong_same_sched` moved between 170 and 320 ns from run to
run, while A against itself, side by side, stayed within 5%. Both run with the other
core busy, so the figures are not those of `make bench`: this tells which build is
faster, by how much, not how fast either is. Rows that need more than one scheduler
(pingpong_cross_sched) measure nothing useful here.

For each row: the two medians, the speed-up of B over A in each pair (A's time over
B's, or B's rate over A's), their median, in how many pairs B was the faster, and a
verdict: B faster (or slower) when the median speed-up passes --threshold (default 2%)
and B won (or lost) so many pairs that two equal builds would do so in fewer than one
try in twenty (a sign test: 7 of 8 pairs, 6 of 6, 9 of 11); else no clear change. Side
by side, two copies of one build differed by up to 4% a pair (`send_throughput`), and
won 6 of 8 pairs against each other: neither is a change.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: parse_gbench)
from units import higher_is_better  # noqa: E402

SIGN_P = 0.05


def sign_p(k, n):
    """One-sided sign test: the chance of k or more wins in n pairs of equal builds."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def parse_args(argv):
    p = argparse.ArgumentParser(description="Two builds of beamline_bench side by side.")
    p.add_argument("a", metavar="A_BINARY")
    p.add_argument("b", metavar="B_BINARY")
    p.add_argument("--filter", default=".", help="Google Benchmark filter (default: every row)")
    p.add_argument("--pairs", type=int, default=8, help="pairs of runs (default 8)")
    p.add_argument("--cpus", default=None, help="the two CPUs, X,Y (default: the first two allowed)")
    p.add_argument("--threshold", type=float, default=2.0, help="percent (default 2)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    args = p.parse_args(argv)
    if args.pairs < 1:
        p.error("--pairs must be at least 1")
    allowed = sorted(os.sched_getaffinity(0))
    if args.cpus:
        try:
            args.cpus = [int(c) for c in args.cpus.split(",")]
        except ValueError:
            p.error(f"--cpus: not X,Y: {args.cpus}")
    else:
        args.cpus = allowed[:2]
    if len(args.cpus) != 2 or args.cpus[0] == args.cpus[1] or not set(args.cpus) <= set(allowed):
        p.error(f"needs two distinct CPUs this process may run on (allowed: {allowed})")
    for b in (args.a, args.b):
        if not (Path(b).is_file() and os.access(b, os.X_OK)):
            p.error(f"not an executable: {b}")
    return args


def cpus_of_pair(i, cpus):
    """The CPUs of A and B in pair i: swapped every other pair."""
    return (cpus[0], cpus[1]) if i % 2 == 0 else (cpus[1], cpus[0])


def start(binary, cpu, filt):
    env = dict(os.environ, BEAMLINE_SCHEDULERS="1")
    return subprocess.Popen(
        [str(binary), "--benchmark_format=json", f"--benchmark_filter={filt}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))


def finish(proc, timeout, who):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise run.RunError(f"{who}: no answer within {timeout:.0f} s")
    if proc.returncode != 0:
        raise run.RunError(f"{who}: exit status {proc.returncode}: {err.strip()[-300:]}")
    try:
        return run.parse_gbench(json.loads(out), [])
    except ValueError as e:
        raise run.RunError(f"{who}: output is not JSON: {e}")


def speedup(a, b, unit):
    """How many times faster B is than A in one pair (> 1: B faster)."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return b / a if higher_is_better(unit) else a / b


def summarize(pairs, threshold_pct):
    """pairs: [({row: (value, unit)} of A, the same of B)] -> one dict per row both gave."""
    rows = {}
    for ra, rb in pairs:
        for name, (va, unit) in ra.items():
            if name in rb:
                rows.setdefault(name, []).append((va, rb[name][0], unit))
    out = []
    for name, runs in rows.items():
        unit = runs[0][2]
        ups = [s for s in (speedup(a, b, unit) for a, b, _ in runs) if s is not None]
        if not ups:
            continue
        med = statistics.median(ups)
        wins = sum(1 for s in ups if s > 1)
        losses = sum(1 for s in ups if s < 1)
        thr = threshold_pct / 100
        if med > 1 + thr and sign_p(wins, len(ups)) <= SIGN_P:
            verdict = "B faster"
        elif med < 1 - thr and sign_p(losses, len(ups)) <= SIGN_P:
            verdict = "B slower"
        else:
            verdict = "no clear change"
        out.append({"name": name, "unit": unit,
                    "a": statistics.median(a for a, _, _ in runs),
                    "b": statistics.median(b for _, b, _ in runs),
                    "speedups": ups, "median": med, "wins": wins, "verdict": verdict})
    return out


def main(argv):
    args = parse_args(argv)
    pairs = []
    for i in range(args.pairs):
        ca, cb = cpus_of_pair(i, args.cpus)
        pa, pb = start(args.a, ca, args.filter), start(args.b, cb, args.filter)
        try:
            ra = finish(pa, args.timeout, f"A (CPU {ca})")
            rb = finish(pb, args.timeout, f"B (CPU {cb})")
        except run.RunError as e:
            for p in (pa, pb):
                if p.poll() is None:
                    p.kill()
                    p.communicate()
            print(f"pair {i + 1}: {e}", file=sys.stderr)
            return 1
        pairs.append((ra, rb))
        print(f"pair {i + 1} of {args.pairs}: A on CPU {ca}, B on CPU {cb}", file=sys.stderr)
    rows = summarize(pairs, args.threshold)
    if not rows:
        print("no row measured by both builds", file=sys.stderr)
        return 1
    print(f"{'row':32} {'unit':7} {'A':>10} {'B':>10} {'B/A speed-up':>13}  {'B won':>6}  verdict")
    for r in rows:
        print(f"{r['name']:32} {r['unit']:7} {r['a']:10.4g} {r['b']:10.4g} "
              f"{r['median']:8.3f} [{min(r['speedups']):.2f}-{max(r['speedups']):.2f}]"
              f"  {r['wins']:>2}/{len(r['speedups']):<3}  {r['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
