"""UserCache: per-user state loaded once, work in arrival order."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.jid import JID
from convergence.xmpp.usercache import UserCache

ALICE = JID.parse("alice@localhost")


class UserCacheTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.loads: list[Deferred] = []
        self.after: list[JID] = []

        def load(owner: JID) -> Deferred:
            d: Deferred = Deferred()
            self.loads.append(d)
            return d

        self.cache: UserCache[str] = UserCache(load, "thing", self.after.append)

    def test_one_load_work_in_order(self) -> None:
        seen: list[tuple[int, str | None]] = []
        self.cache.use(ALICE, lambda v: seen.append((1, v)))
        self.cache.use(ALICE, lambda v: seen.append((2, v)))
        self.assertEqual((len(self.loads), seen), (1, []))
        self.loads[0].callback("value")
        self.cache.use(ALICE, lambda v: seen.append((3, v)))
        self.assertEqual(seen, [(1, "value"), (2, "value"), (3, "value")])
        self.assertEqual((self.after, len(self.loads)), ([ALICE], 1))

    def test_failed_load_gives_none_and_retries_later(self) -> None:
        seen: list[str | None] = []
        self.cache.use(ALICE, seen.append)
        self.loads[0].errback(RuntimeError("disk"))
        self.assertEqual(seen, [None])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.cache.use(ALICE, seen.append)
        self.assertEqual(len(self.loads), 2)

    def test_failing_work_does_not_stop_the_rest(self) -> None:
        seen: list[str | None] = []
        self.cache.use(ALICE, lambda v: 1 / 0)
        self.cache.use(ALICE, seen.append)
        self.loads[0].callback("value")
        self.assertEqual(seen, ["value"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
