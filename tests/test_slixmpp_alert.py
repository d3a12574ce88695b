"""
HTTP alerts over real sockets: a real ``twistd -n convergence`` with its
token from CONVERGENCE_ALERT_TOKEN (as ``make run`` gets it), slixmpp
users in a room and offline, alerts POSTed with urllib
(tests/slixmpp_alert.py); the token never reaches the server's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_offline_durable import wait_for_port
from tests.test_service import BIN, free_port

SCRIPT = Path(__file__).with_name("slixmpp_alert.py")
ROOM = "ops@conference.localhost"
TOKEN = "integration-token-5f1c2a9e"


class SlixmppAlertTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(self.mktemp())
        self.work.mkdir(parents=True)
        self.data = self.work / "convergence-data"
        for user, password in (("alice", "wonderland"), ("bob", "builder"),
                               ("carol", "carol-pw")):
            subprocess.run([str(BIN / "convergencectl"), "adduser", f"{user}@localhost",
                            "--password", password], cwd=self.work, check=True,
                           capture_output=True, timeout=60)

    def test_alerts(self) -> None:
        port, http_port = free_port(), free_port()
        log_path = self.work / "twistd.log"
        env = {**os.environ, "CONVERGENCE_ALERT_TOKEN": TOKEN}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
                 "--c2s-port", str(port), "--c2s-tls-port", str(free_port()),
                 "--sip-port", str(free_port()), "--http-port", str(http_port)],
                cwd=self.work, stdout=log, stderr=subprocess.PIPE, env=env)
        self.addCleanup(self._stop, proc)
        wait_for_port(port, proc)
        wait_for_port(http_port, proc)
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(port), str(http_port),
             str(self.data / "tls" / "localhost.pem"), TOKEN],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        r = json.loads(done.stdout.strip().splitlines()[-1])

        status, answer = r["room_post"]
        self.assertEqual(status, 202)
        expected = [{"from": f"{ROOM}/alert", "body": "disk full on db1", "id": answer["id"]}]
        self.assertEqual(r["alice_groupchat"], expected)
        self.assertEqual(r["bob_groupchat"], expected)

        status, answer = r["jid_post"]
        self.assertEqual(status, 202)
        self.assertEqual(r["bob_messages"], [{"from": "localhost", "body": "page: db1",
                                              "id": answer["id"], "type": "chat",
                                              "delayed": False}])
        status, answer = r["offline_post"]
        self.assertEqual(status, 202)
        [stored] = r["carol_messages"]
        self.assertEqual((stored["body"], stored["id"], stored["delayed"]),
                         ("while you were away", answer["id"], True))

        self.assertEqual((r["wrong_token"][0], r["wrong_token"][1]["error"]),
                         (401, "unauthorized"))
        self.assertEqual((r["unknown_room"][0], r["unknown_room"][1]["error"]),
                         (404, "no_such_room"))
        self.assertEqual(r["alice_groupchat_after"], 1)

        self._stop(proc)
        logged = log_path.read_text(errors="replace")
        self.assertIn("by token env", logged)
        self.assertNotIn(TOKEN, logged)

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
        if proc.stderr is not None and not proc.stderr.closed:
            proc.stderr.close()
