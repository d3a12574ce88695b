# -*- test-case-name: tests.test_selfhelp_web -*-
"""
The self-help bot's web side: the page at C{/selfhelp/}, and a JSON API
the page (and anyone) uses:

  - C{GET /selfhelp/} → the page, this visitor's transcript in it; its
    menu is a form that C{POST}s to C{/selfhelp/} (works without
    JavaScript: the answer is a redirect back to the page);
  - C{POST /selfhelp/api/live} → a one-time guest login for the page's
    XMPP-over-WebSocket session, bound to this web session (docs/selfhelp.md);
  - C{POST /selfhelp/api/menu} C{{"choice": "1"}} → the bot's answer;
  - C{GET /selfhelp/api/conversation} → this visitor's transcript;
  - C{GET /selfhelp/api/sessions} → this visitor's conversation with its
    protocol sessions (kind, peer, state); every live conversation for an
    operator presenting the C{operator_token} setting as a bearer token
    (a conversation's id joins it, so the full list is never public);
  - C{GET /selfhelp/selfhelp.js}, C{/selfhelp/vendor/…} → the page's scripts.
"""

from __future__ import annotations

import hmac
import html
import secrets
from pathlib import Path
from typing import Any

from apps.selfhelp import conversation, menu
from convergence.http.servlet import HttpError, HttpRequest, HttpServlet

STATIC = Path(__file__).with_name("static")
PAGE = STATIC / "index.html"
#: where the page shows the visitor's transcript (nothing for a new visitor,
#: so that a new visitor's page is index.html byte for byte)
TRANSCRIPT_MARK = b"<!--transcript-->"
#: the longest choice or chat line the bot takes
MAX_CHOICE = 200
_TYPES = {".js": "text/javascript; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
_SPEAKERS = {"bot": "Bot", "agent": "Agent", "customer": "You"}


def describe(app_session: Any) -> dict[str, Any]:
    """One conversation as JSON (a live page's thread is not shown: it is
    the key that joins a chat or a call to the conversation)."""
    return {
        "id": app_session.id,
        "channel": app_session.get("channel", "web"),
        "customer": app_session.get("customer_jid"),
        "thread": None if app_session.get("guest_jid") else app_session.get("thread"),
        "agent": app_session.get("agent_jid"),
        "protocol_sessions": [
            {"kind": s.kind, "peer": getattr(s, "peer", ""), "state": getattr(s, "state", "")}
            for s in app_session.protocol_sessions
        ],
    }


def render_page(transcript: list[tuple[str, str]]) -> bytes:
    """The page with C{transcript} in its chat log (as the script shows it)."""
    lines = "".join(
        f'<div class="{who}">{_SPEAKERS.get(who, who)}: {html.escape(text)}</div>'
        for who, text in transcript)
    return PAGE.read_bytes().replace(TRANSCRIPT_MARK, lines.encode() + TRANSCRIPT_MARK, 1)


def static_file(path: str) -> Path | None:
    """A shipped script or licence by its path under the page, else None."""
    name = path.lstrip("/")
    if name == "selfhelp.js":
        return STATIC / name
    folder, _, leaf = name.partition("/")
    if folder == "vendor" and leaf and "/" not in leaf:
        candidate = STATIC / "vendor" / leaf
        if candidate.suffix in _TYPES and candidate.is_file():
            return candidate
    return None


class SelfhelpHttpServlet(HttpServlet):
    """The page, its scripts and its JSON API."""

    def init(self, context: Any) -> None:
        super().init(context)
        context.container.sessions.add_listener(
            context.application.name, _GuestEnder(context.container))

    def do_get(self, request: HttpRequest) -> Any:
        path = request.path_info
        if path in ("/", "/index.html"):
            # Joins the visitor to a session named by ?appsession= and sets the cookie.
            app_session = request.application_session
            app_session.setdefault("channel", "web")
            request.set_header("Content-Type", "text/html; charset=utf-8")
            return render_page(app_session.get("transcript", []))
        if path == "/api/sessions":
            return {"sessions": [describe(s) for s in self.listed_sessions(request)]}
        if path == "/api/conversation":
            app_session = request.application_session
            app_session.setdefault("channel", "web")
            return {
                "session": app_session.id,
                "greeting": menu.greeting(),
                "transcript": [{"from": who, "text": text}
                               for who, text in app_session.get("transcript", [])],
            }
        found = static_file(path)
        if found is not None:
            request.set_header("Content-Type", _TYPES[found.suffix])
            return found.read_bytes()
        raise HttpError(404)

    def listed_sessions(self, request: HttpRequest) -> list[Any]:
        """What C{api/sessions} shows: every live conversation to the
        operator, else only the visitor's own (none for a new visitor,
        and no session is made for asking)."""
        if self.is_operator(request):
            sessions = self.context.container.sessions.sessions(self.context.application.name)
            return [s for s in sessions if s.valid]
        own = request.get_session(create=False)
        if own is None or not own.application_session.valid:
            return []
        return [own.application_session]

    def is_operator(self, request: HttpRequest) -> bool:
        """The request carries C{Authorization: Bearer <operator_token>}
        (compared in constant time; no token configured: nobody is)."""
        token = str(self.context.settings.get("operator_token") or "")
        scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), token.encode())

    def do_post(self, request: HttpRequest) -> Any:
        path = request.path_info
        if path in ("/", "/index.html"):
            return self.post_form(request)
        if path == "/api/live":
            return self.live_login(request)
        if path != "/api/menu":
            raise HttpError(404)
        choice = request.json().get("choice") if isinstance(request.json(), dict) else None
        if not isinstance(choice, str) or len(choice) > MAX_CHOICE:
            raise HttpError(400, "expected {\"choice\": \"1\"}")
        return self.choose(request, choice)

    def choose(self, request: HttpRequest, choice: str) -> dict[str, Any]:
        """A menu choice or chat line from the web: the bot's answer."""
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

    def post_form(self, request: HttpRequest) -> None:
        """The page's form without JavaScript: answer, then back to the page."""
        choice = request.form.get("choice", "").strip()
        if not choice or len(choice) > MAX_CHOICE:
            raise HttpError(400, "Choose one of the menu's numbers.")
        self.choose(request, choice)
        request.redirect(request.context_path + "/", 303)

    def live_login(self, request: HttpRequest) -> dict[str, Any]:
        """
        The page's live session: a one-time guest login for XMPP over
        WebSocket and the conversation's thread, both bound to this web
        session's ApplicationSession and to this browser's HttpSession (its
        cookie).  JSON only, so that another site's page cannot send it
        without a CORS preflight.
        """
        content_type = (request.headers.get("content-type") or "").split(";")[0]
        if content_type.strip().lower() != "application/json":
            raise HttpError(415, "POST application/json")
        xmpp = self.context.container.factories["xmpp"]
        if xmpp.websocket_path is None:
            raise HttpError(503, "XMPP over WebSocket is off (xmpp.websocket)")
        app_session = request.application_session
        browser = request.session.id
        if app_session.setdefault("guest_browser", browser) != browser:
            # joined by ?appsession=: the live chat stays with the browser that began it
            raise HttpError(403, "This conversation's live chat is in another browser.")
        app_session.setdefault("channel", "web")
        bot = app_session.setdefault("bot_jid", conversation.bot_jid(self.context))
        domain = bot.split("@", 1)[1]
        try:
            guest, token = xmpp.guest_login(domain, app_session.get("guest_jid"))
        except KeyError:  # ended, or never issued: a new guest
            guest, token = xmpp.guest_login(domain)
        app_session["guest_jid"] = guest
        thread = app_session.get("thread") or secrets.token_hex(8)
        app_session["thread"] = thread
        app_session.bind_key(thread)  # chat and call in this thread join here
        return {
            "session": app_session.id,
            "jid": guest,
            "token": token,
            "domain": domain,
            "bot": bot,
            "thread": thread,
            "xmpp_websocket": xmpp.websocket_path,
            "sip_websocket": self.context.settings.get("sip_websocket", "/sip"),
            "sip_uri": f"sip:{bot}",
            "greeting": menu.greeting(),
            "transcript": [{"from": who, "text": text}
                           for who, text in app_session.get("transcript", [])],
        }


class _GuestEnder:
    """Ends a conversation's guest login with its ApplicationSession."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def session_invalidated(self, app_session: Any) -> None:
        guest = app_session.get("guest_jid")
        xmpp = self.container.factories.get("xmpp")
        if guest and xmpp is not None:
            xmpp.end_guest(guest)
