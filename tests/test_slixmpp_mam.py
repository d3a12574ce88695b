"""
Message Archive Management with a real client library: slixmpp's
xep_0313 over STARTTLS on loopback, alice and bob chatting 30 messages,
then alice paging through her archive 10 at a time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build

SCENARIO = Path(__file__).with_name("slixmpp_mam.py")


class SlixmppMamTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        self.server = build(load_config(overrides={"data_dir": str(data)}), reactor)
        for jid, password in (("alice@localhost", "wonderland"),
                              ("bob@localhost", "builder")):
            self.server.accounts.add(jid, password)
        self.port = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)

    async def test_chat_then_page_through_the_archive(self) -> None:
        """All 30 messages come back in the order they were sent, exactly
        once, in pages of 10; each one alice received carries, live, the
        stanza-id under which her archive returns it."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(self.port.getHost().port),
                             str(self.server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        result = json.loads(out.decode().strip().splitlines()[-1])
        self.assertNotIn("lost", result)
        self.assertTrue({"urn:xmpp:mam:2", "urn:xmpp:sid:0"} <= set(result["features"]))
        sent = [body for _, body in result["sent"]]
        archive = result["archive"]
        self.assertEqual([m["body"] for m in archive], sent)
        self.assertEqual(result["pages"], [10, 10, 10])
        ids = [m["id"] for m in archive]
        self.assertEqual(len(set(ids)), 30)
        self.assertTrue(all(m["from"] == "alice@localhost" for m in archive))
        # live stanza-ids by alice's account, one per message she received
        live = {}
        for body, stanza_ids in result["alice_received"]:
            self.assertEqual([by for by, _ in stanza_ids], ["alice@localhost"], body)
            live[body] = stanza_ids[0][1]
        self.assertEqual(len(live), 15)
        for message in archive:
            if message["inner_from"].startswith("bob@"):
                self.assertEqual(message["id"], live[message["body"]])
            else:
                self.assertNotIn(message["id"], live.values())
        # bob's copies name bob's archive only, never alice's
        for body, stanza_ids in result["bob_received"]:
            self.assertEqual([by for by, _ in stanza_ids], ["bob@localhost"], body)
        self.assertEqual(result["bob_archive"], sent)
        stamps = [m["stamp"] for m in archive]
        self.assertEqual(stamps, sorted(stamps))
