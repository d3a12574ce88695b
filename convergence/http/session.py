# -*- test-case-name: tests.test_http -*-
"""
HTTP sessions: a cookie naming an L{HttpSession}, which belongs to an
ApplicationSession like the XMPP and SIP sessions of the same application.

A request to application A finds its session in this order:

 1. an C{appsession=<id>} URL parameter (see
    L{ApplicationSession.encode_url}) naming a live ApplicationSession of A
    joins it (reusing this client's HttpSession in it, if its cookie names
    one) and sets the cookie;
 2. a cookie naming a live HttpSession of A;
 3. A's application key for HTTP (C{application_keys["http"]}): the live
    ApplicationSession bound to that key, or a new one bound to it;
 4. a new ApplicationSession.

Unknown or expired ids fall through to the next step: the client gets a
fresh session, never an error.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Iterable

from twisted.logger import Logger

from convergence.container.dispatch import application_key
from convergence.container.session import (
    SESSION_PARAM,
    ApplicationSession,
    ProtocolSession,
    SessionManager,
)

if TYPE_CHECKING:
    from convergence.http.servlet import HttpRequest

#: The cookie that names a client's HttpSession.
COOKIE_NAME = "convergence_session"


class HttpSession(ProtocolSession):
    """One client (a cookie) of one application, inside an ApplicationSession."""

    kind = "http"

    def __init__(self, application_session: ApplicationSession,
                 store: "HttpSessionStore", session_id: str, client: str,
                 context_path: str) -> None:
        #: The cookie value.
        self.id = session_id
        #: The client's IP address when the session was created.
        self.client = client
        self.context_path = context_path
        self._store = store
        super().__init__(application_session)

    def __repr__(self) -> str:
        return f"<HttpSession {self.client} {self.state}>"

    @property
    def peer(self) -> str:
        """The client's IP address."""
        return self.client

    @property
    def state(self) -> str:
        """C{active} or C{ended}."""
        return "active" if self.valid else "ended"

    def on_invalidate(self) -> None:
        # The cookie no longer leads here: its next request starts afresh.
        self._store.forget(self)


def cookie_values(headers: Iterable[str], name: str) -> list[str]:
    """Every value of cookie C{name} in C{Cookie} header values, in order."""
    values = []
    for header in headers:
        for pair in header.split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                values.append(value.strip().strip('"'))
    return values


class HttpSessionStore:
    """The HTTP sessions of one server, by cookie value."""

    log = Logger()

    def __init__(self, sessions: SessionManager, cookie_name: str = COOKIE_NAME) -> None:
        self.sessions = sessions
        self.cookie_name = cookie_name
        self._by_id: dict[str, HttpSession] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, session_id: str) -> HttpSession | None:
        """A live HttpSession by cookie value."""
        session = self._by_id.get(session_id)
        return session if session is not None and session.valid else None

    def forget(self, session: HttpSession) -> None:
        """Drop an ended session's cookie (done by L{HttpSession.on_invalidate})."""
        if self._by_id.get(session.id) is session:
            del self._by_id[session.id]

    def cookie_header(self, session: HttpSession) -> str:
        """The C{Set-Cookie} value for C{session}."""
        # No Secure flag: the listener speaks plain HTTP (loopback by default).
        return (f"{self.cookie_name}={session.id}; Path={session.context_path};"
                " HttpOnly; SameSite=Lax")

    def from_cookies(self, app: Any, request: "HttpRequest") -> list[HttpSession]:
        """The live HttpSessions of C{app} the request's cookies name."""
        found = []
        for value in cookie_values(request.headers.get_all("cookie"), self.cookie_name):
            session = self.get(value)
            if (session is not None and session.application_session.valid
                    and session.application_session.application.name == app.name
                    and session not in found):
                found.append(session)
        return found

    def touch(self, app: Any, request: "HttpRequest") -> None:
        """A request carrying a session's cookie keeps its ApplicationSession alive."""
        for session in self.from_cookies(app, request)[:1]:
            session.application_session.touch()

    def resolve(self, app: Any, request: "HttpRequest",
                create: bool = True) -> HttpSession | None:
        """
        The HttpSession of C{request} to C{app} (see the module docstring);
        C{None} if there is none and C{create} is false.
        """
        mine = self.from_cookies(app, request)
        target = self._named_session(app, request.args.get(SESSION_PARAM))
        if target is not None:
            for session in mine:
                if session.application_session is target:
                    target.touch()
                    return session
            if not create:
                return None
            for session in mine:
                # The cookie is about to name the joined session instead.
                session.invalidate()
            return self._create(target, request)
        if mine:
            mine[0].application_session.touch()
            return mine[0]
        if not create:
            return None
        key = application_key(app, "http", request)
        return self._create(self.sessions.find_or_create(app, key), request)

    def _named_session(self, app: Any, session_id: str | None) -> ApplicationSession | None:
        if not session_id:
            return None
        target = self.sessions.get(session_id)
        if target is None or not target.valid or target.application.name != app.name:
            return None
        return target

    def _create(self, app_session: ApplicationSession, request: "HttpRequest") -> HttpSession:
        session_id = secrets.token_urlsafe(24)
        session = HttpSession(app_session, self, session_id, request.client,
                              request.context_path)
        self._by_id[session_id] = session
        app_session.touch()
        if request.started:
            self.log.warn("{request!r}: session created after the response"
                          " started; the client gets no cookie", request=request)
        else:
            request.add_header("Set-Cookie", self.cookie_header(session))
        self.log.debug("{session!r} joins {app_session!r}", session=session,
                       app_session=app_session)
        return session
