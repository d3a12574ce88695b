"""
The client matrix (tests/clients/): profanity, go-sendxmpp, sendxmpp,
nbxmpp and @xmpp/client against one real ``twistd -n convergence``; the
run rewrites docs/clients.md. Every cell a client can express passes, or is
"not yet on the server" because the server does not declare the XEP it
needs; what each client cannot express is pinned here, so a driver that
stops trying shows up as a change.

The runner's own rules (login from the log, pending only for missing
specs, the table) are tested first on a fake driver.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import types
from functools import lru_cache
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.clients import runner
from tests.clients.runner import FAIL, NOT_EXPRESSIBLE, PASS, PENDING, Cell

#: what each client cannot do (beyond what the server lacks)
NOT_EXPRESSIBLE_BY = {
    "profanity": {"vcard"},
    "go-sendxmpp": {"login", "roster", "presence", "vcard", "carbons", "mam", "sm"},
    "sendxmpp": {"login", "roster", "presence", "chat", "vcard", "carbons", "mam",
                 "upload", "sm"},
    "nbxmpp": set(),
    "@xmpp/client": set(),
}


@lru_cache(maxsize=1)
def matrix() -> dict[str, runner.Row]:
    """One run of every client (shared by the tests of this module); it
    writes docs/clients.md."""
    work = Path(tempfile.mkdtemp(prefix="client-matrix-"))
    atexit.register(shutil.rmtree, work, True)
    rows = runner.run_matrix(work)
    (runner.ROOT / "docs" / "clients.md").write_text(runner.render(rows))
    return {row.name: row for row in rows}


class ClientMatrixTests(SynchronousTestCase):
    def check_client(self, name: str) -> None:
        row = matrix()[name]
        specs = runner.server_specs()
        problems = []
        for key, _, spec in runner.SCENARIOS:
            cell = row.cells[key]
            if cell.status == FAIL:
                problems.append(f"{key}: {cell.note}")
            elif cell.status == PENDING and spec in specs:
                problems.append(f"{key}: pending although the server has {spec}")
        self.assertEqual(problems, [], f"{name} {row.version}")
        self.assertEqual({k for k, c in row.cells.items() if c.status == NOT_EXPRESSIBLE},
                         NOT_EXPRESSIBLE_BY[name])
        self.assertTrue(any(c.status == PASS for c in row.cells.values()))

    def test_profanity(self) -> None:
        """profanity in tmux: SCRAM login, roster and the handshake, presence,
        chat, offline, /sendfile; carbons, MAM, MUC, SM wait for the server."""
        self.check_client("profanity")

    def test_go_sendxmpp(self) -> None:
        """go-sendxmpp: chat both ways as sender and listener, offline, -h upload."""
        self.check_client("go-sendxmpp")

    def test_sendxmpp(self) -> None:
        """sendxmpp: a chat it sends is received; offline delivery."""
        self.check_client("sendxmpp")

    def test_nbxmpp(self) -> None:
        """nbxmpp's client API: every scenario."""
        self.check_client("nbxmpp")

    def test_xmppjs(self) -> None:
        """@xmpp/client over TCP: every scenario."""
        self.check_client("@xmpp/client")

    def test_table_written(self) -> None:
        """docs/clients.md is this run's table, one row per client."""
        rows = matrix()
        text = (runner.ROOT / "docs" / "clients.md").read_text()
        self.assertEqual(text, runner.render(list(rows.values())))
        for row in rows.values():
            self.assertIn(f"| {row.name} | {row.library} | {row.version} |", text)


def fake_driver(cells: dict[str, Cell], plain_only: str = "") -> types.SimpleNamespace:
    return types.SimpleNamespace(
        NAME="fake", LIBRARY="none", ACCOUNTS=("fake-a",), PLAIN_ONLY=plain_only,
        CANNOT={"vcard": "no vCard"}, version=lambda: "1.0", run=lambda server: cells)


class RunnerRuleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = runner.Server(Path(self.mktemp()), ["fake-a"])

    def log(self, *lines: str) -> None:
        self.server.log.write_text("".join(
            f"2026-01-01T00:00:00+0000 [c2s#info] {line}\n" for line in lines))

    def test_login_scram_over_tls_passes(self) -> None:
        self.log("fake-a@localhost authenticated with SCRAM-SHA-256 from 127.0.0.1:1 over TLS")
        cell = runner.login_cell(fake_driver({}), self.server)
        self.assertEqual((cell.status, cell.note), (PASS, "SCRAM-SHA-256"))

    def test_login_plain(self) -> None:
        """PLAIN is not expressible for a client without SCRAM, a failure otherwise."""
        self.log("fake-a@localhost authenticated with PLAIN from 127.0.0.1:1 over TLS")
        self.assertEqual(runner.login_cell(fake_driver({}, "no SCRAM"), self.server).status,
                         NOT_EXPRESSIBLE)
        self.assertEqual(runner.login_cell(fake_driver({}), self.server).status, FAIL)

    def test_login_without_tls_or_at_all_fails(self) -> None:
        self.log("fake-a@localhost authenticated with SCRAM-SHA-1 from 127.0.0.1:1")
        self.assertEqual(runner.login_cell(fake_driver({}), self.server).status, FAIL)
        self.log("other@localhost authenticated with SCRAM-SHA-1 from 127.0.0.1:1 over TLS")
        self.assertEqual(runner.login_cell(fake_driver({}), self.server).note,
                         "no login in the server's log")

    def test_pending_only_for_missing_specs(self) -> None:
        """A failure becomes "not yet on the server" only when the server lacks
        the scenario's spec; a pass stays a pass; what the driver leaves out
        is not expressible, with its reason."""
        self.log("fake-a@localhost authenticated with SCRAM-SHA-1 from 127.0.0.1:1 over TLS")
        driver = fake_driver({"muc": Cell(FAIL, "join: remote-server-not-found"),
                              "chat": Cell(FAIL, "lost"), "mam": Cell(PASS, "ok")})
        row = runner.run_driver(driver, self.server, {"RFC 6120", "RFC 6121"})
        self.assertEqual(row.cells["muc"].status, PENDING)
        self.assertIn("XEP-0045", row.cells["muc"].note)
        self.assertEqual(row.cells["chat"].status, FAIL)
        self.assertEqual(row.cells["mam"].status, PASS)
        self.assertEqual((row.cells["vcard"].status, row.cells["vcard"].note),
                         (NOT_EXPRESSIBLE, "no vCard"))
        row = runner.run_driver(driver, self.server, {"XEP-0045"})
        self.assertEqual(row.cells["muc"].status, FAIL)

    def test_driver_crash_fails_its_row(self) -> None:
        def boom(server):
            raise ValueError("driver bug")

        driver = fake_driver({})
        driver.run = boom
        row = runner.run_driver(driver, self.server, runner.server_specs())
        self.assertEqual(row.cells["chat"].status, FAIL)
        self.assertIn("driver bug", row.cells["chat"].note)

    def test_render(self) -> None:
        row = runner.Row("fake", "none", "1.0", {k: Cell(PASS, "a|b") for k in runner.KEYS})
        text = runner.render([row])
        self.assertTrue(text.startswith("# Client matrix\n"))
        self.assertIn("| fake | none | 1.0 | **pass** | **pass** |", text)
        self.assertIn("- chat both ways: pass — a|b", text)
        self.assertIn(f"Totals: {len(runner.KEYS)} pass, 0 fail", text)
