"""
PEP with a real client library: slixmpp as three users over STARTTLS on
loopback (XEP-0163/0060, XEP-0084 avatars, XEP-0402 bookmarks seen
through XEP-0048/0049 private storage and back).  bob's +notify reaches
the server the real way: slixmpp's XEP-0115 caps, verified by the
server's caps module.
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

SCENARIO = Path(__file__).with_name("slixmpp_pep.py")


class SlixmppPepTests(TestCase):
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

    async def test_avatar_and_bookmarks(self) -> None:
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(self.port.getHost().port),
                             str(self.server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        result = json.loads(out.decode().strip().splitlines()[-1])
        self.assertTrue(result["both"], result)
        self.assertIn("pubsub/pep", result["identities"])
        for var in ("http://jabber.org/protocol/pubsub#publish",
                    "http://jabber.org/protocol/pubsub#publish-options",
                    "urn:xmpp:bookmarks:1#compat"):
            self.assertIn(var, result["features"])
        # bob, subscribed both ways with +notify for the metadata, is told
        self.assertTrue(result["bob_notified"], result)
        self.assertEqual(result["bob_events"][0], ["alice@localhost", result["avatar_id"]])
        self.assertTrue(result["bob_got_image"])
        # carol, not subscribed, is refused both nodes and told nothing
        self.assertEqual(result["carol_refused"],
                         ["not-authorized", "presence-subscription-required"])
        self.assertEqual(result["carol_data_refused"],
                         ["not-authorized", "presence-subscription-required"])
        self.assertEqual(result["carol_events"], [])
        # XEP-0402 -> XEP-0048 and back
        self.assertEqual(result["legacy_read"], [["coven@chat.localhost", "Coven", "al", True]])
        self.assertEqual(result["pep_read"], [["council@chat.localhost", "Council", "puck"]])
        self.assertEqual(result["bob_bookmarks_refused"], ["not-allowed", "closed-node"])
        # explicit subscriptions (XEP-0060 6.1, 6.2, 5.6 on PEP)
        self.assertEqual(result["carol_subscribe_refused"],
                         ["not-authorized", "presence-subscription-required"])
        self.assertEqual(result["carol_subscription"],
                         ["urn:x:status", "carol@localhost", "subscribed"])
        self.assertEqual(result["carol_items"],
                         [["alice@localhost", "urn:x:status", "s1"],
                          ["alice@localhost", "urn:x:status", "s2"]])
        self.assertEqual(result["carol_subscriptions"],
                         [["urn:x:status", "carol@localhost"]])
        self.assertEqual(result["carol_items_after"], result["carol_items"])
        store = self.server.xmpp.pep_store
        self.assertEqual([i for i, _ in store.pep_items("alice", "localhost",
                                                        "urn:xmpp:avatar:data")],
                         [result["avatar_id"]])
