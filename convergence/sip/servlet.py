# -*- test-case-name: tests.test_sip_core -*-
"""
The SIP servlet API: servlets, requests, responses and SIP sessions (one
per dialog) inside the container's application sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from zope.interface import implementer

from convergence.container.interfaces import IServlet
from convergence.container.session import ApplicationSession, ProtocolSession
from convergence.sip.sdp import (
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    parse_sdp,
    revise_session,
)

if TYPE_CHECKING:
    from convergence.sip.core import UserAgentCore
    from convergence.sip.dialog import Dialog

SDP_TYPE = "application/sdp"


class SipStatusError(Exception):
    """Raised by a handler: answer the request with C{status}."""

    def __init__(self, status: int, reason: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


class SipSession(ProtocolSession):
    """One dialog (or a dialog being set up) inside an application session."""

    kind = "sip"

    def __init__(self, application_session: ApplicationSession,
                 core: "UserAgentCore") -> None:
        self.core = core
        self.dialog: "Dialog | None" = None
        #: the remote party's URI (or its text) before there is a dialog
        self.remote_uri: Any = None
        self.ended = False
        #: the WebSocket flow (a L{convergence.sip.transport.Peer}) the
        #: remote party is reached through, if it is only reachable so
        self.flow: Any = None
        super().__init__(application_session)

    def __repr__(self) -> str:
        return f"<SipSession {self.peer} {self.state}>"

    @property
    def state(self) -> str:
        """C{initial}, C{early}, C{confirmed} or C{terminated}."""
        if self.ended:
            return "terminated"
        return self.dialog.state if self.dialog is not None else "initial"

    @property
    def peer(self) -> str:
        """The remote party's URI."""
        if self.dialog is not None:
            return str(self.dialog.remote_uri.uri)
        return str(self.remote_uri) if self.remote_uri is not None else ""

    def create_request(self, method: str) -> "SipRequest":
        """A new request inside this session's dialog (e.g. BYE, INFO)."""
        return self.core.create_in_dialog_request(self, method)

    @property
    def local_sdp(self) -> SessionDescription | None:
        """Our session description as last negotiated (offer or answer)."""
        return self.dialog.local_sdp if self.dialog is not None else None

    @property
    def remote_sdp(self) -> SessionDescription | None:
        """The peer's session description as last negotiated."""
        return self.dialog.remote_sdp if self.dialog is not None else None

    def create_offer(self, media: Iterable[MediaDescription],
                     session_name: str = "-") -> SessionDescription:
        """
        An SDP offer of C{media} from this server (o= and c= with its
        address); in an established session, a new version of our last
        description (RFC 3264 section 8: same o=, version up if changed).
        """
        host = self.core.transport.host
        offer = SessionDescription(origin=Origin.create(host), session_name=session_name,
                                   connection=Connection.for_address(host),
                                   media=list(media))
        previous = self.local_sdp
        return revise_session(previous, offer) if previous is not None else offer

    def bye(self) -> None:
        """End a confirmed dialog with BYE (the app is told nothing more)."""
        if self.state == "confirmed":
            self.create_request("BYE").send()
        self.ended = True

    def on_invalidate(self) -> None:
        if self.state == "confirmed":
            self.bye()
        self.ended = True
        self.core.forget_session(self)


class _SipMessage:
    """What requests and responses share."""

    def __init__(self, message: Any, session: SipSession) -> None:
        self.message = message
        self.session = session
        self._sdp: SessionDescription | None = None

    @property
    def application_session(self) -> ApplicationSession:
        return self.session.application_session

    @property
    def headers(self) -> Any:
        return self.message.headers

    def header(self, name: str) -> str | None:
        """The first value of header C{name}."""
        return self.message.headers.get(name)

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def content_type(self) -> str | None:
        return self.message.content_type

    @property
    def sdp(self) -> SessionDescription | None:
        """The parsed SDP body, if the body is SDP (raises SdpError if bad)."""
        if self._sdp is None and self.body and self.content_type == SDP_TYPE:
            self._sdp = parse_sdp(self.body)
        return self._sdp

    def set_body(self, body: bytes, content_type: str) -> None:
        """Replace the body."""
        self.message.body = body
        self.message.headers.set("Content-Type", content_type)
        self._sdp = None

    def set_sdp(self, sdp: SessionDescription) -> None:
        """Make C{sdp} the body."""
        self.set_body(sdp.serialize(), SDP_TYPE)
        self._sdp = sdp


class SipRequest(_SipMessage):
    """A request: received by the app, or created by it to send."""

    def __init__(self, message: Any, session: SipSession, transaction: Any = None,
                 outgoing: bool = False) -> None:
        super().__init__(message, session)
        self.transaction = transaction
        self.outgoing = outgoing
        self.final_sent = False
        #: The account localpart a digest challenge proved, if any.
        self.authenticated_user: str | None = None
        #: In C{do_ack}: the peer's answer to the offer our 2xx carried
        #: (checked by the core against the offer), else C{None}.
        self.answer: SessionDescription | None = None

    @property
    def method(self) -> str:
        return self.message.method

    @property
    def uri(self) -> Any:
        return self.message.uri

    @property
    def local_host(self) -> str:
        """The address this server advertises (for SDP c= lines)."""
        return self.session.core.transport.host

    @property
    def is_initial(self) -> bool:
        """Whether this request is outside any dialog."""
        return self.message.to.tag is None

    @property
    def needs_offer(self) -> bool:
        """
        Whether this is a received INVITE without an SDP offer (a delayed
        offer, RFC 3261 13.2.1): its 2xx must carry our offer (see
        L{create_offer}) and the ACK brings the answer to C{do_ack}; an
        ACK without one ends the dialog with BYE and calls C{do_no_answer}.
        """
        return (self.message.method == "INVITE" and not self.outgoing
                and not (self.message.body and self.content_type == SDP_TYPE))

    def create_offer(self, media: Iterable[MediaDescription],
                     session_name: str = "-") -> SessionDescription:
        """An SDP offer of C{media} in this request's session (L{SipSession.create_offer})."""
        return self.session.create_offer(media, session_name)

    def create_response(self, status: int, reason: str | None = None) -> "SipResponse":
        """A response to this (received) request."""
        return self.session.core.create_response(self, status, reason)

    def send(self) -> None:
        """Send this (created) request; responses reach the servlet."""
        self.session.core.send_app_request(self)


class SipResponse(_SipMessage):
    """A response: created by the app for a request, or received by it."""

    def __init__(self, message: Any, session: SipSession, request: SipRequest) -> None:
        super().__init__(message, session)
        self.request = request

    @property
    def status(self) -> int:
        return self.message.status

    @property
    def reason(self) -> str:
        return self.message.reason

    @property
    def method(self) -> str:
        return self.message.cseq[1]

    def send(self) -> None:
        """Send this response to the request's sender."""
        self.session.core.send_app_response(self)


#: Methods a servlet may handle, with their handler names.
METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE",
           "INFO", "UPDATE", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "PUBLISH")
_HANDLERS = {method: f"do_{method.lower()}" for method in METHODS}


@implementer(IServlet)
class SipServlet:
    """
    The main SIP servlet of an application.

    L{service} dispatches requests to C{do_<method>} (falling back to
    L{do_request}) and responses by class to L{do_provisional_response},
    L{do_success_response}, L{do_redirect_response} and
    L{do_error_response}.  Handlers may return a value or a Deferred, or be
    C{async def}; raising L{SipStatusError} answers with that status and any
    other exception with C{500}.
    """

    context: Any = None

    def init(self, context: Any) -> None:
        """Called once at deployment with the application's context."""
        self.context = context

    def destroy(self) -> None:
        """Called once at undeployment."""

    def allowed_methods(self) -> list[str]:
        """Methods this servlet handles (for C{Allow} headers)."""
        base = SipServlet
        allowed = [m for m in METHODS
                   if getattr(type(self), f"do_{m.lower()}", None)
                   is not getattr(base, f"do_{m.lower()}", None)]
        return sorted(set(allowed) | {"ACK", "BYE", "CANCEL", "OPTIONS"})

    def service(self, request: SipRequest | None, response: SipResponse | None) -> Any:
        if request is not None:
            name = _HANDLERS.get(request.method)
            handler = getattr(self, name, None) if name is not None else None
            if handler is None:
                return self.do_request(request)
            return handler(request)
        assert response is not None
        status = response.status
        if status < 200:
            return self.do_provisional_response(response)
        if status < 300:
            return self.do_success_response(response)
        if status < 400:
            return self.do_redirect_response(response)
        return self.do_error_response(response)

    # Requests
    def do_request(self, request: SipRequest) -> Any:
        """A request without a handler: 405 Method Not Allowed."""
        raise SipStatusError(405, headers={"Allow": ", ".join(self.allowed_methods())})

    def do_invite(self, request: SipRequest) -> Any:
        return self.do_request(request)

    def do_ack(self, request: SipRequest) -> Any:
        """
        ACK to our 2xx: nothing to answer.  If the 2xx carried our offer
        (the INVITE had none), C{request.answer} is the peer's answer,
        already checked against the offer (also C{session.remote_sdp}).
        """

    def do_no_answer(self, request: SipRequest) -> Any:
        """
        The ACK to our 2xx carrying an offer had no acceptable answer (no
        SDP, a broken one, or one accepting no stream): the core has sent
        BYE.  By default the application session ends, as for a BYE.
        """
        request.application_session.invalidate()

    def do_bye(self, request: SipRequest) -> Any:
        """By default: 200 OK and the application session ends."""
        request.create_response(200).send()
        request.application_session.invalidate()

    def do_cancel(self, request: SipRequest) -> Any:
        """The caller gave up; the container already answered 200 and 487."""

    def do_options(self, request: SipRequest) -> Any:
        response = request.create_response(200)
        response.headers.set("Allow", ", ".join(self.allowed_methods()))
        response.send()

    def do_register(self, request: SipRequest) -> Any:
        return self.do_request(request)

    def do_message(self, request: SipRequest) -> Any:
        return self.do_request(request)

    def do_info(self, request: SipRequest) -> Any:
        return self.do_request(request)

    def do_update(self, request: SipRequest) -> Any:
        return self.do_request(request)

    def do_prack(self, request: SipRequest) -> Any:
        return self.do_request(request)

    # Responses (to requests the app sent)
    def do_provisional_response(self, response: SipResponse) -> Any:
        """1xx: ignored by default."""

    def do_success_response(self, response: SipResponse) -> Any:
        """2xx: ignored by default (the container ACKs a 2xx to INVITE)."""

    def do_redirect_response(self, response: SipResponse) -> Any:
        """3xx: treated as an error by default."""
        return self.do_error_response(response)

    def do_error_response(self, response: SipResponse) -> Any:
        """4xx-6xx: ignored by default."""


class SipFactory:
    """Creates requests an application sends as a UAC (JSR 289's SipFactory)."""

    def __init__(self, core: "UserAgentCore") -> None:
        self.core = core

    @property
    def local_host(self) -> str:
        """The address this server advertises (for SDP c= lines)."""
        return self.core.transport.host

    def create_request(self, application_session: ApplicationSession, method: str,
                       from_: str, to: str, request_uri: str | None = None) -> SipRequest:
        """
        A new request outside any dialog, in a new SipSession of
        C{application_session}; call C{send()} on it.  Responses reach the
        application's servlet.  A Request-URI naming a registered user of
        ours is sent to their registered contact.
        """
        return self.core.create_initial_request(
            application_session, method, from_, to, request_uri)
