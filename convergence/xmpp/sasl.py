# -*- test-case-name: tests.test_sasl_negotiation -*-
"""
Server-side SASL mechanisms for XMPP streams (RFC 6120 section 6).

A mechanism runs one exchange: L{start} with the optional initial response,
then L{respond} for each client response.  Each returns a Deferred firing
with a L{Challenge} or a L{Success}; failures are L{SaslError}s carrying the
RFC 6120 failure condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred, succeed

from convergence.auth.errors import SaslError
from convergence.auth.plain import parse_plain
from convergence.auth.scram import ScramServerExchange, fake_credential, verify_password
from convergence.xmpp.guests import GuestLogins
from convergence.xmpp.jid import JID, InvalidJID

RunInThread = Callable[..., Deferred]


@dataclass(frozen=True)
class Challenge:
    """Send C{<challenge/>} with C{data}."""

    data: bytes


@dataclass(frozen=True)
class Success:
    """Authentication succeeded as C{jid}; C{data} goes in C{<success/>}."""

    jid: JID
    data: bytes | None = None


class CredentialSource(Protocol):
    """What mechanisms need of the account store (an L{AccountLookup})."""

    def credentials(self, localpart: str, domain: str) -> Deferred:
        """Deferred: the credentials by mechanism name, or C{None}."""
        ...


def _account_jid(username: str, host: str) -> JID | None:
    """The bare JID for a SASL username on C{host}, or C{None} if invalid."""
    if "@" in username:
        return None
    try:
        return JID.parse(f"{username}@{host}")
    except InvalidJID:
        return None


def _check_authzid(authzid: str | None, jid: JID) -> None:
    if authzid and authzid not in (str(jid), jid.user):
        try:
            if JID.parse(authzid) == jid:
                return
        except InvalidJID:
            pass
        raise SaslError("invalid-authzid", "may only act as yourself")


class PlainMechanism:
    """
    SASL PLAIN (RFC 4616), verified against stored SCRAM credentials; a
    name that is no account may be a guest with a one-time login token
    (L{convergence.xmpp.guests}).
    """

    name = "PLAIN"

    def __init__(
        self, host: str, accounts: CredentialSource, run_in_thread: RunInThread,
        iterations: int = 4096, guests: GuestLogins | None = None,
    ) -> None:
        """
        @param iterations: the PBKDF2 cost spent on an unknown user's
            password too, so that the answer's timing does not tell whether
            an account exists.
        @param guests: the outstanding guest logins, asked only when there
            is no account of the name.
        """
        self.host = host
        self.accounts = accounts
        self.run_in_thread = run_in_thread
        self.iterations = iterations
        self.guests = guests
        #: the bare JID tried, once the client has named it
        self.account: str | None = None

    def start(self, initial: bytes | None) -> Deferred:
        if initial is None:
            return succeed(Challenge(b""))
        return self.respond(initial)

    def respond(self, data: bytes) -> Deferred:
        authzid, authcid, password = parse_plain(data)
        jid = _account_jid(authcid, self.host)
        if jid is None:
            return _failed("not-authorized")
        self.account = str(jid)
        _check_authzid(authzid, jid)

        def verify(creds: dict[str, Any] | None) -> Any:
            if creds:
                credential = creds.get("SCRAM-SHA-256") or next(iter(creds.values()))
            elif self.guests is not None and self.guests.is_guest(jid):
                return self.guests.redeem(jid, password)
            else:  # no such account: the same work, then the same answer
                credential = fake_credential(jid.user or "", "sha256", self.iterations)
            return self.run_in_thread(verify_password, password, credential)

        def check(ok: bool) -> Success:
            if not ok:
                raise SaslError("not-authorized", None)
            return Success(jid)

        d = self.accounts.credentials(jid.user, jid.host)
        return d.addCallback(verify).addCallback(check)


class ScramMechanism:
    """
    SASL SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677), and their
    C{-PLUS} variants with TLS channel binding.
    """

    def __init__(
        self, name: str, hash_name: str, host: str, accounts: CredentialSource,
        iterations: int, channel_bindings: dict[str, bytes] | None = None,
        plus_offered: bool = False,
    ) -> None:
        """
        @param channel_bindings: the connection's channel binding data by
            type; used by C{-PLUS} mechanisms only.
        @param plus_offered: whether C{-PLUS} was offered on this stream.
        """
        self.name = name
        #: the stored credential's name: C{-PLUS} uses the same keys
        self.credential_name = name.removesuffix(PLUS)
        self.host = host
        self.accounts = accounts
        bindings = (channel_bindings or {}) if name.endswith(PLUS) else None
        # Unknown users are shown the configured cost, like real ones.
        self._exchange = ScramServerExchange(
            hash_name, fake_iterations=iterations, channel_bindings=bindings,
            plus_offered=plus_offered)
        self._jid: JID | None = None
        self._step = 0
        #: the bare JID tried, once the client has named it
        self.account: str | None = None

    def start(self, initial: bytes | None) -> Deferred:
        if initial is None:
            return succeed(Challenge(b""))
        return self.respond(initial)

    def respond(self, data: bytes) -> Deferred:
        self._step += 1
        if self._step == 1:
            username = self._exchange.client_first(data)
            self._jid = _account_jid(username, self.host)
            self.account = None if self._jid is None else str(self._jid)
            if self._jid is None:
                return succeed(Challenge(self._exchange.server_first(None)))

            def challenge(creds: dict[str, Any] | None) -> Challenge:
                credential = (creds or {}).get(self.credential_name)
                return Challenge(self._exchange.server_first(credential))

            d = self.accounts.credentials(self._jid.user, self._jid.host)
            return d.addCallback(challenge)
        if self._step == 2:
            final = self._exchange.client_final(data)
            if self._jid is None:
                raise SaslError("not-authorized", None)
            _check_authzid(self._exchange.authzid, self._jid)
            return succeed(Success(self._jid, final))
        raise SaslError("malformed-request", "the exchange is over")


def _failed(condition: str) -> Deferred:
    d: Deferred = Deferred()
    d.errback(SaslError(condition, None))
    return d


#: suffix of the SCRAM mechanisms with channel binding (RFC 5802 section 4)
PLUS = "-PLUS"

SCRAM_HASHES = {
    "SCRAM-SHA-256-PLUS": "sha256", "SCRAM-SHA-256": "sha256",
    "SCRAM-SHA-1-PLUS": "sha1", "SCRAM-SHA-1": "sha1",
}


def create_mechanism(
    name: str, host: str, accounts: CredentialSource, run_in_thread: RunInThread,
    iterations: int, guests: GuestLogins | None = None,
    channel_bindings: dict[str, bytes] | None = None, plus_offered: bool = False,
) -> Any:
    """
    A fresh mechanism object for one exchange (guest tokens: PLAIN only;
    channel bindings: C{-PLUS} only; C{plus_offered}: SCRAM's downgrade
    check).
    """
    if name == "PLAIN":
        return PlainMechanism(host, accounts, run_in_thread, iterations, guests)
    return ScramMechanism(name, SCRAM_HASHES[name], host, accounts, iterations,
                          channel_bindings, plus_offered)
