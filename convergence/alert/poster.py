# -*- test-case-name: tests.test_alert -*-
"""
An alert into XMPP.

To a room: a groupchat from C{room/<nick>} (the request's C{from_nick},
else C{alert.nick}) through L{convergence.xmpp.muc.api.Rooms.announce}.
The poster does not enter the room: no presence comes and goes, the
occupants and the history get the message as from any occupant, and a
nickname an occupant holds (or an account reserved) is refused (409)
rather than spoken for.  A room that does not exist is created when
C{alert.create_rooms} is on (persistent, owned by the server's domain;
the C{xmpp.muc_admins} own it as they own every room), else 404.

To a JID: a message from the JID's hosted domain (a server message) of
type C{normal} or C{chat}, through the router like any other, so a user
who is offline gets it from offline storage at the next login.  Only
addresses of this server (its domains and their subdomains: accounts,
applications, rooms) are accepted.
"""

from __future__ import annotations

import secrets
from typing import Any

from lxml import etree
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import Interface, implementer

from convergence.alert.alerts import Alert, AlertRefused, bad_request
from convergence.config import AlertConfig
from convergence.xmpp.jid import JID, InvalidJID

__all__ = ["IAlertPoster", "XmppAlerts"]

CLIENT = "jabber:client"
NICK = "http://jabber.org/protocol/nick"

log = Logger()


class IAlertPoster(Interface):
    """Delivers alerts; the HTTP resource knows nothing else of XMPP."""

    def post(alert: Alert) -> Deferred:
        """Send C{alert}; fires with the stanza id, or fails with
        L{AlertRefused} (and then nothing was sent)."""


def new_id() -> str:
    return "alert-" + secrets.token_hex(8)


@implementer(IAlertPoster)
class XmppAlerts:
    """Alerts posted through an L{XmppServer}."""

    def __init__(self, server: Any, config: AlertConfig) -> None:
        self.server = server
        self.config = config

    def post(self, alert: Alert) -> Deferred:
        try:
            if alert.room is not None:
                return self._to_room(alert)
            return succeed(self._to_jid(alert))
        except AlertRefused as e:
            return fail(e)

    # rooms
    def _room_jid(self, rooms: Any, room: str) -> JID:
        services = {rooms.domain(h) for h in self.server.hosts}
        try:
            jid = JID.parse(room if "@" in room else f"{room}@{rooms.domain()}")
        except (InvalidJID, ValueError) as e:
            raise bad_request("bad_jid", f"Not a room: {e}") from None
        if jid.user is None or jid.resource is not None or jid.host not in services:
            raise bad_request("bad_jid", f"{room} is not a room JID of this server"
                                         f" (rooms are name@{rooms.domain()})")
        return jid

    def _to_room(self, alert: Alert) -> Deferred:
        rooms = self.server.muc.api if self.server.muc is not None else None
        if rooms is None:
            raise AlertRefused(404, "no_such_room", "This server runs no chat service")
        assert alert.room is not None
        jid = self._room_jid(rooms, alert.room)
        return rooms.ready().addCallback(lambda _: self._announce(rooms, jid, alert))

    def _announce(self, rooms: Any, jid: JID, alert: Alert) -> str:
        from convergence.xmpp.muc.api import NickInUse

        room = str(jid)
        if not rooms.exists(room):
            if not self.config.create_rooms:
                raise AlertRefused(404, "no_such_room", f"There is no room {room}")
            try:
                rooms.create(room, self._owner(rooms, jid), persistent=True)
            except ValueError:  # there, but locked by its creator
                raise AlertRefused(404, "no_such_room",
                                   f"The room {room} is not open yet") from None
            log.info("alert: created room {room}", room=room)
        stanza_id = new_id()
        try:
            rooms.announce(room, alert.from_nick or self.config.nick, alert.body,
                           alert.subject, stanza_id)
        except NickInUse as e:
            raise AlertRefused(409, "nick_in_use", str(e)) from None
        except ValueError as e:
            raise bad_request("bad_field", f"'from_nick': {e}") from None
        except LookupError:
            raise AlertRefused(404, "no_such_room", f"There is no room {room}") from None
        return stanza_id

    def _owner(self, rooms: Any, jid: JID) -> str:
        """The hosted domain whose chat service holds C{jid}."""
        for host in self.server.hosts:
            if rooms.domain(host) == jid.host:
                return host
        return self.server.default_host

    # JIDs
    def _local(self, host: str) -> str | None:
        """The hosted domain C{host} is or is under, if any."""
        for h in self.server.hosts:
            if host == h or host.endswith("." + h):
                return h
        return None

    def _to_jid(self, alert: Alert) -> str:
        assert alert.to is not None
        try:
            to = JID.parse(alert.to)
        except (InvalidJID, ValueError) as e:
            raise bad_request("bad_jid", f"Not a JID: {e}") from None
        domain = self._local(to.host)
        if domain is None:
            raise bad_request("bad_jid", f"{to.host} is not a domain of this server"
                                         " (federation is not implemented)")
        stanza_id = new_id()
        message = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        message.set("from", domain)
        message.set("to", str(to))
        message.set("id", stanza_id)
        if alert.type != "normal":
            message.set("type", alert.type)
        if alert.subject is not None:
            etree.SubElement(message, f"{{{CLIENT}}}subject").text = alert.subject
        etree.SubElement(message, f"{{{CLIENT}}}body").text = alert.body
        if alert.from_nick is not None:  # XEP-0172: who the alert is from
            etree.SubElement(message, f"{{{NICK}}}nick",
                             nsmap={None: NICK}).text = alert.from_nick
        self.server.router.route(message)
        return stanza_id
