# -*- test-case-name: tests.test_notes -*-
"""
notes: the converged app built step by step in docs/tutorial.md.

One notebook per person, whatever the channel: a chat message to
C{notes@<domain>} or a SIP MESSAGE to C{sip:notes@<domain>} adds a note,
and the web page at C{/notes/} shows them.  The person's address
(C{alice@localhost}, from the JID or the SIP From URI) is the application
key, so both protocols land in the same ApplicationSession; the chat reply
carries a link (C{encode_url}) that opens that session's page.
"""

from __future__ import annotations

import html
from typing import Any

from lxml import etree

from convergence.container import DeploymentDescriptor
from convergence.http.servlet import HttpRequest, HttpServlet
from convergence.sip.servlet import SipRequest, SipServlet
from convergence.xmpp import ns
from convergence.xmpp.servlet import XmppRequest, XmppServlet


# Step 1: an application key per protocol.
def xmpp_key(request: XmppRequest) -> str:
    """alice@localhost for alice@localhost/phone."""
    return str(request.sender.bare)


def sip_key(request: SipRequest) -> str | None:
    """alice@localhost for From: <sip:alice@localhost>."""
    uri = request.message.from_.uri
    user, host = getattr(uri, "user", None), getattr(uri, "host", None)
    return f"{user}@{host}" if user and host else None


def add_note(app_session: Any, text: str, channel: str) -> int:
    """Append a note to the session's notebook; return how many there are."""
    notes = app_session.setdefault("notes", [])
    notes.append({"text": text, "via": channel})
    return len(notes)


# Step 2: the XMPP servlet.
class NotesXmppServlet(XmppServlet):
    def do_message(self, request: XmppRequest) -> None:
        if request.type == "error" or not request.body:
            return
        count = add_note(request.application_session, request.body, "xmpp")
        link = self.context.container.factories["http"].url(
            "notes", "/", request.application_session)
        reply = request.create_response()
        etree.SubElement(reply.stanza, f"{{{ns.CLIENT}}}body").text = (
            f"Noted ({count} so far). Your notes: {link}")
        reply.send()


# Step 3: the SIP servlet.
class NotesSipServlet(SipServlet):
    def do_message(self, request: SipRequest) -> None:
        text = request.body.decode("utf-8", "replace").strip()
        if text:
            add_note(request.application_session, text, "sip")
        request.create_response(200).send()


# Step 4: the HTTP servlet.
class NotesHttpServlet(HttpServlet):
    def do_get(self, request: HttpRequest) -> Any:
        notes = request.application_session.get("notes", [])
        if request.path_info == "/api/notes":
            return {"notes": notes}
        items = "".join(f"<li>{html.escape(n['text'])} <small>({n['via']})</small></li>"
                        for n in notes)
        return f"<!doctype html><title>Notes</title><h1>Notes</h1><ul>{items}</ul>"


# Step 5: the descriptor.
descriptor = DeploymentDescriptor(
    name="notes",
    xmpp=["notes@{domain}"],
    sip=["notes@{domain}"],
    http="/notes",
    servlets={"xmpp": NotesXmppServlet, "sip": NotesSipServlet, "http": NotesHttpServlet},
    application_keys={"xmpp": xmpp_key, "sip": sip_key},
)
