"""XEP-0092 Software Version of the server."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence import __version__
from convergence.xmpp.features.software_version import operating_system, package_version
from tests.imhelpers import of
from tests.xmpphelpers import Client, make_server

V = "{jabber:iq:version}"
QUERY = "<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>"


class SoftwareVersionTests(SynchronousTestCase):
    def ask(self, **config: object) -> tuple[Client, object]:
        server, _ = make_server(self.mktemp(), **config)
        client = Client(server)
        client.login()
        client.send(QUERY)
        return client, of(client.read(), "iq", id="v1")[0]

    def test_name_and_version_without_os(self) -> None:
        """The answer names convergence and the package version; by
        default it does not tell the operating system."""
        _, result = self.ask()
        self.assertEqual(result.get("type"), "result")
        self.assertEqual(result.get("from"), "localhost")
        self.assertEqual(result.findtext(f"{V}query/{V}name"), "convergence")
        self.assertEqual(result.findtext(f"{V}query/{V}version"), package_version())
        self.assertIsNone(result.find(f"{V}query/{V}os"))

    def test_os_when_configured(self) -> None:
        """With version_show_os the operating system is included."""
        _, result = self.ask(version_show_os=True)
        self.assertEqual(result.findtext(f"{V}query/{V}os"), operating_system())
        self.assertTrue(operating_system())

    def test_package_version_matches_source(self) -> None:
        """The installed (editable) package has the source tree's version."""
        self.assertEqual(package_version(), __version__)

    def test_account_is_not_the_server(self) -> None:
        """A version query to an account's bare JID is not answered for it
        by the server (service-unavailable)."""
        server, _ = make_server(self.mktemp())
        client = Client(server)
        client.login()
        client.send("<iq type='get' id='v2' to='bob@localhost'>"
                    "<query xmlns='jabber:iq:version'/></iq>")
        error = of(client.read(), "iq", id="v2")[0]
        self.assertEqual(error.get("type"), "error")
        self.assertIsNotNone(error.find(
            ".//{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable"))
