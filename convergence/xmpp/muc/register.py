# -*- test-case-name: tests.test_muc_register -*-
"""
Registering with a room (XEP-0045 section 7.10): C{jabber:iq:register}
to the room's bare JID.

  - get: the C{muc#register} form (the nickname required, given and
    family name, URL, email and FAQ entry optional), or, for a user who
    has a nickname reserved, C{<registered/>} with it in C{<username/>};
  - set: the submitted form makes the user a member (an admin or owner
    keeps that affiliation) with the nickname reserved, at once: no
    owner approves it.  A nickname reserved by someone else, or held by
    someone else's occupant, is a C{conflict}; submitting again changes
    the reservation; C{<remove/>} cancels it (a member is no longer one).
    Only the nickname is kept: the other fields are read and forgotten.

In a members-only room only users who are members already (or admins,
owners) may register, to reserve a nickname: anyone else gets
C{not-allowed} (membership is an owner's or admin's decision there).
An outcast gets C{forbidden}.  The reserved nickname is what section
7.12 (C{x-roomuser-item}) answers, and nobody else may enter with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.muc.affiliations import rank
from convergence.xmpp.muc.forms import FormError, add_field, form, submitted
from convergence.xmpp.muc.nick import BadNick, prepare_nick
from convergence.xmpp.ns import DATA_FORMS
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Room

__all__ = ["MUC_REGISTER", "REGISTER", "handle"]

REGISTER = "jabber:iq:register"
MUC_REGISTER = "http://jabber.org/protocol/muc#register"
_P = "muc#register_"
ROOMNICK = _P + "roomnick"


def registration_form() -> etree._Element:
    x = form(None, "form", MUC_REGISTER, "Register with the room")
    etree.SubElement(x, f"{{{DATA_FORMS}}}instructions").text = (
        "A nickname of your own in this room: you become a member, and"
        " nobody else may use it.")
    add_field(x, _P + "first", (), "text-single", "Given name")
    add_field(x, _P + "last", (), "text-single", "Family name")
    nick = add_field(x, ROOMNICK, (), "text-single", "Desired nickname")
    etree.SubElement(nick, f"{{{DATA_FORMS}}}required")
    add_field(x, _P + "url", (), "text-single", "Your URL")
    add_field(x, _P + "email", (), "text-single", "Email address")
    add_field(x, _P + "faqentry", (), "text-multi", "FAQ entry")
    return x


def _query(event: StanzaEvent) -> tuple[etree._Element, etree._Element]:
    iq = iq_result(event.stanza)
    return iq, etree.SubElement(iq, f"{{{REGISTER}}}query", nsmap={None: REGISTER})


def handle(room: Room, event: StanzaEvent) -> None:
    """An iq get or set in C{jabber:iq:register} to C{room}."""
    affiliation = room.affiliation(event.sender)
    if affiliation == "outcast":
        event.reply_error("forbidden", "You are banned from this room")
        return
    if room.config.members_only and rank(affiliation) < rank("member"):
        event.reply_error("not-allowed", "Only members register here: ask an owner")
        return
    bare = str(event.sender.bare)
    if event.type == "get":
        iq, query = _query(event)
        nick = room.nicks.get(bare)
        if nick is not None:
            etree.SubElement(query, f"{{{REGISTER}}}registered")
            etree.SubElement(query, f"{{{REGISTER}}}username").text = nick
        else:
            etree.SubElement(query, f"{{{REGISTER}}}instructions").text = \
                "Fill in the form to register a nickname with this room."
            query.append(registration_form())
        event.reply(iq)
        return
    query = event.stanza[0]
    if query.find(f"{{{REGISTER}}}remove") is not None:
        _remove(room, bare, affiliation)
        event.reply(iq_result(event.stanza))
        return
    x = query.find(f"{{{DATA_FORMS}}}x")
    if x is None:
        event.reply_error("bad-request", "Submit the muc#register form")
        return
    if x.get("type") == "cancel":
        event.reply(iq_result(event.stanza))
        return
    try:
        values = submitted(x, MUC_REGISTER)
    except FormError as e:
        event.reply_error(e.condition, e.text)
        return
    raw = values.get(ROOMNICK, [])
    if len(raw) != 1 or not raw[0].strip():
        event.reply_error("not-acceptable", "A nickname is required")
        return
    try:
        nick = prepare_nick(raw[0], room.service.max_nick_length)
        JID.parse(f"{room.address}/{nick}")  # the resourcepart rules too
    except BadNick as e:
        event.reply_error("not-acceptable", e.text)
        return
    except InvalidJID:
        event.reply_error("not-acceptable", "Not a valid nickname")
        return
    holder = room.holder_of(nick)
    if room.reserved_by(nick) not in (None, bare) or (
            holder is not None and str(holder.jid.bare) != bare):
        event.reply_error("conflict", "That nickname is reserved or in use by someone else")
        return
    if rank(affiliation) < rank("member"):
        room.set_affiliation(bare, "member", None, None, nick=nick)
    elif room.nicks.get(bare) != nick:
        room.nicks[bare] = nick
        room.service.save(room)
    event.reply(iq_result(event.stanza))


def _remove(room: Room, bare: str, affiliation: str) -> None:
    """Cancel a registration: the reservation, and membership if that is
    all the user has."""
    if affiliation == "member":
        room.set_affiliation(bare, "none", None, None)
    elif bare in room.nicks:
        room.nicks.pop(bare)
        room.service.save(room)
