# -*- test-case-name: tests.test_sip_proxy -*-
"""
A transaction-stateful proxy (RFC 3261 section 16) for requests to the
registered users of the served domains that no application serves: a UDP
phone calling a browser registered over a WebSocket, or the reverse.

Scope: one target per request, the best reachable binding (no forking);
the proxy Record-Routes INVITEs, twice when the two sides use different
transports (RFC 5658) so each side reaches it over its own, and the
record-route facing a WebSocket carries the flow token (RFC 5626 5.3) in
its user part, so that in-dialog requests toward that client go down its
connection.  Requests whose top Route is one of those URIs are forwarded
to the next Route or the Request-URI (loose routing, 16.4); ACKs to 2xx
statelessly, others in a transaction.  A CANCEL is answered 200 and sent
on to the branch, whose 487 comes back the normal way.  Responses lose
our Via and go back through the server transaction; 100s stay here
(the core sent its own for INVITE).  No Timer C: a branch that rings
forever is ended by the caller's CANCEL.
"""

from __future__ import annotations

import binascii
from typing import Any

from twisted.internet.defer import succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.sip.headers import split_list
from convergence.sip.message import Request, Response
from convergence.sip.transport import Peer, new_branch
from convergence.sip.uri import SipUri

log = Logger()

#: The user part of a record-route naming a flow: C{ob-<hex of the token>}.
FLOW_PREFIX = "ob-"


def flow_user(flow: str) -> str:
    """The record-route user part naming flow token C{flow}."""
    return FLOW_PREFIX + binascii.hexlify(flow.encode()).decode()


def flow_of(uri: Any) -> str | None:
    """The flow token in one of our record-route URIs, if any."""
    user = getattr(uri, "user", None) or ""
    if not user.startswith(FLOW_PREFIX):
        return None
    try:
        return binascii.unhexlify(user[len(FLOW_PREFIX):]).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _pop_first(message: Any, name: str) -> None:
    """Remove the first value of C{name} (Via, Route), lines kept in order."""
    lines = message.headers.get_lines(name)
    if not lines:
        return
    rest = split_list(lines[0])[1:]
    lines = ([", ".join(rest)] if rest else []) + lines[1:]
    message.headers.remove(name)
    for line in reversed(lines):
        message.headers.add(name, line, first=True)


class Proxy:
    """The stateful proxy of one UA core."""

    def __init__(self, core: Any) -> None:
        self.core = core
        #: client transactions of forwarded INVITEs, by the server one's key
        self.branches: dict[tuple, Any] = {}

    # Our record-route URIs
    def record_route(self, peer: Peer) -> str:
        """Our record-route URI as C{peer}'s side reaches us."""
        transport = self.core.transport
        user = f"{flow_user(peer.flow)}@" if peer.connection_bound else ""
        param = f";transport={peer.transport.lower()}" if peer.transport != "UDP" else ""
        return (f"<sip:{user}{transport._host_for_header()}:"
                f"{transport.advertised_port(peer.transport)}{param};lr>")

    def is_ours(self, uri: Any) -> bool:
        """Whether a Route URI is one we record-routed (loose routing):
        our address with C{lr}, and no user part but a flow token."""
        return (isinstance(uri, SipUri) and "lr" in uri.params
                and self.core.is_local(uri)
                and (not uri.user or flow_of(uri) is not None))

    def _for_us(self, uri: Any) -> bool:
        """Whether a Request-URI names this server (a domain or address of ours)."""
        return self.core.is_local(uri) or getattr(uri, "host", None) in self.core.domains

    # Initial requests to registered users
    def forward_initial(self, request: Request, tx: Any, peer: Peer,
                        bindings: list[tuple[str, str | None]]) -> None:
        """Proxy an initial request to the best reachable binding."""
        from convergence.sip.core import Unreachable

        out = request.copy()
        try:
            hop = self.core._to_contact(bindings, out)
        except Unreachable as e:
            self.core._reply(request, tx, e.status, e.reason)
            return
        d = self.core._resolve(hop)
        d.addCallback(self._send, request, out, tx, peer, record=request.method == "INVITE")
        d.addErrback(self._failed, request, tx)

    # Requests routed through us (in dialogs we record-routed)
    def routed(self, request: Request, tx: Any | None, peer: Peer) -> bool:
        """
        If C{request}'s top Route is ours, forward it (C{tx} is None for an
        ACK, which goes statelessly) and return True.
        """
        if "Route" not in request.headers:
            return False
        routes = request.routes
        if not routes or not self.is_ours(routes[0].uri):
            return False
        out = request.copy()
        flow = None
        while out.routes and self.is_ours(out.routes[0].uri):
            flow = flow_of(out.routes[0].uri) or flow
            _pop_first(out, "Route")
        if not out.routes and self._for_us(out.uri):
            return False  # we were the only hop (an outbound proxy's Route): serve it
        target_uri = out.routes[0].uri if out.routes else out.uri
        from convergence.sip.core import _connection_bound, _hop

        if _connection_bound(target_uri):
            target = self.core.transport.flow(flow)
            if target is None:
                if tx is not None:
                    self.core._reply(request, tx, 430, "Flow Failed")
                return True
            d = succeed(target)
        else:
            d = self.core._resolve(_hop(target_uri))
        if tx is None:
            d.addCallback(self._send_ack, out)
            d.addErrback(lambda f: log.info("cannot forward an ACK: {why}",
                                            why=f.getErrorMessage()))
        else:
            d.addCallback(self._send, request, out, tx, peer, record=False)
            d.addErrback(self._failed, request, tx)
        return True

    # Forwarding
    def _prepare(self, out: Request, target: Peer) -> None:
        forwards = out.max_forwards
        out.headers.set("Max-Forwards", str((70 if forwards is None else forwards) - 1))
        via = self.core.transport.via(target.transport, new_branch())
        out.headers.add("Via", via, first=True)

    def _send(self, target: Peer, request: Request, out: Request, tx: Any, peer: Peer,
              record: bool) -> None:
        if tx.final_sent:
            return  # CANCELled meanwhile
        if record:
            inbound, outbound = self.record_route(peer), self.record_route(target)
            out.headers.add("Record-Route", inbound, first=True)
            if outbound != inbound:  # RFC 5658: each side its own
                out.headers.add("Record-Route", outbound, first=True)
        self._prepare(out, target)
        from convergence.sip.core import build_ack

        branch = _Branch(self, request, tx, target)
        client = self.core.transactions.send_request(
            out, lambda m: self.core.transport.send_request(m, target), target.reliable,
            branch, build_ack=build_ack)
        target.on_error(client.transport_error)
        branch.client = client
        if request.method == "INVITE":
            self.branches[tx.key] = branch

    def _send_ack(self, target: Peer, out: Request) -> None:
        self._prepare(out, target)
        self.core.transport.send_request(out, target)

    def _failed(self, failure: Failure, request: Request, tx: Any) -> None:
        log.info("cannot proxy {method}: {why}", method=request.method,
                 why=failure.getErrorMessage())
        status = getattr(failure.value, "status", 503)
        reason = getattr(failure.value, "reason", "Cannot reach destination")
        self.core._reply(request, tx, status, reason)

    # CANCEL
    def cancel(self, cancel: Request, invite_tx: Any, tx: Any) -> bool:
        """A CANCEL of a proxied INVITE: 200, and CANCEL the branch (16.10)."""
        branch = self.branches.get(invite_tx.key)
        if branch is None:
            return False
        tx.to_tag = invite_tx.to_tag
        self.core._reply(cancel, tx, 200)
        branch.cancel()
        return True


class _Branch:
    """One forwarded request: its responses go back upstream."""

    def __init__(self, proxy: Proxy, request: Request, tx: Any, target: Peer) -> None:
        self.proxy = proxy
        self.request = request
        self.tx = tx
        self.target = target
        self.client: Any = None
        self.cancelled = False
        self.cancel_sent = False
        self.provisional = False

    def response_received(self, client: Any, response: Response) -> None:
        if response.status == 100:
            return
        if response.status < 200:
            self.provisional = True
            if self.cancelled:
                self._send_cancel()
        if response.status >= 200:
            self.proxy.branches.pop(self.tx.key, None)
        upstream = response.copy()
        _pop_first(upstream, "Via")
        if self.tx.final_sent and not 200 <= response.status < 300:
            return  # only 2xx retransmissions follow a final response
        self.tx.send_response(upstream)

    def timed_out(self, client: Any) -> None:
        self._give_up(408, None)

    def transport_failed(self, client: Any) -> None:
        self._give_up(503, "Transport failure")

    def _give_up(self, status: int, reason: str | None) -> None:
        self.proxy.branches.pop(self.tx.key, None)
        self.proxy.core._reply(self.request, self.tx, status, reason)

    def cancel(self) -> None:
        """CANCEL the branch once it has a provisional response (9.1)."""
        self.cancelled = True
        if self.provisional:
            self._send_cancel()

    def _send_cancel(self) -> None:
        """RFC 3261 9.1: the CANCEL of the request as sent (its top Via)."""
        sent = self.client.request if self.client is not None else None
        if sent is None or self.cancel_sent:
            return
        self.cancel_sent = True
        cancel = Request("CANCEL", sent.uri.copy())
        cancel.headers.add("Via", str(sent.top_via))
        for name in ("From", "To", "Call-ID", "Route"):
            for line in sent.headers.get_lines(name):
                cancel.headers.add(name, line)
        cancel.headers.set("CSeq", f"{sent.cseq[0]} CANCEL")
        cancel.headers.set("Max-Forwards", "70")
        target = self.target
        core = self.proxy.core
        core.transactions.send_request(
            cancel, lambda m: core.transport.send_request(m, target), target.reliable,
            _Quiet())


class _Quiet:
    """The user of a CANCEL's transaction: its answer is not passed on."""

    def response_received(self, client: Any, response: Response) -> None:
        pass

    def timed_out(self, client: Any) -> None:
        pass

    def transport_failed(self, client: Any) -> None:
        pass


__all__ = ["FLOW_PREFIX", "Proxy", "flow_of", "flow_user"]
