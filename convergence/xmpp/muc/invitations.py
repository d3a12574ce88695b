# -*- test-case-name: tests.test_muc_room -*-
"""
Mediated invitations (XEP-0045 7.8.2) and their declines (7.8.3): an
occupant asks the room to invite someone; the room sends the invitation
from itself with the inviter's real JID and, for a password-protected
room, the password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.muc.affiliations import rank
from convergence.xmpp.muc.ns import CLIENT, MUC_USER
from convergence.xmpp.router import StanzaEvent

if TYPE_CHECKING:
    from convergence.xmpp.muc.room import Occupant, Room

__all__ = ["Invitations"]

_X_USER = f"{{{MUC_USER}}}x"


class Invitations:
    """Invitations and declines through a room."""

    def handle(self, room: Room, event: StanzaEvent, occupant: Occupant | None) -> bool:
        """Whether C{event} was an invitation or a decline (answered either way)."""
        x = event.stanza.find(_X_USER)
        if x is None:
            return False
        invite = x.find(f"{{{MUC_USER}}}invite")
        decline = x.find(f"{{{MUC_USER}}}decline")
        if invite is not None:
            self.invite(room, event, occupant, invite)
            return True
        if decline is not None:
            self.decline(room, event, decline)
            return True
        return False

    @staticmethod
    def _target(event: StanzaEvent, element: etree._Element) -> JID | None:
        try:
            return JID.parse(element.get("to", ""))
        except InvalidJID:
            event.reply_error("jid-malformed", "Bad invitee")
            return None

    def invite(self, room: Room, event: StanzaEvent, occupant: Occupant | None,
               invite: etree._Element) -> None:
        if occupant is None:
            event.reply_error("not-acceptable", "You are not in this room")
            return
        if room.config.members_only and not room.config.allow_invites \
                and rank(room.affiliation(occupant.jid)) < rank("admin"):
            event.reply_error("forbidden", "Only admins may invite to this room")
            return
        to = self._target(event, invite)
        if to is None:
            return
        message = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        message.set("from", room.address)
        message.set("to", str(to))
        x = etree.SubElement(message, _X_USER, nsmap={None: MUC_USER})
        out = etree.SubElement(x, f"{{{MUC_USER}}}invite")
        out.set("from", str(event.sender))
        reason = invite.findtext(f"{{{MUC_USER}}}reason")
        if reason:
            etree.SubElement(out, f"{{{MUC_USER}}}reason").text = reason
        if room.config.password:
            etree.SubElement(x, f"{{{MUC_USER}}}password").text = room.config.password
        room.service.route(message)

    def decline(self, room: Room, event: StanzaEvent, decline: etree._Element) -> None:
        to = self._target(event, decline)
        if to is None:
            return
        message = etree.Element(f"{{{CLIENT}}}message", nsmap={None: CLIENT})
        message.set("from", room.address)
        message.set("to", str(to))
        x = etree.SubElement(message, _X_USER, nsmap={None: MUC_USER})
        out = etree.SubElement(x, f"{{{MUC_USER}}}decline")
        out.set("from", str(event.sender.bare))
        reason = decline.findtext(f"{{{MUC_USER}}}reason")
        if reason:
            etree.SubElement(out, f"{{{MUC_USER}}}reason").text = reason
        room.service.route(message)
