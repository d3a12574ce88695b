"""
Integration: the real server on loopback, a real client library (slixmpp)
in a subprocess, STARTTLS with certificate verification, SCRAM and PLAIN.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build

SCENARIO = Path(__file__).with_name("slixmpp_scenario.py")


class SlixmppTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        self.server = build(load_config(overrides={"data_dir": str(data)}), reactor)
        self.server.accounts.add("alice@localhost", "wonderland")
        self.server.accounts.add("bob@localhost", "builder")
        self.port = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)

    async def run_scenario(self, mechanism: str) -> dict:
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [str(SCENARIO), str(self.port.getHost().port),
             str(self.server.config.certificate_path), mechanism],
            env=dict(os.environ),
        )
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        return json.loads(out.decode().strip().splitlines()[-1])

    def check(self, result: dict, mechanism: str) -> None:
        self.assertTrue(result["tls"])
        self.assertEqual(result["mechanism"], mechanism)
        self.assertEqual(result["alice_jid"], "alice@localhost/slix")
        self.assertEqual(
            [(m["from"], m["body"]) for m in result["echo"]],
            [("echo.localhost", "hello echo"), ("echo.localhost", "threaded")],
        )
        self.assertEqual(result["echo"][1]["thread"], "thread-42")
        self.assertEqual((result["bob_got"]["from"], result["bob_got"]["body"]),
                         ("alice@localhost/slix", "hi bob"))
        self.assertEqual(result["alice_got"]["body"], "hi alice")
        self.assertEqual(result["unknown_user"]["error"], "service-unavailable")
        self.assertEqual(result["remote"]["error"], "remote-server-not-found")
        self.assertTrue(result["ping_rtt"])
        self.assertIn("urn:xmpp:ping", result["disco_features"])
        self.assertEqual(result["iq_unknown_user"], "service-unavailable")
        self.assertEqual(result["wrong_password"], "failed_auth")
        self.assertEqual(result["vcard"], "service-unavailable")
        self.assertTrue(result["alive_after_vcard"])

    async def test_scram_sha256(self) -> None:
        """slixmpp logs in with STARTTLS + SCRAM-SHA-256 and chats."""
        self.check(await self.run_scenario("SCRAM-SHA-256"), "SCRAM-SHA-256")

    async def test_scram_sha256_plus_tls12(self) -> None:
        """slixmpp binds SCRAM-SHA-256-PLUS to the channel with tls-unique
        (RFC 5929), which it computes on TLS 1.2 (it has no tls-exporter
        nor tls-server-end-point): the server's data equals its own."""
        self.server.xmpp.tls_context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.check(await self.run_scenario("SCRAM-SHA-256-PLUS"), "SCRAM-SHA-256-PLUS")

    async def test_scram_sha1(self) -> None:
        """slixmpp logs in with STARTTLS + SCRAM-SHA-1 and chats."""
        self.check(await self.run_scenario("SCRAM-SHA-1"), "SCRAM-SHA-1")

    async def test_plain_over_tls(self) -> None:
        """slixmpp logs in with STARTTLS + PLAIN (verified in a thread)."""
        self.check(await self.run_scenario("PLAIN"), "PLAIN")
