# -*- test-case-name: tests.test_metrics -*-
"""
The SIP transaction layer's operational counters: plain integers bumped by
the transactions, read by the metrics collector (L{convergence.metrics})
only when it is scraped.
"""

from __future__ import annotations

#: Methods counted by name; any other counts as "other", so a peer cannot
#: make up label values.
METHODS = frozenset(("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE",
                     "INFO", "UPDATE", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "PUBLISH"))

#: The transaction timers counted when they fire: the retransmission
#: timers (A, E, G) and the timeouts (B, F, H).
COUNTED_TIMERS = ("A", "B", "E", "F", "G", "H")


class TransactionStats:
    """Counters of one L{TransactionLayer}."""

    __slots__ = ("server", "client", "timers", "retransmissions_received")

    def __init__(self) -> None:
        #: ended transactions by (method, final status // 100; 0: none)
        self.server: dict[tuple[str, int], int] = {}
        self.client: dict[tuple[str, int], int] = {}
        #: firings by RFC 3261 timer name
        self.timers: dict[str, int] = dict.fromkeys(COUNTED_TIMERS, 0)
        #: requests that matched a live server transaction (not ACKs):
        #: retransmissions absorbed by the transaction layer
        self.retransmissions_received = 0

    def server_ended(self, method: str, final_status: int) -> None:
        key = (method if method in METHODS else "other", final_status // 100)
        table = self.server
        table[key] = table.get(key, 0) + 1

    def client_ended(self, method: str, final_status: int) -> None:
        key = (method if method in METHODS else "other", final_status // 100)
        table = self.client
        table[key] = table.get(key, 0) + 1


#: Where transactions built outside a layer (unit tests) count.
UNCOUNTED = TransactionStats()
