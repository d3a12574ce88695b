# -*- test-case-name: tests.test_sip_ratelimit -*-
"""
SIP requests per second per source address (a token bucket per IP).

Each source address has a bucket of C{burst} tokens refilled at C{rate}
per second.  A request (not an ACK, not a response: those belong to
transactions already admitted) takes a token and is served.  With the
bucket empty it is answered C{503} with C{Retry-After}, but at most
C{rate} such answers per second (a second bucket of the same size), so a
flood, spoofed or not, never makes the server send more to an address
than it would serve; beyond that, requests are dropped unanswered.

Time comes from the reactor's clock.  Memory is bounded: a source idle
long enough for its buckets to refill is forgotten (the oldest first, a
little at every new source), and at most C{max_sources} are tracked (the
longest idle one goes first when full).  Sources in the exempt networks
(loopback by default) are never limited.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from typing import Any, Iterable

from twisted.internet.interfaces import IReactorTime

__all__ = ["ALLOW", "DROP", "REFUSE", "RateLimiter"]

#: The request is served.
ALLOW = 0
#: The request is answered 503 with Retry-After.
REFUSE = 1
#: The request is dropped without an answer.
DROP = 2

#: Idle sources forgotten per new source (amortised expiry)
_EXPIRE_STEP = 8


class _Bucket:
    """One source: served tokens, refusal tokens, last update."""

    __slots__ = ("tokens", "refusals", "last")

    def __init__(self, tokens: float, last: float) -> None:
        self.tokens = tokens
        self.refusals = tokens
        self.last = last


class RateLimiter:
    """Token buckets keyed by source IP address."""

    def __init__(self, clock: IReactorTime, rate: float, burst: int,
                 exempt: Iterable[str] = ("127.0.0.0/8", "::1/128"),
                 max_sources: int = 65536) -> None:
        """
        @param rate: requests per second a source may send (positive).
        @param burst: requests a source may send at once (at least 1).
        @param exempt: networks never limited (CIDR strings).
        @param max_sources: at most this many sources are tracked.
        """
        if rate <= 0 or burst < 1 or max_sources < 1:
            raise ValueError("rate must be positive, burst and max_sources at least 1")
        self.clock = clock
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_sources = max_sources
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        #: seconds after which an idle source has full buckets again
        self.idle_after = self.burst / self.rate
        self._sources: dict[str, _Bucket] = {}  # least recently seen first
        self.is_exempt = functools.lru_cache(maxsize=4096)(self._exempt)
        #: requests refused (503) and dropped so far
        self.refused = 0
        self.dropped = 0

    @classmethod
    def from_config(cls, clock: IReactorTime, config: Any) -> RateLimiter | None:
        """The limiter a L{convergence.config.SipConfig} asks for (None: off)."""
        rate = config.max_requests_per_second_per_source
        if not rate:
            return None
        return cls(clock, rate, config.request_burst_per_source,
                   config.rate_limit_exempt, config.rate_limit_max_sources)

    def __len__(self) -> int:
        return len(self._sources)

    def _exempt(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return any(address in n or (mapped is not None and mapped in n)
                   for n in self.networks)

    def admit(self, host: str) -> int:
        """L{ALLOW}, L{REFUSE} or L{DROP} one request from C{host}."""
        if self.is_exempt(host):
            return ALLOW
        now = self.clock.seconds()
        sources = self._sources
        bucket = sources.pop(host, None)
        if bucket is None:
            self._make_room(now)
            bucket = _Bucket(self.burst, now)
        else:
            refill = (now - bucket.last) * self.rate
            if refill > 0:
                bucket.tokens = min(self.burst, bucket.tokens + refill)
                bucket.refusals = min(self.burst, bucket.refusals + refill)
            bucket.last = now
        sources[host] = bucket  # now the most recently seen
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return ALLOW
        if bucket.refusals >= 1:
            bucket.refusals -= 1
            self.refused += 1
            return REFUSE
        self.dropped += 1
        return DROP

    def retry_after(self, host: str) -> int:
        """Whole seconds until C{host} may send a request again (at least 1)."""
        bucket = self._sources.get(host)
        if bucket is None:
            return 1
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _make_room(self, now: float) -> None:
        """Forget a few idle sources; the longest idle one if still full."""
        sources = self._sources
        for _ in range(_EXPIRE_STEP):
            if not sources:
                return
            host = next(iter(sources))
            if now - sources[host].last < self.idle_after:
                break
            del sources[host]
        if len(sources) >= self.max_sources:
            del sources[next(iter(sources))]
