# -*- test-case-name: tests.test_pep_remote -*-
"""
Implied PEP subscriptions of contacts on other servers (XEP-0163 sections
4 and 6 across federation).

Presence from a remote full JID to a local account (it arrives over s2s,
with no origin stream) carrying XEP-0115 caps is resolved as the local
caps module does for its clients: from the caps cache by C{(hash, ver)},
or by a disco#info query to that remote full JID (from the account's
domain, through the router, so over s2s), whose answer must hash to the
advertised C{ver} (section 5.4) before it is trusted and cached.  At most
C{xmpp.caps_remote_max_queries} such queries are outstanding; each times
out after C{xmpp.caps_query_timeout} seconds.

What a remote resource wants (its C{+notify} features) is remembered per
local account it sent presence to, until it sends unavailable (or a
presence error); the presence module keeps no other state of remote
resources (a lost s2s link sends nothing), nor does this module.  PEP
asks L{RemotePresences.present} for the remote resources of a contact
whose roster subscription lets it see the owner (C{from}/C{both}), so a
remote JID without that subscription is never notified; blocked JIDs are
filtered where every event is sent.  On the first presence whose
C{+notify} is known, the resource gets the last items it wants
(XEP-0163 4.3.1).
"""

from __future__ import annotations

import secrets
from typing import Any

from lxml import etree
from twisted.logger import Logger

from convergence.xmpp import ns
from convergence.xmpp.features.caps import HASHES, IllFormed, parse_info, ver
from convergence.xmpp.jid import JID
from convergence.xmpp.pep.service import notify_nodes
from convergence.xmpp.router import StanzaEvent

log = Logger()

_C = f"{{{ns.CAPS}}}c"
_QUERY = f"{{{ns.DISCO_INFO}}}query"
#: roster subscriptions under which a contact sees the owner's presence
_SEES_OWNER = ("from", "both")


class RemoteResource:
    """A remote full JID as PEP sees a resource: C{jid},
    C{client_features}, C{presence}, C{priority}."""

    def __init__(self, jid: JID) -> None:
        self.jid = jid
        self.client_features: frozenset[str] | None = None
        self.presence: etree._Element | None = None
        self.priority = 0
        #: the (hash, node, ver) advertised last
        self.advertised: tuple[str, str, str] | None = None


class RemotePresences:
    """Remote resources available to local accounts, with their caps."""

    def __init__(self, server: Any, service: Any) -> None:
        self.server = server
        self.service = service
        self.router = server.router
        self.timeout = server.config.caps_query_timeout
        self.max_queries = server.config.caps_remote_max_queries
        #: owner (bare) → remote full JID → the resource
        self.by_owner: dict[JID, dict[JID, RemoteResource]] = {}
        #: query id → (owner, resource, advertised, timeout call)
        self.pending: dict[str, tuple[JID, RemoteResource, tuple[str, str, str], Any]] = {}

    def install(self) -> None:
        bus = self.server.bus
        bus.hook("presence/bare", self.on_presence, 30)
        bus.hook("presence/full", self.on_presence, 30)
        bus.hook("iq/host", self.on_answer, 11)

    def present(self, owner: JID, contact: JID) -> list[RemoteResource]:
        """The resources of remote bare JID C{contact} available to C{owner}."""
        return [r for jid, r in self.by_owner.get(owner, {}).items()
                if jid.bare == contact]

    # Presence
    def on_presence(self, event: StanzaEvent) -> bool:
        sender = event.sender
        if (event.origin is not None or sender.resource is None
                or self.router.is_local(sender.host) or event.to.user is None):
            return False
        owner = event.to.bare
        if event.type in ("unavailable", "error"):
            self._gone(owner, sender)
            return False
        if event.type is not None:
            return False
        resources = self.by_owner.setdefault(owner, {})
        resource = resources.get(sender)
        if resource is None:
            resource = resources[sender] = RemoteResource(sender)
        resource.presence = event.stanza
        c = event.stanza.find(_C)
        if c is None:
            return False  # no annotation: what was known stays
        hash_name, node, ver_ = c.get("hash"), c.get("node"), c.get("ver")
        if not hash_name or not node or not ver_ or hash_name not in HASHES:
            return False  # legacy or unverifiable caps: not trusted
        advertised = (hash_name, node, ver_)
        if resource.advertised == advertised:
            return False
        resource.advertised = advertised
        caps = getattr(self.server, "caps", None)
        known = caps.cache.get((hash_name, ver_)) if caps is not None else None
        if known is not None:
            caps.cache.move_to_end((hash_name, ver_))
            self._apply(owner, resource, known)
        else:
            self._query(owner, resource, advertised)
        return False  # delivered to the account's clients as ever

    def _gone(self, owner: JID, jid: JID) -> None:
        resources = self.by_owner.get(owner)
        resource = resources.pop(jid, None) if resources else None
        if resources is not None and not resources:
            del self.by_owner[owner]
        if resource is None:
            return
        resource.presence = None
        self.service.session_ended(resource)
        for query_id, entry in list(self.pending.items()):
            if entry[1] is resource:
                del self.pending[query_id]
                if entry[3].active():
                    entry[3].cancel()

    # Caps queries
    def _query(self, owner: JID, resource: RemoteResource,
               advertised: tuple[str, str, str]) -> None:
        if len(self.pending) >= self.max_queries:
            log.info("caps of {jid} not asked: {n} queries outstanding",
                     jid=str(resource.jid), n=len(self.pending))
            return
        _, node, ver_ = advertised
        query_id = "rcaps-" + secrets.token_hex(8)
        iq = etree.Element(f"{{{ns.CLIENT}}}iq", nsmap={None: ns.CLIENT})
        iq.set("type", "get")
        iq.set("id", query_id)
        iq.set("from", owner.host)
        iq.set("to", str(resource.jid))
        etree.SubElement(iq, _QUERY, nsmap={None: ns.DISCO_INFO}).set(
            "node", f"{node}#{ver_}")
        call = self.server.clock.callLater(self.timeout, self.pending.pop, query_id, None)
        self.pending[query_id] = (owner, resource, advertised, call)
        self.router.route(iq)

    def on_answer(self, event: StanzaEvent) -> bool:
        if event.kind != "iq" or event.type not in ("result", "error"):
            return False
        query_id = event.stanza.get("id", "")
        entry = self.pending.get(query_id)
        if entry is None:
            return False
        owner, resource, advertised, call = entry
        if event.sender != resource.jid:
            return False  # not from the resource asked
        del self.pending[query_id]
        if call.active():
            call.cancel()
        query = event.stanza.find(_QUERY) if event.type == "result" else None
        if query is None:
            return True
        hash_name, _, ver_ = advertised
        try:
            info = parse_info(query)
        except IllFormed as e:
            log.info("caps of {jid}: ill-formed disco#info ({why})",
                     jid=str(resource.jid), why=str(e))
            return True
        if ver(info, hash_name) != ver_:
            log.info("caps of {jid}: disco#info does not hash to {ver}",
                     jid=str(resource.jid), ver=ver_)
            return True
        features = frozenset(info.features)
        caps = getattr(self.server, "caps", None)
        if caps is not None:
            caps._cache((hash_name, ver_), features)
        if resource.advertised == advertised and resource.presence is not None:
            self._apply(owner, resource, features)
        return True

    def _apply(self, owner: JID, resource: RemoteResource,
               features: frozenset[str]) -> None:
        resource.client_features = features
        wanted = notify_nodes(features)
        if wanted:
            self.server.rosters.use(owner, lambda roster: self._offer(
                owner, resource, wanted, roster))

    def _offer(self, owner: JID, resource: RemoteResource, wanted: set[str],
               roster: Any) -> None:
        """XEP-0163 4.3.1: the last items, if the contact sees the owner."""
        item = roster.items.get(str(resource.jid.bare)) if roster is not None else None
        if item is None or item.subscription not in _SEES_OWNER:
            return
        service = self.service
        service.run(owner, lambda nodes: service._last_to(
            owner, nodes, resource, wanted)).addErrback(
            lambda f: log.failure("sending last PEP items failed", f))
