"""XEP-0054 vcard-temp on StringTransport, and its SQLite store."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.auth.accounts import Accounts
from convergence.store.interfaces import IVCardStore
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_im import SqliteImStore
from convergence.xmpp.features.vcard import VCardUpdated
from tests.imhelpers import ImFixture, of

V = "{vcard-temp}"
ERR = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
CARD = ("<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME>"
        "<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>")


def condition(iq: etree._Element) -> str:
    error = iq.find("{jabber:client}error")
    assert error is not None, etree.tostring(iq)
    return etree.QName(error[0]).localname


class VCardTests(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        self.updates: list[VCardUpdated] = []
        self.server.bus.hook("vcard/updated", self.updates.append)

    def iq(self, client, type_: str, body: str, to: str | None = None,
           id_: str = "v1") -> etree._Element:
        attr = "" if to is None else f" to='{to}'"
        client.send(f"<iq type='{type_}' id='{id_}'{attr}>{body}</iq>")
        [reply] = of(client.read(), "iq", id=id_)
        return reply

    def test_own_vcard_without_one_is_empty(self) -> None:
        """No vCard yet: the owner gets an empty <vCard/> (XEP-0054 3.1)."""
        reply = self.iq(self.alice, "get", "<vCard xmlns='vcard-temp'/>")
        self.assertEqual(reply.get("type"), "result")
        self.assertEqual(reply.get("from"), "alice@localhost")
        [vcard] = reply
        self.assertEqual((vcard.tag, len(vcard)), (f"{V}vCard", 0))

    def test_set_then_get_own_and_by_others(self) -> None:
        """The owner sets it without 'to'; the owner and bob read it back."""
        reply = self.iq(self.alice, "set", CARD)
        self.assertEqual((reply.get("type"), len(reply)), ("result", 0))
        self.assertEqual(reply.get("from"), "alice@localhost")
        own = self.iq(self.alice, "get", "<vCard xmlns='vcard-temp'/>", id_="v2")
        self.assertEqual(own.findtext(f"{V}vCard/{V}FN"), "Alice Liddell")
        seen = self.iq(self.bob, "get", "<vCard xmlns='vcard-temp'/>", "alice@localhost")
        self.assertEqual(seen.get("type"), "result")
        self.assertEqual(seen.get("from"), "alice@localhost")
        self.assertEqual(seen.findtext(f"{V}vCard/{V}PHOTO/{V}BINVAL"), "iVBORw0KGgo=")
        # answered by the server, never forwarded to alice's resource
        self.assertEqual(of(self.alice.read(), "iq"), [])

    def test_set_to_own_bare_jid(self) -> None:
        reply = self.iq(self.alice, "set", CARD, "alice@localhost")
        self.assertEqual(reply.get("type"), "result")
        self.assertIsNotNone(self.server.im_store.get_vcard("alice", "localhost"))

    def test_replaced_not_merged(self) -> None:
        self.iq(self.alice, "set", CARD)
        self.iq(self.alice, "set", "<vCard xmlns='vcard-temp'><FN>A.</FN></vCard>", id_="v2")
        seen = self.iq(self.bob, "get", "<vCard xmlns='vcard-temp'/>", "alice@localhost",
                       id_="v3")
        self.assertEqual(seen.findtext(f"{V}vCard/{V}FN"), "A.")
        self.assertIsNone(seen.find(f"{V}vCard/{V}NICKNAME"))

    def test_others_without_vcard_or_account_alike(self) -> None:
        """No vCard and no account give the same error (XEP-0054 1.3)."""
        none = self.iq(self.bob, "get", "<vCard xmlns='vcard-temp'/>", "alice@localhost")
        ghost = self.iq(self.bob, "get", "<vCard xmlns='vcard-temp'/>",
                        "nobody@localhost", id_="v2")
        self.assertEqual(condition(none), "service-unavailable")
        self.assertEqual(condition(ghost), "service-unavailable")

    def test_setting_another_users_vcard_is_forbidden(self) -> None:
        reply = self.iq(self.bob, "set", CARD, "alice@localhost")
        self.assertEqual(condition(reply), "forbidden")
        self.assertIsNone(self.server.im_store.get_vcard("alice", "localhost"))
        host = self.iq(self.bob, "set", CARD, "localhost", id_="v2")
        self.assertEqual(condition(host), "forbidden")
        self.assertEqual(self.updates, [])

    def test_size_limit(self) -> None:
        """A vCard over xmpp.vcard_max_size is not-acceptable, not stored."""
        limit = self.server.config.vcard_max_size
        big = f"<vCard xmlns='vcard-temp'><DESC>{'x' * limit}</DESC></vCard>"
        reply = self.iq(self.alice, "set", big)
        self.assertEqual(condition(reply), "not-acceptable")
        self.assertEqual(reply.find("{jabber:client}error").get("type"), "modify")
        self.assertIsNone(self.server.im_store.get_vcard("alice", "localhost"))
        fits = f"<vCard xmlns='vcard-temp'><DESC>{'x' * (limit - 100)}</DESC></vCard>"
        self.assertEqual(self.iq(self.alice, "set", fits, id_="v2").get("type"), "result")

    def test_updated_event(self) -> None:
        """vcard/updated carries the owner's bare JID and the vCard."""
        self.iq(self.alice, "set", CARD)
        [update] = self.updates
        self.assertEqual(str(update.owner), "alice@localhost")
        self.assertEqual(update.vcard.findtext(f"{V}PHOTO/{V}TYPE"), "image/png")

    def test_store_failure_is_answered(self) -> None:
        """A failing store gets internal-server-error, not silence."""
        def broken(*args):
            raise OSError("disk full")
        self.patch(self.server.im_store, "set_vcard", broken)
        reply = self.iq(self.alice, "set", CARD)
        self.assertEqual(condition(reply), "internal-server-error")
        self.assertEqual(self.updates, [])
        self.flushLoggedErrors(OSError)

    def test_disco(self) -> None:
        """vcard-temp on the server and on an account's bare JID."""
        info = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
        for to, id_ in (("localhost", "d1"), ("alice@localhost", "d2")):
            reply = self.iq(self.bob, "get", info, to, id_=id_)
            features = [f.get("var") for f in reply.iter(
                "{http://jabber.org/protocol/disco#info}feature")]
            self.assertIn("vcard-temp", features)


class VCardStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        self.accounts = SqliteAccountStore(path)
        self.addCleanup(self.accounts.close)
        Accounts(self.accounts, 4096).add("alice@localhost", "pw")
        self.store = SqliteImStore(path)
        self.addCleanup(self.store.close)

    def test_interface_round_trip_and_account_delete(self) -> None:
        verifyObject(IVCardStore, self.store)
        self.assertIsNone(self.store.get_vcard("alice", "localhost"))
        self.store.set_vcard("alice", "localhost", b"<vCard xmlns='vcard-temp'/>", 1.0)
        self.store.set_vcard("alice", "localhost", b"<vCard xmlns='vcard-temp'><FN/></vCard>",
                             2.0)
        self.assertEqual(self.store.get_vcard("alice", "localhost"),
                         b"<vCard xmlns='vcard-temp'><FN/></vCard>")
        self.assertIsNone(self.store.get_vcard("alice", "example.com"))
        self.accounts.delete("alice", "localhost")
        self.assertIsNone(self.store.get_vcard("alice", "localhost"))
