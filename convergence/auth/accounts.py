# -*- test-case-name: tests.test_accounts -*-
"""
Account administration: the one place that turns passwords into stored
credentials, SCRAM for XMPP and HTTP Digest HA1 for SIP (realm = the
account's domain).  Passwords are never stored.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred

from convergence.auth.digest import ALGORITHMS as DIGEST_ALGORITHMS
from convergence.auth.digest import digest_ha1
from convergence.auth.saslprep import SASLprepError, saslprep
from convergence.auth.scram import MECHANISMS, ScramCredential, derive_credential
from convergence.store.interfaces import IAccountStore
from convergence.xmpp.jid import JID

__all__ = ["AccountError", "Accounts", "AccountLookup"]


class AccountError(ValueError):
    """An account JID or password is not acceptable."""


class Accounts:
    """Add, change, remove and list accounts of an L{IAccountStore}."""

    def __init__(self, store: IAccountStore, iterations: int = 4096) -> None:
        """
        @param iterations: PBKDF2 iteration count for new credentials
            (C{[xmpp] scram_iterations}).
        """
        self.store = store
        self.iterations = iterations

    @staticmethod
    def parse(jid: str) -> tuple[str, str]:
        """
        Prepare an account JID; return C{(localpart, domain)}.

        @raise convergence.xmpp.jid.InvalidJID: the JID is invalid.
        @raise AccountError: it has no localpart, or has a resource.
        """
        parsed = JID.parse(jid)
        if not parsed.user:
            raise AccountError(f"{jid!r}: an account JID needs a localpart")
        if parsed.resource is not None:
            raise AccountError(f"{jid!r}: an account JID has no resource")
        return parsed.user, parsed.host

    def _derive(self, password: str) -> dict[str, ScramCredential]:
        if not password:
            raise AccountError("the password must not be empty")
        try:
            prepared = saslprep(password)
        except SASLprepError as e:
            raise AccountError(f"unacceptable password: {e}") from None
        if not prepared:
            raise AccountError("the password is empty after SASLprep")
        return {
            mechanism: derive_credential(password, hash_name, self.iterations)
            for mechanism, hash_name in MECHANISMS.items()
        }

    @staticmethod
    def _digests(localpart: str, domain: str, password: str) -> dict[str, str]:
        """HA1 per digest algorithm; username = localpart, realm = domain."""
        return {
            algorithm: digest_ha1(algorithm, localpart, domain, password)
            for algorithm in DIGEST_ALGORITHMS
        }

    def credentials_for(
        self, localpart: str, domain: str, password: str
    ) -> tuple[dict[str, ScramCredential], dict[str, str]]:
        """
        The SCRAM credentials and digest HA1s of a password, for
        L{IAccountStore.create} or L{IAccountStore.set_credentials}: the
        slow part (PBKDF2), which the server runs off the database thread.

        @raise AccountError: the password is empty or fails SASLprep.
        """
        return self._derive(password), self._digests(localpart, domain, password)

    def add(self, jid: str, password: str) -> None:
        """
        Create an account with its SCRAM and digest credentials.

        @raise convergence.store.errors.AccountExists: it already exists.
        """
        localpart, domain = self.parse(jid)
        self.store.create(
            localpart,
            domain,
            self._derive(password),
            self._digests(localpart, domain, password),
        )

    def set_password(self, jid: str, password: str) -> None:
        """
        Replace an account's SCRAM and digest credentials with ones for a new
        password (this also gives digest credentials to accounts created
        before they existed).

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        """
        localpart, domain = self.parse(jid)
        self.store.set_credentials(
            localpart,
            domain,
            self._derive(password),
            self._digests(localpart, domain, password),
        )

    def remove(self, jid: str) -> None:
        """
        Delete an account.

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        """
        localpart, domain = self.parse(jid)
        self.store.delete(localpart, domain)

    def credentials(
        self, localpart: str, domain: str
    ) -> dict[str, ScramCredential] | None:
        """The stored credentials by mechanism name, or C{None}."""
        return self.store.get_credentials(localpart, domain)

    def digest(self, localpart: str, domain: str, algorithm: str) -> str | None:
        """The stored HA1 (hex) for C{"MD5"} or C{"SHA-256"}, or C{None}."""
        return self.store.get_digest(localpart, domain, algorithm)

    def ha1_lookup(self, domain: str) -> Callable[[str, str], str | None]:
        """
        The C{lookup_ha1(username, algorithm)} for a
        L{convergence.auth.digest.DigestChallenger} of realm C{domain}.  The
        username must be the stored (prepared) localpart exactly, as the
        HA1 was computed with it.
        """

        def lookup(username: str, algorithm: str) -> str | None:
            return self.store.get_digest(username, domain, algorithm)

        return lookup

    def list(self, domain: str | None = None) -> list[str]:
        """
        Sorted bare JIDs of all accounts, or of one domain's.

        @raise convergence.xmpp.jid.InvalidJID: C{domain} is not a valid domain.
        """
        if domain is not None:
            parsed = JID.parse(domain)
            if parsed.user is not None or parsed.resource is not None:
                raise AccountError(f"{domain!r} is not a domain")
            domain = parsed.host
        return self.store.list_accounts(domain)


class AccountLookup:
    """
    What the running server asks of the accounts, answered through C{run}
    (the database thread, L{convergence.store.dbthread}) as Deferreds.
    """

    def __init__(self, accounts: Accounts, run: Callable[..., Deferred]) -> None:
        self.accounts = accounts
        self.run = run

    def credentials(self, localpart: str, domain: str) -> Deferred:
        """Deferred: the stored SCRAM credentials by mechanism, or C{None}."""
        return self.run(self.accounts.credentials, localpart, domain)

    def exists(self, localpart: str, domain: str) -> Deferred:
        """Deferred: whether C{localpart@domain} is an account."""
        return self.run(self.accounts.store.exists, localpart, domain)

    def digests(self, domain: str, wanted: list[tuple[str, str]]) -> Deferred:
        """
        Deferred: C{{(username, algorithm): HA1 or None}} for the
        C{(username, algorithm)} pairs of realm C{domain}, in one trip.
        """
        lookup = self.accounts.ha1_lookup(domain)

        def fetch() -> dict[tuple[str, str], str | None]:
            return {key: lookup(*key) for key in wanted}

        return self.run(fetch)
