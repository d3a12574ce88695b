"""
python3-nbxmpp (Debian; the library under Gajim): tests/clients/nbxmpp_driver.py
drives its client API under Debian's /usr/bin/python3, which has the package
(the venv does not), and prints its cells as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.clients.runner import (
    PASSWORD,
    Cell,
    Server,
    execute,
    failed,
    package_version,
)

NAME = "nbxmpp"
LIBRARY = "Python, nbxmpp (Gajim)"
ACCOUNTS = ("nb-a", "nb-b", "nb-c")
PLAIN_ONLY = ""
PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("nbxmpp_driver.py")
ROOM = "nb-room@conference.localhost"


def missing() -> str:
    code, _ = execute([PYTHON, "-c", "import nbxmpp"], {"PATH": "/usr/bin:/bin"}, limit=20)
    return "" if code == 0 else f"{PYTHON} cannot import nbxmpp"


def version() -> str:
    code, out = execute([PYTHON, "-c", "import nbxmpp; print(nbxmpp.__version__)"],
                        {"PATH": "/usr/bin:/bin"}, limit=20)
    return (out.strip() if code == 0 else "unknown") + package_version("python3-nbxmpp")


def run(server: Server) -> dict[str, Cell]:
    env = server.env()
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    code, out = execute([PYTHON, str(SCRIPT), str(server.c2s_port), str(server.cert), PASSWORD,
                         *ACCOUNTS, ROOM, str(server.scratch("nbxmpp"))], env, limit=60)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    try:
        cells = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"chat": failed(f"driver exit {code}: {out[-600:]}")}
    if "_login" in cells:
        return {"chat": failed(f"login: {cells['_login']}")}
    return {key: Cell(value["status"], value["note"]) for key, value in cells.items()}
