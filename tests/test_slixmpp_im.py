"""
The IM server with a real client library: slixmpp as three users over
STARTTLS on loopback (subscriptions, presence, roster versioning).
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

SCENARIO = Path(__file__).with_name("slixmpp_im.py")


class SlixmppImTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        self.server = build(load_config(overrides={"data_dir": str(data)}), reactor)
        for jid, password in (("alice@localhost", "wonderland"),
                              ("bob@localhost", "builder"), ("carol@localhost", "carol-pw")):
            self.server.accounts.add(jid, password)
        self.port = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)

    async def test_subscriptions_and_presence(self) -> None:
        """Handshake ends in both on both rosters; presence comes and goes;
        carol, not subscribed, sees nothing; roster versioning."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(self.port.getHost().port),
                             str(self.server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        result = json.loads(out.decode().strip().splitlines()[-1])
        self.assertTrue(result["both"], result)
        self.assertEqual((result["alice_sub"], result["bob_sub"]), ("both", "both"))
        self.assertEqual(result["alice_sees_bob"], ["slix"])
        self.assertEqual(result["bob_sees_alice"], ["slix"])
        self.assertEqual(result["bob_sees_two"], ["second", "slix"])
        self.assertEqual(result["after_second_left"], ["slix"])
        self.assertTrue(result["second_unavailable_seen"])
        self.assertTrue(result["ver"])
        self.assertTrue(result["unchanged_is_empty"])
        self.assertEqual(result["carol_saw_alice"], [])
        self.assertNotIn("alice@localhost", result["carol_roster"])
        self.assertEqual(result["after_bob_left"], [])
        rosters = self.server.xmpp.im_store
        _, items = rosters.roster("alice", "localhost")
        self.assertEqual([(i.contact, i.subscription) for i in items],
                         [("bob@localhost", "both")])
