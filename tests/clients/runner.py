"""
The client matrix's shared runner: one real ``twistd -n convergence`` on
loopback, every client driver against it in parallel, a table of cells.

A driver is a module of this package with::

    NAME: str                      # the client, as the table names it
    LIBRARY: str                   # the XMPP library underneath
    ACCOUNTS: tuple[str, ...]      # local parts it logs in with
    PLAIN_ONLY: str                # "" or why it cannot do SCRAM
    def missing() -> str           # "" or why the client is not installed
    def version() -> str
    def run(server: Server) -> dict[str, Cell]

``run`` returns a cell for every scenario it can judge; scenarios it leaves
out are "not expressible". The login cell is not the driver's word: it is
read from the server's log (mechanism and TLS of each of the driver's
accounts). A failed cell whose scenario needs a XEP the server does not
implement yet becomes "not yet on the server" (still no pass).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import re
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from convergence.auth.accounts import Accounts
from convergence.store.sqlite import SqliteAccountStore

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOMAIN = "localhost"
PASSWORD = "matrix-pw"

PASS = "pass"
FAIL = "fail"
NOT_EXPRESSIBLE = "not expressible"
PENDING = "not yet on the server"

#: (key, column title, the spec the server must implement for it)
SCENARIOS: tuple[tuple[str, str, str], ...] = (
    ("login", "STARTTLS + SCRAM login", "RFC 6120"),
    ("roster", "roster list, add, subscription handshake", "RFC 6121"),
    ("presence", "presence seen by the other side", "RFC 6121"),
    ("chat", "chat both ways", "RFC 6121"),
    ("offline", "offline message at next login", "XEP-0160"),
    ("vcard", "vCard set and get", "XEP-0054"),
    ("muc", "room join and groupchat", "XEP-0045"),
    ("carbons", "carbons enabled", "XEP-0280"),
    ("mam", "MAM query", "XEP-0313"),
    ("upload", "HTTP upload", "XEP-0363"),
    ("sm", "stream management", "XEP-0198"),
)
KEYS = tuple(key for key, _, _ in SCENARIOS)

#: driver modules of this package, in table order
DRIVERS = ("profanity", "gosendxmpp", "sendxmpp", "nbxmpp_client", "xmppjs")


@dataclass
class Cell:
    status: str
    note: str = ""


def passed(note: str = "") -> Cell:
    return Cell(PASS, note)


def failed(note: str) -> Cell:
    return Cell(FAIL, note)


def check(ok: bool, note_ok: str, note_bad: str) -> Cell:
    return Cell(PASS, note_ok) if ok else Cell(FAIL, note_bad)


@dataclass
class Row:
    name: str
    library: str
    version: str
    cells: dict[str, Cell] = field(default_factory=dict)
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_specs() -> set[str]:
    """The RFCs and XEPs the server implements, from its feature declarations."""
    from convergence.xmpp.features import builtin_features

    return {f.spec for f in builtin_features()} | {"RFC 6120", "RFC 6121"}


class Server:
    """A ``twistd -n convergence`` in a work directory, with HTTP upload on."""

    def __init__(self, work: Path, accounts: list[str]) -> None:
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.data = work / "convergence-data"
        self.cert = self.data / "tls" / f"{DOMAIN}.pem"
        self.log = work / "twistd.log"
        self.c2s_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.data.mkdir(parents=True, exist_ok=True)
        store = SqliteAccountStore(self.data / "convergence.sqlite3")
        try:
            registry = Accounts(store, 4096)
            for local in accounts:
                registry.add(f"{local}@{DOMAIN}", PASSWORD)
        finally:
            store.close()
        (work / "convergence.toml").write_text(
            "[http_upload]\nmax_file_size = 1048576\n")

    def start(self, limit: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", f"--logfile={self.log}",
             "convergence", "--config", "convergence.toml",
             "--c2s-port", str(self.c2s_port), "--c2s-tls-port", str(free_port()),
             "--sip-port", str(free_port()), "--http-port", str(self.http_port)],
            cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + limit
        pending = [self.c2s_port, self.http_port]
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError("twistd exited: "
                                   + self.proc.stderr.read().decode(errors="replace"))
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {pending}")
            try:
                socket.create_connection(("127.0.0.1", pending[0]), timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc.stderr.close()
        self.proc = None

    def scratch(self, name: str) -> Path:
        """A directory of the work directory for one driver's files."""
        path = self.work / "clients" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def jid(self, local: str) -> str:
        return f"{local}@{DOMAIN}"

    def logins(self) -> dict[str, set[tuple[str, bool]]]:
        """Bare JID -> {(SASL mechanism, over TLS)} of every login so far."""
        found: dict[str, set[tuple[str, bool]]] = {}
        pattern = re.compile(r"(\S+) authenticated with (\S+) from \S+( over TLS)?$")
        if not self.log.exists():
            return found
        for line in self.log.read_text(errors="replace").splitlines():
            m = pattern.search(line)
            if m:
                found.setdefault(m.group(1), set()).add((m.group(2), bool(m.group(3))))
        return found

    def wait_bound(self, local: str, resource: str = "", limit: float = 10.0,
                   skip: int = 0) -> bool:
        """Wait until the log shows more than C{skip} bindings of local@domain/resource*."""
        needle = f"bound {self.jid(local)}/{resource}"
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.log.read_text(errors="replace").count(needle) > skip:
                return True
            time.sleep(0.05)
        return False

    def wait_stored(self, local: str, limit: float = 10.0) -> bool:
        """Wait until the server holds an offline message for local@domain."""
        import sqlite3

        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with sqlite3.connect(self.data / "convergence.sqlite3", timeout=10) as db:
                if db.execute("SELECT count(*) FROM offline_messages WHERE localpart = ?",
                              (local,)).fetchone()[0]:
                    return True
            time.sleep(0.05)
        return False

    def bound_count(self, local: str, resource: str = "") -> int:
        return self.log.read_text(errors="replace").count(f"bound {self.jid(local)}/{resource}")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a client: the test certificate trusted."""
        env = dict(os.environ)
        env.update({"SSL_CERT_FILE": str(self.cert),
                    "NODE_EXTRA_CA_CERTS": str(self.cert)})
        env.update(extra)
        return env


class Background:
    """A client process whose output goes to a file, read while it runs."""

    def __init__(self, argv: list[str], env: dict[str, str], out: Path,
                 stdin: bytes | None = None, cwd: Path | None = None) -> None:
        self.out = out
        self._file = out.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._file,
                                     stderr=subprocess.STDOUT, cwd=cwd,
                                     stdin=subprocess.PIPE if stdin is not None
                                     else subprocess.DEVNULL)
        if stdin is not None:
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, needle: str, limit: float = 10.0) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return needle in self.text()
            time.sleep(0.05)
        return False

    def wait(self, limit: float = 15.0) -> int | None:
        try:
            return self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._file.close()
        return self.text()


def execute(argv: list[str], env: dict[str, str], stdin: bytes = b"",
        limit: float = 20.0, cwd: Path | None = None) -> tuple[int, str]:
    """Run a client to its end (bounded); its exit code and output."""
    try:
        done = subprocess.run(argv, env=env, input=stdin, capture_output=True,
                              timeout=limit, cwd=cwd, check=False)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        return -1, out.decode(errors="replace") + f"\n[timed out after {limit} s]"
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


WITNESS = Path(__file__).with_name("witness.py")


def start_witness(server: Server, local: str, out: Path, expect: str,
                  room: tuple[str, ...] = ()) -> Background:
    """The slixmpp peer (witness.py) logged in as local@domain, in C{room}
    (ROOM, NICK) if given, waiting for the text C{expect}."""
    peer = Background([sys.executable, str(WITNESS), str(server.c2s_port), str(server.cert),
                       server.jid(local), PASSWORD, "10", *room, "--", expect],
                      server.env(), out)
    peer.wait_for("ready", 15)
    return peer


def witness_result(peer: Background) -> dict:
    """What the witness got: {"messages": [...], "joined": True | why not}."""
    import json

    peer.wait(15)
    lines = peer.stop().strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"messages": [], "joined": None, "error": "\n".join(lines[-5:])}


def package_version(package: str) -> str:
    """" (Debian VERSION)" for an installed Debian package, else ""."""
    code, out = execute(["dpkg-query", "-W", "-f", "${Version}", package],
                        dict(os.environ), limit=10)
    return f" (Debian {out.strip()})" if code == 0 and out.strip() else ""


def fetch(url: str, limit: float = 10.0) -> bytes:
    """GET an upload URL (plain HTTP on loopback)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=limit) as answer:
        return answer.read()


def load(name: str):
    return importlib.import_module(f"tests.clients.{name}")


def login_cell(driver, server: Server) -> Cell:
    """STARTTLS + SCRAM from the server's log, for every account the driver used."""
    logins = server.logins()
    used = {local: logins.get(server.jid(local), set()) for local in driver.ACCOUNTS}
    seen = {m for ms in used.values() for m in ms}
    if not seen:
        return failed("no login in the server's log")
    if any(not tls for _, tls in seen):
        return failed("a login without TLS")
    mechanisms = sorted({m for m, _ in seen})
    if all(m.startswith("SCRAM-") for m in mechanisms):
        return passed(", ".join(mechanisms))
    if driver.PLAIN_ONLY and mechanisms == ["PLAIN"]:
        return Cell(NOT_EXPRESSIBLE, f"PLAIN over STARTTLS: {driver.PLAIN_ONLY}")
    return failed("mechanisms used: " + ", ".join(mechanisms))


def run_driver(driver, server: Server, specs: set[str]) -> Row:
    row = Row(driver.NAME, driver.LIBRARY, driver.version())
    started = time.monotonic()
    try:
        cells = driver.run(server)
    except Exception:  # noqa: BLE001 (a driver's crash is a failed row, not a lost table
        tail = traceback.format_exc().strip().splitlines()[-1]
        cells = {key: failed(f"driver error: {tail}") for key in KEYS if key != "login"}
    row.seconds = time.monotonic() - started
    for key, _, spec in SCENARIOS:
        if key == "login":
            cell = login_cell(driver, server)
        else:
            cell = cells.get(key) or Cell(NOT_EXPRESSIBLE,
                                          getattr(driver, "CANNOT", {}).get(key, ""))
        if cell.status == FAIL and spec not in specs:
            cell = Cell(PENDING, f"{spec} not implemented; client: {cell.note}")
        row.cells[key] = cell
    return row


def run_matrix(work: Path, names: tuple[str, ...] = DRIVERS) -> list[Row]:
    """Start one server, run the named drivers in parallel, return their rows."""
    drivers = [load(name) for name in names]
    absent = [f"{d.NAME}: {d.missing()}" for d in drivers if d.missing()]
    if absent:
        raise RuntimeError("clients not installed (make clients-deps): " + "; ".join(absent))
    accounts = [local for d in drivers for local in d.ACCOUNTS + getattr(d, "PEERS", ())]
    server = Server(work, accounts)
    server.start()
    specs = server_specs()
    try:
        with concurrent.futures.ThreadPoolExecutor(len(drivers)) as pool:
            futures = [pool.submit(run_driver, d, server, specs) for d in drivers]
            return [f.result() for f in futures]
    finally:
        server.stop()


def render(rows: list[Row]) -> str:
    """docs/clients.md: the header, the table of this run, then each cell's note."""
    head = (ROOT / "tests" / "clients" / "header.md").read_text()
    out = [head.rstrip("\n"), "", "## Results", "",
           "| client | library | version | " + " | ".join(t for _, t, _ in SCENARIOS) + " |",
           "|---|---|---|" + "---|" * len(SCENARIOS)]
    for row in rows:
        cells = " | ".join(f"**{row.cells[k].status}**" if row.cells[k].status == PASS
                           else row.cells[k].status for k in KEYS)
        out.append(f"| {row.name} | {row.library} | {row.version} | {cells} |")
    counts = {s: sum(r.cells[k].status == s for r in rows for k in KEYS)
              for s in (PASS, FAIL, PENDING, NOT_EXPRESSIBLE)}
    out += ["", "Totals: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".", "",
            "## What each cell checked or met", ""]
    titles = {key: title for key, title, _ in SCENARIOS}
    for row in rows:
        out += [f"### {row.name}", ""]
        for key in KEYS:
            cell = row.cells[key]
            note = cell.note.replace("\n", " ").strip()
            out.append(f"- {titles[key]}: {cell.status}" + (f" — {note}" if note else ""))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
