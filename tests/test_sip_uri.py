"""Tests for convergence.sip.uri."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.sip.uri import (
    AbsoluteUri,
    NameAddr,
    SipUri,
    SipUriError,
    Via,
    parse_params,
    parse_uri,
)


class SipUriParseTests(SynchronousTestCase):
    """Parsing sip and sips URIs (RFC 3261 19.1.1)."""

    def test_all_parts(self) -> None:
        """Every component is split out, escapes resolved."""
        uri = SipUri.parse("sips:alice:se%63ret@Atlanta.COM:5061"
                           ";Transport=TCP;lr;maddr=239.255.255.1"
                           "?subject=project%20x&priority=urgent")
        self.assertEqual(
            (uri.scheme, uri.user, uri.password, uri.host, uri.port),
            ("sips", "alice", "secret", "atlanta.com", 5061))
        self.assertEqual(uri.params, {"transport": "TCP", "lr": None,
                                      "maddr": "239.255.255.1"})
        self.assertEqual(uri.headers, {"subject": "project x",
                                       "priority": "urgent"})

    def test_host_only(self) -> None:
        """A URI may have neither user nor port."""
        uri = SipUri.parse("sip:example.com")
        self.assertEqual((uri.user, uri.host, uri.port, uri.params),
                         (None, "example.com", None, {}))

    def test_scheme_case(self) -> None:
        """The scheme is case-insensitive and stored lower-cased."""
        self.assertEqual(SipUri.parse("SIP:bob@example.com").scheme, "sip")

    def test_ipv6(self) -> None:
        """IPv6 references keep their brackets and may carry a port."""
        uri = SipUri.parse("sip:bob@[2001:DB8::1]:5070;maddr=[2001:db8::2]")
        self.assertEqual((uri.host, uri.port), ("[2001:db8::1]", 5070))
        self.assertEqual(uri.params["maddr"], "[2001:db8::2]")
        self.assertEqual(str(uri),
                         "sip:bob@[2001:db8::1]:5070;maddr=[2001:db8::2]")

    def test_telephone_user(self) -> None:
        """A user part may hold ';' (telephone-subscriber parameters)."""
        uri = SipUri.parse("sip:+1-212-555-1212;isub=1@gw.example.com"
                           ";user=phone")
        self.assertEqual((uri.user, uri.host, uri.params),
                         ("+1-212-555-1212;isub=1", "gw.example.com",
                          {"user": "phone"}))

    def test_escaped_user(self) -> None:
        """Escapes in the user part are resolved."""
        self.assertEqual(SipUri.parse("sip:%61lice@example.com").user,
                         "alice")

    def test_escaped_null(self) -> None:
        """An escaped NUL is a legal user character (RFC 4475 escnull)."""
        uri = SipUri.parse("sip:null-%00-null@example.com")
        self.assertEqual(uri.user, "null-\x00-null")
        self.assertEqual(str(uri), "sip:null-%00-null@example.com")

    def test_transport(self) -> None:
        """The transport property is the lower-cased parameter."""
        self.assertEqual(SipUri.parse("sip:h;transport=TLS").transport, "tls")
        self.assertIsNone(SipUri.parse("sip:h").transport)

    def test_invalid(self) -> None:
        """Malformed URIs raise SipUriError."""
        for text in ["sip:", "sip:@example.com", "sip:bob@", "example.com",
                     "sip:bob@exa mple.com", "sip:bob@example.com:99999",
                     "sip:bob@example.com:5o60", "sip:bob@[2001:db8::1",
                     "sip:bob@[not:an:ip]", "sip:%4@example.com",
                     "sip:bob@example.com;;lr", "sip:h?nobody",
                     "<sip:bob@example.com>", "sip:bob@example.com; lr",
                     "1x:opaque"]:
            self.assertRaises(SipUriError, parse_uri, text)

    def test_not_sip(self) -> None:
        """SipUri.parse refuses other schemes."""
        self.assertRaises(SipUriError, SipUri.parse, "tel:+15551234")


class SerializeTests(SynchronousTestCase):
    """str() escapes what needs escaping and round-trips."""

    def test_round_trip(self) -> None:
        """Parsing str() of a URI gives an equal URI with equal fields."""
        for text in ["sip:alice@atlanta.com",
                     "sips:bob:pw@[::1]:5061;transport=tcp;lr",
                     "sip:a%20b%40c@h.example.com;x=%3B?h=%26%3D&k=v",
                     "sip:%E2%82%AC@example.com",
                     "sip:%ff@example.com"]:
            uri = SipUri.parse(text)
            again = SipUri.parse(str(uri))
            self.assertEqual(again, uri)
            self.assertEqual((again.user, again.params, again.headers),
                             (uri.user, uri.params, uri.headers))

    def test_unneeded_escapes_dropped(self) -> None:
        """An escaped unreserved character is written plainly."""
        self.assertEqual(str(SipUri.parse("sip:%61lice@example.com")),
                         "sip:alice@example.com")

    def test_reserved_escaped(self) -> None:
        """Characters outside each part's set are escaped."""
        uri = SipUri(user="a@b c", host="example.com",
                     params={"x": "v;w"}, headers={"Subject": "a&b"})
        self.assertEqual(str(uri),
                         "sip:a%40b%20c@example.com;x=v%3Bw?Subject=a%26b")

    def test_with(self) -> None:
        """with_ returns a changed copy sharing no dicts."""
        uri = SipUri.parse("sip:bob@example.com;lr")
        other = uri.with_(port=5080)
        other.params["transport"] = "tcp"
        self.assertEqual(str(uri), "sip:bob@example.com;lr")
        self.assertEqual(str(other),
                         "sip:bob@example.com:5080;lr;transport=tcp")


class ComparisonTests(SynchronousTestCase):
    """URI equality per RFC 3261 19.1.4 (its own examples)."""

    equal = [
        ("sip:%61lice@atlanta.com;transport=TCP",
         "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com",
         "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com;security=on",
         "sip:carol@chicago.com;newparam=5"),
        ("sip:biloxi.com;transport=tcp;method=REGISTER"
         "?to=sip:bob%40biloxi.com",
         "sip:biloxi.com;method=REGISTER;transport=tcp"
         "?to=sip:bob%40biloxi.com"),
        ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
         "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ]
    unequal = [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp",
         "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com:6000;transport=tcp", "sip:bob@biloxi.com"),
        ("sip:carol@chicago.com",
         "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on",
         "sip:carol@chicago.com;security=off"),
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ("sip:alice:a@atlanta.com", "sip:alice:A@atlanta.com"),
        ("sip:h;user=phone", "sip:h"),
    ]

    def test_equal(self) -> None:
        """Equivalent URIs compare equal and hash alike."""
        for a, b in self.equal:
            self.assertEqual(SipUri.parse(a), SipUri.parse(b), (a, b))
            self.assertEqual(hash(SipUri.parse(a)), hash(SipUri.parse(b)))

    def test_unequal(self) -> None:
        """Different URIs compare unequal."""
        for a, b in self.unequal:
            self.assertNotEqual(SipUri.parse(a), SipUri.parse(b), (a, b))


class AbsoluteUriTests(SynchronousTestCase):
    """Other schemes are kept opaque."""

    def test_tel(self) -> None:
        """A tel URI exposes its number as user."""
        uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
        self.assertIsInstance(uri, AbsoluteUri)
        self.assertEqual((uri.scheme, uri.user),
                         ("tel", "+1-201-555-0123"))
        self.assertEqual(str(uri),
                         "tel:+1-201-555-0123;phone-context=example.com")

    def test_unknown_scheme(self) -> None:
        """Any scheme parses (RFC 4475 unkscm, novelsc)."""
        for text in ["nobodyknowsthisscheme:totallyopaquecontent",
                     "soap.beep://192.0.2.103:3002"]:
            uri = parse_uri(text)
            self.assertEqual(str(uri), text)
            self.assertIsNone(uri.user)

    def test_equality(self) -> None:
        """Schemes compare case-insensitively, the rest exactly."""
        self.assertEqual(parse_uri("TEL:+123"), parse_uri("tel:+123"))
        self.assertNotEqual(parse_uri("tel:+123"), parse_uri("tel:+124"))


class NameAddrTests(SynchronousTestCase):
    """From/To/Contact values."""

    def test_quoted_display_name(self) -> None:
        """Quoted names lose their quotes and escapes."""
        addr = NameAddr.parse('"Al \\"The\\" \\\\ Ice" <sip:a@b.example>'
                              ";tag=x1")
        self.assertEqual(addr.display_name, 'Al "The" \\ Ice')
        self.assertEqual(addr.tag, "x1")
        self.assertEqual(NameAddr.parse(str(addr)), addr)

    def test_token_display_name(self) -> None:
        """An unquoted display name is a sequence of tokens."""
        addr = NameAddr.parse("Bob  Smith <sip:bob@example.com>")
        self.assertEqual(addr.display_name, "Bob  Smith")
        self.assertEqual(str(addr), '"Bob  Smith" <sip:bob@example.com>')

    def test_bad_display_name(self) -> None:
        """A comma cannot appear in an unquoted name (RFC 4475 baddn)."""
        self.assertRaises(SipUriError, NameAddr.parse,
                          "Bell, Alexander <sip:a.g.bell@example.com>")

    def test_no_display_name(self) -> None:
        """Angle brackets alone give no display name."""
        addr = NameAddr.parse("<sip:bob@example.com;transport=tcp>;expires=60")
        self.assertIsNone(addr.display_name)
        self.assertEqual(addr.uri.params, {"transport": "tcp"})
        self.assertEqual(addr.params, {"expires": "60"})

    def test_addr_spec_params(self) -> None:
        """Without brackets, parameters belong to the header (20.10)."""
        addr = NameAddr.parse("sip:bob@example.com;tag=abc;transport=tcp")
        self.assertEqual(addr.uri, SipUri.parse("sip:bob@example.com"))
        self.assertEqual(addr.params, {"tag": "abc", "transport": "tcp"})
        self.assertEqual(str(addr),
                         "<sip:bob@example.com>;tag=abc;transport=tcp")

    def test_quoted_param(self) -> None:
        """Quoted parameter values keep their quotes and inner ';'."""
        addr = NameAddr.parse('<sip:a@b>;+sip.instance="<urn:uuid:1;2>";q=1')
        self.assertEqual(addr.params, {"+sip.instance": '"<urn:uuid:1;2>"',
                                       "q": "1"})
        self.assertEqual(str(addr),
                         '<sip:a@b>;+sip.instance="<urn:uuid:1;2>";q=1')

    def test_other_scheme(self) -> None:
        """A name-addr may hold a non-SIP URI."""
        addr = NameAddr.parse("<tel:+15551234>;tag=1")
        self.assertEqual((addr.uri.scheme, addr.tag), ("tel", "1"))

    def test_tag_setter(self) -> None:
        """Setting tag adds, replaces or removes the parameter."""
        addr = NameAddr.parse("<sip:a@b>")
        addr.tag = "t1"
        self.assertEqual(str(addr), "<sip:a@b>;tag=t1")
        addr.tag = None
        self.assertEqual(addr.params, {})

    def test_many_escapes(self) -> None:
        """A display name made of escaped quotes parses in one pass."""
        addr = NameAddr.parse('"' + '\\"' * 5000 + '" <sip:a@b>')
        self.assertEqual(addr.display_name, '"' * 5000)

    def test_invalid(self) -> None:
        """Broken values raise SipUriError."""
        for text in ["*", "", '"unterminated <sip:a@b>', "<sip:a@b",
                     '"name" sip:a@b', "< sip:a@b >", "<sip:a@b>;=x",
                     "<sip:a@b> junk", "<sip:a@b>;tag="]:
            self.assertRaises(SipUriError, NameAddr.parse, text)

    def test_copy(self) -> None:
        """copy() shares no mutable state."""
        addr = NameAddr.parse("<sip:a@b;lr>;tag=1")
        other = addr.copy()
        other.params["tag"] = "2"
        other.uri.params["x"] = None
        self.assertEqual(str(addr), "<sip:a@b;lr>;tag=1")


class ParamsTests(SynchronousTestCase):
    """The generic-param list parser."""

    def test_lws_and_case(self) -> None:
        """LWS around ';' and '=' is allowed; names are lower-cased."""
        self.assertEqual(parse_params(" ; Branch = z9 ;RPORT"),
                         {"branch": "z9", "rport": None})

    def test_empty(self) -> None:
        """No text, no parameters."""
        self.assertEqual(parse_params("   "), {})


class ViaTests(SynchronousTestCase):
    """Via entries (RFC 3261 20.42)."""

    def test_basic(self) -> None:
        """The parts of a typical Via."""
        via = Via.parse("SIP/2.0/udp pc33.Atlanta.com:5066"
                        ";branch=z9hG4bK776asdhds;rport;received=192.0.2.1")
        self.assertEqual((via.protocol, via.transport, via.host, via.port),
                         ("SIP/2.0", "UDP", "pc33.atlanta.com", 5066))
        self.assertEqual(via.branch, "z9hG4bK776asdhds")
        self.assertEqual(via.received, "192.0.2.1")
        self.assertIn("rport", via.params)
        self.assertIsNone(via.params["rport"])

    def test_lws(self) -> None:
        """LWS is allowed around the slashes and the semicolons."""
        via = Via.parse("SIP / 2.0 / TCP  host.example.com ; branch=z9hG4bKx")
        self.assertEqual((via.transport, via.host, via.branch),
                         ("TCP", "host.example.com", "z9hG4bKx"))

    def test_ipv6(self) -> None:
        """IPv6 sent-by and an IPv6 received value."""
        via = Via.parse("SIP/2.0/TLS [2001:db8::9]:5061;received=2001:db8::1"
                        ";branch=z9hG4bKv6")
        self.assertEqual(via.sent_by, ("[2001:db8::9]", 5061))
        self.assertEqual(via.received, "2001:db8::1")

    def test_sent_by_defaults(self) -> None:
        """Without a port, sent_by uses 5060, or 5061 for TLS."""
        self.assertEqual(Via.parse("SIP/2.0/UDP a.example").sent_by,
                         ("a.example", 5060))
        self.assertEqual(Via.parse("SIP/2.0/TLS a.example").sent_by,
                         ("a.example", 5061))

    def test_round_trip(self) -> None:
        """str() gives the canonical form, which parses back equal."""
        via = Via.parse("SIP / 2.0 / ws  df7jal23ls0d.invalid ;rport"
                        " ;branch=z9hG4bKnash")
        self.assertEqual(str(via),
                         "SIP/2.0/WS df7jal23ls0d.invalid;rport"
                         ";branch=z9hG4bKnash")
        self.assertEqual(Via.parse(str(via)), via)

    def test_build(self) -> None:
        """A Via built from fields serializes as expected."""
        via = Via("UDP", "10.0.0.1", 5060,
                  {"branch": "z9hG4bK1", "rport": None})
        self.assertEqual(str(via),
                         "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport")

    def test_invalid(self) -> None:
        """Broken Via values raise SipUriError."""
        for text in ["SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host:x",
                     "SIP/2.0/UDP host;=1",
                     "SIP/2.0/UDP;branch=1 host", "SIP/2.0/U@P host",
                     "SIP/2.0/UDP host junk"]:
            self.assertRaises(SipUriError, Via.parse, text)
