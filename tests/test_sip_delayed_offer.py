"""
Delayed offer (RFC 3261 13.2.1, RFC 3264): an INVITE without SDP gets our
offer in the 2xx and the answer comes in the ACK; an ACK without an
acceptable answer ends the dialog with BYE.  Unit tests on the offer/answer
state, the UA core on a Clock and a StringTransport, and the chatline and
selfhelp apps over real loopback UDP.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from convergence.container import DeploymentDescriptor
from convergence.container.application import Application, load_application
from convergence.container.container import Container
from convergence.sip.core import UserAgentCore
from convergence.sip.dialog import Dialog
from convergence.sip.message import parse_message
from convergence.sip.sdp import NotAcceptable, check_answer, parse_sdp
from convergence.sip.servlet import SipRequest, SipServlet
from convergence.sip.timers import Timers
from convergence.sip.transport import SipStreamProtocol, SipTransportLayer
from tests.siphelpers import SEED_SDP, Parsed, UdpPeer, request, start_server, stop_server

PEER_PORT = 5070

OFFER = (
    "v=0\r\no=chatline 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=message 5222 xmpp/tcp chat\r\na=jid:chatline@localhost\r\na=thread:t1\r\n"
)


def answer_sdp(thread: str = "t1", port: int = 5222, jid: str = "romeo@localhost/orchard",
               extra_media: str = "") -> str:
    """A caller's answer to a one-chat offer."""
    return ("v=0\r\no=romeo 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=message {port} xmpp/tcp chat\r\na=jid:{jid}\r\na=thread:{thread}\r\n"
            + extra_media)


class CheckAnswerTests(SynchronousTestCase):
    """sdp.check_answer: is an SDP an answer to an offer accepting a stream?"""

    def setUp(self) -> None:
        self.offer = parse_sdp(SEED_SDP)  # audio + chat

    def answer(self, audio_port: int, chat_port: int, chat: str = "message") -> Any:
        return parse_sdp(
            "v=0\r\no=j 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {audio_port} RTP/AVP 0\r\n"
            f"m={chat} {chat_port} xmpp/tcp chat\r\na=jid:j@localhost\r\n")

    def test_answer_accepting_a_stream(self) -> None:
        check_answer(self.offer, self.answer(0, 5222))
        check_answer(self.offer, self.answer(4000, 0))

    def test_nothing_accepted(self) -> None:
        with self.assertRaisesRegex(NotAcceptable, "accepts no stream"):
            check_answer(self.offer, self.answer(0, 0))

    def test_other_number_of_streams(self) -> None:
        with self.assertRaisesRegex(NotAcceptable, "1 m= lines, the offer 2"):
            check_answer(self.offer, parse_sdp(answer_sdp()))

    def test_other_media_type(self) -> None:
        with self.assertRaisesRegex(NotAcceptable, "stream 1 was offered as message"):
            check_answer(self.offer, self.answer(0, 5222, chat="text"))

    def test_enabling_a_disabled_stream(self) -> None:
        offer = parse_sdp(SEED_SDP.replace("m=audio 39923", "m=audio 0"))
        with self.assertRaisesRegex(NotAcceptable, "stream 0 is disabled"):
            check_answer(offer, self.answer(4000, 5222))


def invite_message(body: str = "", content_type: str | None = None) -> Any:
    return parse_message(request("INVITE", "sip:chatline@localhost", PEER_PORT, body=body,
                                 content_type=content_type).encode())


class DialogOfferAnswerTests(SynchronousTestCase):
    """The dialog keeps the offer/answer state."""

    def setUp(self) -> None:
        invite = invite_message()
        response = invite.create_response(200)
        response.set_to_tag("b1")
        self.dialog = Dialog.for_uas(invite, response)
        self.offer = parse_sdp(OFFER)

    def test_offer_in_2xx_answered_in_ack(self) -> None:
        self.dialog.offer_sent(self.offer)
        self.assertTrue(self.dialog.awaiting_answer)
        answer = parse_sdp(answer_sdp())
        self.dialog.receive_answer(answer)
        self.assertFalse(self.dialog.awaiting_answer)
        self.assertEqual(self.dialog.local_sdp, self.offer)
        self.assertEqual(self.dialog.remote_sdp, answer)

    def test_ack_without_answer(self) -> None:
        self.dialog.offer_sent(self.offer)
        with self.assertRaisesRegex(NotAcceptable, "no answer"):
            self.dialog.receive_answer(None)
        self.assertFalse(self.dialog.awaiting_answer)
        self.assertIsNone(self.dialog.local_sdp)

    def test_answer_rejecting_everything(self) -> None:
        self.dialog.offer_sent(self.offer)
        with self.assertRaises(NotAcceptable):
            self.dialog.receive_answer(parse_sdp(answer_sdp(port=0)))
        self.assertIsNone(self.dialog.remote_sdp)

    def test_offer_in_invite_answered_in_2xx(self) -> None:
        answer = parse_sdp(answer_sdp())
        self.dialog.answer_sent(self.offer, answer)
        self.assertFalse(self.dialog.awaiting_answer)
        self.assertEqual(self.dialog.remote_sdp, self.offer)
        self.assertEqual(self.dialog.local_sdp, answer)
        self.dialog.receive_answer(None)  # nothing pending: nothing to check


class NeedsOfferTests(SynchronousTestCase):
    def test_needs_offer(self) -> None:
        """Only a received INVITE without an SDP body needs our offer."""
        def needs(message: Any, outgoing: bool = False) -> bool:
            sreq = SipRequest(message, None, outgoing=outgoing)  # type: ignore[arg-type]
            return sreq.needs_offer

        self.assertTrue(needs(invite_message()))
        self.assertTrue(needs(invite_message("hello", "text/plain")))
        self.assertFalse(needs(invite_message(OFFER, "application/sdp")))
        self.assertFalse(needs(invite_message(), outgoing=True))
        ack = parse_message(request("ACK", "sip:chatline@localhost", PEER_PORT,
                                    to_tag="x").encode())
        self.assertFalse(needs(ack))


class BareServlet(SipServlet):
    """Answers every INVITE 200 without a body (wrong for a delayed offer)."""

    def do_invite(self, request: SipRequest) -> None:
        request.create_response(200).send()


class SilentServlet(SipServlet):
    """Never answers an INVITE (it rings forever)."""

    def do_invite(self, request: SipRequest) -> None:
        request.create_response(180).send()


def make_sip_app(name: str, servlet: type) -> Application:
    descriptor = DeploymentDescriptor(name=name, sip=[f"{name}@{{domain}}"],
                                      servlets={"sip": servlet})
    return Application(name, descriptor, {"sip": servlet()},
                       sip_addresses=(f"{name}@localhost",))


class CoreHarness:
    """The UA core on a Clock, one TCP peer on a StringTransport (127.0.0.1:5070)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.container = Container(self.clock, domains=["localhost"])
        self.container.deploy(load_application("chatline", "apps.chatline", ["localhost"]))
        self.container.deploy(make_sip_app("bare", BareServlet))
        self.container.deploy(make_sip_app("silent", SilentServlet))
        self.transport = SipTransportLayer(self.clock, None, "127.0.0.1")  # type: ignore[arg-type]
        self.core = UserAgentCore(self.clock, self.container, ["localhost"], self.transport,
                                  None, Timers(0.5, 4.0, 5.0))
        self.protocol = SipStreamProtocol(self.transport)
        self.wire = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", PEER_PORT))
        self.protocol.makeConnection(self.wire)
        self.received: list[Parsed] = []

    def send(self, method: str, user: str = "chatline", **kwargs: Any) -> None:
        text = request(method, f"sip:{user}@localhost", PEER_PORT, transport="TCP", **kwargs)
        text = text.replace(f"<sip:romeo@127.0.0.1:{PEER_PORT}>",
                            f"<sip:romeo@127.0.0.1:{PEER_PORT};transport=tcp>")
        self.protocol.dataReceived(text.encode())

    def messages(self) -> list[Parsed]:
        """Every message the core wrote so far, parsed."""
        data = self.wire.value()
        self.wire.clear()
        while data:
            head, _, rest = data.partition(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length\s*:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            self.received.append(Parsed(head + b"\r\n\r\n" + rest[:length]))
            data = rest[length:]
        return self.received

    def last(self, status: int | None = None, method: str | None = None) -> Parsed:
        for message in reversed(self.messages()):
            if (status is None or message.status == status) and (
                    method is None or message.method == method
                    or (message.header("cseq") or "").endswith(" " + method)):
                return message
        raise AssertionError(f"no {status} {method} in {self.received}")

    def requests(self, method: str) -> list[Parsed]:
        return [m for m in self.messages() if m.method == method]

    def answer(self, message: Parsed, status: int = 200) -> None:
        """Answer a request the core sent."""
        lines = [f"SIP/2.0 {status} OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            lines += [f"{name}: {v}" for v in message.all(name)]
        lines.append("Content-Length: 0")
        self.protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())

    def invite(self, user: str = "chatline", body: str = "", call_id: str | None = None,
               **kwargs: Any) -> tuple[str, str, Parsed]:
        """An INVITE (no body: a delayed offer); (call_id, to_tag, final response)."""
        call_id = call_id or secrets.token_hex(6)
        self.send("INVITE", user, call_id=call_id, body=body,
                  content_type="application/sdp" if body else None, **kwargs)
        final = [m for m in self.messages() if m.status and m.status >= 200
                 and m.header("call-id") == call_id][-1]
        return call_id, final.header("to").split("tag=")[1], final

    def sessions(self, app: str = "chatline") -> list[Any]:
        return self.container.sessions.sessions(app)

    def stop(self) -> None:
        self.core.shutdown()
        self.container.undeploy_all()


class CoreDelayedOfferTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = CoreHarness()
        self.addCleanup(self.h.stop)

    def test_offer_in_200_answer_in_ack(self) -> None:
        """INVITE without SDP → 200 offering chatline's chat → ACK with the answer."""
        call_id, to_tag, ok = self.h.invite()
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.header("content-type"), "application/sdp")
        body = ok.body.decode()
        self.assertRegex(body, r"m=message 5222 xmpp/tcp chat\r\n")
        self.assertIn("a=jid:chatline@localhost\r\n", body)
        thread = re.search(r"a=thread:(\S+)", body).group(1)
        [app_session] = self.h.sessions()
        self.assertEqual(app_session["thread"], thread)
        sip = app_session.sessions_of("sip")[0]
        self.assertTrue(sip.dialog.awaiting_answer)
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, body=answer_sdp(thread),
                    content_type="application/sdp")
        self.assertEqual(app_session["peer_jid"], "romeo@localhost/orchard")
        self.assertFalse(sip.dialog.awaiting_answer)
        self.assertEqual(sip.local_sdp, parse_sdp(body))
        self.assertEqual(sip.remote_sdp.media[0].attribute("jid"), "romeo@localhost/orchard")
        self.assertEqual(sip.state, "confirmed")
        self.h.clock.advance(40)  # no 2xx retransmission timer left, no BYE
        self.assertEqual(self.h.requests("BYE"), [])
        self.assertEqual(len([m for m in self.h.messages() if m.status == 200]), 1)

    def assert_bye_for(self, call_id: str, to_tag: str) -> None:
        [bye] = self.h.requests("BYE")
        self.assertEqual(bye.header("call-id"), call_id)
        self.assertIn(f"tag={to_tag}", bye.header("from"))
        self.assertIn("tag=ft1", bye.header("to"))
        self.assertTrue(bye.start.startswith("BYE sip:romeo@127.0.0.1:5070;transport=tcp "))
        self.assertEqual(self.h.sessions(), [])  # do_no_answer: the session ends
        self.assertEqual(self.h.core.dialogs, {})

    def test_ack_without_body_gets_bye(self) -> None:
        call_id, to_tag, _ = self.h.invite()
        self.h.send("ACK", call_id=call_id, to_tag=to_tag)
        self.assert_bye_for(call_id, to_tag)
        self.h.answer(self.h.requests("BYE")[0])
        self.h.clock.advance(40)
        self.assertEqual(len(self.h.requests("BYE")), 1)  # answered: not retransmitted

    def test_ack_rejecting_the_chat_gets_bye(self) -> None:
        call_id, to_tag, _ = self.h.invite()
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, body=answer_sdp(port=0),
                    content_type="application/sdp")
        self.assert_bye_for(call_id, to_tag)

    def test_ack_not_answering_the_offer_gets_bye(self) -> None:
        """An SDP with another number of m= lines is not an answer to the offer."""
        call_id, to_tag, _ = self.h.invite()
        extra = "m=audio 4000 RTP/AVP 0\r\n"
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, body=answer_sdp(extra_media=extra),
                    content_type="application/sdp")
        self.assert_bye_for(call_id, to_tag)

    def test_ack_with_broken_sdp_gets_bye(self) -> None:
        call_id, to_tag, _ = self.h.invite()
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, body="v=0\r\nm=x\r\n",
                    content_type="application/sdp")
        self.assert_bye_for(call_id, to_tag)

    def test_retransmitted_ack_changes_nothing(self) -> None:
        call_id, to_tag, _ = self.h.invite()
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, body=answer_sdp(),
                    content_type="application/sdp")
        self.h.send("ACK", call_id=call_id, to_tag=to_tag)  # a retransmission, no body
        self.assertEqual(self.h.requests("BYE"), [])
        self.assertEqual(len(self.h.sessions()), 1)

    def test_offer_in_invite_is_recorded(self) -> None:
        """The common path: offer in the INVITE, answer in the 200; the ACK needs no body."""
        call_id, to_tag, ok = self.h.invite(body=SEED_SDP)
        self.assertIn("m=audio 0 RTP/AVP 0", ok.body.decode())
        sip = self.h.sessions()[0].sessions_of("sip")[0]
        self.assertEqual(sip.remote_sdp, parse_sdp(SEED_SDP))
        self.assertEqual(sip.local_sdp, parse_sdp(ok.body))
        self.h.send("ACK", call_id=call_id, to_tag=to_tag)
        self.assertEqual(self.h.requests("BYE"), [])
        self.assertEqual(sip.state, "confirmed")

    def test_reinvite_without_offer(self) -> None:
        """A re-INVITE without SDP: the 200 offers the session as it is (same o=)."""
        call_id, to_tag, ok = self.h.invite(body=SEED_SDP)
        self.h.send("ACK", call_id=call_id, to_tag=to_tag)
        first = parse_sdp(ok.body)
        self.h.send("INVITE", call_id=call_id, to_tag=to_tag, cseq=2)
        again = self.h.last(200, "INVITE")
        self.assertIn("cseq: 2 INVITE".lower(), f"cseq: {again.header('cseq')}".lower())
        offer = parse_sdp(again.body)
        self.assertEqual(offer.origin, first.origin)  # nothing changed: same version
        self.assertEqual([m.port for m in offer.media], [0, 5222])
        answer = SEED_SDP.replace("m=audio 39923", "m=audio 0")
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, cseq=2, body=answer,
                    content_type="application/sdp")
        sip = self.h.sessions()[0].sessions_of("sip")[0]
        self.assertEqual(sip.remote_sdp, parse_sdp(answer))
        self.assertEqual(self.h.requests("BYE"), [])
        # A second re-INVITE whose ACK carries nothing ends the dialog.
        self.h.send("INVITE", call_id=call_id, to_tag=to_tag, cseq=3)
        self.h.send("ACK", call_id=call_id, to_tag=to_tag, cseq=3)
        self.assertEqual(len(self.h.requests("BYE")), 1)
        self.assertEqual(self.h.sessions(), [])

    def test_2xx_without_offer_is_refused(self) -> None:
        """An app answering 200 without SDP to a delayed offer gets a 500 sent instead."""
        _, _, final = self.h.invite("bare")
        self.assertEqual(final.status, 500)
        self.assertEqual(self.h.core.dialogs, {})
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_no_ack_still_ends_with_bye(self) -> None:
        """The 64*T1 rule holds for an unanswered offer too."""
        call_id, _, _ = self.h.invite()
        self.h.clock.advance(64 * 0.5 + 1)
        [bye] = self.h.requests("BYE")
        self.assertEqual(bye.header("call-id"), call_id)


class DelayedOfferOverUdpTests(TestCase):
    """chatline and selfhelp over real loopback UDP."""

    timeout = 30

    def setUp(self) -> None:
        self.server, self.port = start_server(self.mktemp())
        self.addCleanup(stop_server, self.server)
        self.peer = UdpPeer(self.port)
        self.addCleanup(self.peer.close)

    def send(self, method: str, user: str, **kwargs: Any) -> int:
        since = len(self.peer.received)
        self.peer.send(request(method, f"sip:{user}@127.0.0.1:{self.port}", self.peer.port,
                               **kwargs))
        return since

    async def invite(self, user: str) -> tuple[str, str, Parsed]:
        call_id = secrets.token_hex(6)
        since = self.send("INVITE", user, call_id=call_id)
        ok = await self.peer.wait(self.peer.status(200, "INVITE"), since=since)
        return call_id, ok.header("to").split("tag=")[1], ok

    async def test_chatline(self) -> None:
        call_id, to_tag, ok = await self.invite("chatline")
        thread = re.search(r"a=thread:(\S+)", ok.body.decode()).group(1)
        self.send("ACK", "chatline", call_id=call_id, to_tag=to_tag, body=answer_sdp(thread),
                  content_type="application/sdp")
        since = self.send("BYE", "chatline", call_id=call_id, to_tag=to_tag, cseq=2)
        await self.peer.wait(self.peer.status(200, "BYE"), since=since)
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])
        self.assertEqual([m for m in self.peer.received if m.method == "BYE"], [])

    async def test_chatline_no_answer(self) -> None:
        call_id, to_tag, _ = await self.invite("chatline")
        since = self.send("ACK", "chatline", call_id=call_id, to_tag=to_tag)
        bye = await self.peer.wait(lambda m: m.method == "BYE", since=since)
        self.assertEqual(bye.header("call-id"), call_id)
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])

    async def test_selfhelp(self) -> None:
        """selfhelp offers the bot's chat in a new thread; the ACK's JID is the customer."""
        call_id, to_tag, ok = await self.invite("selfhelp")
        body = ok.body.decode()
        self.assertIn("a=jid:selfhelp@localhost", body)
        thread = re.search(r"a=thread:(\S+)", body).group(1)
        # A customer on another server: the chat messages are bounced at once
        # (no federation), not after an account lookup that could outlive the test.
        customer = "romeo@montague.example/orchard"
        self.send("ACK", "selfhelp", call_id=call_id, to_tag=to_tag,
                  body=answer_sdp(thread, jid=customer), content_type="application/sdp")
        sessions = self.server.container.sessions
        for _ in range(100):
            if sessions.sessions("selfhelp") and \
                    sessions.sessions("selfhelp")[0].get("customer_jid"):
                break
            await self.sleep(0.02)
        [conversation] = sessions.sessions("selfhelp")
        self.assertEqual(conversation["customer_jid"], customer)
        self.assertEqual(conversation["thread"], thread)
        self.assertEqual(conversation["channel"], "sip")
        # the greeting went to the customer in the offered thread's chat
        self.assertEqual([s.peer for s in conversation.sessions_of("xmpp")], [customer])
        since = self.send("BYE", "selfhelp", call_id=call_id, to_tag=to_tag, cseq=2)
        await self.peer.wait(self.peer.status(200, "BYE"), since=since)
        self.assertEqual(sessions.sessions("selfhelp"), [])

    async def test_selfhelp_no_answer(self) -> None:
        call_id, to_tag, _ = await self.invite("selfhelp")
        since = self.send("ACK", "selfhelp", call_id=call_id, to_tag=to_tag)
        bye = await self.peer.wait(lambda m: m.method == "BYE", since=since)
        self.assertEqual(bye.header("call-id"), call_id)
        self.assertEqual(self.server.container.sessions.sessions("selfhelp"), [])

    @staticmethod
    def sleep(seconds: float) -> Any:
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        return deferLater(reactor, seconds, lambda: None)
