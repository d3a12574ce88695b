"""
Push notifications end to end: the real `twistd -n convergence` with the
test app server (tests/pushapp.py) deployed on push.localhost by its
configuration file, and slixmpp as carol and bob over STARTTLS on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.accounts import Accounts
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_push import SqlitePushStore

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).with_name("slixmpp_push.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlixmppPushTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(self.mktemp()).resolve()
        self.data = self.work / "data"
        self.data.mkdir(parents=True)
        self.record = self.work / "pushes.jsonl"
        self.port = free_port()
        (self.work / "convergence.toml").write_text(f"""
data_dir = "{self.data}"

[listen]
c2s_port = {self.port}
c2s_tls_port = {free_port()}
sip_port = 0
http_port = 0

[xmpp]
# a second push would go out at once, not be held back
push_min_interval = 0

[apps.pushservice]
module = "tests.pushapp"
settings = {{ record = "{self.record}" }}
""")
        store = SqliteAccountStore(self.data / "convergence.sqlite3")
        accounts = Accounts(store, 4096)
        accounts.add("carol@localhost", "carol-pw")
        accounts.add("bob@localhost", "builder")
        store.close()

    def start_twistd(self) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = self.work / "twistd.log"
        with open(self.log, "wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
                 "--config", str(self.work / "convergence.toml")],
                cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop, proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return proc
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.fail("server did not start: " + self.log.read_text()[-3000:])
                time.sleep(0.1)

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def test_push_while_away_and_none_after_disable(self) -> None:
        """carol enables push and leaves; bob's message is published to the
        app server with count and sender (no body); carol gets it from
        offline storage, disables push, and the next message is not pushed."""
        proc = self.start_twistd()
        run = subprocess.run(
            [sys.executable, str(SCENARIO), str(self.port),
             str(self.data / "tls" / "localhost.pem"), str(self.record)],
            capture_output=True, timeout=120, check=False)
        self.assertEqual(run.returncode, 0, run.stderr.decode(errors="replace")[-3000:])
        result = json.loads(run.stdout.decode().strip().splitlines()[-1])

        self.assertIn("urn:xmpp:push:0", result["account_features"])
        self.assertEqual(result["enable"], "result")
        self.assertTrue(result["pushed"], result)
        [publish] = result["records_after_first"]
        self.assertEqual((publish["from"], publish["to"], publish["node"]),
                         ("carol@localhost", "push.localhost", "token-1"))
        self.assertEqual(publish["summary"], {
            "FORM_TYPE": "urn:xmpp:push:summary", "message-count": "1",
            "last-message-sender": "bob@localhost/laptop"})
        self.assertEqual(publish["options"]["secret"], "s3cret")

        self.assertTrue(result["offline_delivered"], result)
        self.assertEqual([(m["from"], m["body"], m["delayed"]) for m in result["carol_got"]],
                         [("bob@localhost/laptop", "wake up", True)])
        self.assertEqual(result["disable"], "result")
        self.assertTrue(result["second_delivered"], result)
        self.assertEqual([m["body"] for m in result["carol_got_second"]], ["second"])
        self.assertEqual(len(result["records_at_end"]), 1, result["records_at_end"])

        self.stop(proc)
        store = SqlitePushStore(self.data / "convergence.sqlite3")
        self.addCleanup(store.close)
        self.assertEqual(store.registrations("carol", "localhost"), [])
