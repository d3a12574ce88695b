"""Namespace names in stanzas: relative, absolute or odd, never fatal.

libxml2 reports a namespace name that is not an absolute URI (XMPP's
``vcard-temp``) as a warning; only what breaks well-formedness or
namespace-well-formedness may end a stream (issue 17).
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.parser import StreamParseError
from convergence.xmpp.stanza import split_tag

from .test_parser import HEADER, Recorder
from .xmpphelpers import Client, make_server

# Payload namespaces of the XEPs XEP-0479 (compliance suites 2023) names,
# and of the seeds, each as a clients sends it.
NAMESPACES = [
    ("XEP-0054 vCard", "vcard-temp", "vCard"),
    ("XEP-0153 avatar", "vcard-temp:x:update", "x"),
    ("XEP-0048 bookmarks", "storage:bookmarks", "storage"),
    ("XEP-0049 private", "jabber:iq:private", "query"),
    ("XEP-0004 data forms", "jabber:x:data", "x"),
    ("XEP-0091 delay (legacy)", "jabber:x:delay", "x"),
    ("XEP-0249 conference", "jabber:x:conference", "x"),
    ("RFC 6121 roster", "jabber:iq:roster", "query"),
    ("XEP-0012 last", "jabber:iq:last", "query"),
    ("XEP-0092 version", "jabber:iq:version", "query"),
    ("XEP-0077 register", "jabber:iq:register", "query"),
    ("XEP-0191 blocking", "urn:xmpp:blocking", "blocklist"),
    ("XEP-0198 sm", "urn:xmpp:sm:3", "r"),
    ("XEP-0199 ping", "urn:xmpp:ping", "ping"),
    ("XEP-0202 time", "urn:xmpp:time", "time"),
    ("XEP-0203 delay", "urn:xmpp:delay", "delay"),
    ("XEP-0280 carbons", "urn:xmpp:carbons:2", "enable"),
    ("XEP-0313 MAM", "urn:xmpp:mam:2", "query"),
    ("XEP-0059 RSM", "http://jabber.org/protocol/rsm", "set"),
    ("XEP-0030 disco", "http://jabber.org/protocol/disco#info", "query"),
    ("XEP-0045 MUC", "http://jabber.org/protocol/muc", "x"),
    ("XEP-0045 MUC user", "http://jabber.org/protocol/muc#user", "x"),
    ("XEP-0115 caps", "http://jabber.org/protocol/caps", "c"),
    ("XEP-0163 PEP", "http://jabber.org/protocol/pubsub", "pubsub"),
    ("XEP-0085 chat states", "http://jabber.org/protocol/chatstates",
     "active"),
    ("XEP-0184 receipts", "urn:xmpp:receipts", "request"),
    ("XEP-0333 markers", "urn:xmpp:chat-markers:0", "markable"),
    ("XEP-0352 CSI", "urn:xmpp:csi:0", "active"),
    ("XEP-0357 push", "urn:xmpp:push:0", "enable"),
    ("XEP-0359 stanza ids", "urn:xmpp:sid:0", "origin-id"),
    ("XEP-0363 upload", "urn:xmpp:http:upload:0", "request"),
    ("XEP-0384 OMEMO", "eu.siacs.conversations.axolotl", "encrypted"),
    ("XEP-0410 self-ping", "urn:xmpp:ping", "ping"),
    ("XEP-0398 avatar conversion", "urn:xmpp:pep-vcard-conversion:0", "x"),
    ("XEP-0084 avatar data", "urn:xmpp:avatar:data", "data"),
    ("seed 000 servlet", "http://example.com/app#custom", "x"),
    ("relative path", "../x/y", "x"),
    ("fragment only", "#frag", "x"),
    ("IRI", "urn:caf\u00e9:menu", "x"),
    ("not a URI at all", "a b%%", "x"),
]


def _stanza(ns: str, local: str) -> bytes:
    quoted = ns.replace("&", "&amp;").replace('"', "&quot;")
    return (f'<message to="bob@localhost/laptop" id="m1"><{local} '
            f'xmlns="{quoted}"><item a="1">t</item></{local}></message>'
            ).encode()


class NamespaceTableTests(SynchronousTestCase):
    """Every namespace of the table passes the parser and the router."""

    def test_parser_keeps_each(self) -> None:
        """Each stanza comes out with its payload namespace unchanged."""
        recorder = Recorder()
        recorder.feed(HEADER)
        for name, ns, local in NAMESPACES:
            recorder.feed(_stanza(ns, local))
            payload = recorder.stanzas[-1][0]
            self.assertEqual(payload.tag, f"{{{ns}}}{local}", name)
            self.assertEqual(payload[0].get("a"), "1", name)
        self.assertFalse(recorder.parser.closed)

    def test_closing_brace_in_an_iq_payload(self) -> None:
        """A namespace name with '}' (which etree.QName cannot take) gets
        the iq's service-unavailable, not a stream error."""
        server, _ = make_server(self.mktemp())
        alice = Client(server)
        alice.login()
        alice.send("<iq type='get' id='q1'><q xmlns='a}b'/></iq>")
        reply = alice.expect("iq")
        self.assertEqual(reply.get("type"), "error")
        self.assertIsNotNone(reply.find(
            "{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}"
            "service-unavailable"))
        self.assertFalse(alice.closed_tag)

    def test_router_delivers_each(self) -> None:
        """Alice's stanza in each namespace reaches Bob intact."""
        server, _ = make_server(self.mktemp())
        alice, bob = Client(server), Client(server)
        alice.login()
        bob.login("bob", "hunter2", "laptop")
        for name, ns, local in NAMESPACES:
            alice.send(_stanza(ns, local))
            got = bob.expect("message")
            self.assertEqual(got.get("from"), "alice@localhost/phone", name)
            self.assertEqual(got[0].tag, f"{{{ns}}}{local}", name)
            self.assertEqual(got[0].findtext(f"{{{ns}}}item"), "t", name)
        self.assertEqual(alice.read(), [])
        self.assertFalse(alice.transport.disconnecting)


class HarmlessReportTests(SynchronousTestCase):
    """libxml2's reports that are not about well-formedness."""

    def test_xml_1_1_declaration(self) -> None:
        """version='1.1' in the declaration is parsed as XML 1.0."""
        recorder = Recorder()
        recorder.feed(b"<?xml version='1.1'?>" + HEADER, b"<presence/>")
        self.assertEqual(len(recorder.stanzas), 1)

    def test_xml_space_value(self) -> None:
        """An unusual xml:space value is a validity matter only."""
        recorder = Recorder()
        recorder.feed(HEADER, b"<message xml:space='x'><body/></message>")
        self.assertEqual(len(recorder.stanzas), 1)

    def test_error_after_warning_still_fatal(self) -> None:
        """A warning earlier in the same piece does not hide an error."""
        error = Recorder().error(
            HEADER, b"<iq><a xmlns='vcard-temp'/><b xmlns:p=''/></iq>")
        self.assertEqual(error.condition, "not-well-formed")

    def test_unbound_prefix_after_warnings(self) -> None:
        """Warnings in earlier stanzas do not hide a later unbound prefix."""
        error = Recorder().error(
            HEADER, *[_stanza("vcard-temp", "vCard")] * 150,
            b"<message><x:body/></message>")
        self.assertEqual(error.condition, "not-well-formed")

    def test_unbound_prefix_after_libxml2_error_budget(self) -> None:
        """libxml2 stops reporting after 100 errors: the parser does not."""
        for bad in (b"<message><x:body/></message>",
                    b"<message xmlns:p='u:x' xmlns:q='u:x' p:a='1' q:a='2'/>"):
            recorder = Recorder()
            error = recorder.error(HEADER, *[_stanza("a b", "x")] * 150, bad)
            self.assertEqual(error.condition, "not-well-formed")
            self.assertEqual(len(recorder.stanzas), 150)

    def test_budget_used_in_one_piece(self) -> None:
        """The budget used up inside one piece is noticed in that piece."""
        recorder = Recorder()
        error = recorder.error(
            HEADER, b"".join([_stanza("a b", "x")] * 120)
            + b"<message><x:body/></message>")
        self.assertEqual(error.condition, "not-well-formed")
        self.assertEqual(len(recorder.stanzas), 120)

    def test_good_stanzas_after_budget(self) -> None:
        """Past the budget good stanzas still pass, rechecked one by one."""
        recorder = Recorder()
        recorder.feed(HEADER, *[_stanza("a b", "x")] * 150,
                      _stanza("vcard-temp", "vCard"))
        self.assertEqual(len(recorder.stanzas), 151)
        self.assertEqual(recorder.stanzas[-1][0].tag, "{vcard-temp}vCard")


# Namespace names as a client could write them: any XML characters, in
# an attribute value (escaped here), never empty (xmlns:p='' undeclares).
_xml_char = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\x00\ufffe\uffff",
).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20)
_names = st.text(_xml_char, min_size=1, max_size=40)


def _escape(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;")
            .replace("'", "&apos;"))


class NamespacePropertyTests(SynchronousTestCase):
    """Property: no namespace name in a well-formed stanza ends the stream."""

    @example(ns="}", prefixed=False, split=0)
    @given(ns=_names, prefixed=st.booleans(), split=st.integers(0, 200))
    def test_any_namespace_name(self, ns: str, prefixed: bool,
                                split: int) -> None:
        if prefixed:
            stanza = (f"<iq type='get' id='1'><p:q xmlns:p='{_escape(ns)}'"
                      f" p:a='v'/></iq>")
        else:
            stanza = f"<iq type='get' id='1'><q xmlns='{_escape(ns)}'/></iq>"
        data = stanza.encode()
        recorder = Recorder()
        try:
            recorder.feed(HEADER, data[:split], data[split:], b"<presence/>")
        except StreamParseError as exc:  # pragma: no cover - the failure
            self.fail(f"{ns!r} ended the stream: {exc}")
        self.assertEqual(len(recorder.stanzas), 2)
        payload = recorder.stanzas[0][0]
        # The parser normalises attribute whitespace as XML requires.
        expected = ns.replace("\r\n", "\n")
        for space in "\t\n\r":
            expected = expected.replace(space, " ")
        self.assertEqual(split_tag(payload.tag), (expected, "q"))
