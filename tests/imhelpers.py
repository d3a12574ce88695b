"""Helpers for the IM tests on StringTransport: three users, one server."""

from __future__ import annotations

from typing import Any

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from tests.xmpphelpers import Client, make_server

ROSTER = "jabber:iq:roster"
C = "{jabber:client}"


def of(elements: list[etree._Element], local: str, **attrs: str) -> list[etree._Element]:
    """The elements with this local name and these attribute values."""
    return [e for e in elements if etree.QName(e).localname == local
            and all(e.get(k.rstrip("_")) == v for k, v in attrs.items())]


def items(result: etree._Element) -> dict[str, dict[str, Any]]:
    """jid -> attributes (and groups) of a roster result or push."""
    out = {}
    for item in result.iter(f"{{{ROSTER}}}item"):
        attrs: dict[str, Any] = dict(item.attrib)
        attrs["groups"] = [g.text for g in item.findall(f"{{{ROSTER}}}group")]
        out[item.get("jid")] = attrs
    return out


class ImFixture(SynchronousTestCase):
    """alice, bob and carol on one server (carol not logged in)."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")

    def client(self, user: str, password: str, resource: str) -> Client:
        client = Client(self.server)
        client.login(user, password, resource)
        return client

    def roster(self, client: Client, ver: str | None = None) -> etree._Element:
        attr = "" if ver is None else f" ver='{ver}'"
        client.send(f"<iq type='get' id='r1'><query xmlns='{ROSTER}'{attr}/></iq>")
        return of(client.read(), "iq", id="r1")[0]

    def subscribe_both(self) -> None:
        """alice and bob subscribe to each other (both rosters: both)."""
        for user, other in ((self.alice, "bob"), (self.bob, "alice")):
            user.send(f"<presence to='{other}@localhost' type='subscribe'/>")
            peer = self.bob if other == "bob" else self.alice
            peer.send(f"<presence to='{'alice' if other == 'bob' else 'bob'}@localhost'"
                      " type='subscribed'/>")
        self.alice.read()
        self.bob.read()
