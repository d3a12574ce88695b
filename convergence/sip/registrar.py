# -*- test-case-name: tests.test_sip_core -*-
"""
The registrar (RFC 3261 section 10.3): digest-authenticated REGISTER
against the accounts convergencectl manages, bindings in a location store.
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Any, Callable

from twisted.logger import Logger

from convergence.auth.digest import DigestChallenger
from convergence.config import SipConfig
from convergence.sip.message import Request, Response
from convergence.sip.uri import SipUri

log = Logger()


class Authenticator:
    """Digest challengers for every served domain (realm = domain)."""

    def __init__(self, accounts: Any, domains: list[str], now: Callable[[], float],
                 nonce_lifetime: float,
                 algorithms: tuple[str, ...] = ("SHA-256", "MD5")) -> None:
        self.accounts = accounts
        self.challengers = {
            d: DigestChallenger(d, now, nonce_lifetime=nonce_lifetime, algorithms=algorithms)
            for d in domains
        }

    def check(self, request: Request, domain: str) -> str | None | Response:
        """
        The authenticated localpart, or the 401 response to send.
        """
        challenger = self.challengers[domain]
        stale = False
        for value in request.headers.get_lines("Authorization"):
            result = challenger.verify(request.method, value,
                                       self.accounts.ha1_lookup(domain),
                                       request_uri=str(request.uri))
            if result.ok:
                return result.username
            stale = stale or result.stale
            log.info("digest authentication failed for {user}@{domain}: {reason}",
                     user=result.username, domain=domain, reason=result.reason)
        response = request.create_response(401)
        for challenge in challenger.challenges(stale=stale):
            response.headers.add("WWW-Authenticate", challenge)
        return response


class Registrar:
    """Handles REGISTER for the served domains."""

    def __init__(self, locations: Any, accounts: Any, authenticator: Authenticator,
                 config: SipConfig, now: Callable[[], float]) -> None:
        self.locations = locations
        self.accounts = accounts
        self.authenticator = authenticator
        self.config = config
        self.now = now

    def handle(self, request: Request, domain: str, received: str) -> Response:
        """Process one REGISTER whose Request-URI names C{domain}."""
        auth = self.authenticator.check(request, domain)
        if isinstance(auth, Response):
            return auth
        to = request.to.uri
        if not isinstance(to, SipUri) or to.host != domain or not to.user:
            return request.create_response(404, "Address-of-record not served here")
        if to.user != auth:
            return request.create_response(403, "May only register yourself")
        aor = f"sip:{to.user}@{domain}"
        now = self.now()
        header_expires = request.expires
        if request.is_wildcard_contact:
            if header_expires != 0 or len(request.headers.get_all("Contact")) != 1:
                return request.create_response(400, "Wildcard Contact needs Expires: 0")
            self.locations.remove_all(aor)
            return self._ok(request, aor, now)
        call_id, cseq = request.call_id, request.cseq[0]
        existing = {b.contact: b for b in self.locations.bindings(aor, now)}
        updates = []
        for contact in request.contacts:
            uri = str(contact.uri)
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
            old = existing.get(uri)
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                return request.create_response(500, "Out-of-order REGISTER")
            q = contact.params.get("q")
            try:
                q_value = float(q) if q is not None else None
            except ValueError:
                return request.create_response(400, "Bad q parameter")
            updates.append((uri, min(expires, self.config.max_expires), q_value))
        for uri, expires, q_value in updates:
            if expires == 0:
                self.locations.remove_binding(aor, uri)
            else:
                self.locations.register_binding(
                    aor, uri, now + expires, call_id, cseq, q_value, received=received)
        log.info("REGISTER {aor}: {n} binding(s) now", aor=aor,
                 n=len(self.locations.bindings(aor, now)))
        return self._ok(request, aor, now)

    def _ok(self, request: Request, aor: str, now: float) -> Response:
        response = request.create_response(200)
        for binding in self.locations.bindings(aor, now):
            left = max(0, int(binding.expires_at - now))
            response.headers.add("Contact", f"<{binding.contact}>;expires={left}")
        response.headers.set("Date", formatdate(now, usegmt=True))
        return response

    def lookup(self, aor: str) -> list[str]:
        """The registered contact URIs of C{aor}, best first."""
        return [b.contact for b in self.locations.bindings(aor, self.now())]
