# -*- test-case-name: tests.test_pep -*-
"""
The PEP service of every account (XEP-0163 on the XEP-0060 subset it
needs): nodes, items, access models, notifications.

L{PepService} owns the nodes' configurations of the accounts in use
(cached, written through to the L{IPepStore} on the database thread) and
runs the work on one account's nodes in arrival order.  Operations take
an C{actor}: the requesting JID, or C{None} for the server itself (which
may do anything); they return Deferreds failing with L{PubsubError}.

Who gets notified: the owner's available resources and those of contacts
the node's access model allows (C{presence}: subscription C{from} or
C{both}), in each case only resources whose client advertised
C{<node>+notify} (XEP-0115 features in C{stream.client_features}; a
stream without known features gets none).  Contacts of other domains are
not notified (no caps of remote resources yet).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from weakref import WeakKeyDictionary

from lxml import etree
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp import ns
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.pep.nodeconfig import ConfigInvalid, NodeConfig

__all__ = ["EVENT", "PUBSUB", "PUBSUB_ERRORS", "PepChanged", "PepPublished", "PepService",
           "PubsubError", "notify_nodes"]

PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = "http://jabber.org/protocol/pubsub#event"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
#: characters of a node name or an item id
MAX_NAME = 1023
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
#: roster subscriptions under which a contact sees the owner's presence
_SEES_OWNER = ("from", "both")

log = Logger()


class PubsubError(StanzaError):
    """A stanza error with XEP-0060's application condition (section 7)."""

    def __init__(self, condition: str, pubsub_condition: str | None = None,
                 text: str | None = None, feature: str | None = None) -> None:
        super().__init__(condition, text)
        self.pubsub_condition = pubsub_condition
        self.feature = feature

    def to_element(self, namespace: str = ns.CLIENT, by: str | None = None) -> etree._Element:
        error = super().to_element(namespace, by)
        if self.pubsub_condition:
            app = etree.SubElement(error, f"{{{PUBSUB_ERRORS}}}{self.pubsub_condition}",
                                   nsmap={None: PUBSUB_ERRORS})
            if self.feature:
                app.set("feature", self.feature)
        return error


#: what a refused requester is told, by access model (XEP-0060 6.5.9)
_REFUSALS = {
    "presence": ("not-authorized", "presence-subscription-required"),
    "roster": ("not-authorized", "not-in-roster-group"),
    "whitelist": ("not-allowed", "closed-node"),
}


@dataclass(frozen=True)
class PepPublished:
    """The bus event C{pep/published}: an item was published."""

    owner: JID
    node: str
    item_id: str
    item: etree._Element


@dataclass(frozen=True)
class PepChanged:
    """The bus events C{pep/retracted} (with the item id), C{pep/purged}
    and C{pep/deleted}."""

    owner: JID
    node: str
    item_id: str | None = None


def notify_nodes(features: Iterable[str] | None) -> set[str]:
    """The nodes a client wants notifications of (C{<node>+notify})."""
    if not features:
        return set()
    return {f[:-7] for f in features if f.endswith("+notify") and len(f) > 7}


def _interested(stream: Any, node: str) -> bool:
    features = getattr(stream, "client_features", None)
    return bool(features) and f"{node}+notify" in features


class PepService:
    """Every account's PEP nodes on one server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.store = server.pep_store
        self.run_in_db = server.run_in_db
        self.router = server.router
        self.registry = server.registry
        #: bytes of one item's payload, by node, or the name of the
        #: XmppConfig key that says (others: pep_max_item_size)
        self.item_limits: dict[str, int | str] = {}
        #: a new node's configuration, by node (others: PEP's defaults);
        #: private nodes such as bookmarks stay private this way even
        #: when a client forgets its publish-options
        self.node_defaults: dict[str, NodeConfig] = {}
        self._nodes: dict[JID, dict[str, NodeConfig]] = {}
        #: items of nodes with persist_items false, in memory, oldest first
        self._volatile: dict[tuple[JID, str], list[tuple[str, bytes]]] = {}
        self._tails: dict[JID, Deferred] = {}
        #: (owner, node) whose last item a resource was sent this session
        self._sent: WeakKeyDictionary[Any, set[tuple[JID, str]]] = WeakKeyDictionary()
        #: the nodes whose last items were looked for, per resource
        self._offered: WeakKeyDictionary[Any, frozenset[str]] = WeakKeyDictionary()

    # Limits
    @property
    def config(self) -> Any:
        return self.server.config

    @property
    def max_items(self) -> int:
        return self.config.pep_max_items

    def item_limit(self, node: str) -> int:
        """Bytes one item's payload may take on C{node}."""
        limit = self.item_limits.get(node, "pep_max_item_size")
        return getattr(self.config, limit) if isinstance(limit, str) else limit

    def default(self, node: str) -> NodeConfig:
        """The configuration C{node} gets when it is created."""
        return self.node_defaults.get(node) or NodeConfig()

    # Per-owner order and the node cache
    def run(self, owner: JID, work: Callable[[dict[str, NodeConfig]], Any]) -> Deferred:
        """
        Run C{work(nodes)} on C{owner}'s nodes (name -> configuration,
        changed in place by the work) after the work queued before it.
        """
        done: Deferred = Deferred()
        gate: Deferred = Deferred()
        previous = self._tails.get(owner)
        self._tails[owner] = gate

        def finish(result: Any) -> None:
            # the caller's callbacks (notifications …) run before the next
            # work starts, so events go out in the order of the changes
            last = self._tails.get(owner) is gate
            if last:
                del self._tails[owner]
            if isinstance(result, Failure):
                done.errback(result)
            else:
                done.callback(result)
            gate.callback(None)
            if last:
                self._release(owner)

        def go(_: Any = None) -> None:
            d = self._load(owner)
            d.addCallback(work)
            d.addBoth(finish)

        if previous is None:
            go()
        else:
            previous.addCallback(go)
        return done

    def _load(self, owner: JID) -> Deferred:
        nodes = self._nodes.get(owner)
        if nodes is not None:
            return succeed(nodes)

        def loaded(rows: list[tuple[str, dict]]) -> dict[str, NodeConfig]:
            return self._nodes.setdefault(
                owner, {name: NodeConfig.from_dict(c) for name, c in rows})

        return self.run_in_db(self.store.pep_nodes, owner.user, owner.host).addCallback(loaded)

    def _release(self, owner: JID) -> None:
        """Forget the cached nodes of an owner with no resource bound."""
        if owner not in self._tails and not self.registry.resources(owner):
            self._nodes.pop(owner, None)

    def forget(self, owner: JID) -> None:
        """Called when the owner's last resource is gone."""
        self._release(owner)

    def account_removed(self, owner: JID) -> None:
        """The account is gone with its stored nodes: drop what is in memory."""
        self._nodes.pop(owner, None)
        for key in [k for k in self._volatile if k[0] == owner]:
            del self._volatile[key]

    # Access
    def _roster(self, owner: JID) -> Deferred:
        d: Deferred = Deferred()
        self.server.rosters.use(owner, d.callback)
        return d

    def may_read(self, owner: JID, actor: JID | None, config: NodeConfig) -> Deferred:
        """Deferred: C{None} if C{actor} may retrieve the node's items,
        else the access model that refuses it."""
        if actor is None or actor.bare == owner or config.access_model == "open":
            return succeed(None)
        if config.access_model == "whitelist":
            return succeed("whitelist")

        def decide(roster: Any) -> str | None:
            item = roster.items.get(str(actor.bare)) if roster is not None else None
            if config.access_model == "presence":
                ok = item is not None and item.subscription in _SEES_OWNER
            else:  # roster
                ok = (item is not None and item.listed
                      and bool(set(item.groups) & set(config.roster_groups_allowed)))
            return None if ok else config.access_model

        return self._roster(owner).addCallback(decide)

    @staticmethod
    def refusal(model: str) -> PubsubError:
        condition, pubsub_condition = _REFUSALS[model]
        return PubsubError(condition, pubsub_condition)

    @staticmethod
    def _own(owner: JID, actor: JID | None) -> None:
        if actor is not None and actor.bare != owner:
            raise PubsubError("forbidden", text="only the account owner may do this")

    # Operations
    def publish(self, owner: JID, node: str, item: etree._Element,
                item_id: str | None = None, options: dict[str, list[str]] | None = None,
                actor: JID | None = None) -> Deferred:
        """
        Publish C{item} (the payload element) on C{owner}'s C{node},
        creating the node (with C{options} applied) if needed.  Deferred:
        the item id (C{current} on single-item nodes unless given).
        """
        try:
            self._own(owner, actor)
            _check_name(node, "node")
            if item_id is not None:
                _check_name(item_id, "item id")
            payload = etree.tostring(item)
            if len(payload) > self.item_limit(node):
                raise PubsubError("not-acceptable", "payload-too-big",
                                  f"items on this node take at most"
                                  f" {self.item_limit(node)} bytes")
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            config = nodes.get(node)
            if config is None:
                try:
                    config = self.default(node).with_fields(options or {},
                                                            self.max_items)
                except ConfigInvalid as e:
                    raise PubsubError("conflict", "precondition-not-met", str(e)) from None
                d = self._create(owner, nodes, node, config)
            else:
                if options:
                    field = config.mismatch(options, self.max_items)
                    if field is not None:
                        raise PubsubError("conflict", "precondition-not-met",
                                          f"the node's {field} differs")
                d = succeed(None)
            new_id = item_id or ("current" if config.max_items == 1
                                 else secrets.token_hex(8))
            d.addCallback(lambda _: self._put(owner, node, config, new_id, payload))
            d.addCallback(lambda _: (new_id, config))
            return d

        def published(result: tuple[str, NodeConfig]) -> str:
            new_id, config = result
            self._notify_items(owner, node, config, new_id, item)
            self.server.bus.fire("pep/published", PepPublished(owner, node, new_id, item))
            return new_id

        return self.run(owner, work).addCallback(published)

    def create(self, owner: JID, node: str, options: dict[str, list[str]] | None = None,
               actor: JID | None = None) -> Deferred:
        """Create a node (C{conflict} if it exists)."""
        try:
            self._own(owner, actor)
            _check_name(node, "node")
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            if node in nodes:
                raise PubsubError("conflict", text="the node exists")
            try:
                config = self.default(node).with_fields(options or {}, self.max_items)
            except ConfigInvalid as e:
                raise PubsubError("not-acceptable", text=str(e)) from None
            return self._create(owner, nodes, node, config)

        return self.run(owner, work)

    def _create(self, owner: JID, nodes: dict[str, NodeConfig], node: str,
                config: NodeConfig) -> Deferred:
        def created(ok: bool) -> None:
            if not ok:
                raise PubsubError("policy-violation", text="the account has too many nodes")
            nodes[node] = config

        return self.run_in_db(self.store.create_pep_node, owner.user, owner.host, node,
                              config.to_dict(), self.config.pep_max_nodes
                              ).addCallback(created)

    def _put(self, owner: JID, node: str, config: NodeConfig, item_id: str,
             payload: bytes) -> Deferred:
        if config.persist_items:
            return self.run_in_db(self.store.put_pep_item, owner.user, owner.host, node,
                                  item_id, payload, config.max_items)
        kept = [i for i in self._volatile.get((owner, node), []) if i[0] != item_id]
        kept.append((item_id, payload))
        self._volatile[(owner, node)] = kept[-config.max_items:]
        return succeed(None)

    def items(self, owner: JID, node: str, actor: JID | None = None,
              max_items: int | None = None, ids: list[str] | None = None,
              missing_ok: bool | None = None) -> Deferred:
        """
        Deferred: C{[(item id, payload element)]} of a node, oldest
        first.  For the server (C{actor} None) a missing node has no
        items; for a requester it is C{item-not-found}.
        """
        if missing_ok is None:
            missing_ok = actor is None

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            config = nodes.get(node)
            d = self.may_read(owner, actor, config or self.default(node))

            def allowed(refused: str | None) -> Any:
                if refused is not None:
                    raise self.refusal(refused)
                if config is None:
                    if missing_ok:
                        return []
                    raise PubsubError("item-not-found")
                return self._items(owner, node, config, max_items, ids)

            return d.addCallback(allowed)

        return self.run(owner, work).addCallback(_parsed)

    def _items(self, owner: JID, node: str, config: NodeConfig, limit: int | None,
               ids: list[str] | None) -> Deferred:
        if config.persist_items:
            return self.run_in_db(self.store.pep_items, owner.user, owner.host, node,
                                  limit, ids)
        kept = self._volatile.get((owner, node), [])
        if ids is not None:
            kept = [i for i in kept if i[0] in ids]
        if limit is not None:
            kept = kept[-limit:] if limit else []
        return succeed(list(kept))

    def retract(self, owner: JID, node: str, item_id: str, notify: bool = True,
                actor: JID | None = None) -> Deferred:
        """Delete one item; notify (C{<retract/>}) if C{notify} or the
        node's C{notify_retract} says so."""
        try:
            self._own(owner, actor)
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            config = nodes.get(node)
            if config is None:
                raise PubsubError("item-not-found", text="no such node")
            if config.persist_items:
                d = self.run_in_db(self.store.retract_pep_item, owner.user, owner.host,
                                   node, item_id)
            else:
                kept = self._volatile.get((owner, node), [])
                left = [i for i in kept if i[0] != item_id]
                self._volatile[(owner, node)] = left
                d = succeed(len(left) != len(kept))

            def done(existed: bool) -> None:
                if not existed:
                    raise PubsubError("item-not-found", text="no such item")
                if notify or config.notify_retract:
                    retract = etree.Element(f"{{{EVENT}}}retract", id=item_id)
                    self._notify(owner, node, config, "items", retract)
                self.server.bus.fire("pep/retracted", PepChanged(owner, node, item_id))

            return d.addCallback(done)

        return self.run(owner, work)

    def purge(self, owner: JID, node: str, actor: JID | None = None) -> Deferred:
        """Delete every item of a node (C{<purge/>} notified)."""
        return self._owner_op(owner, node, actor, self.store.purge_pep_node, "purge")

    def delete(self, owner: JID, node: str, actor: JID | None = None) -> Deferred:
        """Delete a node and its items (C{<delete/>} notified)."""
        return self._owner_op(owner, node, actor, self.store.delete_pep_node, "delete")

    def _owner_op(self, owner: JID, node: str, actor: JID | None, call: Any,
                  kind: str) -> Deferred:
        try:
            self._own(owner, actor)
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            config = nodes.get(node)
            if config is None:
                raise PubsubError("item-not-found", text="no such node")

            def done(_: Any) -> None:
                self._volatile.pop((owner, node), None)
                if kind == "delete":
                    nodes.pop(node, None)
                self._notify(owner, node, config, kind, None)
                self.server.bus.fire(f"pep/{kind}d", PepChanged(owner, node))

            return self.run_in_db(call, owner.user, owner.host, node).addCallback(done)

        return self.run(owner, work)

    def configuration(self, owner: JID, node: str | None,
                      actor: JID | None = None) -> Deferred:
        """Deferred: a node's L{NodeConfig} (the default one for C{None})."""
        try:
            self._own(owner, actor)
        except PubsubError as e:
            return fail(e)
        if node is None:
            return succeed(NodeConfig())

        def work(nodes: dict[str, NodeConfig]) -> NodeConfig:
            if node not in nodes:
                raise PubsubError("item-not-found", text="no such node")
            return nodes[node]

        return self.run(owner, work)

    def configure(self, owner: JID, node: str, fields: dict[str, list[str]],
                  actor: JID | None = None) -> Deferred:
        """Change a node's configuration by submitted fields."""
        try:
            self._own(owner, actor)
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            old = nodes.get(node)
            if old is None:
                raise PubsubError("item-not-found", text="no such node")
            try:
                new = old.with_fields(fields, self.max_items)
            except ConfigInvalid as e:
                raise PubsubError("not-acceptable", text=str(e)) from None
            return self._reconfigure(owner, nodes, node, old, new)

        return self.run(owner, work)

    def _reconfigure(self, owner: JID, nodes: dict[str, NodeConfig], node: str,
                     old: NodeConfig, new: NodeConfig) -> Deferred:
        key = (owner, node)
        if old.persist_items and not new.persist_items:
            # move what is kept into memory, so the last item survives
            d = self.run_in_db(self.store.pep_items, owner.user, owner.host, node,
                               new.max_items, None)
            d.addCallback(lambda kept: self._volatile.__setitem__(key, kept))
            d.addCallback(lambda _: self.run_in_db(self.store.purge_pep_node,
                                                   owner.user, owner.host, node))
        elif new.persist_items and not old.persist_items:
            kept = self._volatile.pop(key, [])[-new.max_items:]
            d = succeed(None)
            for item_id, payload in kept:
                d.addCallback(lambda _, i=item_id, p=payload: self.run_in_db(
                    self.store.put_pep_item, owner.user, owner.host, node, i, p,
                    new.max_items))
        else:
            if key in self._volatile:
                self._volatile[key] = self._volatile[key][-new.max_items:]
            d = succeed(None)
        d.addCallback(lambda _: self.run_in_db(self.store.configure_pep_node, owner.user,
                                               owner.host, node, new.to_dict(),
                                               new.max_items))
        d.addCallback(lambda _: nodes.__setitem__(node, new))
        return d

    def ensure(self, owner: JID, node: str, config: NodeConfig) -> Deferred:
        """As the server: create C{node} with C{config}, or reconfigure it
        to C{config} (bookmarks keep their node private this way)."""

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            old = nodes.get(node)
            if old is None:
                return self._create(owner, nodes, node, config)
            if old == config:
                return succeed(None)
            return self._reconfigure(owner, nodes, node, old, config)

        return self.run(owner, work)

    def visible_nodes(self, owner: JID, actor: JID) -> Deferred:
        """Deferred: C{[(node, configuration)]} the actor may see, by name."""

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            listed = sorted(nodes.items())
            checks = [self.may_read(owner, actor, c) for _, c in listed]
            d = succeed(None)
            results: list[tuple[str, NodeConfig]] = []
            for (name, config), check in zip(listed, checks):
                d.addCallback(lambda _, c=check: c)
                d.addCallback(lambda refused, n=name, c=config:
                              results.append((n, c)) if refused is None else None)
            return d.addCallback(lambda _: results)

        return self.run(owner, work)

    # Notifications
    def _notify_items(self, owner: JID, node: str, config: NodeConfig, item_id: str,
                      payload: etree._Element) -> None:
        item = etree.Element(f"{{{EVENT}}}item", id=item_id)
        item.append(copy.deepcopy(payload))
        self._notify(owner, node, config, "items", item)

    def _notify(self, owner: JID, node: str, config: NodeConfig, kind: str,
                child: etree._Element | None) -> None:
        """Send C{<event><kind node>child</kind></event>} to every
        interested resource allowed to see the node."""

        def send(streams: list[Any]) -> None:
            for stream in streams:
                self._sent.setdefault(stream, set()).add((owner, node))
                self.send_event(owner, stream.jid, node, kind, child)

        self.recipients(owner, node, config).addCallback(send).addErrback(
            lambda f: log.failure("PEP notification of {owner} {node} failed", f,
                                  owner=str(owner), node=node))

    def recipients(self, owner: JID, node: str, config: NodeConfig) -> Deferred:
        """Deferred: the available streams to notify of C{node}'s changes."""
        own = [s for s in self.registry.present(owner) if _interested(s, node)]
        if config.access_model == "whitelist":
            return succeed(own)

        def contacts(roster: Any) -> list[Any]:
            streams = list(own)
            if roster is None:
                return streams
            for contact, item in roster.items.items():
                # implied subscriptions are presence subscriptions, whatever
                # the model; the roster model narrows them to its groups
                if item.subscription not in _SEES_OWNER:
                    continue
                if config.access_model == "roster" and not (
                        item.listed and set(item.groups) & set(config.roster_groups_allowed)):
                    continue
                try:
                    jid = JID.parse(contact)
                except InvalidJID:
                    continue
                if not self.router.is_local(jid.host) or jid.bare == owner:
                    continue
                streams += [s for s in self.registry.present(jid.bare)
                            if _interested(s, node)]
            return streams

        return self._roster(owner).addCallback(contacts)

    def send_event(self, owner: JID, to: JID, node: str, kind: str,
                    child: etree._Element | None) -> None:
        message = etree.Element(f"{{{ns.CLIENT}}}message", nsmap={None: ns.CLIENT},
                                type="headline", id=secrets.token_hex(6))
        message.set("from", str(owner))
        message.set("to", str(to))
        event = etree.SubElement(message, f"{{{EVENT}}}event", nsmap={None: EVENT})
        container = etree.SubElement(event, f"{{{EVENT}}}{kind}", node=node)
        if child is not None:
            container.append(copy.deepcopy(child))
        self.router.route(message)

    # The last published item (XEP-0163 4.3.2, send_last_published_item)
    def offer_last(self, stream: Any) -> None:
        """Send C{stream} the last item of every node it newly wants
        (C{+notify}) of its own account and of the contacts whose
        presence it receives, where it may see it."""
        if stream.jid is None or getattr(stream, "presence", None) is None:
            return
        wanted = notify_nodes(getattr(stream, "client_features", None))
        # a presence update with the same interests has nothing new to send
        offered = self._offered.get(stream, frozenset())
        wanted -= offered
        if not wanted:
            return
        self._offered[stream] = offered | wanted
        user = stream.jid.bare

        def owners(roster: Any) -> None:
            found = [user]
            if roster is not None:
                for contact, item in roster.items.items():
                    if item.subscription not in ("to", "both"):
                        continue
                    try:
                        jid = JID.parse(contact)
                    except InvalidJID:
                        continue
                    if self.router.is_local(jid.host) and jid.bare != user:
                        found.append(jid.bare)
            for owner in found:
                self.run(owner, lambda nodes, o=owner: self._last_to(o, nodes, stream, wanted)
                         ).addErrback(lambda f: log.failure("sending last PEP items failed", f))

        self.server.rosters.use(user, owners)

    def offer_owner(self, owner: JID, contact: JID) -> None:
        """C{contact} was just allowed C{owner}'s presence (the implied
        subscription): its resources get the last items they want."""
        for stream in self.registry.present(contact):
            wanted = notify_nodes(getattr(stream, "client_features", None))
            if wanted and stream.jid is not None:
                self.run(owner, lambda nodes, s=stream, w=wanted: self._last_to(
                    owner, nodes, s, w)).addErrback(
                    lambda f: log.failure("sending last PEP items failed", f))

    def _last_to(self, owner: JID, nodes: dict[str, NodeConfig], stream: Any,
                 wanted: set[str]) -> Deferred:
        sent = self._sent.setdefault(stream, set())
        d = succeed(None)
        for node in sorted(wanted & set(nodes)):
            config = nodes[node]
            if config.send_last_published_item == "never" or (owner, node) in sent:
                continue
            sent.add((owner, node))
            d.addCallback(lambda _, n=node, c=config: self._last_one(owner, n, c, stream))
        return d

    def _last_one(self, owner: JID, node: str, config: NodeConfig, stream: Any) -> Deferred:
        def allowed(refused: str | None) -> Any:
            if refused is not None:
                self._sent.get(stream, set()).discard((owner, node))
                return None
            return self._items(owner, node, config, 1, None).addCallback(send)

        def send(items: list[tuple[str, bytes]]) -> None:
            if not items or stream.jid is None:
                return
            item_id, payload = items[-1]
            item = etree.Element(f"{{{EVENT}}}item", id=item_id)
            item.append(etree.fromstring(payload, _PARSER))
            self.send_event(owner, stream.jid, node, "items", item)

        return self.may_read(owner, stream.jid, config).addCallback(allowed)

    def session_ended(self, stream: Any) -> None:
        """A resource went unavailable: next time it gets last items again."""
        self._sent.pop(stream, None)
        self._offered.pop(stream, None)


def _check_name(name: str, what: str) -> None:
    if not name or len(name) > MAX_NAME:
        raise PubsubError("bad-request", "nodeid-required" if what == "node" else None,
                          f"a {what} needs 1 to {MAX_NAME} characters")


def _parsed(rows: list[tuple[str, bytes]]) -> list[tuple[str, etree._Element]]:
    out = []
    for item_id, payload in rows:
        try:
            out.append((item_id, etree.fromstring(payload, _PARSER)))
        except etree.XMLSyntaxError:
            log.error("dropping an unreadable PEP item {id}", id=item_id)
    return out

