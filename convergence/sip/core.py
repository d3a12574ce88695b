# -*- test-case-name: tests.test_sip_core -*-
"""
The UA core (RFC 3261 section 8 and 12-15): the transaction user that turns
requests into servlet calls and servlet responses into messages.

Initial requests are routed to an application by the container's
application router (by Request-URI user@host, then host); subsequent
requests follow their dialog.  The core itself answers what RFC 3261 gives
to a UAS: 416, 420, 481, 483, 487, 501, OPTIONS to the server, REGISTER.

It keeps each dialog's offer/answer state: a 2xx to an INVITE without an
offer must carry the app's offer, and an ACK without an answer to it ends
the dialog with BYE.  L{UserAgentCore.shut_down} ends the dialogs on
shutdown.

Peers on WebSocket connections (RFC 7118) are reachable only through their
connection (a flow): a dialog with one keeps its flow (L{SipSession.flow})
and sends its requests down it, a request to an address-of-record
registered over one goes down the flow its binding names, and when a flow
closes its registrations are removed (L{flow_closed}).
"""

from __future__ import annotations

import inspect
import secrets
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.container.dispatch import application_key, invoke
from convergence.sip.dialog import (
    CONFIRMED,
    TERMINATED,
    CSeqOutOfOrder,
    Dialog,
    new_tag,
)
from convergence.sip.message import Request, Response, SipParseError, make_request
from convergence.sip.proxy import Proxy
from convergence.sip.ratelimit import RateLimiter
from convergence.sip.registrar import Registrar
from convergence.sip.sdp import NotAcceptable, SdpError
from convergence.sip.servlet import (
    METHODS,
    SipRequest,
    SipResponse,
    SipServlet,
    SipSession,
    SipStatusError,
)
from convergence.sip.timers import Timers, Waits
from convergence.sip.transaction_layer import TransactionLayer
from convergence.sip.transaction_server import PROCEEDING as TX_PROCEEDING
from convergence.sip.transaction_server import TERMINATED as TX_TERMINATED
from convergence.sip.transport import (
    WS_TRANSPORTS,
    Peer,
    SipTransportLayer,
    is_ip,
)
from convergence.sip.uri import NameAddr, SipUri

log = Logger()

#: Option tags we support (RFC 3261 8.2.2.3): none beyond the base spec.
SUPPORTED: tuple[str, ...] = ()
#: What the server itself accepts as bodies.
ACCEPT = "application/sdp"
#: Methods the server understands (others: 501).
SERVER_ALLOW = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER",
                "MESSAGE", "INFO", "UPDATE")
#: Seconds a caller is told to wait (Retry-After) by a 503 during shutdown.
SHUTDOWN_RETRY_AFTER = 30


class Unreachable(Exception):
    """A request's next hop cannot be reached: answer it C{status}."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UserAgentCore:
    """Transaction user of the SIP stack, and the container's SIP door."""

    def __init__(self, reactor: Any, container: Any, domains: list[str],
                 transport: SipTransportLayer, registrar: Registrar | None,
                 timers: Timers = Timers(), challenge_invites: bool = False,
                 proxy: bool = False) -> None:
        self.reactor = reactor
        self.container = container
        self.domains = frozenset(domains)  # fixed, so its sorted copy stays right
        self._sorted_domains = sorted(self.domains)
        self.transport = transport
        self.registrar = registrar
        self.timers = timers
        self.challenge_invites = challenge_invites
        self.transactions = TransactionLayer(reactor, self, timers)
        #: proxies requests to registered users no app serves (sip.proxy)
        self.proxy = Proxy(self) if proxy and registrar is not None else None
        self.dialogs: dict[tuple, SipSession] = {}
        #: 2xx responses retransmitted until their ACK, by dialog id
        self._unacked: dict[tuple, _Retransmit2xx] = {}
        #: every 2xx waits T1 before its first retransmission: one queue
        #: and one delayed call for all of them (most are ACKed before)
        self._first_2xx = Waits(reactor, self._first_2xx_due)
        self._acks: dict[tuple, tuple[Request, Peer]] = {}
        #: Set by L{shut_down}: new INVITEs get 503.
        self.shutting_down = False
        self._closing: set[SipRequest] = set()  # shutdown BYEs not yet answered
        self._shutdown_waiters: list[Deferred] = []
        self._shutdown_timer: IDelayedCall | None = None
        transport.receiver = self
        if transport.rate_limiter is None and registrar is not None:
            # sip.max_requests_per_second_per_source & co. (the [sip] config
            # reaches the stack through the registrar)
            transport.rate_limiter = RateLimiter.from_config(reactor, registrar.config)

    # From the transport
    def request_received(self, request: Request, peer: Peer) -> None:
        self.transactions.receive_request(request, peer, self.transport.channel(peer))

    def response_received(self, response: Response, peer: Peer) -> None:
        self.transactions.receive_response(response, peer)

    def flow_closed(self, peer: Peer) -> None:
        """A WebSocket connection closed: remove the registrations through it."""
        if self.registrar is not None:
            d = self.registrar.forget_flow(peer.flow)
            d.addErrback(lambda f: log.failure("removing the registrations of {flow}",
                                               f, flow=peer.flow))

    def shutdown(self) -> None:
        """Stop every timer: transactions and 2xx retransmissions."""
        self.transactions.shutdown()
        for retransmit in self._unacked.values():
            retransmit.stop()
        self._unacked.clear()
        self._first_2xx.stop()
        if self._shutdown_timer is not None and self._shutdown_timer.active():
            self._shutdown_timer.cancel()

    # Graceful shutdown
    def shut_down(self, grace: float = 2.0) -> Deferred:
        """
        End SIP service gracefully (before the listeners stop): new INVITEs
        and INVITEs still unanswered get C{503} with C{Retry-After}; every
        confirmed dialog gets BYE (one whose 2xx is not yet ACKed when its
        ACK comes, RFC 3261 section 15, or at the end of the grace period).

        @return: fires once every BYE is answered (or failed), or after
            C{grace} seconds, whichever comes first.
        """
        d: Deferred = Deferred()
        if self.shutting_down and self._shutdown_timer is None:
            d.callback(None)  # already finished
            return d
        self._shutdown_waiters.append(d)
        if self.shutting_down:
            return d
        self.shutting_down = True
        log.info("SIP shutting down: ending {count} dialogs", count=len(self.dialogs))
        for tx in list(self.transactions.server.values()):
            if type(tx) is tuple:
                continue  # only waiting (a record): answered already
            if tx.method == "INVITE" and not tx.final_sent and tx.request is not None:
                self._refuse_invite(tx)
        for session in list(self.dialogs.values()):
            if session.state == CONFIRMED and session.dialog.id not in self._unacked:
                self._closing_bye(session)
        self._shutdown_timer = self.reactor.callLater(grace, self._shutdown_finished)
        self._check_closed()
        return d

    def _refuse_invite(self, tx: Any) -> None:
        """Answer a pending INVITE 503 (shutdown); its early dialog ends."""
        sreq: SipRequest | None = tx.application_request
        self._reply(tx.request, tx, 503, "Server shutting down",
                    {"Retry-After": str(SHUTDOWN_RETRY_AFTER)})
        if sreq is not None and sreq.session is not None:
            sreq.final_sent = True
            sreq.session.ended = True
            self._end_dialog(sreq.session)

    def _closing_bye(self, session: SipSession) -> None:
        try:
            bye = session.create_request("BYE")
        except ValueError:
            return
        self._closing.add(bye)
        bye.send()

    def _check_closed(self) -> None:
        if self.shutting_down and not self._closing and not self._unacked:
            self._shutdown_finished()

    def _shutdown_finished(self) -> None:
        timer, self._shutdown_timer = self._shutdown_timer, None
        if timer is None:
            return
        if timer.active():
            timer.cancel()
        for key in list(self._unacked):  # never ACKed: BYE anyway, the server is going
            session = self.dialogs.get(key)
            self._stop_2xx(key)
            if session is not None and session.state == CONFIRMED:
                session.bye()
        self._closing.clear()
        waiters, self._shutdown_waiters = self._shutdown_waiters, []
        log.info("SIP shutdown: dialogs ended")
        for waiter in waiters:
            waiter.callback(None)

    # Locality
    def is_local(self, uri: Any) -> bool:
        """Whether a URI's host is one of our domains or addresses."""
        host = getattr(uri, "host", None)
        if host is None:
            return False
        host = host.strip("[]")
        if host in self.domains:
            return True
        port = uri.port or 5060
        return host in (self.transport.host, "127.0.0.1", "::1") and port in (
            self.transport.udp_port, self.transport.tcp_port, self.transport.ws_port)

    # Transaction user
    def new_request(self, request: Request, tx: Any, peer: Peer) -> None:
        try:
            self._route(request, tx, peer)
        except SipParseError as e:
            # An optional header parsed only when used (Contact, Route …).
            self._reply(request, tx, e.status, e.reason)
        except Exception:
            log.failure("error routing {method}", method=request.method)
            self._reply(request, tx, 500)
        if request.method == "INVITE" and tx.state == TX_PROCEEDING \
                and tx.last_response is None:
            # RFC 3261 17.2.1: 100 (Trying) unless the TU answers within
            # 200 ms; an INVITE answered while it was routed (chatline)
            # needs none, one left to a Deferred gets it now.
            tx.send_response(request.create_response(100))

    def _reply(self, request: Request, tx: Any, status: int, reason: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        if tx.final_sent:
            return
        response = request.create_response(status, reason)
        if status > 100 and request.to.tag is None:
            response.set_to_tag(tx.to_tag or new_tag())
        for name, value in (headers or {}).items():
            response.headers.set(name, value)
        tx.send_response(response)

    def _route(self, request: Request, tx: Any, peer: Peer) -> None:
        method = request.method
        uri = request.uri
        if request.max_forwards == 0:
            self._reply(request, tx, 483)
            return
        if getattr(uri, "scheme", None) not in ("sip", "sips"):
            self._reply(request, tx, 416)
            return
        if self.proxy is not None and method != "CANCEL" and self.proxy.routed(
                request, tx, peer):
            return  # in a dialog we record-routed
        if method not in ("ACK", "CANCEL") and "Require" in request.headers:
            unsupported = [tag for tag in request.require if tag not in SUPPORTED]
            if unsupported:
                self._reply(request, tx, 420, headers={"Unsupported": ", ".join(unsupported)})
                return
        if method not in METHODS:
            self._reply(request, tx, 501, headers={"Allow": ", ".join(SERVER_ALLOW)})
            return
        if method == "CANCEL":
            self._cancel(request, tx)
            return
        if request.to.tag is not None:
            self._in_dialog(request, tx, peer)
            return
        if self.shutting_down and method == "INVITE":
            self._reply(request, tx, 503, "Server shutting down",
                        {"Retry-After": str(SHUTDOWN_RETRY_AFTER)})
            return
        local = self.is_local(uri)
        user = uri.user
        hosts = [uri.host]
        if local and uri.host not in self.domains:
            hosts += self._sorted_domains  # addressed to our IP: any domain
        candidates = [f"{user}@{h}" for h in hosts] + hosts if user else hosts
        app = self.container.router.select("sip", candidates)
        if app is not None and app.servlet("sip") is not None:
            self._initial(app, request, tx, peer)
        elif not local:
            self._reply(request, tx, 404, "Domain not served here")
        elif method == "REGISTER" and self.registrar is not None and not user:
            d = self.registrar.handle(request, self._realm(uri), peer.flow)
            d.addCallback(tx.send_response)
            d.addErrback(self._failed_reply, request, tx, "REGISTER")
        elif method == "OPTIONS" and not user:
            self._reply(request, tx, 200, headers=self.capabilities())
        elif user and self.proxy is not None and method != "ACK":
            aor = f"sip:{user}@{self._realm(uri)}"
            d = self.registrar.lookup_bindings(aor)
            d.addCallback(self._proxy_or_404, request, tx, peer)
            d.addErrback(self._failed_reply, request, tx, method)
        elif user:
            self._reply(request, tx, 404)
        else:
            self._reply(request, tx, 405, headers={"Allow": "OPTIONS, REGISTER"})

    def _proxy_or_404(self, bindings: list[tuple[str, str | None]], request: Request,
                      tx: Any, peer: Peer) -> None:
        if not bindings:
            self._reply(request, tx, 404)
        elif not tx.final_sent:
            self.proxy.forward_initial(request, tx, peer, bindings)

    def _realm(self, uri: Any) -> str:
        host = getattr(uri, "host", None)
        return host if host in self.domains else self._sorted_domains[0]

    def capabilities(self) -> dict[str, str]:
        """Allow, Accept and Supported of the server (answers to OPTIONS)."""
        return {"Allow": ", ".join(SERVER_ALLOW), "Accept": ACCEPT,
                "Supported": ", ".join(SUPPORTED)}

    # Initial requests
    def _initial(self, app: Any, request: Request, tx: Any, peer: Peer) -> None:
        if request.method == "INVITE" and self.challenge_invites and self.registrar:
            d = self.registrar.authenticator.check(request, self._realm(request.from_.uri),
                                                   peer.connection_bound)
            d.addCallback(self._authenticated, app, request, tx, peer)
            d.addErrback(self._failed_reply, request, tx, "INVITE")
            return
        self._start(app, request, tx, None, peer)

    def _authenticated(self, auth: str | None | Response, app: Any, request: Request,
                       tx: Any, peer: Peer) -> None:
        if tx.final_sent or tx.state == TX_TERMINATED:
            return  # CANCELled (487 sent) while the credentials were looked up
        if isinstance(auth, Response):
            tx.send_response(auth)
            return
        self._start(app, request, tx, auth, peer)

    def _failed_reply(self, failure: Failure, request: Request, tx: Any, what: str) -> None:
        if failure.check(SipParseError):
            error = failure.value
            self._reply(request, tx, error.status, error.reason)
            return
        log.failure("error handling {what}", failure, what=what)
        self._reply(request, tx, 500)

    def _start(self, app: Any, request: Request, tx: Any, user: str | None,
               peer: Peer) -> None:
        """Give an initial request to its application, in a new session."""
        sreq = SipRequest(request, None, tx)  # type: ignore[arg-type]
        sreq.authenticated_user = user
        tx.to_tag = new_tag()
        tx.application_request = sreq
        try:
            sreq.sdp
        except SdpError as e:
            self._reply(request, tx, 400, f"Bad SDP: {e}"[:200])
            return
        key = application_key(app, "sip", sreq)
        app_session = self.container.sessions.find_or_create(app, key)
        sreq.session = SipSession(app_session, self)
        sreq.session.remote_uri = request.from_.uri  # read-only: str() when asked
        if peer.connection_bound:
            sreq.session.flow = peer
        self._dispatch(app, sreq, None)

    def _dispatch(self, app: Any, request: SipRequest | None,
                  response: SipResponse | None) -> None:
        """Give a request or a response to the app's servlet.

        A servlet that returns a plain value (chatline answers at once) is
        handled here without a Deferred; a Deferred or a coroutine is
        waited on as L{invoke} does, with the same error handling."""
        servlet: SipServlet = app.servlet("sip")
        try:
            result = servlet.service(request, response)
        except Exception:
            self._servlet_failed(Failure(), app, request)
            return
        if result is None:
            return
        if isinstance(result, Deferred) or inspect.isawaitable(result):
            d = result if isinstance(result, Deferred) else ensureDeferred(result)
            d.addErrback(self._servlet_failed, app, request)

    def _servlet_failed(self, failure: Failure, app: Any,
                        request: SipRequest | None) -> None:
        if request is not None:
            self._app_failed(failure, request, app)
        else:
            log.failure("application {app} failed on a response", failure, app=app.name)

    def _app_failed(self, failure: Failure, sreq: SipRequest, app: Any) -> None:
        if failure.check(SipStatusError):
            error = failure.value
            status, reason, headers = error.status, error.reason, error.headers
        elif failure.check(NotAcceptable):
            status, reason, headers = 488, None, {}
        elif failure.check(SdpError):
            status, reason, headers = 400, f"Bad SDP: {failure.value}"[:200], {}
        else:
            log.failure("application {app} failed handling {method}", failure,
                        app=app.name, method=sreq.method)
            status, reason, headers = 500, None, {}
        if sreq.transaction is not None and sreq.method != "ACK":
            self._reply(sreq.message, sreq.transaction, status, reason, headers)

    # In-dialog requests
    def _in_dialog(self, request: Request, tx: Any, peer: Peer) -> None:
        key = (request.call_id, request.to.tag, request.from_.tag)
        session = self.dialogs.get(key)
        if session is None or session.dialog is None:
            self._reply(request, tx, 481)
            return
        try:
            session.dialog.receive_request(request)
        except CSeqOutOfOrder:
            self._reply(request, tx, 500, "CSeq out of order")
            return
        if peer.connection_bound:
            session.flow = peer  # the peer's latest connection (RFC 5626 4.2.1)
        if request.method == "BYE":
            session.dialog.state = TERMINATED
            self.dialogs.pop(key, None)
            self._stop_2xx(key)
        session.application_session.touch()
        sreq = SipRequest(request, session, tx)
        tx.application_request = sreq
        self._dispatch(session.application_session.application, sreq, None)

    def ack_received(self, request: Request, source: Any) -> None:
        """An ACK to a 2xx: stop retransmitting it and tell the app."""
        if self.proxy is not None and self.proxy.routed(request, None, source):
            return  # an ACK to a 2xx in a dialog we record-routed
        key = (request.call_id, request.to.tag, request.from_.tag)
        session = self.dialogs.get(key)
        if session is None:
            return
        if not self._stop_2xx(key):
            return  # a retransmitted ACK
        sreq = SipRequest(request, session)
        dialog = session.dialog
        if dialog is not None and dialog.awaiting_answer:
            try:
                dialog.receive_answer(sreq.sdp, sreq.body)
            except (NotAcceptable, SdpError) as e:
                self._no_answer(session, sreq, str(e))
                return
            sreq.answer = sreq.sdp
        self._dispatch(session.application_session.application, sreq, None)
        if self.shutting_down:
            if session.state == CONFIRMED:
                self._closing_bye(session)
            self._check_closed()

    def _no_answer(self, session: SipSession, sreq: SipRequest, why: str) -> None:
        """RFC 3261 13.2.1: our offer in a 2xx was not answered: BYE."""
        log.info("ACK without an answer to our offer ({why}): ending the dialog with BYE",
                 why=why)
        if self.shutting_down:
            self._closing_bye(session)
        else:
            session.bye()
        app = session.application_session.application
        servlet = app.servlet("sip")
        handler = getattr(servlet, "do_no_answer", None)
        if handler is None:
            session.application_session.invalidate()
        else:
            invoke(handler, sreq).addErrback(
                lambda f: log.failure("application {app} failed on do_no_answer", f,
                                      app=app.name))
        if self.shutting_down:
            self._check_closed()

    def _cancel(self, request: Request, tx: Any) -> None:
        invite_tx = self.transactions.invite_transaction_for(request)
        if invite_tx is None:
            self._reply(request, tx, 481)
            return
        if self.proxy is not None and self.proxy.cancel(request, invite_tx, tx):
            return
        tx.to_tag = invite_tx.to_tag
        self._reply(request, tx, 200)
        if invite_tx.final_sent:
            return
        sreq: SipRequest | None = invite_tx.application_request
        self._reply(invite_tx.request, invite_tx, 487)
        if sreq is None:
            return
        sreq.final_sent = True
        session = sreq.session
        session.ended = True
        if session.dialog is not None:
            session.dialog.state = TERMINATED
            self.dialogs.pop(session.dialog.id, None)
        cancel = SipRequest(request, session, tx)
        self._dispatch(session.application_session.application, cancel, None)

    def server_timed_out(self, tx: Any) -> None:
        log.info("{method} transaction timed out waiting for an ACK", method=tx.method)

    def stray_response(self, response: Response, source: Any) -> None:
        """A 2xx retransmission after the transaction ended: ACK again."""
        if response.status // 100 == 2 and response.cseq[1] == "INVITE":
            key = (response.call_id, response.from_.tag, response.to.tag)
            sent = self._acks.get(key)
            if sent is not None:
                self.transport.send_request(*sent)
                return
        log.debug("dropped a stray {status} response", status=response.status)

    # Responses from applications
    def create_response(self, sreq: SipRequest, status: int,
                        reason: str | None = None) -> SipResponse:
        message = sreq.message.create_response(status, reason)
        if status > 100 and sreq.message.to.tag is None:
            message.set_to_tag(sreq.transaction.to_tag)
        if sreq.method == "INVITE" and 100 < status < 300:
            user = getattr(sreq.message.uri, "user", None)
            flow = sreq.session.flow if sreq.session is not None else None
            transport = flow.transport if flow is not None else sreq.message.top_via.transport
            if transport not in ("TCP", *WS_TRANSPORTS):
                transport = "UDP"
            message.headers.set("Contact", f"<{self.transport.contact_uri(user, transport)}>")
            for route in sreq.message.headers.get_lines("Record-Route"):
                message.headers.add("Record-Route", route)
        return SipResponse(message, sreq.session, sreq)

    def send_app_response(self, sresp: SipResponse) -> None:
        sreq = sresp.request
        response = sresp.message
        tx = sreq.transaction
        if tx is None or sreq.final_sent:
            log.warn("{status} for {method}: the request was already answered",
                     status=response.status, method=sreq.method)
            return
        status = response.status
        session = sreq.session
        if sreq.method == "INVITE" and 100 < status < 300:
            offer = ours = None
            if status >= 200:
                offer, ours = sreq.sdp, sresp.sdp  # ours: the answer, or our offer
                if offer is None and ours is None:
                    raise ValueError("a 2xx to an INVITE without an offer must carry "
                                     "an SDP offer (set_sdp)")
            if session.dialog is None:
                session.dialog = Dialog.for_uas(sreq.message, response)
                self.dialogs[session.dialog.id] = session
            if status >= 200:
                dialog = session.dialog
                dialog.confirm(response)
                if offer is None:
                    dialog.offer_sent(ours)  # type: ignore[arg-type]
                else:
                    dialog.answer_sent(offer, ours, sreq.body, response.body)
                self._start_2xx(dialog.id, tx, response)
        if status >= 200:
            sreq.final_sent = True
            if sreq.method == "INVITE" and status >= 300:
                self._end_dialog(session)
        tx.send_response(response)

    # RFC 3261 13.3.1.4: the UAS core retransmits 2xx until the ACK.
    def _start_2xx(self, key: tuple, tx: Any, response: Response) -> None:
        retransmit = _Retransmit2xx(self, key, tx, response)
        self._unacked[key] = retransmit
        # The queue holds the dialog id and deadline, not the object: an
        # ACK frees the retransmission, its response and transaction at
        # once, instead of after T1 (by then in the collector's old
        # generation, whose full collections they would bring on).
        self._first_2xx.start(retransmit.interval, (key, retransmit.deadline))

    def _first_2xx_due(self, entry: tuple[tuple, float]) -> None:
        """The first T1 of a 2xx ended: retransmit it, unless ACKed."""
        key, deadline = entry
        retransmit = self._unacked.get(key)
        if retransmit is not None and retransmit.deadline == deadline:
            retransmit()

    def _stop_2xx(self, key: tuple) -> bool:
        """Stop retransmitting the 2xx of dialog C{key}; True if it was."""
        retransmit = self._unacked.pop(key, None)
        if retransmit is None:
            return False
        retransmit.stop()
        return True

    def _no_ack(self, key: tuple) -> None:
        session = self.dialogs.get(key)
        log.info("no ACK for a 2xx: ending the dialog with BYE")
        if session is not None and session.state == CONFIRMED:
            session.bye()
            self._end_dialog(session)
        if self.shutting_down:
            self._check_closed()

    def _end_dialog(self, session: SipSession) -> None:
        dialog = session.dialog
        if dialog is not None:
            dialog.state = TERMINATED
            self.dialogs.pop(dialog.id, None)
            self._stop_2xx(dialog.id)
            self._acks.pop((dialog.call_id, dialog.local_tag, dialog.remote_tag), None)

    def forget_session(self, session: SipSession) -> None:
        """The protocol session was invalidated."""
        self._end_dialog(session)

    # Requests from applications (UAC)
    def create_initial_request(self, application_session: Any, method: str,
                               from_: str, to: str, request_uri: str | None = None) -> SipRequest:
        """A new request outside any dialog, in a new SipSession."""
        session = SipSession(application_session, self)
        session.remote_uri = to
        local = NameAddr.parse(from_)
        local.tag = new_tag()
        remote = NameAddr.parse(to)
        message = make_request(method, request_uri or str(remote.uri), local, remote,
                               secrets.token_hex(12), 1, self.transport.via("UDP"))
        if method == "INVITE":
            user = getattr(local.uri, "user", None)
            message.headers.set("Contact", f"<{self.transport.contact_uri(user)}>")
        return SipRequest(message, session, outgoing=True)

    def create_in_dialog_request(self, session: SipSession, method: str) -> SipRequest:
        dialog = session.dialog
        if dialog is None or dialog.state == TERMINATED:
            raise ValueError(f"no dialog to send {method} in")
        message = dialog.create_request(method, self.transport.via("UDP"))
        return SipRequest(message, session, outgoing=True)

    def send_app_request(self, sreq: SipRequest) -> None:
        """Send an application's request in a client transaction."""
        message = sreq.message
        session = sreq.session
        if message.method == "BYE" and session.dialog is not None:
            self._end_dialog(session)
            session.ended = True
        d = self._next_hop(message, session).addCallback(self._resolve)
        d.addCallback(self._send_resolved, sreq)
        d.addErrback(self._send_failed, sreq)

    def _next_hop(self, message: Request, session: SipSession | None = None) -> Deferred:
        """
        Deferred: (transport, host, port) to send C{message} to, or the
        L{Peer} of the flow it must go down.  A request to a local
        address-of-record goes to its best reachable registered contact; one
        to a peer reachable only over its WebSocket goes down the session's
        flow.

        @raise Unreachable: (in the Deferred) no way to the next hop.
        """
        routes = message.routes
        uri = routes[0].uri if routes else message.uri
        if _connection_bound(uri) and session is not None and session.flow is not None:
            flow = self.transport.flow(session.flow.flow)
            if flow is None:
                return fail(Unreachable(430, "Flow Failed"))  # RFC 5626 11.6
            return succeed(flow)
        if isinstance(uri, SipUri) and self.registrar is not None and not routes \
                and uri.user and uri.host in self.domains:
            return self.registrar.lookup_bindings(f"sip:{uri.user}@{uri.host}").addCallback(
                self._to_contact, message)
        return succeed(_hop(uri))

    def _to_contact(self, bindings: list[tuple[str, str | None]],
                    message: Request) -> tuple[str, str, int] | Peer:
        """The best registered contact that can be reached (a live flow for
        one registered over a WebSocket)."""
        for contact, received in bindings:
            uri = SipUri.parse(contact)
            if received and received.split(":", 1)[0].upper() in WS_TRANSPORTS:
                flow = self.transport.flow(received)
                if flow is None:
                    continue
                message.uri = uri
                return flow
            if _connection_bound(uri):
                continue
            message.uri = uri
            return _hop(uri)
        if bindings:
            raise Unreachable(480, "No registered contact reachable")
        return _hop(message.uri)

    def _resolve(self, hop: tuple[str, str, int] | Peer) -> Deferred:
        if isinstance(hop, Peer):
            return succeed(hop)
        transport, host, port = hop
        if is_ip(host):
            return succeed(Peer(transport, host.strip("[]"), port))
        return self.reactor.resolve(host).addCallback(
            lambda ip: Peer(transport, ip, port))

    def _send_resolved(self, target: Peer, sreq: SipRequest) -> None:
        message = sreq.message
        message.set_top_via(self.transport.via(target.transport))
        if target.connection_bound:
            session = sreq.session
            if session is not None and session.flow is None:
                session.flow = target
            if message.method == "INVITE" and sreq.outgoing and session.dialog is None:
                user = getattr(message.from_.uri, "user", None)
                message.headers.set(
                    "Contact", f"<{self.transport.contact_uri(user, target.transport)}>")
        if message.method == "ACK":
            self.transport.send_request(message, target)
            return
        user = _ClientUser(self, sreq, target)
        tx = self.transactions.send_request(
            message, lambda m: self.transport.send_request(m, target), target.reliable,
            user, build_ack=build_ack)
        target.on_error(tx.transport_error)

    def _send_failed(self, failure: Failure, sreq: SipRequest) -> None:
        log.info("cannot send {method}: {why}", method=sreq.method,
                 why=failure.getErrorMessage())
        if failure.check(Unreachable):
            status, reason = failure.value.status, failure.value.reason
        else:
            status, reason = 503, "Cannot reach destination"
        if sreq.method == "ACK":
            return
        self._deliver_response(sreq, sreq.message.create_response(status, reason))

    def _deliver_response(self, sreq: SipRequest, response: Response) -> None:
        if self._closing and response.status >= 200 and sreq in self._closing:
            self._closing.discard(sreq)
            self._check_closed()
        app = sreq.application_session.application
        self._dispatch(app, None, SipResponse(response, sreq.session, sreq))

    def uac_response(self, sreq: SipRequest, response: Response, target: Peer,
                     retransmission: bool) -> None:
        """A response to a request an application sent."""
        session = sreq.session
        status = response.status
        if sreq.method == "INVITE" and response.to.tag and 100 < status < 300:
            dialog = session.dialog
            if dialog is None:
                dialog = session.dialog = Dialog.for_uac(sreq.message, response)
                self.dialogs[dialog.id] = session
            if status >= 200:
                dialog.confirm(response)
                ack = dialog.create_request("ACK", self.transport.via(target.transport))
                hop_target = target
                self.transport.send_request(ack, hop_target)
                self._acks[dialog.id] = (ack, hop_target)
                if retransmission:
                    return
                if self.shutting_down:
                    self._closing_bye(session)
        if sreq.method == "INVITE" and status >= 300:
            self._end_dialog(session)
            session.ended = True
        self._deliver_response(sreq, response)


def _connection_bound(uri: Any) -> bool:
    """Whether a URI names a peer only reachable over its own connection:
    C{transport=ws}/C{wss}, or a C{.invalid} host (RFC 7118 5.2)."""
    if getattr(uri, "transport", None) in ("ws", "wss"):
        return True
    host = getattr(uri, "host", None) or ""
    return host.lower().endswith(".invalid")


def _hop(uri: Any) -> tuple[str, str, int]:
    """(transport, host, port) of a URI (RFC 3263's defaults, no DNS SRV)."""
    transport = "TCP" if getattr(uri, "transport", None) == "tcp" else "UDP"
    host = uri.params.get("maddr") or uri.host
    return transport, host, uri.port or 5060


class _ClientUser:
    """Receives a client transaction's outcome for the core."""

    def __init__(self, core: UserAgentCore, sreq: SipRequest, target: Peer) -> None:
        self.core = core
        self.sreq = sreq
        self.target = target
        self.seen_2xx = False

    def response_received(self, tx: Any, response: Response) -> None:
        retransmission = self.seen_2xx and 200 <= response.status < 300
        self.seen_2xx = self.seen_2xx or 200 <= response.status < 300
        self.core.uac_response(self.sreq, response, self.target, retransmission)

    def timed_out(self, tx: Any) -> None:
        self.core._deliver_response(self.sreq, self.sreq.message.create_response(408))

    def transport_failed(self, tx: Any) -> None:
        self.core._deliver_response(
            self.sreq, self.sreq.message.create_response(503, "Transport failure"))


def build_ack(request: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a non-2xx (RFC 3261 17.1.1.3)."""
    return make_request(
        "ACK", request.uri, request.from_, response.to, request.call_id,
        request.cseq[0], request.vias[0],
        headers=[("Route", r) for r in request.headers.get_lines("Route")],
    )



class _Retransmit2xx:
    """
    The UAS core's retransmissions of one 2xx until its ACK (RFC 3261
    13.3.1.4): T1, doubling up to T2, for 64*T1.  An object rather than a
    closure, so that nothing refers back to itself: once the ACK cancels
    the delayed call, the response is freed at once, not by the garbage
    collector.
    """

    __slots__ = ("call", "core", "deadline", "interval", "key", "response", "tx")

    def __init__(self, core: UserAgentCore, key: tuple, tx: Any, response: Response) -> None:
        self.core = core
        self.key = key
        self.tx = tx
        self.response = response
        self.interval = core.timers.T1
        self.deadline = core.reactor.seconds() + 64 * core.timers.T1
        self.call: IDelayedCall | None = None  # after the first wait

    def stop(self) -> None:
        """The ACK came (or the dialog or the stack ended): no more sends."""
        self.response = self.tx = None  # type: ignore[assignment]
        call, self.call = self.call, None
        if call is not None and call.active():
            call.cancel()

    def __call__(self) -> None:
        core = self.core
        self.call = None
        if core.reactor.seconds() >= self.deadline:
            if core._unacked.get(self.key) is self:
                del core._unacked[self.key]
            core._no_ack(self.key)
            return
        if not self.tx.reliable:
            self.tx.send_response(self.response)
        self.interval = min(2 * self.interval, core.timers.T2)
        self.call = core.reactor.callLater(self.interval, self)
