# -*- test-case-name: tests.test_blocking -*-
"""
XEP-0191: Blocking Command (C{urn:xmpp:blocking}, version 1.3).

The protocol: a blocklist get (the resource then gets pushes), block and
unblock (no item: unblock all) to the user's own account, answered once
the change is committed to the L{IBlockingStore}, then pushed to every
resource that requested the blocklist.  A JID that does not parse is
C{jid-malformed}; a block without items is C{bad-request}; a blocklist
over C{xmpp.max_blocklist_items} is C{policy-violation}.

The effects, checked on C{pre-stanza} (outbound ahead of applications,
inbound after them) and on C{presence/outbound} ahead of the presence
service.  An item matches as
in XEP-0016: a full JID only itself; a bare JID itself and its full JIDs;
a domain the domain, every JID at it and their resources; C{domain/res}
only itself.

  - From a blocked JID to the user: presence and messages are dropped,
    an iq get/set is answered C{service-unavailable}, other iqs dropped.
  - From the user's client to a blocked JID: C{not-acceptable} with
    C{<blocked xmlns='urn:xmpp:blocking:errors'/>} (errors and iq results
    are dropped without an answer); presence the server sends on the
    user's behalf (broadcasts, probe answers) is dropped.
  - On block, contacts that may see the user's presence get unavailable
    from each available resource; on unblock they get the current
    presence again, and the contacts whose presence the user sees are
    probed.

Blocklists of users with a bound resource are kept in memory; others are
loaded for the stanza that needs them (which waits, then is routed again
from the start, so hooks ahead of these see it twice) and forgotten.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterable

from lxml import etree
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp import ns
from convergence.xmpp.errors import StanzaError, error_reply
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result
from convergence.xmpp.usercache import UserCache

__all__ = ["BLOCKING", "BLOCKING_ERRORS", "FEATURE", "Blocking", "matches"]

BLOCKING = "urn:xmpp:blocking"
BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
_ITEM = f"{{{BLOCKING}}}item"
#: outbound checks: ahead of applications (100) and carbons (150) on
#: pre-stanza, and of the presence service on presence/outbound
PRIORITY = 200
#: inbound checks: after applications (their addresses have no blocklist),
#: before any delivery
INBOUND_PRIORITY = 50
#: roster subscriptions under which a contact sees the user's presence,
#: and under which the user sees the contact's
_SEES_USER = ("from", "both")
_USER_SEES = ("to", "both")

log = Logger()

Items = frozenset[str]


def matches(items: Items, jid: JID) -> bool:
    """Whether C{jid} is blocked by one of C{items} (XEP-0016 2.1)."""
    return (str(jid) in items or str(jid.bare) in items or jid.host in items)


class Blocking:
    """Blocklists, their protocol and their effect on routing."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.store = server.im_store
        self.run_in_db = server.run_in_db
        self.registry = server.registry
        self.limit = server.config.max_blocklist_items
        self._users: UserCache[Items] = UserCache(self._load, "blocklist", self._release)
        self._cache = self._users.values
        self._waiting = self._users.waiting
        #: owners whose blocklist a held stanza still needs
        self._pins: dict[JID, int] = {}
        #: streams that asked for the blocklist (they get pushes)
        self.interested: set[Any] = set()

    def install(self) -> None:
        hook = self.server.bus.hook
        hook_iq = self.server.router.hook_iq
        hook_iq("get", "bare", BLOCKING, "blocklist", self.on_get)
        hook_iq("set", "bare", BLOCKING, "block", self.on_block)
        hook_iq("set", "bare", BLOCKING, "unblock", self.on_unblock)
        hook("pre-stanza", self._outbound, PRIORITY)
        hook("pre-stanza", self._inbound, INBOUND_PRIORITY)
        hook("presence/outbound", self.on_outbound_presence, PRIORITY)
        hook("c2s/bound", self.on_bound)
        hook("c2s/unbound", self.on_unbound)

    # The blocklists
    def use(self, owner: JID, work: Callable[[Items | None], Any]) -> None:
        """Run C{work(items)} with C{owner}'s blocklist (C{None}: it could
        not be loaded), at once if it is in memory."""
        self._users.use(owner, work)

    def _load(self, owner: JID) -> Deferred:
        d = self.run_in_db(self.store.blocklist, owner.user, owner.host)
        return d.addCallback(frozenset)

    def _release(self, owner: JID) -> None:
        """Forget the blocklist of a user without bound resources."""
        if owner not in self._waiting and owner not in self._pins \
                and not self.registry.resources(owner):
            self._cache.pop(owner, None)

    def on_bound(self, stream: Any) -> None:
        self.use(stream.jid.bare, lambda items: None)

    def on_unbound(self, stream: Any) -> None:
        self.interested.discard(stream)
        if stream.jid is not None:
            self._release(stream.jid.bare)

    # Routing
    def on_outbound_presence(self, event: StanzaEvent) -> bool:
        if event.stanza.get("to") is None:
            return False  # a broadcast: each copy is checked on pre-stanza
        return self._outbound(event)

    def _outbound_owner(self, event: StanzaEvent) -> JID | None:
        """The local user sending C{event}'s stanza to someone else: from
        the user's client, or presence the server sends for the user."""
        stream = event.origin
        sender = event.sender
        if stream is not None and getattr(stream, "jid", None) is not None:
            owner = stream.jid.bare
        elif (event.kind == "presence" and sender.user is not None
              and self.server.router.is_local(sender.host)):
            owner = sender.bare
            if owner not in self._cache and not self.registry.resources(owner):
                # Not online (or an application's address): the presence
                # answers a stanza that was checked on its way in.
                return None
        else:
            return None
        if event.stanza.get("to") is None or event.to.bare == owner:
            return None
        return owner

    @staticmethod
    def _inbound_owner(event: StanzaEvent) -> JID | None:
        """The local user receiving C{event}'s stanza from someone else."""
        to = event.to
        if event.to_type not in ("bare", "full") or to.bare == event.sender.bare:
            return None
        return to.bare

    def _outbound(self, event: StanzaEvent) -> bool:
        """From the user to someone the user blocked."""
        owner = self._outbound_owner(event)
        if owner is None:
            return False
        items = self._cache.get(owner)
        if items is None:
            self._hold(event)
            return True
        if not matches(items, event.to):
            return False
        stream = event.origin
        kind, type_ = event.kind, event.type
        if stream is not None and getattr(stream, "jid", None) is not None \
                and type_ != "error" and not (kind == "iq" and type_ == "result"):
            reply = error_reply(event.stanza, StanzaError(
                "not-acceptable", "You have blocked this JID", type="cancel"))
            reply[-1].append(etree.Element(f"{{{BLOCKING_ERRORS}}}blocked",
                                           nsmap={None: BLOCKING_ERRORS}))
            stream.deliver(reply)
        return True

    def _inbound(self, event: StanzaEvent) -> bool:
        """From someone the recipient blocked."""
        owner = self._inbound_owner(event)
        if owner is None:
            return False
        items = self._cache.get(owner)
        if items is None:
            self._hold(event)
            return True
        if not matches(items, event.sender):
            return False
        if event.kind == "iq" and event.type in ("get", "set"):
            event.reply_error("service-unavailable")
        return True

    def _hold(self, event: StanzaEvent) -> None:
        """
        Route C{event}'s stanza again once the blocklists of its sender and
        recipient (those that are local users) are both in memory.  They
        stay pinned until it is routed, so that neither is forgotten while
        the other loads (which would load them in turn forever).
        """
        owners = [o for o in {self._outbound_owner(event), self._inbound_owner(event)}
                  if o is not None]
        for owner in owners:
            self._pins[owner] = self._pins.get(owner, 0) + 1
        missing = len(owners)
        failed = False

        def one(items: Items | None) -> None:
            nonlocal missing, failed
            failed = failed or items is None
            missing -= 1
            if missing:
                return
            try:
                if failed:
                    event.reply_error("internal-server-error")
                else:
                    self.server.router.route(event.stanza, event.origin)
            finally:
                for owner in owners:
                    self._pins[owner] -= 1
                    if not self._pins[owner]:
                        del self._pins[owner]
                    self._release(owner)

        for owner in owners:
            self.use(owner, one)

    # The protocol
    def _own(self, event: StanzaEvent) -> bool:
        """Whether the iq comes from a resource of the account it is to;
        answer it with C{forbidden} if not."""
        stream = event.origin
        if stream is None or getattr(stream, "jid", None) != event.sender \
                or event.to != event.sender.bare:
            event.reply_error("forbidden", "only the account's own resources")
            return False
        return True

    def on_get(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        stream = event.origin

        def answer(items: Items | None) -> None:
            if items is None:
                event.reply_error("internal-server-error")
                return
            result = iq_result(event.stanza)
            blocklist = etree.SubElement(result, f"{{{BLOCKING}}}blocklist",
                                         nsmap={None: BLOCKING})
            for jid in sorted(items):
                etree.SubElement(blocklist, _ITEM, jid=jid)
            self.interested.add(stream)
            event.reply(result)

        self.use(event.to, answer)
        return True

    def _jids(self, event: StanzaEvent) -> list[str] | None:
        """The prepared JIDs of the items; answers and returns None if one
        is malformed."""
        jids: list[str] = []
        for item in event.stanza[0].iter(_ITEM):
            try:
                jid = str(JID.parse(item.get("jid") or ""))
            except InvalidJID:
                event.reply_error("jid-malformed", f"not a JID: {item.get('jid')!r}")
                return None
            if jid not in jids:
                jids.append(jid)
        return jids

    def on_block(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        jids = self._jids(event)
        if jids is None:
            return True
        if not jids:
            event.reply_error("bad-request", "a block needs at least one item")
            return True
        if len(jids) > self.limit:
            self._over_limit(event)
            return True
        owner = event.to

        def stored(ok: bool) -> None:
            if not ok:
                self._over_limit(event)
                return
            self.use(owner, lambda old: self._blocked(event, owner, old, jids))

        d = self.run_in_db(self.store.block, owner.user, owner.host, jids, self.limit)
        d.addCallbacks(stored, self._write_failed, errbackArgs=(event,))
        return True

    def on_unblock(self, event: StanzaEvent) -> bool:
        if not self._own(event):
            return True
        jids = self._jids(event)
        if jids is None:
            return True
        owner = event.to
        which = jids or None  # no item: unblock everything

        def stored(_: Any) -> None:
            self.use(owner, lambda old: self._unblocked(event, owner, old, which))

        d = self.run_in_db(self.store.unblock, owner.user, owner.host, which)
        d.addCallbacks(stored, self._write_failed, errbackArgs=(event,))
        return True

    def _over_limit(self, event: StanzaEvent) -> None:
        event.reply_error("policy-violation",
                          f"a blocklist holds at most {self.limit} items")

    @staticmethod
    def _write_failed(failure: Failure, event: StanzaEvent) -> None:
        log.failure("could not change the blocklist of {owner}", failure,
                    owner=str(event.to))
        event.reply_error("internal-server-error")

    def _blocked(self, event: StanzaEvent, owner: JID, old: Items | None,
                 jids: list[str]) -> None:
        old = old or frozenset()
        added = frozenset(jids) - old

        def work(roster: Any) -> None:
            # 3.3: unavailable first, while the contact is not yet blocked
            for target in self._presence_targets(owner, roster, _SEES_USER, added):
                self.server.presence.send_unavailable_to(owner, target)
            self._changed(event, owner, old | frozenset(jids), "block", jids)

        self._with_roster(owner, work)

    def _unblocked(self, event: StanzaEvent, owner: JID, old: Items | None,
                   jids: list[str] | None) -> None:
        old = old or frozenset()
        removed = old if jids is None else old & frozenset(jids)
        self._changed(event, owner, old - removed, "unblock", jids or [])

        def work(roster: Any) -> None:
            # 3.4: the contacts see the user again, and the user them
            now = self._cache.get(owner, frozenset())
            for target in self._presence_targets(owner, roster, _SEES_USER, removed):
                if not matches(now, JID.parse(target)):
                    self.server.presence.send_current_to(owner, target)
            for target in self._presence_targets(owner, roster, _USER_SEES, removed):
                if not matches(now, JID.parse(target)):
                    probe = etree.Element(f"{{{ns.CLIENT}}}presence", nsmap={None: ns.CLIENT},
                                          type="probe")
                    probe.set("from", str(owner))
                    probe.set("to", str(JID.parse(target).bare))
                    self.server.router.route(probe)

        self._with_roster(owner, work)

    def _with_roster(self, owner: JID, work: Callable[[Any], Any]) -> None:
        rosters = getattr(self.server, "rosters", None)
        if rosters is None or getattr(self.server, "presence", None) is None:
            work(None)  # no IM services running: only the blocklist changes
        else:
            rosters.use(owner, work)

    def _presence_targets(self, owner: JID, roster: Any, subscriptions: tuple[str, ...],
                          items: Iterable[str]) -> list[str]:
        """The contacts (bare JIDs, or the blocked full JIDs of contacts)
        with one of C{subscriptions} that C{items} match."""
        items = frozenset(items)
        if roster is None or not items:
            return []
        targets: list[str] = []
        for contact in roster.contacts(*subscriptions):
            try:
                jid = JID.parse(contact)
            except InvalidJID:
                continue
            if matches(items, jid):
                targets.append(contact)
            else:
                targets.extend(i for i in sorted(items)
                               if i.startswith(contact + "/"))
        if subscriptions == _SEES_USER:
            for stream in self.registry.resources(owner):
                for directed in getattr(stream, "directed", ()):
                    try:
                        if directed not in targets and matches(items, JID.parse(directed)):
                            targets.append(directed)
                    except InvalidJID:
                        continue
        return targets

    def _changed(self, event: StanzaEvent, owner: JID, items: Items, action: str,
                 jids: list[str]) -> None:
        """Keep the new blocklist, answer, push to the interested resources."""
        if owner in self._cache or self.registry.resources(owner):
            self._cache[owner] = items
        event.reply(iq_result(event.stanza))
        for stream in self.registry.resources(owner):
            if stream not in self.interested:
                continue
            push = etree.Element(f"{{{ns.CLIENT}}}iq", nsmap={None: ns.CLIENT},
                                 type="set", id="push-" + secrets.token_hex(6))
            push.set("from", str(owner))
            push.set("to", str(stream.jid))
            payload = etree.SubElement(push, f"{{{BLOCKING}}}{action}",
                                       nsmap={None: BLOCKING})
            for jid in jids:
                etree.SubElement(payload, _ITEM, jid=jid)
            stream.deliver(push)


def install(server: Any) -> None:
    server.blocking = Blocking(server)
    server.blocking.install()


FEATURE = Feature(
    name="blocking", spec="XEP-0191", version="1.3",
    disco_features=(BLOCKING,), install=install,
)
