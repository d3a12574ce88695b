# -*- test-case-name: tests.test_muc_voice -*-
"""
Voice requests in moderated rooms (XEP-0045 7.13 and 8.6): a visitor
submits the C{muc#request} form to the room; every moderator gets an
approval form naming the visitor's nickname (and real JID, for
moderators may see it); a moderator who submits it back with
C{muc#request_allow} true makes the visitor a participant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from convergence.xmpp.muc.forms import (
    FormError,
    add_field,
    form,
    parse_boolean,
    submitted,
)
from convergence.xmpp.muc.ns import CLIENT
from convergence.xmpp.ns import DATA_FORMS
from convergence.xmpp.router import StanzaEvent

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Occupant, Room

__all__ = ["REQUEST", "handle"]

REQUEST = "http://jabber.org/protocol/muc#request"


def _form_type(x: etree._Element) -> str | None:
    for field in x.findall(f"{{{DATA_FORMS}}}field"):
        if field.get("var") == "FORM_TYPE":
            return field.findtext(f"{{{DATA_FORMS}}}value")
    return None


def handle(room: Room, event: StanzaEvent, occupant: Occupant | None) -> bool:
    """Whether C{event} was a voice request or an approval (answered either way)."""
    x = event.stanza.find(f"{{{DATA_FORMS}}}x")
    if x is None or _form_type(x) != REQUEST:
        return False
    if occupant is None:
        event.reply_error("not-acceptable", "You are not in this room")
        return True
    try:
        fields = submitted(x, REQUEST)
    except FormError as e:
        event.reply_error(e.condition, e.text)
        return True
    if occupant.role == "moderator" and "muc#request_allow" in fields:
        _decide(room, event, occupant, fields)
    elif fields.get("muc#role") == ["participant"] and occupant.role == "visitor":
        _ask(room, occupant)
    elif occupant.role == "visitor":
        event.reply_error("bad-request", "Ask for the participant role")
    else:
        pass  # a participant asking for voice has it already
    return True


def _ask(room: Room, visitor: Occupant) -> None:
    for moderator in [o for o in room.occupants.values() if o.role == "moderator"]:
        message = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        message.set("from", room.address)
        x = form(message, "form", REQUEST, "Voice request")
        etree.SubElement(x, f"{{{DATA_FORMS}}}instructions").text = (
            "To approve this request for voice, select the"
            " \"Grant voice to this person?\" checkbox and submit this form.")
        add_field(x, "muc#role", ("participant",), "list-single", "Requested role")
        add_field(x, "muc#jid", (str(visitor.jid),), "jid-single", "User ID")
        add_field(x, "muc#roomnick", (visitor.nick,), "text-single", "Room Nickname")
        add_field(x, "muc#request_allow", ("false",), "boolean",
                  "Grant voice to this person?")
        room.send_to(moderator, message)


def _decide(room: Room, event: StanzaEvent, moderator: Occupant,
            fields: dict[str, list[str]]) -> None:
    try:
        allow = parse_boolean("muc#request_allow", fields["muc#request_allow"])
    except FormError as e:
        event.reply_error(e.condition, e.text)
        return
    nick = (fields.get("muc#roomnick") or [""])[0]
    visitor = room.occupants.get(nick)
    if not allow or visitor is None or visitor.role != "visitor":
        return  # denied, gone, or voiced meanwhile: nothing to do
    room.set_role(visitor, "participant", moderator, None)
