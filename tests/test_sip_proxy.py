"""
The proxy (RFC 3261 section 16) between a UDP phone and a client registered
over a WebSocket, on real loopback sockets: the INVITE down the WebSocket
with our Via and two Record-Routes (RFC 5658; the WebSocket side's naming
the flow), responses back without our Via, the ACK and BYE routed through
us both ways, CANCEL, a dead flow, and the other direction.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from twisted.trial.unittest import TestCase

from convergence.sip.proxy import flow_of, flow_user
from convergence.sip.uri import SipUri
from tests.siphelpers import SEED_SDP, UdpPeer, request
from tests.test_sip_ws import WsFixture


def respond(message: Any, status: int, reason: str = "OK", body: str = "",
            contact: str | None = None, to_tag: str | None = None) -> str:
    """A response to C{message} as a UAS writes it (Vias, Record-Routes copied)."""
    to = message.header("to")
    if "tag=" not in to and status > 100:
        to += f";tag={to_tag or 'uas' + secrets.token_hex(3)}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in message.all("via")]
    lines += [f"Record-Route: {r}" for r in message.all("record-route")]
    lines += [f"From: {message.header('from')}", f"To: {to}",
              f"Call-ID: {message.header('call-id')}", f"CSeq: {message.header('cseq')}"]
    if contact:
        lines.append(f"Contact: {contact}")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def uri_of(name_addr: str) -> str:
    return re.search(r"<([^>]+)>", name_addr).group(1)


class FlowTokenTests(TestCase):
    def test_round_trip(self) -> None:
        for token in ("ws:127.0.0.1:4000", "wss:[::1]:5"):
            self.assertEqual(flow_of(SipUri.parse(f"sip:{flow_user(token)}@h;lr")), token)
        self.assertIsNone(flow_of(SipUri.parse("sip:ob-zz@h;lr")))
        self.assertIsNone(flow_of(SipUri.parse("sip:alice@h;lr")))


class ProxyFixture(WsFixture):
    async def call(self) -> tuple[Any, Any, Any, Any, str]:
        """A UDP caller INVITEs romeo, registered over WS: both ends' views."""
        self.ws = await self.connect()
        self.assertEqual((await self.register(self.ws)).status, 200)
        self.caller = UdpPeer(self.udp_port)
        self.addCleanup(self.caller.close)
        call_id = secrets.token_hex(6)
        self.caller.send(request("INVITE", "sip:romeo@localhost", self.caller.port,
                                 call_id=call_id, body=SEED_SDP,
                                 content_type="application/sdp"))
        invite = await self.ws.wait(lambda m: m.method == "INVITE")
        return self.ws, self.caller, invite, call_id, f"sip:romeo@{self.ws.host};transport=ws"


class ProxiedCallTests(ProxyFixture):
    async def test_udp_caller_reaches_websocket_client(self) -> None:
        """INVITE, 180, 200, ACK and BYE (from the WebSocket side) through us."""
        ws, caller, invite, call_id, contact = await self.call()
        self.assertEqual(invite.start, f"INVITE {contact} SIP/2.0")
        vias = invite.all("via")
        self.assertEqual(len(vias), 2)
        self.assertTrue(vias[0].startswith(f"SIP/2.0/WS 127.0.0.1:{self.http_port};"))
        self.assertIn(f"127.0.0.1:{caller.port}", vias[1])
        self.assertEqual(invite.header("max-forwards"), "69")
        rr = invite.all("record-route")
        self.assertEqual(len(rr), 2, rr)  # RFC 5658: one for each side
        ws_side, udp_side = SipUri.parse(uri_of(rr[0])), SipUri.parse(uri_of(rr[1]))
        self.assertEqual(ws_side.transport, "ws")
        self.assertRegex(flow_of(ws_side), r"^ws:127\.0\.0\.1:\d+$")
        self.assertEqual(udp_side.port, self.udp_port)
        self.assertIn("lr", udp_side.params)
        self.assertEqual(invite.body.decode(), SEED_SDP)

        answer = SEED_SDP.replace("m=audio 39923", "m=audio 0")
        ws.send(respond(invite, 180, "Ringing", to_tag="ws1"))
        ringing = await caller.wait(caller.status(180))
        self.assertEqual(len(ringing.all("via")), 1)
        ws.send(respond(invite, 200, body=answer, contact=f"<{contact}>", to_tag="ws1"))
        ok = await caller.wait(caller.status(200, "INVITE"))
        self.assertEqual(ok.all("via"), [vias[1] + ";received=127.0.0.1"]
                         if "received" not in vias[1] else [vias[1]])
        self.assertEqual(ok.all("record-route"), rr)
        self.assertEqual(ok.body.decode(), answer)

        # the caller's route set is the Record-Routes reversed (RFC 3261 12.1.2)
        routes = "\n".join(f"Route: {r}" for r in reversed(rr))
        caller.send(request("ACK", contact, caller.port, call_id=call_id, to_tag="ws1",
                            extra=routes))
        ack = await ws.wait(lambda m: m.method == "ACK")
        self.assertEqual(ack.start, f"ACK {contact} SIP/2.0")
        self.assertEqual(ack.all("route"), [])  # both of ours popped

        # the callee's BYE: its route set is the Record-Routes as they are
        ws.send(ws.request("BYE", f"sip:romeo@127.0.0.1:{caller.port}", call_id=call_id,
                           cseq=7, from_tag="ws1", to_tag="ft1",
                           extra="\n".join(f"Route: {r}" for r in rr)))
        got = await caller.wait(lambda m: m.method == "BYE")
        self.assertTrue(got.start.startswith(f"BYE sip:romeo@127.0.0.1:{caller.port} "))
        self.assertTrue(got.all("via")[0].startswith(f"SIP/2.0/UDP 127.0.0.1:{self.udp_port};"))
        caller.send(respond(got, 200))
        done = await ws.wait(lambda m: m.status == 200 and "BYE" in (m.header("cseq") or ""))
        self.assertEqual(len(done.all("via")), 1)

    async def test_cancel(self) -> None:
        """The caller CANCELs a ringing call: 200 for the CANCEL, the branch
        CANCELled, its 487 forwarded, its ACK sent by our client transaction."""
        ws, caller, invite, call_id, contact = await self.call()
        ws.send(respond(invite, 180, "Ringing", to_tag="ws2"))
        await caller.wait(caller.status(180))
        branch = re.search(r"branch=([^;,\s]+)", caller.received[0].header("via")).group(1)
        caller.send(request("CANCEL", "sip:romeo@localhost", caller.port, call_id=call_id,
                            branch=branch))
        await caller.wait(caller.status(200, "CANCEL"))
        cancel = await ws.wait(lambda m: m.method == "CANCEL")
        self.assertEqual(cancel.start, f"CANCEL {contact} SIP/2.0")
        self.assertEqual(cancel.all("via"), invite.all("via")[:1])
        ws.send(respond(cancel, 200))
        ws.send(respond(invite, 487, "Request Terminated", to_tag="ws2"))
        await caller.wait(caller.status(487, "INVITE"))
        ack = await ws.wait(lambda m: m.method == "ACK")
        self.assertEqual(ack.all("via"), invite.all("via")[:1])

    async def test_callee_busy(self) -> None:
        """A 486 from the WebSocket side reaches the caller; ACKed hop by hop."""
        ws, caller, invite, _, _ = await self.call()
        ws.send(respond(invite, 486, "Busy Here"))
        busy = await caller.wait(caller.status(486))
        self.assertEqual(len(busy.all("via")), 1)
        await ws.wait(lambda m: m.method == "ACK")

    async def test_unregistered_and_gone(self) -> None:
        """Nobody registered: 404; only a closed WebSocket's binding: 480."""
        caller = UdpPeer(self.udp_port)
        self.addCleanup(caller.close)
        caller.send(request("INVITE", "sip:romeo@localhost", caller.port, body=SEED_SDP,
                            content_type="application/sdp"))
        await caller.wait(caller.status(404))
        self.server.locations.register_binding(
            "sip:romeo@localhost", "sip:romeo@gone.invalid;transport=ws",
            1e12, "old", 1, received="ws:127.0.0.1:1")
        caller.send(request("INVITE", "sip:romeo@localhost", caller.port, body=SEED_SDP,
                            content_type="application/sdp", call_id="second"))
        await caller.wait(caller.status(480))

    async def test_websocket_client_calls_udp_phone(self) -> None:
        """The other way: the WebSocket client INVITEs a user registered over UDP."""
        from tests.test_sip_core import digest

        self.server.accounts.add("juliet@localhost", "capulet")
        phone = UdpPeer(self.udp_port)
        self.addCleanup(phone.close)
        phone.send(request("REGISTER", "sip:localhost", phone.port, call_id="j1", cseq=1,
                           to="<sip:juliet@localhost>"))
        challenge = await phone.wait(phone.status(401))
        nonce = re.search(r'nonce="([^"]+)"', challenge.header("www-authenticate")).group(1)
        auth = digest("juliet", "localhost", "capulet", "REGISTER", "sip:localhost", nonce)
        phone.send(request("REGISTER", "sip:localhost", phone.port, call_id="j1", cseq=2,
                           to="<sip:juliet@localhost>", extra=f"Authorization: {auth}"))
        await phone.wait(phone.status(200, "REGISTER"))
        ws = await self.connect()
        ws.send(ws.request("INVITE", "sip:juliet@localhost", call_id="wj", body=SEED_SDP,
                           content_type="application/sdp"))
        invite = await phone.wait(lambda m: m.method == "INVITE")
        self.assertTrue(invite.start.startswith(f"INVITE sip:romeo@127.0.0.1:{phone.port} "))
        rr = invite.all("record-route")
        self.assertEqual(len(rr), 2)
        self.assertIsNone(flow_of(SipUri.parse(uri_of(rr[0]))))  # the UDP side's
        self.assertRegex(flow_of(SipUri.parse(uri_of(rr[1]))), r"^ws:")
        phone.send(respond(invite, 200, body=SEED_SDP.replace("m=audio 39923", "m=audio 0"),
                           contact=f"<sip:juliet@127.0.0.1:{phone.port}>"))
        ok = await ws.wait(lambda m: m.status == 200 and "INVITE" in m.header("cseq"))
        self.assertEqual(ok.all("record-route"), rr)
        self.assertEqual(len(ok.all("via")), 1)


class OutboundProxyRouteTests(ProxyFixture):
    async def test_preloaded_route_to_us(self) -> None:
        """A client using us as its outbound proxy (a Route to us on an
        initial request for one of our apps) is served as without it."""
        peer = UdpPeer(self.udp_port)
        self.addCleanup(peer.close)
        route = f"Route: <sip:127.0.0.1:{self.udp_port};lr>"
        peer.send(request("INVITE", "sip:chatline@localhost", peer.port, body=SEED_SDP,
                          content_type="application/sdp", extra=route))
        ok = await peer.wait(peer.status(200, "INVITE"))
        self.assertIn("a=jid:chatline@localhost", ok.body.decode())
        peer.send(request("OPTIONS", "sip:localhost", peer.port, extra=route))
        await peer.wait(peer.status(200, "OPTIONS"))
