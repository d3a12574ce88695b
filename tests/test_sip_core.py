"""
The SIP stack end to end over real loopback UDP and TCP sockets: UA core
answers, the chatline app, dialogs, CANCEL, REGISTER with digest, 2xx
retransmission, and an application acting as a UAC.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from convergence.sip.transport import set_receive_buffer
from tests.siphelpers import SEED_SDP, TcpPeer, UdpPeer, request, start_server, stop_server


def sleep(seconds: float) -> Deferred:
    d: Deferred = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class SipFixture(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.server, self.port = start_server(self.mktemp())
        self.addCleanup(stop_server, self.server)
        self.peer = UdpPeer(self.port)
        self.addCleanup(self.peer.close)
        self.uri = f"sip:chatline@127.0.0.1:{self.port}"

    def send(self, method: str, uri: str | None = None, **kwargs) -> int:
        since = len(self.peer.received)
        self.peer.send(request(method, uri or self.uri, self.peer.port, **kwargs))
        return since

    async def ask(self, method: str, status: int, uri: str | None = None, **kwargs):
        since = self.send(method, uri, **kwargs)
        return await self.peer.wait(self.peer.status(status, method), since=since)


class ReceiveBufferTests(SipFixture):
    def test_listener_gets_the_configured_buffer(self) -> None:
        """The UDP socket gets sip.udp_receive_buffer (4 MiB by default): in
        full as root (SO_RCVBUFFORCE), else what net.core.rmem_max allows."""
        handle = self.server.sip_ports[0].getHandle()
        granted = handle.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        wanted = self.server.config.sip.udp_receive_buffer
        self.assertEqual(wanted, 4 * 1024 * 1024)
        if os.geteuid() == 0:
            self.assertGreaterEqual(granted, wanted)
        else:
            with open("/proc/sys/net/core/rmem_max") as f:
                self.assertGreaterEqual(granted, min(wanted, int(f.read())) // 2)

    def test_set_receive_buffer_reports_the_grant(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            granted = set_receive_buffer(sock, 300000)
            self.assertEqual(granted,
                             sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2)
            self.assertGreater(granted, 0)


class ServerAnswersTests(SipFixture):
    async def test_options_to_server(self) -> None:
        """OPTIONS to the server: 200 with Allow, Accept and Supported."""
        reply = await self.ask("OPTIONS", 200, f"sip:127.0.0.1:{self.port}")
        self.assertIn("INVITE", reply.header("allow"))
        self.assertIn("REGISTER", reply.header("allow"))
        self.assertEqual(reply.header("accept"), "application/sdp")
        self.assertIsNotNone(reply.header("supported"))
        via = reply.header("via")
        self.assertIn(f"rport={self.peer.port}", via)
        self.assertIn("received=127.0.0.1", via)

    async def test_max_forwards_zero(self) -> None:
        """Max-Forwards: 0 gets 483 Too Many Hops."""
        await self.ask("OPTIONS", 483, max_forwards=0)

    async def test_unknown_require(self) -> None:
        """An unknown Require option gets 420 with Unsupported."""
        reply = await self.ask("OPTIONS", 420, extra="Require: foo, 100rel")
        self.assertEqual(reply.header("unsupported"), "foo, 100rel")

    async def test_unknown_method(self) -> None:
        """An unknown method gets 501 with Allow."""
        reply = await self.ask("FROB", 501)
        self.assertIn("INVITE", reply.header("allow"))

    async def test_method_app_does_not_handle(self) -> None:
        """A known method the app has no handler for gets 405 with Allow."""
        reply = await self.ask("MESSAGE", 405)
        self.assertIn("INVITE", reply.header("allow"))

    async def test_servlet_outcomes(self) -> None:
        """Whatever a servlet returns or raises, at once or later, the
        request gets the answer it names, or 500 for a bug."""
        uri = f"sip:outcome@127.0.0.1:{self.port}"
        for body, status in (("plain", 200), ("raise", 500), ("status", 486),
                             ("failed-deferred", 500), ("later", 202),
                             ("later-status", 480), ("async", 201),
                             ("async-raise", 603)):
            reply = await self.ask("MESSAGE", status, uri, body=body,
                                   content_type="text/plain")
            self.assertEqual(reply.status, status, body)
        self.flushLoggedErrors(RuntimeError)

    async def test_unsupported_scheme(self) -> None:
        """A tel: Request-URI gets 416."""
        await self.ask("OPTIONS", 416, "tel:+15551234")

    async def test_no_dialog(self) -> None:
        """A BYE for an unknown dialog gets 481."""
        await self.ask("BYE", 481, to_tag="nosuch")

    async def test_unknown_user(self) -> None:
        """A request to a user nobody serves gets 404."""
        await self.ask("INVITE", 404, f"sip:nobody@localhost:{self.port}",
                       body=SEED_SDP, content_type="application/sdp")

    async def test_malformed_request(self) -> None:
        """A bad header gets 400 naming the problem; garbage is dropped; the listener lives on."""
        text = request("OPTIONS", self.uri, self.peer.port)
        self.peer.send(text.replace("Max-Forwards: 70", "Max-Forwards: abc"))
        reply = await self.peer.wait(lambda m: m.status == 400)
        self.assertEqual(reply.start, "SIP/2.0 400 Bad Max-Forwards")
        self.peer.send(re.sub(r"Call-ID: [^\r]*\r\n", "", text))  # cannot be answered
        self.peer.send(b"\x00\xffgarbage that is not SIP\r\n\r\n")
        await self.ask("OPTIONS", 200, f"sip:127.0.0.1:{self.port}")

    async def test_stray_response_dropped(self) -> None:
        """A response matching no transaction is dropped; the listener lives on."""
        self.peer.send(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\n"
            "From: <sip:a@localhost>;tag=1\r\nTo: <sip:b@localhost>;tag=2\r\n"
            "Call-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
        reply = await self.ask("OPTIONS", 200, f"sip:127.0.0.1:{self.port}")
        self.assertEqual([m.status for m in self.peer.received], [200])
        self.assertIsNotNone(reply)

    async def test_oversized_tcp_message_closes_connection(self) -> None:
        """Over TCP, a message above max_message_size closes that connection only."""
        peer = await TcpPeer.connect(self.server.sip.transport.tcp_port)
        lost = Deferred()
        peer.connectionLost = lambda reason: lost.callback(None)
        local = peer.transport.getHost().port
        text = request("MESSAGE", self.uri, local, transport="TCP",
                       body="x" * 70000, content_type="text/plain")
        peer.send(text)
        await lost
        await self.ask("OPTIONS", 200, f"sip:127.0.0.1:{self.port}")

    async def test_bad_contact_in_register(self) -> None:
        """A header parsed only when used (Contact) still gets a 400 naming it."""
        self.server.accounts.add("romeo@localhost", "montague")
        text = request("REGISTER", "sip:localhost", self.peer.port,
                       to="<sip:romeo@localhost>")
        self.peer.send(text.replace(f"Contact: <sip:romeo@127.0.0.1:{self.peer.port}>",
                                    "Contact: <sip:romeo@127.0.0.1:bad>"))
        reply = await self.peer.wait(lambda m: m.status is not None)
        self.assertIn(reply.status, (400, 401))

    async def test_bad_sdp(self) -> None:
        """An INVITE with a broken SDP body gets 400 naming the line."""
        reply = await self.ask("INVITE", 400, body="v=0\r\nbogus\r\n",
                               content_type="application/sdp")
        self.assertIn("line 2", reply.start)

    async def test_no_chat_offered(self) -> None:
        """An INVITE offering only audio gets 488."""
        sdp = SEED_SDP.split("m=message")[0]
        await self.ask("INVITE", 488, body=sdp, content_type="application/sdp")


class ChatlineTests(SipFixture):
    async def invite(self, **kwargs):
        call_id = secrets.token_hex(6)
        since = self.send("INVITE", call_id=call_id, body=SEED_SDP,
                          content_type="application/sdp", **kwargs)
        ok = await self.peer.wait(self.peer.status(200, "INVITE"), since=since)
        return call_id, ok

    async def test_invite_ack_bye(self) -> None:
        """The seed's call: audio declined, chat accepted with our JID and the thread."""
        call_id, ok = await self.invite()
        # Answered while it was routed: no 100 (RFC 3261 17.2.1 makes it a
        # MAY when the TU answers within 200 ms).
        self.assertNotIn(100, [m.status for m in self.peer.received])
        body = ok.body.decode()
        self.assertIn("m=audio 0 RTP/AVP 0", body)
        self.assertRegex(body, r"m=message \d+ xmpp/tcp chat")
        self.assertIn("a=jid:chatline@localhost", body)
        self.assertIn("a=thread:283461923759234", body)
        self.assertEqual(ok.header("content-type"), "application/sdp")
        self.assertTrue(ok.header("contact"))
        to_tag = ok.header("to").split("tag=")[1]
        sessions = self.server.container.sessions.sessions("chatline")
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0]["peer_jid"], "romeo@localhost/orchard")
        self.assertEqual(sessions[0]["thread"], "283461923759234")
        self.assertEqual(sessions[0].sessions_of("sip")[0].state, "confirmed")
        self.send("ACK", call_id=call_id, to_tag=to_tag)
        await self.ask("BYE", 200, call_id=call_id, to_tag=to_tag, cseq=2)
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])
        # A second BYE: the dialog is gone.
        await self.ask("BYE", 481, call_id=call_id, to_tag=to_tag, cseq=3)

    async def test_reinvite_and_info_in_dialog(self) -> None:
        """A re-INVITE in the dialog is answered again; INFO reaches the servlet (405)."""
        call_id, ok = await self.invite()
        to_tag = ok.header("to").split("tag=")[1]
        self.send("ACK", call_id=call_id, to_tag=to_tag)
        again = await self.ask("INVITE", 200, call_id=call_id, to_tag=to_tag, cseq=2,
                               body=SEED_SDP, content_type="application/sdp")
        self.assertIn(f"tag={to_tag}", again.header("to"))
        self.send("ACK", call_id=call_id, to_tag=to_tag, cseq=2)
        await self.ask("INFO", 405, call_id=call_id, to_tag=to_tag, cseq=3)
        await self.ask("INFO", 500, call_id=call_id, to_tag=to_tag, cseq=1)
        await self.ask("BYE", 200, call_id=call_id, to_tag=to_tag, cseq=4)

    async def test_2xx_retransmitted_until_ack(self) -> None:
        """Without an ACK, the 200 is retransmitted, then the dialog ends with BYE."""
        call_id, ok = await self.invite()
        for _ in range(100):
            oks = [m for m in self.peer.received if m.status == 200]
            if len(oks) >= 3:
                break
            await sleep(0.05)
        self.assertGreaterEqual(len(oks), 3)
        bye = await self.peer.wait(lambda m: m.method == "BYE", timeout=10)
        self.assertEqual(bye.header("call-id"), call_id)

    async def test_ack_stops_retransmission(self) -> None:
        """An ACK stops the 200's retransmission."""
        call_id, ok = await self.invite()
        to_tag = ok.header("to").split("tag=")[1]
        self.send("ACK", call_id=call_id, to_tag=to_tag)
        await sleep(0.1)
        count = len([m for m in self.peer.received if m.status == 200])
        await sleep(0.5)
        self.assertEqual(len([m for m in self.peer.received if m.status == 200]), count)

    async def test_invite_over_tcp(self) -> None:
        """Over TCP the 200 comes back on the same connection."""
        peer = await TcpPeer.connect(self.server.sip.transport.tcp_port)
        self.addCleanup(peer.close)
        local = peer.transport.getHost().port
        peer.send(request("INVITE", self.uri, local, transport="TCP", body=SEED_SDP,
                          content_type="application/sdp"))
        ok = await peer.wait(peer.status(200, "INVITE"))
        self.assertIn("a=jid:chatline@localhost", ok.body.decode())
        self.assertIn("transport=tcp", ok.header("contact"))


class CancelTests(SipFixture):
    async def test_cancel_ringing_call(self) -> None:
        """CANCEL of a ringing INVITE: 200 for the CANCEL, 487 for the INVITE."""
        uri = f"sip:ringer@127.0.0.1:{self.port}"
        branch = "z9hG4bK" + secrets.token_hex(6)
        call_id = secrets.token_hex(6)
        self.send("INVITE", uri, call_id=call_id, branch=branch, body=SEED_SDP,
                  content_type="application/sdp")
        await self.peer.wait(self.peer.status(180, "INVITE"))
        since = self.send("CANCEL", uri, call_id=call_id, branch=branch)
        await self.peer.wait(self.peer.status(200, "CANCEL"), since=since)
        terminated = await self.peer.wait(self.peer.status(487, "INVITE"), since=since)
        self.assertIn("tag=", terminated.header("to"))
        self.assertEqual(self.server.container.sessions.sessions("ringer")[0]
                         .sessions_of("sip")[0].state, "terminated")

    async def test_cancel_after_the_200(self) -> None:
        """A CANCEL of an INVITE already answered 200 (its transaction only
        waits, as a record) gets 200 with the INVITE's To tag, and the
        call goes on: nothing is terminated (RFC 3261 9.2)."""
        branch = "z9hG4bK" + secrets.token_hex(6)
        call_id = secrets.token_hex(6)
        self.send("INVITE", self.uri, call_id=call_id, branch=branch, body=SEED_SDP,
                  content_type="application/sdp")
        ok = await self.peer.wait(self.peer.status(200, "INVITE"))
        invite_tag = ok.header("to").partition("tag=")[2]
        self.assertTrue(invite_tag)
        since = self.send("CANCEL", self.uri, call_id=call_id, branch=branch)
        cancelled = await self.peer.wait(self.peer.status(200, "CANCEL"), since=since)
        self.assertEqual(cancelled.header("to").partition("tag=")[2], invite_tag)
        self.assertEqual(self.server.container.sessions.sessions("chatline")[0]
                         .sessions_of("sip")[0].state, "confirmed")

    async def test_cancel_unknown(self) -> None:
        """A CANCEL matching no INVITE gets 481."""
        await self.ask("CANCEL", 481)


def digest(user: str, realm: str, password: str, method: str, uri: str, nonce: str,
           algorithm: str = "MD5") -> str:
    h = hashlib.md5 if algorithm == "MD5" else hashlib.sha256
    ha1 = h(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    nc, cnonce = "00000001", "abcdef"
    response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}"')


class RegisterTests(SipFixture):
    def setUp(self) -> None:
        super().setUp()
        self.server.accounts.add("romeo@localhost", "montague")

    async def register(self, algorithm: str, password: str, expires: int = 600,
                       call_id: str = "reg1", cseq: int = 2):
        uri = "sip:localhost"
        challenge = await self.ask("REGISTER", 401, uri, call_id=call_id, cseq=cseq - 1,
                                   to="<sip:romeo@localhost>", extra=f"Expires: {expires}")
        offers = challenge.all("www-authenticate")
        self.assertTrue(any("SHA-256" in o for o in offers))
        self.assertTrue(any("MD5" in o for o in offers))
        nonce = re.search(r'nonce="([^"]+)"', offers[0]).group(1)
        auth = digest("romeo", "localhost", password, "REGISTER", uri, nonce, algorithm)
        since = self.send("REGISTER", uri, call_id=call_id, cseq=cseq,
                          to="<sip:romeo@localhost>",
                          extra=f"Expires: {expires}\nAuthorization: {auth}")
        return await self.peer.wait(lambda m: m.status in (200, 401, 403, 423),
                                    since=since)

    async def test_register_md5_and_sha256(self) -> None:
        """Digest with MD5 or SHA-256 against the account's stored HA1 registers."""
        for algorithm, cseq in (("MD5", 2), ("SHA-256", 4)):
            ok = await self.register(algorithm, "montague", cseq=cseq)
            self.assertEqual(ok.status, 200, ok.start)
            self.assertIn(f"sip:romeo@127.0.0.1:{self.peer.port}", ok.header("contact"))
            self.assertRegex(ok.header("contact"), r"expires=\d+")
        self.assertEqual(len(await self.server.sip.registrar.lookup("sip:romeo@localhost")), 1)

    async def test_wrong_password(self) -> None:
        """A wrong password is challenged again."""
        reply = await self.register("MD5", "capulet")
        self.assertEqual(reply.status, 401)
        self.assertEqual(await self.server.sip.registrar.lookup("sip:romeo@localhost"), [])

    async def test_bad_contact_is_a_400(self) -> None:
        """An authenticated REGISTER whose Contact does not parse gets a 400
        naming it (parsed on the reactor thread), not a 500."""
        uri = "sip:localhost"
        challenge = await self.ask("REGISTER", 401, uri, call_id="bad", cseq=1,
                                   to="<sip:romeo@localhost>")
        nonce = re.search(r'nonce="([^"]+)"', challenge.header("www-authenticate")).group(1)
        auth = digest("romeo", "localhost", "montague", "REGISTER", uri, nonce)
        reply = await self.ask("REGISTER", 400, uri, call_id="bad", cseq=2,
                               to="<sip:romeo@localhost>",
                               extra=f"Authorization: {auth}\nContact: <sip:x@[bad>")
        self.assertIn("Contact", reply.start)
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_unregister(self) -> None:
        """Expires: 0 removes the binding."""
        await self.register("MD5", "montague", cseq=2)
        reply = await self.register("MD5", "montague", expires=0, cseq=4)
        self.assertEqual(reply.status, 200)
        self.assertEqual(await self.server.sip.registrar.lookup("sip:romeo@localhost"), [])

    async def test_app_reaches_registered_user(self) -> None:
        """A request to a registered AOR goes to the registered contact."""
        from tests.sipapps import CallerServlet

        CallerServlet.responses = []
        ok = await self.register("MD5", "montague")
        self.assertEqual(ok.status, 200)
        since = self.send("MESSAGE", f"sip:caller@127.0.0.1:{self.port}",
                          body="sip:romeo@localhost", content_type="text/plain")
        incoming = await self.peer.wait(lambda m: m.method == "MESSAGE", since=since)
        self.assertTrue(incoming.start.startswith(
            f"MESSAGE sip:romeo@127.0.0.1:{self.peer.port} "), incoming.start)

    async def test_interval_too_brief(self) -> None:
        """An expiry below min_expires gets 423 with Min-Expires."""
        reply = await self.register("MD5", "montague", expires=10)
        self.assertEqual(reply.status, 423)
        self.assertEqual(reply.header("min-expires"), "60")


class UacTests(SipFixture):
    async def test_app_sends_message(self) -> None:
        """An app sends a MESSAGE through the SipFactory; the 200 reaches its servlet."""
        from tests.sipapps import CallerServlet

        CallerServlet.responses = []
        target = f"sip:romeo@127.0.0.1:{self.peer.port}"
        since = self.send("MESSAGE", f"sip:caller@127.0.0.1:{self.port}", body=target,
                          content_type="text/plain")
        await self.peer.wait(self.peer.status(200, "MESSAGE"), since=since)
        incoming = await self.peer.wait(lambda m: m.method == "MESSAGE", since=since)
        self.assertEqual(incoming.body, b"hello from caller")
        self.assertIn("branch=z9hG4bK", incoming.header("via"))
        # Answer it, echoing Via/From/To/Call-ID/CSeq.
        answer = ["SIP/2.0 200 OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            value = incoming.header(name)
            if name == "to":
                value += ";tag=peer1"
            answer.append(f"{name}: {value}")
        answer.append("Content-Length: 0")
        self.peer.send("\r\n".join(answer) + "\r\n\r\n")
        for _ in range(50):
            if CallerServlet.responses:
                break
            await sleep(0.02)
        self.assertEqual(CallerServlet.responses, [(200, "MESSAGE")])

    async def test_app_request_times_out(self) -> None:
        """An unanswered request ends in a 408 delivered to the app (Timer F)."""
        from tests.sipapps import CallerServlet

        CallerServlet.responses = []
        silent = UdpPeer(self.port)
        self.addCleanup(silent.close)
        self.send("MESSAGE", f"sip:caller@127.0.0.1:{self.port}",
                  body=f"sip:nobody@127.0.0.1:{silent.port}", content_type="text/plain")
        for _ in range(200):
            if CallerServlet.responses:
                break
            await sleep(0.05)
        self.assertEqual(CallerServlet.responses, [(408, "MESSAGE")])
        self.assertGreaterEqual(len([m for m in silent.received if m.method == "MESSAGE"]), 3)


class ChallengeTests(SipFixture):
    def setUp(self) -> None:
        self.server, self.port = start_server(self.mktemp(), challenge_invites=True)
        self.addCleanup(stop_server, self.server)
        self.peer = UdpPeer(self.port)
        self.addCleanup(self.peer.close)
        self.uri = f"sip:chatline@127.0.0.1:{self.port}"
        self.server.accounts.add("romeo@localhost", "montague")

    async def test_invite_challenged(self) -> None:
        """With challenge_invites, an INVITE needs digest credentials of an account."""
        challenge = await self.ask("INVITE", 401, body=SEED_SDP,
                                   content_type="application/sdp", call_id="c1")
        nonce = re.search(r'nonce="([^"]+)"', challenge.header("www-authenticate")).group(1)
        auth = digest("romeo", "localhost", "montague", "INVITE", self.uri, nonce)
        ok = await self.ask("INVITE", 200, body=SEED_SDP, content_type="application/sdp",
                            call_id="c1", cseq=2, extra=f"Authorization: {auth}")
        self.assertIn("a=jid:chatline@localhost", ok.body.decode())

    async def test_cancel_while_credentials_are_looked_up(self) -> None:
        """A CANCEL that arrives while the INVITE's digest secret is being
        fetched ends it: 487, and the app never sees the INVITE."""
        challenge = await self.ask("INVITE", 401, body=SEED_SDP,
                                   content_type="application/sdp", call_id="c9")
        nonce = re.search(r'nonce="([^"]+)"', challenge.header("www-authenticate")).group(1)
        auth = digest("romeo", "localhost", "montague", "INVITE", self.uri, nonce)
        accounts = self.server.sip.registrar.authenticator.accounts
        fetched = accounts.digests
        held: list = []

        def hold(domain, wanted):
            gate: Deferred = Deferred()
            held.append(gate)
            return gate.addCallback(lambda _: fetched(domain, wanted))

        self.patch(accounts, "digests", hold)
        sessions = len(self.server.container.sessions.sessions())
        branch = "z9hG4bKheld" + secrets.token_hex(4)
        self.send("INVITE", body=SEED_SDP, content_type="application/sdp", call_id="c9",
                  cseq=2, branch=branch, extra=f"Authorization: {auth}")
        for _ in range(100):
            if held:
                break
            await sleep(0.01)
        # The answer waits on the database: 100 (Trying) went at once.
        await self.peer.wait(self.peer.status(100, "INVITE"))
        since = self.send("CANCEL", call_id="c9", cseq=2, branch=branch)
        await self.peer.wait(self.peer.status(487, "INVITE"), since=since)
        held[0].callback(None)
        await sleep(0.2)
        self.assertEqual(len(self.server.container.sessions.sessions()), sessions)
        self.assertFalse([m for m in self.peer.received if m.start.startswith("SIP/2.0 200")
                          and "INVITE" in (m.header("cseq") or "")])


class TcpReuseTests(SipFixture):
    async def test_outgoing_connection_reused(self) -> None:
        """Two requests to one TCP destination share one connection."""
        from twisted.internet.protocol import Factory

        from tests.sipapps import CallerServlet

        CallerServlet.responses = []
        peers: list[TcpPeer] = []

        class Accept(Factory):
            def buildProtocol(self, addr):
                peer = TcpPeer()
                peers.append(peer)
                return peer

        listening = reactor.listenTCP(0, Accept(), interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        target = f"sip:romeo@127.0.0.1:{listening.getHost().port};transport=tcp"
        for n in range(2):
            self.send("MESSAGE", f"sip:caller@127.0.0.1:{self.port}", body=target,
                      content_type="text/plain", call_id=f"reuse{n}")
        for _ in range(100):
            if peers and len([m for m in peers[0].received if m.method == "MESSAGE"]) == 2:
                break
            await sleep(0.02)
        self.assertEqual(len(peers), 1)
        self.assertEqual(len([m for m in peers[0].received if m.method == "MESSAGE"]), 2)
        self.assertIn("SIP/2.0/TCP", peers[0].received[0].header("via"))
        for peer in peers:
            peer.close()
