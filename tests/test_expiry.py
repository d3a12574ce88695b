"""Tests for convergence.container.expiry: deadlines in slots, one timer."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from convergence.container.expiry import Deadlines


class DeadlinesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.fired: list[tuple[str, float]] = []
        self.deadlines: Deadlines[str] = Deadlines(self.clock, self.due, resolution=1.0)

    def due(self, item: str) -> None:
        self.fired.append((item, self.clock.seconds()))

    def test_never_early_at_most_a_slot_late(self) -> None:
        """An item is due once its deadline passed, by the end of its slot."""
        self.clock.advance(0.25)
        self.deadlines.set("a", "a", 2.5)  # deadline 2.75, slot ends at 3
        self.clock.advance(2.49)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.26)
        self.assertEqual(self.fired, [("a", 3.0)])
        self.assertEqual(len(self.deadlines), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_one_delayed_call_for_many(self) -> None:
        """A thousand deadlines wait on one delayed call; each is due once."""
        for n in range(1000):
            self.deadlines.set(n, f"item{n}", 10 + n % 7)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.pump([1.0] * 20)
        self.assertEqual(len(self.fired), 1000)
        self.assertEqual(len({item for item, _ in self.fired}), 1000)
        self.assertEqual([t for _, t in self.fired], sorted(t for _, t in self.fired))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_set_again_postpones(self) -> None:
        """Setting a key again moves its deadline, later or earlier."""
        self.deadlines.set("k", "first", 5)
        self.clock.advance(4)
        self.deadlines.set("k", "second", 5)
        self.clock.advance(4)
        self.assertEqual(self.fired, [])
        self.clock.advance(1)
        self.assertEqual(self.fired, [("second", 9.0)])
        self.deadlines.set("j", "late", 100)
        self.deadlines.set("j", "soon", 1)
        self.clock.advance(1)
        self.assertEqual(self.fired[-1], ("soon", 10.0))
        self.clock.advance(200)
        self.assertEqual(len(self.fired), 2)

    def test_discard_and_stop(self) -> None:
        """A dropped key is never due; the last one drops the delayed call."""
        self.deadlines.set("a", "a", 5)
        self.deadlines.set("b", "b", 6)
        self.deadlines.discard("a")
        self.deadlines.discard("missing")
        self.assertIn("b", self.deadlines)
        self.assertNotIn("a", self.deadlines)
        self.clock.advance(5)
        self.assertEqual(self.fired, [])
        self.deadlines.discard("b")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.deadlines.set("c", "c", 1)
        self.deadlines.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(self.fired, [])

    def test_due_may_drop_set_or_fail(self) -> None:
        """A due() that drops a key of its own slot stops that one firing;
        one that sets a key makes it due later; one that raises is logged
        and the rest still fire."""
        def due(item: str) -> None:
            self.fired.append((item, self.clock.seconds()))
            if item == "dropper":
                self.deadlines.discard("victim")
            elif item == "setter":
                self.deadlines.set("again", "again", 3)
            elif item == "broken":
                raise RuntimeError("boom")

        self.deadlines = Deadlines(self.clock, due)
        for key in ("dropper", "victim", "setter", "broken", "last"):
            self.deadlines.set(key, key, 2)
        self.clock.advance(2)
        self.assertEqual([item for item, _ in self.fired],
                         ["dropper", "setter", "broken", "last"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(3)
        self.assertEqual(self.fired[-1], ("again", 5.0))

    def test_earlier_slot_than_waited_for(self) -> None:
        """A deadline earlier than the one waited for moves the delayed call."""
        self.deadlines.set("far", "far", 60)
        self.deadlines.set("near", "near", 2)
        (call,) = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 2.0)
        self.clock.advance(2)
        self.assertEqual(self.fired, [("near", 2.0)])
        (call,) = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 60.0)

    def test_infinite_delay_never_due(self) -> None:
        """An infinite delay (a session that never times out) is no deadline."""
        self.deadlines.set("k", "k", 5)
        self.deadlines.set("k", "k", float("inf"))
        self.assertNotIn("k", self.deadlines)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(self.fired, [])

    def test_fine_resolution(self) -> None:
        """Slots of a tenth of a second: due within a tenth, never before."""
        deadlines: Deadlines[str] = Deadlines(self.clock, self.due, resolution=0.1)
        deadlines.set("x", "x", 0.35)
        self.clock.advance(0.34)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.06)
        self.assertEqual([item for item, _ in self.fired], ["x"])
        self.assertLessEqual(self.fired[0][1], 0.45)
        self.assertRaises(ValueError, Deadlines, self.clock, self.due, 0)
