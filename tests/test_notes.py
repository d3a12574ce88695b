"""
The tutorial's notes app on the whole server over loopback: one person's
chat message and SIP MESSAGE land in one ApplicationSession, and the link in
the chat reply opens that notebook over HTTP.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool, readBody

from convergence.config import load_config
from convergence.service import build
from tests.siphelpers import UdpPeer, request
from tests.xmpphelpers import Client, run_now


class NotesTests(TestCase):
    timeout = 30

    async def test_one_notebook_three_protocols(self) -> None:
        """XMPP and SIP notes from alice share a session; the chat link shows both."""
        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text(
            "[xmpp]\nrequire_tls = false\nallow_plain_without_tls = true\n"
            '[apps.notes]\nmodule = "apps.notes"\n')
        server = build(load_config(root / "c.toml", {"data_dir": str(root / "d")}), reactor)
        self.addCleanup(server.close)
        http = reactor.listenTCP(0, server.http, interface="127.0.0.1")
        self.addCleanup(http.stopListening)
        server.container.factories["http"].base_url = f"http://127.0.0.1:{http.getHost().port}"
        for port in server.sip.transport.listen(0, "127.0.0.1"):
            self.addCleanup(port.stopListening)
        server.xmpp.run_in_thread = run_now
        server.xmpp.account_lookup.run = run_now  # credentials read inline too
        server.accounts.add("alice@localhost", "secret")

        alice = Client(server.xmpp)
        alice.login()
        alice.send("<message to='notes@localhost' type='chat'><body>buy milk</body></message>")
        # the blocklist check waits for alice's list from the database thread
        for _ in range(500):
            if alice.transport.value():
                break
            await deferLater(reactor, 0.01)
        reply = alice.expect("message").findtext("{jabber:client}body")
        link = re.search(r"(http://\S+)", reply).group(1)
        self.assertIn("appsession=", link)

        phone = UdpPeer(server.sip.transport.udp_port)
        self.addCleanup(phone.close)
        phone.send(request("MESSAGE", f"sip:notes@localhost:{server.sip.transport.udp_port}",
                           phone.port, body="call mum", content_type="text/plain",
                           to="<sip:notes@localhost>").replace(
            "From: <sip:romeo@localhost>", "From: <sip:alice@localhost>"))
        await phone.wait(phone.status(200, "MESSAGE"))

        [notebook] = server.container.sessions.sessions("notes")
        self.assertEqual([n["text"] for n in notebook["notes"]], ["buy milk", "call mum"])

        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        api = link.replace("/notes/?", "/notes/api/notes?")
        response = await agent.request(b"GET", api.encode())
        self.assertEqual(json.loads(await readBody(response))["notes"],
                         [{"text": "buy milk", "via": "xmpp"}, {"text": "call mum", "via": "sip"}])
        kinds = sorted(s.kind for s in notebook.protocol_sessions)
        self.assertEqual(kinds, ["http", "sip", "xmpp"])
