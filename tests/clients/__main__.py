"""
``python -m tests.clients`` (``make clients``): run the client matrix
against a fresh ``twistd -n convergence`` and write docs/clients.md.
The exit status is 1 when a cell failed (``not yet on the server`` is
reported in the table, not here), 2 when a client is not installed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.clients.runner import FAIL, ROOT, render, run_matrix


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="client-matrix-"))
    try:
        rows = run_matrix(work)
    except RuntimeError as e:
        sys.stderr.write(f"clients: {e}\n")
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (ROOT / "docs" / "clients.md").write_text(render(rows))
    failures = [f"{row.name} {key}: {cell.note}" for row in rows
                for key, cell in row.cells.items() if cell.status == FAIL]
    sys.stdout.write("docs/clients.md written\n")
    for line in failures:
        sys.stdout.write(f"FAIL {line}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
