# -*- test-case-name: tests.test_muc_service -*-
"""
The chat service on C{<muc_subdomain>.<domain>} of each hosted domain.

Its domains are not hosted domains (no accounts live there), so the
router types stanzas to them C{remote}; the service takes them on
C{pre-stanza}, below applications (an application may still own a room's
address) and before the remote route, as the upload service does.  It owns
the rooms of every service domain, creates them (C{xmpp.muc_room_creation},
C{xmpp.muc_max_rooms}), answers the service's own disco and pings, keeps
persistent rooms in the L{IMucStore} and takes occupants out of every room
when their stream ends (C{c2s/closed}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.interfaces import StoredRoom
from convergence.xmpp import ns
from convergence.xmpp.jid import JID
from convergence.xmpp.muc import disco, register
from convergence.xmpp.muc.admin import admin_query, owner_query
from convergence.xmpp.muc.api import Rooms
from convergence.xmpp.muc.archive import MAM, RoomArchives
from convergence.xmpp.muc.flood import Bucket
from convergence.xmpp.muc.invitations import Invitations
from convergence.xmpp.muc.ns import MUC, MUC_ADMIN, MUC_OWNER
from convergence.xmpp.muc.relay import Relay
from convergence.xmpp.muc.room import Room, refuse
from convergence.xmpp.muc.roomconfig import RoomConfig
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result, split_tag

__all__ = ["MUC_PRIORITY", "MucService"]

#: on C{pre-stanza}: below applications (100), above the upload service (50)
MUC_PRIORITY = 60

log = Logger()


class MucService:
    """Every room of the server's chat services."""

    def __init__(self, server: Any) -> None:
        self.server = server
        config = server.config
        #: service domain -> the hosted domain it belongs to
        self.domains = {f"{config.muc_subdomain}.{host}": host for host in server.hosts}
        self.store = server.muc_store
        self.rooms: dict[JID, Room] = {}
        #: an occupant's real full JID -> the rooms it is in
        self.joined: dict[JID, set[Room]] = {}
        self.admins = frozenset(config.muc_admins)
        self.creation = config.muc_room_creation
        self.max_rooms = config.muc_max_rooms
        self.max_occupants = config.muc_max_occupants
        self.max_nick_length = config.muc_max_nick_length
        self.history_default = config.muc_history_default
        self.history_max = config.muc_history_max
        self.occupant_rate = config.muc_occupant_rate
        self.occupant_burst = config.muc_occupant_burst
        self.invitations = Invitations()
        self.relay = Relay()
        #: the servlet API (L{convergence.xmpp.muc.api.Rooms})
        self.api = Rooms(self)
        #: the rooms' message archives (L{convergence.xmpp.muc.archive})
        self.archives = RoomArchives(self)
        self.loaded = False
        self._loading = False
        self._waiting: list[StanzaEvent] = []
        #: fired once the persistent rooms are read (L{Rooms.ready})
        self._on_loaded: list[Deferred] = []

    def install(self) -> None:
        bus = self.server.bus
        bus.hook("pre-stanza", self.on_stanza, MUC_PRIORITY)
        bus.hook("c2s/closed", self.on_closed, 10)  # before presence's own goodbye
        self.server.disco_items.append(self.items)
        self.archives.install()

    def load(self) -> None:
        """Read the persistent rooms, once, on the first stanza to the
        service (not at install: the reactor may not run yet); stanzas
        that arrive meanwhile wait."""
        if self._loading:
            return
        self._loading = True
        loads = [self.server.run_in_db(self.store.rooms, domain).addCallback(
            self._restore, domain) for domain in self.domains]
        DeferredList(loads, consumeErrors=True).addCallback(self._ready)

    # Helpers for rooms
    def route(self, stanza: Any) -> None:
        self.server.router.route(stanza)

    def now(self) -> float:
        return self.server.clock.seconds()

    def default_config(self) -> RoomConfig:
        return RoomConfig(history_length=self.history_default,
                          archive=self.server.config.muc_archive)

    def bucket(self) -> Bucket | None:
        """A new occupant's flood limit (None: unlimited)."""
        if not self.occupant_rate:
            return None
        return Bucket(self.occupant_rate, self.occupant_burst, self.now())

    def rooms_of(self, domain: str) -> list[Room]:
        return [r for r in self.rooms.values() if r.jid.host == domain]

    def items(self, host: str) -> list[tuple[str, str | None]]:
        """disco#items of a hosted domain: its chat service."""
        return [(d, disco.SERVICE_NAME) for d, h in self.domains.items() if h == host]

    # Loading
    def _restore(self, stored: list[StoredRoom], domain: str) -> None:
        defaults = self.default_config()
        for s in stored:
            jid = JID(s.name, domain)
            if jid in self.rooms:
                continue  # created through the API meanwhile
            room = Room(self, jid, RoomConfig.from_json(s.config, defaults), s.created)
            room.history.resize(room.config.history_length)
            room.affiliations = dict(s.affiliations)
            room.nicks = dict(s.nicks)
            room.subject, room.subject_from = s.subject, s.subject_from
            self.rooms[jid] = room
        log.info("{n} persistent rooms on {domain}", n=len(stored), domain=domain)

    def _ready(self, results: list[tuple[bool, Any]]) -> None:
        for ok, value in results:
            if not ok:
                log.failure("loading rooms failed", value)
        self.loaded = True
        loaded, self._on_loaded = self._on_loaded, []
        for d in loaded:
            d.callback(None)
        waiting, self._waiting = self._waiting, []
        for event in waiting:
            self.on_stanza(event)

    # Persistence
    def save(self, room: Room, was_persistent: bool = False) -> None:
        """Store a persistent room as it is now; forget one made temporary."""
        domain = room.jid.host
        if room.config.persistent:
            stored = StoredRoom(room.name, room.config.to_json(), room.subject,
                                room.subject_from, dict(room.affiliations), room.created,
                                dict(room.nicks))
            d = self.server.run_in_db(self.store.put_room, domain, stored)
        elif was_persistent:
            d = self.server.run_in_db(self.store.delete_room, domain, room.name)
        else:
            return
        d.addErrback(self._store_failed, room)

    @staticmethod
    def _store_failed(failure: Failure, room: Room) -> None:
        log.failure("storing room {room} failed", failure, room=room.address)

    # Rooms' lifecycle
    def entered(self, room: Room, jid: JID) -> None:
        """The session C{jid} (a real full JID) is in C{room} now."""
        self.joined.setdefault(jid, set()).add(room)

    def left(self, room: Room, jid: JID, drop: bool = True) -> None:
        """The session C{jid} left C{room}."""
        rooms = self.joined.get(jid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.joined[jid]
        if drop:
            self.maybe_drop(room)

    def maybe_drop(self, room: Room) -> None:
        """A temporary room goes when its last occupant leaves."""
        if not room.occupants and not room.config.persistent \
                and self.rooms.get(room.jid) is room:
            del self.rooms[room.jid]
            self.archives.delete(room)

    def destroyed(self, room: Room) -> None:
        if self.rooms.get(room.jid) is room:
            del self.rooms[room.jid]
        self.archives.delete(room)
        if room.config.persistent:
            d = self.server.run_in_db(self.store.delete_room, room.jid.host, room.name)
            d.addErrback(self._store_failed, room)

    def may_create(self, creator: JID) -> bool:
        if self.creation == "anyone":
            return True
        if self.creation == "local":
            return creator.host in self.server.hosts
        return str(creator.bare) in self.admins

    def create_room(self, jid: JID, owner: JID, config: RoomConfig | None = None,
                    locked: bool = False) -> Room:
        """
        A new room owned by C{owner} (also the servlet API's way for an
        application to own a room); stored if its configuration is
        persistent.

        @raise ValueError: there is already a room with that JID.
        """
        jid = jid.bare
        if jid in self.rooms:
            raise ValueError(f"{jid} exists")
        room = Room(self, jid, config or self.default_config(), self.now())
        room.affiliations[str(owner.bare)] = "owner"
        room.locked = locked
        self.rooms[jid] = room
        if self.loaded:
            # an archive left under this name (a temporary room's, when the
            # server stopped) is not the new room's; before loading, the
            # name may be a stored room's (an application creates its room
            # at start), whose archive is kept
            self.archives.delete(room)
        self.save(room)
        return room

    def room(self, jid: JID | str) -> Room | None:
        """The room with this JID, if there is one."""
        if isinstance(jid, str):
            jid = JID.parse(jid)
        return self.rooms.get(jid.bare)

    def on_closed(self, stream: Any) -> None:
        """The stream of an occupant ended: it leaves every room (17.3)."""
        jid = getattr(stream, "jid", None)
        for room in list(self.joined.get(jid, ())) if jid is not None else ():
            with room.batch():
                room.depart(jid, notify_self=False)

    # Routing
    def on_stanza(self, event: StanzaEvent) -> bool:
        to = event.to
        if to.host not in self.domains:
            return False
        if not self.loaded:
            self._waiting.append(event)
            self.load()
            return True
        if to.user is None:
            self._to_service(event)
            return True
        room = self.rooms.get(to.bare)
        if room is None:
            self._dispatch(room, event)
        else:
            with room.batch():
                self._dispatch(room, event)
        return True

    def _dispatch(self, room: Room | None, event: StanzaEvent) -> None:
        to = event.to
        if event.kind == "presence":
            if room is not None:
                room.on_presence(event)
            elif event.type is None and to.resource is not None:
                self._create(event)
            elif event.type is None:
                refuse(event, "jid-malformed", "A nickname is required")
        elif event.kind == "message":
            if room is not None:
                room.on_message(event)
            else:
                event.reply_error("item-not-found", "No such room")
        elif event.type in ("get", "set"):
            self._iq(room, event)
        elif room is not None and to.resource is not None:
            self.relay.answer(room, event)  # an iq result or error

    def _payload(self, event: StanzaEvent) -> tuple[str | None, str]:
        if len(event.stanza) != 1:
            return None, ""
        return split_tag(event.stanza[0].tag)

    def _to_service(self, event: StanzaEvent) -> None:
        if event.kind != "iq" or event.type not in ("get", "set"):
            if event.kind == "message":
                event.reply_error("service-unavailable")
            return
        tag = self._payload(event)
        if event.type == "get" and tag == (ns.DISCO_INFO, "query"):
            if event.stanza[0].get("node"):
                event.reply_error("item-not-found")
            else:
                disco.service_info(event)
        elif event.type == "get" and tag == (ns.DISCO_ITEMS, "query"):
            disco.service_items(self, event)
        elif event.type == "get" and tag == (ns.PING, "ping"):
            event.reply(iq_result(event.stanza))
        else:
            event.reply_error("service-unavailable")

    def _create(self, event: StanzaEvent) -> None:
        if not self.may_create(event.sender):
            refuse(event, "not-allowed", "Room creation is restricted")
            return
        if len(self.rooms_of(event.to.host)) >= self.max_rooms:
            refuse(event, "resource-constraint", "Too many rooms")
            return
        locked = event.stanza.find(f"{{{MUC}}}x") is not None  # 10.1.1
        room = self.create_room(event.to, event.sender, locked=locked)
        with room.batch():
            room.enter(event, created=True)
        self.maybe_drop(room)  # a refused nickname: no room either

    def _iq(self, room: Room | None, event: StanzaEvent) -> None:
        tag = self._payload(event)
        to = event.to
        if to.resource is not None:
            # XEP-0410: a client pings its own occupant JID
            occupant = room.by_jid.get(event.sender) if room is not None else None
            if tag == (ns.PING, "ping") and event.type == "get" and (
                    occupant is None or occupant.nick == to.resource):
                if occupant is not None:
                    event.reply(iq_result(event.stanza))
                else:
                    event.reply_error("not-acceptable", "You are not in this room")
            elif room is None:
                event.reply_error("item-not-found", "No such room")
            else:
                self.relay.query(room, event)
            return
        if room is None or (room.locked and room.affiliation(event.sender) != "owner"):
            event.reply_error("item-not-found", "No such room")
            return
        if event.type == "get" and tag == (ns.DISCO_INFO, "query"):
            disco.room_info(room, event)
        elif event.type == "get" and tag == (ns.DISCO_ITEMS, "query"):
            disco.room_items(event)
        elif event.type == "get" and tag == (ns.PING, "ping"):
            event.reply(iq_result(event.stanza))
        elif tag == (MUC_ADMIN, "query"):
            admin_query(room, event)
        elif tag == (MUC_OWNER, "query"):
            owner_query(room, event)
        elif tag == (register.REGISTER, "query"):
            register.handle(room, event)
        elif tag[0] == MAM:
            self.archives.on_iq(room, event, tag[1])
        else:
            event.reply_error("service-unavailable")
