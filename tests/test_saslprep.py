"""Tests for L{convergence.auth.saslprep}."""

from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.saslprep import SASLprepError, saslprep


class SASLprepTests(SynchronousTestCase):
    """The examples of RFC 4013 section 3 and the profile's rules."""

    def test_soft_hyphen_mapped_to_nothing(self) -> None:
        """U+00AD (table B.1) disappears: C{I<U+00AD>X} becomes C{IX}."""
        self.assertEqual(saslprep("I\u00adX"), "IX")

    def test_ascii_unchanged(self) -> None:
        """Plain ASCII, case included, is left alone."""
        self.assertEqual(saslprep("user"), "user")
        self.assertEqual(saslprep("USER"), "USER")

    def test_nfkc(self) -> None:
        """Compatibility characters are normalized with NFKC."""
        self.assertEqual(saslprep("\u00aa"), "a")
        self.assertEqual(saslprep("\u2168"), "IX")

    def test_non_ascii_space_mapped_to_space(self) -> None:
        """A non-ASCII space (table C.1.2) becomes U+0020."""
        self.assertEqual(saslprep("a\u00a0b\u2003c"), "a b c")

    def test_control_character_prohibited(self) -> None:
        """U+0007 (table C.2.1) is prohibited output."""
        error = self.assertRaises(SASLprepError, saslprep, "\u0007")
        self.assertIn("U+0007", str(error))

    def test_other_prohibited_tables(self) -> None:
        """Private use, non-characters and tagging characters are refused."""
        for char in ("\ue000", "\ufffe", "\U000e0001", "\u200e", "\u2ff0"):
            self.assertRaises(SASLprepError, saslprep, f"a{char}b")

    def test_bidi_must_start_and_end_with_randal(self) -> None:
        """C{<U+0627><U+0031>} violates the bidi rule (RFC 4013 example)."""
        self.assertRaises(SASLprepError, saslprep, "\u0627\u0031")

    def test_bidi_well_formed(self) -> None:
        """A right-to-left string that starts and ends with RandALCat is fine."""
        self.assertEqual(saslprep("\u0627\u0031\u0628"), "\u0627\u0031\u0628")

    def test_bidi_mixed_refused(self) -> None:
        """RandALCat and LCat characters never mix."""
        self.assertRaises(SASLprepError, saslprep, "\u0627a\u0628")

    def test_unassigned_stored_refused(self) -> None:
        """Stored strings must not contain unassigned code points."""
        self.assertRaises(SASLprepError, saslprep, "a\u0221")

    def test_unassigned_query_allowed(self) -> None:
        """Queries may contain unassigned code points."""
        self.assertEqual(saslprep("a\u0221", allow_unassigned=True), "a\u0221")

    def test_error_is_value_error(self) -> None:
        """L{SASLprepError} is a L{ValueError}."""
        self.assertTrue(issubclass(SASLprepError, ValueError))
