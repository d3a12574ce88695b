"""The named, prioritised event bus."""

from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.events import EventBus


class EventBusTests(SynchronousTestCase):
    def test_priority_order_and_stop(self) -> None:
        """Higher priorities run first; the first true result stops the chain."""
        bus = EventBus()
        calls = []
        bus.hook("e", lambda ev: calls.append("low"), priority=-1)
        bus.hook("e", lambda ev: calls.append("high") or False, priority=10)
        bus.hook("e", lambda ev: calls.append("mid") or True, priority=0)
        self.assertTrue(bus.fire("e", None))
        self.assertEqual(calls, ["high", "mid"])

    def test_same_priority_in_subscription_order(self) -> None:
        """Equal priorities run in the order they subscribed."""
        bus = EventBus()
        calls = []
        for name in "abc":
            bus.hook("e", lambda ev, n=name: calls.append(n))
        self.assertFalse(bus.fire("e", None))
        self.assertEqual(calls, ["a", "b", "c"])

    def test_unhook_and_unknown(self) -> None:
        """Unhooked handlers stop running; unknown events are unhandled."""
        bus = EventBus()
        handler = lambda ev: True  # noqa: E731
        bus.hook("e", handler)
        self.assertTrue(bus.has_handlers("e"))
        bus.unhook("e", handler)
        self.assertFalse(bus.fire("e", None))
        self.assertFalse(bus.fire("nothing", None))
