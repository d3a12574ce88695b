# -*- test-case-name: tests.test_pep_bookmarks -*-
"""
XEP-0402: PEP Native Bookmarks, with XEP-0048 compatibility (the
C{urn:xmpp:bookmarks:1#compat} feature, in the manner of XEP-0411).

The C{urn:xmpp:bookmarks:1} PEP node (one item per room, the room's JID
as item id, private: whitelist access) is the only copy.  Private XML
storage of C{<storage xmlns='storage:bookmarks'/>} (XEP-0049, what
XEP-0048 clients use) is served from it: a get renders the node's items
as XEP-0048 conferences; a set publishes the conferences that are new or
changed (an unchanged one keeps its item, extensions included) and
retracts, with notifications, the rooms no longer listed.  So an old
client and a new one see the same bookmarks, and every change reaches
the new clients as PEP notifications.  What XEP-0402 cannot hold, the
XEP-0048 C{<url/>} bookmarks (and any other non-conference child), is
kept in the account's private XML storage under the same key and given
back after the conferences.  XEP-0048 version 1.1's PEP node
C{storage:bookmarks} (the whole list as item C{current}, the
C{#compat-pep} feature) is served from the same node the same way, and
resources that want C{storage:bookmarks+notify} get the whole list after
every change (one notification per XEP-0048 write).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from lxml import etree
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.pep.nodeconfig import NodeConfig
from convergence.xmpp.pep.private import PRIVATE
from convergence.xmpp.pep.service import EVENT, PUBSUB, PubsubError
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

__all__ = [
    "BOOKMARKS",
    "FEATURE",
    "LEGACY",
    "LEGACY_FEATURE",
    "Bookmarks",
    "from_legacy",
    "legacy_rest",
    "to_legacy",
]

BOOKMARKS = "urn:xmpp:bookmarks:1"
LEGACY = "storage:bookmarks"
_CONFERENCE = f"{{{BOOKMARKS}}}conference"
_LEGACY_CONFERENCE = f"{{{LEGACY}}}conference"
LEGACY_NOTIFY = f"{LEGACY}+notify"
_TRUE = ("1", "true")

log = Logger()


def node_config(max_items: int) -> NodeConfig:
    """XEP-0402 section 5.2's configuration of the bookmarks node."""
    return NodeConfig(access_model="whitelist", max_items=max_items, persist_items=True,
                      send_last_published_item="never")


def _text(element: etree._Element | None, tag: str) -> str | None:
    child = element.find(tag) if element is not None else None
    return child.text or "" if child is not None else None


def _key(conference: etree._Element) -> tuple:
    """What XEP-0048 can express of a bookmark (to see whether it changed)."""
    namespace = etree.QName(conference).namespace
    return (conference.get("name"), (conference.get("autojoin") or "false") in _TRUE,
            _text(conference, f"{{{namespace}}}nick"),
            _text(conference, f"{{{namespace}}}password"))


def to_legacy(items: list[tuple[str, etree._Element]]) -> etree._Element:
    """The XEP-0048 C{<storage/>} of XEP-0402 items."""
    storage = etree.Element(f"{{{LEGACY}}}storage", nsmap={None: LEGACY})
    for room, conference in items:
        if conference.tag != _CONFERENCE:
            continue
        name, autojoin, nick, password = _key(conference)
        out = etree.SubElement(storage, _LEGACY_CONFERENCE, jid=room)
        if name is not None:
            out.set("name", name)
        out.set("autojoin", "true" if autojoin else "false")
        if nick is not None:
            etree.SubElement(out, f"{{{LEGACY}}}nick").text = nick
        if password is not None:
            etree.SubElement(out, f"{{{LEGACY}}}password").text = password
    return storage


def legacy_rest(storage: etree._Element) -> etree._Element | None:
    """The children of a XEP-0048 C{<storage/>} that are not conferences
    (C{<url/>} bookmarks, extensions), as a C{<storage/>}; None if none."""
    rest = etree.Element(f"{{{LEGACY}}}storage", nsmap={None: LEGACY})
    for child in storage:
        if isinstance(child.tag, str) and child.tag != _LEGACY_CONFERENCE:
            rest.append(deepcopy(child))
    return rest if len(rest) else None


def from_legacy(storage: etree._Element) -> dict[str, etree._Element]:
    """Room JID -> XEP-0402 C{<conference/>} of a XEP-0048 C{<storage/>}
    (conferences without a valid room JID are left out; the rest is
    L{legacy_rest}'s)."""
    out: dict[str, etree._Element] = {}
    for conference in storage.findall(_LEGACY_CONFERENCE):
        try:
            room = str(JID.parse(conference.get("jid", "")))
        except InvalidJID:
            continue
        name, autojoin, nick, password = _key(conference)
        new = etree.Element(_CONFERENCE, nsmap={None: BOOKMARKS})
        if name is not None:
            new.set("name", name)
        new.set("autojoin", "true" if autojoin else "false")
        if nick is not None:
            etree.SubElement(new, f"{{{BOOKMARKS}}}nick").text = nick
        if password is not None:
            etree.SubElement(new, f"{{{BOOKMARKS}}}password").text = password
        out[room] = new
    return out


class Bookmarks:
    """Private XML C{storage:bookmarks} served from the PEP node."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.pep = server.pep
        #: owners whose node a XEP-0048 write is changing (one broadcast after)
        self._syncing: set[JID] = set()

    def install(self) -> None:
        self.server.private.claims[(LEGACY, "storage")] = self.on_private
        hook = self.server.router.hook_iq
        hook("set", "bare", PUBSUB, "pubsub", self.on_legacy_set, 1)
        hook("get", "bare", PUBSUB, "pubsub", self.on_legacy_get, 1)
        for name in ("pep/published", "pep/retracted", "pep/purged", "pep/deleted"):
            self.server.bus.hook(name, self.on_change)
        # private even when a client's first publish forgets publish-options;
        # the same for the XEP-0048 (version 1.1) PEP node
        private = node_config(self.server.config.pep_max_items)
        self.pep.node_defaults[BOOKMARKS] = private
        self.pep.node_defaults[LEGACY] = private

    # XEP-0048 version 1.1 notifications (the whole list, item 'current')
    def on_change(self, event: Any) -> bool:
        if event.node == BOOKMARKS and event.owner not in self._syncing:
            self.legacy_broadcast(event.owner)
        return False

    def legacy_broadcast(self, owner: JID) -> None:
        """Send the bookmarks as XEP-0048 storage to the owner's resources
        that want C{storage:bookmarks} notifications."""
        streams = [s for s in self.server.registry.present(owner)
                   if LEGACY_NOTIFY in (getattr(s, "client_features", None) or ())]
        if not streams:
            return

        def send(storage: etree._Element) -> None:
            item = etree.Element(f"{{{EVENT}}}item", id="current")
            item.append(storage)
            for stream in streams:
                if stream.jid is not None:
                    self.pep.send_event(owner, stream.jid, LEGACY, "items", item)

        self.legacy_storage(owner).addCallbacks(
            send, lambda f: log.failure("legacy bookmarks notification failed", f))

    def legacy_storage(self, owner: JID) -> Deferred:
        """The owner's bookmarks as one XEP-0048 C{<storage/>}: the PEP
        node's conferences, then the kept non-conference children."""
        store = self.server.private.store
        rest = self.server.run_in_db(store.private_data, owner.user, owner.host,
                                     LEGACY, "storage")

        def combine(data: bytes | None,
                    items: list[tuple[str, etree._Element]]) -> etree._Element:
            storage = to_legacy(items)
            if data:
                try:
                    kept = etree.fromstring(data)
                except etree.XMLSyntaxError:
                    log.error("unreadable kept XEP-0048 bookmarks of {owner}",
                              owner=str(owner))
                else:
                    storage.extend(list(kept))
            return storage

        return rest.addCallback(lambda data: self.pep.items(owner, BOOKMARKS).addCallback(
            lambda items: combine(data, items)))

    # XEP-0048 version 1.1: the whole list as one item of a PEP node
    def on_legacy_set(self, event: StanzaEvent) -> bool:
        publish = event.stanza[0].find(f"{{{PUBSUB}}}publish")
        if publish is None or publish.get("node") != LEGACY:
            return False
        if event.origin is None or event.to != event.sender.bare:
            event.reply_error("forbidden", "only the account's own bookmarks")
            return True
        storage = publish.find(f"{{{PUBSUB}}}item/{{{LEGACY}}}storage")
        if storage is None:
            event.reply_error("bad-request", "a storage:bookmarks item carries <storage/>")
            return True

        def answer(_: Any) -> None:
            result = iq_result(event.stanza)
            pubsub = etree.SubElement(result, f"{{{PUBSUB}}}pubsub", nsmap={None: PUBSUB})
            out = etree.SubElement(pubsub, f"{{{PUBSUB}}}publish", node=LEGACY)
            etree.SubElement(out, f"{{{PUBSUB}}}item", id="current")
            event.reply(result)

        self.store_legacy(event.to.bare, storage).addCallbacks(
            answer, self._failed, errbackArgs=(event,))
        return True

    def on_legacy_get(self, event: StanzaEvent) -> bool:
        items = event.stanza[0].find(f"{{{PUBSUB}}}items")
        if items is None or items.get("node") != LEGACY:
            return False
        if event.origin is None or event.to != event.sender.bare:
            self.server.router.bounce(event.stanza, self.pep.refusal("whitelist"))
            return True

        def answer(storage: etree._Element) -> None:
            result = iq_result(event.stanza)
            pubsub = etree.SubElement(result, f"{{{PUBSUB}}}pubsub", nsmap={None: PUBSUB})
            out = etree.SubElement(pubsub, f"{{{PUBSUB}}}items", node=LEGACY)
            etree.SubElement(out, f"{{{PUBSUB}}}item", id="current").append(storage)
            event.reply(result)

        self.legacy_storage(event.to.bare).addCallbacks(
            answer, self._failed, errbackArgs=(event,))
        return True

    def on_private(self, event: StanzaEvent, element: etree._Element) -> None:
        owner = event.to.bare
        if event.type == "get":
            d = self.legacy_storage(owner)

            def answer(storage: etree._Element) -> None:
                result = iq_result(event.stanza)
                query = etree.SubElement(result, f"{{{PRIVATE}}}query", nsmap={None: PRIVATE})
                query.append(storage)
                event.reply(result)
        else:
            d = self.store_legacy(owner, element)

            def answer(_: Any) -> None:
                event.reply(iq_result(event.stanza))

        d.addCallbacks(answer, self._failed, errbackArgs=(event,))

    def store_legacy(self, owner: JID, storage: etree._Element) -> Deferred:
        """Make the PEP node hold exactly the conferences of C{storage}, and
        keep the rest (L{legacy_rest}) in private storage."""
        wanted = from_legacy(storage)
        config = node_config(self.server.config.pep_max_items)
        if len(wanted) > config.max_items:
            return fail(PubsubError("not-acceptable",
                                    text=f"at most {config.max_items} bookmarks"))
        rest = legacy_rest(storage)
        data = etree.tostring(rest) if rest is not None else None
        limits = self.server.config
        if data is not None and len(data) > limits.private_max_size:
            return fail(PubsubError("not-acceptable", text=f"bookmarks other than rooms"
                                    f" take at most {limits.private_max_size} bytes"))
        self._syncing.add(owner)

        def synced(result: Any) -> Any:
            self._syncing.discard(owner)
            self.legacy_broadcast(owner)
            return result

        d = self.server.run_in_db(self.server.private.store.set_private_data, owner.user,
                                  owner.host, [(LEGACY, "storage", data)],
                                  limits.private_max_elements)

        def kept(ok: bool) -> Deferred:
            if not ok:
                raise PubsubError("resource-constraint",
                                  text="the account holds too many private elements")
            return self.pep.ensure(owner, BOOKMARKS, config)

        d.addCallback(kept)
        d.addCallback(lambda _: self.pep.items(owner, BOOKMARKS))

        def apply(current_items: list[tuple[str, etree._Element]]) -> Deferred:
            current = dict(current_items)
            step = succeed(None)
            for room, conference in wanted.items():
                old = current.get(room)
                if old is not None and old.tag == _CONFERENCE and _key(old) == _key(conference):
                    continue
                step.addCallback(lambda _, r=room, c=conference:
                                 self.pep.publish(owner, BOOKMARKS, c, r))
            for room in current:
                if room not in wanted:
                    step.addCallback(lambda _, r=room:
                                     self.pep.retract(owner, BOOKMARKS, r, notify=True))
            return step

        return d.addCallback(apply).addBoth(synced)

    @staticmethod
    def _failed(failure: Failure, event: StanzaEvent) -> None:
        if failure.check(PubsubError):
            event.reply_error(failure.value.condition, failure.value.text)
            return
        log.failure("bookmarks conversion failed", failure)
        event.reply_error("internal-server-error")


def install(server: Any) -> None:
    server.bookmarks = Bookmarks(server)
    server.bookmarks.install()


FEATURE = Feature(
    name="bookmarks", spec="XEP-0402", version="1.2.0",
    account_features=(f"{BOOKMARKS}#compat", f"{BOOKMARKS}#compat-pep"), install=install,
)

#: XEP-0048 through private XML storage (served from the XEP-0402 node)
LEGACY_FEATURE = Feature(
    name="bookmarks-legacy", spec="XEP-0048", version="1.2",
    note="conferences served from the XEP-0402 node through XEP-0049 private storage"
         " and the storage:bookmarks PEP node; URL bookmarks kept in private storage",
)
