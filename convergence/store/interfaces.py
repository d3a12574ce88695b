# -*- test-case-name: tests.test_store_sqlite -*-
"""Persistence interfaces; each backend implements them (see C{sqlite})."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from zope.interface import Interface

if TYPE_CHECKING:
    from convergence.auth.scram import ScramCredential

__all__ = ["IAccountStore"]


class IAccountStore(Interface):
    """
    Accounts and their SCRAM credentials, keyed by prepared localpart and
    domain.  Credentials are keyed by SASL mechanism name (C{"SCRAM-SHA-1"},
    C{"SCRAM-SHA-256"}); a store never holds a password.
    """

    def create(
        localpart: str, domain: str, credentials: Mapping[str, ScramCredential]
    ) -> None:
        """
        Register a new account.

        @raise convergence.store.errors.AccountExists: it is already there.
        """

    def set_credentials(
        localpart: str, domain: str, credentials: Mapping[str, ScramCredential]
    ) -> None:
        """
        Replace all credentials of an account.

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        """

    def delete(localpart: str, domain: str) -> None:
        """
        Remove an account and everything stored for it.

        @raise convergence.store.errors.NoSuchAccount: there is no such account.
        """

    def get_credentials(
        localpart: str, domain: str
    ) -> dict[str, ScramCredential] | None:
        """Return the credentials by mechanism name, or C{None} if no account."""

    def exists(localpart: str, domain: str) -> bool:
        """Whether the account exists."""

    def list_accounts(domain: str | None = None) -> list[str]:
        """Return the sorted bare JIDs (C{user@domain}), optionally of one domain."""

    def close() -> None:
        """Release the backend's resources; the store is unusable afterwards."""
