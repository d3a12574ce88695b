# -*- test-case-name: tests.test_muc_nick -*-
"""
Room nicknames (XEP-0045 section 7.2.1 and RFC 8266, the PRECIS Nickname
profile, applied on top of the JID resourcepart rules the nickname already
passed): spaces mapped and collapsed, leading and trailing ones removed,
NFKC; conflicts are found case-insensitively.
"""

from __future__ import annotations

import unicodedata

__all__ = ["BadNick", "fold", "prepare_nick"]


class BadNick(ValueError):
    """A nickname the room refuses; C{condition} is the stanza error."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


def prepare_nick(nick: str | None, max_length: int) -> str:
    """
    The enforced form of C{nick}.

    @raise BadNick: C{jid-malformed} without a nickname (7.2.1),
        C{not-acceptable} for one that is empty once prepared, too long
        or has control characters.
    """
    if not nick:
        raise BadNick("jid-malformed", "A nickname is required")
    prepared = unicodedata.normalize("NFKC", " ".join(nick.split()))
    if not prepared:
        raise BadNick("not-acceptable", "The nickname is empty")
    if len(prepared) > max_length:
        raise BadNick("not-acceptable", f"Nicknames are at most {max_length} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in prepared):
        raise BadNick("not-acceptable", "The nickname has control characters")
    return prepared


def fold(nick: str) -> str:
    """The key under which two nicknames conflict (RFC 8266 comparison)."""
    return unicodedata.normalize("NFKC", nick.casefold())
