"""
Carbons, blocking and CSI with a real client library: slixmpp as alice
(phone and laptop) and bob over STARTTLS on loopback.
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

SCENARIO = Path(__file__).with_name("slixmpp_carbons.py")


class SlixmppCarbonsTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        self.server = build(load_config(overrides={"data_dir": str(data)}), reactor)
        for jid, password in (("alice@localhost", "wonderland"), ("bob@localhost", "builder")):
            self.server.accounts.add(jid, password)
        self.port = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)

    async def test_carbons_blocking_csi(self) -> None:
        """Carbons enabled on two resources: a bare-JID message at equal
        priority reaches each once, a sent message reaches the other
        resource as a sent carbon; CSI holds presence until something
        important; blocking bob stops him both ways, unblocking restores."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(self.port.getHost().port),
                             str(self.server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        r = json.loads(out.decode().strip().splitlines()[-1])
        self.assertTrue(r["csi_offered"], r)
        self.assertTrue(r["both"], r)
        self.assertEqual(r["enabled"], [True, True])
        # carbons
        self.assertEqual((r["bare_phone"], r["bare_laptop"], r["bare_carbons"]), (1, 1, 0))
        self.assertEqual(r["sent_carbon"],
                         [["alice@localhost", "alice@localhost/phone>bob@localhost:from phone"]])
        self.assertEqual(r["bob_got"], [["alice@localhost/phone", "from phone"]])
        self.assertEqual(r["phone_own_carbon"], [])
        self.assertEqual(r["received_carbon"],
                         [["alice@localhost",
                           "bob@localhost/desk>alice@localhost/phone:to phone"]])
        # CSI
        self.assertEqual(r["csi_inactive_before_iq"], [])
        self.assertEqual(r["csi_held_until_iq"], [["presence", "bob@localhost/desk", "away"]])
        self.assertEqual(r["csi_inactive_saw"], [])
        self.assertEqual(r["csi_after_message"], [
            ["presence", "bob@localhost/desk", "xa"],
            ["carbon_received", "alice@localhost",
             "bob@localhost/desk>alice@localhost/phone:flush"]])
        # blocking
        self.assertEqual(r["blocklist"], ["bob@localhost"])
        self.assertEqual(r["bob_saw_alice_go"],
                         ["alice@localhost/laptop", "alice@localhost/phone"])
        self.assertEqual(r["blocked_iq"], "service-unavailable")
        self.assertEqual(r["phone_while_blocked"], [])
        self.assertEqual(r["laptop_while_blocked"], [])
        self.assertEqual(r["outbound_error"], [["bob@localhost", "not-acceptable:True"]])
        self.assertEqual(r["bob_got_blocked"], [])
        self.assertEqual(r["phone_sees_bob_again"],
                         [["presence", "bob@localhost/desk", "dnd"]])
        self.assertEqual(r["bob_sees_alice_again"],
                         ["alice@localhost/laptop", "alice@localhost/phone"])
        self.assertTrue(r["unblocked_message"])
        self.assertEqual(self.server.xmpp.im_store.blocklist("alice", "localhost"), [])
