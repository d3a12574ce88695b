"""
Offline messages survive a crash: a real ``twistd -n convergence`` takes
messages for a logged-out user, is killed with SIGKILL, restarts, and the
user gets every message, in order, with its XEP-0203 delay stamp.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_service import BIN, free_port

SCRIPT = Path(__file__).with_name("slixmpp_offline.py")


def wait_for_port(port: int, proc: subprocess.Popen, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("twistd exited: " + proc.stderr.read().decode(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


class OfflineDurabilityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(self.mktemp())
        self.work.mkdir(parents=True)
        self.data = self.work / "convergence-data"
        for user, password in (("alice", "wonderland"), ("carol", "carol-pw")):
            subprocess.run([str(BIN / "convergencectl"), "adduser", f"{user}@localhost",
                            "--password", password], cwd=self.work, check=True,
                           capture_output=True, timeout=60)

    def start(self) -> tuple[subprocess.Popen, int]:
        port = free_port()
        proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
             "--c2s-port", str(port), "--c2s-tls-port", str(free_port()),
             "--sip-port", str(free_port()),
             "--http-port", str(free_port())],
            cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self._stop, proc)
        wait_for_port(port, proc)
        return proc, port

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
        proc.stderr.close()

    def client(self, *args: str) -> dict:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), args[0], args[1],
             str(self.data / "tls" / "localhost.pem"), *args[2:]],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    def stored(self) -> int:
        with sqlite3.connect(self.data / "convergence.sqlite3", timeout=10) as db:
            return db.execute("SELECT count(*) FROM offline_messages").fetchone()[0]

    def test_messages_survive_sigkill(self) -> None:
        proc, port = self.start()
        texts = [f"while you were out {i}" for i in range(5)]
        sent = self.client("send", str(port), "alice@localhost", "wonderland",
                           "carol@localhost", *texts)
        self.assertEqual(sent["errors"], [])
        deadline = time.monotonic() + 10
        while self.stored() < len(texts) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.stored(), len(texts))
        proc.send_signal(signal.SIGKILL)
        proc.wait(15)

        proc, port = self.start()
        got = self.client("receive", str(port), "carol@localhost", "carol-pw",
                          str(len(texts)))
        self.assertEqual([m["body"] for m in got["messages"]], texts)
        self.assertEqual({m["from"] for m in got["messages"]}, {"alice@localhost"})
        self.assertTrue(all(m["delay"] for m in got["messages"]), got)
        deadline = time.monotonic() + 10
        while self.stored() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.stored(), 0)
