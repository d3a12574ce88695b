"""
Integration with a real third-party SIP peer: sipp (Debian's sip-tester)
against the whole server, over UDP and TCP on loopback.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.siphelpers import UdpPeer, request, start_server, stop_server
from tests.sipp_harness import SippUas, require_sipp, run_sipp_async


class SippTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        require_sipp()
        # Real RFC timer values; the default challenge order (MD5 first),
        # which sipp, reading only the first challenge, must get through.
        self.server, self.port = start_server(self.mktemp(), t1=0.5, t2=4.0,
                                              algorithms=None)
        self.addCleanup(stop_server, self.server)
        self.target = f"127.0.0.1:{self.port}"

    async def sipp(self, scenario: str, transport: str = "u1", **kwargs):
        result = await run_sipp_async(scenario, self.target, transport=transport, **kwargs)
        self.assertTrue(result.ok, result.explain())
        return result

    async def test_jabber_chat_invite_udp(self) -> None:
        """INVITE with the seed's SDP: 200 declines audio, accepts chat; ACK; BYE → 200."""
        await self.sipp("uac_jabber.xml", service="chatline", calls=5, rate=10)
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])

    async def test_jabber_chat_invite_tcp(self) -> None:
        """The same call flow over TCP."""
        await self.sipp("uac_jabber.xml", "t1", service="chatline", calls=5, rate=10)

    async def test_delayed_offer_udp(self) -> None:
        """INVITE without SDP: the 200 offers chatline's chat (m=message, a=jid); ACK answers."""
        await self.sipp("uac_delayed_offer.xml", service="chatline", calls=5, rate=10)
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])

    async def test_delayed_offer_without_answer_udp(self) -> None:
        """An ACK without the answer: the server ends the dialog with BYE, sipp answers 200."""
        result = await self.sipp("uac_delayed_offer_no_answer.xml", service="chatline",
                                 calls=3, rate=10)
        self.assertEqual((result.successful, result.failed), (3, 0))
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])
        self.assertEqual(self.server.sip.dialogs, {})

    async def test_options(self) -> None:
        """OPTIONS to the server: 200 with Allow (INVITE), Accept and Supported."""
        await self.sipp("options.xml", calls=2)

    async def test_register(self) -> None:
        """REGISTER with the default challenges (sipp knows only MD5 and
        reads only the first): 401, digest with the password → 200; un-REGISTER."""
        self.server.accounts.add("sippuser@localhost", "sipp-secret")
        await self.sipp("register.xml", auth=("sippuser", "sipp-secret"))
        self.assertEqual(await self.server.sip.registrar.lookup("sip:sippuser@localhost"), [])

    async def test_cancel_ringing_call(self) -> None:
        """CANCEL of a ringing call: 200 for CANCEL, 487 for the INVITE, ACK."""
        await self.sipp("cancel.xml", service="ringer", calls=3, rate=10)

    async def test_cancel_ringing_call_tcp(self) -> None:
        """CANCEL over TCP."""
        await self.sipp("cancel.xml", "t1", service="ringer", calls=2, rate=10)

    async def test_app_places_a_call(self) -> None:
        """An app as UAC: INVITE to sipp's UAS, 200, ACK by the core, BYE, 200."""
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        from tests.sipapps import DialerServlet

        DialerServlet.responses = []
        uas = SippUas("builtin:uas", calls=1).start()
        self.addCleanup(uas.stop)
        trigger = UdpPeer(self.port)
        self.addCleanup(trigger.close)
        trigger.send(request("MESSAGE", f"sip:dialer@127.0.0.1:{self.port}", trigger.port,
                             body=f"sip:service@{uas.target}", content_type="text/plain"))
        for _ in range(200):
            if (200, "BYE") in DialerServlet.responses:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(DialerServlet.responses, [(200, "INVITE"), (200, "BYE")])
        result = await deferLater(reactor, 0.2, uas.wait, 10)
        self.assertTrue(result.ok, result.explain())

    async def test_load_1000_calls(self) -> None:
        """1,000 jabber-chat calls through the chatline app with zero failed calls."""
        result = await self.sipp("uac_jabber.xml", service="chatline", calls=1000,
                                 rate=100, max_concurrent=200, timeout=90)
        self.assertEqual((result.successful, result.failed), (1000, 0))
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])
