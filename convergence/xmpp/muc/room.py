# -*- test-case-name: tests.test_muc_room -*-
"""
One room (XEP-0045 sections 7 and 8): its occupants, entering with the
checks of 7.2 and the status codes of the self-presence, leaving, nickname
changes (303), presence updates, groupchat fan-out in order, the subject,
history to a joining occupant and private messages; role and affiliation
changes and destruction, asked for by L{convergence.xmpp.muc.admin}.

A room only routes stanzas; the service (L{convergence.xmpp.muc.service})
owns the set of rooms, their store and the service's limits.
"""

from __future__ import annotations

import copy
import hmac
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lxml import etree

from convergence.xmpp.errors import StanzaError, error_reply, may_reply_with_error
from convergence.xmpp.jid import JID
from convergence.xmpp.muc import voice
from convergence.xmpp.muc.affiliations import default_role, rank
from convergence.xmpp.muc.flood import Bucket
from convergence.xmpp.muc.history import History, parse_request
from convergence.xmpp.muc.nick import BadNick, fold, prepare_nick
from convergence.xmpp.muc.ns import CLIENT, MUC, MUC_USER
from convergence.xmpp.muc.roomconfig import RoomConfig
from convergence.xmpp.router import StanzaEvent

if TYPE_CHECKING:
    from convergence.xmpp.muc.service import MucService

__all__ = ["Occupant", "Room"]

_X_MUC = f"{{{MUC}}}x"
_X_USER = f"{{{MUC_USER}}}x"


class Occupant:
    """
    One occupant: a nickname, the real full JIDs behind it and a role.

    One account may be in a room under one nickname from several
    resources at once (its phone and its laptop): each is a session, and
    the room sends to every session.  C{jid} is the session that sent
    presence last; the others see its presence.
    """

    __slots__ = ("bucket", "jid", "nick", "role", "sessions")

    def __init__(self, nick: str, jid: JID, role: str,
                 payload: list[etree._Element], bucket: Bucket | None = None) -> None:
        self.nick = nick
        self.jid = jid
        self.role = role
        #: each session's full JID -> the children of its last presence
        #: (show, status …), in the order they entered
        self.sessions: dict[JID, list[etree._Element]] = {jid: payload}
        #: what it may still send into the room (L{convergence.xmpp.muc.flood})
        self.bucket = bucket

    @property
    def payload(self) -> list[etree._Element]:
        """The presence children the others see."""
        return self.sessions[self.jid]

    def __repr__(self) -> str:
        return f"<Occupant {self.nick} {self.jid} {self.role}>"


def _payload(stanza: etree._Element) -> list[etree._Element]:
    return [copy.deepcopy(c) for c in stanza
            if isinstance(c.tag, str) and c.tag not in (_X_MUC, _X_USER)]


def _element(kind: str, from_: str, to: str, type_: str | None = None) -> etree._Element:
    element = etree.Element(f"{{{CLIENT}}}{kind}", nsmap={None: CLIENT})
    element.set("from", from_)
    element.set("to", to)
    if type_ is not None:
        element.set("type", type_)
    return element


def refuse(event: StanzaEvent, condition: str, text: str | None = None) -> None:
    """Answer a presence to a room with an error that carries the MUC
    C{<x/>} (7.2.x examples; clients match errors to joins by it), never
    the password it may have held; anything else with a plain error."""
    if event.kind != "presence":
        event.reply_error(condition, text)
        return
    if not may_reply_with_error(event.stanza):
        return
    reply = error_reply(event.stanza, StanzaError(condition, text))
    reply.insert(0, etree.Element(_X_MUC, nsmap={None: MUC}))
    event.router.route(reply)


class Room:
    """The state of one room and the rules of XEP-0045 that change it."""

    def __init__(self, service: MucService, jid: JID, config: RoomConfig,
                 created: float) -> None:
        self.service = service
        self.jid = jid
        self.address = str(jid)
        self.config = config
        self.created = created
        #: bare JID -> owner, admin, member or outcast
        self.affiliations: dict[str, str] = {}
        #: bare JID of a member, admin or owner -> its reserved nickname
        self.nicks: dict[str, str] = {}
        #: by nickname, in the order they entered
        self.occupants: dict[str, Occupant] = {}
        self.by_jid: dict[JID, Occupant] = {}
        self._folded: dict[str, str] = {}
        self.subject = ""
        self.subject_from = ""
        self.history = History(config.history_length)
        #: a new room waits for its owner's configuration (10.1.1)
        self.locked = False
        self._outbox: deque[etree._Element] = deque()
        self._hold = 0
        self._flushing = False

    def __repr__(self) -> str:
        return f"<Room {self.address} {len(self.occupants)} occupants>"

    @property
    def name(self) -> str:
        return self.jid.user or ""

    # Affiliations
    def affiliation(self, jid: JID) -> str:
        """The affiliation of C{jid}'s bare JID (service admins own every room)."""
        bare = str(jid.bare)
        if bare in self.service.admins:
            return "owner"
        return self.affiliations.get(bare, "none")

    def owners(self) -> list[str]:
        return [j for j, a in self.affiliations.items() if a == "owner"]

    # Stanzas out, in order
    def _send(self, stanza: etree._Element) -> None:
        """Queue C{stanza}; it goes out after everything queued before it.
        A stanza an occupant sends in reaction (an application answers
        synchronously) thus never overtakes the rest of a fan-out."""
        self._outbox.append(stanza)
        if not self._hold:
            self._flush()

    def _flush(self) -> None:
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._outbox:
                self.service.route(self._outbox.popleft())
        finally:
            self._flushing = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Send what is queued inside only at the end: one stanza's whole
        effect (a join: presence, history, subject) goes out together."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
            if not self._hold:
                self._flush()

    def send_to(self, receiver: Occupant, stanza: etree._Element) -> None:
        """Send C{stanza} from the room to every session of C{receiver}."""
        self._to(receiver, stanza)

    def _to(self, receiver: Occupant, stanza: etree._Element) -> None:
        """Send C{stanza} to every session of C{receiver}."""
        sessions = receiver.sessions
        if len(sessions) == 1:
            stanza.set("to", str(receiver.jid))
            self._send(stanza)
            return
        for jid in sessions:
            out = copy.copy(stanza)
            out.set("to", str(jid))
            self._send(out)

    def _occupant_jid(self, occupant: Occupant) -> str:
        return f"{self.address}/{occupant.nick}"

    def _presence(self, occupant: Occupant, receiver: Occupant, codes: Iterable[str] = (),
                  type_: str | None = None, item_extra: dict[str, str] | None = None,
                  actor: str | None = None, reason: str | None = None,
                  payload: list[etree._Element] | None = None,
                  gone: bool = False, to: JID | None = None) -> etree._Element:
        """The presence of C{occupant} as C{receiver} sees it (C{gone}: it
        left, its role is none), to C{to} or the receiver's last session."""
        p = _element("presence", self._occupant_jid(occupant), str(to or receiver.jid), type_)
        for child in occupant.payload if payload is None else payload:
            p.append(copy.deepcopy(child))
        x = etree.SubElement(p, _X_USER, nsmap={None: MUC_USER})
        item = etree.SubElement(x, f"{{{MUC_USER}}}item",
                                affiliation=self.affiliation(occupant.jid),
                                role="none" if gone else occupant.role)
        if self.config.non_anonymous or receiver.role == "moderator" \
                or receiver is occupant:
            item.set("jid", str(occupant.jid))
        for k, v in (item_extra or {}).items():
            item.set(k, v)
        if actor is not None:
            etree.SubElement(item, f"{{{MUC_USER}}}actor", nick=actor)
        if reason:
            etree.SubElement(item, f"{{{MUC_USER}}}reason").text = reason
        for code in codes:
            etree.SubElement(x, f"{{{MUC_USER}}}status", code=code)
        return p

    def broadcast_presence(self, occupant: Occupant, self_codes: Iterable[str] = (),
                           codes: Iterable[str] = (), type_: str | None = None,
                           notify_self: bool = True, **kwargs) -> None:
        """C{occupant}'s presence to every occupant, itself last with 110."""
        codes = tuple(codes)
        for other in list(self.occupants.values()):
            if other is not occupant:
                self._to(other, self._presence(occupant, other, codes, type_, **kwargs))
        if notify_self:
            self._to(occupant, self._presence(occupant, occupant,
                                      ("110", *codes, *self_codes), type_, **kwargs))

    def status_message(self, codes: Iterable[str],
                       to: Iterable[Occupant] | None = None) -> None:
        """A message from the room with status codes (104, 172 …)."""
        for occupant in list(self.occupants.values()) if to is None else to:
            message = _element("message", self.address, str(occupant.jid), "groupchat")
            x = etree.SubElement(message, _X_USER, nsmap={None: MUC_USER})
            for code in codes:
                etree.SubElement(x, f"{{{MUC_USER}}}status", code=code)
            self._to(occupant, message)

    # Presence in
    def on_presence(self, event: StanzaEvent) -> None:
        occupant = self.by_jid.get(event.sender)
        type_ = event.type
        if type_ == "error":
            if occupant is not None:  # its client is gone (17.3.x): out with 333
                self.depart(event.sender, ("333",), notify_self=False)
            return
        if type_ == "unavailable":
            if occupant is not None:
                self.depart(event.sender, payload=_payload(event.stanza))
            return
        if type_ is not None:
            return  # probes and subscriptions mean nothing to a room
        if occupant is not None and self.flooding(occupant, event):
            return
        if occupant is None:
            self.enter(event)
        elif event.to.resource != occupant.nick:
            self.change_nick(event, occupant)
        else:
            occupant.sessions[event.sender] = _payload(event.stanza)
            occupant.jid = event.sender
            self.broadcast_presence(occupant)

    def flooding(self, occupant: Occupant, event: StanzaEvent) -> bool:
        """Whether C{occupant} sent too much: then C{event} is refused."""
        bucket = occupant.bucket
        if bucket is None or bucket.take(self.service.now()):
            return False
        self.service.server.router.bounce(event.stanza, StanzaError(
            "policy-violation", "You are sending too fast; wait a moment", "wait"))
        return True

    def _nick(self, event: StanzaEvent) -> str | None:
        try:
            return prepare_nick(event.to.resource, self.service.max_nick_length)
        except BadNick as e:
            refuse(event, e.condition, e.text)
            return None

    def enter_error(self, event: StanzaEvent, nick: str) -> tuple[str, str] | None:
        """Why C{event}'s sender may not enter as C{nick} (7.2), or C{None}."""
        affiliation = self.affiliation(event.sender)
        if self.locked and affiliation != "owner":
            return "item-not-found", "The room is not configured yet"
        if affiliation == "outcast":
            return "forbidden", "You are banned from this room"
        holder = self.occupants.get(self._folded.get(fold(nick), ""))
        if holder is not None and holder.jid.bare != event.sender.bare:
            return "conflict", "That nickname is in use"
        if self.reserved_by(nick) not in (None, str(event.sender.bare)):
            return "conflict", "That nickname is reserved"
        if self.config.members_only and rank(affiliation) < rank("member"):
            return "registration-required", "The room is for members only"
        if self.config.password and affiliation != "owner":
            x = event.stanza.find(_X_MUC)
            given = (x.findtext(f"{{{MUC}}}password") if x is not None else None) or ""
            if not hmac.compare_digest(given.encode(), self.config.password.encode()):
                return "not-authorized", "A password is required"
        if holder is None and len(self.occupants) >= self.max_users() \
                and affiliation not in ("owner", "admin"):
            return "service-unavailable", "The room is full"
        return None

    def holder_of(self, nick: str) -> Occupant | None:
        """The occupant whose nickname conflicts with C{nick}, if any."""
        return self.occupants.get(self._folded.get(fold(nick), ""))

    def reserved_by(self, nick: str) -> str | None:
        """The bare JID that reserved C{nick} (9.3), if any."""
        key = fold(nick)
        for bare, reserved in self.nicks.items():
            if fold(reserved) == key:
                return bare
        return None

    def max_users(self) -> int:
        limit = self.service.max_occupants
        return min(self.config.max_users, limit) if self.config.max_users else limit

    def enter(self, event: StanzaEvent, created: bool = False) -> None:
        """A new occupant (7.2): the others' presence to it, its presence to
        them and back to itself, then history and the subject."""
        raw = event.to.resource
        nick = self._nick(event)
        if nick is None:
            return
        refused = self.enter_error(event, nick)
        if refused is not None:
            refuse(event, *refused)
            return
        sender = event.sender
        occupant = self.occupants.get(self._folded.get(fold(nick), ""))
        if occupant is not None:  # another session of the same account
            nick = occupant.nick
            for other in self.occupants.values():
                if other is not occupant:
                    self._send(self._presence(other, occupant, to=sender))
            occupant.sessions[sender] = _payload(event.stanza)
            occupant.jid = sender
        else:
            affiliation = self.affiliation(sender)
            occupant = Occupant(nick, sender, default_role(affiliation, self.config.moderated),
                                _payload(event.stanza), self.service.bucket())
            for other in self.occupants.values():
                self._send(self._presence(other, occupant))
            self.occupants[nick] = occupant
            self._folded[fold(nick)] = nick
        self.by_jid[sender] = occupant
        self.service.entered(self, sender)
        codes = ["100"] if self.config.non_anonymous else []
        if self.config.archive:  # 7.2.12: the discussion is kept (XEP-0313)
            codes.append("170")
        if created:
            codes.append("201")
        if nick != raw:
            codes.append("210")
        self.broadcast_presence(occupant, self_codes=codes)
        x = event.stanza.find(_X_MUC)
        if x is None and created:
            self.locked = False  # a client without MUC support: an instant room
        request = parse_request(x)
        now = self.service.now()
        for when, message in self.history.select(request, now, self.config.history_length):
            self._send(History.delayed(message, when, self.address, str(sender)))
        self._send(self._subject_message(str(sender)))

    def _subject_message(self, to: str) -> etree._Element:
        from_ = f"{self.address}/{self.subject_from}" if self.subject_from else self.address
        message = _element("message", from_, to, "groupchat")
        etree.SubElement(message, f"{{{CLIENT}}}subject").text = self.subject or None
        return message

    def change_nick(self, event: StanzaEvent, occupant: Occupant) -> None:
        """7.6: unavailable with 303 from the old nickname, then the new."""
        raw = event.to.resource
        nick = self._nick(event)
        if nick is None:
            return
        key = fold(nick)
        if key in self._folded and self._folded[key] != occupant.nick:
            refuse(event, "conflict", "That nickname is in use")
            return
        if self.reserved_by(nick) not in (None, str(event.sender.bare)):
            refuse(event, "conflict", "That nickname is reserved")
            return
        self.broadcast_presence(occupant, codes=("303",), type_="unavailable",
                                item_extra={"nick": nick})
        del self.occupants[occupant.nick]
        del self._folded[fold(occupant.nick)]
        occupant.nick = nick
        occupant.sessions[event.sender] = _payload(event.stanza)
        occupant.jid = event.sender
        self.occupants[nick] = occupant
        self._folded[key] = nick
        self.broadcast_presence(occupant, self_codes=("210",) if nick != raw else ())

    def remove(self, occupant: Occupant, codes: Iterable[str] = (), actor: str | None = None,
               reason: str | None = None, notify_self: bool = True,
               payload: list[etree._Element] | None = None) -> None:
        """C{occupant} leaves, or is made to (307 kicked, 301 banned …)."""
        if self.occupants.get(occupant.nick) is not occupant:
            return
        self.broadcast_presence(occupant, codes=codes, type_="unavailable",
                                notify_self=notify_self, actor=actor, reason=reason,
                                payload=payload or [], gone=True)
        del self.occupants[occupant.nick]
        del self._folded[fold(occupant.nick)]
        for jid in occupant.sessions:
            del self.by_jid[jid]
            self.service.left(self, jid, drop=False)
        self.service.maybe_drop(self)

    def depart(self, jid: JID, codes: Iterable[str] = (), notify_self: bool = True,
               payload: list[etree._Element] | None = None) -> None:
        """The session C{jid} leaves: the occupant with it when it was its
        last; otherwise only that session is told, and the others see the
        presence of the occupant's remaining session."""
        occupant = self.by_jid.get(jid)
        if occupant is None:
            return
        if len(occupant.sessions) == 1:
            self.remove(occupant, codes, notify_self=notify_self, payload=payload)
            return
        if notify_self:
            self._send(self._presence(occupant, occupant, ("110", *codes), "unavailable",
                                      payload=payload or [], gone=True, to=jid))
        del occupant.sessions[jid]
        del self.by_jid[jid]
        self.service.left(self, jid, drop=False)
        if occupant.jid == jid:
            occupant.jid = next(reversed(occupant.sessions))
        self.broadcast_presence(occupant)

    # Messages in
    def on_message(self, event: StanzaEvent) -> None:
        occupant = self.by_jid.get(event.sender)
        if event.type == "error":
            if occupant is not None:  # a message to it bounced: its client is gone
                self.remove(occupant, ("333",), notify_self=False)
            return
        if occupant is not None and self.flooding(occupant, event):
            return
        if event.to.resource is not None:
            self.private_message(event, occupant)
            return
        if event.type != "groupchat":
            if not self.service.invitations.handle(self, event, occupant) \
                    and not voice.handle(self, event, occupant):
                event.reply_error("bad-request", "Send messages of type groupchat")
            return
        if occupant is None:
            event.reply_error("not-acceptable", "You are not in this room")
            return
        stanza = event.stanza
        subject = stanza.find(f"{{{CLIENT}}}subject")
        body = stanza.find(f"{{{CLIENT}}}body")
        if occupant.role not in ("participant", "moderator"):
            event.reply_error("forbidden", "You have no voice in this room")
            return
        if subject is not None and body is None:
            if occupant.role != "moderator" and not self.config.change_subject:
                event.reply_error("forbidden", "Only moderators may change the subject")
                return
            self.subject = subject.text or ""
            self.subject_from = occupant.nick
            self.service.save(self)
        self.groupchat(stanza, occupant.nick, history=body is not None, sender=occupant.jid)

    def groupchat(self, stanza: etree._Element, nick: str | None,
                  history: bool = True, sender: JID | None = None) -> None:
        """Reflect a message to every occupant, in order, from C{nick}
        (C{sender}: its real JID), archived first (it gets its stanza-id)."""
        out = copy.deepcopy(stanza)
        out.set("from", f"{self.address}/{nick}" if nick else self.address)
        out.set("type", "groupchat")
        out.attrib.pop("to", None)
        for child in list(out):
            if child.tag == _X_USER:
                out.remove(child)
        self.service.archives.archive(self, out, sender)
        if history:
            self.history.add(out, self.service.now())
        for occupant in list(self.occupants.values()):
            for jid in occupant.sessions:
                message = copy.copy(out)
                message.set("to", str(jid))
                self._send(message)

    def private_message(self, event: StanzaEvent, sender: Occupant | None) -> None:
        """7.5: a message to one occupant, from the sender's nickname."""
        if event.type == "groupchat":
            event.reply_error("bad-request", "Groupchat messages go to the room")
            return
        if sender is None:
            event.reply_error("not-acceptable", "You are not in this room")
            return
        target = self.occupants.get(event.to.resource or "")
        if target is None:
            event.reply_error("item-not-found", "No such occupant")
            return
        out = copy.deepcopy(event.stanza)
        out.set("from", self._occupant_jid(sender))
        if out.find(_X_USER) is None:
            etree.SubElement(out, _X_USER, nsmap={None: MUC_USER})
        self._to(target, out)

    # Changes asked for by moderators, admins and owners
    def set_role(self, target: Occupant, role: str, actor: Occupant | None,
                 reason: str | None) -> None:
        actor_nick = actor.nick if actor is not None else None
        if role == "none":
            self.remove(target, ("307",), actor=actor_nick, reason=reason)
            return
        target.role = role
        self.broadcast_presence(target, actor=actor_nick, reason=reason)

    def set_affiliation(self, bare: str, affiliation: str, actor: Occupant | None,
                        reason: str | None, nick: str | None = None) -> None:
        """Change C{bare}'s affiliation; C{nick} reserves a nickname for a
        member, admin or owner (an empty one frees it; none keeps it)."""
        if affiliation == "none":
            self.affiliations.pop(bare, None)
        else:
            self.affiliations[bare] = affiliation
        if affiliation in ("none", "outcast") or nick == "":
            self.nicks.pop(bare, None)
        elif nick is not None:
            self.nicks[bare] = nick
        self.service.save(self)
        actor_nick = actor.nick if actor is not None else None
        for occupant in [o for o in self.occupants.values() if str(o.jid.bare) == bare]:
            effective = self.affiliation(occupant.jid)
            if effective == "outcast":
                self.remove(occupant, ("301",), actor=actor_nick, reason=reason)
            elif self.config.members_only and rank(effective) < rank("member"):
                self.remove(occupant, ("321",), actor=actor_nick, reason=reason)
            else:
                if effective in ("owner", "admin"):
                    occupant.role = "moderator"
                elif occupant.role == "moderator" or occupant.role == "visitor":
                    occupant.role = default_role(effective, self.config.moderated)
                self.broadcast_presence(occupant, actor=actor_nick, reason=reason)

    def reconfigure(self, config: RoomConfig) -> None:
        """An owner submitted a configuration (10.2): apply it and tell the
        occupants what changed (104, 170, 171, 172, 173; 322 to those now
        left out)."""
        old = self.config
        self.config = config
        self.locked = False
        if config.history_length != old.history_length:
            self.history.resize(config.history_length)
        if config.members_only and not old.members_only:
            for occupant in list(self.occupants.values()):
                if rank(self.affiliation(occupant.jid)) < rank("member"):
                    self.remove(occupant, ("322",))
        codes = []
        if config.archive != old.archive:
            codes.append("170" if config.archive else "171")
        if config.non_anonymous != old.non_anonymous:
            codes.append("172" if config.non_anonymous else "173")
        if codes or config != old:
            self.status_message(("104", *codes))
        self.service.save(self, was_persistent=old.persistent)
        self.service.maybe_drop(self)

    def destroy(self, alternate: str | None, reason: str | None,
                password: str | None) -> None:
        """10.9: every occupant out with C{<destroy/>}, the room gone."""
        for occupant in list(self.occupants.values()):
            p = _element("presence", self._occupant_jid(occupant), str(occupant.jid),
                         "unavailable")
            x = etree.SubElement(p, _X_USER, nsmap={None: MUC_USER})
            etree.SubElement(x, f"{{{MUC_USER}}}item", affiliation="none", role="none")
            destroy = etree.SubElement(x, f"{{{MUC_USER}}}destroy")
            if alternate:
                destroy.set("jid", alternate)
            if reason:
                etree.SubElement(destroy, f"{{{MUC_USER}}}reason").text = reason
            if password:
                etree.SubElement(destroy, f"{{{MUC_USER}}}password").text = password
            self._to(occupant, p)
            del self.occupants[occupant.nick]
            for jid in occupant.sessions:
                del self.by_jid[jid]
                self.service.left(self, jid, drop=False)
        self._folded.clear()
        self.service.destroyed(self)
