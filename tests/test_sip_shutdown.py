"""
Graceful SIP shutdown: confirmed dialogs get BYE, INVITEs get 503 with
Retry-After, and the listener stops once the BYEs are answered or the grace
period (C{sip.shutdown_grace}) is over.  The UA core on a Clock and a
StringTransport, then SipListener over real loopback UDP with the
project's test peer and with sipp.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from convergence.config import ConfigError, load_config
from convergence.service import SipListener, build, make_service
from tests.siphelpers import SEED_SDP, Parsed, UdpPeer, request
from tests.sipp_harness import require_sipp, run_sipp_async
from tests.test_sip_delayed_offer import CoreHarness, answer_sdp


def fired(d: Any) -> bool:
    results: list[Any] = []
    d.addBoth(lambda r: results.append(r) or r)
    return bool(results)


class CoreShutDownTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = CoreHarness()
        self.addCleanup(self.h.stop)

    def established(self) -> tuple[str, str]:
        call_id, to_tag, ok = self.h.invite(body=SEED_SDP)
        self.assertEqual(ok.status, 200)
        self.h.send("ACK", call_id=call_id, to_tag=to_tag)
        return call_id, to_tag

    def test_byes_then_done_when_answered(self) -> None:
        """Every confirmed dialog gets BYE; the Deferred fires when all are answered."""
        first, second = self.established(), self.established()
        d = self.h.core.shut_down(2.0)
        byes = self.h.requests("BYE")
        self.assertEqual(sorted(b.header("call-id") for b in byes),
                         sorted([first[0], second[0]]))
        self.assertFalse(fired(d))
        self.h.answer(byes[0])
        self.assertFalse(fired(d))
        self.h.answer(byes[1])
        self.assertTrue(fired(d))
        self.assertEqual(self.h.core.dialogs, {})

    def test_new_invite_gets_503(self) -> None:
        self.established()
        self.h.core.shut_down(2.0)
        _, _, final = self.h.invite(body=SEED_SDP)
        self.assertEqual(final.status, 503)
        self.assertEqual(final.header("retry-after"), "30")
        _, _, final = self.h.invite()  # a delayed offer too
        self.assertEqual(final.status, 503)
        self.assertEqual(len(self.h.sessions()), 1)  # no new session for them

    def test_grace_bounds_the_wait(self) -> None:
        """A BYE never answered: the Deferred fires after the grace period."""
        self.established()
        d = self.h.core.shut_down(2.0)
        self.h.clock.advance(1.9)
        self.assertFalse(fired(d))
        self.h.clock.advance(0.1)
        self.assertTrue(fired(d))

    def test_pending_invite_gets_503(self) -> None:
        """An INVITE the app has not answered yet: 503, and nothing to wait for."""
        call_id = secrets.token_hex(6)
        self.h.send("INVITE", "silent", call_id=call_id, body=SEED_SDP,
                    content_type="application/sdp")
        self.assertEqual(self.h.last(180, "INVITE").header("call-id"), call_id)
        d = self.h.core.shut_down(2.0)
        final = self.h.last(503, "INVITE")
        self.assertEqual(final.header("call-id"), call_id)
        self.assertEqual(final.header("retry-after"), "30")
        self.assertTrue(fired(d))
        self.assertEqual(self.h.requests("BYE"), [])
        self.assertEqual(self.h.core.dialogs, {})

    def test_unacked_dialog_gets_bye_after_its_ack(self) -> None:
        """RFC 3261 15: no BYE before the ACK of our 2xx; then at once."""
        call_id, to_tag, _ = self.h.invite(body=SEED_SDP)
        d = self.h.core.shut_down(2.0)
        self.assertEqual(self.h.requests("BYE"), [])
        self.h.send("ACK", call_id=call_id, to_tag=to_tag)
        [bye] = self.h.requests("BYE")
        self.assertEqual(bye.header("call-id"), call_id)
        self.assertFalse(fired(d))
        self.h.answer(bye)
        self.assertTrue(fired(d))

    def test_delayed_offer_answered_during_shutdown(self) -> None:
        """A delayed offer's ACK with its answer during shutdown: the app sees it, then BYE."""
        call_id, to_tag, ok = self.h.invite()
        d = self.h.core.shut_down(2.0)
        self.h.send("ACK", call_id=call_id, to_tag=to_tag,
                    body=answer_sdp(self.h.sessions()[0]["thread"]),
                    content_type="application/sdp")
        self.assertEqual(self.h.sessions()[0]["peer_jid"], "romeo@localhost/orchard")
        [bye] = self.h.requests("BYE")
        self.h.answer(bye)
        self.assertTrue(fired(d))

    def test_never_acked_dialog_gets_bye_at_the_end(self) -> None:
        call_id, _, _ = self.h.invite(body=SEED_SDP)
        d = self.h.core.shut_down(2.0)
        self.h.clock.advance(2.0)
        self.assertTrue(fired(d))
        [bye] = self.h.requests("BYE")
        self.assertEqual(bye.header("call-id"), call_id)

    def test_nothing_to_end(self) -> None:
        """No dialogs: done at once; a second call is done too."""
        self.assertTrue(fired(self.h.core.shut_down(2.0)))
        self.assertTrue(fired(self.h.core.shut_down(2.0)))
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_second_call_waits_for_the_first(self) -> None:
        self.established()
        first = self.h.core.shut_down(2.0)
        second = self.h.core.shut_down(2.0)
        self.assertFalse(fired(second))
        self.h.answer(self.h.requests("BYE")[0])
        self.assertTrue(fired(first))
        self.assertTrue(fired(second))
        self.assertEqual(len(self.h.requests("BYE")), 1)


CONFIG = """
[sip]
shutdown_grace = {grace}
"""


def reply(message: Parsed, status: int = 200, reason: str = "OK") -> str:
    """A response to a request the server sent the test peer."""
    lines = [f"SIP/2.0 {status} {reason}"]
    for name in ("via", "from", "to", "call-id", "cseq"):
        lines += [f"{name}: {value}" for value in message.all(name)]
    return "\r\n".join(lines + ["Content-Length: 0"]) + "\r\n\r\n"


class ListenerShutDownTests(TestCase):
    """SipListener.stopService over real loopback UDP."""

    timeout = 60

    def setUp(self) -> None:
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        (root / "c.toml").write_text(CONFIG.format(grace=5.0))
        self.config = load_config(root / "c.toml", {"data_dir": str(root / "data")})
        self.server = build(self.config, reactor)
        self.addCleanup(self.server.close)
        self.listener = SipListener(self.server.sip, 0, "127.0.0.1",
                                    grace=self.config.sip.shutdown_grace)
        self.listener.startService()
        self.addCleanup(lambda: self.listener.running and self.listener.stopService())
        self.port = self.server.sip.transport.udp_port
        self.uri = f"sip:chatline@127.0.0.1:{self.port}"

    def peer(self) -> UdpPeer:
        peer = UdpPeer(self.port)
        self.addCleanup(peer.close)
        return peer

    async def dialog(self, peer: UdpPeer) -> str:
        call_id = secrets.token_hex(6)
        peer.send(request("INVITE", self.uri, peer.port, call_id=call_id, body=SEED_SDP,
                          content_type="application/sdp"))
        ok = await peer.wait(peer.status(200, "INVITE"))
        to_tag = ok.header("to").split("tag=")[1]
        peer.send(request("ACK", self.uri, peer.port, call_id=call_id, to_tag=to_tag))
        for _ in range(100):  # the ACK is in when the 2xx stops being retransmitted
            if not self.server.sip._unacked:
                break
            await deferLater(reactor, 0.02, lambda: None)
        return call_id

    async def test_stop_says_bye_and_refuses_invites(self) -> None:
        self.assertEqual(self.config.sip.shutdown_grace, 5.0)
        phone = self.peer()
        call_id = await self.dialog(phone)
        stopped = self.listener.stopService()
        bye = await phone.wait(lambda m: m.method == "BYE")
        self.assertEqual(bye.header("call-id"), call_id)
        self.assertFalse(fired(stopped))  # the listener waits for the BYE's answer
        other = self.peer()
        other.send(request("INVITE", self.uri, other.port, body=SEED_SDP,
                           content_type="application/sdp"))
        refused = await other.wait(other.status(503, "INVITE"))
        self.assertEqual(refused.header("retry-after"), "30")
        other.send(request("ACK", self.uri, other.port,
                           call_id=refused.header("call-id"),
                           to_tag=refused.header("to").split("tag=")[1]))
        phone.send(reply(bye))
        await stopped  # well before the 5 s grace: the BYE was answered
        self.assertEqual(self.listener.ports, [])
        self.assertEqual(self.server.sip.dialogs, {})

    async def test_sipp_dialog_gets_bye_when_stopped(self) -> None:
        """sipp in a dialog with chatline; the service stops; sipp gets BYE and answers."""
        require_sipp()
        running = run_sipp_async("uac_bye_on_shutdown.xml", f"127.0.0.1:{self.port}",
                                 transport="u1", service="chatline", calls=1, timeout=30)
        sip = self.server.sip
        for _ in range(500):  # up to 10 s for sipp to start and the call to be ACKed
            if sip.dialogs and not sip._unacked:
                break
            await deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(len(sip.dialogs), 1)
        await self.listener.stopService()
        result = await running
        self.assertTrue(result.ok, result.explain())
        self.assertEqual(result.successful, 1)


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> Path:
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        path = root / "c.toml"
        path.write_text(text)
        return path

    def test_default_and_setting(self) -> None:
        root = Path(self.mktemp())
        default = load_config(overrides={"data_dir": str(root)})
        self.assertEqual(default.sip.shutdown_grace, 2.0)
        config = load_config(self.write("[sip]\nshutdown_grace = 0.5\n"),
                             {"data_dir": str(root)})
        self.assertEqual(config.sip.shutdown_grace, 0.5)

    def test_negative_refused(self) -> None:
        with self.assertRaisesRegex(ConfigError, "shutdown_grace"):
            load_config(self.write("[sip]\nshutdown_grace = -1\n"))

    def test_make_service_passes_the_grace(self) -> None:
        root = Path(self.mktemp())
        config = load_config(self.write("[sip]\nshutdown_grace = 0.75\n"),
                             {"data_dir": str(root)})
        top = make_service(config, reactor)
        self.addCleanup(top.server.close)
        [listener] = [s for s in top if isinstance(s, SipListener)]
        self.assertEqual(listener.grace, 0.75)
