"""
XMPP over WebSocket with the library web developers use: @xmpp/client
(npm, run by Node) logs in over WebSocket to a real ``twistd -n
convergence``, chats with a slixmpp user over TCP both ways, and resumes its
session (XEP-0198) after the WebSocket is closed under it. The scenario is
tests/xmppjs_websocket.py; the packages come from ``make clients-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.clients import runner

SCENARIO = Path(__file__).with_name("xmppjs_websocket.py")
JS = Path(__file__).with_name("clients") / "js"


class XmppJsWebSocketTests(SynchronousTestCase):
    def setUp(self) -> None:
        if not shutil.which("node"):
            self.fail("node is not on PATH (make clients-deps)")
        if not (JS / "node_modules" / "@xmpp" / "client").is_dir():
            self.fail("npm ci has not run in tests/clients/js (make clients-deps)")
        work = Path(tempfile.mkdtemp(prefix="xmppjs-ws-"))
        self.addCleanup(shutil.rmtree, work, True)
        self.server = runner.Server(work, ["wsalice", "wsbob"])
        self.server.start()
        self.addCleanup(self.server.stop)

    def test_login_chat_and_resume_over_websocket(self) -> None:
        server = self.server
        url = f"ws://127.0.0.1:{server.http_port}/xmpp-websocket"
        env = dict(server.env(), PYTHONPATH=str(SCENARIO.parent) + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(
            [sys.executable, str(SCENARIO), url, str(server.c2s_port), str(server.cert),
             str(server.log), runner.PASSWORD],
            env=env, capture_output=True, timeout=120, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace")[-3000:])
        result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        online = result["online"]
        if online is None:
            self.fail(f"never online: {result}; scenario stderr: "
                      f"{proc.stderr.decode(errors='replace')[-2000:]}; server log: "
                      f"{server.log.read_text(errors='replace')[-3000:]}")
        self.assertEqual(online["jid"], "wsalice@localhost/web")
        self.assertTrue(online["sm"], result)  # stream management enabled over WS
        self.assertEqual(result["ws_got"], ["wsbob@localhost/slix", "hello from tcp"])
        self.assertEqual(result["tcp_got"],
                         [["wsalice@localhost/web", "hello from the web"]])
        self.assertTrue(result["disconnected"])
        self.assertTrue(result["hibernated"], result)
        self.assertIsNotNone(result["resumed"], result)
        self.assertEqual(result["resumed"]["jid"], "wsalice@localhost/web")
        self.assertEqual(result["queued_got"],
                         ["wsbob@localhost/slix", "while you were away"])
        self.assertTrue(result["after_resume"])
        self.assertEqual(result["errors"], [])
        # the login went over the WebSocket, with SCRAM, counted as secure
        # (loopback, xmpp.websocket_secure = "loopback")
        log = server.log.read_text(errors="replace")
        self.assertRegex(log, r"wsalice@localhost authenticated with SCRAM-SHA-\S+ from"
                              r" \S+ over WebSocket \(counted as secure\)")
