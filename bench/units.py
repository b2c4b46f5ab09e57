"""Units of the benchmark figures, shared by bench/run.py, bench/report.py and
bench/compare.py: which way is better, conversions between time units, how a figure is
written, the ratio of Beamline to a peer, and the numbers of the command lines. See
bench/README.md.
"""

import argparse

TIME_UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# The peers' columns of latest.json, with the names they are shown under.
PEERS = {"beam": "BEAM", "go": "Go"}


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


def ratio(beamline, peer, unit):
    """How many times better Beamline is than the peer (> 1: Beamline ahead)."""
    if beamline is None or peer is None or beamline <= 0 or peer <= 0:
        return None
    return beamline / peer if higher_is_better(unit) else peer / beamline


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


def fmt_spread(value, lo, hi):
    """A figure with the min-max of the runs it is the median of: "812 [790-850]"."""
    text = fmt_num(value)
    if value is not None and lo is not None and hi is not None:
        text += f" [{fmt_num(lo)}-{fmt_num(hi)}]"
    return text


def at_least(kind, minimum):
    """An argparse type: a number of that kind (int or float) no smaller than minimum."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not {'an integer' if kind is int else 'a number'}: {text!r}")
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}: {text!r}")
        return v

    return parse
