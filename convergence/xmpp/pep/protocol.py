# -*- test-case-name: tests.test_pep -*-
"""
The XEP-0060 requests PEP answers on an account's bare JID: publish (with
publish-options), retract, create, items, subscribe, unsubscribe, the
requester's subscriptions and affiliations; as owner configure, default,
delete, purge, a node's subscriptions (get and set) and affiliations
(get); disco#info of a node and disco#items of the account or of a node.
Everything else of XEP-0060 (subscription options, changing
affiliations) gets C{feature-not-implemented} with its
C{<unsupported feature=…/>}.
"""

from __future__ import annotations

from typing import Any, Callable

from lxml import etree
from twisted.python.failure import Failure

from convergence.xmpp import ns
from convergence.xmpp.delivery import lookup_failed
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.pep.forms import DATA, FormError, parse_submit
from convergence.xmpp.pep.nodeconfig import NODE_CONFIG, PUBLISH_OPTIONS
from convergence.xmpp.pep.service import PUBSUB, PepService, PubsubError, log
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

__all__ = ["OWNER", "PepProtocol"]

OWNER = "http://jabber.org/protocol/pubsub#owner"
_X = f"{{{DATA}}}x"
#: XEP-0060 requests this service does not do, by element: the feature
_UNSUPPORTED = {"options": "subscription-options"}
_OWNER_SET_UNSUPPORTED = {"affiliations": "modify-affiliations"}


def _true(value: str | None) -> bool:
    return value in ("1", "true")


class PepProtocol:
    """Turns pubsub iqs into L{PepService} operations and back."""

    def __init__(self, server: Any, service: PepService) -> None:
        self.server = server
        self.service = service

    def install(self) -> None:
        hook = self.server.router.hook_iq
        hook("set", "bare", PUBSUB, "pubsub", self.on_set)
        hook("get", "bare", PUBSUB, "pubsub", self.on_get)
        hook("set", "bare", OWNER, "pubsub", self.on_owner_set)
        hook("get", "bare", OWNER, "pubsub", self.on_owner_get)
        hook("get", "bare", ns.DISCO_INFO, "query", self.on_node_info, 5)
        hook("get", "bare", ns.DISCO_ITEMS, "query", self.on_items_query)

    # Plumbing
    def _answer(self, event: StanzaEvent, d: Any,
                build: Callable[[Any], etree._Element | None] = lambda _: None) -> None:
        def done(value: Any) -> None:
            result = iq_result(event.stanza)
            payload = build(value)
            if payload is not None:
                result.append(payload)
            event.reply(result)

        def failed(failure: Failure) -> None:
            if failure.check(PubsubError):
                self.server.router.bounce(event.stanza, failure.value)
                return
            log.failure("PEP request failed", failure)
            event.reply_error("internal-server-error")

        d.addCallbacks(done, failed)

    def _known(self, event: StanzaEvent, then: Callable[[], None]) -> bool:
        """Run C{then} if the addressed account exists (to one's own
        account at once), else answer C{service-unavailable}."""
        if event.to == event.sender.bare and event.origin is not None:
            then()
            return True

        def known(exists: bool) -> None:
            if exists:
                then()
            else:
                event.reply_error("service-unavailable")

        d = self.server.account_exists(event.to.user, event.to.host).addCallback(known)
        d.addErrback(lookup_failed, event)
        return True

    def _refuse(self, event: StanzaEvent, error: PubsubError) -> bool:
        self.server.router.bounce(event.stanza, error)
        return True

    def _unsupported(self, event: StanzaEvent, feature: str) -> bool:
        return self._refuse(event, PubsubError(
            "feature-not-implemented", "unsupported", feature=feature))

    @staticmethod
    def _pubsub(element_name: str, namespace: str = PUBSUB) -> tuple[etree._Element, etree._Element]:
        pubsub = etree.Element(f"{{{namespace}}}pubsub", nsmap={None: namespace})
        return pubsub, etree.SubElement(pubsub, f"{{{namespace}}}{element_name}")

    # http://jabber.org/protocol/pubsub
    def on_set(self, event: StanzaEvent) -> bool:
        pubsub = event.stanza[0]
        # the action, wherever it stands beside <publish-options/> or <configure/>
        actions = [c for c in pubsub if isinstance(c.tag, str)
                   and etree.QName(c).namespace == PUBSUB
                   and etree.QName(c).localname not in ("publish-options", "configure")]
        if len(actions) == 2 and {etree.QName(c).localname for c in actions} \
                == {"subscribe", "options"}:
            return self._unsupported(event, "subscription-options")  # 6.3.7
        if len(actions) != 1:
            event.reply_error("bad-request", "one pubsub action expected")
            return True
        first = actions[0]
        local = etree.QName(first).localname
        if local in _UNSUPPORTED:
            return self._unsupported(event, _UNSUPPORTED[local])
        handler = {"publish": self._publish, "retract": self._retract,
                   "create": self._create, "subscribe": self._subscribe,
                   "unsubscribe": self._unsubscribe}.get(local)
        if handler is None:
            event.reply_error("bad-request", "unknown pubsub request")
            return True
        return self._known(event, lambda: handler(event, pubsub, first))

    def _publish(self, event: StanzaEvent, pubsub: etree._Element,
                 publish: etree._Element) -> None:
        node = publish.get("node")
        if not node:
            self._refuse(event, PubsubError("bad-request", "nodeid-required"))
            return
        items = publish.findall(f"{{{PUBSUB}}}item")
        if not items:
            self._refuse(event, PubsubError("bad-request", "item-required"))
            return
        if len(items) > 1:
            self._refuse(event, PubsubError("bad-request", "invalid-payload",
                                            "one item per publish"))
            return
        item = items[0]
        payloads = [c for c in item if isinstance(c.tag, str)]
        if not payloads:
            self._refuse(event, PubsubError("bad-request", "payload-required"))
            return
        if len(payloads) > 1:
            self._refuse(event, PubsubError("bad-request", "invalid-payload",
                                            "an item carries one payload"))
            return
        options = None
        publish_options = pubsub.find(f"{{{PUBSUB}}}publish-options")
        if publish_options is not None:
            x = publish_options.find(_X)
            if x is not None:
                try:
                    form_type, options = parse_submit(x)
                except FormError as e:
                    self._refuse(event, PubsubError("bad-request", "invalid-options", str(e)))
                    return
                if form_type != PUBLISH_OPTIONS:
                    self._refuse(event, PubsubError("bad-request", "invalid-options",
                                                    "FORM_TYPE must be publish-options"))
                    return
        d = self.service.publish(event.to.bare, node, payloads[0], item.get("id") or None,
                                 options, actor=event.sender)

        def build(item_id: str) -> etree._Element:
            out, element = self._pubsub("publish")
            element.set("node", node)
            etree.SubElement(element, f"{{{PUBSUB}}}item", id=item_id)
            return out

        self._answer(event, d, build)

    def _retract(self, event: StanzaEvent, pubsub: etree._Element,
                 retract: etree._Element) -> None:
        node = retract.get("node")
        if not node:
            self._refuse(event, PubsubError("bad-request", "nodeid-required"))
            return
        items = retract.findall(f"{{{PUBSUB}}}item")
        if len(items) != 1 or not items[0].get("id"):
            self._refuse(event, PubsubError("bad-request", "item-required"))
            return
        d = self.service.retract(event.to.bare, node, items[0].get("id"),
                                 _true(retract.get("notify")), actor=event.sender)
        self._answer(event, d)

    def _create(self, event: StanzaEvent, pubsub: etree._Element,
                create: etree._Element) -> None:
        node = create.get("node")
        if not node:  # instant nodes are not offered
            self._refuse(event, PubsubError("not-acceptable", "nodeid-required"))
            return
        options = None
        x = pubsub.find(f"{{{PUBSUB}}}configure/{_X}")
        if x is not None:
            try:
                form_type, options = parse_submit(x)
            except FormError as e:
                self._refuse(event, PubsubError("bad-request", "invalid-options", str(e)))
                return
            if form_type not in (None, NODE_CONFIG):
                self._refuse(event, PubsubError("bad-request", "invalid-options",
                                                "FORM_TYPE must be node_config"))
                return
        self._answer(event, self.service.create(event.to.bare, node, options,
                                                actor=event.sender))

    def _subscription_target(self, event: StanzaEvent,
                             request: etree._Element) -> tuple[str, JID] | None:
        node = request.get("node")
        if not node:
            self._refuse(event, PubsubError("bad-request", "nodeid-required"))
            return None
        try:
            jid = JID.parse(request.get("jid") or "")
        except InvalidJID:
            self._refuse(event, PubsubError("bad-request", "invalid-jid"))
            return None
        return node, jid

    def _subscribe(self, event: StanzaEvent, pubsub: etree._Element,
                   subscribe: etree._Element) -> None:
        target = self._subscription_target(event, subscribe)
        if target is None:
            return
        node, jid = target

        def build(_: Any) -> etree._Element:
            out, element = self._pubsub("subscription")
            element.set("node", node)
            element.set("jid", str(jid))
            element.set("subscription", "subscribed")
            return out

        self._answer(event, self.service.subscribe(event.to.bare, node, jid, event.sender),
                     build)

    def _unsubscribe(self, event: StanzaEvent, pubsub: etree._Element,
                     unsubscribe: etree._Element) -> None:
        target = self._subscription_target(event, unsubscribe)
        if target is None:
            return
        node, jid = target
        self._answer(event, self.service.unsubscribe(event.to.bare, node, jid,
                                                     event.sender))

    def _listed(self, event: StanzaEvent, request: etree._Element,
                make: Callable[[], Any], namespace: str = PUBSUB) -> bool:
        """Answer with C{<subscriptions/>} or C{<affiliations/>}: one child
        per attribute mapping C{make()}'s Deferred gives."""
        local = etree.QName(request).localname
        node = request.get("node")

        def build(entries: list[dict[str, str]]) -> etree._Element:
            out, element = self._pubsub(local, namespace)
            if node:
                element.set("node", node)
            for attributes in entries:
                etree.SubElement(element, f"{{{namespace}}}{local[:-1]}", attributes)
            return out

        return self._known(event, lambda: self._answer(event, make(), build))

    def on_get(self, event: StanzaEvent) -> bool:
        pubsub = event.stanza[0]
        children = list(pubsub)
        if len(children) != 1 or etree.QName(children[0]).namespace != PUBSUB:
            event.reply_error("bad-request", "one pubsub request expected")
            return True
        request = children[0]
        local = etree.QName(request).localname
        if local in _UNSUPPORTED:
            return self._unsupported(event, _UNSUPPORTED[local])
        owner, node = event.to.bare, request.get("node") or None
        if local == "subscriptions":
            return self._listed(event, request, lambda: self.service.subscriptions(
                owner, event.sender, node).addCallback(lambda pairs: [
                    {"node": n, "jid": j, "subscription": "subscribed"} for n, j in pairs]))
        if local == "affiliations":
            return self._listed(event, request, lambda: self.service.affiliations(
                owner, event.sender, node).addCallback(lambda pairs: [
                    {"node": n, "affiliation": a} for n, a in pairs]))
        if local != "items":
            event.reply_error("bad-request", "unknown pubsub request")
            return True
        return self._known(event, lambda: self._items(event, request))

    def _items(self, event: StanzaEvent, request: etree._Element) -> None:
        node = request.get("node")
        if not node:
            self._refuse(event, PubsubError("bad-request", "nodeid-required"))
            return
        limit = None
        if request.get("max_items") is not None:
            try:
                limit = int(request.get("max_items"))
            except ValueError:
                limit = -1
            if limit < 1:
                event.reply_error("bad-request", "max_items must be a positive number")
                return
        ids = [i.get("id") for i in request.findall(f"{{{PUBSUB}}}item")]
        if any(not i for i in ids):
            self._refuse(event, PubsubError("bad-request", "item-required"))
            return
        if len(ids) > self.service.max_items:
            event.reply_error("policy-violation", "too many item ids")
            return
        d = self.service.items(event.to.bare, node, event.sender, limit, ids or None)

        def build(items: list[tuple[str, etree._Element]]) -> etree._Element:
            out, element = self._pubsub("items")
            element.set("node", node)
            for item_id, payload in items:
                etree.SubElement(element, f"{{{PUBSUB}}}item", id=item_id).append(payload)
            return out

        self._answer(event, d, build)

    # http://jabber.org/protocol/pubsub#owner
    def on_owner_set(self, event: StanzaEvent) -> bool:
        request = self._owner_request(event)
        if request is None:
            return True
        local = etree.QName(request).localname
        node = request.get("node")
        owner = event.to.bare
        if local in _OWNER_SET_UNSUPPORTED:
            return self._unsupported(event, _OWNER_SET_UNSUPPORTED[local])
        if local not in ("configure", "delete", "purge", "subscriptions"):
            event.reply_error("bad-request", "unknown pubsub#owner request")
            return True
        if not node:
            return self._refuse(event, PubsubError("bad-request", "nodeid-required"))
        if local == "subscriptions":
            changes = []
            for entry in request.iterchildren(f"{{{OWNER}}}subscription"):
                state = entry.get("subscription")
                try:
                    jid = JID.parse(entry.get("jid") or "")
                except InvalidJID:
                    return self._refuse(event, PubsubError("bad-request", "invalid-jid"))
                if state not in ("none", "subscribed"):
                    event.reply_error("not-acceptable",
                                      "a subscription is set to none or subscribed")
                    return True
                changes.append((jid, state))
            return self._known(event, lambda: self._answer(
                event, self.service.set_subscriptions(owner, node, changes, event.sender)))
        if local == "delete":
            return self._known(event, lambda: self._answer(
                event, self.service.delete(owner, node, event.sender)))
        if local == "purge":
            return self._known(event, lambda: self._answer(
                event, self.service.purge(owner, node, event.sender)))
        x = request.find(_X)
        if x is None:
            event.reply_error("bad-request", "a configure set carries a form")
            return True
        if x.get("type") == "cancel":
            return self._known(event, lambda: self._answer(
                event, self.service.configuration(owner, node, event.sender)))
        try:
            form_type, fields = parse_submit(x)
        except FormError as e:
            event.reply_error("bad-request", str(e))
            return True
        if form_type != NODE_CONFIG:
            event.reply_error("not-acceptable", "FORM_TYPE must be node_config")
            return True
        return self._known(event, lambda: self._answer(
            event, self.service.configure(owner, node, fields, event.sender)))

    def on_owner_get(self, event: StanzaEvent) -> bool:
        request = self._owner_request(event)
        if request is None:
            return True
        local = etree.QName(request).localname
        if local not in ("configure", "default", "subscriptions", "affiliations"):
            event.reply_error("bad-request", "unknown pubsub#owner request")
            return True
        node = request.get("node") if local != "default" else None
        if local != "default" and not node:
            return self._refuse(event, PubsubError("bad-request", "nodeid-required"))
        owner = event.to.bare
        if local == "subscriptions":
            return self._listed(event, request, lambda: self.service.node_subscriptions(
                owner, node, event.sender).addCallback(lambda jids: [
                    {"jid": j, "subscription": "subscribed"} for j in jids]), OWNER)
        if local == "affiliations":
            return self._listed(event, request, lambda: self.service.configuration(
                owner, node, event.sender).addCallback(lambda _: [
                    {"jid": str(owner), "affiliation": "owner"}]), OWNER)

        def build(config: Any) -> etree._Element:
            out, element = self._pubsub(local, OWNER)
            if node:
                element.set("node", node)
            element.append(config.form(self.service.max_items))
            return out

        return self._known(event, lambda: self._answer(
            event, self.service.configuration(event.to.bare, node, event.sender), build))

    @staticmethod
    def _owner_request(event: StanzaEvent) -> etree._Element | None:
        children = list(event.stanza[0])
        if len(children) != 1 or etree.QName(children[0]).namespace != OWNER:
            event.reply_error("bad-request", "one pubsub#owner request expected")
            return None
        return children[0]

    # Service discovery (XEP-0060 5.2-5.5)
    def on_node_info(self, event: StanzaEvent) -> bool:
        node = event.stanza[0].get("node")
        if not node:
            return False  # the account's own disco#info
        owner = event.to.bare

        def build(visible: list[tuple[str, Any]]) -> etree._Element:
            if node not in dict(visible):
                raise PubsubError("item-not-found")
            query = etree.Element(f"{{{ns.DISCO_INFO}}}query", nsmap={None: ns.DISCO_INFO},
                                  node=node)
            etree.SubElement(query, f"{{{ns.DISCO_INFO}}}identity", category="pubsub",
                             type="leaf")
            etree.SubElement(query, f"{{{ns.DISCO_INFO}}}feature", var=PUBSUB)
            return query

        return self._known(event, lambda: self._answer_built(
            event, self.service.visible_nodes(owner, event.sender), build))

    def on_items_query(self, event: StanzaEvent) -> bool:
        node = event.stanza[0].get("node")
        owner = event.to.bare

        def nodes(visible: list[tuple[str, Any]]) -> etree._Element:
            query = etree.Element(f"{{{ns.DISCO_ITEMS}}}query", nsmap={None: ns.DISCO_ITEMS})
            for name, config in visible:
                item = etree.SubElement(query, f"{{{ns.DISCO_ITEMS}}}item",
                                        jid=str(owner), node=name)
                if config.title:
                    item.set("name", config.title)
            return query

        def item_ids(items: list[tuple[str, etree._Element]]) -> etree._Element:
            query = etree.Element(f"{{{ns.DISCO_ITEMS}}}query", nsmap={None: ns.DISCO_ITEMS},
                                  node=node)
            for item_id, _ in items:
                etree.SubElement(query, f"{{{ns.DISCO_ITEMS}}}item", jid=str(owner),
                                 name=item_id)
            return query

        if node:
            return self._known(event, lambda: self._answer_built(
                event, self.service.items(owner, node, event.sender, missing_ok=False),
                item_ids))
        return self._known(event, lambda: self._answer_built(
            event, self.service.visible_nodes(owner, event.sender), nodes))

    def _answer_built(self, event: StanzaEvent, d: Any,
                      build: Callable[[Any], etree._Element]) -> None:
        """Like L{_answer}, but C{build} may refuse with a PubsubError."""
        self._answer(event, d.addCallback(build), lambda element: element)
