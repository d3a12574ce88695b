# -*- test-case-name: tests.test_sip_core -*-
"""
The chatline application: answers a SIP INVITE that offers a jabber chat
session (draft-sparks-simple-jabber-sessions, Figure 1).

It declines every other stream (port 0), accepts the first chat stream with
its own JID and the offered thread, keeps the caller's JID and thread in
the application session, and on BYE answers 200 and ends the session.

An INVITE without an offer (RFC 3261 13.2.1) gets a 200 offering a chat
(its JID and a new thread; in a re-INVITE, the session as it stands); the
caller's JID comes from the answer in the ACK.
"""

from __future__ import annotations

import copy
import secrets

from convergence.container import DeploymentDescriptor
from convergence.sip.sdp import (
    Connection,
    NotAcceptable,
    OfferAnswer,
    Origin,
    answer_chat,
    chat_media,
    jabber_chats,
)
from convergence.sip.servlet import SipRequest, SipServlet

#: The jabber server port our chat offers name (with our address in c=).
XMPP_PORT = 5222


class ChatlineServlet(SipServlet):
    """Accepts jabber chat sessions offered in SIP."""

    def jid(self, request: SipRequest) -> str:
        """Our own JID: chatline@ the served domain the call was made to."""
        domains = self.context.domains if self.context else ("localhost",)
        host = getattr(request.uri, "host", "")
        return f"chatline@{host if host in domains else domains[0]}"

    def do_invite(self, request: SipRequest) -> None:
        if request.needs_offer:
            self.offer_chat(request)
            return
        offer = request.sdp
        assert offer is not None
        chats = jabber_chats(offer)
        if not chats:
            raise NotAcceptable("no jabber chat stream offered")
        chat = chats[0]
        jid = self.jid(request)
        address = request.local_host
        answer = OfferAnswer(offer, Origin.create(address), Connection.for_address(address))
        for index in range(len(offer.media)):
            if index == chat.index:
                answer.modify(index, answer_chat(chat, jid))
            else:
                answer.decline(index)
        session = request.application_session
        session["peer_jid"] = chat.jid
        session["thread"] = chat.thread
        session["jid"] = jid
        response = request.create_response(200)
        response.set_sdp(answer.build())
        response.send()

    def offer_chat(self, request: SipRequest) -> None:
        """Delayed offer: our chat in the 200, the answer comes in the ACK."""
        session = request.application_session
        previous = request.session.local_sdp
        if previous is not None:  # a re-INVITE: offer the session as it is
            media = copy.deepcopy(previous.media)
        else:
            session["jid"] = self.jid(request)
            session["thread"] = secrets.token_hex(8)
            media = [chat_media(session["jid"], session["thread"], XMPP_PORT)]
        response = request.create_response(200)
        response.set_sdp(request.create_offer(media))
        response.send()

    def do_ack(self, request: SipRequest) -> None:
        answer = request.answer
        if answer is None:
            return
        chats = jabber_chats(answer)
        if not chats:  # accepted, but no a=jid to chat with
            request.application_session.invalidate()  # BYE
            return
        request.application_session["peer_jid"] = chats[0].jid

    def do_bye(self, request: SipRequest) -> None:
        request.create_response(200).send()
        request.application_session.invalidate()


descriptor = DeploymentDescriptor(
    name="chatline",
    sip=["chatline@{domain}"],
    servlets={"sip": ChatlineServlet},
)
