# -*- test-case-name: tests.test_sip_core -*-
"""
The chatline application: answers a SIP INVITE that offers a jabber chat
session (draft-sparks-simple-jabber-sessions, Figure 1).

It declines every other stream (port 0), accepts the first chat stream with
its own JID and the offered thread, keeps the caller's JID and thread in
the application session, and on BYE answers 200 and ends the session.
"""

from __future__ import annotations

from convergence.container import DeploymentDescriptor
from convergence.sip.sdp import Connection, NotAcceptable, OfferAnswer, Origin
from convergence.sip.sdp import answer_chat, jabber_chats
from convergence.sip.servlet import SipRequest, SipServlet, SipStatusError


class ChatlineServlet(SipServlet):
    """Accepts jabber chat sessions offered in SIP."""

    def jid(self, request: SipRequest) -> str:
        """Our own JID: chatline@ the served domain the call was made to."""
        domains = self.context.domains if self.context else ("localhost",)
        host = getattr(request.uri, "host", "")
        return f"chatline@{host if host in domains else domains[0]}"

    def do_invite(self, request: SipRequest) -> None:
        offer = request.sdp
        if offer is None:
            raise SipStatusError(488, "A jabber chat offer is required")
        chats = jabber_chats(offer)
        if not chats:
            raise NotAcceptable("no jabber chat stream offered")
        chat = chats[0]
        address = request.local_host
        answer = OfferAnswer(offer, Origin.create(address), Connection.for_address(address))
        for index in range(len(offer.media)):
            if index == chat.index:
                answer.modify(index, answer_chat(chat, self.jid(request)))
            else:
                answer.decline(index)
        session = request.application_session
        session["peer_jid"] = chat.jid
        session["thread"] = chat.thread
        session["jid"] = self.jid(request)
        response = request.create_response(200)
        response.set_sdp(answer.build())
        response.send()

    def do_bye(self, request: SipRequest) -> None:
        request.create_response(200).send()
        request.application_session.invalidate()


descriptor = DeploymentDescriptor(
    name="chatline",
    sip=["chatline@{domain}"],
    servlets={"sip": ChatlineServlet},
)
