# -*- test-case-name: tests.test_selfhelp -*-
"""
The self-help bot's SIP side: INVITEs offering a jabber chat session
(draft-sparks-simple-jabber-sessions) are accepted and the chat is opened
over XMPP; BYE ends it.  An INVITE without an offer gets the bot's chat
offer in the 200, and the chat opens once the ACK's answer names the
customer's JID.  The bot also invites SIP agents the same way.
"""

from __future__ import annotations

import secrets
from typing import Any

from apps.selfhelp import conversation, menu
from convergence.sip.sdp import (
    Connection,
    NotAcceptable,
    OfferAnswer,
    Origin,
    SessionDescription,
    answer_chat,
    chat_media,
    jabber_chats,
)
from convergence.sip.servlet import SipRequest, SipResponse, SipServlet, SipStatusError


def thread_key(request: SipRequest) -> str | None:
    """The SIP application key: the offered chat's a=thread."""
    offer = request.sdp
    chats = jabber_chats(offer) if offer is not None else []
    return chats[0].thread if chats and chats[0].thread else None


class SelfhelpSipServlet(SipServlet):
    """Accepts SIP-invited jabber chats and ends them on BYE."""

    def do_invite(self, request: SipRequest) -> None:
        app_session = request.application_session
        if not request.is_initial:
            raise SipStatusError(488, "Re-INVITE not supported by this bot")
        bot = conversation.bot_jid(self.context, getattr(request.uri, "host", None))
        if request.needs_offer:
            self.offer_chat(request, bot)
            return
        offer = request.sdp
        assert offer is not None
        chats = jabber_chats(offer)
        if not chats:
            raise NotAcceptable("no jabber chat stream offered")
        chat = chats[0]
        guest = app_session.get("guest_jid")
        if guest and chat.jid.split("/", 1)[0] != guest:
            # the web page's conversation (web.py): only its own guest calls in it
            raise SipStatusError(403, "Not this conversation's visitor")
        address = request.local_host
        answer = OfferAnswer(offer, Origin.create(address), Connection.for_address(address))
        for index in range(len(offer.media)):
            if index == chat.index:
                answer.modify(index, answer_chat(chat, bot))
            else:
                answer.decline(index)
        if app_session.get("channel") != "web":  # a call from the page stays "web"
            app_session["channel"] = "sip"
        app_session["customer_jid"] = chat.jid
        app_session["thread"] = chat.thread
        app_session["bot_jid"] = bot
        response = request.create_response(200)
        response.set_sdp(answer.build())
        response.send()
        # The bot opens the chat itself, in the offered thread.
        conversation.say(self.context, app_session, menu.greeting())

    def offer_chat(self, request: SipRequest, bot: str) -> None:
        """Delayed offer: the bot's chat in the 200, in a new thread."""
        app_session = request.application_session
        thread = secrets.token_hex(8)
        app_session["channel"] = "sip"
        app_session["thread"] = thread
        app_session["bot_jid"] = bot
        app_session.bind_key(thread)  # the customer's XMPP messages join here
        response = request.create_response(200)
        response.set_sdp(request.create_offer([chat_media(bot, thread, 5222)]))
        response.send()

    def do_ack(self, request: SipRequest) -> None:
        answer = request.answer
        if answer is None:
            return
        chats = jabber_chats(answer)
        app_session = request.application_session
        if not chats:  # accepted, but no a=jid to chat with
            conversation.goodbye(self.context, app_session)  # BYE
            return
        app_session["customer_jid"] = chats[0].jid
        conversation.say(self.context, app_session, menu.greeting())

    def do_no_answer(self, request: SipRequest) -> None:
        """The ACK did not answer our offer: the core sent BYE."""
        conversation.goodbye(self.context, request.application_session)

    def do_bye(self, request: SipRequest) -> None:
        request.create_response(200).send()
        conversation.goodbye(self.context, request.application_session)

    # The bot as UAC, inviting a SIP agent into a chat
    def do_success_response(self, response: SipResponse) -> None:
        if response.method != "INVITE":
            return
        sdp = response.sdp
        chats = jabber_chats(sdp) if sdp is not None else []
        app_session = response.application_session
        if not chats:
            conversation.say(self.context, app_session,
                             "Sorry, the agent cannot chat right now.")
            response.session.bye()
            return
        conversation.connect_agent(self.context, app_session, chats[0].jid)

    def do_error_response(self, response: SipResponse) -> None:
        if response.method == "INVITE":
            conversation.say(self.context, response.application_session,
                             f"Sorry, the agent is not available ({response.status}).")


def invite_agent(context: Any, app_session: Any, agent_uri: str, thread: str) -> None:
    """Send the agent an INVITE offering a jabber chat with the bot."""
    bot = app_session["bot_jid"]
    host = context.container.factories["sip"].local_host
    offer = SessionDescription(
        origin=Origin.create(host), connection=Connection.for_address(host),
        media=[chat_media(bot, thread, 5222)])
    request = context.container.factories["sip"].create_request(
        app_session, "INVITE", f"<sip:{bot}>", f"<{agent_uri}>")
    request.set_sdp(offer)
    request.send()
