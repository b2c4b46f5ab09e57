#!/usr/bin/env python3
"""Run the Beamline benchmark suite side by side with the BEAM and Go anchors.

    python3 bench/run.py --beamline BUILD/bench/beamline_bench --build-dir BUILD
        [--filter REGEX] [--schedulers N] [--bind cores|none|spread] [--reductions N]
        [--spin-us N] [--wake msg_ring|eventfd] [--sqpoll on|off] [--no-beam] [--no-go]
        [--http-server PATH] [--no-nginx] [--wrk-threads N] [--wrk-connections N]
        [--http-duration SECONDS] [--http-runs N] [--c2c-floor PATH]
        [--sweep schedulers=1,2,... | --sweep size=1k,10k,100k,1m]
        [--runs N] [--timeout SECONDS] [--out bench/results/latest.json]

Runs the Beamline Google Benchmark binary (tuning passed as BEAMLINE_* environment
variables), the BEAM script bench/beam/bench.exs (elixir --erl "+S N") and the Go program
bench/go (GOMAXPROCS=N) with the same filter, then the HTTP workloads itself (wrk against
examples/http_server and nginx), prints one table and writes one JSON file, and beside it
a Markdown report and a PNG chart of the ratios (bench/report.py). Each Beamline workload
prints a line as it ends, as the anchors' do. With pingpong_cross_sched it also runs
c2c_floor (the core-to-core floor). --sweep runs a set of rows once per scheduler count
or per size instead, for all three, and draws a chart per row (bench/sweep.py,
bench/charts.py). --runs N runs the three harnesses N times, in turn: each figure
is then the median of the N runs, and their minimum and maximum are shown beside it.
See bench/README.md. Exits non-zero only when the Beamline binary or the Beamline HTTP
server fails; a failing anchor is reported and its column left empty.
"""

import argparse
import contextlib
import copy
import datetime
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # noqa: E402  (bench/charts.py, beside this file)
import report  # noqa: E402  (bench/report.py)
import sweep  # noqa: E402  (bench/sweep.py)
from units import (PEERS, at_least, convert, fmt_num, fmt_spread,  # noqa: E402
                   higher_is_better, ratio)

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
    ("pingpong_any_sched", "ns"),
    ("ring_1000x1000", "ns"),
    ("million_procs", "ms"),
    ("idle_process_bytes", "bytes"),
    ("send_throughput", "ns"),
    ("mailbox_20_senders", "ns"),
    ("call_with_500k_queued", "ns"),
    ("genserver_call_500k_queued", "ns"),
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
    ("many_to_one_call", "per_s"),
    ("many_to_one_call_partitioned", "per_s"),
    ("skynet_1m", "ms"),
    ("io_sleep_100k", "ms"),
    ("echo_rps", "per_s"),
    ("accept_rate", "per_s"),
    ("file_read_4k_iops", "per_s"),
    ("http_plaintext_rps", "per_s"),
    ("http_plaintext_p99", "ms"),
    ("https_plaintext_rps", "per_s"),
    ("https_plaintext_p99", "ms"),
    ("dist_call_rtt", "us"),
    ("dist_cast", "us"),
    ("dist_call_rtt_elixir_to_beamline", "us"),
    ("dist_cast_elixir_to_beamline", "us"),
    ("dist_call_rtt_beamline_to_elixir", "us"),
    ("dist_cast_beamline_to_elixir", "us"),
]
CANONICAL_UNITS = dict(CANONICAL)

# The rows whose Beamline figure goes through the rings: each carries the wake
# mechanism and SQPOLL setting it was taken with.
IO_WORKLOADS = ["io_sleep_100k", "echo_rps", "accept_rate", "file_read_4k_iops",
                "http_plaintext_rps", "http_plaintext_p99",
                "https_plaintext_rps", "https_plaintext_p99"]
# Measured by this runner with wrk, against examples/http_server and nginx, once per
# scheme: http, and https with one self-signed certificate for both servers.
HTTP_SCHEMES = ["http", "https"]


def http_rows(scheme):
    """The (requests/s, p99) workload names of one scheme."""
    return [f"{scheme}_plaintext_rps", f"{scheme}_plaintext_p99"]


HTTP_WORKLOADS = [n for scheme in HTTP_SCHEMES for n in http_rows(scheme)]
HTTP_BODY = b"Hello, World!"

# Distribution over loopback: the BEAM's figures are two Elixir nodes (bench/beam/dist.exs
# under a private epmd), Beamline's two Beamline nodes (bench/dist_node.c); the mixed
# pairs are in the Beamline column, beside the Elixir pair's figure in the BEAM column.
DIST_WORKLOADS = ["dist_call_rtt", "dist_cast"]
DIST_MIXED = {"elixir_to_beamline": "Elixir -> Beamline", "beamline_to_elixir": "Beamline -> Elixir"}
BEAM_DIST_SCRIPT = REPO / "bench" / "beam" / "dist.exs"

# Workloads the BEAM measures in a second VM started with one scheduler (+S 1).
BEAM_SAME_SCHED = ["ctx_switch", "pingpong_same_sched"]
# Process limit for the BEAM: million_procs needs more than 1M.
BEAM_MAX_PROCS = 2_000_000

TUNING = [  # (option dest, environment variable)
    ("bind", "BEAMLINE_BIND"),
    ("reductions", "BEAMLINE_REDUCTIONS"),
    ("spin_us", "BEAMLINE_SPIN_US"),
    ("wake", "BEAMLINE_WAKE"),
    ("sqpoll", "BEAMLINE_SQPOLL"),
]


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


def default_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# argparse types
positive_int = at_least(int, 1)
non_negative_int = at_least(int, 0)


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
    p.add_argument("--sqpoll", choices=["on", "off"], default=None,
                   help="a kernel thread polls each ring's submission queue (BEAMLINE_SQPOLL)")
    p.add_argument("--http-server", default=None,
                   help="the Beamline HTTP server (default BUILD/examples/http_server)")
    p.add_argument("--no-nginx", action="store_true", help="do not run nginx")
    p.add_argument("--wrk-threads", type=positive_int, default=2)
    p.add_argument("--wrk-connections", type=positive_int, default=64)
    p.add_argument("--http-duration", type=positive_int, default=5,
                   help="seconds of each measured wrk run (default 5)")
    p.add_argument("--http-runs", type=positive_int, default=5,
                   help="measured wrk runs per server; the figure is their median (default 5)")
    p.add_argument("--c2c-floor", dest="c2c_floor", default=None,
                   help="the core-to-core floor program (default: c2c_floor beside --beamline)")
    p.add_argument("--cpu-probe", dest="cpu_probe", default=None,
                   help="the host speed probe (default: cpu_probe beside --beamline)")
    p.add_argument("--sweep", action="append", type=sweep.parse_sweep, default=[],
                   metavar="schedulers=N,...|size=N,...",
                   help="instead of the table: run a set of rows once per scheduler count "
                        "or per size (k and m suffixes) for all three, chart each row")
    p.add_argument("--no-beam", action="store_true", help="do not run the BEAM anchor")
    p.add_argument("--no-go", action="store_true", help="do not run the Go anchor")
    p.add_argument("--turns", choices=["row", "harness"], default="row",
                   help="row (default): Beamline and Go take turns row by row, each row "
                        "starting on a quiet host; harness: each runs all its rows at once")
    p.add_argument("--runs", type=positive_int, default=3,
                   help="run the three harnesses this many times, in turn; each figure is "
                        "the median of the runs, shown with their min and max (default 3)")
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


def run_captured(cmd, env=None, cwd=None, timeout=1200, on_output=None, quiet=False):
    """Run cmd with stderr passed through, return its stdout. Raise RunError on failure.

    on_output(text), if given, is called with all the stdout read so far each time more
    of it arrives, so that the caller can report progress while the program runs. quiet:
    neither the command nor its time is logged (the turns run one row per command).
    """
    shown = shlex.join(cmd)
    if not quiet:
        log(f"$ {shown}")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
    except OSError as e:
        raise RunError(f"cannot start {cmd[0]}: {e.strerror or e}")
    chunks = []
    try:
        fd = proc.stdout.fileno()
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(cmd, timeout)
            if not select.select([fd], [], [], min(left, 1.0))[0]:
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
            if on_output:
                on_output(b"".join(chunks).decode("utf-8", errors="replace"))
        proc.wait(timeout=max(0.1, t0 + timeout - time.monotonic()))
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
    if not quiet:
        log(f"  ({dt:.1f} s)")
    return b"".join(chunks).decode("utf-8", errors="replace")


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


def tuning_value(dest, v):
    """The environment value of a tuning flag."""
    if dest == "sqpoll":
        return "1" if v == "on" else "0"
    return str(v)


def beamline_env(args, n_sched):
    """The environment of every Beamline program: scheduler count and tuning."""
    env = dict(os.environ)
    env["BEAMLINE_SCHEDULERS"] = str(n_sched)
    for dest, var in TUNING:
        v = getattr(args, dest)
        if v is not None:
            env[var] = tuning_value(dest, v)
    return env


def beamline_io_settings(args, n_sched):
    """The wake mechanism and SQPOLL setting the Beamline runtime really uses.

    Asked of the binary (`--io_settings`), which probes the kernel as the runtime does;
    None when it cannot tell.
    """
    try:
        proc = subprocess.run([args.beamline, "--io_settings"], env=beamline_env(args, n_sched),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        data = None
    if not isinstance(data, dict) or "wake" not in data or "sqpoll" not in data:
        return None
    return {"wake": str(data["wake"]), "sqpoll": "on" if data["sqpoll"] else "off"}


class GbenchProgress:
    """on_output of run_captured for Google Benchmark's JSON: logs each benchmark as soon
    as its entry is printed (the binary flushes its output after each benchmark)."""

    SEPARATOR = re.compile(r"[\s,]*")

    def __init__(self, total, run, runs, who=None):
        self.total, self.run, self.runs, self.who = total, run, runs, who
        self.pos = None  # where the next entry of the "benchmarks" list starts
        self.done = 0
        self.last = time.monotonic()
        self.decoder = json.JSONDecoder()

    def __call__(self, text):
        if self.pos is None:
            m = re.search(r'"benchmarks"\s*:\s*\[', text)
            if not m:
                return
            self.pos = m.end()
        while True:
            start = self.SEPARATOR.match(text, self.pos).end()
            if not text.startswith("{", start):
                return
            try:
                entry, self.pos = self.decoder.raw_decode(text, start)
            except ValueError:
                return  # not all printed yet
            if isinstance(entry, dict):
                self.show(entry)

    def show(self, b):
        """One line per workload, as the anchors print theirs."""
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            return
        now = time.monotonic()
        self.done += 1
        where = [f"{self.done}/{self.total}" if self.total else str(self.done),
                 f"{now - self.last:.1f} s"]
        if self.runs > 1:
            where.append(f"run {self.run} of {self.runs}")
        self.last = now
        stem = str(b.get("run_name") or b.get("name", "")).split("/", 1)[0]
        if b.get("error_occurred"):
            what = f"FAILED: {b.get('error_message', 'error')}"
        elif b.get("skipped"):
            what = "skipped"
        elif isinstance(b.get("value"), (int, float)):
            what = f"{b['value']:.6g} {b.get('label', '')}"
            if isinstance(b.get("min"), (int, float)) and isinstance(b.get("max"), (int, float)):
                what += f" (min {b['min']:.6g}, max {b['max']:.6g})"
        else:
            what = "no figure"
        log(f"  {self.who + ' ' if self.who else ''}{stem}: {what} [{', '.join(where)}]")


def list_benchmarks(binary, env, bfilter, timeout):
    """The names of the benchmarks the filter selects, or None if the binary cannot say."""
    try:
        listed = subprocess.run([str(binary), "--benchmark_list_tests=true", bfilter],
                                env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None  # the real run reports it
    if listed.returncode != 0:
        return None
    return listed.stdout.decode("utf-8", errors="replace").split()


def run_beamline(args, n_sched, problems, run=(1, 1), quiet=False):
    """Return {name: (value, unit)}, or None if the binary failed. run: (which, of how
    many) of the --runs this is, for the progress lines. quiet: a row of the turns, logged
    by its progress line only."""
    binary = Path(args.beamline)
    if not binary.is_file():
        problems.append(f"Beamline: binary not found: {binary} (column left empty)")
        return None
    if not os.access(binary, os.X_OK):
        problems.append(f"Beamline: binary is not executable: {binary} (column left empty)")
        return None
    env = beamline_env(args, n_sched)
    bfilter = f"--benchmark_filter={args.filter if args.filter else '.'}"
    listed = list_benchmarks(binary, env, bfilter, args.timeout)
    if args.filter and listed == []:
        # A filter that selects none of the binary's benchmarks (only the HTTP workloads,
        # say) would make it print nothing at all.
        return {}
    cmd = [str(binary), "--benchmark_format=json", bfilter]
    if not quiet:
        log("== Beamline")
    progress = GbenchProgress(len(listed) if listed else None, *run, who="Beamline" if quiet else None)
    try:
        data = load_json_text(run_captured(cmd, env=env, timeout=args.timeout,
                                           on_output=progress, quiet=quiet))
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


def run_beam(args, n_sched, scratch, problems, max_procs=BEAM_MAX_PROCS):
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
        cmd = [elixir, "--erl", f"+S {sched} +P {max_procs}", str(BEAM_SCRIPT),
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


@contextlib.contextmanager
def private_epmd(problems, who):
    """An epmd of our own on a free loopback port, stopped on the way out: yields the
    environment that points Erlang at it (ERL_EPMD_PORT), or None if there is no epmd."""
    epmd = shutil.which("epmd")
    if not epmd:
        problems.append(f"{who}: epmd not found in PATH (erlang-base)")
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([epmd, "-port", str(port)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.02)
        else:
            problems.append(f"{who}: epmd did not come up on port {port}")
            yield None
            return
        env = dict(os.environ)
        env["ERL_EPMD_PORT"] = str(port)
        yield env
    finally:
        kill_group(proc)


def run_beam_dist(args, scratch, problems):
    """Elixir -> Elixir over loopback: {name: (value, unit)}."""
    keep = name_matcher(args.filter)
    if not any(keep(n) for n in DIST_WORKLOADS):
        return {}
    elixir = shutil.which("elixir")
    if not elixir:
        return {}  # run_beam has said so
    with private_epmd(problems, "BEAM distribution") as env:
        if env is None:
            return {}
        env["ERL_CRASH_DUMP"] = str(scratch / "erl_crash.dump")
        out_file = scratch / "beam_dist.json"
        out_file.unlink(missing_ok=True)
        cookie = f"bench{os.getpid()}{int(time.time())}"
        cmd = [elixir, "--sname", f"bench_dist_{os.getpid()}", "--cookie", cookie,
               str(BEAM_DIST_SCRIPT), "--out", str(out_file)]
        log("== BEAM, distribution (two nodes over loopback)")
        try:
            stdout = run_captured(cmd, env=env, cwd=scratch, timeout=args.timeout)
            res = read_anchor_output(out_file, stdout, "BEAM distribution")
            return {n: v for n, v in res.items() if keep(n)}
        except RunError as e:
            problems.append(f"BEAM distribution: FAILED: {e}")
            return {}


class LineServer:
    """A node that prints "ready" once it serves and stops when its stdin closes."""

    def __init__(self, label, cmd, env, cwd):
        self.label, self.cmd, self.env, self.cwd = label, cmd, env, cwd
        self.proc = None

    def __enter__(self):
        log(f"$ {shlex.join(self.cmd)}  (until its stdin closes)")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        line = b""
        deadline = time.monotonic() + 30
        # select, so that a server that never says "ready" cannot hang the run
        while time.monotonic() < deadline and self.proc.poll() is None:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                if line.strip() == b"ready":
                    return self
        raise RunError(f"{self.label}: not ready within 30 s ({line!r})")

    def __exit__(self, *exc):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            kill_group(self.proc)
        return False


def run_beamline_dist(args, scratch, problems):
    """The pairs with a Beamline node: {name: (value, unit)} for the Beamline column."""
    keep = name_matcher(args.filter)
    names = DIST_WORKLOADS + [f"{n}_{k}" for n in DIST_WORKLOADS for k in DIST_MIXED]
    if not any(keep(n) for n in names):
        return {}
    node_bin = Path(args.beamline).resolve().parent / "dist_node"
    if not node_bin.is_file():
        problems.append(f"Beamline distribution: {node_bin} not built (rows left empty)")
        return {}
    elixir = shutil.which("elixir")
    host = socket.gethostname().split(".")[0]
    cookie = f"bench{os.getpid()}{int(time.time())}"
    tag = os.getpid()
    res = {}
    with private_epmd(problems, "Beamline distribution") as env:
        if env is None:
            return {}
        env["BEAMLINE_QUIET"] = "1"

        def client(target, suffix):
            out = run_captured([str(node_bin), "client", f"bl_cli{suffix}_{tag}", cookie, target],
                               env=env, cwd=scratch, timeout=args.timeout)
            for n, v in parse_anchor(out, "dist_node").items():
                res[n + suffix] = v

        try:
            log("== Beamline, distribution (Beamline -> Beamline, Elixir -> Beamline)")
            server = f"bl_srv_{tag}"
            with LineServer("dist_node serve", [str(node_bin), "serve", server, cookie], env,
                            scratch):
                client(f"{server}@{host}", "")
                if elixir:
                    out_file = scratch / "beam_dist_to_beamline.json"
                    out_file.unlink(missing_ok=True)
                    cmd = [elixir, "--sname", f"bench_ex_cli_{tag}", "--cookie", cookie,
                           str(BEAM_DIST_SCRIPT), "--target", f"{server}@{host}",
                           "--out", str(out_file)]
                    got = read_anchor_output(out_file, run_captured(cmd, env=env, cwd=scratch,
                                                                    timeout=args.timeout),
                                             "Elixir -> Beamline")
                    for n, v in got.items():
                        res[f"{n}_elixir_to_beamline"] = v
            if elixir:
                log("== Beamline, distribution (Beamline -> Elixir)")
                server = f"bench_ex_srv_{tag}"
                cmd = [elixir, "--sname", server, "--cookie", cookie, str(BEAM_DIST_SCRIPT),
                       "--serve"]
                with LineServer("dist.exs --serve", cmd, env, scratch):
                    client(f"{server}@{host}", "_beamline_to_elixir")
        except RunError as e:
            problems.append(f"Beamline distribution: FAILED: {e}")
    return {n: v for n, v in res.items() if keep(n)}


def go_env(scratch):
    env = dict(os.environ)
    env.update({
        "GOCACHE": str(scratch / "go-cache"),
        "GOPATH": str(scratch / "go-path"),
        "GOENV": "off", "GOFLAGS": "", "GOWORK": "off", "GO111MODULE": "on",
        "GOPROXY": "off", "GOSUMDB": "off", "CGO_ENABLED": "0",
    })
    return env


def build_go(args, scratch, problems):
    """Builds the Go anchor into scratch; False (and a problem noted) when it cannot."""
    go = shutil.which("go")
    if not go:
        problems.append("Go: go not found in PATH (column left empty)")
        return False
    log("== Go")
    try:
        # Built from inside the module (bench/go has its own go.mod).
        run_captured([go, "build", "-o", str(scratch / "go_anchor"), "."], env=go_env(scratch),
                     cwd=GO_DIR, timeout=args.timeout)
    except RunError as e:
        problems.append(f"Go: build FAILED: {e}")
        return False
    return True


def run_go(args, n_sched, scratch, problems, build=True, quiet=False):
    """Return {name: (value, unit)}. build=False runs the anchor an earlier build_go built
    ({} when there is none); quiet: a row of the turns, logged by its own line only."""
    if build and not build_go(args, scratch, problems):
        return {}
    binary = scratch / "go_anchor"
    if not binary.is_file():
        return {}
    out_file = scratch / "go.json"
    out_file.unlink(missing_ok=True)
    cmd = [str(binary), "-out", str(out_file)] + (["-quiet"] if quiet else [])
    if args.filter:
        cmd.append(f"-filter={args.filter}")
    run_env = dict(os.environ)
    run_env["GOMAXPROCS"] = str(n_sched)
    try:
        stdout = run_captured(cmd, env=run_env, cwd=scratch, timeout=args.timeout, quiet=quiet)
        return read_anchor_output(out_file, stdout, "Go")
    except RunError as e:
        problems.append(f"Go: FAILED: {e}")
        return {}


# ---------------------------------------------------------------- HTTP (wrk)

# wrk calls done() once at the end; the results come back as one JSON line.
WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %.1f, ' ..
    '"p99_us": %.1f, "max_us": %.1f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

NGINX_CONF = """\
# Generated by bench/run.py for {scheme}_plaintext_*: the same answer as examples/http_server.
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port}{listen_tls};{tls}
        location /plaintext {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""
# The https server's lines in NGINX_CONF: the certificate the Beamline server gets too.
NGINX_TLS = """
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;"""

# One self-signed certificate for both https servers: an EC key on P-256, as a deployment
# that cares for speed uses (its signature is cheaper than RSA's in each handshake).
CERT_CMD = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
CERT_KIND = "self-signed, EC P-256 (openssl req -x509)"


def make_certificate(work):
    """A certificate and key in work for the https rows: (cert, key). Raises RunError."""
    cert, key = work / "cert.pem", work / "key.pem"
    cmd = CERT_CMD + ["-keyout", str(key), "-out", str(cert)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RunError(f"{shlex.join(cmd)}: {e}")
    if proc.returncode != 0 or not cert.is_file() or not key.is_file():
        raise RunError(f"{shlex.join(cmd)} failed (status {proc.returncode}): "
                       f"{proc.stderr.decode(errors='replace').strip()[-300:]!r}")
    return cert, key


def free_port():
    """A loopback port nobody listens on (a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path="/plaintext", timeout=5.0, cafile=None):
    """One GET over a fresh connection: (status, body, response bytes). Raises OSError.

    With cafile, over TLS: the server must present that (self-signed) certificate."""
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()
    with contextlib.ExitStack() as stack:
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        if cafile:
            ctx = ssl.create_default_context(cafile=str(cafile))
            s = stack.enter_context(ctx.wrap_socket(s, server_hostname="localhost"))
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("connection closed before the response's headers")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            raise OSError(f"not an HTTP status line: {lines[0]!r}")
        length = None
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        if length is None:
            raise OSError("response without Content-Length")
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("connection closed in the body")
            body += chunk
        return status, body[:length], len(head) + 4 + length


class HttpTarget:
    """A server run in its own session (process group) for the HTTP workloads.

    key is "beamline" or "nginx"; scheme "http" or "https", with cafile the certificate
    the server must present."""

    def __init__(self, key, scheme, cmd, env, port, logfile, cafile=None):
        self.key, self.scheme, self.cmd, self.env = key, scheme, cmd, env
        self.port, self.logfile, self.cafile = port, logfile, cafile
        self.label = f"{'Beamline' if key == 'beamline' else 'nginx'} {scheme}"
        self.proc = None
        self.response_bytes = None
        self.runs = []  # wrk results of the measured runs
        self.failed = None  # why its figures are not shown

    def start(self, timeout=15.0):
        log(f"$ {shlex.join(self.cmd)}")
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RunError(f"exited with status {self.proc.returncode} before it answered"
                               f"{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RunError(f"not listening on 127.0.0.1:{self.port} after "
                                   f"{timeout:.0f} s{self.log_tail()}")
                time.sleep(0.05)
        self.check()

    def check(self):
        """The answer must be 200 "Hello, World!"; the server must still be running."""
        if self.proc.poll() is not None:
            raise RunError(f"exited with status {self.proc.returncode}{self.log_tail()}")
        try:
            status, body, size = http_get(self.port, cafile=self.cafile)
        except OSError as e:
            raise RunError(f"GET /plaintext failed: {e}{self.log_tail()}")
        if status != 200 or body != HTTP_BODY:
            raise RunError(f"GET /plaintext answered {status} {body[:80]!r}, "
                           f"expected 200 {HTTP_BODY!r}")
        self.response_bytes = size

    def stop(self):
        """SIGTERM (graceful shutdown), SIGKILL to the group if it has not exited in 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log(f"  {self.label}: no exit 10 s after SIGTERM; killed")
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its workers, if any are left
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def log_tail(self):
        try:
            text = Path(self.logfile).read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"; its output ends: {text[-400:]!r}" if text else ""


def run_wrk(wrk, script, target, args, duration):
    """One wrk run against target: the dict printed by WRK_SCRIPT. Raises RunError."""
    cmd = [wrk, f"-t{args.wrk_threads}", f"-c{args.wrk_connections}", f"-d{duration}s",
           "--latency", "-s", str(script),
           f"{target.scheme}://127.0.0.1:{target.port}/plaintext"]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise RunError(f"wrk did not end: {shlex.join(cmd)}")
    out = proc.stdout.decode(errors="replace")
    m = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
    if proc.returncode != 0 or not m:
        err = (proc.stderr.decode(errors="replace") or out).strip()[-300:]
        raise RunError(f"wrk failed (status {proc.returncode}): {err!r}")
    res = json.loads(m.group(1))
    errors = {k: res[k] for k in ("connect", "read", "write", "status", "timeout") if res[k]}
    if errors or res["requests"] <= 0:
        raise RunError(f"{target.label}: wrk counted errors {errors or 'and no request'} "
                       f"(status: answers other than 2xx/3xx)")
    res["rps"] = res["requests"] * 1e6 / res["duration_us"]
    return res


def http_schemes(keep):
    """The schemes (http, https) with a selected row."""
    return [scheme for scheme in HTTP_SCHEMES if any(keep(n) for n in http_rows(scheme))]


def http_targets(args, n_sched, work, schemes, problems):
    """The servers to measure: the Beamline server and nginx once per scheme, https with
    one certificate made for both. Returns (targets, server path, nginx version)."""
    server = Path(args.http_server) if args.http_server else \
        Path(args.build_dir) / "examples" / "http_server"
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
    have_server = server.is_file() and os.access(server, os.X_OK)
    if not have_server:
        problems.append(f"HTTP: {server} not found (examples/http_server not built); "
                        "no Beamline figure")
    if not args.no_nginx and not nginx:
        problems.append("HTTP: nginx not found (Debian package nginx); no nginx figure")
    use_nginx = bool(nginx) and not args.no_nginx
    nginx_version = None
    if use_nginx:
        try:
            v = subprocess.run([nginx, "-v"], capture_output=True, timeout=10)
            nginx_version = v.stderr.decode(errors="replace").strip().split("/")[-1] or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    targets = []
    for scheme in schemes:
        cert = key = None
        if scheme == "https" and (have_server or use_nginx):
            try:
                cert, key = make_certificate(work)
            except RunError as e:
                problems.append(f"HTTPS: no certificate, https_plaintext_* not measured: {e}")
                continue
        if have_server:
            port = free_port()
            tls = ["--tls", str(cert), str(key)] if cert else []
            targets.append(HttpTarget("beamline", scheme, [str(server)] + tls + [str(port)],
                                      beamline_env(args, n_sched), port,
                                      work / f"http_server-{scheme}.log", cert))
        if use_nginx:
            port = free_port()
            home = work / f"nginx-{scheme}"
            home.mkdir()
            conf = home / "nginx.conf"
            tls = NGINX_TLS.format(cert=cert, key=key) if cert else ""
            conf.write_text(NGINX_CONF.format(scheme=scheme, workers=n_sched, dir=home,
                                              port=port, listen_tls=" ssl" if cert else "",
                                              tls=tls))
            targets.append(HttpTarget("nginx", scheme, [nginx, "-p", str(home), "-c", str(conf),
                                                        "-e", str(home / "error.log")],
                                      dict(os.environ), port, home / "nginx.log", cert))
    return targets, server, nginx_version


def run_http(args, n_sched, scratch, problems, schemes):
    """wrk against examples/http_server and nginx over each of schemes, all taking turns.

    Returns {"figures": {scheme: {"beamline": {...} or None, "nginx": {...} or None}},
    "info": {...}}, where each figure dict holds rps, p99_ms, p50_ms and response_bytes.
    A failing Beamline server sets "beamline_failed".
    """
    out = {"figures": {}, "info": None, "beamline_failed": False}
    wrk = shutil.which("wrk")
    if not wrk:
        problems.append("HTTP: wrk not found in PATH (Debian package wrk); "
                        f"{', '.join(f'{s}_plaintext_*' for s in schemes)} not measured")
        return out
    work = Path(tempfile.mkdtemp(prefix="http-", dir=scratch))
    script = work / "result.lua"
    script.write_text(WRK_SCRIPT)
    targets, server, nginx_version = http_targets(args, n_sched, work, schemes, problems)
    if not targets:
        return out

    log(f"== HTTP ({', '.join(schemes)}): wrk -t{args.wrk_threads} -c{args.wrk_connections} "
        f"-d{args.http_duration}s, {args.http_runs} runs each after a 1 s warm-up")
    t0 = time.monotonic()
    try:
        for t in targets:
            try:
                t.start()
            except RunError as e:
                t.failed = f"did not start: {e}"
        live = [t for t in targets if not t.failed]
        # Warm-up, then the measured runs, the servers taking turns so that other load
        # on the machine falls on all alike.
        for rnd in range(args.http_runs + 1):
            for t in live:
                if t.failed:
                    continue
                try:
                    res = run_wrk(wrk, script, t, args, 1 if rnd == 0 else args.http_duration)
                    t.check()
                except RunError as e:
                    t.failed = str(e)
                    continue
                if rnd > 0:
                    t.runs.append(res)
                    log(f"  {t.label}: {res['rps']:,.0f} req/s, p99 {res['p99_us'] / 1e3:.2f} ms")
    finally:
        for t in targets:
            t.stop()
    log(f"  ({time.monotonic() - t0:.1f} s)")

    for t in targets:
        figures = out["figures"].setdefault(t.scheme, {"beamline": None, "nginx": None})
        if t.failed:
            problems.append(f"HTTP: {t.label} FAILED: {t.failed}")
            if t.key == "beamline":
                out["beamline_failed"] = True
            continue
        figures[t.key] = {
            "rps": median([r["rps"] for r in t.runs]),
            "p99_ms": median([r["p99_us"] for r in t.runs]) / 1e3,
            "p50_ms": median([r["p50_us"] for r in t.runs]) / 1e3,
            "response_bytes": t.response_bytes,
            "runs": [{"rps": round(r["rps"], 1), "p99_ms": r["p99_us"] / 1e3} for r in t.runs],
        }
    if all(not t.failed for t in targets):
        shutil.rmtree(work, ignore_errors=True)  # kept otherwise: the logs are in it
    out["info"] = {
        "wrk": f"-t{args.wrk_threads} -c{args.wrk_connections} -d{args.http_duration}s",
        "runs": args.http_runs,
        "server": str(server),
        "nginx_version": nginx_version,
        "nginx_workers": n_sched if any(t.key == "nginx" for t in targets) else None,
    }
    if any(t.scheme == "https" for t in targets):
        out["info"]["certificate"] = CERT_KIND
    return out


# ---------------------------------------------------------------- table and JSON


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


def merge_runs(runs):
    """[{name: (value, unit)}] of N runs -> ({name: (median, unit)},
    {name: [min, max, n, unit, [each run's value, in run order]]})."""
    merged, spread = {}, {}
    names = []
    for res in runs:
        names += [n for n in res if n not in names]
    for n in names:
        unit = next(res[n][1] for res in runs if n in res)
        vals = [res[n][0] for res in runs if n in res and res[n][1] == unit and res[n][0] is not None]
        if not vals:
            continue
        merged[n] = (median(vals), unit)
        spread[n] = [min(vals), max(vals), len(vals), unit, vals]
    return merged, spread


def fmt_cell(r, col):
    """A table cell: the figure, with the min-max of its runs when there were several."""
    sp = (r.get("spread") or {}).get(col)
    if not sp or sp[2] <= 1:
        return fmt_num(r[col])
    return fmt_spread(r[col], convert(sp[0], sp[3], r["unit"]), convert(sp[1], sp[3], r["unit"]))


def peer_ahead(r):
    """The anchors whose figure is better than Beamline's on this row."""
    if r["beamline"] is None:
        return []
    better = (lambda a, b: a > b) if higher_is_better(r["unit"]) else (lambda a, b: a < b)
    return [c for c in ("beam", "go") if r[c] is not None and better(r[c], r["beamline"])]


def print_table(rows):
    lines = [["workload", "unit", "Beamline", "BEAM", "Go", "BEAM/Beamline", "ahead"]]
    for r in rows:
        x = ratio(r["beamline"], r["beam"], r["unit"])
        ahead = peer_ahead(r)
        lines.append([r["name"], r["unit"], fmt_cell(r, "beamline"), fmt_cell(r, "beam"),
                      fmt_cell(r, "go"), "-" if x is None else f"{x:.2f}x",
                      ", ".join(PEERS[c] for c in ahead) or "-"])
    print("\n".join(report.text_table(lines)))


def print_http(http, rows):
    """The HTTP rows side by side with nginx."""
    by_name = {r["name"]: r for r in rows}
    shown = [by_name[n] for n in HTTP_WORKLOADS if n in by_name]
    if not shown or not http.get("info"):
        return
    info = http["info"]
    against = ""
    if info["nginx_workers"]:
        against = (f"; nginx {info['nginx_version'] or '?'} with {info['nginx_workers']} "
                   f"worker process(es)")
    print(f"HTTP GET /plaintext: wrk {info['wrk']} on loopback, median of {info['runs']} "
          f"run(s) each, the servers taking turns{against}")
    if info.get("certificate"):
        print(f"https: both servers with one certificate, {info['certificate']}")
    lines = [["workload", "unit", "Beamline", "nginx", "nginx/Beamline"]]
    for r in shown:
        x = r.get("vs_nginx")
        lines.append([r["name"], r["unit"], fmt_num(r["beamline"]), fmt_num(r.get("nginx")),
                      "-" if x is None else f"{x:.2f}x"])
    print("\n".join(report.text_table(lines)))
    # The same answer over either scheme: the first scheme's figures say its size.
    figures = next(iter(http["figures"].values()), {})
    sizes = [f"{who} {figures[key]['response_bytes']} bytes" for who, key in
             (("Beamline", "beamline"), ("nginx", "nginx")) if figures.get(key)]
    if sizes:
        print(f"Response size (headers and body): {', '.join(sizes)}")
    print("nginx/Beamline: how many times better Beamline is (Beamline/nginx for req/s, "
          "nginx/Beamline for p99).")


# ---------------------------------------------------------------- sweeps and the floor


def c2c_binary(args):
    return Path(args.c2c_floor) if args.c2c_floor else Path(args.beamline).parent / "c2c_floor"


def probe_binary(args):
    return Path(args.cpu_probe) if args.cpu_probe else Path(args.beamline).parent / "cpu_probe"


@contextlib.contextmanager
def environ_set(var, value):
    """os.environ[var] = value (None: unset) for the block; every runner copies os.environ."""
    old = os.environ.get(var)
    if value is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old


def run_sweep(args, kind, values, scratch, out, problems):
    """Runs the rows of one sweep at each value for all three runtimes and draws the charts.

    Returns (its entry for latest.json or None, whether the Beamline binary failed).
    """
    rows = sweep.sweep_rows(kind, name_matcher(args.filter), args.filter)
    if rows == []:
        problems.append(f"sweep {kind}: --filter {args.filter!r} keeps none of its rows "
                        f"({', '.join(sweep.SIZE_ROWS)})")
        return None, False
    sub = copy.copy(args)
    sub.filter = sweep.exact_filter(rows) if rows is not None else args.filter
    keep = name_matcher(sub.filter)
    if any(keep(n) for n in HTTP_WORKLOADS):
        problems.append(f"sweep {kind}: the HTTP rows are not swept")
    n_default = args.schedulers or default_cpus()
    failed = False
    points = []  # per value: {name: row dict of build_rows}
    for i, v in enumerate(values):
        n_sched = v if kind == "schedulers" else n_default
        label = f"{kind}={sweep.fmt_value(kind, v)}"
        log(f"==== sweep {label} ({i + 1} of {len(values)})")
        local = []
        size = str(v) if kind == "size" else None
        # The BEAM's process limit must hold the largest ring (and the driver's helpers).
        max_procs = max(BEAM_MAX_PROCS, 2 * v) if kind == "size" else BEAM_MAX_PROCS
        with environ_set(sweep.SIZE_VAR, size):
            bl = run_beamline(sub, n_sched, local)
            if bl is None or bl.pop("__failed__", False):
                failed = True
            beam = {} if args.no_beam else run_beam(sub, n_sched, scratch, local, max_procs)
            go = {} if args.no_go else run_go(sub, n_sched, scratch, local)
        got = build_rows(keep, [("beamline", bl or {}), ("beam", beam), ("go", go)], local)
        points.append({r["name"]: r for r in got})
        problems += [f"[{label}] {p}" for p in local]

    names = []
    for pt in points:
        names += [n for n, r in pt.items() if n not in names and
                  any(r[k] is not None for k in ("beamline", "beam", "go"))]
    series = []
    specs = []
    for n in names:
        unit = next(pt[n]["unit"] for pt in points if n in pt)
        row = {"name": n, "unit": unit}
        for k in ("beamline", "beam", "go"):
            row[k] = [pt[n][k] if n in pt else None for pt in points]
        path = out.parent / f"sweep_{kind}_{n}.png"
        row["chart"] = str(path)
        specs.append(sweep.chart_spec(kind, values, row, path, not higher_is_better(unit)))
        series.append(row)
    if specs:
        log(f"== charts ({len(specs)})")
        why = charts.draw_charts(specs)
        if why:
            problems.append(f"sweep {kind}: charts not drawn: {why}; the series are in {out}")
            for row in series:
                row["chart"] = None
    config = tuning_config(args)
    config["schedulers"] = "swept" if kind == "schedulers" else n_default
    entry = {"values": values, "rows": series, "filter": sub.filter, "config": config,
             "machine": machine_info()}
    return entry, failed


def print_sweep(kind, entry):
    vals = entry["values"]
    cfg = entry["config"]
    extra = "" if kind == "schedulers" else f", {cfg['schedulers']} schedulers"
    print(f"Sweep over {kind}: {', '.join(sweep.fmt_value(kind, v) for v in vals)}{extra}")
    for row in entry["rows"]:
        better = "higher" if higher_is_better(row["unit"]) else "lower"
        print()
        print(f"{row['name']} ({row['unit']}, {better} is better)")
        lines = [[kind, "Beamline", "BEAM", "Go", "BEAM/Beamline"]]
        for i, v in enumerate(vals):
            x = ratio(row["beamline"][i], row["beam"][i], row["unit"])
            lines.append([sweep.fmt_value(kind, v), fmt_num(row["beamline"][i]),
                          fmt_num(row["beam"][i]), fmt_num(row["go"][i]),
                          "-" if x is None else f"{x:.2f}x"])
        print("\n".join(report.text_table(lines, left=(0,))))
        if row.get("chart"):
            print(f"chart: {row['chart']}")


def main_sweep(args, scratch, started):
    """--sweep: the sweeps instead of the table; merged into the JSON file's "sweeps"."""
    problems = []
    out = Path(args.out)
    kinds = {}
    for kind, values in args.sweep:  # a kind given twice: its values joined
        kinds.setdefault(kind, [])
        kinds[kind] += [v for v in values if v not in kinds[kind]]
    if args.schedulers and "schedulers" in kinds:
        problems.append("--schedulers does not apply to the scheduler sweep")
    failed = False
    entries = {}
    for kind, values in kinds.items():
        entry, f = run_sweep(args, kind, values, scratch, out, problems)
        failed = failed or f
        if entry:
            entries[kind] = entry
    result = load_previous(out)
    if not isinstance(result.get("sweeps"), dict):
        result["sweeps"] = {}
    result["sweeps"].update(entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    machine = machine_info()
    print()
    print(f"Machine: {machine['cpus']} CPUs, Linux {machine['kernel']}, {machine['date']}")
    print(f"Config: {report.config_text(tuning_config(args))}")
    for kind, entry in entries.items():
        print()
        print_sweep(kind, entry)
    print()
    print("BEAM/Beamline: how many times better Beamline is (BEAM/Beamline for ns, ms and "
          "bytes; Beamline/BEAM for rates).")
    for p in problems:
        print(f"note: {p}")
    print(f"Sweeps written to {out} (\"sweeps\"; {time.monotonic() - started:.0f} s in all).")
    if failed:
        print("Beamline run FAILED (see above).", file=sys.stderr)
        return 1
    return 0


def tuning_config(args):
    """The tuning settings of the run: {dest: value or None (the runtime's default)}."""
    config = {}
    for dest, var in TUNING:
        v = getattr(args, dest)
        if v is None and os.environ.get(var):
            v = os.environ[var]  # inherited by the Beamline binary
        if dest in ("reductions", "spin_us") and isinstance(v, str):
            try:
                v = int(v)
            except ValueError:
                pass
        if dest == "sqpoll" and v is not None and v not in ("on", "off"):
            v = "off" if v == "0" else "on"  # the runtime's reading of BEAMLINE_SQPOLL
        config[dest] = v
    return config


def machine_info():
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def load_previous(out):
    """The JSON object an earlier run left in out, or {}."""
    try:
        data = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# Each harness, and each row of the turns, starts on a quiet host: cpu_probe within
# QUIET_RATIO of the fastest it has read in this invocation.  The host slows this virtual
# machine's CPUs in spells of seconds (bench/README.md), and a row taken in one is up to
# 1.7x slower for it, whoever runs it.
QUIET_RATIO = 1.2
QUIET_WAIT_S = 15.0    # the longest wait before one start
QUIET_BUDGET_S = 240.0  # the most waited per run (--runs); later starts do not wait
QUIET_POLL_S = 0.25


class QuietGate:
    """Probes the host before a start and waits, bounded, for a slow spell to pass."""

    def __init__(self, binary, runs=1):
        self.binary = binary
        self.budget = QUIET_BUDGET_S * runs
        self.best = None
        self.waited = 0.0
        self.starts = self.delayed = self.unquiet = 0
        self.rows = {}  # the turns' probes: {row: {who: [[before, after] per run]}}

    def probe(self):
        v = sweep.run_cpu_probe(self.binary)
        if v is not None and (self.best is None or v < self.best):
            self.best = v
        return v

    def quiet(self, v):
        return v is None or v <= QUIET_RATIO * self.best

    def wait(self, last=None):
        """Returns the probe the start goes with, once quiet or out of time; last: a probe
        just taken, used instead of a new one when it was quiet."""
        self.starts += 1
        v = last if last is not None and self.quiet(last) else self.probe()
        if v is None:
            return None
        t0 = time.monotonic()
        limit = min(QUIET_WAIT_S, self.budget - self.waited)
        while not self.quiet(v) and time.monotonic() - t0 < limit:
            time.sleep(QUIET_POLL_S)
            v = self.probe()
        dt = time.monotonic() - t0
        if dt > QUIET_POLL_S / 2:
            self.delayed += 1
        self.waited += dt
        if not self.quiet(v):
            self.unquiet += 1
        return v

    def summary(self):
        return {"ratio": QUIET_RATIO, "fastest": self.best, "starts": self.starts,
                "delayed": self.delayed, "waited_s": round(self.waited, 1),
                "not_quiet": self.unquiet, "rows": self.rows}


def go_rows(scratch):
    """The Go anchor's rows (built by run_go), or None when it cannot tell."""
    try:
        out = subprocess.run([str(scratch / "go_anchor"), "-list"], capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode().split() if out.returncode == 0 else None


def turn_rows(args, n_sched, scratch, keep, go_built):
    """(rows, Beamline's, Go's): the rows Beamline and Go take turns on, in the table's
    order, then the binary's others; the HTTP and distribution rows run on their own. None
    when the Beamline binary cannot list its rows."""
    listed = list_benchmarks(Path(args.beamline), beamline_env(args, n_sched),
                             "--benchmark_filter=.", args.timeout)
    if listed is None:
        return None
    bl = [x.split("/", 1)[0] for x in listed]
    go = (go_rows(scratch) or []) if go_built else []
    own = set(HTTP_WORKLOADS) | {n for n, _ in CANONICAL if n.startswith("dist_")}
    rows = [n for n, _ in CANONICAL if (n in bl or n in go) and n not in own and keep(n)]
    rows += [n for n in bl if n not in rows and n not in own and keep(n)]
    return rows, set(bl), set(go)


def run_turns(args, n_sched, scratch, problems, run, gate, speeds, turns):
    """Beamline and Go row by row, each row on a quiet host, who goes first alternating:
    ({name: (value, unit)} of each, whether the Beamline binary failed)."""
    names, bl_has, go_has = turns
    bl, go, failed = {}, {}, False
    last = None
    for k, n in enumerate(names):
        sub = copy.copy(args)
        sub.filter = f"^{n}(/|$)"

        sides = []
        if n in bl_has:
            sides.append(("beamline", lambda: run_beamline(sub, n_sched, problems, run,
                                                           quiet=True)))
        if n in go_has:
            sides.append(("go", lambda: run_go(sub, n_sched, scratch, problems, build=False,
                                               quiet=True)))
        if k % 2:
            sides.reverse()
        for who, fn in sides:
            before = gate.wait(last)
            out = fn()
            last = gate.probe()
            speeds[who].append([before, last])
            gate.rows.setdefault(n, {}).setdefault(who, []).append([before, last])
            if who == "go":
                go.update(out or {})
            elif out is None:
                failed = True
            else:
                failed = failed or bool(out.pop("__failed__", False))
                bl.update(out)
    return bl, go, failed


def main(argv):
    args = parse_args(argv)
    n_sched = args.schedulers or default_cpus()
    build_dir = Path(args.build_dir).resolve()
    scratch = build_dir / "bench-anchors"
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if args.sweep:
        return main_sweep(args, scratch, started)
    problems = []
    if os.environ.pop(sweep.SIZE_VAR, None):
        # The table's rows are defined at their own sizes (bench/README.md).
        problems.append(f"{sweep.SIZE_VAR} from the environment ignored: it applies to "
                        "--sweep size only")

    config = {"schedulers": n_sched}
    config.update(tuning_config(args))
    keep = name_matcher(args.filter)
    # What the I/O rows are taken with, as the runtime resolves the defaults.
    io = beamline_io_settings(args, n_sched) if any(keep(n) for n in IO_WORKLOADS) else None
    if io is None and any(keep(n) for n in IO_WORKLOADS):
        io = {"wake": config["wake"] or "default", "sqpoll": config["sqpoll"] or "off"}
        problems.append("Beamline: the binary could not tell its I/O settings; the "
                        "requested ones are shown")
    if io is not None:
        config["io"] = io

    # The core-to-core floor, before the benchmarks and again after them (it spins two
    # CPUs for about a second each time).
    floor = None
    if keep("pingpong_cross_sched"):
        log("== core-to-core floor")
        floor, why = sweep.run_c2c_floor(c2c_binary(args))
        if why:
            problems.append(f"core-to-core floor not measured: {why}")

    # With --runs N the three take turns, so that a noisy minute hits all of them alike.
    bls, beams, gos = [], [], []
    # With several runs, the floor again before each one: on a virtual machine the two
    # CPUs move on the host, and a run's cross-core rows follow the floor it ran on.
    run_floors = []
    run_mailbox = []  # the mailbox round trip measured with each of them
    # The host's speed before and after each harness (sweep.speed_line).
    speeds = {"beamline": [], "beam": [], "go": []}

    gate = QuietGate(probe_binary(args), args.runs)

    def probed(harness, fn):
        before = gate.wait()
        out = fn()
        speeds[harness].append([before, gate.probe()])
        return out

    # Built once for all runs and turns.
    go_built = not args.no_go and build_go(args, scratch, problems)
    turns = None  # the rows of the turns (turn_rows), None: each harness runs all at once
    if args.turns == "row":
        turns = turn_rows(args, n_sched, scratch, keep, go_built)
        if turns is None:
            problems.append("the Beamline binary could not list its rows: each harness ran "
                            "all of its rows at once (--turns harness)")
    config["turns"] = "harness" if turns is None else "row"
    beamline_failed = False
    for i in range(args.runs):
        if args.runs > 1:
            log(f"== run {i + 1} of {args.runs}")
            if floor is not None:
                f, _ = sweep.run_c2c_floor(c2c_binary(args))
                run_floors.append(f["ns_one_way_min"] if f else None)
                run_mailbox.append(f.get("mailbox_ns_round_trip_min") if f else None)
        def beamline_side():
            bl = run_beamline(args, n_sched, problems, (i + 1, args.runs))
            failed = bl is None or bool(bl.pop("__failed__", False))
            bl = dict(bl or {})
            bl.update(run_beamline_dist(args, scratch, problems))
            return bl, failed

        def beam_side():
            beam = run_beam(args, n_sched, scratch, problems)
            beam.update(run_beam_dist(args, scratch, problems))
            return beam

        if turns is None:
            bl, failed = probed("beamline", beamline_side)
            beams.append({} if args.no_beam else probed("beam", beam_side))
            gos.append({} if args.no_go else
                       probed("go", lambda: run_go(args, n_sched, scratch, problems,
                                                   build=False)))
        else:
            # The BEAM, far behind on every row, runs all of its rows at once (it takes
            # seconds to start); Beamline and Go, close on some, take turns row by row.
            beams.append({} if args.no_beam else probed("beam", beam_side))
            log("== Beamline and Go, row by row")
            bl, go, failed = run_turns(args, n_sched, scratch, problems, (i + 1, args.runs),
                                       gate, speeds, turns)
            if any(keep(n) for n in DIST_WORKLOADS):
                bl.update(probed("beamline", lambda: run_beamline_dist(args, scratch, problems)))
            gos.append(go)
        beamline_failed = beamline_failed or failed
        bls.append(bl)
    (bl, bl_spread), (beam, beam_spread), (go, go_spread) = (
        merge_runs(bls), merge_runs(beams), merge_runs(gos))
    spreads = {"beamline": bl_spread, "beam": beam_spread, "go": go_spread}
    # A mixed pair is compared with the Elixir pair (the goal: no slower than it).
    for n in DIST_WORKLOADS:
        for k in DIST_MIXED:
            if n in beam and f"{n}_{k}" in bl:
                beam[f"{n}_{k}"] = beam[n]
    if floor is not None:
        log("== core-to-core floor, again")
        again, why = sweep.run_c2c_floor(c2c_binary(args))
        if why:
            problems.append(f"core-to-core floor, second measurement: {why}")
        floor = sweep.merge_floors(floor, again)
        if run_floors:
            floor["min_per_run"] = run_floors
        if any(v is not None for v in run_mailbox):
            floor["mailbox_min_per_run"] = run_mailbox
    schemes = http_schemes(keep)
    http = run_http(args, n_sched, scratch, problems, schemes) if schemes else {}
    beamline_failed = beamline_failed or bool(http.get("beamline_failed"))

    def http_figures(key):
        figures = {}
        for scheme, by_key in http.get("figures", {}).items():
            f = by_key.get(key)
            if f:
                rps, p99 = http_rows(scheme)
                figures.update({rps: (f["rps"], "per_s"), p99: (f["p99_ms"], "ms")})
        return figures

    bl_all = dict(bl or {})
    bl_all.update({n: v for n, v in http_figures("beamline").items() if keep(n)})
    nginx = {n: v for n, v in http_figures("nginx").items() if keep(n)}
    rows = build_rows(keep, [("beamline", bl_all), ("beam", beam), ("go", go),
                             ("nginx", nginx)], problems)
    if args.runs > 1:
        for r in rows:
            r["spread"] = {c: spreads[c][r["name"]] for c in spreads if r["name"] in spreads[c]}

    machine = machine_info()
    workloads = []
    floor_line = local_line = None
    for r in rows:
        w = {"name": r["name"], "unit": r["unit"], "beamline": r["beamline"],
             "beam": r["beam"], "go": r["go"]}
        if r.get("spread"):
            # min and max of the runs each figure is the median of, in the row's unit
            w["spread"] = {c: {"min": convert(sp[0], sp[3], r["unit"]),
                               "max": convert(sp[1], sp[3], r["unit"]), "runs": sp[2],
                               "values": [convert(v, sp[3], r["unit"]) for v in sp[4]]}
                           for c, sp in r["spread"].items()}
        ahead = peer_ahead(r)
        if ahead:
            w["peer_ahead"] = ahead
        if r["name"] in HTTP_WORKLOADS:
            r["vs_nginx"] = ratio(r["beamline"], r["nginx"], r["unit"])
            w["nginx"] = r["nginx"]
            w["vs_nginx"] = r["vs_nginx"]  # how many times better Beamline is
        if r["name"] in IO_WORKLOADS and io is not None:
            w["io"] = io
        if r["name"] == "pingpong_same_sched" and floor is not None:
            # Round trip / the one-core round trip, per runtime.
            local = sweep.local_multiples(floor, r)
            if local:
                w["vs_local_floor"] = local
                local_line = sweep.local_line(floor, local)
        if r["name"] == "pingpong_cross_sched" and floor is not None:
            # Round trip / one-way floor, per runtime.
            w["vs_c2c_floor"] = sweep.c2c_multiples(floor, r)
            floor_line = sweep.c2c_line(floor, w["vs_c2c_floor"])
        workloads.append(w)
    result = {"workloads": workloads, "config": config, "machine": machine}
    if args.runs > 1:
        result["runs"] = args.runs
    if floor is not None:
        result["c2c_floor"] = floor
    speeds = {h: runs for h, runs in speeds.items() if runs}
    if any(v is not None for runs in speeds.values() for pair in runs for v in pair):
        result["host_speed"] = speeds
        result["quiet_gate"] = gate.summary()
    if http.get("info"):
        # The http scheme's runs beside the settings, the https scheme's under "https".
        result["http"] = dict(http["info"])
        for scheme, by_key in http["figures"].items():
            into = result["http"] if scheme == "http" else result["http"].setdefault(scheme, {})
            into.update({key: f for key, f in by_key.items() if f})
    out = Path(args.out)
    # The sweeps of earlier runs stay (each carries its own date and settings).
    previous = load_previous(out).get("sweeps")
    if isinstance(previous, dict) and previous:
        result["sweeps"] = previous
    result["problems"] = problems
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    # Then the report beside it: the JSON file is there even if drawing goes wrong.
    log("== report")
    md, png, no_chart = report.write_report(result, out)

    print()
    print(f"Machine: {machine['cpus']} CPUs, Linux {machine['kernel']}, {machine['date']}")
    print(f"Config: {report.config_text(config)}  (BEAM +S {n_sched}, Go GOMAXPROCS={n_sched}; "
          f"same-scheduler workloads on 1)")
    if io is not None:
        print(f"I/O rows ({', '.join(n for n in IO_WORKLOADS if keep(n))}) taken with: "
              f"wake={io['wake']}, sqpoll={io['sqpoll']}")
    print()
    print_table(rows)
    print()
    print("BEAM/Beamline: how many times better Beamline is (BEAM/Beamline for ns, ms and "
          "bytes; Beamline/BEAM for rates: units with '/' or 'per_'). ahead: the anchors "
          "better than Beamline on that row.")
    if args.runs > 1:
        print(f"Each figure is the median of {args.runs} runs, taken in turn; [min-max] of "
              "those runs beside it.")
    if floor_line:
        print(floor_line)
    if local_line:
        print(local_line)
    if result.get("host_speed"):
        print(sweep.speed_line(result["host_speed"], result.get("quiet_gate")))
    if http.get("info"):
        print()
        print_http(http, rows)
    for p in problems:
        print(f"note: {p}")
    if no_chart:
        print(f"note: no chart: {no_chart}")
    print(f"Results written to {out}, the report to {md}" + (f" and {png}" if png else "") +
          f" ({time.monotonic() - started:.0f} s in all).")
    if beamline_failed:
        print("Beamline run FAILED (see above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
