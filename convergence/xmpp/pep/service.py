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
stream without known features gets none): the implied subscriptions.
Contacts of other domains the same way, through the remote resources
whose presence and caps L{convergence.xmpp.pep.remote} tracks.  Besides, explicit XEP-0060 subscribers (subscribe,
unsubscribe, the requester's subscriptions and affiliations, the owner's
list and change of a node's subscriptions) are notified as XEP-0163
4.3.2 says, each once, if the access model still allows them when a
notification goes out; one it no longer allows loses its subscription.
Subscriptions have no options and no subids (one per JID and node).
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
                 text: str | None = None, feature: str | None = None,
                 type: str | None = None) -> None:
        super().__init__(condition, text, type=type)
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
        #: explicit subscriptions of the accounts whose nodes are in
        #: memory: node -> the subscribed JIDs (as given, bare or full)
        self._subscriptions: dict[JID, dict[str, set[str]]] = {}
        #: items of nodes with persist_items false, in memory, oldest first
        self._volatile: dict[tuple[JID, str], list[tuple[str, bytes]]] = {}
        self._tails: dict[JID, Deferred] = {}
        #: (owner, node) whose last item a resource was sent this session
        self._sent: WeakKeyDictionary[Any, set[tuple[JID, str]]] = WeakKeyDictionary()
        #: the nodes whose last items were looked for, per resource
        self._offered: WeakKeyDictionary[Any, frozenset[str]] = WeakKeyDictionary()
        #: remote resources and their caps (L{convergence.xmpp.pep.remote}),
        #: or None: contacts of other domains get explicit subscriptions only
        self.remote: Any = None

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
        store = self.store

        def read() -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
            return (store.pep_nodes(owner.user, owner.host),
                    store.pep_subscriptions(owner.user, owner.host))

        def loaded(result: tuple[list[tuple[str, dict]], list[tuple[str, str]]]
                   ) -> dict[str, NodeConfig]:
            if owner in self._nodes:
                return self._nodes[owner]
            rows, subscriptions = result
            by_node: dict[str, set[str]] = {}
            for node, jid in subscriptions:
                by_node.setdefault(node, set()).add(jid)
            self._subscriptions[owner] = by_node
            return self._nodes.setdefault(
                owner, {name: NodeConfig.from_dict(c) for name, c in rows})

        return self.run_in_db(read).addCallback(loaded)

    def _release(self, owner: JID) -> None:
        """Forget the cached nodes of an owner with no resource bound."""
        if owner not in self._tails and not self.registry.resources(owner):
            self._nodes.pop(owner, None)
            self._subscriptions.pop(owner, None)

    def forget(self, owner: JID) -> None:
        """Called when the owner's last resource is gone."""
        self._release(owner)

    def account_removed(self, owner: JID) -> None:
        """The account is gone with its stored nodes: drop what is in memory,
        and its explicit subscriptions to other accounts' nodes."""
        self._nodes.pop(owner, None)
        self._subscriptions.pop(owner, None)
        for by_node in self._subscriptions.values():
            for jids in by_node.values():
                jids.difference_update([j for j in jids if j == str(owner)
                                        or j.startswith(f"{owner}/")])
        self.run_in_db(self.store.remove_subscriber, str(owner)).addErrback(
            lambda f: log.failure("removing the PEP subscriptions of {jid} failed", f,
                                  jid=str(owner)))
        for key in [k for k in self._volatile if k[0] == owner]:
            del self._volatile[key]

    # Access
    def _roster(self, owner: JID) -> Deferred:
        d: Deferred = Deferred()
        self.server.rosters.use(owner, d.callback)
        return d

    def may_read(self, owner: JID, actor: JID | None, config: NodeConfig) -> Deferred:
        """Deferred: C{None} if C{actor} may retrieve the node's items (or
        subscribe to it), else the access model that refuses it."""
        if actor is None or actor.bare == owner or config.access_model == "open":
            return succeed(None)
        if config.access_model == "whitelist":
            return succeed("whitelist")
        return self._roster(owner).addCallback(
            lambda roster: None if self._allowed(owner, actor, config, roster)
            else config.access_model)

    @staticmethod
    def _allowed(owner: JID, actor: JID, config: NodeConfig, roster: Any) -> bool:
        """Whether the access model lets C{actor} see the node, given the
        owner's roster."""
        if actor.bare == owner or config.access_model == "open":
            return True
        if config.access_model == "whitelist":
            return False  # the owner is the only member of its whitelist
        item = roster.items.get(str(actor.bare)) if roster is not None else None
        if config.access_model == "presence":
            return item is not None and item.subscription in _SEES_OWNER
        return (item is not None and item.listed  # roster
                and bool(set(item.groups) & set(config.roster_groups_allowed)))

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
            # the subscribers now: the nodes may be out of memory once the
            # work is over (the owner is offline)
            d.addCallback(lambda _: (new_id, config, sorted(self.subscribers(owner, node))))
            return d

        def published(result: tuple[str, NodeConfig, list[str]]) -> str:
            new_id, config, subscribed = result
            self._notify_items(owner, node, config, new_id, item, subscribed)
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
                self._notify(owner, node, config, kind, None)
                if kind == "delete":
                    nodes.pop(node, None)
                    self._subscriptions.get(owner, {}).pop(node, None)
                self.server.bus.fire(f"pep/{kind}d", PepChanged(owner, node))

            return self.run_in_db(call, owner.user, owner.host, node).addCallback(done)

        return self.run(owner, work)

    # Explicit subscriptions (XEP-0060 6.1, 6.2, 5.6, 8.8)
    def subscribers(self, owner: JID, node: str) -> set[str]:
        """The JIDs explicitly subscribed to C{owner}'s C{node} (the nodes
        must be in memory, as within L{run})."""
        return self._subscriptions.setdefault(owner, {}).setdefault(node, set())

    def subscribe(self, owner: JID, node: str, jid: JID, actor: JID) -> Deferred:
        """
        Subscribe C{jid} (the requester's own bare or full JID) to a node
        its access model lets it see.  A new subscriber gets the node's
        last item unless the node says never.  Deferred: C{None}.
        """
        if jid.bare != actor.bare:
            return fail(PubsubError("bad-request", "invalid-jid",
                                    "a subscription is for the requester's own JID"))

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            config = nodes.get(node)
            if config is None:
                raise PubsubError("item-not-found", text="no such node")

            def allowed(refused: str | None) -> Any:
                if refused is not None:
                    raise self.refusal(refused)
                if str(jid) in self.subscribers(owner, node):
                    return None
                return self.run_in_db(self.store.subscribe_pep, owner.user, owner.host,
                                      node, str(jid), self.config.pep_max_subscriptions
                                      ).addCallback(stored, config)

            def stored(ok: bool, config: NodeConfig) -> Any:
                if not ok:
                    raise PubsubError("policy-violation",
                                      text="the node has too many subscriptions")
                self.subscribers(owner, node).add(str(jid))
                if config.send_last_published_item == "never":
                    return None
                return self._items(owner, node, config, 1, None).addCallback(
                    self._send_last, owner, node, jid)

            return self.may_read(owner, actor, config).addCallback(allowed)

        return self.run(owner, work)

    def _send_last(self, items: list[tuple[str, bytes]], owner: JID, node: str,
                   to: JID) -> None:
        if not items:
            return
        item_id, payload = items[-1]
        item = etree.Element(f"{{{EVENT}}}item", id=item_id)
        item.append(etree.fromstring(payload, _PARSER))
        self.send_event(owner, to, node, "items", item)

    def unsubscribe(self, owner: JID, node: str, jid: JID, actor: JID) -> Deferred:
        """End C{jid}'s subscription: the subscriber itself or the owner
        may.  Deferred: C{None}."""
        if jid.bare != actor.bare and actor.bare != owner:
            return fail(PubsubError("forbidden", text="not your subscription"))

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            if node not in nodes:
                raise PubsubError("item-not-found", text="no such node")
            if str(jid) not in self.subscribers(owner, node):
                raise PubsubError("unexpected-request", "not-subscribed", type="cancel")
            return self._cancel(owner, node, str(jid))

        return self.run(owner, work)

    def _cancel(self, owner: JID, node: str, jid: str) -> Deferred:
        self.subscribers(owner, node).discard(jid)
        return self.run_in_db(self.store.unsubscribe_pep, owner.user, owner.host, node,
                              jid).addCallback(lambda _: None)

    def subscriptions(self, owner: JID, actor: JID, node: str | None = None) -> Deferred:
        """Deferred: C{[(node, jid)]} of the requester's own subscriptions
        (of its bare JID and of any of its full JIDs), on C{node} or on all
        nodes."""

        def work(nodes: dict[str, NodeConfig]) -> list[tuple[str, str]]:
            if node is not None and node not in nodes:
                raise PubsubError("item-not-found", text="no such node")
            found = []
            for name in sorted(nodes) if node is None else [node]:
                for text in sorted(self.subscribers(owner, name)):
                    try:
                        if JID.parse(text).bare == actor.bare:
                            found.append((name, text))
                    except InvalidJID:
                        continue
            return found

        return self.run(owner, work)

    def node_subscriptions(self, owner: JID, node: str, actor: JID | None = None) -> Deferred:
        """As the owner: Deferred C{[jid]} subscribed to C{node}."""
        try:
            self._own(owner, actor)
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> list[str]:
            if node not in nodes:
                raise PubsubError("item-not-found", text="no such node")
            return sorted(self.subscribers(owner, node))

        return self.run(owner, work)

    def set_subscriptions(self, owner: JID, node: str, changes: list[tuple[JID, str]],
                          actor: JID | None = None) -> Deferred:
        """As the owner: subscribe (C{subscribed}) or unsubscribe
        (C{none}) JIDs, whatever the access model."""
        try:
            self._own(owner, actor)
        except PubsubError as e:
            return fail(e)

        def work(nodes: dict[str, NodeConfig]) -> Deferred:
            if node not in nodes:
                raise PubsubError("item-not-found", text="no such node")
            d = succeed(None)
            for jid, state in changes:
                text = str(jid)
                if state == "none":
                    if text in self.subscribers(owner, node):
                        d.addCallback(lambda _, t=text: self._cancel(owner, node, t))
                elif text not in self.subscribers(owner, node):
                    d.addCallback(lambda _, t=text: self.run_in_db(
                        self.store.subscribe_pep, owner.user, owner.host, node, t,
                        self.config.pep_max_subscriptions))
                    d.addCallback(lambda ok, t=text: self._added(owner, node, t, ok))
            return d

        return self.run(owner, work)

    def _added(self, owner: JID, node: str, jid: str, ok: bool) -> None:
        if not ok:
            raise PubsubError("policy-violation", text="the node has too many subscriptions")
        self.subscribers(owner, node).add(jid)

    def affiliations(self, owner: JID, actor: JID, node: str | None = None) -> Deferred:
        """Deferred: C{[(node, affiliation)]} of the requester: the owner
        owns every node; anyone else has none (what a contact may do
        follows from the access model, not from an affiliation)."""

        def work(nodes: dict[str, NodeConfig]) -> list[tuple[str, str]]:
            if node is not None and node not in nodes:
                raise PubsubError("item-not-found", text="no such node")
            if actor.bare != owner:
                return []
            return [(name, "owner") for name in (sorted(nodes) if node is None else [node])]

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
                      payload: etree._Element, subscribed: list[str]) -> None:
        item = etree.Element(f"{{{EVENT}}}item", id=item_id)
        item.append(copy.deepcopy(payload))
        self._notify(owner, node, config, "items", item, subscribed)

    def _notify(self, owner: JID, node: str, config: NodeConfig, kind: str,
                child: etree._Element | None, subscribed: list[str] | None = None) -> None:
        """Send C{<event><kind node>child</kind></event>} to every
        interested resource allowed to see the node, and to its explicit
        subscribers (C{subscribed}, by default those in memory: called
        within the owner's work) the access model still allows."""
        if subscribed is None:
            subscribed = sorted(self._subscriptions.get(owner, {}).get(node, ()))

        def send(streams: list[Any]) -> Deferred:
            done = set()
            for stream in streams:
                self._sent.setdefault(stream, set()).add((owner, node))
                self.send_event(owner, stream.jid, node, kind, child)
                done.add(stream.jid)
            if not subscribed:
                return succeed(None)
            return self._roster(owner).addCallback(
                lambda roster: self._notify_subscribers(owner, node, config, kind, child,
                                                        subscribed, roster, done))

        self.recipients(owner, node, config).addCallback(send).addErrback(
            lambda f: log.failure("PEP notification of {owner} {node} failed", f,
                                  owner=str(owner), node=node))

    def _notify_subscribers(self, owner: JID, node: str, config: NodeConfig, kind: str,
                            child: etree._Element | None, subscribed: list[str],
                            roster: Any, done: set[JID]) -> None:
        """
        The explicit subscribers (XEP-0163 4.3.2): a full JID gets one
        notification; a local bare JID one per available resource with a
        non-negative priority that wants the node (C{+notify}), or one to
        the bare JID when none does, as a remote bare JID does.  A
        subscriber the access model no longer allows (the roster changed)
        loses its subscription instead (XEP-0163 8.1).
        """
        for text in subscribed:
            try:
                jid = JID.parse(text)
            except InvalidJID:
                continue
            if not self._allowed(owner, jid, config, roster):
                self._cancel(owner, node, text).addErrback(
                    lambda f: log.failure("cancelling a PEP subscription failed", f))
                self._send_cancelled(owner, node, jid)
                continue
            if jid.resource is None and self.router.is_local(jid.host):
                targets = [s.jid for s in self.registry.present(jid)
                           if s.priority >= 0 and _interested(s, node)] or [jid]
            else:
                targets = [jid]
            for target in targets:
                if target not in done:
                    done.add(target)
                    self.send_event(owner, target, node, kind, child)

    def _send_cancelled(self, owner: JID, node: str, jid: JID) -> None:
        """Tell a former subscriber its subscription was cancelled (XEP-0060
        "Notification of Subscription Denial or Cancellation")."""
        message = etree.Element(f"{{{ns.CLIENT}}}message", nsmap={None: ns.CLIENT},
                                id=secrets.token_hex(6))
        message.set("from", str(owner))
        message.set("to", str(jid))
        event = etree.SubElement(message, f"{{{EVENT}}}event", nsmap={None: EVENT})
        etree.SubElement(event, f"{{{EVENT}}}subscription", node=node, jid=str(jid),
                         subscription="none")
        self.router.route(message)

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
                if jid.bare == owner:
                    continue
                if not self.router.is_local(jid.host):
                    if self.remote is not None:
                        streams += [r for r in self.remote.present(owner, jid.bare)
                                    if _interested(r, node)]
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
        blocking = getattr(self.server, "blocking", None)
        if blocking is None or to.bare == owner:
            self.router.route(message)
            return

        def checked(items: Any) -> None:
            # XEP-0163 4.3.3: never to someone the owner blocked (nor when
            # the blocklist cannot be read)
            if items is not None and not _blocked(items, to):
                self.router.route(message)

        blocking.use(owner, checked)

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


def _blocked(items: Any, jid: JID) -> bool:
    """Whether a blocklist covers C{jid} (XEP-0191 by way of XEP-0016 2.1)."""
    return str(jid) in items or str(jid.bare) in items or jid.host in items


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

