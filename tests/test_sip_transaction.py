"""
SIP transaction state machines on a task.Clock: every RFC 3261 17 timer
path (A, B, D, E, F, G, H, I, J, K and RFC 6026's L and M).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from convergence.sip.timers import Timers, Waits
from convergence.sip.transaction_layer import TransactionLayer


@dataclass
class Via:
    branch: str = "z9hG4bKabc"
    sent_by: tuple = ("127.0.0.1", 5060)


@dataclass
class From:
    tag: str = "ft"


@dataclass
class Req:
    method: str
    top_via: Via = field(default_factory=Via)
    call_id: str = "c1"
    from_: From = field(default_factory=From)
    cseq_num: int = 1

    @property
    def cseq(self):
        return (self.cseq_num, "INVITE" if self.method in ("ACK",) else self.method)


@dataclass
class Resp:
    status: int
    method: str = "INVITE"
    top_via: Via = field(default_factory=Via)

    @property
    def cseq(self):
        return (1, self.method)


@dataclass
class Source:
    reliable: bool = False


class Core:
    """A recording transaction user."""

    def __init__(self) -> None:
        self.requests: list = []
        self.acks: list = []
        self.stray: list = []
        self.timeouts: list = []
        self.responses: list = []
        self.client_timeouts: list = []
        self.transport_failures: list = []

    def new_request(self, request, tx, source):
        self.requests.append((request, tx))

    def ack_received(self, request, source):
        self.acks.append(request)

    def stray_response(self, response, source):
        self.stray.append(response)

    def server_timed_out(self, tx):
        self.timeouts.append(tx)

    def response_received(self, tx, response):
        self.responses.append(response.status)

    def timed_out(self, tx):
        self.client_timeouts.append(tx)

    def transport_failed(self, tx):
        self.transport_failures.append(tx)


class Fixture(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.core = Core()
        self.layer = TransactionLayer(self.clock, self.core, Timers())
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append((self.clock.seconds(), message))

    def sent_times(self) -> list[float]:
        return [round(t, 3) for t, _ in self.sent]

    def server(self, method: str, reliable: bool = False):
        self.layer.receive_request(Req(method), Source(reliable), self.send)
        return self.core.requests[-1][1]

    def assertWaiting(self, tx: Any, state: str) -> None:
        """C{tx} only waits: the layer holds a plain record of it (no
        object the garbage collector walks), in C{state}."""
        record = self.layer.server[tx.key]
        self.assertIs(type(record), tuple)
        self.assertEqual(record[:3], (state, tx.method, tx.final_status))

    def assertEnded(self, tx: Any, counted: tuple[str, int]) -> None:
        """The wait of C{tx} ended: it left the layer, counted once."""
        self.assertNotIn(tx.key, self.layer.server)
        self.assertEqual(self.layer.stats.server, {counted: 1})


class InviteServerTests(Fixture):
    def test_retransmission_absorbed_in_proceeding(self) -> None:
        """A retransmitted INVITE gets the last provisional, not the TU."""
        tx = self.server("INVITE")
        tx.send_response(Resp(180))
        self.layer.receive_request(Req("INVITE"), Source(), self.send)
        self.assertEqual(len(self.core.requests), 1)
        self.assertEqual([m.status for _, m in self.sent], [180, 180])

    def test_timer_g_and_h(self) -> None:
        """Non-2xx final: G retransmits at T1, 2T1, 4T1 … capped at T2; H ends it."""
        tx = self.server("INVITE")
        tx.send_response(Resp(486))
        self.clock.pump([0.5] * 80)
        times = self.sent_times()
        self.assertEqual(times[:6], [0.0, 0.5, 1.5, 3.5, 7.5, 11.5])
        self.assertEqual(tx.state, "Terminated")
        self.assertEqual(self.core.timeouts, [tx])
        self.assertNotIn(tx.key, self.layer.server)
        self.assertTrue(all(t <= 32.0 for t in times))

    def test_ack_confirms_then_timer_i(self) -> None:
        """ACK for a non-2xx: Confirmed, absorbed, then Terminated after T4."""
        tx = self.server("INVITE")
        tx.send_response(Resp(404))
        self.layer.receive_request(Req("ACK"), Source(), self.send)
        self.assertEqual(tx.state, "Confirmed")
        self.assertWaiting(tx, "Confirmed")
        self.layer.receive_request(Req("ACK"), Source(), self.send)
        self.layer.receive_request(Req("INVITE"), Source(), self.send)
        self.assertEqual(self.core.acks, [])
        self.clock.advance(4.9)
        self.assertWaiting(tx, "Confirmed")
        self.clock.advance(0.2)
        self.assertEnded(tx, ("INVITE", 4))
        self.assertEqual(len(self.sent), 1)

    def test_reliable_no_timer_g_and_i_zero(self) -> None:
        """On TCP nothing is retransmitted and Confirmed ends at once."""
        tx = self.server("INVITE", reliable=True)
        tx.send_response(Resp(603))
        self.clock.advance(10)
        self.assertEqual(len(self.sent), 1)
        self.layer.receive_request(Req("ACK"), Source(True), self.send)
        self.assertEqual(tx.state, "Terminated")

    def test_accepted_state_and_timer_l(self) -> None:
        """2xx: Accepted (RFC 6026); INVITE retransmits absorbed, ACK to the TU, L ends it."""
        tx = self.server("INVITE")
        tx.send_response(Resp(200))
        self.assertEqual(tx.state, "Accepted")
        self.layer.receive_request(Req("INVITE"), Source(), self.send)
        self.assertEqual(len(self.sent), 1)
        tx.send_response(Resp(200))  # the core's 2xx retransmission
        self.assertEqual(len(self.sent), 2)
        self.layer.receive_request(Req("ACK"), Source(), self.send)
        self.assertEqual(len(self.core.acks), 1)
        self.assertWaiting(tx, "Accepted")
        self.clock.advance(31.9)
        self.assertWaiting(tx, "Accepted")
        self.clock.advance(0.2)
        self.assertEnded(tx, ("INVITE", 2))
        self.layer.receive_request(Req("ACK"), Source(), self.send)  # after L: no transaction
        self.assertEqual(len(self.core.acks), 2)

    def test_ack_without_transaction_goes_to_core(self) -> None:
        """An ACK matching nothing (2xx ACK after L) reaches the core."""
        self.layer.receive_request(Req("ACK"), Source(), self.send)
        self.assertEqual(len(self.core.acks), 1)
        self.assertEqual(self.core.requests, [])


class NonInviteServerTests(Fixture):
    def test_timer_j(self) -> None:
        """Completed absorbs retransmits with the final response until J (64*T1)."""
        tx = self.server("OPTIONS")
        self.assertEqual(tx.state, "Trying")
        self.layer.receive_request(Req("OPTIONS"), Source(), self.send)
        self.assertEqual(self.sent, [])
        tx.send_response(Resp(100, "OPTIONS"))
        self.assertEqual(tx.state, "Proceeding")
        tx.send_response(Resp(200, "OPTIONS"))
        self.layer.receive_request(Req("OPTIONS"), Source(), self.send)
        self.assertEqual([m.status for _, m in self.sent], [100, 200, 200])
        self.assertWaiting(tx, "Completed")
        self.clock.advance(31.9)
        self.assertWaiting(tx, "Completed")
        self.layer.receive_request(Req("OPTIONS"), Source(), self.send)
        self.assertEqual([m.status for _, m in self.sent], [100, 200, 200, 200])
        self.clock.advance(0.2)
        self.assertEnded(tx, ("OPTIONS", 2))
        self.assertEqual(len(self.core.requests), 1)

    def test_completed_keeps_only_the_wire_form(self) -> None:
        """Once Completed, the request and the app's objects are let go; a
        retransmitted request gets the response as it was first sent."""
        wire = ("wire", 200)
        sent: list = []

        def send(message):
            sent.append(message)
            return wire

        self.layer.receive_request(Req("BYE"), Source(), send)
        tx = self.core.requests[-1][1]
        tx.application_request = object()
        tx.send_response(Resp(200, "BYE"))
        self.assertEqual(tx.state, "Completed")
        self.assertIsNone(tx.request)
        self.assertIsNone(tx.application_request)
        self.assertIs(tx.last_response, wire)
        self.assertTrue(tx.final_sent)
        self.layer.receive_request(Req("BYE"), Source(), send)
        self.assertIs(sent[-1], wire)

    def test_waiting_record_is_not_walked_by_the_collector(self) -> None:
        """A transaction in its final wait is a plain record of strings,
        numbers and bytes: after a collection or two (a nested tuple is
        untracked after its contents) the garbage collector stops tracking
        it, and the transaction object itself is freed."""
        import gc

        def send(message):
            return ("200", b"SIP/2.0 200 OK\r\n\r\n", "127.0.0.1", 5060)

        self.layer.receive_request(Req("BYE"), Source(), send)
        tx = self.core.requests.pop()[1]
        tx.send_response(Resp(200, "BYE"))
        key, ident, kind = tx.key, id(tx), type(tx)
        del tx
        gc.collect()
        gc.collect()
        self.assertFalse(any(id(o) == ident and type(o) is kind for o in gc.get_objects()))
        record = self.layer.server[key]
        self.assertFalse(gc.is_tracked(record))
        self.assertFalse(any(gc.is_tracked(item) for queue in
                             self.layer.parked._queues.values() for item in queue))
        self.layer.receive_request(Req("BYE"), Source(), send)
        self.assertEqual(len(self.core.requests), 0)  # absorbed, answered again

    def test_send_failure_ends_the_transaction(self) -> None:
        """A response that cannot be sent terminates the transaction for good."""

        def broken(message):
            raise OSError("no route")

        for method, status in (("INVITE", 200), ("INVITE", 486), ("BYE", 200)):
            self.layer.receive_request(Req(method, top_via=Via(branch="z9hG4bK" + method
                                                               + str(status))),
                                       Source(), broken)
            tx = self.core.requests[-1][1]
            tx.send_response(Resp(status, method))
            self.assertEqual(tx.state, "Terminated")
            self.assertNotIn(tx.key, self.layer.server)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 3)

    def test_accepted_forgets_the_response(self) -> None:
        """INVITE Accepted absorbs retransmissions: nothing of the call is kept."""
        tx = self.server("INVITE")
        tx.send_response(Resp(200))
        self.assertIsNone(tx.request)
        self.assertIsNone(tx.last_response)
        self.assertEqual(tx.final_status, 200)

    def test_reliable_j_is_zero(self) -> None:
        """On TCP the transaction ends with the final response."""
        tx = self.server("BYE", reliable=True)
        tx.send_response(Resp(200, "BYE"))
        self.assertEqual(tx.state, "Terminated")

    def test_cancel_finds_invite(self) -> None:
        """CANCEL is its own transaction but finds the INVITE's."""
        invite = self.server("INVITE")
        cancel = self.server("CANCEL")
        self.assertIsNot(invite, cancel)
        self.assertIs(self.layer.invite_transaction_for(Req("CANCEL")), invite)


class WaitsTests(SynchronousTestCase):
    """The final waits: one queue and one delayed call per wait length."""

    class Tx:
        def __init__(self, clock: Clock) -> None:
            self.clock = clock
            self.ended: float | None = None

        def terminate(self) -> None:
            if self.ended is None:
                self.ended = self.clock.seconds()

    def test_each_ends_on_time_with_one_call_per_length(self) -> None:
        clock = Clock()
        waits = Waits(clock)
        txs = []
        for n in range(4):
            tx = self.Tx(clock)
            waits.start(32.0 if n % 2 == 0 else 5.0, tx)
            txs.append(tx)
            clock.advance(1.0)
        self.assertEqual(len(waits), 4)
        self.assertEqual(len(clock.getDelayedCalls()), 2)
        clock.pump([0.5] * 120)
        self.assertEqual([tx.ended for tx in txs], [0.0 + 32.0, 1.0 + 5.0, 2.0 + 32.0, 3.0 + 5.0])
        self.assertEqual(len(waits), 0)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_failing_terminate_does_not_strand_the_rest(self) -> None:
        clock = Clock()
        waits = Waits(clock)
        broken, later = self.Tx(clock), self.Tx(clock)

        def explode() -> None:
            raise RuntimeError("boom")

        broken.terminate = explode
        waits.start(5.0, broken)
        clock.advance(1)
        waits.start(5.0, later)
        with self.assertRaises(RuntimeError):
            clock.advance(4)
        clock.advance(1)
        self.assertEqual(later.ended, 6.0)

    def test_stop_ends_every_wait(self) -> None:
        clock = Clock()
        waits = Waits(clock)
        tx = self.Tx(clock)
        waits.start(32.0, tx)
        clock.advance(3)
        waits.stop()
        self.assertEqual(tx.ended, 3.0)
        self.assertEqual(clock.getDelayedCalls(), [])


class ClientFixture(Fixture):
    def client(self, method: str, reliable: bool = False):
        return self.layer.send_request(
            Req(method), self.send, reliable, self.core,
            build_ack=lambda req, resp: Req("ACK"))


class InviteClientTests(ClientFixture):
    def test_timer_a_and_b(self) -> None:
        """INVITE is retransmitted at 0, T1, 3T1, 7T1 …; B (64*T1) times out."""
        tx = self.client("INVITE")
        self.clock.pump([0.5] * 70)
        self.assertEqual(self.sent_times()[:5], [0.0, 0.5, 1.5, 3.5, 7.5])
        self.assertEqual(len(self.sent), 7)  # 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5
        self.assertEqual(self.core.client_timeouts, [tx])
        self.assertEqual(tx.state, "Terminated")

    def test_provisional_stops_a(self) -> None:
        """A 1xx stops retransmission and enters Proceeding."""
        tx = self.client("INVITE")
        self.layer.receive_response(Resp(180), Source())
        self.clock.advance(10)
        self.assertEqual(len(self.sent), 1)
        self.assertEqual(tx.state, "Proceeding")
        self.assertEqual(self.core.responses, [180])

    def test_non_2xx_acked_and_timer_d(self) -> None:
        """A final error is ACKed by the transaction; retransmits re-ACKed; D ends it."""
        tx = self.client("INVITE")
        self.layer.receive_response(Resp(486), Source())
        self.layer.receive_response(Resp(486), Source())
        methods = [m.method for _, m in self.sent]
        self.assertEqual(methods, ["INVITE", "ACK", "ACK"])
        self.assertEqual(self.core.responses, [486])
        self.clock.advance(31.9)
        self.assertEqual(tx.state, "Completed")
        self.clock.advance(0.2)
        self.assertEqual(tx.state, "Terminated")

    def test_2xx_accepted_and_timer_m(self) -> None:
        """2xx: Accepted, retransmitted 2xx to the TU, M ends it."""
        tx = self.client("INVITE")
        self.layer.receive_response(Resp(200), Source())
        self.layer.receive_response(Resp(200), Source())
        self.assertEqual(self.core.responses, [200, 200])
        self.assertEqual(tx.state, "Accepted")
        self.clock.advance(32.1)
        self.assertEqual(tx.state, "Terminated")
        self.layer.receive_response(Resp(200), Source())
        self.assertEqual(len(self.core.stray), 1)

    def test_reliable_timer_d_zero(self) -> None:
        """On TCP, no retransmission and Completed ends at once."""
        tx = self.client("INVITE", reliable=True)
        self.clock.advance(10)
        self.assertEqual(len(self.sent), 1)
        self.layer.receive_response(Resp(500), Source(True))
        self.assertEqual(tx.state, "Terminated")

    def test_transport_error(self) -> None:
        """A failing send reports a transport error to the TU."""
        def broken(message):
            raise OSError("unreachable")

        tx = self.layer.send_request(Req("INVITE"), broken, False, self.core,
                                     build_ack=lambda q, r: None)
        self.assertEqual(self.core.transport_failures, [tx])
        self.assertEqual(self.layer.client, {})
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)


class NonInviteClientTests(ClientFixture):
    def test_timer_e_and_f(self) -> None:
        """E doubles from T1 up to T2; F (64*T1) times out."""
        tx = self.client("OPTIONS")
        self.clock.pump([0.25] * 140)
        times = self.sent_times()
        self.assertEqual(times[:6], [0.0, 0.5, 1.5, 3.5, 7.5, 11.5])
        self.assertEqual(self.core.client_timeouts, [tx])
        self.assertLessEqual(times[-1], 32.0)

    def test_proceeding_retransmits_at_t2(self) -> None:
        """After a 1xx, E fires every T2."""
        self.client("REGISTER")
        self.layer.receive_response(Resp(100, "REGISTER"), Source())
        self.clock.pump([0.25] * 60)
        times = self.sent_times()
        gaps = [b - a for a, b in zip(times[1:], times[2:])]
        self.assertTrue(gaps and all(abs(g - 4.0) < 0.3 for g in gaps), times)

    def test_final_and_timer_k(self) -> None:
        """A final response reaches the TU once; K (T4) ends it."""
        tx = self.client("BYE")
        self.layer.receive_response(Resp(200, "BYE"), Source())
        self.layer.receive_response(Resp(200, "BYE"), Source())
        self.assertEqual(self.core.responses, [200])
        self.clock.advance(4.9)
        self.assertEqual(tx.state, "Completed")
        self.clock.advance(0.2)
        self.assertEqual(tx.state, "Terminated")
        self.clock.advance(60)
        self.assertEqual(len(self.sent), 1)
