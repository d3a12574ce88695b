"""
The flagship conversation end to end over real loopback sockets: a SIP
INVITE offering a jabber chat reaches the selfhelp bot, a real XMPP client
(slixmpp) logged in as the offered JID gets the greeting in the offered
thread and chats, the JSON endpoint shows one ApplicationSession holding a
SIP and an XMPP session, and BYE ends it with a goodbye over XMPP.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from apps.selfhelp.menu import GOODBYE
from convergence.config import load_config
from convergence.service import build
from tests.siphelpers import UdpPeer, request

CUSTOMER = Path(__file__).with_name("slixmpp_customer.py")
THREAD = "thread-e2e-42"
OPERATOR_TOKEN = "operator-s3cret"
OFFER = (
    "v=0\r\no=romeo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 39923 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=message 5222 xmpp/tcp chat\r\n"
    "a=jid:romeo@localhost/orchard\r\n"
    f"a=thread:{THREAD}\r\n"
)


class ClientProcess(protocol.ProcessProtocol):
    """The slixmpp customer: JSON events out, commands in."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.buffer = b""
        self.waiters: list = []
        self.ended: defer.Deferred = defer.Deferred()
        self.stderr = b""

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            for waiter in list(self.waiters):
                if waiter[0](event):
                    self.waiters.remove(waiter)
                    waiter[1].callback(event)

    def errReceived(self, data: bytes) -> None:
        self.stderr = (self.stderr + data)[-4000:]

    def processEnded(self, reason) -> None:
        self.ended.callback(None)

    def wait(self, predicate, timeout: float = 15.0) -> defer.Deferred:
        for event in self.events:
            if predicate(event):
                return defer.succeed(event)
        d: defer.Deferred = defer.Deferred()
        entry = (predicate, d)
        self.waiters.append(entry)

        def expire() -> None:
            if entry in self.waiters:
                self.waiters.remove(entry)
                d.errback(TimeoutError(f"client did not report; stderr: {self.stderr[-1500:]!r}"))

        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def command(self, line: str) -> None:
        self.transport.write(line.encode() + b"\n")


class SelfhelpEndToEndTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        (root / "c.toml").write_text(
            f'[apps.selfhelp.settings]\noperator_token = "{OPERATOR_TOKEN}"\n')
        self.server = build(load_config(root / "c.toml", {"data_dir": str(root / "d")}),
                            reactor)
        self.addCleanup(self.server.close)
        self.server.accounts.add("romeo@localhost", "montague")
        c2s = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        http = reactor.listenTCP(0, self.server.http, interface="127.0.0.1")
        sip_ports = self.server.sip.transport.listen(0, "127.0.0.1")
        for port in [c2s, http, *sip_ports]:
            self.addCleanup(port.stopListening)
        self.c2s_port = c2s.getHost().port
        self.http_base = f"http://127.0.0.1:{http.getHost().port}"
        self.sip_port = self.server.sip.transport.udp_port
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)

    async def get_json(self, path: str, token: str | None = OPERATOR_TOKEN) -> dict:
        headers = Headers({"Authorization": [f"Bearer {token}"]} if token else {})
        response = await self.agent.request(b"GET", (self.http_base + path).encode(), headers)
        self.assertEqual(response.code, 200)
        return json.loads(await readBody(response))

    async def start_customer(self) -> ClientProcess:
        client = ClientProcess()
        process = reactor.spawnProcess(
            client, sys.executable,
            [sys.executable, str(CUSTOMER), str(self.c2s_port),
             str(self.server.config.certificate_path), "romeo@localhost/orchard", "montague"],
            env=dict(os.environ))

        async def stop() -> None:
            if client.ended.called:
                return
            try:
                client.command("quit")
                process.closeStdin()
            except Exception:
                pass
            timer = reactor.callLater(10, lambda: client.ended.called or process.signalProcess("KILL"))
            await client.ended
            if timer.active():
                timer.cancel()

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        await client.wait(lambda e: e["event"] == "ready")
        return client

    async def test_sip_invited_chat(self) -> None:
        """INVITE → 200 (audio declined, chat accepted) → greeting over XMPP → menu → BYE → goodbye."""
        customer = await self.start_customer()
        phone = UdpPeer(self.sip_port)
        self.addCleanup(phone.close)
        uri = f"sip:selfhelp@127.0.0.1:{self.sip_port}"
        phone.send(request("INVITE", uri, phone.port, call_id="e2e-call", body=OFFER,
                           content_type="application/sdp"))
        ok = await phone.wait(phone.status(200, "INVITE"))
        answer = ok.body.decode()
        self.assertIn("m=audio 0 RTP/AVP 0", answer)
        self.assertIn("a=jid:selfhelp@localhost", answer)
        self.assertIn(f"a=thread:{THREAD}", answer)
        to_tag = ok.header("to").split("tag=")[1]
        phone.send(request("ACK", uri, phone.port, call_id="e2e-call", to_tag=to_tag))

        def from_bot(text: str):
            return lambda e: (e["event"] == "message" and e["from"] == "selfhelp@localhost"
                              and text in e["body"])

        greeting = await customer.wait(from_bot("Welcome"))
        self.assertEqual(greeting["thread"], THREAD)
        customer.command(f"say {THREAD} 1")
        answer = await customer.wait(from_bot("order #4711"))
        self.assertEqual(answer["thread"], THREAD)

        # The list names every conversation's id, which joins it: only the
        # operator's token gets it; a stranger sees no conversation.
        self.assertEqual((await self.get_json("/selfhelp/api/sessions", None))["sessions"], [])
        self.assertEqual((await self.get_json("/selfhelp/api/sessions", "guess"))["sessions"], [])
        listing = await self.get_json("/selfhelp/api/sessions")
        self.assertEqual(len(listing["sessions"]), 1)
        [conversation] = listing["sessions"]
        self.assertEqual(conversation["channel"], "sip")
        self.assertEqual(conversation["thread"], THREAD)
        kinds = {(p["kind"], p["state"]) for p in conversation["protocol_sessions"]}
        self.assertEqual(kinds, {("sip", "confirmed"), ("xmpp", "active")})
        xmpp_peer = [p["peer"] for p in conversation["protocol_sessions"] if p["kind"] == "xmpp"]
        self.assertEqual(xmpp_peer, ["romeo@localhost/orchard"])

        since = len(phone.received)
        phone.send(request("BYE", uri, phone.port, call_id="e2e-call", to_tag=to_tag, cseq=2))
        await phone.wait(phone.status(200, "BYE"), since=since)
        goodbye = await customer.wait(from_bot("Goodbye"))
        self.assertEqual(goodbye["thread"], THREAD)
        self.assertEqual((await self.get_json("/selfhelp/api/sessions"))["sessions"], [])


class SipAgentTests(TestCase):
    """'Talk to an agent' with a SIP agent: the bot is a UAC offering a jabber chat."""

    timeout = 60

    async def test_bot_invites_sip_agent(self) -> None:
        """The bot INVITEs the agent (sipp), reads its a=jid, relays, and BYEs at the end."""
        from twisted.internet.task import deferLater

        from tests.sipp_harness import SippUas, require_sipp
        from tests.xmpphelpers import Client, run_now

        require_sipp()
        uas = SippUas("uas_for_selftest.xml", calls=1,
                      keys={"jid": "bob@localhost/desk"}).start()
        self.addCleanup(uas.stop)
        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text(
            '[xmpp]\nrequire_tls = false\nallow_plain_without_tls = true\n'
            f'[apps.selfhelp.settings]\nagent = "sip:agent@{uas.target}"\n')
        server = build(load_config(root / "c.toml", {"data_dir": str(root / "d")}), reactor)
        self.addCleanup(server.close)
        ports = server.sip.transport.listen(0, "127.0.0.1")
        for port in ports:
            self.addCleanup(port.stopListening)
        server.accounts.add("alice@localhost", "secret")
        server.accounts.add("bob@localhost", "hunter2")
        server.xmpp.run_in_thread = run_now  # PLAIN checked inline for the scripted clients
        server.xmpp.account_lookup.run = run_now
        alice, bob = Client(server.xmpp), Client(server.xmpp)
        alice.login()
        bob.login("bob", "hunter2", "desk")
        for client in (alice, bob):
            client.send("<presence/>")

        def say(text: str) -> None:
            alice.send(f"<message to='selfhelp@localhost' type='chat'><body>{text}</body>"
                       "<thread>t9</thread></message>")

        def bodies(client: Client) -> list[str]:
            client.read()
            return [e.findtext("{jabber:client}body") for e in client.elements
                    if e.tag == "{jabber:client}message"]

        async def until(check) -> None:
            for _ in range(100):
                if check():
                    return
                await deferLater(reactor, 0.05, lambda: None)
            self.fail("timed out")

        say("3")
        await until(lambda: any("asks for an agent" in (b or "") for b in bodies(bob)))
        [conversation] = server.container.sessions.sessions("selfhelp")
        self.assertEqual(conversation["agent_jid"], "bob@localhost/desk")
        self.assertEqual([s.state for s in conversation.sessions_of("sip")], ["confirmed"])
        intro = [e for e in bob.elements if e.tag == "{jabber:client}message"][-1]
        bob.send(f"<message to='selfhelp@localhost' type='chat'><body>Hello, Bob here</body>"
                 f"<thread>{intro.findtext('{jabber:client}thread')}</thread></message>")
        await until(lambda: "Agent: Hello, Bob here" in bodies(alice))
        say("thanks")
        await until(lambda: "Customer: thanks" in bodies(bob))
        # 9 ends the chat even with an agent: goodbye, and BYE to the agent's dialog.
        say("9")
        await until(lambda: uas.process.poll() is not None)
        result = uas.wait(5)
        self.assertTrue(result.ok, result.explain())
        self.assertIn(GOODBYE, bodies(alice))
        self.assertEqual(server.container.sessions.sessions("selfhelp"), [])
