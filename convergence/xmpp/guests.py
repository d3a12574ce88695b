# -*- test-case-name: tests.test_guests -*-
"""
Guest logins: short-lived, one-time login tokens for addresses that are no
account, handed out by an application (the selfhelp page's web visitor).

An application asks L{GuestLogins.issue} for a token; the table makes up
the guest's address itself (C{guest-<random>@domain}), so no application
can mint a login for a real user.  The client logs in with SASL PLAIN,
the guest's localpart as the username and the token as the password.  A
token works once, within C{xmpp.guest_token_lifetime} seconds; SASL PLAIN
asks the table only when no account of that name exists, so stored
credentials always win.  L{revoke} ends a guest (its conversation
ended): its tokens stop working.

Guests leave nothing in the database: the archive (XEP-0313) and the
last-logout time (XEP-0012) skip guest addresses, for as long as the
table knows them, which is until a revoked guest's last stream is gone
(L{forget}).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from convergence.xmpp.jid import JID

#: localparts of guest addresses begin with this
PREFIX = "guest-"


@dataclass
class _Token:
    value: str
    expires: float


class GuestLogins:
    """The outstanding guest addresses and their one-time tokens."""

    def __init__(self, clock: Any, lifetime: float = 60.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        #: guest bare JID -> its outstanding token, or None once used
        self._guests: dict[JID, _Token | None] = {}
        #: revoked guests whose streams are still there
        self._ended: set[JID] = set()

    def issue(self, domain: str, guest: JID | None = None) -> tuple[JID, str]:
        """
        A new one-time token for C{guest} (one issued before and not
        revoked), or for a new guest address on C{domain}; the previous
        token of that guest stops working.

        @raise KeyError: C{guest} is not an outstanding guest.
        """
        if guest is None:
            guest = JID.parse(f"{PREFIX}{secrets.token_hex(12)}@{domain}")
        else:
            guest = guest.bare
            if guest not in self._guests:
                raise KeyError(str(guest))
        token = secrets.token_urlsafe(24)
        self._guests[guest] = _Token(token, self.clock.seconds() + self.lifetime)
        return guest, token

    def redeem(self, jid: JID, token: str) -> bool:
        """Whether C{token} logs C{jid} in now; a token works only once."""
        jid = jid.bare
        current = self._guests.get(jid)
        if current is None or self.clock.seconds() > current.expires:
            return False
        if not hmac.compare_digest(current.value.encode(), token.encode()):
            return False
        self._guests[jid] = None
        return True

    def is_guest(self, jid: JID) -> bool:
        """Whether C{jid}'s bare address is a guest (outstanding, or
        revoked with streams still there)."""
        bare = jid.bare
        return bare in self._guests or bare in self._ended

    def revoke(self, jid: JID, connected: bool = False) -> None:
        """
        End a guest: its tokens no longer log in.  With C{connected}, its
        streams are still there: it stays a guest until L{forget}.
        """
        bare = jid.bare
        if self._guests.pop(bare, False) is not False and connected:
            self._ended.add(bare)

    def forget(self, jid: JID) -> None:
        """A revoked guest's last stream is gone."""
        self._ended.discard(jid.bare)

    def __len__(self) -> int:
        """The guests the table holds (outstanding and ending)."""
        return len(self._guests) + len(self._ended)
