# -*- test-case-name: tests.test_http -*-
"""
The HTTP resource tree and site: each application's servlet under its
context path, everything else 404; the site builds L{HttpChannel}s with the
server's limits and drains them on shutdown.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tempfile
from typing import Any, Mapping

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from convergence.config import HttpConfig
from convergence.container.dispatch import invoke
from convergence.http.channel import HttpChannel
from convergence.http.servlet import TEXT, HttpRequest, reason_phrase
from convergence.http.session import HttpSessionStore

#: Largest request body accepted, in bytes; larger ones get 413.
DEFAULT_MAX_BODY_SIZE = HttpConfig.max_body_size

#: Seconds an idle client connection is kept open.
IDLE_TIMEOUT = HttpConfig.idle_timeout

#: Bodies up to this size stay in memory, larger ones spill to a temp file.
_SPOOL_SIZE = 65536

log = Logger()


class MountConflict(ValueError):
    """Two applications claim the same HTTP context path."""


def context_path_of(app: Any) -> str | None:
    """Where C{app} is mounted: its configured path, else its descriptor's."""
    return getattr(app, "http_path", None) or app.descriptor.http


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """C{http://host:port} (or another scheme), IPv6 addresses in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"{scheme}://{host}:{port}"


class LimitedBody:
    """
    A request body store that keeps at most C{limit} bytes: past it, the
    body is discarded (and the request answered 413) while the rest of it
    is read off the connection.
    """

    def __init__(self, length: int | None, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.too_large = length is not None and length > limit
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_SIZE)

    def write(self, data: bytes) -> None:
        if self.too_large:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.too_large = True
            self._file.close()
            self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_SIZE)
            return
        self._file.write(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class ErrorPage(Resource):
    """A short text answer with an error status, whatever the method."""

    isLeaf = True

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__()
        self.status = status
        self.message = message

    def render(self, request: Any) -> bytes:
        request.setResponseCode(self.status)
        request.setHeader("Content-Type", TEXT)
        request.setHeader("X-Content-Type-Options", "nosniff")
        if self.status == 413:
            request.setHeader("Connection", "close")
            request.channel.persistent = False
        return ((self.message or reason_phrase(self.status)) + "\n").encode("utf-8")


class SlashRedirect(Resource):
    """C{/app} to C{/app/}, keeping the query (an C{appsession} above all)."""

    isLeaf = True

    def render(self, request: Any) -> bytes:
        path, sep, query = request.uri.partition(b"?")
        request.setResponseCode(301 if request.method in (b"GET", b"HEAD") else 308)
        request.setHeader(b"Location", path + b"/" + sep + query)
        request.setHeader("Content-Type", TEXT)
        return b"Moved to the application's root.\n"


class ApplicationResource(Resource):
    """An application's servlet: every path under its context path."""

    isLeaf = True

    def __init__(self, app: Any, context_path: str, sessions: HttpSessionStore) -> None:
        super().__init__()
        self.app = app
        self.context_path = context_path
        self.sessions = sessions

    def render(self, request: Any) -> Any:
        http_request = HttpRequest(request, self.app, self.context_path, self.sessions)
        self.sessions.touch(self.app, http_request)
        d = invoke(self.app.servlet("http").service, http_request)
        d.addCallback(http_request._respond)
        d.addErrback(http_request._fail)
        d.addErrback(self._broken, http_request)
        return NOT_DONE_YET

    def _broken(self, failure: Any, request: HttpRequest) -> None:
        log.failure("answering {request!r} failed", failure, request=request)
        if not request.disconnected:
            request.raw.loseConnection()


class HttpRoot(Resource):
    """Maps a path to the application mounted at its longest matching prefix."""

    def __init__(self, container: Any, sessions: HttpSessionStore | None = None) -> None:
        super().__init__()
        self.container = container
        self.sessions = sessions or HttpSessionStore(container.sessions)
        self.mounts: dict[tuple[str, ...], Any] = {}
        #: the server's own resources by first path segment (HTTP upload)
        self.resources: dict[str, Resource] = {}
        for app in container.applications.values():
            self.mount(app)

    def mount_resource(self, segment: str, resource: Resource) -> None:
        """
        Serve the server's own C{resource} at C{/segment/}.

        @raise MountConflict: an application or another resource is there.
        """
        taken = segment in self.resources or any(m[0] == segment for m in self.mounts)
        if taken:
            raise MountConflict(f"/{segment} is already served")
        self.resources[segment] = resource

    def mount(self, app: Any) -> None:
        """Serve C{app}'s HTTP servlet at its context path (if it has both)."""
        path = context_path_of(app)
        servlet = app.servlet("http")
        if path is None or servlet is None:
            if (path is None) != (servlet is None):
                log.warn("application {app} has {what} but no {missing}: not served"
                         " over HTTP", app=app.name,
                         what="an HTTP servlet" if servlet else f"HTTP path {path}",
                         missing="HTTP path" if servlet else "HTTP servlet")
            return
        segments = tuple(path.strip("/").split("/"))
        if segments[0] in self.resources:
            raise MountConflict(f"apps.{app.name}.http: /{segments[0]} is served by"
                                " the server itself")
        other = self.mounts.get(segments)
        if other is not None and other is not app:
            raise MountConflict(
                f"apps.{app.name}.http: {path} is already served by {other.name}")
        self.mounts[segments] = app
        log.info("application {app} serves HTTP at {path}/", app=app.name, path=path)

    def path_of(self, app: Any) -> str | None:
        """The context path C{app} is mounted at, if any."""
        for segments, mounted in self.mounts.items():
            if mounted is app:
                return "/" + "/".join(segments)
        return None

    def getChild(self, path: bytes, request: Any) -> Resource:
        content = getattr(request, "content", None)
        if getattr(content, "too_large", False):
            return ErrorPage(413, f"The request body exceeds {content.limit} bytes.")
        segments = [s.decode("utf-8", "replace") for s in [path, *request.postpath]]
        own = self.resources.get(segments[0])
        if own is not None:
            return own
        for n in range(len(segments), 0, -1):
            app = self.mounts.get(tuple(segments[:n]))
            if app is None:
                continue
            request.prepath.extend(request.postpath[:n - 1])
            del request.postpath[:n - 1]
            if not request.postpath:
                return SlashRedirect()
            return ApplicationResource(app, "/" + "/".join(segments[:n]), self.sessions)
        return ErrorPage(404)

    def render(self, request: Any) -> bytes:
        return ErrorPage(404).render(request)


class HttpFactory:
    """
    Absolute URLs of applications, for links sent over XMPP or SIP
    (registered as the container's C{factories["http"]}).
    """

    def __init__(self, root: HttpRoot, base_url: str) -> None:
        self.root = root
        #: C{http://host:port} of the listener; set it if that is not known
        #: at build time (port 0) or the server is reached through a proxy.
        self.base_url = base_url

    def url(self, application: Any, path: str = "/",
            application_session: Any = None) -> str:
        """
        The URL of C{path} (relative to the context path) in C{application}
        (an Application or its name); with C{application_session}, the URL
        joins whoever opens it to that session.
        """
        if isinstance(application, str):
            application = self.root.container.applications[application]
        context = self.root.path_of(application)
        if context is None:
            raise ValueError(f"application {application.name} is not served over HTTP")
        url = self.base_url.rstrip("/") + context + "/" + path.lstrip("/")
        if application_session is not None:
            url = application_session.encode_url(url)
        return url


class HttpSite(Site):
    """
    A twisted.web site whose connections are L{HttpChannel}s with the limits
    of C{limits}, with a cap on stored request bodies, a quiet access log
    and a graceful L{drain}.
    """

    noisy = False
    protocol = HttpChannel  # type: ignore[assignment]

    def __init__(self, root: HttpRoot, limits: HttpConfig | None = None,
                 reactor: Any = None, tls_context: Any = None, **kwargs: Any) -> None:
        """
        @param tls_context: an C{ssl.SSLContext}: serve HTTPS (TLS from
            the first byte) instead of HTTP.
        """
        limits = limits or HttpConfig()
        self.tls_context = tls_context
        self._reactor = reactor
        super().__init__(root, logPath=None, timeout=limits.idle_timeout,
                         reactor=reactor, parsePOSTFormSubmission=False, **kwargs)
        self.root = root
        self.limits = limits
        #: The open connections.
        self.channels: set[HttpChannel] = set()
        #: Body routes by first path segment (L{put_body_route}).
        self.body_routes: dict[bytes, Any] = {}
        #: Set by L{drain}: no new connections, none kept alive.
        self.draining = False
        self._drained: list[Deferred] = []
        self._grace_call: Any = None
        #: counters for the metrics endpoint: connections accepted,
        #: responses by status (requests answered, and those the channel
        #: refused itself)
        self.accepted = 0
        self.responses: dict[int, int] = {}

    @property
    def max_body_size(self) -> int:
        """Largest request body, in bytes (C{http.max_body_size})."""
        return self.limits.max_body_size

    def buildProtocol(self, addr: Any) -> HttpChannel | None:
        if self.draining:
            return None
        channel = super().buildProtocol(addr)
        channel.max_body_size = self.limits.max_body_size
        channel.header_timeout = self.limits.header_timeout
        channel.maxHeaders = self.limits.max_headers
        channel.totalHeadersSize = self.limits.max_header_size
        channel.MAX_LENGTH = self.limits.max_header_size
        channel.tls_context = self.tls_context
        return channel

    def secure(self, tls_context: Any) -> "HttpSite":
        """The same resources and limits served over HTTPS: a second site
        (with its own connections and drain) on this site's root and body
        routes."""
        twin = HttpSite(self.root, self.limits, reactor=self._reactor,
                        tls_context=tls_context)
        twin.body_routes = self.body_routes
        return twin

    def channel_opened(self, channel: HttpChannel) -> None:
        """Called by a channel when its connection is made."""
        self.channels.add(channel)
        self.accepted += 1
        if self.draining:
            channel.drain()

    def channel_closed(self, channel: HttpChannel) -> None:
        """Called by a channel when its connection is lost."""
        self.channels.discard(channel)
        if self.draining and not self.channels:
            self._finish_drain()

    def drain(self, grace: float | None = None) -> Deferred:
        """
        Graceful shutdown: close idle connections now, let those with a
        request in progress finish it (then close), and cut whatever is
        still open after C{grace} seconds (C{http.shutdown_grace}).  The
        Deferred fires when no connection is left.
        """
        if grace is None:
            grace = self.limits.shutdown_grace
        self.draining = True
        d: Deferred = Deferred()
        self._drained.append(d)
        busy = [c for c in self.channels if c.requests]
        log.info("HTTP shutting down: {busy} requests in progress, {idle} idle"
                 " connections closed", busy=len(busy),
                 idle=len(self.channels) - len(busy))
        for channel in list(self.channels):
            channel.drain()
        if not self.channels:
            self._finish_drain()
        elif self._grace_call is None:
            self._grace_call = self.reactor.callLater(grace, self._grace_over, grace)
        return d

    def _grace_over(self, grace: float) -> None:
        self._grace_call = None
        log.warn("HTTP shutdown: {count} connections still busy after {grace} s,"
                 " cut", count=len(self.channels), grace=grace)
        for channel in list(self.channels):
            if channel.transport is not None:
                channel.transport.abortConnection()
        self._finish_drain()

    def _finish_drain(self) -> None:
        if self._grace_call is not None and self._grace_call.active():
            self._grace_call.cancel()
        self._grace_call = None
        drained, self._drained = self._drained, []
        for d in drained:
            d.callback(None)

    def put_body_route(self, segment: str, route: Any) -> None:
        """
        Let C{route} take the bodies of requests under C{/segment/}: the
        channel calls C{route.open_body(method, path, headers, length)}
        once a request's head is in; it returns C{None} (the site's body,
        C{max_body_size}), a file-like sink with a C{limit} in bytes, or
        raises L{BodyRefused}.
        """
        self.body_routes[segment.encode("utf-8")] = route

    def body_route(self, path: bytes) -> Any:
        """The body route of a request path (with its query), if any."""
        if not self.body_routes or not path.startswith(b"/"):
            return None
        first = path.split(b"?", 1)[0].split(b"/", 2)[1]
        return self.body_routes.get(first)

    def getContentFile(self, length: int | None) -> LimitedBody:
        """Where twisted.web stores a request body: capped at L{max_body_size}."""
        return LimitedBody(length, self.max_body_size)

    def count_response(self, status: int) -> None:
        """One response with C{status} went out (the metrics)."""
        self.responses[status] = self.responses.get(status, 0) + 1

    def log(self, request: Any) -> None:
        """One debug event per request instead of a combined-log line,
        and the response counted by status."""
        self.count_response(request.code)
        log.debug("{client} {method} {uri} {code}",
                  client=getattr(request.getClientAddress(), "host", "-"),
                  method=request.method.decode("ascii", "replace"),
                  uri=request.uri.decode("ascii", "replace"), code=request.code)


def make_site(container: Any, max_body_size: int | None = None,
              base: str = "http://127.0.0.1:8080",
              site_options: Mapping[str, Any] | None = None,
              limits: HttpConfig | None = None, reactor: Any = None) -> HttpSite:
    """
    The HTTP site of C{container}: its applications' servlets under their
    context paths, with the connection limits of C{limits} (C{max_body_size}
    overrides its body limit).  Registers an L{HttpFactory} as
    C{factories["http"]}.

    @param reactor: the clock of connection timeouts (the global reactor
        by default; a L{task.Clock} in tests).
    @raise MountConflict: two applications claim one context path.
    """
    limits = limits or HttpConfig()
    if max_body_size is not None:
        limits = dataclasses.replace(limits, max_body_size=max_body_size)
    root = HttpRoot(container)
    container.factories["http"] = HttpFactory(root, base)
    return HttpSite(root, limits, reactor=reactor, **dict(site_options or {}))
