# -*- test-case-name: tests.test_muc_room -*-
"""
Flood control: a token bucket per occupant on what it sends into its room
(presence updates, groupchat and private messages; leaving is always
allowed).  Over the limit a stanza is refused with C{policy-violation}
(type C{wait}), as Prosody's mod_muc_limits does, and goes nowhere.
"""

from __future__ import annotations

__all__ = ["Bucket"]


class Bucket:
    """C{rate} stanzas per second on average, C{burst} at once (rate 0: no limit)."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Whether one more stanza may pass now."""
        if not self.rate:
            return True
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
