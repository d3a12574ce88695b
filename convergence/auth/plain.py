# -*- test-case-name: tests.test_plain -*-
"""The SASL PLAIN message (RFC 4616): C{[authzid] NUL authcid NUL passwd}."""

from __future__ import annotations

from convergence.auth.errors import SaslError
from convergence.auth.saslprep import SASLprepError, saslprep

__all__ = ["parse_plain"]


def parse_plain(message: bytes) -> tuple[str, str, str]:
    """
    Split a PLAIN initial response into C{(authzid, authcid, password)}.

    The authcid is SASLprepped (as a query); the password is returned as sent
    (L{convergence.auth.scram.verify_password} prepares it); the authzid is
    C{""} when absent.

    @raise SaslError: C{incorrect-encoding} for non-UTF-8 data,
        C{malformed-request} for a wrong number of fields, an empty authcid or
        password, or a NUL inside a field, C{not-authorized} for an authcid
        that SASLprep refuses.
    """
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("incorrect-encoding", "PLAIN message is not UTF-8") from None
    fields = text.split("\x00")
    if len(fields) != 3:
        raise SaslError("malformed-request", "PLAIN needs exactly three fields")
    authzid, authcid, password = fields
    if not authcid or not password:
        raise SaslError("malformed-request", "empty authcid or password")
    try:
        prepared = saslprep(authcid, allow_unassigned=True)
    except SASLprepError as e:
        raise SaslError("not-authorized", f"authcid: {e}") from None
    if not prepared:
        raise SaslError("not-authorized", "empty authcid")
    return authzid, prepared, password
