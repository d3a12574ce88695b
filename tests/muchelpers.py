"""Helpers for the XEP-0045 tests on StringTransport: three users, one service."""

from __future__ import annotations

from typing import Any, ClassVar

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from tests.xmpphelpers import Client, make_server

MUC = "http://jabber.org/protocol/muc"
USER = MUC + "#user"
ADMIN = MUC + "#admin"
OWNER = MUC + "#owner"
XDATA = "jabber:x:data"
ROOM = "room@conference.localhost"


def of(elements: list[etree._Element], local: str, **attrs: str) -> list[etree._Element]:
    """The elements with this local name and these attribute values."""
    return [e for e in elements if etree.QName(e).localname == local
            and all(e.get(k.rstrip("_")) == v for k, v in attrs.items())]


def codes(stanza: etree._Element) -> set[str]:
    return {s.get("code") for s in stanza.iter(f"{{{USER}}}status")}


def item(stanza: etree._Element) -> dict[str, str]:
    found = stanza.find(f"{{{USER}}}x/{{{USER}}}item")
    return dict(found.attrib) if found is not None else {}


def error(stanza: etree._Element) -> str | None:
    """The defined condition of an error stanza."""
    err = stanza.find("{jabber:client}error")
    if err is None:
        return None
    return etree.QName(err[0]).localname


def body(stanza: etree._Element) -> str | None:
    return stanza.findtext("{jabber:client}body")


class MucFixture(SynchronousTestCase):
    """alice, bob and carol logged in, each available."""

    config: ClassVar[dict[str, Any]] = {}

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp(), **self.config)
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")
        self.carol = self.client("carol", "carol-pw", "pad")

    def client(self, user: str, password: str, resource: str) -> Client:
        client = Client(self.server)
        client.login(user, password, resource)
        client.available()
        return client

    def join(self, client: Client, nick: str, room: str = ROOM, x: str = "") -> list[etree._Element]:
        client.send(f"<presence to='{room}/{nick}'><x xmlns='{MUC}'>{x}</x></presence>")
        return client.read()

    def iq(self, client: Client, type_: str, payload: str, to: str = ROOM,
           id_: str = "q1") -> etree._Element:
        client.send(f"<iq type='{type_}' id='{id_}' to='{to}'>{payload}</iq>")
        return of(client.read(), "iq", id=id_)[0]

    def instant(self, client: Client, room: str = ROOM) -> None:
        """Accept the default configuration of a new (locked) room."""
        result = self.iq(client, "set", f"<query xmlns='{OWNER}'><x xmlns='{XDATA}'"
                         " type='submit'/></query>", room)
        assert result.get("type") == "result", etree.tostring(result)

    def configure(self, client: Client, fields: dict[str, str | list[str]],
                  room: str = ROOM) -> etree._Element:
        xml = "".join(
            f"<field var='{var}'>"
            + "".join(f"<value>{v}</value>" for v in ([value] if isinstance(value, str) else value))
            + "</field>" for var, value in fields.items())
        return self.iq(client, "set", f"<query xmlns='{OWNER}'><x xmlns='{XDATA}' type='submit'>"
                       "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
                       f"</value></field>{xml}</x></query>", room)

    def room_with(self, *clients_nicks: tuple[Client, str], **fields: str) -> None:
        """The first creates ROOM (instant, or with fields), the others join."""
        (owner, nick), *rest = clients_nicks
        self.join(owner, nick)
        if fields:
            result = self.configure(owner, {f"muc#roomconfig_{k}": v for k, v in fields.items()})
            assert result.get("type") == "result", etree.tostring(result)
        else:
            self.instant(owner)
        owner.read()
        for client, nick in rest:
            self.join(client, nick)
        for client, _ in clients_nicks:
            client.read()
