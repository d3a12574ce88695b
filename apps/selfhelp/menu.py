# -*- test-case-name: tests.test_selfhelp -*-
"""
The self-help menu: the same conversation logic for every channel.

Pure functions over the ApplicationSession's data, so XMPP, SIP-invited
chat and the web page all answer alike and share one state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import MutableMapping

GREETING = "Welcome to convergence self-help."
MENU = (
    "Reply with a number:\n"
    "1 Order status\n"
    "2 Opening hours\n"
    "3 Talk to an agent\n"
    "9 End the chat\n"
    "0 Repeat this menu"
)
ORDER_STATUS = "Your order #{order} has shipped and arrives tomorrow."
OPENING_HOURS = "We are open Monday to Friday, 9:00 to 17:00."
AGENT = "Connecting you to an agent. Everything you type now goes to them."
GOODBYE = "Thank you for contacting us. Goodbye!"
UNKNOWN = "Sorry, I did not understand {text!r}."

#: What the channel has to do after answering.
NOTHING, CALL_AGENT, END = "nothing", "agent", "end"


@dataclass(frozen=True)
class Answer:
    """The bot's reply and what the channel must do next."""

    text: str
    action: str = NOTHING


def greeting() -> str:
    """The first message of a conversation."""
    return f"{GREETING}\n{MENU}"


def answer(state: MutableMapping, text: str) -> Answer:
    """Answer one customer message; record it in C{state["transcript"]}."""
    choice = text.strip()
    transcript = state.setdefault("transcript", [])
    transcript.append(("customer", choice))
    state["choices"] = state.get("choices", 0) + 1
    if choice == "1":
        result = Answer(ORDER_STATUS.format(order=state.setdefault("order", 4711)))
    elif choice == "2":
        result = Answer(OPENING_HOURS)
    elif choice == "3":
        result = Answer(AGENT, CALL_AGENT)
    elif choice == "9":
        result = Answer(GOODBYE, END)
    elif choice == "0":
        result = Answer(MENU)
    else:
        result = Answer(f"{UNKNOWN.format(text=choice[:40])}\n{MENU}")
    transcript.append(("bot", result.text))
    del transcript[:-40]
    return result
