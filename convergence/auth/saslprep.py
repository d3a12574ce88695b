# -*- test-case-name: tests.test_saslprep -*-
"""
SASLprep (RFC 4013): the stringprep profile for user names and passwords.

Built on the standard library's C{stringprep} tables (Unicode 3.2, as RFC 3454
requires) and the matching C{unicodedata.ucd_3_2_0} normalization.
"""

from __future__ import annotations

import stringprep
import unicodedata
from typing import Callable

__all__ = ["SASLprepError", "saslprep"]


class SASLprepError(ValueError):
    """The string cannot be prepared: prohibited, unassigned or bad bidi."""


#: RFC 4013 section 2.3: prohibited output, with a name for error messages.
_PROHIBITED: tuple[tuple[Callable[[str], bool], str], ...] = (
    (stringprep.in_table_c12, "non-ASCII space"),
    (stringprep.in_table_c21_c22, "control character"),
    (stringprep.in_table_c3, "private use character"),
    (stringprep.in_table_c4, "non-character code point"),
    (stringprep.in_table_c5, "surrogate code point"),
    (stringprep.in_table_c6, "character inappropriate for plain text"),
    (stringprep.in_table_c7, "character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "change display property or deprecated character"),
    (stringprep.in_table_c9, "tagging character"),
)


def _map(text: str) -> str:
    """RFC 4013 section 2.1: non-ASCII spaces to SPACE, B.1 to nothing."""
    mapped = []
    for char in text:
        if stringprep.in_table_c12(char):
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):
            mapped.append(char)
    return "".join(mapped)


def _check_bidi(text: str) -> None:
    """RFC 3454 section 6: RandALCat strings are wholly right-to-left."""
    if not any(stringprep.in_table_d1(char) for char in text):
        return
    if any(stringprep.in_table_d2(char) for char in text):
        raise SASLprepError("mixes right-to-left and left-to-right characters")
    if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
        raise SASLprepError(
            "right-to-left string must start and end with a right-to-left character"
        )


def saslprep(text: str, allow_unassigned: bool = False) -> str:
    """
    Prepare C{text} with the SASLprep profile.

    @param allow_unassigned: C{True} for "queries" (strings received from a
        peer), C{False} for "stored strings" (what goes into the database).
    @raise SASLprepError: the string contains prohibited output, violates the
        bidi rules, or (stored strings) contains unassigned code points.
    """
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", _map(text))
    for index, char in enumerate(prepared):
        for in_table, description in _PROHIBITED:
            if in_table(char):
                raise SASLprepError(
                    f"prohibited {description} U+{ord(char):04X} at {index}"
                )
        if not allow_unassigned and stringprep.in_table_a1(char):
            raise SASLprepError(f"unassigned code point U+{ord(char):04X} at {index}")
    _check_bidi(prepared)
    return prepared
