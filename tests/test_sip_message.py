"""Tests for convergence.sip.message and convergence.sip.headers."""

from __future__ import annotations

import random
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.sip.headers import Headers, canonical, split_list
from convergence.sip.message import (
    REASONS,
    Message,
    Request,
    Response,
    SipParseError,
    make_request,
    parse_message,
)
from convergence.sip.uri import AbsoluteUri, NameAddr, SipUri, Via

TORTURE = Path(__file__).parent / "sip_torture"


def torture(name: str) -> bytes:
    """The bytes of one corpus file, e.g. ``valid/bare_lf``."""
    return (TORTURE / f"{name}.sip").read_bytes()


def without_length(message: Message) -> list[tuple[str, str]]:
    """A message's headers, Content-Length left out."""
    return [item for item in message.headers if item[0] != "Content-Length"]


def crlf(text: str) -> bytes:
    """A message written with LF line ends, sent with CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


INVITE = crlf(
    "INVITE sip:bob@biloxi.example.com SIP/2.0\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\n"
    "Max-Forwards: 70\n"
    "To: Bob <sip:bob@biloxi.example.com>\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\n"
    "CSeq: 314159 INVITE\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 5\n"
    "\n"
    "v=0\n")


class CanonicalTests(SynchronousTestCase):
    """Header name spelling."""

    def test_special_names(self) -> None:
        """Names with irregular capitals are spelled as in the RFCs."""
        self.assertEqual(canonical("call-id"), "Call-ID")
        self.assertEqual(canonical("cseq"), "CSeq")
        self.assertEqual(canonical("www-authenticate"), "WWW-Authenticate")
        self.assertEqual(canonical("RSEQ"), "RSeq")

    def test_compact(self) -> None:
        """Compact forms map to their long names, in either case."""
        self.assertEqual(canonical("v"), "Via")
        self.assertEqual(canonical("I"), "Call-ID")
        self.assertEqual(canonical("l"), "Content-Length")

    def test_unknown(self) -> None:
        """Unknown names are Title-Cased by dash parts."""
        self.assertEqual(canonical("x-my-HEADER"), "X-My-Header")
        self.assertEqual(canonical("max-forwards"), "Max-Forwards")


class SplitListTests(SynchronousTestCase):
    """Splitting list-valued headers."""

    def test_quotes_and_angles(self) -> None:
        """Commas inside quotes or angle brackets do not split."""
        self.assertEqual(
            split_list('"Doe, \\"J\\"" <sip:j@a>;q=1 , <sip:x@b;p=a,b>,'
                       "sip:c@d"),
            ['"Doe, \\"J\\"" <sip:j@a>;q=1', "<sip:x@b;p=a,b>", "sip:c@d"])

    def test_empty_elements(self) -> None:
        """Empty elements and surrounding LWS disappear."""
        self.assertEqual(split_list(" a, ,b ,, "), ["a", "b"])
        self.assertEqual(split_list("  "), [])


class HeadersTests(SynchronousTestCase):
    """The ordered multi-map."""

    def setUp(self) -> None:
        self.headers = Headers([
            ("v", "SIP/2.0/UDP a;branch=z9hG4bK1, "
                  "SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("To", "<sip:bob@example.com>"),
            ("VIA", "SIP/2.0/TCP c;branch=z9hG4bK3"),
            ("WWW-Authenticate", 'Digest realm="a", nonce="b"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        ])

    def test_get(self) -> None:
        """get returns the first line's value, case-insensitively."""
        self.assertEqual(self.headers.get("via"),
                         "SIP/2.0/UDP a;branch=z9hG4bK1, "
                         "SIP/2.0/UDP b;branch=z9hG4bK2")
        self.assertEqual(self.headers.get("t"), "<sip:bob@example.com>")
        self.assertIsNone(self.headers.get("Contact"))

    def test_get_all_splits_lists(self) -> None:
        """List headers give one value per element across lines."""
        self.assertEqual(self.headers.get_all("Via"), [
            "SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b;branch=z9hG4bK2",
            "SIP/2.0/TCP c;branch=z9hG4bK3"])

    def test_get_all_never_splits_others(self) -> None:
        """WWW-Authenticate and Date keep their commas."""
        self.assertEqual(self.headers.get_all("www-authenticate"),
                         ['Digest realm="a", nonce="b"'])
        self.assertEqual(self.headers.get_all("Date"),
                         ["Sat, 13 Nov 2010 23:29:00 GMT"])

    def test_get_lines(self) -> None:
        """get_lines returns raw lines, unsplit."""
        self.assertEqual(len(self.headers.get_lines("Via")), 2)

    def test_iter_order_and_names(self) -> None:
        """Iteration gives canonical names in the original order."""
        self.assertEqual([name for name, _ in self.headers],
                         ["Via", "To", "Via", "WWW-Authenticate", "Date"])

    def test_set(self) -> None:
        """set replaces every line of a name where the first one was."""
        self.headers.set("via", "SIP/2.0/UDP z")
        self.assertEqual([name for name, _ in self.headers],
                         ["Via", "To", "WWW-Authenticate", "Date"])
        self.assertEqual(self.headers.get_all("Via"), ["SIP/2.0/UDP z"])
        self.headers.set("Subject", "new")
        self.assertEqual(list(self.headers)[-1], ("Subject", "new"))

    def test_add(self) -> None:
        """add appends, or with first=True goes before its namesakes."""
        self.headers.add("Via", "SIP/2.0/UDP top", first=True)
        self.headers.add("Route", "<sip:r1>", first=True)
        self.headers.add("Route", "<sip:r2>")
        names = [name for name, _ in self.headers]
        self.assertEqual(names[:2], ["Route", "Via"])
        self.assertEqual(self.headers.get_all("Via")[0], "SIP/2.0/UDP top")
        self.assertEqual(self.headers.get_all("Route"),
                         ["<sip:r1>", "<sip:r2>"])

    def test_remove_and_contains(self) -> None:
        """remove drops every line and reports how many."""
        self.assertIn("v", self.headers)
        self.assertEqual(self.headers.remove("Via"), 2)
        self.assertNotIn("Via", self.headers)
        self.assertEqual(len(self.headers), 3)

    def test_set_line(self) -> None:
        """set_line replaces one line of a name."""
        self.headers.set_line("Via", "SIP/2.0/TCP d", 1)
        self.assertEqual(self.headers.get_lines("Via")[1], "SIP/2.0/TCP d")
        self.assertRaises(IndexError, self.headers.set_line, "Via", "x", 2)

    def test_no_injection(self) -> None:
        """Edits refuse line breaks in values and non-token names."""
        for name, value in [("Subject", "a\r\nVia: x"), ("Subject", "a\nb"),
                            ("Bad Name", "v"), ("X:Y", "v")]:
            self.assertRaises(ValueError, self.headers.add, name, value)
            self.assertRaises(ValueError, self.headers.set, name, value)
            self.assertRaises(ValueError, Headers, [(name, value)])
        self.assertEqual(len(self.headers), 5)

    def test_copy_and_version(self) -> None:
        """Copies are independent; changes bump the version."""
        copy = self.headers.copy()
        self.assertEqual(copy, self.headers)
        before = self.headers.version
        copy.add("X-A", "1")
        self.headers.remove("To")
        self.assertNotIn("X-A", self.headers)
        self.assertIn("To", copy)
        self.assertGreater(self.headers.version, before)


class ValidCorpusTests(SynchronousTestCase):
    """Tricky but valid messages from tests/sip_torture/valid."""

    def test_every_file_round_trips(self) -> None:
        """Each valid message parses, and serializing is a fixed point."""
        files = sorted((TORTURE / "valid").glob("*.sip"))
        self.assertGreaterEqual(len(files), 8)
        for path in files:
            message = parse_message(path.read_bytes())
            again = parse_message(message.serialize())
            self.assertEqual(again.serialize(), message.serialize(), path.name)
            self.assertEqual(again.body, message.body)
            self.assertEqual(again.start_line(), message.start_line())
            self.assertEqual(without_length(again), without_length(message))

    def test_compact_and_folded(self) -> None:
        """Compact names, folding, odd case and LWS all parse."""
        message = parse_message(torture("valid/compact_folded"))
        self.assertEqual(message.method, "OPTIONS")
        self.assertEqual([via.branch for via in message.vias],
                         ["z9hG4bK-fold-1", "z9hG4bK-fold-2"])
        self.assertIn("rport", message.vias[1].params)
        self.assertEqual(message.to.display_name, "Carol")
        self.assertEqual(message.cseq, (63104, "OPTIONS"))
        self.assertEqual(message.max_forwards, 69)
        self.assertEqual(message.supported, ["path", "timer", "100rel"])
        self.assertEqual(message.headers.get_all("x-custom-thing"),
                         ["left alone", "twice"])
        self.assertEqual(message.call_id, "fold-call-1@client.example.net")

    def test_escapes_and_ipv6(self) -> None:
        """Escaped URIs, quoted names and IPv6 addresses."""
        message = parse_message(torture("valid/escaped_uris"))
        self.assertEqual(message.uri, SipUri.parse(
            "sip:alice@atlanta.example.com;transport=tcp"))
        self.assertEqual(message.uri.params["lr"], None)
        self.assertEqual(message.to.display_name, 'Al "The" \\ Ice')
        self.assertEqual(message.to.uri.user, "alice@home")
        sender = message.from_
        self.assertEqual(sender.display_name, "Bob Smith")
        self.assertEqual((sender.uri.scheme, sender.uri.password,
                          sender.uri.host, sender.uri.headers["Subject"]),
                         ("sips", "secret", "[2001:db8::1]", "hello world"))
        self.assertEqual(sender.tag, "9f%21x")
        self.assertEqual(message.top_via.sent_by, ("[2001:db8::10]", 5070))
        self.assertEqual(message.contacts[0].params["+sip.instance"],
                         '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"')

    def test_unknown_method_and_binary_body(self) -> None:
        """Unknown methods and headers pass; the body is exact bytes."""
        data = torture("valid/unknown_method")
        message = parse_message(data)
        self.assertIsInstance(message, Request)
        self.assertEqual(message.method, "NEWMETHOD")
        self.assertEqual(message.body, b"\x00\x01\r\n\r\n\xff\xfe\x7f\x80")
        self.assertEqual(message.headers.get("P-Unknown-Header"), ";;,,;;")
        self.assertEqual(message.headers.get("X-Empty"), "")
        self.assertTrue(message.serialize().endswith(message.body))

    def test_wildcard_contact(self) -> None:
        """``Contact: *`` is flagged and gives no contacts."""
        message = parse_message(torture("valid/register_wildcard"))
        self.assertTrue(message.is_wildcard_contact)
        self.assertEqual(message.contacts, [])
        self.assertEqual(message.expires, 0)
        self.assertEqual(message.to.uri, SipUri.parse("sip:user@example.com"))

    def test_lists(self) -> None:
        """Contact, Route and Record-Route lists across lines."""
        message = parse_message(torture("valid/contact_list"))
        self.assertIsInstance(message.uri, AbsoluteUri)
        self.assertEqual(message.uri.scheme, "tel")
        self.assertEqual([str(r.uri) for r in message.routes],
                         ["sip:p1.example.com;lr", "sip:p2.example.com;lr",
                          "sip:p3.example.com;lr"])
        self.assertEqual(len(message.record_routes), 1)
        self.assertEqual([c.uri.host for c in message.contacts],
                         ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        self.assertEqual(message.contacts[0].display_name, "Doe, John")
        self.assertEqual(message.contacts[2].params, {"expires": "60"})
        self.assertFalse(message.is_wildcard_contact)
        self.assertEqual(message.require, ["100rel"])
        self.assertEqual(message.content_type, "application/sdp")
        self.assertEqual(message.body, b"v=0\r\ns=-\r\nc=IN IP4 x\r\n")

    def test_response_without_reason(self) -> None:
        """An empty reason phrase is valid; Content-Length is optional."""
        message = parse_message(torture("valid/response_noreason"))
        self.assertIsInstance(message, Response)
        self.assertEqual((message.status, message.reason), (100, ""))
        self.assertEqual(message.body, b"")
        self.assertIsNone(message.max_forwards)

    def test_leading_crlf(self) -> None:
        """CRLFs before the start line are ignored; UTF-8 body intact."""
        message = parse_message(torture("valid/leading_crlf"))
        self.assertEqual(message.method, "MESSAGE")
        self.assertEqual(message.body.decode("utf-8"), "h\u00e9llo")
        self.assertEqual(message.content_type, "text/plain")

    def test_bare_lf(self) -> None:
        """Bare LF line ends are tolerated."""
        message = parse_message(torture("valid/bare_lf"))
        self.assertEqual((message.method, message.to.tag, message.cseq),
                         ("BYE", "t2", (3, "BYE")))


class InvalidCorpusTests(SynchronousTestCase):
    """Broken messages from tests/sip_torture/invalid."""

    # name: (reason, partial request expected, status)
    expected = {
        "missing_call_id": ("Missing Call-ID", False, 400),
        "missing_cseq": ("Missing CSeq", False, 400),
        "missing_via": ("Missing Via", False, 400),
        "bad_via": ("Bad Via", False, 400),
        "bad_cseq": ("Bad CSeq", False, 400),
        "cseq_mismatch": ("CSeq method mismatch", True, 400),
        "bad_ruri": ("Bad Request-URI", True, 400),
        "bad_ruri_port": ("Bad Request-URI", True, 400),
        "lws_start": ("Bad Request-Line", False, 400),
        "garbage": ("Bad Request-Line", False, 400),
        "bad_version": ("Version Not Supported", True, 505),
        "no_colon": ("Header line without colon", True, 400),
        "cl_mismatch": ("Content-Length mismatch", True, 400),
        "two_lengths": ("Bad Content-Length", True, 400),
        "max_forwards_big": ("Bad Max-Forwards", True, 400),
        "unterminated_quote": ("Bad From", False, 400),
        "bad_status": ("Bad Status-Line", False, 400),
    }

    def test_corpus_is_covered(self) -> None:
        """Every invalid file has an expectation."""
        names = {path.stem for path in (TORTURE / "invalid").glob("*.sip")}
        self.assertEqual(names, set(self.expected))

    def test_each_file(self) -> None:
        """Each message fails with its reason, status and partial."""
        for name, (reason, partial, status) in self.expected.items():
            error = self.assertRaises(SipParseError, parse_message,
                                      torture(f"invalid/{name}"))
            self.assertEqual((error.reason, error.status,
                              error.partial is not None),
                             (reason, status, partial), name)

    def test_partial_answers(self) -> None:
        """The partial request can build the 400 response."""
        error = self.assertRaises(SipParseError, parse_message,
                                  torture("invalid/bad_ruri"))
        self.assertFalse(error.request_line_ok)
        response = error.partial.create_response(400, error.reason)
        data = response.serialize()
        self.assertTrue(data.startswith(b"SIP/2.0 400 Bad Request-URI\r\n"))
        self.assertIn(b"Call-ID: invalid-1\r\n", data)
        self.assertIn(b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-bad\r\n",
                      data)

    def test_request_line_ok(self) -> None:
        """request_line_ok tells a bad header from a bad start line."""
        error = self.assertRaises(SipParseError, parse_message,
                                  torture("invalid/cl_mismatch"))
        self.assertTrue(error.request_line_ok)


class ParseRuleTests(SynchronousTestCase):
    """RFC 3261 section 7 rules, message by message."""

    def test_typed_views(self) -> None:
        """The usual views of a plain INVITE."""
        message = parse_message(INVITE)
        self.assertEqual(message.uri,
                         SipUri.parse("sip:bob@biloxi.example.com"))
        self.assertEqual(message.top_via.branch, "z9hG4bK776asdhds")
        self.assertEqual(message.from_.tag, "1928301774")
        self.assertIsNone(message.to.tag)
        self.assertEqual(message.cseq, (314159, "INVITE"))
        self.assertEqual(message.body, b"v=0\r\n")
        self.assertIsNone(message.expires)

    def test_empty_body_and_max_forwards(self) -> None:
        """Content-Length: 0 drops what follows in a datagram and is a
        mismatch with exact_length; Max-Forwards reads the same however
        often a value is seen, and a bad one is still refused."""
        bye = (b"BYE sip:bob@b.example SIP/2.0\r\n"
               b"Via: SIP/2.0/UDP a.example;branch=z9hG4bKe0\r\n"
               b"From: <sip:a@a.example>;tag=1\r\nTo: <sip:bob@b.example>;tag=2\r\n"
               b"Call-ID: e0\r\nCSeq: 2 BYE\r\nMax-Forwards: 69\r\n"
               b"Content-Length: 0\r\n\r\n")
        for _ in range(2):
            message = parse_message(bye + b"junk")
            self.assertEqual((message.body, message.max_forwards), (b"", 69))
        self.assertEqual(parse_message(bye, exact_length=True).body, b"")
        with self.assertRaises(SipParseError) as caught:
            parse_message(bye + b"junk", exact_length=True)
        self.assertEqual(caught.exception.reason, "Content-Length mismatch")
        with self.assertRaises(SipParseError) as caught:
            parse_message(bye.replace(b"Max-Forwards: 69", b"Max-Forwards: 256"))
        self.assertEqual(caught.exception.reason, "Bad Max-Forwards")

    def test_contains_reads_the_index_until_an_edit(self) -> None:
        """`name in headers` answers from a parsed message's index, in any
        spelling, and from the lines once they were edited; a tagged From
        keeps the parameters before its tag."""
        message = parse_message(INVITE)
        headers = message.headers
        self.assertIn("Via", headers)
        self.assertIn("v", headers)
        self.assertIn("call-id", headers)
        self.assertNotIn("Route", headers)
        self.assertNotIn("Record-Route", headers)
        headers.add("Route", "<sip:p.example;lr>")
        self.assertIn("route", headers)
        self.assertEqual(str(message.routes[0].uri), "sip:p.example;lr")
        headers.remove("Route")
        self.assertNotIn("Route", headers)
        tagged = parse_message(INVITE.replace(
            b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
            b"From: Alice <sip:alice@atlanta.example.com>;x=1;tag=1928301774"))
        self.assertEqual(dict(tagged.from_.params), {"x": "1", "tag": "1928301774"})
        self.assertEqual(dict(message.from_.params), {"tag": "1928301774"})

    def test_header_lines_seen_before(self) -> None:
        """A header line seen before reads as it did (compact name
        expanded), a fold after it still joins it, editing one message
        leaves the next alone, and the cache of lines stays bounded."""
        from convergence.sip import message as module

        data = INVITE.replace(b"Max-Forwards: 70\r\n",
                              b"Max-Forwards: 70\r\ns: hello\r\n")
        folded = data.replace(b"s: hello\r\n", b"s: hello\r\n  world\r\n")
        for _ in range(2):
            first = parse_message(data)
            self.assertEqual(first.headers.get("Subject"), "hello")
            self.assertEqual(first.max_forwards, 70)
            self.assertEqual(parse_message(folded).headers.get("Subject"), "hello world")
        first.headers.set("Subject", "changed")
        self.assertEqual(parse_message(data).headers.get("Subject"), "hello")
        self.assertIn("s: hello", module._LINES)
        long_line = "X-Long: " + "x" * module._LINE_CACHED_LENGTH
        parse_message(data.replace(b"s: hello", long_line.encode()))
        self.assertNotIn(long_line, module._LINES)
        for n in range(module._LINE_CACHE_SIZE + 10):
            parse_message(data.replace(b"s: hello", b"X-N: %d" % n))
        self.assertLessEqual(len(module._LINES), module._LINE_CACHE_SIZE)

    def test_via_forms_equal(self) -> None:
        """Vias in one line or one per line make the same list."""
        old = b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776"
        one_line = parse_message(INVITE.replace(
            old, b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, "
                 b"SIP/2.0/TCP b.example;branch=z9hG4bK2"))
        two_lines = parse_message(INVITE.replace(
            old, b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n"
                 b"v: SIP/2.0/TCP b.example;branch=z9hG4bK2"))
        self.assertEqual(one_line.vias, two_lines.vias)
        self.assertEqual(len(one_line.vias), 2)
        self.assertEqual(one_line.top_via, two_lines.top_via)

    def test_header_order_kept(self) -> None:
        """Serialization keeps the received header order and values."""
        data = INVITE.replace(b"Max-Forwards: 70\r\n",
                              b"X-B: 2\r\nMax-Forwards: 70\r\nX-A: 1\r\n")
        message = parse_message(data)
        self.assertEqual(message.serialize(), data)

    def test_extra_bytes_dropped(self) -> None:
        """Bytes beyond Content-Length are not part of the body."""
        message = parse_message(INVITE + b"trailing junk")
        self.assertEqual(message.body, b"v=0\r\n")

    def test_no_content_length(self) -> None:
        """Without Content-Length the rest of the datagram is the body."""
        message = parse_message(INVITE.replace(b"Content-Length: 5\r\n", b""))
        self.assertEqual(message.body, b"v=0\r\n")
        self.assertIn(b"Content-Length: 5\r\n", message.serialize())

    def test_missing_max_forwards(self) -> None:
        """A request without Max-Forwards parses; it counts as 70."""
        message = parse_message(INVITE.replace(b"Max-Forwards: 70\r\n", b""))
        self.assertEqual(message.max_forwards, 70)

    def test_empty(self) -> None:
        """Only CRLFs is no message."""
        error = self.assertRaises(SipParseError, parse_message, b"\r\n\r\n")
        self.assertEqual(error.reason, "Empty message")

    def test_header_without_colon_in_response(self) -> None:
        """A response with a broken line fails without a partial."""
        data = crlf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n"
                    "nonsense\nTo: <sip:a@b>;tag=1\nFrom: <sip:c@d>;tag=2\n"
                    "Call-ID: x\nCSeq: 1 INVITE\n\n")
        error = self.assertRaises(SipParseError, parse_message, data)
        self.assertEqual((error.reason, error.partial),
                         ("Header line without colon", None))

    def test_bad_header_name(self) -> None:
        """A header name must be a token."""
        error = self.assertRaises(SipParseError, parse_message,
                                  INVITE.replace(b"Max-Forwards:",
                                                 b"Max Forwards:"))
        self.assertEqual(error.reason, "Bad header name")

    def test_bare_cr(self) -> None:
        """A lone CR inside the header block is refused."""
        error = self.assertRaises(SipParseError, parse_message,
                                  INVITE.replace(b"Bob <", b"Bob\r<"))
        self.assertEqual(error.reason, "Bare CR in header")

    def test_duplicate_call_id(self) -> None:
        """Two Call-ID lines are an error."""
        error = self.assertRaises(SipParseError, parse_message,
                                  INVITE.replace(b"CSeq:",
                                                 b"i: other\r\nCSeq:"))
        self.assertEqual(error.reason, "Multiple Call-ID headers")

    def test_version_case(self) -> None:
        """The SIP-Version is case-insensitive."""
        message = parse_message(INVITE.replace(b" SIP/2.0\r\n",
                                               b" sip/2.0\r\n", 1))
        self.assertEqual(message.method, "INVITE")

    def test_http_is_garbage(self) -> None:
        """An HTTP request line is not a SIP request."""
        error = self.assertRaises(SipParseError, parse_message,
                                  b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((error.reason, error.partial),
                         ("Bad Request-Line", None))

    def test_lazy_cache(self) -> None:
        """Views are cached, and recomputed after the headers change."""
        message = parse_message(INVITE)
        self.assertIs(message.contacts, message.contacts)
        message.headers.set("Contact", "<sip:new@example.com>")
        self.assertEqual(message.contacts[0].uri.user, "new")

    def test_views_follow_edits(self) -> None:
        """The views live with the header lines: an edit drops those of the
        name it edits only, a response keeps the request's views of the
        lines it copies, a copy starts without any."""
        message = parse_message(INVITE)
        via, cseq, contacts, to = message.top_via, message.cseq, message.contacts, message.to
        message.headers.add("Contact", "<sip:second@example.com>")
        self.assertEqual((message.top_via, message.cseq), (via, cseq))
        self.assertIs(message.top_via, via)
        self.assertEqual([c.uri.user for c in message.contacts],
                         [c.uri.user for c in contacts] + ["second"])
        response = message.create_response(200)
        self.assertIs(response.top_via, via)
        self.assertIs(response.to, to)
        self.assertNotIn("contacts", response.headers.views)
        response.set_to_tag("abc")
        self.assertEqual((response.to.tag, message.to.tag), ("abc", None))
        self.assertEqual(message.copy().headers.views, {})

    def test_bad_view(self) -> None:
        """A broken optional header fails when its view is used."""
        message = parse_message(INVITE.replace(b"Contact: <sip:",
                                               b"Contact: <sip"))
        error = self.assertRaises(SipParseError, lambda: message.contacts)
        self.assertEqual(error.reason, "Bad Contact")


class BuilderTests(SynchronousTestCase):
    """Responses, new requests, copies."""

    def test_create_response(self) -> None:
        """RFC 3261 8.2.6: the right headers, copied verbatim, in order."""
        data = INVITE.replace(
            b"Max-Forwards: 70\r\n",
            b"Via: SIP/2.0/TCP second.example;branch=z9hG4bK2\r\n"
            b"Timestamp: 54\r\nMax-Forwards: 70\r\n")
        request = parse_message(data)
        response = request.create_response(180)
        self.assertEqual(response.reason, "Ringing")
        self.assertEqual([name for name, _ in response.headers],
                         ["Via", "Via", "To", "From", "Call-ID", "CSeq"])
        self.assertEqual(response.headers.get_all("Via"),
                         request.headers.get_all("Via"))
        trying = request.create_response(100)
        self.assertEqual(trying.headers.get("Timestamp"), "54")
        parsed = parse_message(response.serialize())
        self.assertEqual((parsed.status, parsed.call_id, parsed.cseq),
                         (180, request.call_id, request.cseq))

    def test_to_tag(self) -> None:
        """set_to_tag adds the tag to To as it was received (RFC 3261
        8.2.6.2); with a tag already there, To is written anew."""
        response = parse_message(INVITE).create_response(200, "Fine")
        response.set_to_tag("as83kd")
        self.assertEqual(response.to.tag, "as83kd")
        self.assertEqual(response.headers.get("To"),
                         "Bob <sip:bob@biloxi.example.com>;tag=as83kd")
        self.assertEqual(parse_message(response.serialize()).to, response.to)
        response.set_to_tag("second")
        self.assertEqual(response.headers.get("To"),
                         '"Bob" <sip:bob@biloxi.example.com>;tag=second')
        self.assertEqual(response.start_line(), "SIP/2.0 200 Fine")

    def test_reasons(self) -> None:
        """Every RFC 3261 status code has a default reason."""
        for code in (100, 180, 181, 182, 183, 200, 300, 301, 302, 305, 380,
                     400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 413,
                     414, 415, 416, 420, 421, 423, 480, 481, 482, 483, 484,
                     485, 486, 487, 488, 491, 493, 500, 501, 502, 503, 504,
                     505, 513, 600, 603, 604, 606):
            self.assertTrue(REASONS[code], code)

    def test_make_request(self) -> None:
        """make_request builds a valid request that parses back."""
        request = make_request(
            "MESSAGE", "sip:bob@example.com",
            NameAddr.parse('"Alice" <sip:alice@example.com>;tag=a1'),
            "<sip:bob@example.com>", "call-1@example.com", 7,
            Via("UDP", "192.0.2.1", 5060,
                {"branch": "z9hG4bKm1", "rport": None}),
            contact="<sip:alice@192.0.2.1>", body=b"hello",
            content_type="text/plain", headers=[("Subject", "hi")])
        parsed = parse_message(request.serialize())
        self.assertEqual(parsed, parse_message(parsed.serialize()))
        self.assertEqual((parsed.method, parsed.cseq, parsed.max_forwards),
                         ("MESSAGE", (7, "MESSAGE"), 70))
        self.assertEqual(parsed.top_via.branch, "z9hG4bKm1")
        self.assertEqual(parsed.body, b"hello")
        self.assertEqual(parsed.headers.get("Subject"), "hi")
        self.assertEqual(parsed.from_.display_name, "Alice")

    def test_serialize_fixes_length(self) -> None:
        """Content-Length always states the real body length."""
        message = parse_message(INVITE)
        message.body = b"v=0\r\no=- 0 0 IN IP4 x\r\n"
        self.assertIn(b"\r\nContent-Length: 23\r\n\r\nv=0",
                      message.serialize())

    def test_copy(self) -> None:
        """A copy is equal and independent."""
        message = parse_message(INVITE)
        copy = message.copy()
        self.assertEqual(copy, message)
        copy.headers.add("X-New", "1")
        copy.uri.params["lr"] = None
        self.assertNotIn("X-New", message.headers)
        self.assertEqual(str(message.uri), "sip:bob@biloxi.example.com")

    def test_set_top_via(self) -> None:
        """set_top_via changes only the first value of the first line."""
        message = parse_message(INVITE.replace(
            b"z9hG4bK776asdhds",
            b"z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK2"))
        via = message.top_via.copy()
        via.params["received"] = "192.0.2.9"
        message.set_top_via(via)
        self.assertEqual(message.top_via.received, "192.0.2.9")
        self.assertEqual([v.branch for v in message.vias],
                         ["z9hG4bK1", "z9hG4bK2"])
        self.assertEqual(len(message.headers.get_lines("Via")), 1)


class FuzzTests(SynchronousTestCase):
    """Mutated corpus messages never break the parser."""

    def test_mutations(self) -> None:
        """Each mutation parses (and re-parses its serialization) or raises
        SipParseError; never anything else."""
        seeds = [path.read_bytes()
                 for path in sorted(TORTURE.glob("*/*.sip"))]
        rng = random.Random(4475)
        alphabet = b' \t\r\n:;,<>"\\@%[]=/?*0aZ\x00\xff'
        outcomes = {"parsed": 0, "rejected": 0}
        for _ in range(2000):
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(data))
                if rng.random() < 0.5:
                    data[pos:pos] = bytes([rng.choice(alphabet)])
                else:
                    del data[pos]
            try:
                message = parse_message(bytes(data))
            except SipParseError:
                outcomes["rejected"] += 1
                continue
            wire = message.serialize()
            self.assertEqual(parse_message(wire).serialize(), wire)
            outcomes["parsed"] += 1
        self.assertTrue(all(outcomes.values()), outcomes)
