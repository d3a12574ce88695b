# -*- test-case-name: tests.test_muc_admin -*-
"""
Room administration: the C{muc#admin} queries of moderators and admins
(XEP-0045 sections 8 and 9: kick, voice, moderator, ban, member, admin and
owner lists) and the C{muc#owner} queries of owners (section 10:
configuration form, instant room, destruction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.muc.affiliations import (
    AFFILIATIONS,
    ROLES,
    affiliation_change_error,
    role_change_error,
)
from convergence.xmpp.muc.forms import FormError
from convergence.xmpp.muc.nick import BadNick, prepare_nick
from convergence.xmpp.muc.ns import MUC_ADMIN, MUC_OWNER
from convergence.xmpp.muc.roomconfig import affiliation_lists, apply_form, config_form
from convergence.xmpp.ns import DATA_FORMS
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Occupant, Room

__all__ = ["admin_query", "owner_query"]

_ITEM = f"{{{MUC_ADMIN}}}item"


class _Refused(Exception):
    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


def admin_query(room: Room, event: StanzaEvent) -> None:
    """An iq get or set with C{<query xmlns='…muc#admin'/>}."""
    try:
        if event.type == "get":
            _list(room, event)
        else:
            _change(room, event)
    except _Refused as e:
        event.reply_error(e.condition, e.text)


def _list(room: Room, event: StanzaEvent) -> None:
    items = event.stanza[0].findall(_ITEM)
    if len(items) != 1:
        raise _Refused("bad-request", "Ask for one role or affiliation")
    item = items[0]
    role, affiliation = item.get("role"), item.get("affiliation")
    requester = room.by_jid.get(event.sender)
    actor_aff = room.affiliation(event.sender)
    result = iq_result(event.stanza)
    query = etree.SubElement(result, f"{{{MUC_ADMIN}}}query", nsmap={None: MUC_ADMIN})
    if role is not None and affiliation is None and role in ("moderator", "participant",
                                                             "visitor"):
        if requester is None or requester.role != "moderator":
            raise _Refused("forbidden", "Only moderators see the lists of roles")
        for occupant in room.occupants.values():
            if occupant.role == role:
                etree.SubElement(query, _ITEM, nick=occupant.nick, role=role,
                                 affiliation=room.affiliation(occupant.jid),
                                 jid=str(occupant.jid))
    elif affiliation is not None and role is None and affiliation in AFFILIATIONS \
            and affiliation != "none":
        # 9.5, 10.5: admins and owners see every list; in a non-anonymous
        # room members see the member, admin and owner lists too (1.35.0)
        insider = room.config.non_anonymous and affiliation != "outcast" \
            and actor_aff == "member"
        if actor_aff not in ("admin", "owner") and not insider:
            raise _Refused("forbidden", "Only admins and owners see the lists of affiliations")
        for jid, aff in sorted(room.affiliations.items()):
            if aff == affiliation:
                listed = etree.SubElement(query, _ITEM, jid=jid, affiliation=aff)
                if jid in room.nicks:
                    listed.set("nick", room.nicks[jid])
    else:
        raise _Refused("bad-request", "Unknown role or affiliation")
    event.reply(result)


def _change(room: Room, event: StanzaEvent) -> None:
    items = event.stanza[0].findall(_ITEM)
    if not items:
        raise _Refused("bad-request", "No item")
    actor = room.by_jid.get(event.sender)
    actor_aff = room.affiliation(event.sender)
    actor_role = actor.role if actor is not None else (
        "moderator" if actor_aff in ("owner", "admin") else "none")
    roles: list[tuple[Occupant, str, str | None]] = []
    affiliations: dict[str, tuple[str, str | None, str | None]] = {}
    for item in items:
        role, affiliation = item.get("role"), item.get("affiliation")
        reason = item.findtext(f"{{{MUC_ADMIN}}}reason")
        if (role is None) == (affiliation is None):
            raise _Refused("bad-request", "Change a role or an affiliation, not both")
        if role is not None:
            if role not in ROLES:
                raise _Refused("bad-request", f"Unknown role {role}")
            target = room.occupants.get(item.get("nick") or "")
            if target is None:
                raise _Refused("item-not-found", "No occupant with that nickname")
            refused = role_change_error(actor_role, actor_aff,
                                        room.affiliation(target.jid), role)
            if refused:
                raise _Refused(refused, "You may not change that occupant's role")
            roles.append((target, role, reason))
            continue
        if affiliation not in AFFILIATIONS:
            raise _Refused("bad-request", f"Unknown affiliation {affiliation}")
        bare = _item_jid(room, item)
        refused = affiliation_change_error(actor_aff, room.affiliations.get(bare, "none"),
                                           affiliation)
        if refused:
            raise _Refused(refused, "You may not change that affiliation")
        affiliations[bare] = (affiliation, reason, _reserved(room, item, bare, affiliation))
    owners = set(room.owners())
    for bare, (affiliation, _, _) in affiliations.items():
        if affiliation == "owner":
            owners.add(bare)
        else:
            owners.discard(bare)
    if not owners and room.owners():
        raise _Refused("conflict", "A room keeps at least one owner")
    for bare, (affiliation, reason, nick) in affiliations.items():
        room.set_affiliation(bare, affiliation, actor, reason, nick)
    for target, role, reason in roles:
        if room.occupants.get(target.nick) is target:
            room.set_role(target, role, actor, reason)
    event.reply(iq_result(event.stanza))


def _reserved(room: Room, item: etree._Element, bare: str, affiliation: str) -> str | None:
    """The nickname an item with a C{jid} reserves (9.3; empty: freed), or
    C{None} to leave the reservation as it is."""
    nick = item.get("nick")
    if item.get("jid") is None or nick is None:
        return None
    if nick == "" or affiliation in ("none", "outcast"):
        return ""
    try:
        nick = prepare_nick(nick, room.service.max_nick_length)
    except BadNick as e:
        raise _Refused("not-acceptable", e.text) from None
    if room.reserved_by(nick) not in (None, bare):
        raise _Refused("conflict", "That nickname is reserved by someone else")
    return nick


def _item_jid(room: Room, item: etree._Element) -> str:
    if item.get("jid") is None and item.get("nick") is not None:
        occupant = room.occupants.get(item.get("nick") or "")
        if occupant is None:
            raise _Refused("item-not-found", "No occupant with that nickname")
        return str(occupant.jid.bare)
    try:
        return str(JID.parse(item.get("jid", "")).bare)
    except InvalidJID:
        raise _Refused("jid-malformed", "Bad JID in item") from None


def owner_query(room: Room, event: StanzaEvent) -> None:
    """An iq get or set with C{<query xmlns='…muc#owner'/>}."""
    if room.affiliation(event.sender) != "owner":
        event.reply_error("forbidden", "Only owners configure a room")
        return
    query = event.stanza[0]
    service = room.service
    if event.type == "get":
        result = iq_result(event.stanza)
        answer = etree.SubElement(result, f"{{{MUC_OWNER}}}query", nsmap={None: MUC_OWNER})
        answer.append(config_form(
            room.config, service.max_occupants, service.history_max,
            owners=tuple(room.owners()),
            admins=tuple(j for j, a in room.affiliations.items() if a == "admin")))
        event.reply(result)
        return
    destroy = query.find(f"{{{MUC_OWNER}}}destroy")
    x = query.find(f"{{{DATA_FORMS}}}x")
    if destroy is not None:
        alternate = destroy.get("jid")
        if alternate is not None:
            try:
                alternate = str(JID.parse(alternate).bare)
            except InvalidJID:
                event.reply_error("jid-malformed", "Bad alternate venue")
                return
        event.reply(iq_result(event.stanza))
        room.destroy(alternate, destroy.findtext(f"{{{MUC_OWNER}}}reason"),
                     destroy.findtext(f"{{{MUC_OWNER}}}password"))
        return
    if x is None:
        event.reply_error("bad-request", "Expected a form or destroy")
        return
    if x.get("type") == "cancel":
        event.reply(iq_result(event.stanza))
        if room.locked:  # 10.1.3: a new room the owner gave up on
            room.destroy(None, None, None)
        return
    try:
        config = apply_form(room.config, x, service.max_occupants, service.history_max)
        changes = _list_changes(room, affiliation_lists(x))
    except (FormError, _Refused) as e:
        event.reply_error(e.condition, e.text)
        return
    event.reply(iq_result(event.stanza))
    actor = room.by_jid.get(event.sender)
    for bare, affiliation in changes.items():
        room.set_affiliation(bare, affiliation, actor, None, None)
    room.reconfigure(config)


def _list_changes(room: Room, lists: dict[str, set[str]]) -> dict[str, str]:
    """The affiliation changes the form's owner and admin lists make: a JID
    new on a list gets its affiliation; one taken off a list it was on
    becomes a member (10.6, 10.8: never thrown out by the form)."""
    changes: dict[str, str] = {}
    for affiliation, wanted in lists.items():
        for bare in wanted:
            if room.affiliations.get(bare) != affiliation:
                changes[bare] = affiliation
        for bare, current in room.affiliations.items():
            if current == affiliation and bare not in wanted and bare not in changes:
                changes[bare] = "member"
    owners = {j for j in room.owners() if changes.get(j, "owner") == "owner"}
    owners |= {j for j, a in changes.items() if a == "owner"}
    if not owners and room.owners():
        raise _Refused("conflict", "A room keeps at least one owner")
    return changes
