#!/usr/bin/env python3
"""Compare two results files of bench/run.py: what got faster or slower.

    python3 bench/compare.py OLD.json NEW.json [--peers] [--threshold PCT]
        [--fail-on-slower]

For each workload in both files: the old and the new figure, the change in percent and a
verdict. A change counts only when it is larger than the run-to-run spread: where both
figures carry the [min-max] of their runs (`spread`, written by run.py --runs N), when
the two ranges do not overlap; else when it passes --threshold (default 5%), and lies
outside the one range there is. --peers compares the BEAM's, Go's and nginx's figures
too. Exits 0, or 1 with --fail-on-slower when a row got slower, or 2 when a file cannot
be read. See bench/README.md.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (bench/report.py, beside this file)
from units import TIME_UNITS, at_least, fmt_num, fmt_spread, higher_is_better  # noqa: E402

NOISE = "within noise"


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Compare two results files of bench/run.py: what got faster or slower.")
    p.add_argument("old", metavar="OLD.json")
    p.add_argument("new", metavar="NEW.json")
    p.add_argument("--peers", action="store_true",
                   help="compare the BEAM's, Go's and nginx's figures too")
    p.add_argument("--threshold", type=at_least(float, 0.0), default=5.0, metavar="PCT",
                   help="without a spread on both sides, a change counts when it passes "
                        "PCT percent (default 5)")
    p.add_argument("--fail-on-slower", action="store_true",
                   help="exit with status 1 when a row got slower beyond the noise")
    return p.parse_args(argv)


def words(unit):
    """(better, worse): "faster"/"slower" for times and rates, else "smaller"/"larger"."""
    if unit in TIME_UNITS or higher_is_better(unit):
        return "faster", "slower"
    return "smaller", "larger"


def spread_of(w, col):
    """(min, max) of the runs the column's figure is the median of, or None."""
    sp = (w.get("spread") or {}).get(col)
    if not sp or sp.get("runs", 1) <= 1 or sp.get("min") is None or sp.get("max") is None:
        return None
    return sp["min"], sp["max"]


def verdict(old, new, unit, old_spread, new_spread, threshold):
    """(change in percent or None, verdict): faster, slower (smaller, larger) or within
    noise. With both spreads, a change counts when the ranges do not overlap; else when
    it passes the threshold and each figure lies outside the other side's range."""
    change = (new - old) / old * 100 if old else None
    if old_spread and new_spread:
        real = old_spread[1] < new_spread[0] or new_spread[1] < old_spread[0]
    else:
        real = change is not None and abs(change) > threshold
        for sp, v in ((old_spread, new), (new_spread, old)):
            if sp and sp[0] <= v <= sp[1]:
                real = False
    if not real or new == old:
        return change, NOISE
    better, worse = words(unit)
    return change, better if (new > old) == higher_is_better(unit) else worse


def compare(old, new, columns, threshold):
    """Returns (table lines, notes, counts of each verdict)."""
    old_rows = {w["name"]: w for w in old["workloads"]}
    new_rows = {w["name"]: w for w in new["workloads"]}
    lines, notes, counts = [], [], {}
    for name, nw in new_rows.items():
        ow = old_rows.get(name)
        if ow is None:
            continue
        if ow["unit"] != nw["unit"]:
            notes.append(f"{name}: unit {ow['unit']!r} in OLD, {nw['unit']!r} in NEW; "
                         "not compared")
            continue
        for col in columns:
            o, n = ow.get(col), nw.get(col)
            if o is None and n is None:
                continue
            if o is None or n is None:
                notes.append(f"{name}: no {report.COLUMNS[col]} figure in "
                             f"{'OLD' if o is None else 'NEW'}")
                continue
            osp, nsp = spread_of(ow, col), spread_of(nw, col)
            change, v = verdict(o, n, nw["unit"], osp, nsp, threshold)
            counts[v] = counts.get(v, 0) + 1
            lines.append([name, nw["unit"], report.COLUMNS[col],
                          fmt_spread(o, *osp) if osp else fmt_num(o),
                          fmt_spread(n, *nsp) if nsp else fmt_num(n),
                          "-" if change is None else f"{change:+.1f}%", v])
    for label, a, b in (("OLD", old_rows, new_rows), ("NEW", new_rows, old_rows)):
        only = [n for n in a if n not in b]
        if only:
            notes.append(f"only in {label}: {', '.join(only)}")
    return lines, notes, counts


def describe(label, path, result):
    """One line on a file: when, where and with what settings its figures were taken."""
    m = result.get("machine", {})
    runs = result.get("runs", 1)
    text = (f"{label}: {path}, {m.get('date', '?')}, {m.get('cpus', '?')} CPUs, "
            f"Linux {m.get('kernel', '?')}; {report.config_text(result.get('config', {}))}")
    return text + (f"; median of {runs} runs" if runs > 1 else "; one run")


def main(argv):
    args = parse_args(argv)
    try:
        old, new = report.load_results(args.old), report.load_results(args.new)
    except ValueError as e:
        print(f"compare.py: {e}", file=sys.stderr)
        return 2
    print(describe("OLD", args.old, old))
    print(describe("NEW", args.new, new))
    oc, nc = old.get("config", {}), new.get("config", {})
    differ = [f"{k} {oc.get(k)} -> {nc.get(k)}" for k in sorted(set(oc) | set(nc))
              if k != "io" and oc.get(k) != nc.get(k)]
    columns = list(report.COLUMNS) if args.peers else ["beamline"]
    lines, notes, counts = compare(old, new, columns, args.threshold)
    if differ:
        notes.insert(0, f"the settings differ: {', '.join(differ)}")
    print()
    if lines:
        header = ["workload", "unit", "runtime", "old", "new", "change", "verdict"]
        print("\n".join(report.text_table([header] + lines, left=(0, 1, 2, 6))))
    else:
        print("No workload has a figure in both files.")
    print()
    summary = ", ".join(f"{counts[v]} {v}" for v in sorted(counts))
    print(f"{summary or 'nothing'} (of {len(lines)} compared). A change counts when the "
          f"[min-max] ranges of the runs (--runs) do not overlap; without a range on both "
          f"sides, when it passes {args.threshold:g}%.")
    for n in notes:
        print(f"note: {n}")
    slower = [l[0] if l[2] == "Beamline" else f"{l[0]} ({l[2]})" for l in lines
              if l[6] in ("slower", "larger")]
    if args.fail_on_slower and slower:
        print(f"compare.py: slower beyond the noise: {', '.join(slower)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
