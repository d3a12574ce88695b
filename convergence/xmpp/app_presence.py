# -*- test-case-name: tests.test_app_presence -*-
"""
Presence of application addresses (RFC 6121 for a contact that is an app).

An app's JID can be a roster contact like any other: a user subscribes to
it, the app accepts or not, and the app's presence answers the user's
probes and is broadcast to the users subscribed to it.  The server keeps
the users' side (their rosters); the app's side — who is subscribed to the
app — is read from those rosters, so an app needs no storage of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree
from twisted.internet.defer import Deferred

from convergence.xmpp import ns
from convergence.xmpp.jid import JID

if TYPE_CHECKING:
    from convergence.xmpp.applications import XmppApplications

#: RFC 6121 4.7.2.1
SHOW_VALUES = ("away", "chat", "dnd", "xa")


@dataclass(frozen=True)
class AppPresence:
    """What an available app says about itself."""

    show: str | None = None
    status: str | None = None
    priority: int = 0

    def __post_init__(self) -> None:
        if self.show is not None and self.show not in SHOW_VALUES:
            raise ValueError(f"show must be one of {SHOW_VALUES}, not {self.show!r}")
        if not -128 <= self.priority <= 127:
            raise ValueError("priority must lie in -128..127")


def presence_stanza(from_: JID | str, to: JID | str, presence: AppPresence | None,
                    type_: str | None = None) -> etree._Element:
    """
    A presence stanza: C{presence} when available, C{unavailable} when
    C{presence} is None, or the subscription C{type_} given.
    """
    stanza = etree.Element(f"{{{ns.CLIENT}}}presence", nsmap={None: ns.CLIENT})
    stanza.set("from", str(from_))
    stanza.set("to", str(to))
    if type_ is None and presence is None:
        type_ = "unavailable"
    if type_ is not None:
        stanza.set("type", type_)
    if type_ is None and presence is not None:
        if presence.show:
            etree.SubElement(stanza, f"{{{ns.CLIENT}}}show").text = presence.show
        if presence.status:
            etree.SubElement(stanza, f"{{{ns.CLIENT}}}status").text = presence.status
        if presence.priority:
            etree.SubElement(stanza, f"{{{ns.CLIENT}}}priority").text = str(presence.priority)
    return stanza


class AppPresenceService:
    """Subscribers of app addresses and presence sent on their behalf."""

    def __init__(self, applications: "XmppApplications") -> None:
        self.applications = applications

    def subscribers(self, address: JID | str) -> Deferred:
        """Deferred list of the bare JIDs (text) subscribed to C{address}:
        the local users with it in their roster as C{to} or C{both}."""
        server = self.applications.server
        contact = str(JID.parse(str(address)).bare)
        d = server.run_in_db(server.im_store.subscribers, contact)
        return d.addCallback(lambda rows: [f"{user}@{domain}" for user, domain in rows])

    def is_subscriber(self, address: JID | str, user: JID | str) -> Deferred:
        """Deferred: whether C{user} may see C{address}'s presence."""
        bare = str(JID.parse(str(user)).bare)
        return self.subscribers(address).addCallback(lambda users: bare in users)

    def broadcast(self, address: JID | str, presence: AppPresence | None) -> Deferred:
        """Send C{address}'s presence (None: unavailable) to every
        subscriber; Deferred number of users it went to."""
        def send(users: list[str]) -> int:
            for user in users:
                self.applications.route(presence_stanza(address, user, presence))
            return len(users)

        return self.subscribers(address).addCallback(send)
