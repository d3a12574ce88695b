# -*- test-case-name: tests.test_sip_dialog -*-
"""
Dialogs (RFC 3261 section 12): creation from INVITE and its 2xx (or a 1xx
with a To tag: early), route sets, CSeq ordering, remote target refresh,
building requests inside the dialog, and the dialog's RFC 3264 offer/answer
state (an offer in the INVITE answered in the 2xx, or, for an INVITE
without one, our offer in the 2xx answered in the ACK: RFC 3261 13.2.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convergence.entropy import random_below, random_hex
from convergence.sip.message import Request, make_request
from convergence.sip.sdp import (
    NotAcceptable,
    SessionDescription,
    check_answer,
    parse_sdp,
)
from convergence.sip.uri import NameAddr, SipUri

EARLY = "early"
CONFIRMED = "confirmed"
TERMINATED = "terminated"

#: Methods that refresh the remote target (RFC 3261 12.2, RFC 3311).
TARGET_REFRESH = frozenset(("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"))


def new_tag() -> str:
    """A fresh From/To tag."""
    return random_hex(6)


def _untagged(addr: NameAddr) -> NameAddr:
    """C{addr} without its tag, a value of its own (its URI, read-only in
    a received message, is shared: a dialog never changes it)."""
    out = NameAddr.__new__(NameAddr)
    out.uri, out.display_name = addr.uri, addr.display_name
    out.params = {name: value for name, value in addr.params.items() if name != "tag"}
    return out


class CSeqOutOfOrder(Exception):
    """A request's CSeq is lower than the dialog's remote sequence."""


def _kept(sdp: SessionDescription | None, body: bytes | None) -> bytes | None:
    """What a dialog keeps of a negotiated description: its bytes."""
    if sdp is None:
        return None
    return body if body else sdp.serialize()


@dataclass(slots=True)
class Dialog:
    """
    One dialog, from our side.

    The negotiated descriptions are kept as the bytes that went over the
    wire (a parsed description is about 40 objects, most of a dialog's
    memory); C{local_sdp} and C{remote_sdp} parse them on each read, which
    only a re-INVITE or the application asks for.
    """

    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: Any
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    secure: bool = False
    state: str = EARLY
    is_uas: bool = True
    invite_cseq: int = 0
    #: Our and the peer's session descriptions as last negotiated, as sent.
    local_body: bytes | None = None
    remote_body: bytes | None = None
    #: Our offer in a 2xx to an INVITE that had none, until the ACK answers.
    pending_offer: SessionDescription | None = None

    @property
    def local_sdp(self) -> SessionDescription | None:
        """Our session description as last negotiated (a fresh parse)."""
        return parse_sdp(self.local_body) if self.local_body is not None else None

    @local_sdp.setter
    def local_sdp(self, sdp: SessionDescription | None) -> None:
        self.local_body = _kept(sdp, None)

    @property
    def remote_sdp(self) -> SessionDescription | None:
        """The peer's session description as last negotiated (a fresh parse)."""
        return parse_sdp(self.remote_body) if self.remote_body is not None else None

    @remote_sdp.setter
    def remote_sdp(self, sdp: SessionDescription | None) -> None:
        self.remote_body = _kept(sdp, None)

    @property
    def id(self) -> tuple[str, str, str | None]:
        """The dialog ID: Call-ID, local tag, remote tag."""
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uas(cls, request: Request, response: Any) -> Dialog:
        """RFC 3261 12.1.1: the dialog a UAS creates by answering."""
        contacts = request.contacts
        from_ = request.from_
        to = response.to
        return cls(
            call_id=request.call_id,
            local_tag=to.tag,
            remote_tag=from_.tag,
            local_uri=_untagged(to),
            remote_uri=_untagged(from_),
            remote_target=contacts[0].uri if contacts else from_.uri,
            route_set=([str(r) for r in request.record_routes]
                       if "Record-Route" in request.headers else []),
            local_seq=random_below(2 ** 31 - 1) + 1,
            remote_seq=request.cseq[0],
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=CONFIRMED if 200 <= response.status < 300 else EARLY,
            is_uas=True,
            invite_cseq=request.cseq[0],
        )

    @classmethod
    def for_uac(cls, request: Request, response: Any) -> Dialog:
        """RFC 3261 12.1.2: the dialog a UAC creates from a response."""
        contacts = response.contacts
        local_uri = request.from_.copy()
        local_uri.params.pop("tag", None)
        remote_uri = response.to.copy()
        remote_uri.params.pop("tag", None)
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag,
            remote_tag=response.to.tag,
            local_uri=local_uri,
            remote_uri=remote_uri,
            remote_target=contacts[0].uri if contacts else request.uri,
            route_set=[str(r) for r in reversed(response.record_routes)],
            local_seq=request.cseq[0],
            remote_seq=None,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=CONFIRMED if 200 <= response.status < 300 else EARLY,
            is_uas=False,
            invite_cseq=request.cseq[0],
        )

    def confirm(self, response: Any) -> None:
        """A 2xx arrived or was sent: the dialog is confirmed."""
        self.state = CONFIRMED
        if not self.is_uas:
            contacts = response.contacts
            if contacts:
                self.remote_target = contacts[0].uri
            self.route_set = [str(r) for r in reversed(response.record_routes)]

    # Offer/answer (RFC 3264; RFC 3261 13.2.1)
    def answer_sent(self, offer: SessionDescription | None,
                    answer: SessionDescription | None,
                    offer_body: bytes | None = None,
                    answer_body: bytes | None = None) -> None:
        """
        We answered the peer's C{offer} (from the INVITE) in our 2xx.

        @param offer_body: C{offer} as received, and C{answer_body}
            C{answer} as sent, when known (else they are serialised).
        """
        self.remote_body = _kept(offer, offer_body)
        if answer is not None:
            self.local_body = _kept(answer, answer_body)
        self.pending_offer = None

    def offer_sent(self, offer: SessionDescription) -> None:
        """Our C{offer} went in a 2xx to an INVITE without one: the ACK answers."""
        self.pending_offer = offer

    @property
    def awaiting_answer(self) -> bool:
        """Whether our offer in a 2xx still waits for the ACK's answer."""
        return self.pending_offer is not None

    def receive_answer(self, answer: SessionDescription | None,
                       body: bytes | None = None) -> None:
        """
        The ACK's SDP, answering our pending offer: on success it becomes
        the negotiated session.

        @raise NotAcceptable: no answer, or one that answers no stream of
            the offer (the dialog must then end with BYE).
        """
        offer = self.pending_offer
        if offer is None:
            return
        self.pending_offer = None
        if answer is None:
            raise NotAcceptable("the ACK carries no answer to the offer in the 2xx")
        check_answer(offer, answer)
        self.local_body = _kept(offer, None)
        self.remote_body = _kept(answer, body)

    def receive_request(self, request: Request) -> None:
        """
        RFC 3261 12.2.2: check CSeq order and refresh the remote target.

        @raise CSeqOutOfOrder: the request is older than one already seen.
        """
        if request.method in ("ACK", "CANCEL"):
            return
        number = request.cseq[0]
        if self.remote_seq is not None and number < self.remote_seq:
            raise CSeqOutOfOrder(number)
        self.remote_seq = number
        if request.method in TARGET_REFRESH:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri

    def create_request(self, method: str, via: str, contact: str | None = None) -> Request:
        """
        A request inside the dialog (RFC 3261 12.2.1.1): loose or strict
        routing from the route set, the next local CSeq (the INVITE's for
        ACK).
        """
        if method == "ACK":
            cseq = self.invite_cseq
        else:
            self.local_seq += 1
            cseq = self.local_seq
        routes = list(self.route_set)
        uri: Any = self.remote_target
        if routes:
            first = NameAddr.parse(routes[0])
            if "lr" not in getattr(first.uri, "params", {}):
                # Strict routing: the first route becomes the Request-URI.
                uri = first.uri
                routes = routes[1:] + [f"<{self.remote_target}>"]
        local = self.local_uri.copy()
        local.tag = self.local_tag
        remote = self.remote_uri.copy()
        if self.remote_tag:
            remote.tag = self.remote_tag
        request = make_request(
            method, uri, local, remote, self.call_id, cseq, via,
            contact=contact, headers=[("Route", r) for r in routes],
        )
        return request
