"""
@xmpp/client (npm; Node) over TCP: tests/clients/js/driver.mjs runs every
scenario with two online users and a third for the offline message, and
prints its cells as JSON. The test certificate is trusted through
NODE_EXTRA_CA_CERTS; the packages come from ``npm ci`` in tests/clients/js.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.clients.runner import PASSWORD, Cell, Server, execute, failed

NAME = "@xmpp/client"
LIBRARY = "Node, xmpp.js"
ACCOUNTS = ("js-a", "js-b", "js-c")
PLAIN_ONLY = ""
HERE = Path(__file__).with_name("js")
ROOM = "js-room@conference.localhost"


def missing() -> str:
    if not shutil.which("node"):
        return "node not on PATH"
    if not (HERE / "node_modules" / "@xmpp" / "client").is_dir():
        return "npm ci not run in tests/clients/js"
    return ""


def version() -> str:
    meta = json.loads((HERE / "node_modules" / "@xmpp" / "client" / "package.json").read_text())
    _, node = execute(["node", "--version"], dict(os.environ), limit=10)
    return f"{meta['version']} (Node {node.strip()})"


def run(server: Server) -> dict[str, Cell]:
    code, out = execute(["node", "--no-warnings", str(HERE / "driver.mjs"),
                         str(server.c2s_port), "localhost", PASSWORD, *ACCOUNTS, ROOM],
                        server.env(), limit=60, cwd=HERE)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    try:
        cells = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"chat": failed(f"driver exit {code}: {out[-600:]}")}
    if "_login" in cells:
        return {"chat": failed(f"login: {cells['_login']}")}
    return {key: Cell(value["status"], value["note"]) for key, value in cells.items()}
