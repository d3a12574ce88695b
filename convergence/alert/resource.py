# -*- test-case-name: tests.test_alert -*-
"""
C{POST /api/alert}: the HTTP side of event alerting.

Every request goes through the same checks, in this order, and the first
that fails answers with C{{"error": …, "text": …}} and posts nothing:

  - 405 for any method but POST (C{Allow: POST});
  - 401 without C{Authorization: Bearer <token>} or with a token that is
    not configured (C{WWW-Authenticate: Bearer}); tokens are compared in
    constant time (L{convergence.alert.tokens}) and never logged, only
    their names;
  - 429 past the token's rate (C{alert.rate}, C{alert.burst}) with
    C{Retry-After}: every authenticated request counts;
  - 413 for a body larger than C{alert.max_body_size};
  - 400 for a body that is not one well-formed alert, or a bad JID;
  - 404 for a room that does not exist (unless C{alert.create_rooms});
  - 409 for a room nickname an occupant holds.

Then the alert is sent and the answer is C{202 {"id": "<stanza id>"}}.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from convergence.alert.alerts import Alert, AlertRefused, parse_alert
from convergence.alert.poster import IAlertPoster
from convergence.alert.tokens import Tokens
from convergence.http.resource import ErrorPage

__all__ = ["AlertResource", "ApiRoot", "install"]

REALM = "convergence"

log = Logger()


def _client(request: Any) -> str:
    return str(getattr(request.getClientAddress(), "host", "-"))


class AlertResource(Resource):
    """The alert endpoint (see the module docstring)."""

    isLeaf = True

    def __init__(self, poster: IAlertPoster, tokens: Tokens, max_body_size: int,
                 clock: Any) -> None:
        super().__init__()
        self.poster = poster
        self.tokens = tokens
        self.max_body_size = max_body_size
        self.clock = clock

    # answers
    @staticmethod
    def _json(request: Any, status: int, value: dict[str, str],
              headers: dict[str, str] | None = None) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        for name, text in (headers or {}).items():
            request.setHeader(name.encode("ascii"), text.encode("ascii"))
        body = (json.dumps(value) + "\n").encode("utf-8")
        request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        return body

    def _refuse(self, request: Any, refused: AlertRefused) -> bytes:
        return self._json(request, refused.status,
                          {"error": refused.error, "text": refused.text}, refused.headers)

    def _finish(self, request: Any, body: bytes) -> None:
        if request._disconnected or request.finished:
            return
        request.write(body)
        request.finish()

    # checks
    def _token(self, request: Any) -> str:
        """The name of the request's token. @raise AlertRefused: 401."""
        values = request.requestHeaders.getRawHeaders(b"authorization") or []
        scheme, _, presented = (values[0] if len(values) == 1 else b"").partition(b" ")
        challenge = f'Bearer realm="{REALM}"'
        if scheme.lower() != b"bearer" or not presented.strip():
            raise AlertRefused(401, "unauthorized", "A bearer token is required",
                               {"WWW-Authenticate": challenge})
        name = self.tokens.match(presented.strip())
        if name is None:
            log.info("alert from {client} refused: unknown token", client=_client(request))
            raise AlertRefused(401, "unauthorized", "Unknown token",
                               {"WWW-Authenticate": f'{challenge}, error="invalid_token"'})
        return name

    def _body(self, request: Any) -> bytes:
        content = request.content
        content.seek(0)
        raw = content.read(self.max_body_size + 1)
        if len(raw) > self.max_body_size:
            raise AlertRefused(413, "too_large",
                               f"The body exceeds {self.max_body_size} bytes")
        return raw

    # the request
    def render(self, request: Any) -> Any:
        name = None
        try:
            if request.postpath not in ([], [b""]):
                raise AlertRefused(404, "not_found", "No such resource")
            if request.method != b"POST":
                raise AlertRefused(405, "method_not_allowed", "Alerts are POSTed",
                                   {"Allow": "POST"})
            name = self._token(request)
            wait = self.tokens.retry_after(name, self.clock.seconds())
            if wait:
                raise AlertRefused(429, "rate_limited",
                                   f"Too many alerts; retry in {wait} s",
                                   {"Retry-After": str(wait)})
            alert = parse_alert(self._body(request))
        except AlertRefused as e:
            if name is not None:
                log.info("alert by token {token} refused: {status} {error}",
                         token=name, status=e.status, error=e.error)
            return self._refuse(request, e)
        d = self.poster.post(alert)
        d.addCallbacks(self._posted, self._failed, callbackArgs=(request, name, alert),
                       errbackArgs=(request, name))
        return NOT_DONE_YET

    def _posted(self, stanza_id: str, request: Any, name: str, alert: Alert) -> None:
        log.info("alert {id} by token {token} to {target}", id=stanza_id, token=name,
                 target=alert.room if alert.room is not None else alert.to)
        self._finish(request, self._json(request, 202, {"id": stanza_id}))

    def _failed(self, failure: Failure, request: Any, name: str) -> None:
        if failure.check(AlertRefused):
            refused = failure.value
            log.info("alert by token {token} refused: {status} {error}",
                     token=name, status=refused.status, error=refused.error)
            self._finish(request, self._refuse(request, refused))
            return
        log.failure("alert by token {token} failed", failure, token=name)
        self._finish(request, self._json(request, 500, {
            "error": "internal", "text": "The alert could not be sent"}))


class ApiRoot(Resource):
    """C{/api/}: its children, everything else 404."""

    def getChild(self, path: bytes, request: Any) -> Resource:
        return ErrorPage(404)

    def render(self, request: Any) -> bytes:
        return ErrorPage(404).render(request)


def install(site: Any, resource: AlertResource) -> None:
    """Serve C{resource} at C{/api/alert} of C{site} (an L{HttpSite}).

    @raise convergence.http.resource.MountConflict: C{/api} is taken."""
    api = ApiRoot()
    api.putChild(b"alert", resource)
    site.root.mount_resource("api", api)
