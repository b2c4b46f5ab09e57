#!/usr/bin/env python3
"""Run the Beamline benchmark suite side by side with the BEAM and Go anchors.

    python3 bench/run.py --beamline BUILD/bench/beamline_bench --build-dir BUILD
        [--filter REGEX] [--schedulers N] [--bind cores|none|spread] [--reductions N]
        [--spin-us N] [--wake msg_ring|eventfd] [--no-beam] [--no-go]
        [--timeout SECONDS] [--out bench/results/latest.json]

Runs the Beamline Google Benchmark binary (tuning passed as BEAMLINE_* environment
variables), the BEAM script bench/beam/bench.exs (elixir --erl "+S N") and the Go program
bench/go (GOMAXPROCS=N) with the same filter, prints one table and writes one JSON file.
See bench/README.md. Exits non-zero only when the Beamline binary fails; a failing
anchor is reported and its column left empty.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEAM_SCRIPT = REPO / "bench" / "beam" / "bench.exs"
GO_DIR = REPO / "bench" / "go"

# Canonical workload order and units (bench/README.md). Names seen in any output that
# are not listed here are appended in the order they were first seen.
CANONICAL = [
    ("ctx_switch", "ns"),
    ("spawn_exit", "ns"),
    ("pingpong_same_sched", "ns"),
    ("pingpong_cross_sched", "ns"),
    ("ring_1000x1000", "ns"),
    ("million_procs", "ms"),
    ("idle_process_bytes", "bytes"),
    ("send_throughput", "ns"),
    ("mailbox_20_senders", "ns"),
    ("call_with_500k_queued", "ns"),
    ("timers_100k", "ms"),
    ("link_exit_cascade", "ms"),
    ("monitor_down_latency", "ns"),
    ("hibernated_process_bytes", "bytes"),
    ("priority_high_latency_under_load", "ns"),
    ("fact10k_reduce", "ms"),
    ("fact10k_genserver", "ms"),
    ("fact10k_genserver_rate", "per_ms"),
    ("fact10k_stream", "ms"),
    ("fact10k_concurrent", "ms"),
    ("two_email_tasks_1s", "ms"),
    ("async_stream_12x500ms_c4", "ms"),
    ("dynsup_5_slow_children", "ms"),
    ("partsup_5_slow_children", "ms"),
    ("yield_many_timeouts", "ms"),
    ("genserver_start_call_stop", "ns"),
    ("genserver_call_rtt", "ns"),
    ("genserver_cast", "ns"),
    ("idle_genserver_bytes", "bytes"),
    ("supervisor_restart_latency", "us"),
    ("registry_register", "ns"),
    ("registry_lookup", "ns"),
    ("registry_dispatch_1000", "us"),
    ("task_async_await", "ns"),
    ("agent_update", "ns"),
    ("io_sleep_100k", "ms"),
    ("echo_rps", "per_s"),
    ("accept_rate", "per_s"),
    ("file_read_4k_iops", "per_s"),
]
CANONICAL_UNITS = dict(CANONICAL)

# Workloads the BEAM measures in a second VM started with one scheduler (+S 1).
BEAM_SAME_SCHED = ["ctx_switch", "pingpong_same_sched"]
# Process limit for the BEAM: million_procs needs more than 1M.
BEAM_MAX_PROCS = 2_000_000

TIME_UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

TUNING = [  # (option dest, environment variable)
    ("bind", "BEAMLINE_BIND"),
    ("reductions", "BEAMLINE_REDUCTIONS"),
    ("spin_us", "BEAMLINE_SPIN_US"),
    ("wake", "BEAMLINE_WAKE"),
]


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


def default_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return v


def non_negative_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run the Beamline benchmarks side by side with the BEAM and Go.")
    p.add_argument("--beamline", required=True,
                   help="the Beamline Google Benchmark binary")
    p.add_argument("--build-dir", required=True,
                   help="build directory; the Go anchor and scratch files go to BUILD/bench-anchors")
    p.add_argument("--filter", default=None,
                   help="regex on workload names (a search; a leading '-' negates it)")
    p.add_argument("--schedulers", type=positive_int, default=None,
                   help="scheduler count for all three (default: the machine's cores)")
    p.add_argument("--bind", choices=["cores", "none", "spread"], default=None)
    p.add_argument("--reductions", type=positive_int, default=None)
    p.add_argument("--spin-us", dest="spin_us", type=non_negative_int, default=None)
    p.add_argument("--wake", choices=["msg_ring", "eventfd"], default=None)
    p.add_argument("--no-beam", action="store_true", help="do not run the BEAM anchor")
    p.add_argument("--no-go", action="store_true", help="do not run the Go anchor")
    p.add_argument("--timeout", type=positive_int, default=1200,
                   help="time limit in seconds for each run (default 1200)")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.json"),
                   help="JSON output file (default bench/results/latest.json)")
    # A negative filter ("-name") looks like an option to argparse: glue it to --filter.
    fixed, i = [], 0
    while i < len(argv):
        if argv[i] == "--filter" and i + 1 < len(argv):
            fixed.append("--filter=" + argv[i + 1])
            i += 2
        else:
            fixed.append(argv[i])
            i += 1
    return p.parse_args(fixed)


def name_matcher(filt):
    """Mirror of the filter semantics of the three programs: regex search, '-' negates."""
    if not filt:
        return lambda name: True
    negate = filt.startswith("-")
    pat = filt[1:] if negate else filt
    try:
        rx = re.compile(pat)
    except re.error:
        return lambda name: True  # let each program judge the regex itself
    return lambda name: (rx.search(name) is None) == negate


class RunError(Exception):
    pass


def run_captured(cmd, env=None, cwd=None, timeout=1200):
    """Run cmd with stderr passed through, return its stdout. Raise RunError on failure."""
    shown = shlex.join(cmd)
    log(f"$ {shown}")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
    except OSError as e:
        raise RunError(f"cannot start {cmd[0]}: {e.strerror or e}")
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise RunError(f"timed out after {timeout} s: {shown}")
    except BaseException:
        kill_group(proc)
        raise
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        if proc.returncode < 0:
            why = f"killed by signal {signal.Signals(-proc.returncode).name}"
        else:
            why = f"exit status {proc.returncode}"
        raise RunError(f"{why} after {dt:.1f} s: {shown}")
    log(f"  ({dt:.1f} s)")
    return out.decode("utf-8", errors="replace")


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def load_json_text(text):
    """Parse JSON printed on stdout, tolerating stray lines before or after it."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    dec = json.JSONDecoder()
    for m in re.finditer(r"^\{", text, re.M):
        try:
            obj, _ = dec.raw_decode(text, m.start())
            return obj
        except ValueError:
            continue
    raise RunError("no JSON object in the output")


def median(vals):
    s = sorted(vals)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# ---------------------------------------------------------------- Beamline


def run_beamline(args, n_sched, problems):
    """Return {name: (value, unit)}, or None if the binary failed."""
    binary = Path(args.beamline)
    if not binary.is_file():
        problems.append(f"Beamline: binary not found: {binary} (column left empty)")
        return None
    if not os.access(binary, os.X_OK):
        problems.append(f"Beamline: binary is not executable: {binary} (column left empty)")
        return None
    env = dict(os.environ)
    env["BEAMLINE_SCHEDULERS"] = str(n_sched)
    for dest, var in TUNING:
        v = getattr(args, dest)
        if v is not None:
            env[var] = str(v)
    cmd = [str(binary), "--benchmark_format=json",
           f"--benchmark_filter={args.filter if args.filter else '.'}"]
    log("== Beamline")
    try:
        data = load_json_text(run_captured(cmd, env=env, timeout=args.timeout))
        return parse_gbench(data, problems)
    except RunError as e:
        problems.append(f"Beamline: FAILED: {e} (column left empty)")
        return None


def parse_gbench(data, problems):
    """Google Benchmark JSON -> {workload: (value, unit)}.

    The workload name is the benchmark name up to the first '/'. The figure is the user
    counter "value" and the unit its "label". With repetitions, the "median" aggregate is
    used; several iteration entries of one benchmark are reduced to their median.
    An entry with error_occurred makes the run count as failed.
    """
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise RunError("output has no \"benchmarks\" list")
    medians, iterations, families = {}, {}, {}
    failed = []
    for b in data["benchmarks"]:
        name = str(b.get("name", ""))
        run_name = str(b.get("run_name") or name)
        stem = run_name.split("/", 1)[0]
        if b.get("error_occurred"):
            failed.append(f"{name}: {b.get('error_message', 'error')}")
            continue
        if b.get("skipped"):
            continue
        first = families.setdefault(stem, run_name)
        if first != run_name:
            problems.append(f"Beamline: {run_name} ignored ({stem} already reported by {first})")
            continue
        if "value" in b:
            value, unit = b["value"], b.get("label")
            if not unit:
                problems.append(f"Beamline: {name} has no label (unit); shown as '?'")
                unit = "?"
        else:
            # Contract breach: fall back to the measured time.
            value, unit = b.get("real_time"), b.get("time_unit", "ns")
            problems.append(f"Beamline: {name} has no \"value\" counter; real_time used")
        if not isinstance(value, (int, float)):
            problems.append(f"Beamline: {name} has no numeric figure; ignored")
            continue
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[stem] = (float(value), unit)
        else:
            iterations.setdefault(stem, []).append((float(value), unit))
    result = {}
    for stem in families:
        if stem in medians:
            result[stem] = medians[stem]
        elif stem in iterations:
            vals = iterations[stem]
            result[stem] = (median([v for v, _ in vals]), vals[0][1])
    if failed:
        raise_msg = "; ".join(failed)
        problems.append(f"Beamline: FAILED: benchmark error(s): {raise_msg}")
        result["__failed__"] = True
    return result


# ---------------------------------------------------------------- anchors


def parse_anchor(text, who):
    data = load_json_text(text)
    if not isinstance(data, dict) or not isinstance(data.get("workloads"), list):
        raise RunError(f"{who}: output has no \"workloads\" list")
    res = {}
    for w in data["workloads"]:
        try:
            res[str(w["name"])] = (float(w["value"]), str(w["unit"]))
        except (KeyError, TypeError, ValueError):
            raise RunError(f"{who}: malformed entry {w!r}")
    return res


def read_anchor_output(out_file, stdout, who):
    if out_file.is_file():
        text = out_file.read_text()
        out_file.unlink()
    else:
        text = stdout
    return parse_anchor(text, who)


def run_beam(args, n_sched, scratch, problems):
    elixir = shutil.which("elixir")
    if not elixir:
        problems.append("BEAM: elixir not found in PATH (column left empty)")
        return {}
    env = dict(os.environ)
    env["ERL_CRASH_DUMP"] = str(scratch / "erl_crash.dump")
    keep = name_matcher(args.filter)
    invocations = [(n_sched, None)]
    if n_sched != 1 and any(keep(n) for n in BEAM_SAME_SCHED):
        invocations.append((1, BEAM_SAME_SCHED))
    results = {}
    for sched, only in invocations:
        out_file = scratch / f"beam_s{sched}.json"
        out_file.unlink(missing_ok=True)
        cmd = [elixir, "--erl", f"+S {sched} +P {BEAM_MAX_PROCS}", str(BEAM_SCRIPT),
               "--out", str(out_file)]
        if args.filter:
            cmd.append(f"--filter={args.filter}")
        if only:
            cmd += ["--only", ",".join(only)]
        log(f"== BEAM, {sched} scheduler(s)")
        try:
            stdout = run_captured(cmd, env=env, cwd=scratch, timeout=args.timeout)
            results.update(read_anchor_output(out_file, stdout, "BEAM"))
        except RunError as e:
            problems.append(f"BEAM (+S {sched}): FAILED: {e}")
    return results


def run_go(args, n_sched, scratch, problems):
    go = shutil.which("go")
    if not go:
        problems.append("Go: go not found in PATH (column left empty)")
        return {}
    binary = scratch / "go_anchor"
    env = dict(os.environ)
    env.update({
        "GOCACHE": str(scratch / "go-cache"),
        "GOPATH": str(scratch / "go-path"),
        "GOENV": "off", "GOFLAGS": "", "GOWORK": "off", "GO111MODULE": "on",
        "GOPROXY": "off", "GOSUMDB": "off", "CGO_ENABLED": "0",
    })
    log("== Go")
    try:
        # Built from inside the module (bench/go has its own go.mod).
        run_captured([go, "build", "-o", str(binary), "."], env=env, cwd=GO_DIR,
                     timeout=args.timeout)
    except RunError as e:
        problems.append(f"Go: build FAILED: {e}")
        return {}
    out_file = scratch / "go.json"
    out_file.unlink(missing_ok=True)
    cmd = [str(binary), "-out", str(out_file)]
    if args.filter:
        cmd.append(f"-filter={args.filter}")
    run_env = dict(os.environ)
    run_env["GOMAXPROCS"] = str(n_sched)
    try:
        stdout = run_captured(cmd, env=run_env, cwd=scratch, timeout=args.timeout)
        return read_anchor_output(out_file, stdout, "Go")
    except RunError as e:
        problems.append(f"Go: FAILED: {e}")
        return {}


# ---------------------------------------------------------------- table and JSON


def convert(value, unit, target):
    """Convert between time units; other units must match exactly. None if impossible."""
    if value is None:
        return None
    if unit == target:
        return value
    if unit in TIME_UNITS and target in TIME_UNITS:
        return value * TIME_UNITS[unit] / TIME_UNITS[target]
    return None


def higher_is_better(unit):
    """Rates ("ops/ms", "req/s", "per_ms"): the higher the better; else the lower."""
    return "/" in unit or unit.startswith("per_")


def ratio(beamline, beam, unit):
    """How many times better Beamline is than the BEAM."""
    if beamline is None or beam is None or beamline <= 0 or beam <= 0:
        return None
    return beamline / beam if higher_is_better(unit) else beam / beamline


def fmt_num(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def build_rows(keep, sources, problems):
    """sources: [(column, {name: (value, unit)})] -> list of row dicts."""
    seen = []
    for _, res in sources:
        seen += [n for n in res if n not in seen]
    # Canonical workloads the filter selects or that someone reported, in canonical
    # order; then the other names, in the order first seen.
    names = [n for n, _ in CANONICAL if keep(n) or n in seen]
    names += [n for n in seen if n not in CANONICAL_UNITS]
    rows = []
    for n in names:
        unit = CANONICAL_UNITS.get(n)
        if unit is None:  # extra workload: take the first unit reported
            unit = next((res[n][1] for _, res in sources if n in res), "?")
        row = {"name": n, "unit": unit}
        for col, res in sources:
            v = None
            if n in res:
                v = convert(res[n][0], res[n][1], unit)
                if v is None:
                    problems.append(f"{col}: {n} reported in {res[n][1]!r}, "
                                    f"expected {unit!r}; not shown")
            row[col] = v
        rows.append(row)
    return rows


def print_table(rows):
    header = ["workload", "unit", "Beamline", "BEAM", "Go", "BEAM/Beamline"]
    lines = []
    for r in rows:
        x = ratio(r["beamline"], r["beam"], r["unit"])
        lines.append([r["name"], r["unit"], fmt_num(r["beamline"]), fmt_num(r["beam"]),
                      fmt_num(r["go"]), "-" if x is None else f"{x:.2f}x"])
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h)
              for i, h in enumerate(header)]

    def fmt_line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]))
        return " | ".join(out).rstrip()

    print(fmt_line(header))
    print("-+-".join("-" * w for w in widths))
    for l in lines:
        print(fmt_line(l))


def main(argv):
    args = parse_args(argv)
    n_sched = args.schedulers or default_cpus()
    build_dir = Path(args.build_dir).resolve()
    scratch = build_dir / "bench-anchors"
    scratch.mkdir(parents=True, exist_ok=True)
    problems = []
    started = time.monotonic()

    config = {"schedulers": n_sched}
    for dest, var in TUNING:
        v = getattr(args, dest)
        if v is None and os.environ.get(var):
            v = os.environ[var]  # inherited by the Beamline binary
        if dest in ("reductions", "spin_us") and isinstance(v, str):
            try:
                v = int(v)
            except ValueError:
                pass
        config[dest] = v

    bl = run_beamline(args, n_sched, problems)
    beamline_failed = bl is None or bool(bl.pop("__failed__", False))
    beam = {} if args.no_beam else run_beam(args, n_sched, scratch, problems)
    go = {} if args.no_go else run_go(args, n_sched, scratch, problems)

    keep = name_matcher(args.filter)
    rows = build_rows(keep, [("beamline", bl or {}), ("beam", beam), ("go", go)], problems)

    machine = {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    result = {
        "workloads": [{"name": r["name"], "unit": r["unit"], "beamline": r["beamline"],
                       "beam": r["beam"], "go": r["go"]} for r in rows],
        "config": config,
        "machine": machine,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print()
    print(f"Machine: {machine['cpus']} CPUs, Linux {machine['kernel']}, {machine['date']}")
    tuning = ", ".join(f"{k}={'default' if v is None else v}" for k, v in config.items())
    print(f"Config: {tuning}  (BEAM +S {n_sched}, Go GOMAXPROCS={n_sched}; "
          f"same-scheduler workloads on 1)")
    print()
    print_table(rows)
    print()
    print("BEAM/Beamline: how many times better Beamline is (BEAM/Beamline for ns, ms and "
          "bytes; Beamline/BEAM for rates: units with '/' or 'per_').")
    for p in problems:
        print(f"note: {p}")
    print(f"Results written to {out} ({time.monotonic() - started:.0f} s in all).")
    if beamline_failed:
        print("Beamline run FAILED (see above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
