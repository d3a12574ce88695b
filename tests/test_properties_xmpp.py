"""Property-based tests (hypothesis) for the XMPP stream parser and JIDs.

The namespace-name property lives in tests/test_parser_namespaces.py.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.jid import (
    JID,
    InvalidJID,
    prepare_domainpart,
    prepare_localpart,
    prepare_resourcepart,
)
from convergence.xmpp.parser import StreamParseError

from .test_parser import CLOSE, HEADER, STREAM, Recorder, _outcome

CLIENT = "jabber:client"

# Characters XML 1.0 allows in text and attribute values.
_xml_char = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\x00\ufffe\uffff",
).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20)
_xml_text = st.text(_xml_char, max_size=20)
_name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.\-]{0,8}", fullmatch=True)
_namespace = st.sampled_from([None, "urn:xmpp:ping", "vcard-temp", "urn:x:é"])


def _escape(text: str, attribute: bool = False) -> str:
    """Escape ``text`` for XML so that the parser gives it back unchanged."""
    text = (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace("\r", "&#13;"))
    if attribute:
        text = (text.replace("'", "&apos;").replace("\t", "&#9;")
                .replace("\n", "&#10;"))
    return text


# An element as (name, namespace or None, attributes, text, children, tail).
_leaf = st.tuples(_name, _namespace, st.dictionaries(_name, _xml_text,
                                                     max_size=3),
                  _xml_text, st.just(()), _xml_text)
_element = st.recursive(
    _leaf,
    lambda children: st.tuples(
        _name, _namespace, st.dictionaries(_name, _xml_text, max_size=3),
        _xml_text, st.lists(children, max_size=3).map(tuple), _xml_text),
    max_leaves=8)


def _render(element: tuple, with_tail: bool = True) -> str:
    """Serialize a generated element by hand, as a client would."""
    name, ns, attrs, text, children, tail = element
    out = [f"<{name}"]
    if ns is not None:
        out.append(f" xmlns='{_escape(ns, True)}'")
    out += [f" {key}='{_escape(value, True)}'" for key, value in attrs.items()]
    out.append(">" + _escape(text))
    out += [_render(child) for child in children]
    out.append(f"</{name}>")
    if with_tail:
        out.append(_escape(tail))
    return "".join(out)


def _shape(element: etree._Element) -> tuple:
    """A received element in the generated form (tail left out at the top)."""
    qname = etree.QName(element)
    return (qname.localname, qname.namespace, dict(element.attrib),
            element.text or "", tuple(_child_shape(c) for c in element))


def _child_shape(element: etree._Element) -> tuple:
    return _shape(element) + (element.tail or "",)


def _expected(element: tuple, inherited: str = CLIENT) -> tuple:
    name, ns, attrs, text, children, tail = element
    ns = inherited if ns is None else ns
    return (name, ns, attrs, text,
            tuple(_expected(c, ns) + (c[5],) for c in children))


@st.composite
def _splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)),
                               max_size=12)))
    bounds = zip([0, *cuts], [*cuts, len(data)])
    return [data[a:b] for a, b in bounds]


def _feed_only_own_error(*chunks: bytes) -> None:
    """Feed chunks; a StreamParseError is fine, any other exception is not."""
    try:
        Recorder().feed(*chunks)
    except StreamParseError:
        pass


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10 ** 6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10 ** 6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10 ** 6),
              st.sampled_from([0, 1, 8, 11, 12, 27, 127, 0xC0, 0xFF])),
    st.tuples(st.just("digits"), st.integers(0, 10 ** 6), st.just(0)),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    """Apply byte flips, truncations and insertions (CTLs, NUL, digits)."""
    buffer = bytearray(data)
    for kind, where, value in mutations:
        where %= len(buffer) + 1
        if kind == "flip" and where < len(buffer):
            buffer[where] ^= value
        elif kind == "truncate":
            del buffer[where:]
        elif kind == "insert":
            buffer[where:where] = bytes([value])
        elif kind == "digits":
            buffer[where:where] = b"9" * 5000
        if not buffer:
            buffer = bytearray(b"<")
    return bytes(buffer)


class StreamParserPropertyTests(SynchronousTestCase):
    """StreamParser: no foreign exceptions, split independence."""

    @given(st.binary(max_size=300))
    def test_arbitrary_bytes(self, data: bytes) -> None:
        """Any bytes, alone or after a header, only raise StreamParseError."""
        _feed_only_own_error(data)
        _feed_only_own_error(HEADER, data)

    @given(st.data())
    def test_mutated_stream(self, data: st.DataObject) -> None:
        """A mutated valid stream raises StreamParseError at worst, and
        gives the same events and outcome however it is split."""
        mutated = _mutate(STREAM, data.draw(st.lists(_mutation, min_size=1,
                                                     max_size=4)))
        expected = _outcome([mutated])
        self.assertEqual(_outcome(data.draw(_splits(mutated))), expected)

    @given(st.lists(_element, min_size=1, max_size=4), st.data())
    @example([("message", None, {"to": "a@b"}, "hi \r\n",
               (("body", None, {}, "x", (), " "),), "\n")], None)
    def test_generated_stanzas_any_split(self, elements: list[tuple],
                                         data: st.DataObject | None) -> None:
        """Well-formed stanzas come out as written, for any split."""
        # Only whitespace may follow a stanza at the top level.
        stream = (HEADER + "".join(
            _render(e, not e[5].strip(" \t\n")) for e in elements
        ).encode() + CLOSE)
        whole = Recorder()
        whole.feed(stream)
        self.assertEqual([_shape(s) for s in whole.stanzas],
                         [_expected(e) for e in elements])
        self.assertEqual(whole.events[-1], ("end",))
        if data is None:
            chunks = [stream[i:i + 1] for i in range(len(stream))]
        else:
            chunks = data.draw(_splits(stream))
        split = Recorder()
        split.feed(*chunks)
        self.assertEqual(split.events, whole.events)


# Text mixing ASCII, JID delimiters, accented and other-script letters,
# spaces, controls and a few code points preparation must refuse.
_jid_char = st.one_of(
    st.sampled_from("aZ09.-_@/:\"&'<> \t\x00\x7f\udcff\ud800"),
    st.sampled_from("éÅßİıΣςЖж中文ｆ\u00a0\u2000\u3000\u200d\u0301\u05d0"
                    "\u0627\u3002\uff0e\ufb01\u2126Ⅸ"),
    st.characters(),
)
_jid_text = st.text(_jid_char, max_size=24)
_label = st.text(st.sampled_from("abcXYZ019-éßΣ中"), min_size=1, max_size=8)
_domain = st.one_of(
    st.lists(_label, min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.sampled_from(["xn--bcher-kva.example", "xn--zz", "EXAMPLE.com."]),
)
_jid_like = st.builds(
    lambda user, host, resource: (
        ("" if user is None else f"{user}@") + host
        + ("" if resource is None else f"/{resource}")),
    st.none() | _jid_text, _domain | _jid_text, st.none() | _jid_text)


class JIDPropertyTests(SynchronousTestCase):
    """JID preparation: only InvalidJID, idempotence, str round trip."""

    @given(_jid_like)
    @example("juliet@example.com/balcony")
    @example("Σ@ΣΣ.com/ﬁ")
    def test_parse_round_trip(self, text: str) -> None:
        """Parsing raises only InvalidJID; str(JID) parses to itself."""
        try:
            jid = JID.parse(text)
        except InvalidJID:
            return
        again = JID.parse(str(jid))
        self.assertEqual(again, jid)
        self.assertEqual(str(again), str(jid))
        self.assertEqual(JID(jid.user, jid.host, jid.resource), jid)

    @given(_jid_text)
    @example("ΣΣ")
    def test_parts_idempotent(self, text: str) -> None:
        """Preparing a prepared part leaves it unchanged."""
        for prepare in (prepare_localpart, prepare_resourcepart,
                        prepare_domainpart):
            try:
                prepared = prepare(text)
            except InvalidJID:
                continue
            self.assertEqual(prepare(prepared), prepared, prepare.__name__)
