"""
Stream management with a real client library: slixmpp's xep_0198 over
STARTTLS on loopback, the TCP connection cut with a reset.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from twisted.internet import reactor, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from convergence.auth.accounts import Accounts
from convergence.config import load_config
from convergence.service import build
from convergence.store.sqlite import SqliteAccountStore
from tests.sipp_harness import free_port

BIN = Path(sys.executable).parent

SCENARIO = Path(__file__).with_name("slixmpp_sm.py")


class SlixmppSmTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        config = load_config(overrides={"data_dir": str(data)})
        config = replace(config, xmpp=replace(config.xmpp, sm_resume_max=3.0))
        self.server = build(config, reactor)
        for jid, password in (("alice@localhost", "wonderland"),
                              ("bob@localhost", "builder"), ("carol@localhost", "carol-pw")):
            self.server.accounts.add(jid, password)
        self.port = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)
        self.hibernated: list[str] = []
        self.server.xmpp.bus.hook("c2s/hibernating",
                                  lambda stream: self.hibernated.append(str(stream.jid)))

    async def test_resume_after_reset_and_hibernation_timeout(self) -> None:
        """Every message arrives exactly once, in order, across a reset;
        another account cannot resume; after the timeout the queue is in
        offline storage and the next login receives it."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(self.port.getHost().port),
                             str(self.server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        result = json.loads(out.decode().strip().splitlines()[-1])
        self.assertTrue(result["previd"])
        self.assertNotIn("alice", result["previd"])
        self.assertTrue(result["both"], result)
        self.assertEqual(result["attached"], ["1", "2", "3"])
        self.assertTrue(result["resumed"])
        self.assertEqual(result["after_resume"], ["1", "2", "3", "4", "5", "6"])
        self.assertEqual(result["unavailable_while_detached"], [])
        self.assertEqual(result["on_resumed_stream"], [str(i) for i in range(1, 8)])
        self.assertEqual(result["carol_failures"],
                         ["{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found"])
        self.assertTrue(result["carol_enabled"])
        self.assertEqual(result["carol_bodies_end"], [])
        self.assertTrue(result["unavailable_after_timeout"])
        self.assertEqual(result["offline"], ["8", "9", "10"])
        self.assertEqual(result["offline_delayed"], [True, True, True])
        self.assertEqual(self.server.xmpp.im_store.messages("alice", "localhost", 10), [])
        # both resets were seen as connection loss: the session hibernated
        self.assertEqual(self.hibernated, ["alice@localhost/slix"] * 2)
        self.assertEqual([s for s in self.server.xmpp.sm.sessions
                          if s.jid is not None and s.jid.user == "alice"], [])


class SigkillTests(TestCase):
    """The server dies with SIGKILL while a session hibernates."""

    timeout = 120

    def setUp(self) -> None:
        self.root = Path(self.mktemp()).resolve()
        self.data = self.root / "data"
        self.data.mkdir(parents=True)
        store = SqliteAccountStore(self.data / "convergence.sqlite3")
        accounts = Accounts(store, 4096)
        accounts.add("alice@localhost", "wonderland")
        accounts.add("bob@localhost", "builder")
        store.close()
        self.log = (self.root / "twistd.log").open("wb")
        self.addCleanup(self.log.close)
        self.server: subprocess.Popen | None = None
        self.addCleanup(self.stop)

    async def start(self) -> int:
        """twistd -n convergence, c2s only; wait until it listens."""
        port = free_port()
        self.server = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
             "--data-dir", str(self.data), "--c2s-port", str(port),
             "--sip-port", "0", "--http-port", "0"],
            cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    self.fail(f"server did not start: {self.server_log()}")
                await task.deferLater(reactor, 0.05)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def server_log(self) -> str:
        self.log.flush()
        return (self.root / "twistd.log").read_bytes()[-3000:].decode(errors="replace")

    async def scenario(self, port: int, mode: str) -> dict:
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(port),
                             str(self.data / "tls" / "localhost.pem"), mode],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:] + self.server_log())
        return json.loads(out.decode().strip().splitlines()[-1])

    def held(self) -> int:
        db = sqlite3.connect(self.data / "convergence.sqlite3")
        try:
            return db.execute("SELECT COUNT(*) FROM sm_held").fetchone()[0]
        finally:
            db.close()

    async def test_nothing_taken_is_lost(self) -> None:
        """Messages the server took for a hibernating session (4-6, which
        bob saw answered) are in offline storage after a SIGKILL and a
        restart, in order; those alice acknowledged (1-3) are not."""
        port = await self.start()
        before = await self.scenario(port, "crash-before")
        self.assertEqual(before["attached"], ["1", "2", "3"])
        self.assertTrue(before["taken"])
        deadline = time.monotonic() + 10
        while self.held() < 3 and time.monotonic() < deadline:
            await task.deferLater(reactor, 0.05)
        self.assertEqual(self.held(), 3, self.server_log())
        self.server.kill()  # SIGKILL: no shutdown, no offline storage on the way out
        self.server.wait(15)
        port = await self.start()
        after = await self.scenario(port, "crash-after")
        self.assertEqual(after["offline"], ["4", "5", "6"])
        self.assertEqual(after["offline_delayed"], [True] * 3)
        self.assertEqual(self.held(), 0)
