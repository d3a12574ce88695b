# -*- test-case-name: tests.test_muc_relay -*-
"""
Queries between occupants (XEP-0045 section 7.5 and its note on IQs): an
occupant's iq get or set to another occupant's JID is relayed to that
occupant's real JID, from the sender's occupant JID and with an id of the
room's own, and the answer goes back the same way; neither learns the
other's real JID.  A vCard query goes to the target's bare JID, where its
server answers for it (XEP-0054, XEP-0045 17.x).  At most
C{MAX_PENDING} queries wait for their answer; the oldest is forgotten
first.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from itertools import count
from typing import TYPE_CHECKING

from convergence.xmpp.jid import JID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import split_tag

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Room

__all__ = ["MAX_PENDING", "Relay"]

MAX_PENDING = 4096
VCARD = "vcard-temp"


class Relay:
    """IQs relayed between occupants of the rooms of one service."""

    def __init__(self) -> None:
        self._ids = count(1)
        #: room id -> (room JID, asker's real JID, its id, asker's nick,
        #: target's nick, the JID that must answer)
        self._pending: OrderedDict[str, tuple[JID, JID, str | None, str, str, JID]] = \
            OrderedDict()

    def query(self, room: Room, event: StanzaEvent) -> None:
        """An iq get/set from an occupant to another occupant's JID."""
        asker = room.by_jid.get(event.sender)
        if asker is None:
            event.reply_error("not-acceptable", "You are not in this room")
            return
        target = room.occupants.get(event.to.resource or "")
        if target is None:
            event.reply_error("item-not-found", "No such occupant")
            return
        stanza = event.stanza
        payload = stanza[0] if len(stanza) else None
        vcard = payload is not None and split_tag(payload.tag)[0] == VCARD
        answerer = target.jid.bare if vcard else target.jid
        relay_id = f"muc-relay-{next(self._ids)}"
        self._pending[relay_id] = (room.jid, event.sender, stanza.get("id"), asker.nick,
                                   target.nick, answerer)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        out = copy.deepcopy(stanza)
        out.set("from", f"{room.address}/{asker.nick}")
        out.set("to", str(answerer))
        out.set("id", relay_id)
        room.service.route(out)

    def answer(self, room: Room, event: StanzaEvent) -> None:
        """An iq result or error to an occupant's JID: a relayed answer, or nothing."""
        relay_id = event.stanza.get("id") or ""
        pending = self._pending.get(relay_id)
        if pending is None:
            return
        room_jid, asker, asker_id, asker_nick, target_nick, answerer = pending
        if room_jid != room.jid or event.sender != answerer \
                or event.to.resource != asker_nick:
            return  # not the answer we wait for: someone guessing ids
        del self._pending[relay_id]
        out = copy.deepcopy(event.stanza)
        out.set("from", f"{room.address}/{target_nick}")
        out.set("to", str(asker))
        if asker_id is None:
            out.attrib.pop("id", None)
        else:
            out.set("id", asker_id)
        room.service.route(out)
