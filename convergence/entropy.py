# -*- test-case-name: tests.test_sip_hotpath -*-
"""
Random bytes for tags, branches, sequence numbers and session ids, read
from the OS a page at a time.

Every call takes a To tag and a CSeq start, and every request we send a
branch: three C{getrandom} system calls a call when each is read alone.
The bytes are the OS's (C{os.urandom}, as L{secrets} reads them), only
read in bulk; a forked child starts with a pool of its own.
"""

from __future__ import annotations

import base64
import os

__all__ = ["random_below", "random_bytes", "random_hex", "random_token"]

#: Bytes read from the OS at once.
POOL_SIZE = 4096

_pool = bytearray()


def _forget() -> None:
    """In a forked child: never reuse the parent's bytes."""
    global _pool
    _pool = bytearray()


os.register_at_fork(after_in_child=_forget)


def random_bytes(n: int) -> bytes:
    """C{n} random bytes (at most L{POOL_SIZE})."""
    global _pool
    if len(_pool) < n:
        _pool = bytearray(os.urandom(POOL_SIZE))
    chunk = bytes(_pool[-n:])
    del _pool[-n:]
    return chunk


def random_hex(n: int) -> str:
    """C{2n} hex digits from C{n} random bytes (as C{secrets.token_hex})."""
    return random_bytes(n).hex()


def random_token(n: int) -> str:
    """A URL-safe text of C{n} random bytes (as C{secrets.token_urlsafe})."""
    return base64.urlsafe_b64encode(random_bytes(n)).rstrip(b"=").decode("ascii")


def random_below(limit: int) -> int:
    """A uniform integer in C{[0, limit)} for C{0 < limit <= 2**32}."""
    while True:
        value = int.from_bytes(random_bytes(4), "big")
        # reject the top of the range that would bias the remainder
        if value < 2 ** 32 - 2 ** 32 % limit:
            return value % limit
