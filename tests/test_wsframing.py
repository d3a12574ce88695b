"""RFC 7395 framing: messages to parser events, stream writes to messages."""

from __future__ import annotations

import ipaddress

from lxml import etree
from twisted.internet.address import IPv4Address
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp import ns
from convergence.xmpp.parser import StreamParseError
from convergence.xmpp.websocket import client_address, counts_as_secure, websocket_url
from convergence.xmpp.wsframing import CLOSE_FRAME, FramedStreamParser, frame

OPEN = (f"<open xmlns='{ns.FRAMING}' to='localhost' version='1.0'"
        " xml:lang='fr'/>").encode()
MESSAGE = b"<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>"


class FramedParserTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.parser = FramedStreamParser(
            lambda root: self.events.append(("start", root)),
            lambda element: self.events.append(("element", element)),
            lambda: self.events.append(("end", None)),
            max_stanza_size=4096)

    def opened(self) -> None:
        self.parser.feed(OPEN)
        self.events.clear()

    def fails(self, data: bytes, condition: str) -> StreamParseError:
        error = self.assertRaises(StreamParseError, self.parser.feed, data)
        self.assertEqual(error.condition, condition)
        self.assertTrue(self.parser.closed)
        return error

    def test_open_is_the_stream_header(self) -> None:
        self.parser.feed(OPEN)
        [(kind, root)] = self.events
        self.assertEqual(kind, "start")
        self.assertEqual(root.tag, f"{{{ns.STREAMS}}}stream")
        self.assertEqual(root.prefix, "stream")
        self.assertEqual(root.nsmap[None], ns.CLIENT)
        self.assertEqual((root.get("to"), root.get("version")), ("localhost", "1.0"))
        self.assertEqual(root.get(f"{{{ns.XML}}}lang"), "fr")
        self.assertFalse(self.parser.awaiting_open)

    def test_open_attributes_are_escaped(self) -> None:
        self.parser.feed(f"<open xmlns='{ns.FRAMING}' to=\"a'b&amp;c\" version='1.0'/>"
                         .encode())
        self.assertEqual(self.events[0][1].get("to"), "a'b&c")

    def test_one_element_per_message(self) -> None:
        self.opened()
        self.parser.feed(MESSAGE)
        [(kind, element)] = self.events
        self.assertEqual(kind, "element")
        self.assertEqual(element.tag, "{jabber:client}message")
        self.assertEqual(element.findtext("{jabber:client}body"), "hi")
        # detached, with its own namespace, as over TCP
        self.assertEqual(etree.tostring(element), MESSAGE.replace(b"'", b'"'))

    def test_element_without_its_namespace_is_jabber_client(self) -> None:
        self.opened()
        self.parser.feed(b"<presence/>")
        self.assertEqual(self.events[0][1].tag, "{jabber:client}presence")

    def test_two_elements(self) -> None:
        self.opened()
        self.fails(MESSAGE + MESSAGE, "bad-format")
        self.assertEqual(len(self.events), 1)  # the second never got through

    def test_partial_element(self) -> None:
        self.opened()
        self.fails(b"<message xmlns='jabber:client'><body>", "not-well-formed")
        self.assertEqual(self.events, [])

    def test_text_only(self) -> None:
        self.opened()
        self.fails(b"hello", "not-well-formed")

    def test_whitespace_message_ignored(self) -> None:
        self.opened()
        self.parser.feed(b" \r\n")
        self.parser.feed(MESSAGE)
        self.assertEqual([kind for kind, _ in self.events], ["element"])

    def test_bad_xml(self) -> None:
        self.opened()
        self.fails(b"<message xmlns='jabber:client'></mess>", "not-well-formed")

    def test_comment_and_pi(self) -> None:
        self.opened()
        self.fails(b"<!-- hi --><presence/>", "restricted-xml")

    def test_entity(self) -> None:
        self.opened()
        self.fails(b"<message xmlns='jabber:client'><body>&foo;</body></message>",
                   "restricted-xml")

    def test_size_limit(self) -> None:
        self.opened()
        self.fails(b"<message xmlns='jabber:client'><body>" + b"x" * 5000
                   + b"</body></message>", "policy-violation")

    def test_close(self) -> None:
        self.opened()
        self.parser.feed(f"<close xmlns='{ns.FRAMING}'/>".encode())
        self.assertEqual(self.events, [("end", None)])

    def test_close_of_another_namespace_is_an_element(self) -> None:
        self.opened()
        self.parser.feed(b"<close xmlns='urn:example:other'/>")
        [(kind, element)] = self.events
        self.assertEqual((kind, element.tag), ("element", "{urn:example:other}close"))

    def test_close_before_open(self) -> None:
        self.parser.feed(f"<close xmlns='{ns.FRAMING}'/>".encode())
        self.assertEqual(self.events, [("end", None)])

    def test_open_twice(self) -> None:
        self.opened()
        self.fails(OPEN, "bad-format")

    def test_reset_waits_for_a_new_open(self) -> None:
        """After SASL the stream restarts (RFC 7395 3.5)."""
        self.opened()
        self.parser.reset()
        self.assertTrue(self.parser.awaiting_open)
        self.parser.feed(OPEN)
        self.assertEqual(self.events[0][0], "start")
        self.parser.feed(MESSAGE)
        self.assertEqual(self.events[1][0], "element")

    def test_reset_from_a_callback_skips_the_check(self) -> None:
        """A callback restarting the stream (SASL success) is not an
        incomplete message."""
        parser = FramedStreamParser(lambda root: None,
                                    lambda element: parser.reset(),
                                    lambda: None, max_stanza_size=4096)
        parser.feed(OPEN)
        parser.feed(MESSAGE)
        self.assertTrue(parser.awaiting_open)

    def test_first_message_must_be_open(self) -> None:
        self.fails(MESSAGE, "invalid-namespace")

    def test_stream_header_is_not_open(self) -> None:
        self.fails(b"<stream:stream xmlns='jabber:client' "
                   b"xmlns:stream='http://etherx.jabber.org/streams'>", "not-well-formed")

    def test_open_in_the_wrong_namespace(self) -> None:
        self.fails(b"<open xmlns='jabber:client' to='localhost' version='1.0'/>",
                   "invalid-namespace")

    def test_open_with_children(self) -> None:
        self.fails(f"<open xmlns='{ns.FRAMING}'><x/></open>".encode(), "bad-format")

    def test_open_with_trailing_element(self) -> None:
        self.fails(OPEN + MESSAGE, "not-well-formed")

    def test_open_with_dtd(self) -> None:
        self.fails(b"<!DOCTYPE open><open xmlns='" + ns.FRAMING.encode() + b"'/>",
                   "restricted-xml")


class FrameTests(SynchronousTestCase):
    def test_header_becomes_open(self) -> None:
        header = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' id='abc' "
                  b"from='localhost' version='1.0' xml:lang='en'>")
        [message] = frame(header)
        opened = etree.fromstring(message)
        self.assertEqual(opened.tag, f"{{{ns.FRAMING}}}open")
        self.assertEqual(dict(opened.attrib), {
            "id": "abc", "from": "localhost", "version": "1.0",
            f"{{{ns.XML}}}lang": "en"})

    def test_closing_tag_becomes_close(self) -> None:
        self.assertEqual(frame(b"</stream:stream>"), [CLOSE_FRAME])

    def test_error_then_closing_tag(self) -> None:
        error = b"<stream:error xmlns:stream='x'/>"
        self.assertEqual(frame(error + b"</stream:stream>"), [error, CLOSE_FRAME])

    def test_element_as_is(self) -> None:
        self.assertEqual(frame(MESSAGE), [MESSAGE])


class AddressTests(SynchronousTestCase):
    """X-Forwarded-For, the secure policy, the advertised URL."""

    trusted = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"),
               ipaddress.ip_network("10.0.0.0/8"))

    def address(self, peer: str, header: str | None) -> str:
        return client_address(IPv4Address("TCP", peer, 1234), header, self.trusted).host

    def test_untrusted_peer_keeps_its_address(self) -> None:
        self.assertEqual(self.address("192.0.2.1", "203.0.113.5"), "192.0.2.1")

    def test_no_header(self) -> None:
        self.assertEqual(self.address("127.0.0.1", None), "127.0.0.1")

    def test_rightmost_untrusted_entry(self) -> None:
        # the client wrote 198.51.100.7 itself; 203.0.113.5 is what the
        # first trusted proxy saw; 10.1.1.1 is a second, trusted, proxy
        self.assertEqual(self.address("127.0.0.1", "198.51.100.7, 203.0.113.5, 10.1.1.1"),
                         "203.0.113.5")

    def test_ipv6_and_brackets(self) -> None:
        self.assertEqual(self.address("127.0.0.1", "[2001:db8::1]"), "2001:db8::1")

    def test_garbage_stops_the_walk(self) -> None:
        self.assertEqual(self.address("127.0.0.1", "nonsense"), "127.0.0.1")
        self.assertEqual(self.address("127.0.0.1", "203.0.113.5, nonsense, 10.0.0.2"),
                         "10.0.0.2")

    def test_secure_policy(self) -> None:
        self.assertTrue(counts_as_secure("loopback", "127.0.0.1", False))
        self.assertTrue(counts_as_secure("loopback", "::1", False))
        self.assertFalse(counts_as_secure("loopback", "192.0.2.1", False))
        self.assertTrue(counts_as_secure("loopback", "192.0.2.1", True))
        self.assertTrue(counts_as_secure("always", "192.0.2.1", False))
        self.assertFalse(counts_as_secure("never", "127.0.0.1", False))

    def test_url(self) -> None:
        self.assertEqual(websocket_url("", "http://127.0.0.1:8080", "/xmpp-websocket"),
                         "ws://127.0.0.1:8080/xmpp-websocket")
        self.assertEqual(websocket_url("", "https://chat.example.com/", "/ws"),
                         "wss://chat.example.com/ws")
        self.assertEqual(websocket_url("wss://x.example/y", "http://a:1", "/ws"),
                         "wss://x.example/y")
