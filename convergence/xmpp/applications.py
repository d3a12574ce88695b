# -*- test-case-name: tests.test_xmpp_servlet -*-
"""
Where XMPP meets the container: stanzas to addresses an application owns
become servlet requests inside XMPP and application sessions.

This is a C{pre-stanza} subscriber on the same event bus as every built-in
feature: applications are routed to by the application router, before the
server's own rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.container.dispatch import application_key, invoke
from convergence.xmpp.app_presence import AppPresenceService
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.jid import JID
from convergence.xmpp.router import StanzaEvent, StanzaRouter
from convergence.xmpp.servlet import (
    XmppConnectionEvent,
    XmppRequest,
    XmppResponse,
    XmppSession,
)

if TYPE_CHECKING:
    from convergence.xmpp.server import XmppServer

#: Priority of the application hook on C{pre-stanza}.
APPLICATION_PRIORITY = 100


class XmppApplications:
    """Dispatches stanzas to applications and keeps their XMPP sessions."""

    log = Logger()

    def __init__(self, server: "XmppServer", container: Any) -> None:
        self.server = server
        self.container = container
        self._sessions: dict[tuple[str, JID, JID], XmppSession] = {}
        self.presence = AppPresenceService(self)

    def install(self, router: StanzaRouter) -> None:
        router.bus.hook("pre-stanza", self.on_stanza, APPLICATION_PRIORITY)

    def route(self, stanza: etree._Element) -> None:
        """Route a stanza an application sends."""
        self.server.router.route(stanza)

    # Sessions
    def session_for(self, app: Any, local: JID, remote: JID,
                    request: XmppRequest | None = None) -> XmppSession:
        """
        The XMPP session between C{local} and C{remote}, created if new.

        An initial request whose application key (the app's
        C{application_keys["xmpp"]}, e.g. the C{<thread>}) names a live
        ApplicationSession joins that session; otherwise the pair's own
        session is used, or a new ApplicationSession is made.
        """
        key = application_key(app, "xmpp", request) if request is not None else None
        if key is not None:
            app_session = self.container.sessions.by_key(app.name, key)
            if app_session is not None:
                return self.create_session(app_session, local, remote)
        session = self._sessions.get((app.name, local.bare, remote.bare))
        if session is not None and session.valid:
            session.remote = remote
            session.application_session.touch()
            return session
        app_session = self.container.sessions.create(app, key)
        return self.create_session(app_session, local, remote)

    def create_session(self, app_session: Any, local: JID, remote: JID) -> XmppSession:
        """The XMPP session of C{app_session} with C{remote}, created if new."""
        for session in app_session.sessions_of("xmpp"):
            if session.local == local.bare and session.remote.bare == remote.bare:
                if remote.resource is not None:
                    session.remote = remote  # the peer's latest resource
                app_session.touch()
                return session
        session = XmppSession(app_session, self, local.bare, remote)
        self._sessions[(app_session.application.name, local.bare, remote.bare)] = session
        return session

    def forget(self, session: XmppSession) -> None:
        """Drop an invalidated session from the index and tell its app."""
        app = session.application_session.application
        key = (app.name, session.local.bare, session.remote.bare)
        if self._sessions.get(key) is session:
            del self._sessions[key]
        servlet = app.servlet("xmpp")
        if servlet is not None:
            invoke(servlet.session_ended, session).addErrback(
                lambda f: self.log.failure("session_ended of {app} failed", f, app=app.name))

    # Dispatch
    def on_stanza(self, event: StanzaEvent) -> bool:
        to = event.to
        candidates = (str(to.bare), to.host) if to.user is not None else (to.host,)
        app = self.container.router.select("xmpp", candidates)
        if app is None:
            return False
        servlet = app.servlet("xmpp")
        if servlet is None:
            event.reply_error("service-unavailable")
            return True
        stanza = event.stanza
        if event.kind == "iq" and event.type in ("result", "error"):
            session = self.session_for(app, to, event.sender)
            args: tuple[Any, Any] = (None, XmppResponse(stanza, session))
        else:
            request = XmppRequest(stanza, None)  # type: ignore[arg-type]
            request.session = self.session_for(app, to, event.sender, request)
            args = (request, None)
        d = invoke(servlet.service, *args)
        d.addErrback(self._failed, app, stanza)
        return True

    def _failed(self, failure: Failure, app: Any, stanza: etree._Element) -> None:
        if failure.check(StanzaError):
            error = failure.value
        else:
            self.log.failure(
                "application {app} failed handling a {kind}", failure,
                app=app.name, kind=etree.QName(stanza).localname,
            )
            error = StanzaError("internal-server-error")
        self.server.router.bounce(stanza, error)

    # Streams and connections
    def stream_opened(self, stream: Any, stage: str) -> list[XmppConnectionEvent]:
        """Give listeners whose C{process_stream} matches a look at the stream."""
        events = []
        for app in self.container.applications.values():
            listener = app.connection_listener
            if listener is None or app.descriptor.client_login.process_stream != stage:
                continue
            event = XmppConnectionEvent(
                host=stream.host, stage=stage, peer=stream.peer_name(),
                secure=stream.secure, authenticated=stream.authenticated,
            )
            try:
                listener.on_stream(event)
            except Exception:
                self.log.failure("connection listener of {app} failed", app=app.name)
                continue
            events.append(event)
        return events

    def connection_closed(self, stream: Any) -> None:
        """A client stream ended; sessions outlive it (loose coupling)."""
