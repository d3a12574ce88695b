"""Tests for convergence.xmpp.jid."""

from __future__ import annotations

import copy
import pickle

from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.jid import JID, MAX_PART_BYTES, InvalidJID


class ParseValidTests(SynchronousTestCase):
    """RFC 7622 section 3.5 examples and other valid addresses."""

    def assertParts(self, text: str, user: str | None, host: str,
                    resource: str | None) -> None:
        jid = JID.parse(text)
        self.assertEqual((jid.user, jid.host, jid.resource),
                         (user, host, resource))

    def test_bare(self) -> None:
        """A localpart and a domainpart make a bare JID."""
        self.assertParts("juliet@example.com", "juliet", "example.com", None)

    def test_full(self) -> None:
        """A resourcepart follows the first slash."""
        self.assertParts("juliet@example.com/foo", "juliet", "example.com",
                         "foo")

    def test_resource_space(self) -> None:
        """A resourcepart may contain spaces."""
        self.assertParts("juliet@example.com/foo bar", "juliet",
                         "example.com", "foo bar")

    def test_resource_at_and_slash(self) -> None:
        """A resourcepart may contain '@' and '/'."""
        self.assertParts("juliet@example.com/foo@bar/baz", "juliet",
                         "example.com", "foo@bar/baz")

    def test_escaped_localpart(self) -> None:
        """A backslash is allowed in the localpart (XEP-0106 escapes)."""
        self.assertParts("foo\\20bar@example.com", "foo\\20bar",
                         "example.com", None)

    def test_sharp_s_kept(self) -> None:
        """The localpart keeps U+00DF; it is distinct from 'ss'."""
        self.assertParts("fußball@example.com", "fußball", "example.com",
                         None)
        self.assertNotEqual(JID.parse("fußball@example.com"),
                            JID.parse("fussball@example.com"))

    def test_greek(self) -> None:
        """Greek letters are allowed; capital sigma is lower-cased."""
        self.assertParts("π@example.com", "π", "example.com", None)
        self.assertParts("Σ@example.com/foo", "σ", "example.com", "foo")
        self.assertParts("ς@example.com/foo", "ς", "example.com", "foo")

    def test_symbol_resource(self) -> None:
        """Symbols are allowed in the resourcepart."""
        self.assertParts("king@example.com/♚", "king", "example.com", "♚")

    def test_domain_only(self) -> None:
        """A domainpart alone, with or without resource, is a JID."""
        self.assertParts("example.com", None, "example.com", None)
        self.assertParts("example.com/foobar", None, "example.com", "foobar")
        self.assertParts("a.example.com/b@example.net", None,
                         "a.example.com", "b@example.net")

    def test_rtl_localpart(self) -> None:
        """A right-to-left localpart passes the Bidi Rule."""
        self.assertParts("שלום@example.com", "שלום", "example.com", None)


class ParseInvalidTests(SynchronousTestCase):
    """RFC 7622 section 3.6 examples and other invalid addresses."""

    def assertInvalid(self, *texts: str) -> None:
        accepted = []
        for text in texts:
            try:
                JID.parse(text)
            except InvalidJID:
                continue
            accepted.append(text)
        self.assertEqual(accepted, [])

    def test_quotes(self) -> None:
        """Quotes are not allowed in the localpart."""
        self.assertInvalid('"juliet"@example.com')

    def test_space_in_localpart(self) -> None:
        """Spaces are not allowed in the localpart."""
        self.assertInvalid("foo bar@example.com")

    def test_prohibited_localpart_characters(self) -> None:
        """The eight characters RFC 7622 forbids are refused."""
        self.assertInvalid(*(f"a{c}b@example.com" for c in "\"&':<>"))

    def test_fullwidth_at_sign(self) -> None:
        """A fullwidth '@' mapped by preparation is still refused."""
        self.assertInvalid("a\uff20b@example.com")

    def test_empty_parts(self) -> None:
        """Empty localpart, domainpart or resourcepart are invalid."""
        self.assertInvalid("@example.com", "@example.com/", "juliet@",
                           "/foobar", "node@/res", "henryiv@example.com/",
                           "juliet@example.com/", "")

    def test_compatibility_character(self) -> None:
        """A character with a compatibility decomposition is refused."""
        self.assertInvalid("henry\u2163@example.com")

    def test_symbol_localpart(self) -> None:
        """Symbols are not allowed in the localpart."""
        self.assertInvalid("♚@example.com")

    def test_bidi_rule(self) -> None:
        """Mixing left-to-right and right-to-left characters fails."""
        self.assertInvalid("aש@example.com")

    def test_joiner_without_virama(self) -> None:
        """ZERO WIDTH JOINER is only allowed after a virama."""
        self.assertInvalid("a\u200db@example.com")

    def test_control_character(self) -> None:
        """Control characters are refused in every part."""
        self.assertInvalid("a\x07@example.com", "a@example.com/x\x07",
                           "a@example.com/\u0085x", "a@exa\x00mple.com")

    def test_second_at_sign(self) -> None:
        """A second '@' before the resource lands in the domainpart."""
        self.assertInvalid("a@b@example.com")

    def test_bad_labels(self) -> None:
        """Empty, overlong, underscore or hyphen-edged labels are refused."""
        self.assertInvalid("a@a..example.com", "a@-a.example.com",
                           "a@a-.example.com", "a@exa_mple.com",
                           "a@" + "a" * 64 + ".com", "a@example.com..",
                           "a@.", "a@é_x.com")

    def test_bad_ip_literals(self) -> None:
        """Malformed IP literals are refused."""
        self.assertInvalid("a@[::1", "a@[zz::1]", "a@[fe80::1%eth0]",
                           "a@999.0.2.1")

    def test_bad_a_label(self) -> None:
        """An A-label that does not decode is refused."""
        self.assertInvalid("a@xn--zz.example")

    def test_not_a_string(self) -> None:
        """Only text can be parsed."""
        self.assertRaises(TypeError, JID.parse, b"a@example.com")


class PreparationTests(SynchronousTestCase):
    """Case folding, normalisation and domain canonicalisation."""

    def test_localpart_lowercased(self) -> None:
        """The localpart is case-mapped."""
        self.assertEqual(JID.parse("JuLiEt@example.com").user, "juliet")

    def test_fullwidth_localpart(self) -> None:
        """Fullwidth letters are width-mapped, then lower-cased."""
        self.assertEqual(JID.parse("\uff2a\uff35\uff2c@example.com").user,
                         "jul")

    def test_domain_lowercased(self) -> None:
        """The domainpart is lower-cased."""
        self.assertEqual(JID.parse("juliet@EXAMPLE.Com").host, "example.com")

    def test_resource_case_kept(self) -> None:
        """The resourcepart keeps its case."""
        self.assertEqual(JID.parse("a@example.com/Balcony").resource,
                         "Balcony")

    def test_trailing_dot(self) -> None:
        """A final dot is stripped from the domainpart."""
        self.assertEqual(JID.parse("a@example.com.").host, "example.com")

    def test_idn(self) -> None:
        """IDNs are stored as lower-case U-labels, A-labels are decoded."""
        self.assertEqual(JID.parse("a@ÉXAMPLE.com").host, "éxample.com")
        self.assertEqual(JID.parse("a@xn--xample-9ua.com").host,
                         "éxample.com")
        self.assertEqual(JID.parse("a@例え.テスト").host, "例え.テスト")

    def test_idn_dots(self) -> None:
        """Ideographic full stops separate labels."""
        self.assertEqual(JID.parse("a@example\u3002com").host, "example.com")

    def test_ip_literals(self) -> None:
        """IPv4 and bracketed IPv6 literals are accepted, IPv6 compressed."""
        self.assertEqual(JID.parse("a@192.0.2.1").host, "192.0.2.1")
        self.assertEqual(JID.parse("a@[2001:DB8:0::1]/r").host,
                         "[2001:db8::1]")

    def test_resource_nfc(self) -> None:
        """The resourcepart is normalised to NFC."""
        self.assertEqual(JID.parse("a@example.com/e\u0301").resource, "\u00e9")

    def test_resource_spaces_mapped(self) -> None:
        """Non-ASCII spaces in the resourcepart become U+0020."""
        self.assertEqual(JID.parse("a@example.com/a\u00a0b").resource, "a b")

    def test_constructor_prepares(self) -> None:
        """JID(user, host, resource) applies the same preparation."""
        jid = JID("JULIET", "Example.COM.", "Balcony")
        self.assertEqual(str(jid), "juliet@example.com/Balcony")

    def test_constructor_refuses(self) -> None:
        """JID(...) refuses invalid parts."""
        self.assertRaises(InvalidJID, JID, "a b", "example.com")
        self.assertRaises(InvalidJID, JID, "", "example.com")
        self.assertRaises(InvalidJID, JID, None, "example.com", "")


class LengthTests(SynchronousTestCase):
    """Each part is limited to 1023 octets of UTF-8."""

    def test_localpart(self) -> None:
        """1023 octets pass, 1024 fail, counted in UTF-8."""
        self.assertEqual(len(JID.parse("a" * 1023 + "@x.example").user), 1023)
        self.assertRaises(InvalidJID, JID.parse, "a" * 1024 + "@x.example")
        self.assertRaises(InvalidJID, JID.parse, "é" * 512 + "@x.example")
        self.assertEqual(JID.parse("é" * 511 + "@x.example").user, "é" * 511)

    def test_resourcepart(self) -> None:
        """The resourcepart has the same limit."""
        self.assertEqual(
            len(JID.parse("x.example/" + "r" * MAX_PART_BYTES).resource),
            MAX_PART_BYTES)
        self.assertRaises(InvalidJID, JID.parse, "x.example/" + "r" * 1024)

    def test_domainpart(self) -> None:
        """The domainpart has the same limit."""
        host = ".".join(["a" * 63] * 16)[:1023].rstrip(".")
        self.assertEqual(JID.parse(host).host, host)
        self.assertRaises(InvalidJID, JID.parse, ".".join(["a" * 63] * 17))

    def test_huge_input(self) -> None:
        """Very long input is refused."""
        self.assertRaises(InvalidJID, JID.parse, "é" * 100000 + "@x.example")


class BehaviourTests(SynchronousTestCase):
    """Value semantics of JID objects."""

    def test_cache(self) -> None:
        """Parsing the same text twice returns the cached object."""
        self.assertIs(JID.parse("cache@example.com/r"),
                      JID.parse("cache@example.com/r"))

    def test_equality_and_hash(self) -> None:
        """Equality and hashing use the prepared parts."""
        a = JID.parse("Juliet@Example.com/r")
        b = JID("juliet", "example.com", "r")
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertEqual(len({a, b}), 1)
        self.assertNotEqual(a, JID.parse("juliet@example.com/R"))
        self.assertNotEqual(a, "juliet@example.com/r")

    def test_bare(self) -> None:
        """bare drops the resource; a bare JID is its own bare."""
        full = JID.parse("a@example.com/r")
        self.assertEqual(full.bare, JID.parse("a@example.com"))
        self.assertFalse(full.is_bare)
        self.assertTrue(full.bare.is_bare)
        self.assertIs(full.bare.bare, full.bare)
        domain = JID.parse("example.com/r")
        self.assertEqual(str(domain.bare), "example.com")

    def test_full_and_str(self) -> None:
        """full and str() give the canonical string."""
        jid = JID.parse("A@B.example/C")
        self.assertEqual(jid.full, "a@b.example/C")
        self.assertEqual(str(jid), "a@b.example/C")
        self.assertEqual(str(JID.parse("b.example")), "b.example")

    def test_repr(self) -> None:
        """repr() can be evaluated back."""
        jid = JID.parse("a@example.com/r")
        self.assertEqual(eval(repr(jid)), jid)

    def test_immutable(self) -> None:
        """Attributes cannot be set or deleted."""
        jid = JID.parse("a@example.com")
        self.assertRaises(AttributeError, setattr, jid, "user", "b")
        self.assertRaises(AttributeError, delattr, jid, "host")
        self.assertRaises(AttributeError, setattr, jid, "other", 1)

    def test_pickle_and_copy(self) -> None:
        """JIDs survive pickling and copy returns the same object."""
        jid = JID.parse("a@example.com/r")
        self.assertEqual(pickle.loads(pickle.dumps(jid)), jid)
        self.assertIs(copy.copy(jid), jid)
        self.assertIs(copy.deepcopy(jid), jid)
