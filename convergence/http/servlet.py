# -*- test-case-name: tests.test_http -*-
"""
The HTTP servlet API: servlets mounted at an application's context path,
requests that carry their response, and HTTP errors.

A handler returns the response body (C{bytes}/C{str} for HTML, a C{dict} or
C{list} for JSON), or C{None} when it wrote the response itself, or a
Deferred or coroutine of one of those.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import parse_qsl, quote, unquote

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import RESPONSES
from twisted.web.iweb import IRequest
from zope.interface import implementer

from convergence.container.interfaces import IServlet
from convergence.container.session import ApplicationSession

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from convergence.http.session import HttpSession, HttpSessionStore

#: Methods a servlet may handle, in the order C{Allow} lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

#: Statuses whose responses carry no body (RFC 9110 6.4.1).
NO_BODY = (204, 304)

HTML = "text/html; charset=utf-8"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class HttpError(Exception):
    """Raised by a handler: answer with C{status} and a short text body."""

    def __init__(self, status: int, message: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def reason_phrase(status: int) -> str:
    """The standard reason phrase of C{status} (C{"Unknown"} if none)."""
    return RESPONSES.get(status, b"Unknown").decode("ascii")


class Headers:
    """A read-only, case-insensitive view of the request headers."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header C{name}, or C{default}."""
        values = self._raw.getRawHeaders(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of header C{name}, in order."""
        return list(self._raw.getRawHeaders(name) or ())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._raw.hasHeader(name)

    def __iter__(self) -> Iterator[str]:
        for name, _ in self._raw.getAllRawHeaders():
            yield name.decode("latin-1").lower()


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class HttpRequest:
    """
    One HTTP request to an application, wrapping the twisted.web request
    (L{raw}); the response is set through it (L{set_status},
    L{set_header}, L{redirect}, or L{write} and L{finish}).
    """

    log = Logger()

    def __init__(self, raw: IRequest, application: Any, context_path: str,
                 sessions: "HttpSessionStore | None" = None) -> None:
        self.raw = raw
        self.application = application
        #: Where the application is mounted (C{/selfhelp}).
        self.context_path = context_path
        #: Whether the client went away before the response was finished.
        self.disconnected = False
        self._sessions = sessions
        self._session: "HttpSession | None" = None
        self._written = False
        self._finished = False
        self._body: bytes | None = None
        uri = raw.uri or b""
        path, _, query = uri.partition(b"?")
        self.method: str = raw.method.decode("ascii", "replace")
        #: The full path, percent-decoded (C{/selfhelp/api/sessions}).
        self.path: str = unquote(_decode(path))
        postpath = getattr(raw, "postpath", None) or []
        #: The path after the context path, always starting with C{/}.
        self.path_info: str = "/" + "/".join(_decode(p) for p in postpath)
        pairs = parse_qsl(_decode(query), keep_blank_values=True)
        #: Query parameters, every value of each.
        self.args_all: dict[str, list[str]] = {}
        for name, value in pairs:
            self.args_all.setdefault(name, []).append(value)
        #: Query parameters, the last value of each.
        self.args: dict[str, str] = {k: v[-1] for k, v in self.args_all.items()}
        self.headers = Headers(raw.requestHeaders)
        raw.notifyFinish().addErrback(self._lost)

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method} {self.path}>"

    # The request
    @property
    def client(self) -> str:
        """The client's IP address."""
        address = self.raw.getClientAddress()
        return str(getattr(address, "host", "") or "")

    @property
    def body(self) -> bytes:
        """The request body (at most the site's C{max_body_size})."""
        if self._body is None:
            content = self.raw.content
            if content is None:
                self._body = b""
            else:
                content.seek(0)
                self._body = content.read()
        return self._body

    def json(self) -> Any:
        """The body parsed as JSON; L{HttpError} C{400} if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "The request body is not valid JSON.") from None

    @property
    def form(self) -> dict[str, str]:
        """An C{application/x-www-form-urlencoded} body (last value wins)."""
        content_type = (self.headers.get("content-type") or "").split(";")[0]
        if content_type.strip().lower() != "application/x-www-form-urlencoded":
            return {}
        return dict(parse_qsl(_decode(self.body), keep_blank_values=True))

    # Sessions
    def get_session(self, create: bool = True) -> "HttpSession | None":
        """
        This client's L{HttpSession}: joined through an C{appsession} URL
        parameter, found by cookie or application key, or (if C{create})
        created with a new ApplicationSession.  A new session sets the
        cookie on this response.
        """
        if self._session is not None and self._session.valid:
            return self._session
        if self._sessions is None:
            raise RuntimeError("this request has no session store")
        self._session = self._sessions.resolve(self.application, self, create)
        return self._session

    @property
    def session(self) -> "HttpSession":
        """This client's L{HttpSession}, created if needed."""
        session = self.get_session(True)
        assert session is not None
        return session

    @property
    def application_session(self) -> ApplicationSession:
        """The ApplicationSession of this client's L{HttpSession}."""
        return self.session.application_session

    # The response
    @property
    def status(self) -> int:
        """The response status set so far (C{200} by default)."""
        return int(self.raw.code)

    def set_status(self, status: int, reason: str | None = None) -> None:
        """Set the response status (before anything is written)."""
        self.raw.setResponseCode(status, reason.encode("latin-1") if reason else None)

    def set_header(self, name: str, value: str) -> None:
        """Set a response header, replacing earlier values."""
        if name.lower() == "set-cookie":
            self.raw.cookies[:] = [value.encode("latin-1")]
        else:
            self.raw.setHeader(name, value)

    def add_header(self, name: str, value: str) -> None:
        """Add a value to a response header (e.g. another C{Set-Cookie})."""
        if name.lower() == "set-cookie":
            # twisted.web writes its cookie list over Set-Cookie headers
            self.raw.cookies.append(value.encode("latin-1"))
        else:
            self.raw.responseHeaders.addRawHeader(name, value)

    def redirect(self, url: str, status: int = 302) -> None:
        """Answer with a redirect to C{url}; return C{None} from the handler."""
        self.set_status(status)
        self.set_header("Location", quote(url, safe=":/?#[]@!$&'()*+,;=%~"))

    @property
    def started(self) -> bool:
        """Whether the response head was sent (status and headers are final)."""
        return self._written or self._finished

    def write(self, data: bytes | str) -> None:
        """Write part of the response body (the handler then returns C{None})."""
        if self._finished:
            raise RuntimeError("write after finish")
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._written = True
        if not self.disconnected:
            self.raw.write(data)

    def finish(self) -> None:
        """End the response; later calls and a gone client are harmless."""
        if self._finished:
            return
        self._finished = True
        if not self.disconnected:
            self.raw.finish()

    def notify_finish(self) -> "Deferred[None]":
        """A Deferred fired when the response is done, failed if the client left."""
        return self.raw.notifyFinish()

    # Used by the container
    def _lost(self, reason: Failure) -> None:
        self.disconnected = True

    def _send(self, body: bytes, content_type: str) -> None:
        """Send a whole response body with its length."""
        if self.raw.responseHeaders.getRawHeaders("content-type") is None:
            self.raw.setHeader("Content-Type", content_type)
        self.raw.setHeader("X-Content-Type-Options", "nosniff")
        if self.status not in NO_BODY:
            self.raw.setHeader("Content-Length", str(len(body)))
            self.write(body)
        self.finish()

    def _respond(self, result: Any) -> None:
        """Turn a handler's result into the response."""
        if self.disconnected:
            self.finish()
            return
        if result is None:
            if not self.started and self.status not in NO_BODY:
                self.raw.setHeader("Content-Length", "0")
            self.finish()
            return
        if self._finished:
            self.log.warn("{request!r}: handler returned a value after finishing;"
                          " ignored", request=self)
            return
        if isinstance(result, str):
            body, content_type = result.encode("utf-8"), HTML
        elif isinstance(result, bytes):
            body, content_type = result, HTML
        elif isinstance(result, (dict, list)):
            body = json.dumps(result, ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
            content_type = JSON
        else:
            raise TypeError(f"handler returned {type(result).__name__};"
                            " expected bytes, str, dict, list or None")
        if self._written:
            self.write(body)
            self.finish()
        else:
            self._send(body, content_type)

    def _fail(self, failure: Failure) -> None:
        """Answer a failed handler: its HttpError, or 500 (logged)."""
        error = failure.value
        if isinstance(error, HttpError):
            self._error(error.status, error.message, error.headers)
            return
        self.log.failure("HTTP {method} {path} failed in application {app}",
                         failure, method=self.method, path=self.path,
                         app=getattr(self.application, "name", "?"))
        self._error(500)

    def _error(self, status: int, message: str | None = None,
               headers: Mapping[str, str] | None = None) -> None:
        if self.disconnected or self._finished:
            self.finish()
            return
        if self._written:
            # The head is gone: cut the response short rather than end it.
            self._finished = True
            self.raw.loseConnection()
            return
        self.set_status(status)
        self.raw.responseHeaders.removeHeader("content-type")
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        text = (message or reason_phrase(status)) + "\n"
        self._send(text.encode("utf-8"), TEXT)


@implementer(IServlet)
class HttpServlet:
    """
    The main HTTP servlet of an application, mounted at its context path.

    L{service} dispatches to C{do_get}, C{do_post}, C{do_put},
    C{do_delete}, C{do_patch}, C{do_head} and C{do_options}; a method the
    servlet does not override is answered C{405} with an C{Allow} header,
    an unknown method C{501}.  Handlers may return a value or a Deferred,
    or be C{async def}; raising L{HttpError} answers with its status, any
    other exception with C{500} (logged, never shown to the client).
    """

    context: Any = None

    def init(self, context: Any) -> None:
        """Called once at deployment with the application's context."""
        self.context = context

    def destroy(self) -> None:
        """Called once at undeployment."""

    def allowed_methods(self) -> list[str]:
        """Methods this servlet handles (for C{Allow} headers)."""
        allowed = {m for m in METHODS if self._overrides(f"do_{m.lower()}")}
        if "GET" in allowed:
            allowed.add("HEAD")
        allowed.add("OPTIONS")
        return [m for m in METHODS if m in allowed]

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name, None) is not getattr(HttpServlet, name)

    def service(self, request: HttpRequest, response: None = None) -> Any:
        """
        Dispatch C{request} by method.  HTTP has no separate response
        object: the request carries it (C{response} is always C{None}).
        """
        if request.method not in METHODS:
            raise HttpError(501, headers={"Allow": ", ".join(self.allowed_methods())})
        return getattr(self, f"do_{request.method.lower()}")(request)

    def do_request(self, request: HttpRequest) -> Any:
        """A method without a handler: C{405 Method Not Allowed} with C{Allow}."""
        raise HttpError(405, headers={"Allow": ", ".join(self.allowed_methods())})

    def do_get(self, request: HttpRequest) -> Any:
        return self.do_request(request)

    def do_head(self, request: HttpRequest) -> Any:
        """By default L{do_get}, whose body is not sent (its length is)."""
        return self.do_get(request)

    def do_post(self, request: HttpRequest) -> Any:
        return self.do_request(request)

    def do_put(self, request: HttpRequest) -> Any:
        return self.do_request(request)

    def do_delete(self, request: HttpRequest) -> Any:
        return self.do_request(request)

    def do_patch(self, request: HttpRequest) -> Any:
        return self.do_request(request)

    def do_options(self, request: HttpRequest) -> Any:
        """C{204} with the C{Allow} header."""
        request.set_status(204)
        request.set_header("Allow", ", ".join(self.allowed_methods()))
