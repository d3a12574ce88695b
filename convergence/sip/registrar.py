# -*- test-case-name: tests.test_sip_core -*-
"""
The registrar (RFC 3261 section 10.3): digest-authenticated REGISTER
against the accounts convergencectl manages, bindings in a location store.

The HA1 secrets come from the database thread as Deferreds; the bindings
are read and changed through C{run}, which the server makes run at once on
the reactor thread, as its location store keeps them in memory and writes
them behind (L{convergence.store.writebehind}).  With a store that does
its own I/O, C{run} is the database thread's.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from convergence.auth.digest import DigestChallenger, ha1_key
from convergence.config import SipConfig
from convergence.sip.message import Request, Response
from convergence.sip.uri import SipUri

log = Logger()

#: Authorization headers of one request that are checked (the rest ignored)
MAX_AUTHORIZATIONS = 4


class Authenticator:
    """Digest challengers for every served domain (realm = domain)."""

    def __init__(self, accounts: Any, domains: list[str], now: Callable[[], float],
                 nonce_lifetime: float,
                 algorithms: tuple[str, ...] = ("MD5", "SHA-256"),
                 websocket_order: tuple[str, ...] | None = None,
                 replay_entries: int = 100_000) -> None:
        """
        @param accounts: an L{AccountLookup} (HA1 secrets as Deferreds).
        @param algorithms: one C{WWW-Authenticate} per algorithm, in this
            order (RFC 8760 8.2); MD5 first serves clients that read only
            the first challenge, SHA-256 clients pick theirs from any place.
        @param websocket_order: the challenges' order for requests over a
            WebSocket (JsSIP and SIP.js read only the last one, and know
            only MD5); None: C{algorithms}.
        @param replay_entries: nonce uses each domain remembers against
            replay (C{sip.digest_replay_entries}).
        """
        self.accounts = accounts
        self.websocket_order = websocket_order
        self.challengers = {
            d: DigestChallenger(d, now, nonce_lifetime=nonce_lifetime, algorithms=algorithms,
                                max_replay_entries=replay_entries)
            for d in domains
        }

    def check(self, request: Request, domain: str, websocket: bool = False) -> Deferred:
        """
        Deferred: the authenticated localpart, or the 401 response to send
        (its challenges in the WebSocket order with C{websocket}).
        """
        values = request.headers.get_lines("Authorization")[:MAX_AUTHORIZATIONS]
        wanted = list(dict.fromkeys(key for key in map(ha1_key, values) if key is not None))
        d = self.accounts.digests(domain, wanted) if wanted else succeed({})
        return d.addCallback(self._verify, request, domain, values, websocket)

    def _verify(self, secrets: dict[tuple[str, str], str | None], request: Request,
                domain: str, values: list[str],
                websocket: bool = False) -> str | None | Response:
        challenger = self.challengers[domain]
        stale = False
        for value in values:
            result = challenger.verify(request.method, value,
                                       lambda *key: secrets.get(key),
                                       request_uri=str(request.uri))
            if result.ok:
                return result.username
            stale = stale or result.stale
            log.info("digest authentication failed for {user}@{domain}: {reason}",
                     user=result.username, domain=domain, reason=result.reason)
        response = request.create_response(401)
        order = self.websocket_order if websocket else None
        for challenge in challenger.challenges(stale=stale, order=order):
            response.headers.add("WWW-Authenticate", challenge)
        return response


@dataclass(frozen=True)
class _Plan:
    """What a valid REGISTER asks for: (contact, expires, q) per contact."""

    aor: str
    call_id: str
    cseq: int
    updates: list[tuple[str, int, float | None]]
    wildcard: bool = False


class Registrar:
    """Handles REGISTER for the served domains."""

    def __init__(self, locations: Any, authenticator: Authenticator,
                 config: SipConfig, now: Callable[[], float],
                 run: Callable[..., Deferred]) -> None:
        """
        @param run: runs a callable against C{locations} (Deferred): the
            database thread's, or at once for an in-memory store.
        """
        self.locations = locations
        self.authenticator = authenticator
        self.config = config
        self.now = now
        self.run = run

    def handle(self, request: Request, domain: str, received: str) -> Deferred:
        """Deferred: the response to one REGISTER whose Request-URI names C{domain}."""

        def authenticated(auth: str | None | Response) -> Any:
            if isinstance(auth, Response):
                return auth
            plan = self._plan(request, domain, auth)  # parsing stays on this thread
            if isinstance(plan, Response):
                return plan
            now = self.now()
            d = self.run(self._store, plan, now, received)
            return d.addCallback(self._answer, request, plan, now)

        websocket = received.split(":", 1)[0] in ("ws", "wss")
        return self.authenticator.check(request, domain, websocket).addCallback(
            authenticated)

    def _plan(self, request: Request, domain: str, auth: str | None) -> Response | _Plan:
        """Validate a REGISTER: the changes it asks for, or the error to answer."""
        to = request.to.uri
        if not isinstance(to, SipUri) or to.host != domain or not to.user:
            return request.create_response(404, "Address-of-record not served here")
        if to.user != auth:
            return request.create_response(403, "May only register yourself")
        aor = f"sip:{to.user}@{domain}"
        header_expires = request.expires
        call_id, cseq = request.call_id, request.cseq[0]
        if request.is_wildcard_contact:
            if header_expires != 0 or len(request.headers.get_all("Contact")) != 1:
                return request.create_response(400, "Wildcard Contact needs Expires: 0")
            return _Plan(aor, call_id, cseq, [], wildcard=True)
        updates = []
        for contact in request.contacts:
            raw = contact.params.get("expires")
            try:
                expires = int(raw) if raw is not None else header_expires
            except ValueError:
                return request.create_response(400, "Bad expires parameter")
            if expires is None:
                expires = self.config.default_expires
            if 0 < expires < self.config.min_expires:
                response = request.create_response(423)
                response.headers.set("Min-Expires", str(self.config.min_expires))
                return response
            q = contact.params.get("q")
            try:
                q_value = float(q) if q is not None else None
            except ValueError:
                return request.create_response(400, "Bad q parameter")
            updates.append((str(contact.uri), min(expires, self.config.max_expires), q_value))
        return _Plan(aor, call_id, cseq, updates)

    def _store(self, plan: _Plan, now: float, received: str) -> list[Any] | None:
        """
        On the database thread: apply a REGISTER's changes; the bindings of
        the address-of-record after them, or C{None} for an out-of-order
        REGISTER (nothing changed).
        """
        if plan.wildcard:
            self.locations.remove_all(plan.aor)
            return self.locations.bindings(plan.aor, now)
        existing = {b.contact: b for b in self.locations.bindings(plan.aor, now)}
        for uri, _, _ in plan.updates:
            old = existing.get(uri)
            if old is not None and old.call_id == plan.call_id and plan.cseq <= old.cseq:
                return None
        for uri, expires, q_value in plan.updates:
            if expires == 0:
                self.locations.remove_binding(plan.aor, uri)
            else:
                self.locations.register_binding(plan.aor, uri, now + expires, plan.call_id,
                                                plan.cseq, q_value, received=received)
        return self.locations.bindings(plan.aor, now)

    def _answer(self, bindings: list[Any] | None, request: Request, plan: _Plan,
                now: float) -> Response:
        if bindings is None:
            return request.create_response(500, "Out-of-order REGISTER")
        log.debug("REGISTER {aor}: {n} binding(s) now", aor=plan.aor, n=len(bindings))
        response = request.create_response(200)
        for binding in bindings:
            left = max(0, int(binding.expires_at - now))
            response.headers.add("Contact", f"<{binding.contact}>;expires={left}")
        response.headers.set("Date", formatdate(now, usegmt=True))
        return response

    def lookup(self, aor: str) -> Deferred:
        """Deferred: the registered contact URIs of C{aor}, best first."""
        now = self.now()
        return self.run(lambda: [b.contact for b in self.locations.bindings(aor, now)])

    def lookup_bindings(self, aor: str) -> Deferred:
        """Deferred: C{(contact, received)} of C{aor}'s bindings, best first;
        C{received} names the flow a contact was registered through."""
        now = self.now()
        return self.run(lambda: [(b.contact, b.received)
                                 for b in self.locations.bindings(aor, now)])

    def forget_flow(self, received: str) -> Deferred:
        """
        A connection-bound flow (a WebSocket, RFC 7118 5.3) closed: remove
        every binding registered through it.  Deferred: how many.
        """
        def remove() -> int:
            return self.locations.remove_received(received)

        d = self.run(remove)
        d.addCallback(self._forgotten, received)
        return d

    @staticmethod
    def _forgotten(count: int, received: str) -> int:
        if count:
            log.info("flow {flow} closed: {n} binding(s) removed", flow=received, n=count)
        return count

    def forget_flows(self, transports: tuple[str, ...] = ("ws", "wss")) -> Deferred:
        """
        Remove the bindings of every connection-bound flow (at startup:
        the connections of a previous run are gone).  Deferred: how many.
        """
        def remove() -> int:
            return sum(self.locations.remove_received_prefix(f"{t}:") for t in transports)

        return self.run(remove)
