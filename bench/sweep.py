#!/usr/bin/env python3
"""Helpers of bench/run.py for the scaling sweeps and the core-to-core floor.

- the sweeps (`run.py --sweep schedulers=1,2,4`, `--sweep size=1k,10k,100k,1m`): which
  rows each one runs, how its values are written, and what the PNG chart of each row
  shows (drawn by bench/charts.py);
- the core-to-core floor: running `c2c_floor` (bench/c2c_floor.c) and relating
  pingpong_cross_sched to it.

See bench/README.md.
"""

import json
import os
import re
import subprocess
from pathlib import Path

# Rows of `--sweep schedulers=...` unless --filter names others: the workloads whose
# figure depends on how many schedulers share the work.
SCHEDULER_ROWS = [
    "spawn_exit",
    "ring_1000x1000",
    "mailbox_20_senders",
    "fact10k_concurrent",
    "many_to_one_call",
    "many_to_one_call_partitioned",
    "skynet_1m",
]
# Rows of `--sweep size=...`: the workloads that read BENCH_SIZE (process or key count).
# --filter can only narrow this set. Go has no registry rows.
SIZE_ROWS = ["spawn_exit", "ring_1000x1000", "registry_register", "registry_lookup"]
SIZE_VAR = "BENCH_SIZE"
SIZE_MAX = 100_000_000
SWEEP_KINDS = ("schedulers", "size")

SUFFIX = {"k": 1_000, "m": 1_000_000}
def parse_count(text):
    """"1k" -> 1000, "1m" -> 1000000, "250" -> 250; ValueError otherwise."""
    t = text.strip().lower().replace("_", "")
    mult = 1
    if t and t[-1] in SUFFIX:
        mult, t = SUFFIX[t[-1]], t[:-1]
    if not re.fullmatch(r"[0-9]+", t):
        raise ValueError(text)
    return int(t) * mult


def fmt_count(v):
    """1000 -> "1k", 1000000 -> "1m", 2500 -> "2500"."""
    for s, m in (("m", 1_000_000), ("k", 1_000)):
        if v >= m and v % m == 0:
            return f"{v // m}{s}"
    return str(v)


def parse_sweep(text):
    """argparse type of --sweep: "schedulers=1,2,4" or "size=1k,10k" -> (kind, [values])."""
    import argparse

    kind, sep, rest = text.partition("=")
    kind = kind.strip()
    if not sep or kind not in SWEEP_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected schedulers=N,N,... or size=N,N,... (k and m suffixes), not {text!r}")
    values = []
    for part in rest.split(","):
        if not part.strip():
            continue
        try:
            v = parse_count(part) if kind == "size" else int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind}: not a count: {part!r}")
        if v < 1 or (kind == "size" and v > SIZE_MAX):
            raise argparse.ArgumentTypeError(f"{kind}: out of range: {part!r}")
        if v not in values:
            values.append(v)
    if not values:
        raise argparse.ArgumentTypeError(f"{kind}: no values given")
    return kind, values


def sweep_rows(kind, keep, user_filter):
    """The rows a sweep runs: its default set, or (schedulers) what --filter selects
    among the known workloads, or (size) the size rows --filter keeps."""
    if kind == "size":
        return [r for r in SIZE_ROWS if keep(r)]
    return None if user_filter else list(SCHEDULER_ROWS)


def exact_filter(rows):
    """A filter (regex search) that selects exactly these names: Google Benchmark matches
    it against "name/iterations:1/real_time", the anchors against the bare name."""
    return "^(" + "|".join(re.escape(r) for r in rows) + ")(/|$)"


def fmt_value(kind, v):
    return fmt_count(v) if kind == "size" else str(v)


# ---------------------------------------------------------------- charts


def _spans_decades(vals):
    pos = [v for v in vals if v is not None and v > 0]
    return len(pos) >= 2 and max(pos) / min(pos) >= 10


def chart_spec(kind, values, row, path, lower_is_better):
    """What one chart shows; the scales are decided here, the drawing is bench/charts.py's."""
    series = {label: row[key] for label, key in
              (("Beamline", "beamline"), ("BEAM", "beam"), ("Go", "go"))
              if any(v is not None for v in row[key])}
    all_y = [v for s in series.values() for v in s]
    what = "lower is better" if lower_is_better else "higher is better"
    return {
        "type": "lines",
        "path": str(path),
        "title": f"{row['name']} by {'scheduler count' if kind == 'schedulers' else 'size'}",
        "xlabel": ("schedulers (BEAMLINE_SCHEDULERS, +S, GOMAXPROCS)" if kind == "schedulers"
                   else f"processes or keys ({SIZE_VAR})"),
        "ylabel": f"{row['unit']} ({what})",
        "x": list(values),
        "xticklabels": [fmt_value(kind, v) for v in values],
        "series": series,
        "logx": _spans_decades(values),
        "logx_base": 2 if kind == "schedulers" else 10,
        "logy": _spans_decades(all_y),
    }


# ---------------------------------------------------------------- core-to-core floor


def run_c2c_floor(binary, timeout=120):
    """Runs c2c_floor: (its JSON as a dict, None) or (None, why not)."""
    binary = Path(binary)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return None, f"{binary} not found (built with the release preset, bench/c2c_floor.c)"
    try:
        proc = subprocess.run([str(binary)], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{binary} failed: {e}"
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        return None, f"{binary} exited with status {proc.returncode}: {err[-300:]}"
    try:
        data = json.loads(proc.stdout)
        float(data["ns_one_way_min"])
    except (ValueError, KeyError, TypeError):
        return None, f"{binary} printed no readable JSON"
    data["binary"] = str(binary)
    return data, None


def run_cpu_probe(binary, timeout=60):
    """Runs cpu_probe: the slowest CPU's ns per step right now, or None if it cannot."""
    binary = Path(binary)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return None
    try:
        proc = subprocess.run([str(binary)], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
        return float(json.loads(proc.stdout)["ns_per_step_max"]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None


HARNESS_NAMES = {"beamline": "Beamline", "beam": "BEAM", "go": "Go"}


def speed_pairs(runs):
    """One harness's before/after figures: each pair, or a summary of many (the turns
    probe before and after every row)."""
    if len(runs) <= 3:
        return ", ".join("/".join("-" if v is None else f"{v:.2f}" for v in pair)
                         for pair in runs)
    vals = sorted(v for pair in runs for v in pair if v is not None)
    mid = vals[len(vals) // 2]
    return f"{len(runs)} starts, {vals[0]:.2f}-{vals[-1]:.2f} (median {mid:.2f})"


def speed_line(speeds, gate=None):
    """The line printed under the table: the host's speed before and after each harness
    ({harness: [[before, after], ...] per run, or per row of the turns}, ns per step, lower
    is faster), what the quiet gate waited (run.py QuietGate.summary), and a warning when
    the speed changed enough to move the rows; None when nothing was measured."""
    parts, seen = [], []
    for h, runs in speeds.items():
        vals = [v for pair in runs for v in pair if v is not None]
        if not vals:
            continue
        seen += vals
        parts.append(f"{HARNESS_NAMES.get(h, h)} {speed_pairs(runs)}")
    if not parts:
        return None
    line = ("Host speed (cpu_probe: ns per step of eight independent integer chains on the "
            "slowest CPU, lower is faster; before/after each harness, or each row when "
            "Beamline and Go take turns): " + "; ".join(parts) + ".")
    if gate and gate.get("starts"):
        line += (f" Each start waited for a quiet host (a probe within {gate['ratio']:g}x of "
                 f"the fastest, {gate['fastest']:.2f}): {gate['delayed']} of "
                 f"{gate['starts']} waited, {gate['waited_s']:g} s in all")
        line += (f"; {gate['not_quiet']} started in a slow spell when the wait ran out."
                 if gate.get("not_quiet") else ".")
    lo, hi = min(seen), max(seen)
    if hi > 1.2 * lo:
        line += (f" The host's speed changed by {hi / lo:.2f}x during the benchmarks (a "
                 "virtual machine's CPUs are slowed when the host runs other work on them): "
                 "a harness that ran in a slow spell is slower for it, whatever it runs.")
    return line


def merge_floors(before, after):
    """One floor from the runs taken before and after the benchmarks (either may be None):
    the minimum over both, the median of all runs, and each one's minimum. On a virtual
    machine the two CPUs can move on the host between the two (the floor then jumps,
    between cores that share a cache and cores that do not)."""
    if before is None or after is None:
        return before or after
    runs = list(before["runs_ns"]) + list(after["runs_ns"])
    s = sorted(runs)
    n = len(s)
    merged = dict(before)
    merged.update({
        "runs_ns": runs,
        "ns_one_way_min": min(before["ns_one_way_min"], after["ns_one_way_min"]),
        "ns_one_way_median": s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2,
        "min_before": before["ns_one_way_min"],
        "min_after": after["ns_one_way_min"],
    })
    # The mailbox and the one-core round trips likewise (absent from an older
    # c2c_floor's output).
    for kind in ("mailbox", "local"):
        rt = list(before.get(f"{kind}_runs_ns") or []) + list(after.get(f"{kind}_runs_ns") or [])
        if rt:
            s = sorted(rt)
            n = len(s)
            merged.update({
                f"{kind}_runs_ns": rt,
                f"{kind}_ns_round_trip_min": s[0],
                f"{kind}_ns_round_trip_median": (s[n // 2] if n % 2
                                                 else (s[n // 2 - 1] + s[n // 2]) / 2),
            })
    return merged


def _multiples(row, f):
    """Each runtime's figure on the row / f, None where either is missing."""
    return {k: (round(row[k] / f, 2) if row.get(k) and f and f > 0 else None)
            for k in ("beamline", "beam", "go")}


def _times(v):
    return "-" if v is None else f"{v:.1f}x"


def c2c_multiples(floor, row):
    """pingpong_cross_sched's round trip of each runtime / the one-way floor (min)."""
    return _multiples(row, floor["ns_one_way_min"])


def local_multiples(floor, row):
    """pingpong_same_sched's round trip of each runtime / c2c_floor's one-core round trip
    (min); None without one."""
    f = floor.get("local_ns_round_trip_min")
    return _multiples(row, f) if f and f > 0 else None


def local_line(floor, mult):
    """The line printed under the table for pingpong_same_sched."""
    x = _times
    runs = floor.get("local_runs_ns") or []
    return (f"pingpong_same_sched = {x(mult['beamline'])} the one-core floor for Beamline "
            f"(BEAM {x(mult['beam'])}, Go {x(mult['go'])}); floor: two messages between two "
            f"contexts of one thread with mailboxes of Beamline's kind, parked and switched by "
            f"its own switch, with no scheduler, process or allocator around them "
            f"(c2c_floor's one-core round trip on CPU {(floor.get('cpus') or ['?'])[0]}): "
            f"{floor['local_ns_round_trip_min']:.1f} ns, min of {len(runs)} runs, median "
            f"{floor['local_ns_round_trip_median']:.1f} ns.")


def c2c_line(floor, mult):
    """The line printed under the table."""
    x = _times
    cpus = floor.get("cpus") or ["?", "?"]
    where = f"CPUs {cpus[0]} and {cpus[1]}" + (" (SMT siblings of one core)"
                                               if floor.get("same_core") else "")
    runs = floor.get("runs_ns") or []
    line = (f"pingpong_cross_sched = {x(mult['beamline'])} the core-to-core floor for Beamline "
            f"(BEAM {x(mult['beam'])}, Go {x(mult['go'])}); floor: "
            f"{floor['ns_one_way_min']:.1f} ns per one-way cache-line hand-off between {where} "
            f"(c2c_floor before and after the benchmarks: min of {len(runs)} runs, median "
            f"{floor['ns_one_way_median']:.1f} ns); a round trip is at least two hand-offs.")
    mb = floor.get("mailbox_ns_round_trip_min")
    if mb and floor["ns_one_way_min"] > 0:
        line += (f" Two messages between two mailboxes of Beamline's kind, with no runtime "
                 f"around them (c2c_floor's mailbox round trip), take {mb:.0f} ns "
                 f"({mb / floor['ns_one_way_min']:.1f}x the floor).")
    per_run = floor.get("min_per_run") or []
    if per_run:
        line += (" Floor before each run (ns): "
                 + ", ".join("-" if v is None else f"{v:.0f}" for v in per_run))
        mb_runs = floor.get("mailbox_min_per_run") or []
        if mb_runs:
            # The protocol's cost moves far more than the one-way floor on a virtual
            # machine (104 to 374 ns within minutes here), and the rows follow it.
            line += ("; mailbox round trip before each run (ns): "
                     + ", ".join("-" if v is None else f"{v:.0f}" for v in mb_runs))
        line += ("; a run's cross-core rows follow its floor (latest.json has each run's "
                 "figures under spread.*.values).")
    lo, hi = sorted((floor.get("min_before", 0), floor.get("min_after", 0)))
    if lo > 0 and hi > 1.5 * lo:
        line += (f" The floor moved from {floor['min_before']:.1f} to {floor['min_after']:.1f} "
                 f"ns during the run (on a virtual machine the CPUs can move on the host): "
                 f"the multiples are only indicative.")
    return line
