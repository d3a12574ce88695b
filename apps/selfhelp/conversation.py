# -*- test-case-name: tests.test_selfhelp -*-
"""
One customer conversation across channels: greeting, menu answers, the
agent hand-over and the goodbye, all kept in the ApplicationSession.

Data kept in the ApplicationSession:

  - C{channel}: C{xmpp}, C{sip} (a SIP-invited jabber chat) or C{web};
  - C{customer_jid}, C{thread}: where the chat goes;
  - C{bot_jid}: the address the bot speaks from;
  - C{agent_jid}: the agent, once connected;
  - C{transcript}: the last messages, for the web page.
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.logger import Logger

from apps.selfhelp import menu

log = Logger()


def bot_jid(context: Any, host: str | None = None) -> str:
    """The bot's address on the served domain a request came to."""
    domains = context.domains
    return f"selfhelp@{host if host in domains else domains[0]}"


def chat_session(context: Any, app_session: Any) -> Any:
    """The XMPP session with the customer (created from the stored JIDs)."""
    return context.container.factories["xmpp"].create_session(
        app_session, app_session["bot_jid"], app_session["customer_jid"])


def say(context: Any, app_session: Any, text: str) -> None:
    """Send C{text} to the customer over XMPP, in the conversation's thread
    (a web visitor without a live chat reads the transcript instead)."""
    if not app_session.get("customer_jid"):
        return
    chat_session(context, app_session).send_message(text, thread=app_session.get("thread"))


def handle_customer(context: Any, app_session: Any, text: str) -> menu.Answer | None:
    """
    A message from the customer: relay it to the agent once one is
    connected, else answer from the menu and act on the answer.
    """
    agent = app_session.get("agent_jid")
    if agent and text.strip() != "9":  # 9 ends the chat, even with an agent
        relay_to_agent(context, app_session, text)
        return None
    answer = menu.answer(app_session, text)
    return answer


def relay_to_agent(context: Any, app_session: Any, text: str) -> None:
    session = context.container.factories["xmpp"].create_session(
        app_session, app_session["bot_jid"], app_session["agent_jid"])
    session.send_message(f"Customer: {text}", thread=app_session["agent_thread"])


def relay_to_customer(context: Any, app_session: Any, text: str) -> None:
    app_session.setdefault("transcript", []).append(("agent", text))
    say(context, app_session, f"Agent: {text}")


def call_agent(context: Any, app_session: Any) -> None:
    """
    Invite the configured agent into the conversation: an XMPP agent gets a
    chat message, a SIP agent an INVITE offering a jabber chat session.
    """
    agent = context.settings.get("agent", "")
    thread = app_session.setdefault("agent_thread", secrets.token_hex(8))
    app_session.bind_key(thread)
    if agent.startswith("xmpp:"):
        connect_agent(context, app_session, agent[len("xmpp:"):])
    elif agent.startswith("sip:"):
        from apps.selfhelp.sip import invite_agent

        invite_agent(context, app_session, agent, thread)
    else:
        log.warn("selfhelp: no agent configured (settings.agent)")
        say(context, app_session, "Sorry, no agent is available right now.")


def connect_agent(context: Any, app_session: Any, agent_jid: str) -> None:
    """The agent is reachable at C{agent_jid}: introduce the customer."""
    app_session["agent_jid"] = agent_jid
    customer = app_session.get("customer_jid") or "a web visitor"
    session = context.container.factories["xmpp"].create_session(
        app_session, app_session["bot_jid"], agent_jid)
    session.send_message(
        f"A customer ({customer}) asks for an agent. Reply in this thread to talk to them.",
        thread=app_session["agent_thread"])


def goodbye(context: Any, app_session: Any) -> None:
    """Say goodbye over XMPP (once) and end the conversation."""
    if app_session.valid and not app_session.get("goodbye_sent"):
        app_session["goodbye_sent"] = True
        if app_session.get("customer_jid"):
            say(context, app_session, menu.GOODBYE)
    app_session.invalidate()
