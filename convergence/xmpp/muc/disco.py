# -*- test-case-name: tests.test_muc_service -*-
"""
Service discovery of the chat service and its rooms (XEP-0045 sections
6.1–6.4 and 15.5.4): the service's identity and features, its public
rooms, a room's features by its configuration and the C{muc#roominfo}
form.  A room lists no occupants in disco#items, and a members-only
room gives its subject and number of occupants only to its members, so
it leaks nobody.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from convergence.xmpp import ns
from convergence.xmpp.features.disco import DiscoInfo, info_result
from convergence.xmpp.muc.affiliations import AFFILIATIONS
from convergence.xmpp.muc.archive import ARCHIVE_FEATURES
from convergence.xmpp.muc.ns import MUC, ROOMINFO, SELF_PING
from convergence.xmpp.muc.register import REGISTER
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Room
    from convergence.xmpp.muc.service import MucService

__all__ = ["room_info", "room_items", "service_info", "service_items"]

SERVICE_NAME = "Chatrooms"


def service_info(event: StanzaEvent) -> None:
    info = DiscoInfo((("conference", "text", "", SERVICE_NAME),),
                     (ns.DISCO_INFO, ns.DISCO_ITEMS, MUC, ns.PING))
    event.reply(info_result(event.stanza, info))


def service_items(service: MucService, event: StanzaEvent) -> None:
    """The public rooms of the service, by JID."""
    result = iq_result(event.stanza)
    query = etree.SubElement(result, f"{{{ns.DISCO_ITEMS}}}query",
                             nsmap={None: ns.DISCO_ITEMS})
    for room in sorted(service.rooms_of(event.to.host), key=lambda r: r.address):
        if room.config.public and not room.locked:
            etree.SubElement(query, f"{{{ns.DISCO_ITEMS}}}item", jid=room.address,
                             name=room.config.name or room.name)
    event.reply(result)


def room_features(room: Room) -> tuple[str, ...]:
    c = room.config
    return (
        ns.DISCO_INFO, MUC, SELF_PING,
        "muc_public" if c.public else "muc_hidden",
        "muc_persistent" if c.persistent else "muc_temporary",
        "muc_membersonly" if c.members_only else "muc_open",
        "muc_moderated" if c.moderated else "muc_unmoderated",
        "muc_nonanonymous" if c.non_anonymous else "muc_semianonymous",
        "muc_passwordprotected" if c.password_protected else "muc_unsecured",
        REGISTER,
        *(ARCHIVE_FEATURES if c.archive else ()),
    )


def room_info(room: Room, event: StanzaEvent) -> None:
    node = event.stanza[0].get("node")
    if node == "x-roomuser-item":  # 7.12: the asker's reserved nickname
        nick = room.nicks.get(str(event.sender.bare))
        identities = (("conference", "text", "", nick),) if nick else ()
        event.reply(info_result(event.stanza, DiscoInfo(identities, ()), node))
        return
    if node:
        event.reply_error("item-not-found")
        return
    # a members-only room tells only its members what goes on inside
    insider = not room.config.members_only or \
        AFFILIATIONS.index(room.affiliation(event.sender)) >= AFFILIATIONS.index("member")
    form = (("FORM_TYPE", (ROOMINFO,)),
            ("muc#roominfo_description", (room.config.description,)),
            *((("muc#roominfo_subject", (room.subject,)),
               ("muc#roominfo_occupants", (str(len(room.occupants)),))) if insider else ()),
            ("muc#roomconfig_roomname", (room.config.name,)),
            ("muc#maxhistoryfetch", (str(room.config.history_length),)))
    info = DiscoInfo((("conference", "text", "", room.config.name or room.name),),
                     room_features(room), (form,))
    event.reply(info_result(event.stanza, info))


def room_items(event: StanzaEvent) -> None:
    result = iq_result(event.stanza)
    etree.SubElement(result, f"{{{ns.DISCO_ITEMS}}}query", nsmap={None: ns.DISCO_ITEMS})
    event.reply(result)
