"""
Headless Chromium (Debian's chromium, driven by Playwright) uses the
selfhelp page of a real ``twistd -n convergence`` on loopback:

- with JavaScript, the page is live: @xmpp/client over XMPP/WebSocket as
  the web session's guest (a one-time token from api/live), the bot's
  replies pushed; "Call us" places a SIP.js call over SIP/WebSocket with a
  jabber chat offer in the page's thread: the greeting and, after hanging
  up, the goodbye arrive in that thread; a screenshot is kept;
- with JavaScript off, the page is the HTML form it always was.

Screenshots go to tests/artifacts/ (gitignored); their paths are printed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import TestCase

from apps.selfhelp.menu import GOODBYE, OPENING_HOURS, ORDER_STATUS
from tests.browser import ENV_JAVASCRIPT, assert_browser_ok, run_browser_script
from tests.test_service import BIN, free_port

ROOT = Path(__file__).resolve().parent.parent
LIVE = Path(__file__).with_name("browser_selfhelp.py")
NO_JS = Path(__file__).with_name("browser_selfhelp_nojs.py")
ARTIFACTS = Path(__file__).with_name("artifacts")


class SelfhelpPageTests(TestCase):
    timeout = 150

    def setUp(self) -> None:
        self.work = Path(self.mktemp()).resolve()
        data = self.work / "convergence-data"
        data.mkdir(parents=True)
        self.http_port, sip_port, c2s_port = free_port(), free_port(), free_port()
        config = self.work / "convergence.toml"
        config.write_text(f"""
data_dir = "{data}"
interface = "127.0.0.1"

[listen]
c2s_port = {c2s_port}
c2s_tls_port = 0
sip_port = {sip_port}
http_port = {self.http_port}
""")
        self.log = self.work / "twistd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--config", str(config)],
                cwd=self.work, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.fail("server did not start: " + self.log.read_text()[-3000:])
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.http_port}/selfhelp/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def keep(self, result: dict, name: str) -> list[Path]:
        """Copy the screenshots to tests/artifacts/<name>/ and print where."""
        target = ARTIFACTS / name
        target.mkdir(parents=True, exist_ok=True)
        kept = []
        for shot in result.get("screenshots", []):
            kept.append(Path(shutil.copy(shot, target)))
            print(f"screenshot: {kept[-1]}", file=sys.stderr)
        return kept

    def assert_server_clean(self) -> None:
        self.assertNotIn("Traceback", self.log.read_text())

    async def test_live_chat_and_call(self) -> None:
        """Chat over XMPP/WebSocket with pushed replies, then a SIP/WebSocket
        call whose chat is the same thread: greeting, hang-up, goodbye."""
        result = await run_browser_script(LIVE, self.url, timeout=120, step_timeout=15,
                                          workdir=str(self.work / "browser"))
        kept = self.keep(result, "selfhelp-live")
        assert_browser_ok(result)
        self.assertEqual(result["page_errors"], [])
        self.assertRegex(result["jid"], r"^guest-[0-9a-f]{24}@localhost/web$")
        thread = result["thread"]
        self.assertRegex(thread, r"^[0-9a-f]{16}$")
        # one conversation thread: the chat's replies, the call's answer,
        # its greeting and its goodbye
        for key in ("reply_thread", "call_thread", "greeting_thread", "goodbye_thread"):
            self.assertEqual(result[key], thread, key)
        # pushed over the WebSocket, not fetched: no menu posts, no transcript polls
        # (a second XMPP WebSocket: the new conversation after the goodbye)
        self.assertEqual([u for u in result["websockets"] if "/xmpp-websocket" in u],
                         [f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"] * 2)
        self.assertEqual([u for u in result["websockets"] if u.endswith("/sip")],
                         [f"ws://127.0.0.1:{self.http_port}/sip"])
        posts = [r for r in result["requests"] if r.startswith("POST")]
        self.assertFalse([r for r in result["requests"] if "api/conversation" in r])
        # in the call, the visitor's one conversation has its web, chat and call sessions
        [row] = [r for r in result["rows_in_call"] if "sip" in r]
        for kind in ("http", "xmpp", "sip"):
            self.assertRegex(row, rf"\b{kind}\b")
        self.assertIn(result["jid"], row)
        texts = result["log"]
        self.assertTrue(any(t.startswith("Bot: Your order #4711 has shipped") for t in texts))
        # the call's greeting, then its goodbye, in the log of the one page
        greeting = [i for i, t in enumerate(texts) if t.startswith("Bot: Welcome")][-1]
        self.assertGreater(greeting, texts.index("Bot: " + OPENING_HOURS))
        self.assertGreater(texts.index("Bot: " + GOODBYE), greeting)
        self.assertIn("Call ended.", texts)
        # the guest login ended with the conversation; the page came back
        # as a new guest, in a new conversation that answers as well
        self.assertNotEqual(result["new_jid"].split("/")[0], result["jid"].split("/")[0])
        self.assertNotEqual(result["new_thread"], thread)
        self.assertEqual(texts[-2:], ["You: 2", "Bot: " + OPENING_HOURS])
        self.assertEqual(posts, [f"POST {self.url}api/live"] * 2)
        self.assertEqual({p.name for p in kept}, {"selfhelp-live-call.png", "selfhelp-live.png"})
        self.assert_server_clean()

    async def test_without_javascript(self) -> None:
        """JavaScript off: the menu and the text field post as forms, the
        answers are in the page's transcript, no script or socket runs."""
        result = await run_browser_script(NO_JS, self.url, timeout=90,
                                          workdir=str(self.work / "browser"),
                                          env={ENV_JAVASCRIPT: "0"})
        self.keep(result, "selfhelp-nojs")
        assert_browser_ok(result)
        self.assertFalse(result["call_visible"])
        self.assertIn("needs JavaScript", result["status"])
        texts = result["log"]
        self.assertTrue(texts[0].startswith("Bot: Welcome to convergence self-help."))
        self.assertEqual(texts[1:], ["You: 1", "Bot: " + ORDER_STATUS.format(order=4711),
                                     "You: 2", "Bot: " + OPENING_HOURS])
        posts = [r for r in result["requests"] if r.startswith("POST")]
        self.assertEqual(posts, [f"POST {self.url}"] * 2)
        self.assertFalse([r for r in result["requests"] if re.search(r"\.js$|/api/", r)])
        self.assert_server_clean()
