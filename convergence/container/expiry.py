# -*- test-case-name: tests.test_expiry -*-
"""
Deadlines kept in slots of a fixed width, with one delayed call for all.

A session timer is restarted on every request and cancelled when the
session ends, nearly always long before it is due.  One reactor
C{DelayedCall} each makes that an allocation, a heap push and a cancel
per session (and Twisted rebuilds its heap as cancelled calls pile up).
Here a deadline is only a key in the slot it falls in: setting,
restarting and dropping it are dictionary operations, and a single
delayed call waits for the earliest slot that holds anything.

An item is due at the end of its slot: never before its deadline, at
most C{resolution} seconds after it.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable, Generic, Hashable, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["DEFAULT_RESOLUTION", "Deadlines"]

log = Logger()

#: The width of a slot, in seconds: how late an item may be due.
DEFAULT_RESOLUTION = 1.0

T = TypeVar("T")


class Deadlines(Generic[T]):
    """
    Items by key, each due at a deadline; C{due(item)} is called once it
    has passed (in slot order, and in the order they were set within one
    slot), unless the key was dropped or set again first.
    """

    def __init__(self, clock: IReactorTime, due: Callable[[T], object],
                 resolution: float = DEFAULT_RESOLUTION) -> None:
        if resolution <= 0:
            raise ValueError("the resolution must be positive")
        self.clock = clock
        self.resolution = resolution
        self._due = due
        self._slot_of: dict[Hashable, int] = {}
        self._slots: dict[int, dict[Hashable, T]] = {}
        self._order: list[int] = []  # slot numbers, a heap; some may be gone
        self._timer: IDelayedCall | None = None
        self._timer_slot: int | None = None
        #: the slots being made due (L{_fire}), whose items a due() may drop
        self._firing: list[dict[Hashable, T]] = []

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def set(self, key: Hashable, item: T, delay: float) -> None:
        """Make C{item} due C{delay} seconds from now (replacing any
        deadline C{key} had); an infinite C{delay} is no deadline."""
        if not math.isfinite(delay):
            self.discard(key)
            return
        slot = math.ceil((self.clock.seconds() + delay) / self.resolution)
        old = self._slot_of.get(key)
        if old == slot:
            self._slots[slot][key] = item
            return
        if old is not None:
            del self._slots[old][key]
        elif self._firing:
            self._forget_firing(key)
        self._slot_of[key] = slot
        members = self._slots.get(slot)
        if members is None:
            members = self._slots[slot] = {}
            heapq.heappush(self._order, slot)
            if self._timer_slot is None or slot < self._timer_slot:
                self._wait_for(slot)
        members[key] = item

    def discard(self, key: Hashable) -> None:
        """Forget C{key}'s deadline, if it has one."""
        slot = self._slot_of.pop(key, None)
        if slot is None:
            if self._firing:
                self._forget_firing(key)
            return
        del self._slots[slot][key]
        if not self._slot_of:  # nothing left to wait for
            self._slots.clear()
            self._order.clear()
            self._cancel_timer()

    def stop(self) -> None:
        """Forget every deadline and the delayed call."""
        self._slot_of.clear()
        self._slots.clear()
        self._order.clear()
        for members in self._firing:
            members.clear()
        self._cancel_timer()

    def _forget_firing(self, key: Hashable) -> None:
        for members in self._firing:
            members.pop(key, None)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self._timer_slot = None

    def _wait_for(self, slot: int) -> None:
        delay = max(0.0, slot * self.resolution - self.clock.seconds())
        if self._timer is not None and self._timer.active():
            self._timer.reset(delay)
        else:
            self._timer = self.clock.callLater(delay, self._fire)
        self._timer_slot = slot

    def _fire(self) -> None:
        self._timer = self._timer_slot = None
        # The slots that have ended (a hair of slack for the float sum
        # the delayed call was scheduled with).
        horizon = self.clock.seconds() + self.resolution * 1e-6
        order = self._order
        firing = []
        while order and order[0] * self.resolution <= horizon:
            members = self._slots.pop(heapq.heappop(order), None)
            if members:
                for key in members:
                    del self._slot_of[key]
                firing.append(members)
        self._firing = firing
        try:
            for members in firing:
                while members:  # due() may drop or set the others
                    key = next(iter(members))
                    item = members.pop(key)
                    try:
                        self._due(item)
                    except Exception:
                        log.failure("an expiry failed")
        finally:
            self._firing = []
        while order and order[0] not in self._slots:
            heapq.heappop(order)
        if order and (self._timer_slot is None or order[0] < self._timer_slot):
            self._wait_for(order[0])
