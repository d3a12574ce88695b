# -*- test-case-name: tests.test_xmpp_servlet -*-
"""
The XMPP servlet API (the patent's third level): servlets, requests and
responses wrapping stanzas, XMPP protocol sessions and connection listeners.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree
from zope.interface import Interface, implementer

from convergence.container.interfaces import IServlet
from convergence.container.session import ApplicationSession, ProtocolSession
from convergence.xmpp import ns
from convergence.xmpp.app_presence import AppPresence, presence_stanza
from convergence.xmpp.errors import StanzaError, error_reply
from convergence.xmpp.jid import JID
from convergence.xmpp.stanza import iq_result, reply_shell

if TYPE_CHECKING:
    from convergence.xmpp.applications import XmppApplications


class XmppSession(ProtocolSession):
    """
    A point-to-point relationship between an application's address and a
    peer, loosely coupled to the connection that carries it.
    """

    kind = "xmpp"

    def __init__(self, application_session: ApplicationSession,
                 applications: "XmppApplications", local: JID, remote: JID) -> None:
        self.local = local
        self.remote = remote
        self._applications = applications
        super().__init__(application_session)

    def __repr__(self) -> str:
        return f"<XmppSession {self.local} <-> {self.remote}>"

    @property
    def peer(self) -> str:
        """The peer's JID as text."""
        return str(self.remote)

    @property
    def state(self) -> str:
        """C{active} or C{ended}."""
        return "active" if self.valid else "ended"

    def send(self, stanza: etree._Element) -> None:
        """
        Route a stanza from this session's local address.

        C{from} defaults to the session's local JID and C{to} to the peer.
        """
        if stanza.get("from") is None:
            stanza.set("from", str(self.local))
        if stanza.get("to") is None:
            stanza.set("to", str(self.remote))
        self.application_session.touch()
        self._applications.route(stanza)

    def send_message(self, body: str, type: str = "chat",
                     thread: str | None = None) -> etree._Element:
        """Send a chat message to the peer and return it."""
        message = etree.Element(f"{{{ns.CLIENT}}}message", nsmap={None: ns.CLIENT},
                                type=type)
        etree.SubElement(message, f"{{{ns.CLIENT}}}body").text = body
        if thread:
            etree.SubElement(message, f"{{{ns.CLIENT}}}thread").text = thread
        self.send(message)
        return message

    def send_presence(self, presence: AppPresence | None = AppPresence(),
                      type: str | None = None) -> etree._Element:
        """Send the app's presence to the peer (None: unavailable), or a
        subscription answer such as C{type="subscribed"}; return it."""
        stanza = presence_stanza(self.local, self.remote, presence, type)
        self.send(stanza)
        return stanza

    def peer_subscribed(self) -> Any:
        """Deferred: whether the peer is subscribed to the app's presence
        (it has the app's address in its roster as C{to} or C{both})."""
        return self._applications.presence.is_subscriber(self.local, self.remote)

    def on_invalidate(self) -> None:
        self._applications.forget(self)


class _Message:
    """What requests and responses share: a stanza and its session."""

    def __init__(self, stanza: etree._Element, session: XmppSession) -> None:
        self.stanza = stanza
        self.session = session

    @property
    def application_session(self) -> ApplicationSession:
        return self.session.application_session

    @property
    def kind(self) -> str:
        """C{message}, C{presence} or C{iq}."""
        return etree.QName(self.stanza).localname

    @property
    def type(self) -> str | None:
        return self.stanza.get("type")

    @property
    def sender(self) -> JID:
        """Who sent the stanza (the router guarantees a valid C{from})."""
        return JID.parse(self.stanza.get("from", ""))

    @property
    def to(self) -> JID:
        """The application address it was sent to."""
        return JID.parse(self.stanza.get("to", ""))

    @property
    def body(self) -> str | None:
        """The C{<body/>} text of a message, if any."""
        return self.stanza.findtext(f"{{{ns.CLIENT}}}body")

    @property
    def thread(self) -> str | None:
        """The C{<thread/>} of a message, if any."""
        return self.stanza.findtext(f"{{{ns.CLIENT}}}thread")

    @property
    def payload(self) -> etree._Element | None:
        """The first child of an iq, if any."""
        return self.stanza[0] if self.kind == "iq" and len(self.stanza) else None


class XmppResponse(_Message):
    """An iq result or error: created for a request, or received."""

    def send(self) -> None:
        """Route this response."""
        self.session.send(self.stanza)


class XmppRequest(_Message):
    """A message, a presence, or an iq get/set addressed to an application."""

    def create_response(self, condition: str | None = None,
                        text: str | None = None) -> XmppResponse:
        """
        The answer to this request: an iq result, or an error stanza with
        the named RFC 6120 condition.  For a message without a condition it
        is a reply of the same type and thread, ready for a body.
        """
        if condition is not None:
            stanza = error_reply(self.stanza, StanzaError(condition, text))
        elif self.kind == "iq":
            stanza = iq_result(self.stanza)
        elif self.kind == "message":
            stanza = reply_shell(self.stanza, self.type or "normal")
            stanza.attrib.pop("id", None)
            if self.thread:
                etree.SubElement(stanza, f"{{{ns.CLIENT}}}thread").text = self.thread
        else:
            raise ValueError("only iq and message requests have responses")
        return XmppResponse(stanza, self.session)


@implementer(IServlet)
class XmppServlet:
    """
    The main XMPP servlet of an application.

    L{service} dispatches requests to L{do_message}, L{do_presence} and
    L{do_iq}, and iq results and errors to L{do_response}.  A handler may
    return a value or a Deferred, or be C{async def}.  Raising
    L{StanzaError} answers the stanza with that condition.

    Presence: the app's address can be a roster contact.  With
    L{accept_subscriptions} a user's request is approved; probes from
    subscribed users are answered with L{presence_of}, others get
    C{unsubscribed}; available and unavailable presence of peers goes to
    L{on_presence}.  C{context.container.factories["xmpp"].presence}
    broadcasts a change to every subscriber.
    """

    context: Any = None
    #: approve presence subscription requests to the app's addresses
    accept_subscriptions = False

    def init(self, context: Any) -> None:
        """Called once at deployment with the application's context."""
        self.context = context

    def destroy(self) -> None:
        """Called once at undeployment."""

    def service(self, request: XmppRequest | None,
                response: XmppResponse | None) -> Any:
        if request is None:
            return self.do_response(response)
        kind = request.kind
        if kind == "message":
            return self.do_message(request)
        if kind == "presence":
            return self.do_presence(request)
        return self.do_iq(request)

    def do_message(self, request: XmppRequest) -> Any:
        """A message; by default answered with C{service-unavailable}."""
        if request.type != "error":
            raise StanzaError("service-unavailable")

    def do_presence(self, request: XmppRequest) -> Any:
        """
        Subscriptions and probes by the rules above; any other presence
        goes to L{on_presence}.
        """
        type_ = request.type
        session = request.session
        if type_ == "subscribe":
            if self.accept_subscriptions:
                session.send_presence(type="subscribed")
                session.send_presence(self.presence_of(request.to, request.sender))
            return None
        if type_ == "unsubscribe":
            session.send_presence(type="unsubscribed")
            return None
        if type_ == "probe":
            def answer(subscribed: bool) -> None:
                if subscribed:
                    session.send_presence(self.presence_of(request.to, request.sender))
                else:
                    session.send_presence(type="unsubscribed")  # RFC 6121 4.3.2

            return session.peer_subscribed().addCallback(answer)
        if type_ in (None, "unavailable"):
            return self.on_presence(request)
        return None

    def presence_of(self, address: JID, peer: JID) -> AppPresence | None:
        """The app's presence at C{address} as C{peer} should see it
        (None: unavailable).  By default available when it accepts
        subscriptions."""
        return AppPresence() if self.accept_subscriptions else None

    def on_presence(self, request: XmppRequest) -> Any:
        """A peer's available or unavailable presence; ignored by default."""

    def do_iq(self, request: XmppRequest) -> Any:
        """An iq get or set; by default C{service-unavailable}."""
        raise StanzaError("service-unavailable")

    def do_response(self, response: XmppResponse) -> Any:
        """An iq result or error; ignored by default."""

    def session_ended(self, session: XmppSession) -> Any:
        """
        An XMPP session of this app was invalidated (with its application
        session, or by itself).  XMPP has no session teardown on the wire,
        so this is where an app may say goodbye; nothing by default.
        """


class XmppFactory:
    """Lets applications start XMPP sessions themselves (registered as the
    container's C{factories["xmpp"]})."""

    def __init__(self, applications: "XmppApplications") -> None:
        self.applications = applications

    @property
    def presence(self) -> Any:
        """The L{AppPresenceService}: subscribers and broadcasts."""
        return self.applications.presence

    @property
    def rooms(self) -> Any:
        """The chat rooms (L{convergence.xmpp.muc.api.Rooms}), or C{None}
        when the server runs no chat service."""
        muc = getattr(self.applications.server, "muc", None)
        return None if muc is None else muc.api

    @property
    def websocket_path(self) -> str | None:
        """The path of XMPP over WebSocket on the HTTP listener, or C{None}
        when it is off (C{xmpp.websocket})."""
        config = self.applications.server.config
        return config.websocket_path if config.websocket else None

    def guest_login(self, domain: str, guest: str | None = None) -> tuple[str, str]:
        """
        A one-time login token for a guest (L{convergence.xmpp.guests}):
        C{(bare JID, token)} for a new C{guest-…@domain}, or a fresh token
        for C{guest}, issued before.  The client logs in with SASL PLAIN
        (username: the JID's localpart, password: the token) within
        C{xmpp.guest_token_lifetime} seconds, once.

        @raise KeyError: C{guest} is not an outstanding guest.
        """
        jid, token = self.applications.server.guests.issue(
            domain, None if guest is None else JID.parse(guest))
        return str(jid), token

    def end_guest(self, guest: str) -> None:
        """
        Forget a guest: its tokens no longer log in, and its streams end
        with C{not-authorized} (as for a deleted account); a client that
        reconnects needs a new login from the application.
        """
        server = self.applications.server
        jid = JID.parse(guest).bare
        streams = server.registry.resources(jid)
        server.guests.revoke(jid, connected=bool(streams))
        for stream in streams:
            stream.stream_error("not-authorized", "this guest login has ended")

    def create_session(self, application_session: ApplicationSession,
                       local: str, remote: str) -> XmppSession:
        """
        The XMPP session between the app's address C{local} and C{remote} in
        C{application_session} (created if new); replies from C{remote} to
        C{local} reach the same application session.
        """
        return self.applications.create_session(
            application_session, JID.parse(local), JID.parse(remote))


class XmppConnectionEvent:
    """A stream (re)start told to an application's connection listener."""

    def __init__(self, host: str, stage: str, peer: str, secure: bool,
                 authenticated: JID | None) -> None:
        self.host = host
        self.stage = stage
        self.peer = peer
        self.secure = secure
        self.authenticated = authenticated
        self.features: list[etree._Element] = []

    def add_feature(self, element: etree._Element) -> None:
        """Advertise C{element} inside C{<stream:features/>}."""
        self.features.append(element)


class IXmppConnectionListener(Interface):
    """An application's view of stream negotiation (the patent's onStream)."""

    def on_stream(event: XmppConnectionEvent) -> None:
        """A client opened a stream; the listener may add features."""


@implementer(IXmppConnectionListener)
class XmppConnectionListener:
    """Base class for connection listeners; override L{on_stream}."""

    def on_stream(self, event: XmppConnectionEvent) -> None:
        """Add nothing by default."""
