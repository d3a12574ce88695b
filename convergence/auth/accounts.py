# -*- test-case-name: tests.test_accounts -*-
"""
Account administration: the one place that turns passwords into stored
SCRAM credentials.  Passwords are never stored.
"""

from __future__ import annotations

from convergence.auth.saslprep import SASLprepError, saslprep
from convergence.auth.scram import MECHANISMS, ScramCredential, derive_credential
from convergence.store.interfaces import IAccountStore
from convergence.xmpp.jid import JID

__all__ = ["AccountError", "Accounts"]


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

    def add(self, jid: str, password: str) -> None:
        """
        Create an account.

        @raise convergence.store.errors.AccountExists: it already exists.
        """
        localpart, domain = self.parse(jid)
        self.store.create(localpart, domain, self._derive(password))

    def set_password(self, jid: str, password: str) -> None:
        """
        Replace an account's credentials with ones for a new password.

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        """
        localpart, domain = self.parse(jid)
        self.store.set_credentials(localpart, domain, self._derive(password))

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
