# -*- test-case-name: tests.test_muc_mam -*-
"""
Rooms' message archives (XEP-0313 section 6.1.2, queried as in section 4).

Every groupchat message with a body or a subject that a room reflects,
while its C{muc#roomconfig_enablearchiving} is on, goes into the archive
of the room's bare JID in the same L{IArchiveStore} as users' archives
(the owner is the room's localpart on the service domain).  The copy
comes from the occupant JID (C{room@service/nick}) without a C{to}; in a
non-anonymous room it also names the sender's real bare JID in a
C{muc#user} C{<item/>}.  Every reflected copy, and the history, carry
C{<stanza-id by='room@service'/>} with the archive id, and so does the
message forwarded in a query's result; a stanza-id by the room that an
occupant sent is removed (XEP-0359 section 4).

Who may query: an account with a session in the room, or a member,
admin or owner of the room even when not in it; an outcast never.
Anyone else gets C{forbidden}, and a query never answers before that
check.  The real JIDs in archived messages are shown while the room is
non-anonymous, and to its moderators (owners and admins, or occupants
with the moderator role) otherwise: a room made semi-anonymous later
hides them again, and a semi-anonymous room never stored any.

The archive goes when the room does (destroyed, or a temporary room's
last occupant leaving) and a new room starts with an empty one.
Retention is C{xmpp.muc_archive_retention} days, swept by the same
L{Retention} as users' archives, over the chat services' domains only.
"""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING, Any

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.errors import UnknownArchiveId
from convergence.store.interfaces import ArchivedMessage, ArchivePage, ArchiveQuery
from convergence.xmpp.im.offline import DELAY, stamp
from convergence.xmpp.jid import JID
from convergence.xmpp.mam.archiver import WriteBatch, new_id
from convergence.xmpp.mam.expiry import Retention
from convergence.xmpp.mam.form import BadForm, UnknownField, form_element, parse_form
from convergence.xmpp.mam.rsm import BadSet, parse_set, set_element
from convergence.xmpp.mam.rules import HINTS, SID, add_stanza_id, strip_stanza_ids
from convergence.xmpp.muc.affiliations import rank
from convergence.xmpp.muc.ns import CLIENT, MUC_USER
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Room
    from convergence.xmpp.muc.service import MucService

__all__ = ["MAM", "RoomArchives"]

MAM = "urn:xmpp:mam:2"
FORWARD = "urn:xmpp:forward:0"
_X_USER = f"{{{MUC_USER}}}x"
_KEPT = (f"{{{CLIENT}}}body", f"{{{CLIENT}}}subject")
_NO_STORE = (f"{{{HINTS}}}no-store", f"{{{HINTS}}}no-permanent-store")
_FLIP = f"{{{MAM}}}flip-page"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


class RoomArchives:
    """The archives of every room of one chat service."""

    def __init__(self, service: MucService) -> None:
        server = service.server
        self.service = service
        self.server = server
        self.store = server.archive_store
        config = server.config
        self.max_page = config.mam_max_page_size
        self.default_page = min(config.mam_default_page_size, self.max_page)
        self.writes = WriteBatch(server, self.store)
        self.retention = Retention(server, self.store, config.muc_archive_retention,
                                   tuple(service.domains))

    def install(self) -> None:
        bus = self.server.bus
        # as users' archives: the sweep starts with the first session
        bus.hook("c2s/bound", lambda _: self.retention.start(), -10)
        bus.hook("xmpp/shutdown", lambda _: self.retention.stop())

    # Writing
    def archive(self, room: Room, message: etree._Element, sender: JID | None) -> None:
        """
        Archive C{message} (the reflected copy, from the occupant JID, no
        C{to} yet) if the room keeps it, and give it its stanza-id.

        @param sender: the real JID of the occupant who sent it.
        """
        strip_stanza_ids(message, room.jid)
        if not room.config.archive or not any(
                message.find(tag) is not None for tag in _KEPT) \
                or any(message.find(tag) is not None for tag in _NO_STORE):
            return
        stored = copy.deepcopy(message)
        stored.attrib.pop("to", None)
        if room.config.non_anonymous and sender is not None:
            x = etree.SubElement(stored, _X_USER, nsmap={None: MUC_USER})
            etree.SubElement(x, f"{{{MUC_USER}}}item", jid=str(sender.bare))
        nick = JID.parse(message.get("from", room.address)).resource or ""
        id_ = new_id()
        self.writes.add(room.name, room.jid.host, ArchivedMessage(
            id_, self.server.clock.seconds(), room.address, nick, etree.tostring(stored)))
        add_stanza_id(message, room.jid, id_)

    def delete(self, room: Room) -> None:
        """Forget C{room}'s archive (after the writes queued before)."""
        d = self.server.run_in_db(self.store.delete_archive, room.name, room.jid.host)
        d.addErrback(self._log_failure, room)

    @staticmethod
    def _log_failure(failure: Failure, room: Room) -> None:
        log.failure("deleting the archive of {room} failed", failure, room=room.address)

    # Who reads
    @staticmethod
    def may_read(room: Room, jid: JID) -> bool:
        """Whether C{jid} may query C{room}'s archive."""
        affiliation = room.affiliation(jid)
        if affiliation == "outcast":
            return False
        if rank(affiliation) >= rank("member"):
            return True
        bare = jid.bare
        return any(session.bare == bare for session in room.by_jid)

    @staticmethod
    def sees_real_jids(room: Room, jid: JID) -> bool:
        """Whether the real JIDs in the archive are shown to C{jid}."""
        if room.config.non_anonymous or room.affiliation(jid) in ("owner", "admin"):
            return True
        bare = jid.bare
        return any(o.role == "moderator" for s, o in room.by_jid.items() if s.bare == bare)

    # Queries
    def on_iq(self, room: Room, event: StanzaEvent, name: str) -> None:
        """An iq to the room in the MAM namespace, C{name} its element."""
        if not room.config.archive:
            event.reply_error("service-unavailable", "This room keeps no archive")
            return
        if not self.may_read(room, event.sender):
            event.reply_error("forbidden", "Only occupants and members read the archive")
            return
        if name == "query" and event.type == "set":
            self._query(room, event)
        elif name == "query":
            iq = iq_result(event.stanza)
            etree.SubElement(iq, f"{{{MAM}}}query", nsmap={None: MAM}).append(form_element())
            event.reply(iq)
        elif name == "metadata" and event.type == "get":
            self._metadata(room, event)
        else:
            event.reply_error("service-unavailable")

    def _failed(self, failure: Failure, room: Room, event: StanzaEvent) -> None:
        if failure.check(UnknownArchiveId):
            event.reply_error("item-not-found", "no such message in the archive")
            return
        log.failure("archive request to {room} failed", failure, room=room.address)
        event.reply_error("internal-server-error")

    def _query(self, room: Room, event: StanzaEvent) -> None:
        query = event.stanza[0]
        try:
            filters = parse_form(query, self.max_page)
            page = parse_set(query)
        except (BadForm, BadSet) as e:
            event.reply_error("bad-request", str(e))
            return
        except UnknownField as e:
            event.reply_error("feature-not-implemented", str(e))
            return
        limit = self.default_page if page.max is None else min(page.max, self.max_page)
        with_jid = filters.with_jid
        request = ArchiveQuery(
            # an occupant JID, or the room's (everything): the archive's
            # 'with' is the room and the nickname
            with_jid=None if with_jid is None else str(with_jid.bare),
            with_resource=None if with_jid is None else with_jid.resource,
            start=filters.start, end=filters.end, not_before=self.retention.not_before(),
            after_id=filters.after_id, before_id=filters.before_id, ids=filters.ids,
            page_after=page.after, page_before=page.before, index=page.index,
            limit=limit)
        flip = query.find(_FLIP) is not None
        d = self.server.run_in_db(self.store.find, room.name, room.jid.host, request)
        d.addCallback(self._send_page, room, event, query.get("queryid"), flip)
        d.addErrback(self._failed, room, event)

    def _gone(self, jid: JID) -> bool:
        """Whether a local querier's session ended meanwhile."""
        return jid.host in self.server.hosts and self.server.registry.get(jid) is None

    def _send_page(self, page: ArchivePage, room: Room, event: StanzaEvent,
                   queryid: str | None, flip: bool) -> None:
        to = event.sender
        if self._gone(to):
            return
        real_jids = self.sees_real_jids(room, to)
        messages = list(reversed(page.messages)) if flip else page.messages
        for message in messages:
            result = self._result(message, room, to, queryid, real_jids)
            if result is not None:
                self.service.route(result)
        iq = iq_result(event.stanza)
        fin = etree.SubElement(iq, f"{{{MAM}}}fin", nsmap={None: MAM},
                               complete="true" if page.complete else "false")
        first = page.messages[0].id if page.messages else None
        last = page.messages[-1].id if page.messages else None
        fin.append(set_element(first, last, page.count, page.first_index))
        event.reply(iq)

    @staticmethod
    def _result(message: ArchivedMessage, room: Room, to: JID, queryid: str | None,
                real_jids: bool) -> etree._Element | None:
        try:
            original = etree.fromstring(message.stanza, _PARSER)
        except etree.XMLSyntaxError:
            log.error("unreadable archived message {id} of {room}", id=message.id,
                      room=room.address)
            return None
        if not real_jids:
            for x in original.findall(_X_USER):
                original.remove(x)
        # as the live copy had it: clients match the two by it
        add_stanza_id(original, room.jid, message.id)
        out = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        out.set("from", room.address)
        out.set("to", str(to))
        out.set("id", secrets.token_hex(8))
        result = etree.SubElement(out, f"{{{MAM}}}result", nsmap={None: MAM}, id=message.id)
        if queryid is not None:
            result.set("queryid", queryid)
        forwarded = etree.SubElement(result, f"{{{FORWARD}}}forwarded", nsmap={None: FORWARD})
        etree.SubElement(forwarded, f"{{{DELAY}}}delay", nsmap={None: DELAY},
                         stamp=stamp(message.stamp), **{"from": room.address})
        forwarded.append(original)
        return out

    def _metadata(self, room: Room, event: StanzaEvent) -> None:
        def answer(ends: Any) -> None:
            iq = iq_result(event.stanza)
            metadata = etree.SubElement(iq, f"{{{MAM}}}metadata", nsmap={None: MAM})
            if ends is not None:
                for name, message in zip(("start", "end"), ends):
                    etree.SubElement(metadata, f"{{{MAM}}}{name}", id=message.id,
                                     timestamp=stamp(message.stamp))
            event.reply(iq)

        d = self.server.run_in_db(self.store.bounds, room.name, room.jid.host,
                                  self.retention.not_before())
        d.addCallbacks(answer, self._failed, errbackArgs=(room, event))


#: the features a room that archives adds to its disco#info (#extended:
#: before-id, after-id, ids and metadata, as users' archives)
ARCHIVE_FEATURES = (MAM, MAM + "#extended", SID)
