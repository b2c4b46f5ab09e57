#!/usr/bin/env python3
"""The report of a benchmark run beside its JSON file: RESULTS.md (machine, settings, the
table, the problems, the chart) and RESULTS.png (per workload, how many times better
Beamline is than each peer). bench/run.py writes them after latest.json;

    python3 bench/report.py [bench/results/latest.json]

writes them again from a JSON file that run.py wrote. See bench/README.md.
"""

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # noqa: E402  (bench/charts.py, beside this file)
import sweep  # noqa: E402  (bench/sweep.py)
from units import PEERS, fmt_num, fmt_spread, ratio  # noqa: E402  (bench/units.py)

REPO = Path(__file__).resolve().parent.parent
# The columns a row may have, with the names they are shown under.
COLUMNS = {"beamline": "Beamline", **PEERS, "nginx": "nginx"}
RATIO_NOTE = ("how many times better Beamline is than the peer (peer/Beamline for ns, ms "
              "and bytes; Beamline/peer for rates: units with '/' or 'per_'); above 1, "
              "Beamline is ahead")


def config_text(config):
    """The settings of a run on one line: "schedulers=2, bind=default, ..."."""
    return ", ".join(f"{k}={'default' if v is None else v}" for k, v in config.items()
                     if k != "io")


def peer_ratios(w):
    """{peer column: how many times better Beamline is} of a row of latest.json."""
    out = {}
    for col in COLUMNS:
        if col != "beamline":
            x = ratio(w.get("beamline"), w.get(col), w["unit"])
            if x is not None:
                out[col] = x
    return out


def ratio_spec(result, path):
    """The chart of the ratios, or None when no row has one. The rows are sorted by the
    geometric mean of their ratios: where Beamline is furthest ahead at the top."""
    rows = [(w, peer_ratios(w)) for w in result.get("workloads", [])]
    rows = [(w, r) for w, r in rows if r]
    if not rows:
        return None
    rows.sort(key=lambda wr: -sum(math.log(x) for x in wr[1].values()) / len(wr[1]))
    cols = [c for c in COLUMNS if any(c in r for _, r in rows)]
    machine = result.get("machine", {})
    return {
        "type": "ratios",
        "path": str(path),
        "title": (f"Beamline against its peers, per workload ({machine.get('cpus', '?')} CPUs, "
                  f"{machine.get('date', '?')})"),
        "xlabel": "peer / Beamline: how many times better Beamline is (log scale; "
                  "above 1: Beamline ahead)",
        "rows": [f"{w['name']} ({w['unit']})" for w, _ in rows],
        "series": {COLUMNS[c]: [r.get(c) for _, r in rows] for c in cols},
    }


def cell(w, col):
    sp = (w.get("spread") or {}).get(col)
    if not sp or sp.get("runs", 1) <= 1:
        return fmt_num(w.get(col))
    return fmt_spread(w.get(col), sp.get("min"), sp.get("max"))


def text_table(lines, left=(0, 1)):
    """A table for the terminal: lines[0] is the header, ruled off from the rest; the
    columns whose index is in left are aligned left, the others right."""
    widths = [max(len(l[i]) for l in lines) for i in range(len(lines[0]))]
    out = []
    for k, l in enumerate(lines):
        out.append(" | ".join(c.ljust(widths[i]) if i in left else c.rjust(widths[i])
                              for i, c in enumerate(l)).rstrip())
        if k == 0:
            out.append("-+-".join("-" * w for w in widths))
    return out


def md_table(header, lines, right):
    """A Markdown table; the columns whose index is in right are aligned right."""
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("--:" if i in right else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(l) + " |" for l in lines]
    return out


def markdown(result, chart=None, chart_note=None):
    """The report as Markdown text; chart: the PNG's path relative to the report."""
    machine, config = result.get("machine", {}), result.get("config", {})
    runs = result.get("runs", 1)
    n = config.get("schedulers", "?")
    out = ["# Beamline benchmarks", ""]
    out.append(f"- Run: {machine.get('date', '?')}, on {machine.get('cpus', '?')} CPUs, Linux "
               f"{machine.get('kernel', '?')}")
    out.append(f"- Config: {config_text(config)} (BEAM +S {n}, Go GOMAXPROCS={n}; "
               "same-scheduler workloads on 1)")
    io = config.get("io")
    if io:
        out.append(f"- I/O rows taken with: wake={io.get('wake')}, sqpoll={io.get('sqpoll')}")
    if runs > 1:
        out.append(f"- Each figure is the median of {runs} runs, taken in turn; [min-max] of "
                   "those runs beside it")
    out.append("")
    if chart:
        out += [f"![peer / Beamline per workload]({chart})", ""]
    elif chart_note:
        out += [f"No chart: {chart_note}.", ""]

    workloads = result.get("workloads", [])
    lines = []
    for w in workloads:
        x = peer_ratios(w)
        lines.append([f"`{w['name']}`", w["unit"], cell(w, "beamline"), cell(w, "beam"),
                      cell(w, "go")] +
                     [f"{x[c]:.2f}x" if c in x else "-" for c in PEERS] +
                     [", ".join(PEERS[c] for c in w.get("peer_ahead", [])) or "-"])
    out += md_table(["workload", "unit", "Beamline", "BEAM", "Go"] +
                    [f"{PEERS[c]}/Beamline" for c in PEERS] + ["ahead"], lines,
                    range(2, 5 + len(PEERS)))
    out.append("")
    out.append(f"Ratios: {RATIO_NOTE}. ahead: the peers better than Beamline on that row.")
    cross = next((w for w in workloads if w["name"] == "pingpong_cross_sched"), None)
    if result.get("c2c_floor") and cross and cross.get("vs_c2c_floor"):
        out += ["", sweep.c2c_line(result["c2c_floor"], cross["vs_c2c_floor"])]
    if result.get("host_speed"):
        line = sweep.speed_line(result["host_speed"], result.get("quiet_gate"))
        if line:
            out += ["", line]

    http = result.get("http")
    shown = [w for w in workloads if "vs_nginx" in w]
    if http and shown:
        against = ""
        if http.get("nginx_workers"):
            against = (f"; nginx {http.get('nginx_version') or '?'} with "
                       f"{http['nginx_workers']} worker process(es)")
        out += ["", "## HTTP", "",
                f"GET /plaintext: wrk {http.get('wrk')} on loopback, median of "
                f"{http.get('runs')} run(s) each, the servers taking turns{against}."]
        if http.get("certificate"):
            out.append(f"https: both servers with one certificate, {http['certificate']}.")
        out.append("")
        out += md_table(["workload", "unit", "Beamline", "nginx", "nginx/Beamline"],
                        [[f"`{w['name']}`", w["unit"], fmt_num(w.get("beamline")),
                          fmt_num(w.get("nginx")),
                          "-" if w.get("vs_nginx") is None else f"{w['vs_nginx']:.2f}x"]
                         for w in shown], range(2, 5))

    out += ["", "## Problems", ""]
    problems = list(result.get("problems", []))
    out += [f"- {p}" for p in problems] if problems else ["None."]
    return "\n".join(out) + "\n"


def write_report(result, json_path):
    """Writes RESULTS.png (when matplotlib is there and a row has a ratio) and RESULTS.md
    beside the JSON file. Returns (Markdown path, PNG path or None, why no chart or None)."""
    json_path = Path(json_path)
    md, png = json_path.with_suffix(".md"), json_path.with_suffix(".png")
    png.unlink(missing_ok=True)  # a chart of an earlier run must not pass for this one's
    spec = ratio_spec(result, png)
    why = charts.draw_charts([spec]) if spec else "no row has a figure for Beamline and a peer"
    if not why and not png.is_file():
        why = f"{png} was not written"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(markdown(result, None if why else png.name, why))
    return md, (None if why else png), why


def load_results(path):
    """The JSON object run.py wrote to path. Raises ValueError saying what is wrong."""
    try:
        result = json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}")
    except ValueError as e:
        raise ValueError(f"{path}: not JSON: {e}")
    if not isinstance(result, dict) or not isinstance(result.get("workloads"), list):
        raise ValueError(f'{path}: not a results file of bench/run.py (no "workloads" list)')
    for i, w in enumerate(result["workloads"]):
        if not (isinstance(w, dict) and isinstance(w.get("name"), str)
                and isinstance(w.get("unit"), str)):
            raise ValueError(f"{path}: workload {i} has no name or unit: {w!r:.100}")
        spread = w.get("spread") or {}
        if not isinstance(spread, dict):
            raise ValueError(f"{path}: {w['name']}: spread is not an object")
        for col in COLUMNS:
            sp = spread.get(col) or {}
            if not isinstance(sp, dict):
                raise ValueError(f"{path}: {w['name']}: spread of {col} is not an object")
            for what, v in [(col, w.get(col))] + [(f"{col} {k}", sp.get(k)) for k in
                                                   ("min", "max", "runs")]:
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise ValueError(f"{path}: {w['name']}: {what} is not a number: {v!r:.100}")
    return result


def main(argv):
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0]) if argv else REPO / "bench" / "results" / "latest.json"
    try:
        result = load_results(path)
    except ValueError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    md, png, why = write_report(result, path)
    print(f"Report written to {md}" + (f" and {png}" if png else f" (no chart: {why})"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
