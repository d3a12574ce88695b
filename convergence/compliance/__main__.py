"""
C{python -m convergence.compliance [--docs DIR] [--check]}: write (or,
with C{--check}, compare) C{compliance.md} and C{convergence.doap}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convergence.compliance.generate import outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convergence.compliance")
    parser.add_argument("--docs", default="docs", help="the docs directory (default: docs)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files differ from what would be written")
    args = parser.parse_args(argv)
    docs = Path(args.docs)
    stale = []
    for name, text in outputs().items():
        path = docs / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            sys.stdout.write(f"wrote {path}\n")
    if stale:
        sys.stderr.write("out of date (run make compliance): " + ", ".join(stale) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
