# -*- test-case-name: tests.test_im_subscription -*-
"""
The subscription state machine of RFC 6121 Appendix A, as pure functions.

A state is a roster item's C{subscription} (none/to/from/both) with its
C{ask} (Pending Out) and C{pending_in} (Pending In) flags.  Each function
takes the item as it is (a fresh unlisted item when there is none) and
returns the item as it must become and whether the stanza goes on: routed
to the contact (outbound) or delivered to the user (inbound).  The item
changed, and a roster push is due, exactly when the returned item differs
from the one given (for a listed item).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from convergence.store.interfaces import RosterItem

__all__ = ["Outcome", "inbound", "outbound"]

#: The user's side of the presence flow: (receives the contact's, sends its own)
_SIDES = {"none": (False, False), "to": (True, False),
          "from": (False, True), "both": (True, True)}
_NAMES = {v: k for k, v in _SIDES.items()}


class Outcome(NamedTuple):
    """What a subscription stanza does to an item."""

    item: RosterItem
    #: route (outbound) or deliver (inbound) the stanza
    forward: bool
    #: inbound subscribe already approved: answer C{subscribed} at once
    auto_approve: bool = False


def _with(item: RosterItem, to: bool | None = None, from_: bool | None = None,
          **changes: object) -> RosterItem:
    has_to, has_from = _SIDES[item.subscription]
    if to is not None:
        has_to = to
    if from_ is not None:
        has_from = from_
    return replace(item, subscription=_NAMES[(has_to, has_from)], **changes)


def _to(item: RosterItem) -> bool:
    return _SIDES[item.subscription][0]


def _from(item: RosterItem) -> bool:
    return _SIDES[item.subscription][1]


def outbound(item: RosterItem, type_: str) -> Outcome:
    """The user sends C{type_} to the contact (A.2)."""
    if type_ == "subscribe":  # A.2.1: always routed; Pending Out unless To
        listed = replace(item, listed=True)
        return Outcome(listed if _to(item) else replace(listed, ask=True), True)
    if type_ == "unsubscribe":  # A.2.2
        return Outcome(_with(item, to=False, ask=False), True)
    if type_ == "subscribed":  # A.2.3
        if item.pending_in:  # 3.1.5: the contact joins the roster with 'from'
            return Outcome(_with(item, from_=True, pending_in=False, request=None,
                                 approved=False, listed=True), True)
        if _from(item):
            return Outcome(item, False)
        return Outcome(replace(item, approved=True), False)  # pre-approval (3.4)
    if type_ == "unsubscribed":  # A.2.4
        if item.pending_in or _from(item):
            return Outcome(_with(item, from_=False, pending_in=False, request=None,
                                 approved=False), True)
        return Outcome(replace(item, approved=False), False)
    raise ValueError(f"not a subscription type: {type_!r}")


def inbound(item: RosterItem, type_: str) -> Outcome:
    """The contact sends C{type_} to the user (A.3)."""
    if type_ == "subscribe":  # A.3.1
        if _from(item):
            return Outcome(item, False, auto_approve=True)
        if item.approved:
            return Outcome(_with(item, from_=True, approved=False), False,
                           auto_approve=True)
        if item.pending_in:
            return Outcome(item, False)
        return Outcome(replace(item, pending_in=True), True)
    if type_ == "unsubscribe":  # A.3.2
        if item.pending_in or _from(item):
            return Outcome(_with(item, from_=False, pending_in=False, request=None), True)
        return Outcome(item, False)
    if type_ == "subscribed":  # A.3.3
        if item.ask:
            return Outcome(_with(item, to=True, ask=False), True)
        return Outcome(item, False)
    if type_ == "unsubscribed":  # A.3.4
        if item.ask or _to(item):
            return Outcome(_with(item, to=False, ask=False), True)
        return Outcome(item, False)
    raise ValueError(f"not a subscription type: {type_!r}")
