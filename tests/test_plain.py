"""Tests for L{convergence.auth.plain} and L{convergence.auth.errors}."""

from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.errors import CONDITIONS, SaslError
from convergence.auth.plain import parse_plain


class ParsePlainTests(SynchronousTestCase):
    """L{parse_plain} splits RFC 4616 messages."""

    def assertRefused(self, message: bytes, condition: str) -> None:
        """Assert C{message} is refused with C{condition}."""
        error = self.assertRaises(SaslError, parse_plain, message)
        self.assertEqual(error.condition, condition)

    def test_without_authzid(self) -> None:
        """C{NUL tim NUL tanstaaftanstaaf} has an empty authzid."""
        self.assertEqual(
            parse_plain(b"\x00tim\x00tanstaaftanstaaf"),
            ("", "tim", "tanstaaftanstaaf"),
        )

    def test_with_authzid(self) -> None:
        """The RFC 4616 example with an authorization identity."""
        self.assertEqual(
            parse_plain(b"Ursel\x00Kurt\x00xipj3plmq"),
            ("Ursel", "Kurt", "xipj3plmq"),
        )

    def test_utf8(self) -> None:
        """Fields are UTF-8; the authcid is SASLprepped, the password is not."""
        message = "\x00I\u00adX\x00p\u00e4ss\u00ad".encode("utf-8")
        self.assertEqual(parse_plain(message), ("", "IX", "p\u00e4ss\u00ad"))

    def test_empty_authcid(self) -> None:
        """An empty authcid is malformed."""
        self.assertRefused(b"\x00\x00secret", "malformed-request")

    def test_empty_password(self) -> None:
        """An empty password is malformed."""
        self.assertRefused(b"\x00tim\x00", "malformed-request")

    def test_wrong_field_count(self) -> None:
        """Exactly two NULs are required."""
        self.assertRefused(b"tim\x00secret", "malformed-request")
        self.assertRefused(b"\x00tim\x00sec\x00ret", "malformed-request")
        self.assertRefused(b"", "malformed-request")

    def test_not_utf8(self) -> None:
        """Invalid UTF-8 fails with incorrect-encoding."""
        self.assertRefused(b"\x00tim\x00\xff\xfe", "incorrect-encoding")

    def test_prohibited_authcid(self) -> None:
        """An authcid SASLprep refuses is not authorized."""
        self.assertRefused(b"\x00ti\x07m\x00secret", "not-authorized")


class SaslErrorTests(SynchronousTestCase):
    """L{SaslError}."""

    def test_attributes(self) -> None:
        """The condition and text are kept and shown."""
        error = SaslError("not-authorized", "bad password")
        self.assertEqual(error.condition, "not-authorized")
        self.assertEqual(error.text, "bad password")
        self.assertEqual(str(error), "not-authorized: bad password")
        self.assertEqual(str(SaslError("aborted")), "aborted")
        self.assertEqual(SaslError("aborted", None).text, "")

    def test_conditions(self) -> None:
        """The RFC 6120 conditions are known; others are refused."""
        self.assertIn("temporary-auth-failure", CONDITIONS)
        self.assertEqual(len(CONDITIONS), 11)
        self.assertRaises(ValueError, SaslError, "no-such-condition")
