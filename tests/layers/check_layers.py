#!/usr/bin/env python3
"""The tree's shape, checked: lower layers never include higher ones, and
no runtime file outgrows one concept.

Layers, lowest first: core, sched, proc, io, otp, then net and dist (both
above io; neither includes the other).  A file may include the public
headers (beamline.h, beamline/*.h), its own layer's headers and those of
any layer below it.  Files in the runtime layers stay under MAX_LINES.

Usage: check_layers.py SOURCE_DIR   (exit 1 and a list of violations on failure)
"""
import pathlib
import re
import sys

ORDER = {"core": 0, "sched": 1, "proc": 2, "io": 3, "otp": 4, "net": 5, "dist": 5}
# Layers of the same rank that must not see each other.
SIBLINGS = {("net", "dist"), ("dist", "net")}
MAX_LINES = 1000
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    files = 0
    for layer, rank in ORDER.items():
        base = root / layer
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*")):
            if f.suffix not in (".c", ".h", ".S"):
                continue
            files += 1
            rel = f.relative_to(root)
            text = f.read_text(errors="replace")
            lines = text.count("\n")
            if lines > MAX_LINES:
                problems.append(f"{rel}: {lines} lines (more than {MAX_LINES})")
            for inc in INCLUDE.findall(text):
                top = inc.split("/", 1)[0]
                if inc.startswith("beamline"):
                    continue  # the public headers
                if top not in ORDER:
                    continue  # a header next to the file, or a system one in quotes
                if ORDER[top] > rank or (layer, top) in SIBLINGS:
                    problems.append(f"{rel}: includes {inc} ({top}/ is above {layer}/)")
    if files == 0:
        problems.append(f"no sources found under {root}")
    for p in problems:
        print(p)
    print(f"checked {files} files: {'ok' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
