"""
In-band registration and the XEP-0479 small features with a real client
library: slixmpp over STARTTLS on loopback against the assembled server,
configured from a TOML file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build
from convergence.xmpp.features.software_version import package_version

SCENARIO = Path(__file__).with_name("slixmpp_small.py")

OPEN_CONFIG = """
[xmpp]
allow_registration = true
ping_interval = 1.0
ping_timeout = 5.0

[xmpp.contact]
abuse = ["mailto:abuse@localhost", "xmpp:abuse@localhost"]
support = ["https://localhost/support"]
"""


class SlixmppSmallFeaturesTests(TestCase):
    timeout = 120

    def serve(self, toml: str):
        base = Path(self.mktemp())
        base.mkdir(parents=True)
        (base / "convergence.toml").write_text(toml)
        server = build(load_config(base / "convergence.toml",
                                   overrides={"data_dir": str(base / "data")}), reactor)
        port = reactor.listenTCP(0, server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(server.close)
        self.addCleanup(port.stopListening)
        return server, port

    async def run_scenario(self, name: str, server, port) -> dict:
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), name, str(port.getHost().port),
                             str(server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        return json.loads(out.decode().strip().splitlines()[-1])

    async def test_register_use_and_remove(self) -> None:
        """Registration enabled by config: slixmpp registers in-band, logs
        in, queries version, time and last activity, is pinged and answers,
        sees the contact addresses, changes its password and removes the
        account."""
        server, port = self.serve(OPEN_CONFIG)
        before = time.time()
        result = await self.run_scenario("open", server, port)
        self.assertEqual((result["first_login"], result["registered"]), ("started", True),
                         result)
        self.assertEqual(result["version"],
                         {"name": "convergence", "version": package_version(), "os": ""})
        self.assertEqual(result["tzo"], "+00:00")
        self.assertLess(abs(result["utc"] - before), 60)
        self.assertTrue(result["utc_text"].endswith("Z"), result["utc_text"])
        self.assertGreaterEqual(result["uptime"], 0)
        self.assertLess(result["uptime"], 120)
        self.assertEqual(result["own_last"], 0)
        self.assertEqual(result["contact"]["abuse-addresses"],
                         ["mailto:abuse@localhost", "xmpp:abuse@localhost"])
        self.assertEqual(result["contact"]["support-addresses"], ["https://localhost/support"])
        for var in ("jabber:iq:register", "jabber:iq:version", "jabber:iq:last",
                    "urn:xmpp:time", "urn:xmpp:ping"):
            self.assertIn(var, result["features"])
        self.assertTrue(result["pinged"], result)
        self.assertTrue(result["alive_after_pings"], result)
        self.assertTrue(result["password_changed"])
        self.assertEqual(result["old_password"], "auth-failed")
        self.assertEqual(result["new_password"], "started")
        self.assertTrue(result["removed"])
        self.assertTrue(result["closed_after_removal"])
        self.assertEqual(result["after_removal"], "auth-failed")
        self.assertFalse(server.accounts.store.exists("newbie", "localhost"))

    async def test_registration_refused_by_default(self) -> None:
        """The default configuration offers no registration: the same
        client never gets to register and cannot log in."""
        server, port = self.serve("")
        result = await self.run_scenario("default", server, port)
        self.assertEqual(result, {"login": "auth-failed", "register_called": False,
                                  "registered": None})
        self.assertFalse(server.accounts.store.exists("mallory", "localhost"))
