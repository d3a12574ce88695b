"""XEP-0202 Entity Time of the server."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.features.entity_time import utc_datetime
from tests.imhelpers import of
from tests.xmpphelpers import Client, make_server

T = "{urn:xmpp:time}"


class EntityTimeTests(SynchronousTestCase):
    def test_utc_from_the_server_clock(self) -> None:
        """The answer is the server clock's time in UTC with offset +00:00."""
        server, clock = make_server(self.mktemp())
        client = Client(server)
        client.login()
        clock.advance(1_765_000_000.25)
        client.send("<iq type='get' id='t1' to='localhost'><time xmlns='urn:xmpp:time'/></iq>")
        result = of(client.read(), "iq", id="t1")[0]
        self.assertEqual(result.get("type"), "result")
        self.assertEqual(result.findtext(f"{T}time/{T}tzo"), "+00:00")
        self.assertEqual(result.findtext(f"{T}time/{T}utc"), "2025-12-06T05:46:40.250Z")

    def test_datetime_format(self) -> None:
        """XEP-0082 DateTime, milliseconds, Z."""
        self.assertEqual(utc_datetime(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(utc_datetime(86399.9996), "1970-01-01T23:59:59.999Z")
