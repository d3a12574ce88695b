# -*- test-case-name: tests.test_alert -*-
"""
Bearer tokens of the alert endpoint and a token bucket per token.

A presented token is compared with every configured one, each through
C{hmac.compare_digest} of SHA-256 digests (equal lengths whatever was
sent), and the loop never stops early: how long the check takes tells
nothing about which token, or how much of one, matched.  Only a token's
name ever reaches the log.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable

__all__ = ["Bucket", "Tokens"]


def _digest(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hashlib.sha256(raw).digest()


class Bucket:
    """C{rate} alerts per second on average, C{burst} at once."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> float:
        """Take one alert's worth: 0 when it may pass, else the seconds
        until it could (nothing is taken then)."""
        if not self.rate:
            return 0.0
        self._tokens = min(float(self.burst),
                           self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class Tokens:
    """The configured C{(name, secret)} tokens and their rate limits."""

    def __init__(self, tokens: Iterable[tuple[str, str]], rate: float, burst: int) -> None:
        self._digests = [(name, _digest(secret)) for name, secret in tokens]
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, Bucket] = {}

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def names(self) -> list[str]:
        return [name for name, _ in self._digests]

    def match(self, presented: bytes) -> str | None:
        """The name of the token C{presented} is, or C{None}."""
        given = _digest(presented)
        found = None
        for name, digest in self._digests:
            if hmac.compare_digest(given, digest) and found is None:
                found = name
        return found

    def retry_after(self, name: str, now: float) -> int:
        """0 when token C{name} may post now (one alert taken), else the
        whole seconds to wait (a Retry-After value)."""
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = Bucket(self.rate, self.burst, now)
        wait = bucket.take(now)
        return 0 if wait <= 0 else max(1, math.ceil(wait))
