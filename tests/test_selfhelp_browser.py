"""
Headless Chromium (Debian's chromium, driven by Playwright) uses the
selfhelp page served by the whole server on loopback.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build
from tests.browser import assert_browser_ok, run_browser_script

SCRIPT = Path(__file__).with_name("browser_selfhelp.py")


class SelfhelpPageTests(TestCase):
    timeout = 120

    async def test_menu_and_live_sessions(self) -> None:
        """The page answers a menu choice and lists the visitor's live session."""
        root = Path(self.mktemp())
        server = build(load_config(overrides={"data_dir": str(root / "data")}), reactor)
        self.addCleanup(server.close)
        port = reactor.listenTCP(0, server.http, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/selfhelp/"
        result = await run_browser_script(SCRIPT, url, timeout=90, workdir=str(root / "b"))
        assert_browser_ok(result)
        self.assertIn("has shipped", result["log"])
        self.assertEqual(len(result["rows"]), 1, result["rows"])
        self.assertIn("web visitor", result["rows"][0])
        self.assertIn("http", result["rows"][0])
        [session] = server.container.sessions.sessions("selfhelp")
        self.assertEqual(session["channel"], "web")
        self.assertEqual(session["choices"], 1)
        self.assertEqual([s.kind for s in session.protocol_sessions], ["http"])
