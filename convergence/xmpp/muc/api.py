# -*- test-case-name: tests.test_muc_api -*-
"""
Chat rooms in the servlet API: applications own rooms and take part in
them as occupants (a bot that answers in a room).

An application reaches it as C{context.container.factories["xmpp"].rooms}
(C{None} when the server runs no chat service).  An occupant is one of the
application's own addresses: what the room sends to it (presence of the
others, groupchat, private messages) arrives at the application's servlet
like any stanza to its addresses, C{do_message} and C{on_presence}.  A
groupchat reflected back, or replayed from history (it carries a XEP-0203
C{<delay/>}), arrives too: a bot looks at L{is_own} and L{is_history}
before it answers.

The server itself posts into rooms without entering them (L{announce}:
the HTTP alerts of L{convergence.alert}).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lxml import etree
from twisted.internet.defer import Deferred, succeed

from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.muc.nick import BadNick, fold, prepare_nick
from convergence.xmpp.muc.ns import CLIENT, DELAY, MUC

if TYPE_CHECKING:
    from convergence.xmpp.muc.service import MucService

__all__ = ["NickInUse", "Rooms"]


class NickInUse(ValueError):
    """L{Rooms.announce}: an occupant holds the nickname, or an account reserved it."""


class Rooms:
    """What an application may do with the server's chat rooms."""

    def __init__(self, service: MucService) -> None:
        self._service = service

    def domain(self, host: str | None = None) -> str:
        """The chat service of C{host} (default: the server's first domain)."""
        host = host or self._service.server.default_host
        for domain, served in self._service.domains.items():
            if served == host:
                return domain
        raise ValueError(f"{host} is not a domain of this server")

    def create(self, room: str, owner: str, **config: Any) -> str:
        """
        Create room C{room} (a bare room JID) owned by C{owner} (an
        application address), open at once, configured by C{config}
        (L{RoomConfig} fields: C{name}, C{persistent}, C{members_only} …).
        A room that exists already and is owned by C{owner} is kept.

        @return: the room's JID.
        @raise ValueError: a bad JID, not a room of this server, or a room
            of someone else.
        """
        jid = JID.parse(room).bare
        if jid.user is None or jid.host not in self._service.domains:
            raise ValueError(f"{room} is not a room JID of this server")
        owner_jid = JID.parse(owner).bare
        self._service.load()
        existing = self._service.room(jid)
        if existing is not None:
            if existing.affiliations.get(str(owner_jid)) != "owner":
                raise ValueError(f"{room} belongs to someone else")
            return str(jid)
        try:
            settings = replace(self._service.default_config(), **config)
        except TypeError as e:
            raise ValueError(str(e)) from None
        self._service.create_room(jid, owner_jid, settings)
        return str(jid)

    def join(self, occupant: str, room: str, nick: str) -> None:
        """Enter C{room} as C{nick} from C{occupant}, an application's
        address (a full JID: one occupant per resource)."""
        self._presence(occupant, f"{JID.parse(room).bare}/{nick}", None, muc=True)

    def leave(self, occupant: str, room: str) -> None:
        """Leave C{room}."""
        r = self._service.room(room)
        current = r.by_jid.get(JID.parse(occupant)) if r is not None else None
        if current is not None:
            self._presence(occupant, f"{r.address}/{current.nick}", "unavailable")

    def say(self, occupant: str, room: str, body: str | None = None,
            subject: str | None = None) -> etree._Element:
        """Send a groupchat message (or a new subject) to C{room}; return it."""
        message = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        message.set("from", occupant)
        message.set("to", str(JID.parse(room).bare))
        message.set("type", "groupchat")
        if subject is not None:
            etree.SubElement(message, f"{{{CLIENT}}}subject").text = subject
        if body is not None:
            etree.SubElement(message, f"{{{CLIENT}}}body").text = body
        self._service.route(message)
        return message

    def ready(self) -> Deferred:
        """Fires once the persistent rooms are read from the store (the
        service reads them on first use): before that L{exists} and
        L{announce} may not know a stored room."""
        service = self._service
        if service.loaded:
            return succeed(None)
        d: Deferred = Deferred()
        service._on_loaded.append(d)
        service.load()
        return d

    def exists(self, room: str) -> bool:
        """Whether C{room} (a bare room JID) is a room one may enter now
        (it exists and is not locked awaiting its configuration)."""
        r = self._service.room(room)
        return r is not None and not r.locked

    def announce(self, room: str, nick: str, body: str, subject: str | None = None,
                 stanza_id: str | None = None) -> etree._Element:
        """
        A groupchat message into C{room} from C{room/nick} without
        entering it: every occupant gets it and it goes into the history
        like any other.  With C{subject} the room's subject changes too,
        in a second message from the same nickname.  Voice and
        members-only rules do not apply: this is the server speaking.

        @return: the message as the occupants get it (without C{to}).
        @raise LookupError: no such room, or a locked one.
        @raise ValueError: a bad nickname; L{NickInUse} for one that an
            occupant holds or an account reserved (the alert would pass
            for theirs).
        """
        r = self._service.room(room)
        if r is None or r.locked:
            raise LookupError(f"{room}: no such room")
        try:
            nick = prepare_nick(nick, self._service.max_nick_length)
            JID.parse(f"{r.address}/{nick}")
        except (BadNick, InvalidJID) as e:
            raise ValueError(f"bad nickname: {e}") from None
        if fold(nick) in r._folded or r.reserved_by(nick) is not None:
            raise NickInUse(f"the nickname {nick} belongs to someone in the room")
        message = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        message.set("type", "groupchat")
        if stanza_id is not None:
            message.set("id", stanza_id)
        etree.SubElement(message, f"{{{CLIENT}}}body").text = body
        with r.batch():
            r.groupchat(message, nick)
            if subject is not None:
                change = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
                if stanza_id is not None:
                    change.set("id", f"{stanza_id}-subject")
                etree.SubElement(change, f"{{{CLIENT}}}subject").text = subject
                r.subject, r.subject_from = subject, nick
                self._service.save(r)
                r.groupchat(change, nick, history=False)
        message.set("from", f"{r.address}/{nick}")
        return message

    def occupants(self, room: str) -> list[str]:
        """The nicknames in C{room}, in the order they entered."""
        r = self._service.room(room)
        return list(r.occupants) if r is not None else []

    def nick_of(self, occupant: str, room: str) -> str | None:
        """C{occupant}'s nickname in C{room}, if it is there."""
        r = self._service.room(room)
        current = r.by_jid.get(JID.parse(occupant)) if r is not None else None
        return current.nick if current is not None else None

    def is_own(self, stanza: etree._Element) -> bool:
        """Whether a groupchat message is the receiver's own, reflected."""
        try:
            sender, receiver = JID.parse(stanza.get("from", "")), JID.parse(stanza.get("to", ""))
        except ValueError:
            return False
        r = self._service.room(sender.bare) if sender.user else None
        current = r.by_jid.get(receiver) if r is not None else None
        return current is not None and current.nick == sender.resource

    @staticmethod
    def is_history(stanza: etree._Element) -> bool:
        """Whether a groupchat message is replayed history."""
        return stanza.find(f"{{{DELAY}}}delay") is not None

    def _presence(self, from_: str, to: str, type_: str | None, muc: bool = False) -> None:
        presence = etree.Element(f"{{{CLIENT}}}presence", nsmap={None: CLIENT})
        presence.set("from", from_)
        presence.set("to", to)
        if type_ is not None:
            presence.set("type", type_)
        if muc:
            x = etree.SubElement(presence, f"{{{MUC}}}x", nsmap={None: MUC})
            etree.SubElement(x, f"{{{MUC}}}history", maxstanzas="0")
        self._service.route(presence)
