# -*- test-case-name: tests.test_store_sqlite -*-
"""Exceptions raised by every account store backend."""

from __future__ import annotations

__all__ = ["AccountExists", "NoSuchAccount", "StoreError", "UnknownArchiveId"]


class StoreError(Exception):
    """A persistence operation failed."""


class AccountExists(StoreError):
    """An account with this localpart and domain is already registered."""


class NoSuchAccount(StoreError):
    """No account has this localpart and domain."""


class UnknownArchiveId(StoreError):
    """An archive query names an id that is not in the archive."""
