"""Helpers for the PEP tests on StringTransport."""

from __future__ import annotations

from lxml import etree

from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import Client

PUBSUB = "http://jabber.org/protocol/pubsub"
OWNER = "http://jabber.org/protocol/pubsub#owner"
EVENT = "http://jabber.org/protocol/pubsub#event"
ERRORS = "http://jabber.org/protocol/pubsub#errors"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DATA = "jabber:x:data"


def form(form_type: str, **fields: str) -> str:
    """A submitted data form; field names use _ for # (pubsub_max_items)."""
    body = "".join(f"<field var='{k.replace('pubsub_', 'pubsub#')}'><value>{v}</value></field>"
                   for k, v in fields.items())
    return (f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{form_type}</value></field>{body}</x>")


def error_of(iq: etree._Element) -> tuple[str | None, str | None, str | None]:
    """(type, condition, pubsub condition) of an error iq."""
    assert iq.get("type") == "error", etree.tostring(iq)
    error = iq.find("{jabber:client}error")
    condition = pubsub = None
    for child in error:
        namespace = etree.QName(child).namespace
        if namespace == STANZAS and etree.QName(child).localname != "text":
            condition = etree.QName(child).localname
        elif namespace == ERRORS:
            pubsub = etree.QName(child).localname
    return error.get("type"), condition, pubsub


def events(elements: list[etree._Element]) -> list[etree._Element]:
    """The pubsub#event payloads of headline messages."""
    return [m.find(f"{{{EVENT}}}event") for m in of(elements, "message", type="headline")
            if m.find(f"{{{EVENT}}}event") is not None]


class PepFixture(ImFixture):
    """alice and bob subscribed both ways and available; carol offline."""

    def setUp(self) -> None:
        super().setUp()
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()
        self.n = 0

    def wants(self, client: Client, *nodes: str) -> None:
        """What a caps module does: the client's +notify features are
        known, C{caps/updated} fires."""
        client.stream.client_features = frozenset(
            ["http://jabber.org/protocol/caps", *(f"{n}+notify" for n in nodes)])
        self.server.bus.fire("caps/updated", client.stream)

    def iq(self, client: Client, type_: str, body: str, to: str | None = None) -> etree._Element:
        """Send an iq, return the answer (other stanzas stay readable in
        C{client.elements})."""
        self.n += 1
        id_ = f"q{self.n}"
        attr = f" to='{to}'" if to else ""
        client.send(f"<iq type='{type_}' id='{id_}'{attr}>{body}</iq>")
        got = client.read()
        answers = of(got, "iq", id=id_)
        assert answers, [etree.tostring(e) for e in got]
        self.last_read = got
        return answers[0]

    def publish(self, client: Client, node: str, payload: str, item_id: str | None = None,
                options: str = "") -> etree._Element:
        attr = f" id='{item_id}'" if item_id else ""
        opts = f"<publish-options>{options}</publish-options>" if options else ""
        return self.iq(client, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{node}'>"
                       f"<item{attr}>{payload}</item></publish>{opts}</pubsub>")

    def items(self, client: Client, node: str, to: str | None = None,
              extra: str = "", inner: str = "") -> etree._Element:
        return self.iq(client, "get", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'{extra}>"
                       f"{inner}</items></pubsub>", to)

    @staticmethod
    def item_ids(result: etree._Element) -> list[str]:
        return [i.get("id") for i in result.iter(f"{{{PUBSUB}}}item")]
