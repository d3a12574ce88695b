# -*- test-case-name: tests.test_selfhelp -*-
"""The self-help bot's XMPP side: chat with customers and agents."""

from __future__ import annotations

from typing import Any

from apps.selfhelp import conversation, menu
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.servlet import XmppRequest, XmppServlet, XmppSession


class SelfhelpXmppServlet(XmppServlet):
    """Answers chat with the menu; relays between customer and agent."""

    def do_message(self, request: XmppRequest) -> None:
        if request.type == "error" or request.body is None:
            return
        app_session = request.application_session
        sender = request.sender
        agent = app_session.get("agent_jid")
        if agent and sender.bare == _bare(agent):
            conversation.relay_to_customer(self.context, app_session, request.body)
            return
        guest = app_session.get("guest_jid")
        if guest:  # the web page's live session (web.py): only its guest talks here
            if sender.bare != _bare(guest):
                raise StanzaError("not-allowed", "this conversation is someone else's")
            app_session["customer_jid"] = str(sender)  # the page's resource, now
        elif not app_session.get("customer_jid"):
            app_session["channel"] = "xmpp"
            app_session["customer_jid"] = str(sender)
            app_session["bot_jid"] = str(request.to.bare)
            app_session["thread"] = request.thread
            if request.thread:
                app_session.bind_key(request.thread)
        answer = conversation.handle_customer(self.context, app_session, request.body)
        if answer is None:
            return
        if answer.action == menu.END:
            conversation.goodbye(self.context, app_session)
            return
        conversation.say(self.context, app_session, answer.text)
        if answer.action == menu.CALL_AGENT:
            conversation.call_agent(self.context, app_session)

    def session_ended(self, session: XmppSession) -> Any:
        """The conversation ended some other way (expiry): say goodbye once."""
        app_session = session.application_session
        if session.remote.bare == _bare(app_session.get("customer_jid") or "") \
                and not app_session.get("goodbye_sent"):
            session.send_message(menu.GOODBYE, thread=app_session.get("thread"))


def _bare(jid: str) -> Any:
    from convergence.xmpp.jid import JID

    return JID.parse(jid).bare if jid else None


def thread_key(request: XmppRequest) -> str | None:
    """The XMPP application key: the message's thread."""
    return request.thread
