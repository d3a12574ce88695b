# -*- test-case-name: tests.test_application_session -*-
"""
Application sessions: one application instance holding its protocol sessions.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterator, MutableMapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from convergence.container.expiry import DEFAULT_RESOLUTION, Deadlines
from convergence.container.interfaces import IProtocolSession
from convergence.entropy import random_token

#: The URL parameter that names an ApplicationSession (see L{encode_url}).
SESSION_PARAM = "appsession"


class SessionInvalidated(RuntimeError):
    """The session was used after it was invalidated."""


@implementer(IProtocolSession)
class ProtocolSession:
    """
    Base of the protocol sessions (XMPP, SIP dialog, HTTP).

    Subclasses set L{kind} and end their protocol relationship in
    L{on_invalidate}.
    """

    kind = "protocol"

    def __init__(self, application_session: "ApplicationSession") -> None:
        self.application_session = application_session
        self.valid = True
        application_session.add_protocol_session(self)

    def invalidate(self) -> None:
        """End this protocol session and detach it from its application session."""
        if not self.valid:
            return
        self.valid = False
        self.on_invalidate()
        self.application_session.remove_protocol_session(self)

    def on_invalidate(self) -> None:
        """Hook: end the protocol relationship."""


class ApplicationSession(MutableMapping[str, Any]):
    """
    One application instance: a store of application data, its protocol
    sessions, an expiry timer and the listeners told of its life.
    """

    log = Logger()

    def __init__(
        self,
        manager: "SessionManager",
        application: Any,
        timeout: float,
        session_id: str | None = None,
    ) -> None:
        self.id = session_id or random_token(16)
        self.application = application
        self.timeout = timeout
        self.valid = True
        self._manager = manager
        self._data: dict[str, Any] = {}
        self._sessions: list[ProtocolSession] = []
        self.keys: set[Hashable] = set()
        self.touch()

    # MutableMapping: the application's data
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._check()
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return (
            f"<ApplicationSession {self.id} app={self.application.name}"
            f" sessions={len(self._sessions)}>"
        )

    @property
    def protocol_sessions(self) -> tuple[ProtocolSession, ...]:
        """The protocol sessions of every kind that belong to this session."""
        return tuple(self._sessions)

    def sessions_of(self, kind: str) -> list[ProtocolSession]:
        """The protocol sessions of one kind."""
        return [s for s in self._sessions if s.kind == kind]

    def add_protocol_session(self, session: ProtocolSession) -> None:
        """Attach a protocol session (done by L{ProtocolSession})."""
        self._check()
        self._sessions.append(session)

    def remove_protocol_session(self, session: ProtocolSession) -> None:
        """Detach a protocol session."""
        if session in self._sessions:
            self._sessions.remove(session)

    def bind_key(self, key: Hashable) -> None:
        """
        Make C{key} (an application key: an XMPP thread, a SIP a=thread …)
        lead to this session: later initial requests of any protocol whose
        key is C{key} join it.
        """
        self._check()
        self._manager.bind_key(self, key)

    def encode_url(self, url: str) -> str:
        """C{url} with a parameter that joins an HTTP request to this session."""
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k != SESSION_PARAM]
        query.append((SESSION_PARAM, self.id))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def touch(self) -> None:
        """Restart the expiry timer: the session is in use (it expires
        C{timeout} seconds from now, at most the manager's
        C{expiry_resolution} later)."""
        if self.valid:
            self._manager.expiries.set(self.id, self, self.timeout)

    def set_timeout(self, seconds: float) -> None:
        """Change the inactivity timeout and restart the timer."""
        self.timeout = seconds
        self.touch()

    def _expire(self) -> None:
        self._manager.notify("session_expiring", self)
        if self.valid:
            self.invalidate()

    def invalidate(self) -> None:
        """End every protocol session, tell the listeners, leave the container."""
        if not self.valid:
            return
        self.valid = False
        self._manager.expiries.discard(self.id)
        for session in list(self._sessions):
            try:
                session.invalidate()
            except Exception:
                self.log.failure("ending {session!r} failed", session=session)
        self._manager.remove(self)
        self._manager.notify("session_invalidated", self)

    def _check(self) -> None:
        if not self.valid:
            raise SessionInvalidated(self.id)


class SessionManager:
    """The container's table of live application sessions."""

    log = Logger()

    def __init__(self, clock: IReactorTime,
                 expiry_resolution: float = DEFAULT_RESOLUTION) -> None:
        self.clock = clock
        #: every live session's expiry, in slots of C{expiry_resolution}
        #: seconds with one delayed call for all
        self.expiries: Deadlines[ApplicationSession] = Deadlines(
            clock, ApplicationSession._expire, expiry_resolution)
        self._sessions: dict[str, ApplicationSession] = {}
        self._listeners: dict[str, list[Any]] = {}
        self._by_key: dict[tuple[str, Hashable], ApplicationSession] = {}
        #: sessions created and invalidated, by application name (the
        #: metrics; the difference is the live sessions)
        self.created: dict[str, int] = {}
        self.invalidated: dict[str, int] = {}

    def add_listener(self, application_name: str, listener: Any) -> None:
        """Register an L{IApplicationSessionListener} for one application."""
        self._listeners.setdefault(application_name, []).append(listener)

    def create(self, application: Any, key: Hashable | None = None) -> ApplicationSession:
        """Create and register a new session for C{application}."""
        session = ApplicationSession(
            self, application, application.descriptor.session_timeout
        )
        self._sessions[session.id] = session
        name = application.name
        self.created[name] = self.created.get(name, 0) + 1
        if key is not None:
            self.bind_key(session, key)
        self.notify("session_created", session)
        return session

    def find_or_create(self, application: Any, key: Hashable | None) -> ApplicationSession:
        """The live session of C{application} bound to C{key}, or a new one."""
        if key is not None:
            session = self._by_key.get((application.name, key))
            if session is not None and session.valid:
                session.touch()
                return session
        return self.create(application, key)

    def by_key(self, application_name: str, key: Hashable) -> ApplicationSession | None:
        """The live session bound to an application key, if any."""
        session = self._by_key.get((application_name, key))
        return session if session is not None and session.valid else None

    def bind_key(self, session: ApplicationSession, key: Hashable) -> None:
        """Index C{session} under an application key (see L{ApplicationSession.bind_key})."""
        self._by_key[(session.application.name, key)] = session
        session.keys.add(key)

    def get(self, session_id: str) -> ApplicationSession | None:
        """A live session by id, or C{None}."""
        return self._sessions.get(session_id)

    def sessions(self, application_name: str | None = None) -> list[ApplicationSession]:
        """Live sessions, optionally of one application."""
        return [
            s
            for s in self._sessions.values()
            if application_name is None or s.application.name == application_name
        ]

    def remove(self, session: ApplicationSession) -> None:
        """Forget an invalidated session and its application keys."""
        name = session.application.name
        if self._sessions.pop(session.id, None) is not None:
            self.invalidated[name] = self.invalidated.get(name, 0) + 1
        for key in session.keys:
            if self._by_key.get((name, key)) is session:
                del self._by_key[(name, key)]

    def notify(self, event: str, session: ApplicationSession) -> None:
        """Call C{event} on the listeners of the session's application."""
        for listener in self._listeners.get(session.application.name, ()):
            method: Callable[[ApplicationSession], Any] | None = getattr(
                listener, event, None
            )
            if method is None:
                continue
            try:
                method(session)
            except Exception:
                self.log.failure(
                    "session listener {event} failed for {session!r}",
                    event=event,
                    session=session,
                )
