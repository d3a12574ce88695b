# -*- test-case-name: tests.test_metrics -*-
"""
The C{/metrics} resource: prometheus_client's exposition of a registry,
content negotiated (OpenMetrics text when the scraper's C{Accept} asks for
C{application/openmetrics-text}, else the Prometheus text format 0.0.4),
behind an optional bearer token compared in constant time.

It is served either on a listener of its own (L{metrics_site}: loopback by
default) or at a path of the HTTP listener; docs/operations.md says why.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Callable

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

log = Logger()


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def bearer_token(request: Any) -> bytes | None:
    """The token of an C{Authorization: Bearer <token>} header (RFC 6750)."""
    header = request.getHeader(b"authorization")
    if header is None:
        return None
    if isinstance(header, str):
        header = header.encode("latin-1")
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


class MetricsResource(Resource):
    """
    GET (and HEAD): the registry's metrics.

    @param refresh: called before each scrape for the values that take a
        query (the offline-storage count); its Deferred is awaited, and a
        failure is logged, never turned into a failed scrape.
    @param token: the bearer token scrapers must present (None: none).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry,
                 refresh: Callable[[], Deferred] | None = None,
                 token: str | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.refresh = refresh
        self._token_digest = _digest(token.encode("utf-8")) if token else None

    def authorized(self, request: Any) -> bool:
        """Whether the request carries the token (compared in constant time)."""
        if self._token_digest is None:
            return True
        given = bearer_token(request)
        # digests of equal length: the comparison time tells nothing,
        # not even the token's length
        return given is not None and hmac.compare_digest(_digest(given), self._token_digest)

    def render_GET(self, request: Any) -> Any:
        if not self.authorized(request):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="metrics"')
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"A bearer token is required.\n"
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = maybeDeferred(self.refresh) if self.refresh is not None else succeed(None)
        d.addErrback(lambda f: log.failure("refreshing the metrics failed", f))
        d.addCallback(lambda _: None if gone else self._write(request))
        d.addErrback(self._failed, request, gone)
        return NOT_DONE_YET

    def _failed(self, failure: Any, request: Any, gone: list[bool]) -> None:
        log.failure("writing the metrics failed", failure)
        if not gone and not request.finished:
            request.setResponseCode(500)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.write(b"The metrics could not be collected.\n")
            request.finish()

    def _write(self, request: Any) -> None:
        accept = request.getHeader(b"accept") or b""
        if isinstance(accept, bytes):
            accept = accept.decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"Not found: the metrics are at their configured path.\n"


class _Root(Resource):
    def __init__(self, segment: bytes, metrics: Resource) -> None:
        super().__init__()
        self.segment = segment
        self.metrics = metrics

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == self.segment and not request.postpath:
            return self.metrics
        return _NotFound()

    def render(self, request: Any) -> bytes:
        return _NotFound().render(request)


class MetricsSite(Site):
    """The metrics listener's site: one resource, no access log."""

    noisy = False

    def log(self, request: Any) -> None:
        pass


def metrics_site(path: str, resource: MetricsResource, reactor: Any = None) -> MetricsSite:
    """A site serving C{resource} at C{path} (e.g. C{/metrics}), 404 elsewhere."""
    root = _Root(path.strip("/").encode("ascii"), resource)
    return MetricsSite(root, timeout=60, reactor=reactor)
