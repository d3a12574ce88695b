# -*- test-case-name: tests.test_sip_transaction -*-
"""
The transaction layer: matches messages to transactions (RFC 3261 17.1.3,
17.2.3), creates server transactions for new requests, and hands the rest
to the transaction user (the UA core).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from convergence.sip.stats import TransactionStats
from convergence.sip.timers import Timers, Waits
from convergence.sip.transaction_client import (
    ClientTransaction,
    ClientTransactionUser,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from convergence.sip.transaction_server import (
    ACCEPTED,
    COMPLETED,
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)

MAGIC_COOKIE = "z9hG4bK"


class TransactionUser(Protocol):
    """The layer above: the UA core."""

    def new_request(self, request: Any, tx: ServerTransaction, source: Any) -> None:
        ...

    def ack_received(self, request: Any, source: Any) -> None:
        ...

    def stray_response(self, response: Any, source: Any) -> None:
        ...

    def server_timed_out(self, tx: ServerTransaction) -> None:
        ...


def server_key(request: Any) -> tuple:
    """
    The server transaction a request belongs to (RFC 3261 17.2.3).

    An ACK belongs to the INVITE transaction; CANCEL has its own.  Requests
    from RFC 2543 peers (no magic cookie) are matched on the dialog and
    CSeq fields instead.
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by, method)
    return (request.call_id, request.from_.tag, request.cseq[0], method, via.sent_by)


class ParkedTransaction:
    """What L{TransactionLayer.invite_transaction_for} returns for a
    transaction that only waits (its record, L{TransactionLayer._park}):
    a final response was sent, nothing more can happen to it."""

    request = None
    application_request = None
    final_sent = True

    def __init__(self, key: tuple, record: tuple) -> None:
        self.key = key
        self.state, self.method, self.final_status, self.to_tag, _ = record


def client_key(message: Any) -> tuple:
    """The client transaction of a request we sent or of a response to it."""
    return (message.top_via.branch, message.cseq[1])


class TransactionLayer:
    """Every live transaction of one SIP stack."""

    log = Logger()

    def __init__(self, clock: IReactorTime, user: TransactionUser,
                 timers: Timers = Timers()) -> None:
        self.clock = clock
        self.user = user
        self.timers = timers
        #: live server transactions, and the records of those only waiting
        #: (a tuple: see L{_park})
        self.server: dict[tuple, ServerTransaction | tuple] = {}
        self.client: dict[tuple, ClientTransaction] = {}
        self.waits = Waits(clock)
        self.parked = Waits(clock, self._parked_ended)
        #: counters for the metrics endpoint
        self.stats = TransactionStats()
        # bound once: every transaction holds the same callables
        self._on_park = self._park
        self._on_server_terminated = self._server_terminated
        self._on_server_timeout = user.server_timed_out
        self._on_client_terminated = self._client_terminated

    # Incoming
    def receive_request(self, request: Any, source: Any,
                        send: Callable[[Any], None]) -> None:
        """
        A request arrived from C{source}; C{send} sends a response back.
        """
        key = server_key(request)
        tx = self.server.get(key)
        if tx is not None:
            if request.method != "ACK":
                self.stats.retransmissions_received += 1
            if type(tx) is tuple:
                self._parked_request(key, tx, request, source, send)
                return
            ack = tx.receive_request(request)
            if ack is not None:
                self.user.ack_received(ack, source)
            return
        if request.method == "ACK":
            # An ACK for a 2xx is its own transaction: straight to the core.
            self.user.ack_received(request, source)
            return
        cls = InviteServerTransaction if request.method == "INVITE" \
            else NonInviteServerTransaction
        tx = cls(key, request, send, source.reliable, self.clock, self.timers,
                 self._on_server_terminated, self._on_server_timeout, self.waits,
                 self.stats, self._on_park)
        self.server[key] = tx
        self.user.new_request(request, tx, source)

    def receive_response(self, response: Any, source: Any) -> None:
        """A response arrived: to its client transaction, else the core."""
        tx = self.client.get(client_key(response))
        if tx is not None:
            tx.receive_response(response)
        else:
            self.user.stray_response(response, source)

    def invite_transaction_for(self, cancel: Any) -> ServerTransaction | ParkedTransaction | None:
        """The INVITE server transaction a CANCEL targets (RFC 3261 9.2)."""
        key = server_key(cancel)
        key = key[:-1] + ("INVITE",)
        tx = self.server.get(key)
        if type(tx) is tuple:
            return ParkedTransaction(key, tx)
        return tx  # type: ignore[return-value]

    # Final waits (Timers I, J and L)
    def _park(self, tx: ServerTransaction, delay: float, record: tuple) -> None:
        """C{tx} only waits C{delay} seconds from now on: the table keeps
        C{record} (state, method, final status, To tag, the response as
        sent), strings, numbers and bytes the garbage collector does not
        walk, and the transaction object is let go."""
        key = tx.key
        if self.server.get(key) is not tx:
            tx._waits.start(delay, tx)  # not ours to park (already replaced)
            return
        self.server[key] = record
        self.parked.start(delay, (key, record))

    def _parked_request(self, key: tuple, record: tuple, request: Any, source: Any,
                        send: Callable[[Any], Any]) -> None:
        """A request matched a waiting transaction's record."""
        state = record[0]
        if request.method == "ACK":
            if state == ACCEPTED:  # RFC 6026: an ACK to the 2xx, for the TU
                self.user.ack_received(request, source)
            return  # else absorbed (Confirmed)
        if state == COMPLETED and record[4] is not None:
            try:  # RFC 3261 17.2.2: the retransmitted request gets the response again
                send(record[4])
            except Exception:
                self.log.failure("resending a response failed; ending the transaction")
                self._parked_ended((key, record))
        # an INVITE retransmission in Accepted or Confirmed is absorbed

    def _parked_ended(self, item: tuple) -> None:
        key, record = item
        if self.server.get(key) is record:
            del self.server[key]
            self.stats.server_ended(record[1], record[2])

    # Outgoing
    def send_request(self, request: Any, send: Callable[[Any], None], reliable: bool,
                     user: ClientTransactionUser,
                     build_ack: Callable[[Any, Any], Any] | None = None) -> ClientTransaction:
        """Start a client transaction for C{request} (its Via is set)."""
        key = client_key(request)
        args = (key, request, send, reliable, self.clock, self.timers, user,
                self._on_client_terminated)
        tx: ClientTransaction
        if request.method == "INVITE":
            assert build_ack is not None
            tx = InviteClientTransaction(*args, build_ack=build_ack, stats=self.stats)
        else:
            tx = NonInviteClientTransaction(*args, stats=self.stats)
        self.client[key] = tx
        tx.start()  # type: ignore[attr-defined]
        return tx

    def shutdown(self) -> None:
        """Terminate every transaction (the stack is stopping)."""
        for tx in list(self.server.values()) + list(self.client.values()):
            if type(tx) is not tuple:
                tx.terminate()
        self.waits.stop()
        self.parked.stop()

    def _server_terminated(self, tx: ServerTransaction) -> None:
        entry = self.server.get(tx.key)
        if entry is tx:
            del self.server[tx.key]
        elif type(entry) is tuple:
            return  # parked: counted when its wait ends
        self.stats.server_ended(tx.method, tx.final_status)

    def _client_terminated(self, tx: ClientTransaction) -> None:
        if self.client.get(tx.key) is tx:
            del self.client[tx.key]
        self.stats.client_ended(tx.method, tx.final_status)
