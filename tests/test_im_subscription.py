"""The subscription state machine against RFC 6121 Appendix A's tables."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.store.interfaces import RosterItem
from convergence.xmpp.im.subscription import inbound, outbound

#: Appendix A names: state -> (subscription, ask, pending_in)
STATES = {
    "None": ("none", False, False),
    "None+Out": ("none", True, False),
    "None+In": ("none", False, True),
    "None+Out+In": ("none", True, True),
    "To": ("to", False, False),
    "To+In": ("to", False, True),
    "From": ("from", False, False),
    "From+Out": ("from", True, False),
    "Both": ("both", False, False),
}
NAMES = {v: k for k, v in STATES.items()}


def item(state: str) -> RosterItem:
    subscription, ask, pending_in = STATES[state]
    return RosterItem("c@x", subscription=subscription, ask=ask, pending_in=pending_in)


def state(i: RosterItem) -> str:
    return NAMES[(i.subscription, i.ask, i.pending_in)]


class TableTests(SynchronousTestCase):
    def check(self, function, type_: str, table: dict[str, tuple[str, bool]]) -> None:
        self.assertEqual(set(table), set(STATES))
        for before, (after, forward) in table.items():
            outcome = function(item(before), type_)
            self.assertEqual((state(outcome.item), outcome.forward), (after, forward),
                             f"{type_} in {before}")

    def test_outbound_subscribe(self) -> None:
        """A.2.1: always routed; Pending Out unless the user has To."""
        self.check(outbound, "subscribe", {
            "None": ("None+Out", True), "None+Out": ("None+Out", True),
            "None+In": ("None+Out+In", True), "None+Out+In": ("None+Out+In", True),
            "To": ("To", True), "To+In": ("To+In", True),
            "From": ("From+Out", True), "From+Out": ("From+Out", True),
            "Both": ("Both", True)})

    def test_outbound_unsubscribe(self) -> None:
        """A.2.2."""
        self.check(outbound, "unsubscribe", {
            "None": ("None", True), "None+Out": ("None", True),
            "None+In": ("None+In", True), "None+Out+In": ("None+In", True),
            "To": ("None", True), "To+In": ("None+In", True),
            "From": ("From", True), "From+Out": ("From", True), "Both": ("From", True)})

    def test_outbound_subscribed(self) -> None:
        """A.2.3: approves a pending request; without one, pre-approves."""
        self.check(outbound, "subscribed", {
            "None": ("None", False), "None+Out": ("None+Out", False),
            "None+In": ("From", True), "None+Out+In": ("From+Out", True),
            "To": ("To", False), "To+In": ("Both", True),
            "From": ("From", False), "From+Out": ("From+Out", False),
            "Both": ("Both", False)})
        self.assertTrue(outbound(item("None"), "subscribed").item.approved)
        self.assertFalse(outbound(item("From"), "subscribed").item.approved)

    def test_outbound_unsubscribed(self) -> None:
        """A.2.4: denies or cancels the contact's subscription."""
        self.check(outbound, "unsubscribed", {
            "None": ("None", False), "None+Out": ("None+Out", False),
            "None+In": ("None", True), "None+Out+In": ("None+Out", True),
            "To": ("To", False), "To+In": ("To", True),
            "From": ("None", True), "From+Out": ("None+Out", True),
            "Both": ("To", True)})
        approved = RosterItem("c@x", approved=True)
        self.assertFalse(outbound(approved, "unsubscribed").item.approved)

    def test_inbound_subscribe(self) -> None:
        """A.3.1: delivered unless pending already or approved."""
        self.check(inbound, "subscribe", {
            "None": ("None+In", True), "None+Out": ("None+Out+In", True),
            "None+In": ("None+In", False), "None+Out+In": ("None+Out+In", False),
            "To": ("To+In", True), "To+In": ("To+In", False),
            "From": ("From", False), "From+Out": ("From+Out", False),
            "Both": ("Both", False)})
        self.assertTrue(inbound(item("Both"), "subscribe").auto_approve)

    def test_inbound_subscribe_preapproved(self) -> None:
        """3.4: a pre-approved request is approved at once, not delivered."""
        for before, after in (("None", "From"), ("None+Out", "From+Out"), ("To", "Both")):
            pre = outbound(item(before), "subscribed").item
            outcome = inbound(pre, "subscribe")
            self.assertEqual((state(outcome.item), outcome.forward, outcome.auto_approve),
                             (after, False, True))
            self.assertFalse(outcome.item.approved)

    def test_inbound_unsubscribe(self) -> None:
        """A.3.2."""
        self.check(inbound, "unsubscribe", {
            "None": ("None", False), "None+Out": ("None+Out", False),
            "None+In": ("None", True), "None+Out+In": ("None+Out", True),
            "To": ("To", False), "To+In": ("To", True),
            "From": ("None", True), "From+Out": ("None+Out", True),
            "Both": ("To", True)})

    def test_inbound_subscribed(self) -> None:
        """A.3.3: only a pending request of the user is approved."""
        self.check(inbound, "subscribed", {
            "None": ("None", False), "None+Out": ("To", True),
            "None+In": ("None+In", False), "None+Out+In": ("To+In", True),
            "To": ("To", False), "To+In": ("To+In", False),
            "From": ("From", False), "From+Out": ("Both", True),
            "Both": ("Both", False)})

    def test_inbound_unsubscribed(self) -> None:
        """A.3.4."""
        self.check(inbound, "unsubscribed", {
            "None": ("None", False), "None+Out": ("None", True),
            "None+In": ("None+In", False), "None+Out+In": ("None+In", True),
            "To": ("None", True), "To+In": ("None+In", True),
            "From": ("From", False), "From+Out": ("From", True),
            "Both": ("From", True)})

    def test_unknown_type(self) -> None:
        self.assertRaises(ValueError, outbound, item("None"), "probe")
        self.assertRaises(ValueError, inbound, item("None"), "available")
