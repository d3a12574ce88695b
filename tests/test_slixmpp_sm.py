"""
Stream management with a real client library: slixmpp's xep_0198 over
STARTTLS on loopback, the TCP connection cut with a reset.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build

SCENARIO = Path(__file__).with_name("slixmpp_sm.py")


class SlixmppSmTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        config = load_config(overrides={"data_dir": str(data)})
        config = replace(config, xmpp=replace(config.xmpp, sm_resume_max=3.0))
        self.server = build(config, reactor)
        for jid, password in (("alice@localhost", "wonderland"),
                              ("bob@localhost", "builder"), ("carol@localhost", "carol-pw")):
            self.server.accounts.add(jid, password)
        self.port = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)
        self.hibernated: list[str] = []
        self.server.xmpp.bus.hook("c2s/hibernating",
                                  lambda stream: self.hibernated.append(str(stream.jid)))

    async def test_resume_after_reset_and_hibernation_timeout(self) -> None:
        """Every message arrives exactly once, in order, across a reset;
        another account cannot resume; after the timeout the queue is in
        offline storage and the next login receives it."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable, [str(SCENARIO), str(self.port.getHost().port),
                             str(self.server.config.certificate_path)],
            env=dict(os.environ))
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        result = json.loads(out.decode().strip().splitlines()[-1])
        self.assertTrue(result["previd"])
        self.assertNotIn("alice", result["previd"])
        self.assertTrue(result["both"], result)
        self.assertEqual(result["attached"], ["1", "2", "3"])
        self.assertTrue(result["resumed"])
        self.assertEqual(result["after_resume"], ["1", "2", "3", "4", "5", "6"])
        self.assertEqual(result["unavailable_while_detached"], [])
        self.assertEqual(result["on_resumed_stream"], [str(i) for i in range(1, 8)])
        self.assertEqual(result["carol_failures"],
                         ["{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found"])
        self.assertTrue(result["carol_enabled"])
        self.assertEqual(result["carol_bodies_end"], [])
        self.assertTrue(result["unavailable_after_timeout"])
        self.assertEqual(result["offline"], ["8", "9", "10"])
        self.assertEqual(result["offline_delayed"], [True, True, True])
        self.assertEqual(self.server.xmpp.im_store.messages("alice", "localhost", 10), [])
        # both resets were seen as connection loss: the session hibernated
        self.assertEqual(self.hibernated, ["alice@localhost/slix"] * 2)
        self.assertEqual([s for s in self.server.xmpp.sm.sessions
                          if s.jid is not None and s.jid.user == "alice"], [])
