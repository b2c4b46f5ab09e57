#!/usr/bin/env python3
"""The PNG charts of the benchmark runner (matplotlib, imported only when a chart is
drawn, with the Agg backend: no display needed).

A chart is described by a spec, a JSON-ready dict whose "type" says how it is drawn:

- "lines": one line per runtime against a swept value (bench/sweep.py's chart_spec);
- "ratios": per workload, how many times better Beamline is than each peer, as
  horizontal bars on a logarithmic axis with a line at 1 (bench/report.py's
  ratio_spec).

    python3 bench/charts.py --draw-charts SPEC.json

draws the charts of a JSON list of specs: draw_charts calls it with Debian's
/usr/bin/python3 when the interpreter it runs under has no matplotlib (a virtualenv or
pyenv python3 does not see Debian's python3-matplotlib). See bench/README.md.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# One colour per runtime in every chart, whichever series are missing.
COLORS = {"Beamline": "tab:blue", "BEAM": "tab:purple", "Go": "tab:cyan", "nginx": "tab:green"}

MATPLOTLIB_HINT = ("matplotlib is missing: install Debian's python3-matplotlib "
                   "(apt-get install python3-matplotlib; `make bench` does) or "
                   "`pip install matplotlib` for this python3")


def _tick(v, _pos=None):
    """A tick label: 500, 2k, 1.5M."""
    for suffix, m in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= m:
            return f"{v / m:g}{suffix}"
    return f"{v:g}"


def _ratio_tick(v, _pos=None):
    """A tick label on a ratio axis: 0.1x, 0.5x, 1x, 20x."""
    return f"{v:g}x"


def _draw_lines(plt, ticker, s):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, ys in s["series"].items():
        pts = [(x, y) for x, y in zip(s["x"], ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label,
                    color=COLORS.get(label))
    if s["logx"]:
        ax.set_xscale("log", base=s["logx_base"])
    if s["logy"]:
        ax.set_yscale("log")
        # Ticks at 1, 2 and 5 of each decade: one decade's major tick alone says little.
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_tick))
    if s["logx"]:
        ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xticks(s["x"])
    ax.set_xticklabels(s["xticklabels"])
    ax.set_title(s["title"])
    ax.set_xlabel(s["xlabel"])
    ax.set_ylabel(s["ylabel"])
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig


def _draw_ratios(plt, ticker, s):
    """Horizontal bars, one group per workload (the first at the top), one bar per peer
    that has a ratio on the row."""
    names, series = s["rows"], s["series"]
    n = len(names)
    present = [[label for label, ys in series.items() if ys[i]] for i in range(n)]
    height = 0.8 / max(1, max(len(p) for p in present))
    pos = {label: [] for label in series}  # (y, ratio) of each series' bars
    for i, labels in enumerate(present):
        for j, label in enumerate(labels):
            pos[label].append((i + (j - (len(labels) - 1) / 2) * height, series[label][i]))
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.4 * n))
    vals = [v for ys in series.values() for v in ys if v]
    lo, hi = min(vals + [1.0]), max(vals + [1.0])
    for label, pts in pos.items():
        # From the line at 1 to the ratio: to the right where Beamline is ahead.
        ax.barh([y for y, _ in pts], [v - 1 for _, v in pts], height=height * 0.9, left=1,
                label=label, color=COLORS.get(label))
        for y, v in pts:
            ax.annotate(f"{v:.3g}x", (v, y), xytext=(3 if v >= 1 else -3, 0),
                        textcoords="offset points", va="center",
                        ha="left" if v >= 1 else "right", fontsize=7)
    ax.set_xscale("log")
    # Room for the labels beyond the longest bars on either side of 1.
    ax.set_xlim(min(lo, 1.0) / 3, max(hi, 1.0) * 3)
    if max(hi, 1.0) / min(lo, 1.0) < 1e3:
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_ratio_tick))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(n))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # the first row at the top
    ax.set_title(s["title"])
    ax.set_xlabel(s["xlabel"])
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.legend(loc="best")
    return fig


DRAW = {"lines": _draw_lines, "ratios": _draw_ratios}


def _draw(specs):
    """Draws every spec with matplotlib (which must be importable)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    for s in specs:
        fig = DRAW[s.get("type", "lines")](plt, matplotlib.ticker, s)
        fig.tight_layout()
        Path(s["path"]).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(s["path"], dpi=100)
        plt.close(fig)


def draw_charts(specs):
    """Draws the charts: in this interpreter when it has matplotlib, else with Debian's
    /usr/bin/python3 if that one has it. Returns None, or why nothing was drawn."""
    if not specs:
        return None
    if importlib.util.find_spec("matplotlib") is not None:
        try:
            _draw(specs)
            return None
        except Exception as e:  # a broken matplotlib must not lose the figures
            return f"drawing failed: {type(e).__name__}: {e}"
    system = "/usr/bin/python3"
    if (os.access(system, os.X_OK)
            and os.path.realpath(system) != os.path.realpath(sys.executable)):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(specs, f)
            spec_file = f.name
        try:
            proc = subprocess.run([system, str(Path(__file__).resolve()), "--draw-charts",
                                   spec_file], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=300)
            if proc.returncode == 0:
                return None
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            if proc.returncode != 3:
                return f"drawing with {system} failed: {err[-1] if err else proc.returncode}"
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"drawing with {system} failed: {e}"
        finally:
            os.unlink(spec_file)
    return MATPLOTLIB_HINT


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--draw-charts":
        if importlib.util.find_spec("matplotlib") is None:
            print(MATPLOTLIB_HINT, file=sys.stderr)
            sys.exit(3)
        _draw(json.loads(Path(sys.argv[2]).read_text()))
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
