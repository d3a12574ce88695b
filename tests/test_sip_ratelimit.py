"""Tests for convergence.sip.ratelimit on a task.Clock."""

from __future__ import annotations

from types import SimpleNamespace

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from convergence.config import SipConfig
from convergence.sip.ratelimit import ALLOW, DROP, REFUSE, RateLimiter


class RateLimiterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.limiter = RateLimiter(self.clock, rate=10, burst=5, exempt=["10.9.0.0/16"])

    def admit(self, host: str, count: int) -> list[int]:
        return [self.limiter.admit(host) for _ in range(count)]

    def test_burst_then_refuse_then_drop(self) -> None:
        """burst requests pass, as many more are refused, the rest dropped."""
        self.assertEqual(self.admit("192.0.2.1", 12),
                         [ALLOW] * 5 + [REFUSE] * 5 + [DROP] * 2)
        self.assertEqual((self.limiter.refused, self.limiter.dropped), (5, 2))

    def test_refill(self) -> None:
        """Tokens come back at rate per second, up to the burst."""
        self.admit("192.0.2.1", 5)
        self.clock.advance(0.3)
        self.assertEqual(self.admit("192.0.2.1", 4), [ALLOW] * 3 + [REFUSE])
        self.clock.advance(100)
        self.assertEqual(self.admit("192.0.2.1", 6), [ALLOW] * 5 + [REFUSE])

    def test_sources_are_separate(self) -> None:
        """One source's flood does not limit another."""
        self.admit("192.0.2.1", 20)
        self.assertEqual(self.admit("192.0.2.2", 5), [ALLOW] * 5)

    def test_exempt(self) -> None:
        """Exempt networks, and IPv4-mapped addresses in them, are never limited."""
        self.assertEqual(set(self.admit("10.9.3.4", 50)), {ALLOW})
        self.assertEqual(set(self.admit("::ffff:10.9.3.4", 50)), {ALLOW})
        self.assertEqual(len(self.limiter), 0)

    def test_retry_after(self) -> None:
        """Retry-After: whole seconds until a token is back, at least 1."""
        self.assertEqual(self.limiter.retry_after("192.0.2.9"), 1)
        slow = RateLimiter(self.clock, rate=0.25, burst=1, exempt=[])
        slow.admit("192.0.2.1")
        self.assertEqual(slow.retry_after("192.0.2.1"), 4)

    def test_memory_bounded(self) -> None:
        """At most max_sources are tracked; idle sources are forgotten."""
        small = RateLimiter(self.clock, rate=10, burst=5, exempt=[], max_sources=16)
        for n in range(100):
            small.admit(f"198.51.100.{n}")
        self.assertEqual(len(small), 16)
        self.clock.advance(1)  # every bucket refilled: all idle
        for n in range(4):
            small.admit(f"203.0.113.{n}")
        # each new source forgets up to 8 idle ones: the old 16 are gone
        self.assertEqual(sorted(small._sources), [f"203.0.113.{n}" for n in range(4)])

    def test_idle_source_forgotten(self) -> None:
        """A source idle long enough to be full again is dropped from memory."""
        self.limiter.admit("192.0.2.1")
        self.clock.advance(1)
        self.limiter.admit("192.0.2.2")
        self.assertEqual(list(self.limiter._sources), ["192.0.2.2"])

    def test_from_config(self) -> None:
        """Built from [sip]; rate 0 turns it off; defaults exempt loopback."""
        limiter = RateLimiter.from_config(self.clock, SipConfig())
        self.assertEqual((limiter.rate, limiter.burst), (200.0, 400.0))
        self.assertTrue(limiter.is_exempt("127.0.0.1"))
        self.assertTrue(limiter.is_exempt("::1"))
        self.assertFalse(limiter.is_exempt("192.0.2.1"))
        self.assertIsNone(RateLimiter.from_config(
            self.clock, SimpleNamespace(max_requests_per_second_per_source=0)))

    def test_bad_parameters(self) -> None:
        self.assertRaises(ValueError, RateLimiter, self.clock, 0, 5)
        self.assertRaises(ValueError, RateLimiter, self.clock, 1, 0)
