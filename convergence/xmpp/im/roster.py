# -*- test-case-name: tests.test_im_roster -*-
"""
Rosters (RFC 6121 section 2): roster get with versioning (2.6), set and
remove with the RFC's errors, pushes to every interested resource.

L{Rosters} owns the rosters of the users who are online (or being
changed), cached in memory and written through to the L{IRosterStore} on
the database thread.  Work on one user's roster runs in arrival order
(L{Rosters.use}); a change is answered, pushed and followed by its
stanzas only once it is committed.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, Callable

from lxml import etree
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.interfaces import RosterItem
from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result
from convergence.xmpp.usercache import UserCache

__all__ = ["FEATURE", "Roster", "Rosters", "item_element"]

ROSTER = "jabber:iq:roster"
ROSTER_VER = "urn:xmpp:features:rosterver"
PRE_APPROVAL = "urn:xmpp:features:pre-approval"
_QUERY = f"{{{ROSTER}}}query"
_ITEM = f"{{{ROSTER}}}item"
_GROUP = f"{{{ROSTER}}}group"

log = Logger()


class Roster:
    """One user's roster: its version and items by contact bare JID."""

    __slots__ = ("owner", "version", "items")

    def __init__(self, owner: JID, version: int, items: list[RosterItem]) -> None:
        self.owner = owner
        self.version = version
        self.items: dict[str, RosterItem] = {i.contact: i for i in items}

    def get(self, contact: str) -> RosterItem:
        """The item for C{contact}, or a fresh unlisted one."""
        return self.items.get(contact) or RosterItem(contact, listed=False)

    def listed(self) -> list[RosterItem]:
        return [i for i in self.items.values() if i.listed]

    def contacts(self, *subscriptions: str) -> list[str]:
        """Contacts whose subscription is one of C{subscriptions}."""
        return [c for c, i in self.items.items() if i.subscription in subscriptions]


def _empty(item: RosterItem) -> bool:
    """An unlisted item that holds nothing any more."""
    return (not item.listed and item.subscription == "none" and not item.ask
            and not item.pending_in and not item.approved)


def item_element(item: RosterItem | None, contact: str | None = None) -> etree._Element:
    """The C{<item/>} of a roster result or push (C{None}: removed)."""
    element = etree.Element(_ITEM, nsmap={None: ROSTER})
    if item is None:
        element.set("jid", contact or "")
        element.set("subscription", "remove")
        return element
    element.set("jid", item.contact)
    if item.name is not None:
        element.set("name", item.name)
    element.set("subscription", item.subscription)
    if item.ask:
        element.set("ask", "subscribe")
    if item.approved:
        element.set("approved", "true")
    for group in item.groups:
        etree.SubElement(element, _GROUP).text = group
    return element


class Rosters:
    """Cached rosters with ordered, write-through changes."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.store = server.im_store
        self.run_in_db = server.run_in_db
        self._users: UserCache[Roster] = UserCache(self._load, "roster", self.release)
        self._cache = self._users.values
        self._waiting = self._users.waiting

    # Access
    def use(self, owner: JID, work: Callable[[Roster | None], Any]) -> None:
        """
        Run C{work(roster)} once C{owner}'s roster is loaded, after the
        work queued before it (C{None} if it cannot be loaded).
        """
        self._users.use(owner, work)

    def _load(self, owner: JID) -> Deferred:
        d = self.run_in_db(self.store.roster, owner.user, owner.host)
        return d.addCallback(lambda result: Roster(owner, *result))

    def cached(self, owner: JID) -> Roster | None:
        """The roster if it is in memory (no load)."""
        return self._cache.get(owner)

    def forget(self, owner: JID) -> None:
        """The account is gone (C{account/removed}): drop its cached roster."""
        self._cache.pop(owner, None)

    def release(self, owner: JID) -> None:
        """Forget a cached roster whose owner has no resource bound."""
        if owner in self._cache and owner not in self._waiting \
                and not self.server.registry.resources(owner):
            del self._cache[owner]

    # Changes
    def save(self, roster: Roster, item: RosterItem) -> Deferred:
        """
        Store C{item} (or remove it when it holds nothing any more); the
        cache changes at once, the Deferred fires once committed with the
        item as stored (C{None}: removed).
        """
        owner = roster.owner
        roster.version += 1
        if _empty(item):
            roster.items.pop(item.contact, None)
            d = self.run_in_db(self.store.remove_item, owner.user, owner.host,
                               item.contact)
            stored: RosterItem | None = None
        else:
            roster.items[item.contact] = item
            d = self.run_in_db(self.store.put_item, owner.user, owner.host, item)
            stored = item
        return d.addCallback(lambda _: stored)

    def push(self, roster: Roster, item: RosterItem | None, contact: str) -> None:
        """Roster push (2.1.6) of one item to every interested resource."""
        for stream in self.server.registry.resources(roster.owner):
            if not getattr(stream, "roster_requested", False):
                continue
            iq = etree.Element(f"{{{ns.CLIENT}}}iq", nsmap={None: ns.CLIENT},
                               type="set", id="push-" + secrets.token_hex(6))
            iq.set("to", str(stream.jid))
            query = etree.SubElement(iq, _QUERY, nsmap={None: ROSTER},
                                     ver=str(roster.version))
            query.append(item_element(item, contact))
            stream.deliver(iq)

    def change(self, roster: Roster, old: RosterItem, new: RosterItem,
               then: Callable[[], Any] = lambda: None) -> None:
        """Save C{new} if it differs from C{old}, push it if either is
        listed, then call C{then} (at once when nothing changed)."""
        if new == old:
            then()
            return

        def saved(stored: RosterItem | None) -> None:
            if old.listed or new.listed:
                shown = stored if stored is not None and stored.listed else None
                self.push(roster, shown, new.contact)
            then()

        self.save(roster, new).addCallbacks(saved, self._save_failed)

    @staticmethod
    def _save_failed(failure: Failure) -> None:
        log.failure("could not store a roster change", failure)

    # The roster protocol (iq jabber:iq:roster)
    def on_get(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        stream = event.origin
        stream.roster_requested = True
        wanted = event.stanza[0].get("ver")

        def answer(roster: Roster | None) -> None:
            if roster is None:
                event.reply_error("internal-server-error")
                return
            result = iq_result(event.stanza)
            if wanted is not None and wanted == str(roster.version):
                event.reply(result)  # 2.6.3: unchanged, empty result
                return
            query = etree.SubElement(result, _QUERY, nsmap={None: ROSTER},
                                     ver=str(roster.version))
            for item in sorted(roster.listed(), key=lambda i: i.contact):
                query.append(item_element(item))
            event.reply(result)

        self.use(event.sender.bare, answer)
        return True

    def on_set(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        config = self.server.config
        items = event.stanza[0].findall(_ITEM)
        if len(items) != 1:
            event.reply_error("bad-request", "a roster set carries exactly one item")
            return True
        element = items[0]
        try:
            contact = JID.parse(element.get("jid", "")).bare
        except InvalidJID:
            event.reply_error("jid-malformed", "the item's jid is not a JID")
            return True
        name = element.get("name")
        groups = [g.text or "" for g in element.findall(_GROUP)]
        if element.get("subscription") == "remove":
            self.use(event.sender.bare, lambda r: self._remove(event, r, str(contact)))
            return True
        problem = None
        if name is not None and len(name) > config.max_roster_text:
            problem = ("not-acceptable", "the name is too long")
        elif len(groups) > config.max_roster_groups:
            problem = ("not-acceptable", "too many groups")
        elif any(not g for g in groups):
            problem = ("not-acceptable", "a group name is empty")
        elif any(len(g) > config.max_roster_text for g in groups):
            problem = ("not-acceptable", "a group name is too long")
        elif len(set(groups)) != len(groups):
            problem = ("bad-request", "a group is named twice")
        if problem is not None:
            event.reply_error(*problem)
            return True

        def update(roster: Roster | None) -> None:
            if roster is None:
                event.reply_error("internal-server-error")
                return
            old = roster.get(str(contact))
            if not old.listed and len(roster.listed()) >= config.max_roster_items:
                event.reply_error("resource-constraint", "the roster is full")
                return
            new = replace(old, name=name or None, groups=tuple(groups), listed=True)
            self.change(roster, old, new, lambda: event.reply(iq_result(event.stanza)))

        self.use(event.sender.bare, update)
        return True

    def _remove(self, event: StanzaEvent, roster: Roster | None, contact: str) -> None:
        """2.5: remove the item, cancelling both subscriptions."""
        if roster is None:
            event.reply_error("internal-server-error")
            return
        old = roster.items.get(contact)
        if old is None or not old.listed:
            event.reply_error("item-not-found")
            return
        owner = roster.owner
        cancels = []
        if old.subscription in ("to", "both") or old.ask:
            cancels.append("unsubscribe")
        if old.subscription in ("from", "both") or old.pending_in:
            cancels.append("unsubscribed")
        gone = RosterItem(contact, listed=False)

        def after() -> None:
            event.reply(iq_result(event.stanza))
            presence = self.server.presence
            for type_ in cancels:
                presence.send_subscription(owner, contact, type_)
            if "unsubscribed" in cancels:
                presence.send_unavailable_to(owner, contact)

        self.change(roster, old, gone, after)

    @staticmethod
    def _own(event: StanzaEvent) -> bool:
        """Only a user's own client may read or change its roster (2.1.5)."""
        if event.origin is None or event.to != event.sender.bare:
            event.reply_error("forbidden", "only the user's own roster")
            return False
        return True


def install(server: Any) -> None:
    rosters = Rosters(server)
    server.rosters = rosters
    server.stream_features += [(ROSTER_VER, "ver"), (PRE_APPROVAL, "sub")]
    server.router.hook_iq("get", "bare", ROSTER, "query", rosters.on_get)
    server.router.hook_iq("set", "bare", ROSTER, "query", rosters.on_set)
    server.bus.hook("c2s/unbound", lambda stream: rosters.release(stream.jid.bare)
                    if stream.jid is not None else None)
    server.bus.hook("account/removed", lambda event: rosters.forget(event.jid))


FEATURE = Feature(
    name="roster", spec="RFC 6121", version="",
    disco_features=(), install=install,
)
