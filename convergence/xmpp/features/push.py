# -*- test-case-name: tests.test_push -*-
"""
XEP-0357: Push Notifications, the user's server side.

A client registers its app server with C{<enable jid='…' node='…'/>}
(optionally with a C{publish-options} data form) in an iq set to its own
account, and removes it with C{<disable jid='…' [node='…']/>}.  An account
may hold several registrations, one per C{(jid, node)}; they live in the
L{IPushStore}, so they survive restarts.

A notification is published when an important stanza (L{is_important}) for
the account is not delivered live to the client that registered:

  - nobody takes it and it goes to offline storage (C{message/offline},
    before the offline module stores it);
  - the stream the client enabled push on is delivered to while it is
    inactive (XEP-0352 C{client_state}) or hibernating (XEP-0198,
    C{stream.hibernating}), seen by a filter on that stream.

The notification is an iq set from the account's bare JID to the app
server, a PubSub publish on the node with an C{urn:xmpp:push:summary}
form (C{message-count} since the client was last seen reading,
C{last-message-sender}, and C{last-message-body} only with
C{xmpp.push_include_body}) and the enable's publish-options.  It goes
through the router, so a local application or a remote server gets it the
usual way.  One registration gets at most one notification per
C{xmpp.push_min_interval} seconds; what arrives meanwhile is summed up in
one trailing notification when the interval ends.  An error reply of type
C{cancel} or C{auth} disables the registration; other errors are logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.interfaces import PushRegistration
from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

__all__ = ["FEATURE", "PUSH", "SUMMARY", "PushNotifications", "is_important"]

PUSH = "urn:xmpp:push:0"
SUMMARY = "urn:xmpp:push:summary"
PUBSUB = "http://jabber.org/protocol/pubsub"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
DATA = "jabber:x:data"
JINGLE_MESSAGE = "urn:xmpp:jingle-message:0"

#: characters of a node name, bytes of the serialized publish-options
#: form, characters of a body in a notification
MAX_NODE = 1023
MAX_OPTIONS = 8192
MAX_BODY = 256
#: seconds to wait for the app server's answer to a publish
REPLY_TIMEOUT = 60.0

_MESSAGE = f"{{{ns.CLIENT}}}message"
_BODY = f"{{{ns.CLIENT}}}body"
_FORM = f"{{{DATA}}}x"
_FIELD = f"{{{DATA}}}field"
_VALUE = f"{{{DATA}}}value"
_ERROR = f"{{{ns.CLIENT}}}error"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


def is_important(stanza: etree._Element) -> bool:
    """
    Whether a stanza is worth waking the user's device for: a chat or
    normal message with a body, or a call invitation (XEP-0353
    C{<propose/>}).  Chat states, receipts, markers, carbons and archive
    results carry no top-level body and are not; neither are groupchat,
    headline and error messages, nor presence.
    """
    if stanza.tag != _MESSAGE or stanza.get("type") not in (None, "normal", "chat"):
        return False
    body = stanza.find(_BODY)
    if body is not None and (body.text or "").strip():
        return True
    return stanza.find(f"{{{JINGLE_MESSAGE}}}propose") is not None


class Key(NamedTuple):
    """A registration within the server: the account and C{(service, node)}."""

    account: JID
    service: str
    node: str


@dataclass
class _Pending:
    """What has not been notified yet for one registration."""

    registration: PushRegistration
    count: int = 0
    sender: str | None = None
    body: str | None = None
    last_sent: float | None = None
    timer: Any = None


class PushNotifications:
    """Push registrations and notifications for one server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.store = server.push_store
        self.run_in_db = server.run_in_db
        self.clock = server.clock
        self.config = server.config
        #: registrations enabled on a live stream, by stream
        self.by_stream: dict[Any, dict[Key, PushRegistration]] = {}
        #: the stream each of those registrations was enabled on, by account
        self.attached: dict[JID, dict[Key, Any]] = {}
        #: counts and rate limiting per registration, by account
        self.pending: dict[JID, dict[Key, _Pending]] = {}
        #: publishes awaiting the app server's answer, by iq id
        self.in_flight: dict[str, tuple[Key, Any]] = {}
        self._filters: dict[Any, Callable[[etree._Element], etree._Element]] = {}

    def install(self) -> None:
        router = self.server.router
        router.hook_iq("set", "bare", PUSH, "enable", self.on_enable)
        router.hook_iq("set", "bare", PUSH, "disable", self.on_disable)
        hook = self.server.bus.hook
        # before offline storage (priority 0), which goes on storing
        hook("message/offline", self.on_offline, 10)
        # before the default delivery, which ignores iq results to accounts
        hook("iq/bare", self.on_reply, 10)
        # before handlers that might return a true value and end the event
        hook("presence/available", self.on_available, 10)
        hook("c2s/unbound", self.on_unbound, 10)
        hook("account/removed", self.on_account_removed)

    # Enabling and disabling (XEP-0357 sections 5 and 6)
    def _own_account(self, event: StanzaEvent) -> bool:
        if event.origin is None or event.sender.bare != event.to:
            event.reply_error("forbidden", "Only the account's own clients manage its push")
            return False
        return True

    def on_enable(self, event: StanzaEvent) -> bool:
        if not self._own_account(event):
            return True
        enable = event.stanza[0]
        service = _service(enable.get("jid"))
        node = enable.get("node") or ""
        if service is None:
            event.reply_error("bad-request", "enable needs the app server's jid")
            return True
        if not node or len(node) > MAX_NODE:
            event.reply_error("bad-request", "enable needs a node (at most"
                              f" {MAX_NODE} characters)")
            return True
        try:
            options = _publish_options(enable)
        except ValueError as e:
            event.reply_error("bad-request", str(e))
            return True
        account = event.to
        registration = PushRegistration(service, node, options, self.clock.seconds())
        stream = event.origin

        def stored(ok: bool) -> None:
            if not ok:
                event.reply_error("resource-constraint", "At most"
                                  f" {self.config.max_push_registrations}"
                                  " push registrations per account")
                return
            self._enabled(Key(account, service, node), registration, stream)
            log.info("{account} enabled push to {service}", account=str(account),
                     service=service)
            event.reply(iq_result(event.stanza))

        d = self.run_in_db(self.store.put_registration, account.user, account.host,
                           registration, self.config.max_push_registrations)
        d.addCallbacks(stored, self._db_failed, errbackArgs=(event,))
        return True

    def on_disable(self, event: StanzaEvent) -> bool:
        if not self._own_account(event):
            return True
        disable = event.stanza[0]
        service = _service(disable.get("jid"))
        if service is None:
            event.reply_error("bad-request", "disable needs the app server's jid")
            return True
        node = disable.get("node") or None
        account = event.to

        def removed(count: int) -> None:
            self._forget(account, service, node)
            log.info("{account} disabled {count} push registration(s) to {service}",
                     account=str(account), count=count, service=service)
            event.reply(iq_result(event.stanza))

        d = self.run_in_db(self.store.remove_registrations, account.user, account.host,
                           service, node)
        d.addCallbacks(removed, self._db_failed, errbackArgs=(event,))
        return True

    def _db_failed(self, failure: Failure, event: StanzaEvent) -> None:
        log.failure("push registration change for {account} failed", failure,
                    account=str(event.to))
        event.reply_error("internal-server-error")

    def _enabled(self, key: Key, registration: PushRegistration, stream: Any) -> None:
        """Remember the stream a registration was enabled on (if it is still
        bound) and use the new publish-options from now on."""
        self._detach(key)
        if stream.jid is not None and self.server.registry.get(stream.jid) is stream:
            self.attached.setdefault(key.account, {})[key] = stream
            self.by_stream.setdefault(stream, {})[key] = registration
            if stream not in self._filters:
                def stanza_filter(stanza: etree._Element) -> etree._Element:
                    return self._delivering(stream, stanza)

                self._filters[stream] = stanza_filter
                # first, so a filter holding stanzas back still lets us see them
                stream.filters.insert(0, stanza_filter)
        pending = self.pending.get(key.account, {}).get(key)
        if pending is not None:
            pending.registration = registration

    def _detach(self, key: Key) -> None:
        """Forget which stream a registration was enabled on."""
        streams = self.attached.get(key.account)
        stream = streams.pop(key, None) if streams is not None else None
        if stream is not None:
            self.by_stream.get(stream, {}).pop(key, None)
        if streams is not None and not streams:
            del self.attached[key.account]

    def _forget(self, account: JID, service: str, node: str | None) -> None:
        """Drop the in-memory state of removed registrations."""
        pending = self.pending.get(account, {})
        keys = {k for k in (*self.attached.get(account, ()), *pending)
                if k.service == service and (node is None or k.node == node)}
        for key in keys:
            self._detach(key)
            state = pending.pop(key, None)
            if state is not None and state.timer is not None:
                state.timer.cancel()
        if account in self.pending and not pending:
            del self.pending[account]

    def on_unbound(self, stream: Any) -> None:
        """A stream is gone: its registrations stay, unattached."""
        for key in list(self.by_stream.get(stream, ())):
            if self.attached.get(key.account, {}).get(key) is stream:
                self._detach(key)
        self.by_stream.pop(stream, None)
        self._filters.pop(stream, None)

    # When to notify
    def on_offline(self, event: StanzaEvent) -> bool:
        """A message goes to offline storage: notify every registration."""
        if not is_important(event.stanza):
            return False
        account = event.to.bare
        stanza = event.stanza

        def found(registrations: list[PushRegistration]) -> None:
            for registration in registrations:
                key = Key(account, registration.service, registration.node)
                self.notify(key, registration, stanza)

        d = self.run_in_db(self.store.registrations, account.user, account.host)
        d.addCallback(found)
        d.addErrback(lambda f: log.failure("push registrations of {account}", f,
                                           account=str(account)))
        return False  # offline storage goes on

    def _delivering(self, stream: Any, stanza: etree._Element) -> etree._Element:
        """The filter on a stream that enabled push: notify for what its
        client will not see now; while it is active, it is reading."""
        registrations = self.by_stream.get(stream)
        if not registrations:
            return stanza
        away = (stream.client_state == "inactive"
                or getattr(stream, "hibernating", False))
        if away:
            if is_important(stanza):
                for key, registration in list(registrations.items()):
                    self.notify(key, registration, stanza)
        else:
            for key in registrations:
                self._seen(key)
        return stanza

    def on_available(self, stream: Any) -> None:
        """A resource of the account came online: the counts start anew."""
        for key in list(self.pending.get(stream.jid.bare, ())):
            self._seen(key)

    def on_account_removed(self, event: Any) -> None:
        """The account is gone (XEP-0077): nothing more is pushed for it."""
        account = event.jid
        for key in list(self.pending.get(account, ())):
            self._seen(key)
        self.pending.pop(account, None)
        self.attached.pop(account, None)

    def _seen(self, key: Key) -> None:
        pending = self.pending.get(key.account, {}).get(key)
        if pending is None:
            return
        pending.count = 0
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None

    # Notifying (XEP-0357 section 7)
    def notify(self, key: Key, registration: PushRegistration,
               stanza: etree._Element) -> None:
        """Count one stanza for a registration and publish, at most once
        per C{push_min_interval}."""
        states = self.pending.setdefault(key.account, {})
        pending = states.get(key)
        if pending is None:
            pending = states[key] = _Pending(registration)
        pending.registration = registration
        pending.count += 1
        pending.sender = stanza.get("from")
        body = stanza.findtext(_BODY)
        pending.body = body[:MAX_BODY] if body else None
        if pending.timer is not None:
            return  # a trailing notification is due
        now = self.clock.seconds()
        interval = self.config.push_min_interval
        if pending.last_sent is not None and now < pending.last_sent + interval:
            pending.timer = self.clock.callLater(
                pending.last_sent + interval - now, self._trailing, key)
            return
        self._publish(key, pending)

    def _trailing(self, key: Key) -> None:
        pending = self.pending.get(key.account, {}).get(key)
        if pending is not None:
            pending.timer = None
            self._publish(key, pending)

    def _publish(self, key: Key, pending: _Pending) -> None:
        pending.last_sent = self.clock.seconds()
        iq_id = "push-" + secrets.token_hex(8)
        iq = self.publication(key, pending, iq_id)
        timeout = self.clock.callLater(REPLY_TIMEOUT, self._timed_out, iq_id)
        self.in_flight[iq_id] = (key, timeout)
        log.debug("push {id} for {account} to {service} ({count} pending)", id=iq_id,
                  account=str(key.account), service=key.service, count=pending.count)
        self.server.router.route(iq)

    def publication(self, key: Key, pending: _Pending, iq_id: str) -> etree._Element:
        """The publish iq for one registration."""
        iq = etree.Element(f"{{{ns.CLIENT}}}iq", nsmap={None: ns.CLIENT}, type="set",
                           id=iq_id, to=key.service)
        iq.set("from", str(key.account))
        pubsub = etree.SubElement(iq, f"{{{PUBSUB}}}pubsub", nsmap={None: PUBSUB})
        publish = etree.SubElement(pubsub, f"{{{PUBSUB}}}publish", node=key.node)
        item = etree.SubElement(publish, f"{{{PUBSUB}}}item")
        notification = etree.SubElement(item, f"{{{PUSH}}}notification",
                                        nsmap={None: PUSH})
        fields = {"message-count": str(pending.count)}
        if pending.sender:
            fields["last-message-sender"] = pending.sender
        if self.config.push_include_body and pending.body:
            fields["last-message-body"] = pending.body
        notification.append(_form(SUMMARY, fields))
        options = pending.registration.options
        if options is not None:
            publish_options = etree.SubElement(pubsub, f"{{{PUBSUB}}}publish-options")
            publish_options.append(etree.fromstring(options, _PARSER))
        return iq

    def on_reply(self, event: StanzaEvent) -> bool:
        """The app server's answer to a publish."""
        if event.kind != "iq" or event.type not in ("result", "error"):
            return False
        iq_id = event.stanza.get("id")
        entry = self.in_flight.get(iq_id or "")
        if entry is None:
            return False
        key, timeout = entry
        if str(event.sender) != key.service or event.to != key.account:
            return False  # not from the app server it went to
        del self.in_flight[iq_id]
        if timeout.active():
            timeout.cancel()
        if event.type == "error":
            self._rejected(key, event.stanza)
        return True

    def _rejected(self, key: Key, reply: etree._Element) -> None:
        type_, condition = _error_of(reply)
        # remote-server-*: a server on the way could not reach the app server
        if type_ not in ("cancel", "auth") or condition.startswith("remote-server-"):
            log.info("a push for {account} to {service} failed with {condition}"
                     " ({type}); the registration stays", service=key.service,
                     account=str(key.account), condition=condition, type=type_)
            return
        log.warn("app server {service} rejected a push for {account} with {condition}"
                 " ({type}): disabling that registration", service=key.service,
                 account=str(key.account), condition=condition, type=type_)
        self._forget(key.account, key.service, key.node)
        d = self.run_in_db(self.store.remove_registrations, key.account.user,
                           key.account.host, key.service, key.node)
        d.addErrback(lambda f: log.failure("removing a push registration", f))

    def _timed_out(self, iq_id: str) -> None:
        entry = self.in_flight.pop(iq_id, None)
        if entry is not None:
            log.info("app server {service} did not answer a push for {account}",
                     service=entry[0].service, account=str(entry[0].account))


def _error_of(reply: etree._Element) -> tuple[str | None, str]:
    """The type and defined condition of an error stanza."""
    error = reply.find(_ERROR)
    if error is None:
        return None, "undefined-condition"
    for child in error:
        name = etree.QName(child)
        if name.namespace == ns.STANZA_ERRORS and name.localname != "text":
            return error.get("type"), name.localname
    return error.get("type"), "undefined-condition"


def _service(value: str | None) -> str | None:
    """The app server's JID, prepared, or None if missing or malformed."""
    if not value:
        return None
    try:
        return str(JID.parse(value))
    except InvalidJID:
        return None


def _publish_options(enable: etree._Element) -> bytes | None:
    """
    The enable's publish-options form, checked and serialized.

    @raise ValueError: it is not a submitted form of that type, or too big.
    """
    forms = enable.findall(_FORM)
    if not forms:
        return None
    if len(forms) > 1:
        raise ValueError("at most one publish-options form")
    form = forms[0]
    if form.get("type", "submit") != "submit":
        raise ValueError("publish-options must be a submitted form")
    form_type = [f.findtext(_VALUE) for f in form.findall(_FIELD)
                 if f.get("var") == "FORM_TYPE"]
    if form_type != [PUBLISH_OPTIONS]:
        raise ValueError(f"the form's FORM_TYPE must be {PUBLISH_OPTIONS}")
    clean = etree.Element(_FORM, nsmap={None: DATA}, type="submit")
    for field in form.findall(_FIELD):
        var = field.get("var")
        if not var:
            raise ValueError("every publish-options field needs a var")
        copy = etree.SubElement(clean, _FIELD, var=var)
        for value in field.findall(_VALUE):
            etree.SubElement(copy, _VALUE).text = value.text or ""
    data = etree.tostring(clean)
    if len(data) > MAX_OPTIONS:
        raise ValueError(f"publish-options larger than {MAX_OPTIONS} bytes")
    return data


def _form(form_type: str, fields: dict[str, str]) -> etree._Element:
    form = etree.Element(_FORM, nsmap={None: DATA}, type="submit")
    for var, value in {"FORM_TYPE": form_type, **fields}.items():
        field = etree.SubElement(form, _FIELD, var=var)
        etree.SubElement(field, _VALUE).text = value
    return form


def install(server: Any) -> None:
    server.push = PushNotifications(server)
    server.push.install()


FEATURE = Feature(
    name="push", spec="XEP-0357", version="0.4.1",
    account_features=(PUSH,), install=install,
)
