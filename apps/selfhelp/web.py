# -*- test-case-name: tests.test_selfhelp -*-
"""
The self-help bot's web side: the menu as a page at C{/selfhelp/}, and a
JSON API the page (and anyone) uses:

  - C{POST /selfhelp/api/menu} C{{"choice": "1"}} → the bot's answer;
  - C{GET /selfhelp/api/conversation} → this visitor's transcript;
  - C{GET /selfhelp/api/sessions} → every live conversation with its
    protocol sessions (kind, peer, state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convergence.http.servlet import HttpError, HttpRequest, HttpServlet

from apps.selfhelp import conversation, menu

PAGE = Path(__file__).with_name("static") / "index.html"


def describe(app_session: Any) -> dict[str, Any]:
    """One conversation as JSON."""
    return {
        "id": app_session.id,
        "channel": app_session.get("channel", "web"),
        "customer": app_session.get("customer_jid"),
        "thread": app_session.get("thread"),
        "agent": app_session.get("agent_jid"),
        "protocol_sessions": [
            {"kind": s.kind, "peer": getattr(s, "peer", ""), "state": getattr(s, "state", "")}
            for s in app_session.protocol_sessions
        ],
    }


class SelfhelpHttpServlet(HttpServlet):
    """The page and its JSON API."""

    def do_get(self, request: HttpRequest) -> Any:
        path = request.path_info
        if path in ("/", "/index.html"):
            # Joins the visitor to a session named by ?appsession= and sets the cookie.
            request.application_session.setdefault("channel", "web")
            request.set_header("Content-Type", "text/html; charset=utf-8")
            return PAGE.read_bytes()
        if path == "/api/sessions":
            sessions = self.context.container.sessions.sessions(self.context.application.name)
            return {"sessions": [describe(s) for s in sessions if s.valid]}
        if path == "/api/conversation":
            app_session = request.application_session
            app_session.setdefault("channel", "web")
            return {
                "session": app_session.id,
                "greeting": menu.greeting(),
                "transcript": [{"from": who, "text": text}
                               for who, text in app_session.get("transcript", [])],
            }
        raise HttpError(404)

    def do_post(self, request: HttpRequest) -> Any:
        if request.path_info != "/api/menu":
            raise HttpError(404)
        choice = request.json().get("choice") if isinstance(request.json(), dict) else None
        if not isinstance(choice, str) or len(choice) > 200:
            raise HttpError(400, "expected {\"choice\": \"1\"}")
        app_session = request.application_session
        app_session.setdefault("channel", "web")
        app_session.setdefault("bot_jid", conversation.bot_jid(self.context))
        answer = conversation.handle_customer(self.context, app_session, choice)
        if answer is None:
            return {"session": app_session.id, "reply": None, "relayed": True}
        if answer.action == menu.CALL_AGENT:
            conversation.call_agent(self.context, app_session)
        reply = {"session": app_session.id, "reply": answer.text, "ended": False}
        if answer.action == menu.END:
            conversation.goodbye(self.context, app_session)
            reply["ended"] = True
        return reply
