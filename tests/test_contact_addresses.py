"""XEP-0157 Contact Addresses: configuration and the serverinfo form."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, load_config
from convergence.xmpp.dataforms import DATA, values
from tests.imhelpers import of
from tests.xmpphelpers import Client, make_server

INFO = "{http://jabber.org/protocol/disco#info}"
SERVERINFO = "http://jabber.org/network/serverinfo"


class ContactConfigTests(SynchronousTestCase):
    def load(self, toml: str):
        path = Path(self.mktemp())
        path.write_text(toml)
        return load_config(path)

    def test_roles_and_uris(self) -> None:
        """[xmpp.contact] maps roles to lists of URIs."""
        config = self.load('[xmpp.contact]\nabuse = ["mailto:abuse@example.org",'
                           ' "xmpp:abuse@example.org"]\nstatus = ["https://status.example.org/"]\n')
        self.assertEqual(dict(config.xmpp.contact), {
            "abuse": ("mailto:abuse@example.org", "xmpp:abuse@example.org"),
            "status": ("https://status.example.org/",)})

    def test_default_is_empty(self) -> None:
        self.assertEqual(self.load("").xmpp.contact, ())

    def test_unknown_role(self) -> None:
        """An unknown role is named in a one-line error listing the known ones."""
        with self.assertRaises(ConfigError) as e:
            self.load('[xmpp.contact]\nmarketing = ["mailto:m@example.org"]\n')
        self.assertIn("xmpp.contact.marketing: unknown role", str(e.exception))
        self.assertIn("abuse, admin, feedback, sales, security, status, support",
                      str(e.exception))

    def test_not_a_uri(self) -> None:
        """A value that is not a URI (no scheme, spaces, not a string) is refused."""
        for value in ('["abuse@example.org"]', '["mailto:a b"]', '[42]', '"mailto:x@y"'):
            with self.assertRaises(ConfigError, msg=value) as e:
                self.load(f"[xmpp.contact]\nadmin = {value}\n")
            self.assertIn("xmpp.contact.admin", str(e.exception))


class ServerInfoFormTests(SynchronousTestCase):
    def info(self, **config: object):
        server, _ = make_server(self.mktemp(), **config)
        client = Client(server)
        client.login()
        client.send(f"<iq type='get' id='d1' to='localhost'><query xmlns='{INFO[1:-1]}'/></iq>")
        return of(client.read(), "iq", id="d1")[0].find(f"{INFO}query")

    def test_form_in_domain_disco_info(self) -> None:
        """The configured addresses are a serverinfo form in disco#info,
        one <role>-addresses field per role with its URIs in order."""
        query = self.info(contact=(
            ("support", ("https://example.org/help", "xmpp:help@example.org")),
            ("abuse", ("mailto:abuse@example.org",))))
        forms = query.findall(f"{{{DATA}}}x")
        self.assertEqual(len(forms), 1)
        self.assertEqual(forms[0].get("type"), "result")
        self.assertEqual(values(forms[0]), {
            "FORM_TYPE": [SERVERINFO],
            "abuse-addresses": ["mailto:abuse@example.org"],
            "support-addresses": ["https://example.org/help", "xmpp:help@example.org"]})
        # the identity and features are still there, before the form
        self.assertEqual(query[0].tag, f"{INFO}identity")
        self.assertIsNotNone(query.find(f"{INFO}feature[@var='urn:xmpp:ping']"))

    def test_no_form_without_addresses(self) -> None:
        self.assertIsNone(self.info().find(f"{{{DATA}}}x"))

    def test_account_disco_has_no_form(self) -> None:
        """The form belongs to the domain, not to accounts."""
        server, _ = make_server(self.mktemp(), contact=(("admin", ("xmpp:a@localhost",)),))
        client = Client(server)
        client.login()
        client.send(f"<iq type='get' id='d2' to='bob@localhost'><query xmlns='{INFO[1:-1]}'/></iq>")
        query = of(client.read(), "iq", id="d2")[0].find(f"{INFO}query")
        self.assertIsNone(query.find(f"{{{DATA}}}x"))
