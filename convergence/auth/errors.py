# -*- test-case-name: tests.test_plain -*-
"""The SASL failure shared by every mechanism, named by its RFC 6120 condition."""

from __future__ import annotations

__all__ = ["CONDITIONS", "SaslError"]

#: The SASL failure conditions of RFC 6120 section 6.5.
CONDITIONS = frozenset(
    {
        "aborted",
        "account-disabled",
        "credentials-expired",
        "encryption-required",
        "incorrect-encoding",
        "invalid-authzid",
        "invalid-mechanism",
        "malformed-request",
        "mechanism-too-weak",
        "not-authorized",
        "temporary-auth-failure",
    }
)


class SaslError(Exception):
    """
    An authentication exchange failed.

    @ivar condition: the RFC 6120 SASL failure condition to send.
    @ivar text: a human-readable explanation (for logs; never reveals whether
        the account exists).
    """

    def __init__(self, condition: str, text: str | None = None) -> None:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown SASL failure condition {condition!r}")
        super().__init__(condition, text)
        self.condition = condition
        self.text = text or ""

    def __str__(self) -> str:
        return f"{self.condition}: {self.text}" if self.text else self.condition
