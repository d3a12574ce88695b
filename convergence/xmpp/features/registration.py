# -*- test-case-name: tests.test_registration -*-
"""
XEP-0077: In-Band Registration.

  - Before authentication, and only when C{xmpp.allow_registration} is on,
    a client sees the C{<register xmlns='http://jabber.org/features/iq-register'/>}
    stream feature and may create one account per stream: C{conflict} if
    the name is taken, C{jid-malformed} if it is not a valid localpart
    (RFC 7622), C{not-acceptable} for a missing field, an unusable
    password or a second account on the same stream, C{resource-constraint}
    once an address has made C{xmpp.registrations_per_ip} attempts within
    C{xmpp.registration_window} seconds.  Registration switched off:
    C{service-unavailable}.  Any other iq before authentication stays a
    C{not-authorized} stream error (L{convergence.xmpp.c2s}).
  - An authenticated user may change the password and cancel the account
    (C{<remove/>}) whether registration is on or not.  Removal deletes the
    account with everything stored for it, fires C{account/removed}
    (L{AccountEvent}) so that modules drop what they cache, and closes the
    user's streams with C{not-authorized} (XEP-0077 3.2).

Passwords are turned into SCRAM and digest credentials by
L{convergence.auth.accounts.Accounts} off the database thread; the error
replies never echo a password.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.auth.accounts import AccountError
from convergence.store.errors import AccountExists, NoSuchAccount
from convergence.xmpp.c2s import PreAuthIqEvent
from convergence.xmpp.dataforms import DATA, find_form, form, values
from convergence.xmpp.errors import StanzaError, error_reply
from convergence.xmpp.events import AccountEvent
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID, InvalidJID, prepare_localpart
from convergence.xmpp.limits import FailureWindow
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

REGISTER = "jabber:iq:register"
STREAM_FEATURE = "http://jabber.org/features/iq-register"
INSTRUCTIONS = "Choose a username and password for use with this service."

_QUERY = f"{{{REGISTER}}}query"
_PASSWORD = f"{{{REGISTER}}}password"
_REMOVE = f"{{{REGISTER}}}remove"

log = Logger()


def _child(tag: str) -> str:
    return f"{{{REGISTER}}}{tag}"


def _fields(query: etree._Element) -> dict[str, str]:
    """username and password from a submitted data form, else from the
    plain iq:register fields (XEP-0077 6: the form takes precedence)."""
    x = find_form(query, REGISTER)
    if x is not None:
        submitted = values(x)
        return {k: (submitted.get(k) or [""])[0] for k in ("username", "password")
                if k in submitted}
    return {k: query.findtext(_child(k)) or "" for k in ("username", "password")
            if query.find(_child(k)) is not None}


def _error(stanza: etree._Element, condition: str, text: str | None) -> etree._Element:
    """An error reply that echoes the query without the password."""
    reply = error_reply(stanza, StanzaError(condition, text))
    secret = [e for e in reply.iter(_PASSWORD, f"{{{DATA}}}field")
              if e.tag == _PASSWORD or e.get("var") == "password"]
    for element in secret:
        element.getparent().remove(element)
    return reply


def _form_query(registered: str | None = None) -> etree._Element:
    """The answer to a get: the fields to fill (or those on file)."""
    query = etree.Element(_QUERY, nsmap={None: REGISTER})
    if registered is not None:
        etree.SubElement(query, _child("registered"))
    etree.SubElement(query, _child("instructions")).text = INSTRUCTIONS
    etree.SubElement(query, _child("username")).text = registered
    etree.SubElement(query, _child("password"))
    if registered is None:
        x = form(REGISTER, [("username", [], "text-single"),
                            ("password", [], "text-private")], type_="form")
        for field in x.iterchildren(f"{{{DATA}}}field"):
            if field.get("var") != "FORM_TYPE":
                etree.SubElement(field, f"{{{DATA}}}required")
        instructions = etree.Element(f"{{{DATA}}}instructions")
        instructions.text = INSTRUCTIONS
        x.insert(0, instructions)
        query.append(x)
    return query


class Registration:
    """Account creation, password change and removal over XMPP."""

    def __init__(self, server: Any) -> None:
        self.server = server
        config = server.config
        self.enabled = config.allow_registration
        self.by_ip = FailureWindow(server.clock, config.registrations_per_ip,
                                   config.registration_window)

    def install(self) -> None:
        server = self.server
        hook = server.bus.hook
        hook(f"iq-get/pre-auth/{REGISTER}:query", self.pre_auth_get)
        hook(f"iq-set/pre-auth/{REGISTER}:query", self.pre_auth_set)
        for to_type in ("host", "bare"):
            server.router.hook_iq("get", to_type, REGISTER, "query", self.on_get)
            server.router.hook_iq("set", to_type, REGISTER, "query", self.on_set)
        if self.enabled:
            server.pre_auth_features.append((STREAM_FEATURE, "register"))

    # Before authentication: creating an account
    def pre_auth_get(self, event: PreAuthIqEvent) -> bool:
        if not self.enabled:
            event.reply_error("service-unavailable", "in-band registration is off")
            return True
        result = iq_result(event.stanza)
        result.append(_form_query())
        event.reply(result)
        return True

    def pre_auth_set(self, event: PreAuthIqEvent) -> bool:
        stream, stanza = event.stream, event.stanza
        if not self.enabled:
            event.reply_error("service-unavailable", "in-band registration is off")
            return True

        def refuse(condition: str, text: str) -> bool:
            event.reply(_error(stanza, condition, text))
            return True

        query = stanza[0]
        if query.find(_REMOVE) is not None:
            return refuse("unexpected-request", "authenticate to cancel a registration")
        if getattr(stream, "registration", None) is not None:
            return refuse("not-acceptable",
                          "one account per connection: authenticate with it")
        fields = _fields(query)
        username, password = fields.get("username", ""), fields.get("password", "")
        if not username or not password:
            return refuse("not-acceptable", "a username and a password are required")
        try:
            localpart = prepare_localpart(username)
        except InvalidJID as e:
            return refuse("jid-malformed", f"not a valid username: {e}")
        if self.server.guests.is_guest(JID(localpart, stream.host)):
            # a web visitor's guest address (convergence.xmpp.guests)
            return refuse("conflict", "the username is taken")
        ip = stream.peer_ip()
        if self.by_ip.exceeded(ip):
            return refuse("resource-constraint",
                          "too many registrations from this address; try again later")
        domain = stream.host
        accounts = self.server.accounts
        try:
            pending = self.server.run_in_thread(accounts.credentials_for,
                                                localpart, domain, password)
        except AccountError as e:  # run_in_thread may run it at once
            return refuse("not-acceptable", str(e))
        self.by_ip.record(ip)
        stream.registration = "pending"

        def create(credentials: tuple[dict, dict]) -> Any:
            return self.server.run_in_db(accounts.store.create, localpart, domain,
                                         *credentials)

        def created(_: Any) -> None:
            stream.registration = f"{localpart}@{domain}"
            log.info("account {jid} registered in-band from {peer}",
                     jid=stream.registration, peer=stream.peer_name())
            event.reply(iq_result(stanza))
            self.server.bus.fire("account/registered", AccountEvent(localpart, domain))

        def failed(failure: Failure) -> None:
            stream.registration = None
            if failure.check(AccountExists):
                refuse("conflict", "the username is taken")
            elif failure.check(AccountError):
                refuse("not-acceptable", str(failure.value))
            else:
                log.failure("in-band registration failed", failure)
                refuse("internal-server-error", "the account could not be created")

        pending.addCallback(create).addCallbacks(created, failed)
        return True

    # Authenticated: the user's own account
    @staticmethod
    def _own_account(event: StanzaEvent) -> JID | None:
        """The sender's account if this iq is its own client's request to
        its own server (the domain, or the account's bare JID)."""
        stream = event.origin
        if stream is None or getattr(stream, "jid", None) is None:
            return None
        owner = event.sender.bare
        if event.to_type == "host" and event.to.host == owner.host:
            return owner
        if event.to_type == "bare" and event.to == owner:
            return owner
        return None

    def on_get(self, event: StanzaEvent) -> bool:
        owner = self._own_account(event)
        if owner is None:
            return False  # someone else's account: the default answer
        result = iq_result(event.stanza)
        result.append(_form_query(registered=owner.user))
        event.reply(result)
        return True

    def on_set(self, event: StanzaEvent) -> bool:
        owner = self._own_account(event)
        if owner is None:
            return False
        query = event.stanza[0]
        if query.find(_REMOVE) is not None:
            if len(query) != 1:
                event.reply(_error(event.stanza, "bad-request",
                                   "<remove/> must be the only child"))
            else:
                self._remove(event, owner)
            return True
        self._change_password(event, owner, _fields(query))
        return True

    def _change_password(self, event: StanzaEvent, owner: JID, fields: dict[str, str]) -> None:
        def refuse(condition: str, text: str) -> None:
            event.reply(_error(event.stanza, condition, text))

        username, password = fields.get("username"), fields.get("password", "")
        if username is not None:
            try:
                same = prepare_localpart(username) == owner.user
            except InvalidJID:
                same = False
            if not same:
                refuse("bad-request", "you may change only your own password")
                return
        if not password:
            refuse("bad-request", "the new password is missing; the old one stays")
            return
        accounts = self.server.accounts
        try:
            pending = self.server.run_in_thread(accounts.credentials_for,
                                                owner.user, owner.host, password)
        except AccountError as e:
            refuse("not-acceptable", str(e))
            return

        def store(credentials: tuple[dict, dict]) -> Any:
            return self.server.run_in_db(accounts.store.set_credentials,
                                         owner.user, owner.host, *credentials)

        def changed(_: Any) -> None:
            log.info("{jid} changed the password in-band", jid=str(owner))
            event.reply(iq_result(event.stanza))

        def failed(failure: Failure) -> None:
            if failure.check(AccountError):
                refuse("not-acceptable", str(failure.value))
            elif failure.check(NoSuchAccount):
                refuse("registration-required", "the account is gone")
            else:
                log.failure("password change failed", failure)
                refuse("internal-server-error", "the password could not be changed")

        pending.addCallback(store).addCallbacks(changed, failed)

    def _remove(self, event: StanzaEvent, owner: JID) -> None:
        server = self.server

        def delete(_: Any = None) -> None:
            d = server.run_in_db(server.accounts.store.delete, owner.user, owner.host)
            d.addCallbacks(removed, failed)

        def removed(_: Any) -> None:
            log.info("{jid} removed the account in-band", jid=str(owner))
            event.reply(iq_result(event.stanza))
            server.bus.fire("account/removed", AccountEvent(owner.user, owner.host))
            for stream in server.registry.resources(owner):
                server.registry.unbind(stream)
                stream.stream_error("not-authorized", "the account was removed")

        def failed(failure: Failure) -> None:
            if failure.check(NoSuchAccount):
                event.reply_error("registration-required", "there is no such account")
            else:
                log.failure("account removal failed", failure)
                event.reply_error("internal-server-error", "the account could not be removed")

        rosters = getattr(server, "rosters", None)
        if rosters is not None:
            # loaded (and kept while the user is bound) so that the presence
            # module can still cancel the subscriptions once it is deleted
            rosters.use(owner, delete)
        else:
            delete()


def install(server: Any) -> None:
    server.registration = Registration(server)
    server.registration.install()


FEATURE = Feature(
    name="registration", spec="XEP-0077", version="2.5",
    disco_features=(REGISTER,), install=install,
)
