"""
The HTTP side of the container over real loopback sockets: mounting and
routing, the servlet API (results, errors, methods, limits), HTTP sessions
by cookie and by encoded URL, and the wiring into the whole server.
"""

from __future__ import annotations

import json
import sys
import types
from io import BytesIO
from pathlib import Path
from typing import Any

from twisted.application import internet
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock, deferLater
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer
from zope.interface.verify import verifyObject

from convergence.config import ConfigError, load_config
from convergence.container.application import Application
from convergence.container.container import Container
from convergence.container.descriptor import DeploymentDescriptor
from convergence.container.interfaces import IProtocolSession, IServlet
from convergence.container.session import SESSION_PARAM
from convergence.http.resource import MountConflict, make_site
from convergence.http.servlet import HttpError, HttpRequest, HttpServlet
from convergence.http.session import COOKIE_NAME, HttpSession
from convergence.service import make_service


def sleep(seconds: float) -> Deferred:
    return deferLater(reactor, seconds, lambda: None)


class WebServlet(HttpServlet):
    """Every kind of handler result, chosen by path."""

    def init(self, context: Any) -> None:
        super().init(context)
        self.seen: Deferred = Deferred()
        self.lost: Deferred = Deferred()
        self.slow: Deferred = Deferred()
        self.requests: list[HttpRequest] = []

    def do_get(self, request: HttpRequest) -> Any:
        self.requests.append(request)
        path = request.path_info
        if path == "/":
            return "<p>héllo</p>"
        if path == "/info":
            return {"path": request.path, "path_info": request.path_info,
                    "args": request.args, "args_all": request.args_all,
                    "method": request.method, "client": request.client,
                    "context_path": request.context_path}
        if path == "/count":
            app_session = request.application_session
            app_session["count"] = app_session.get("count", 0) + 1
            return {"count": app_session["count"], "session": app_session.id,
                    "http": request.session.id}
        if path == "/async":
            return self.later()
        if path == "/deferred":
            return deferLater(reactor, 0.01, lambda: b"<p>later</p>")
        if path == "/teapot":
            raise HttpError(418, "no coffee here")
        if path == "/crash":
            raise RuntimeError("secret detail")
        if path == "/wrong-type":
            return 42
        if path == "/self":
            request.set_status(201)
            request.set_header("Content-Type", "text/plain")
            request.write("one ")
            request.write(b"two")
            return None
        if path == "/custom-type":
            request.set_header("Content-Type", "text/plain; charset=utf-8")
            return "plain"
        if path == "/go":
            request.redirect("/web/info")
            return None
        if path == "/slow":
            request.notify_finish().addErrback(lambda _: self.lost.callback(None))
            self.seen.callback(None)
            return self.slow
        raise HttpError(404)

    async def later(self) -> dict:
        await sleep(0.01)
        return {"async": True}

    def do_post(self, request: HttpRequest) -> Any:
        if request.path_info == "/json":
            return {"got": request.json()}
        if request.path_info == "/form":
            return request.form
        return {"size": len(request.body)}


class KeyedServlet(HttpServlet):
    """Reports its application session; requests join by their ?room=."""

    def do_get(self, request: HttpRequest) -> Any:
        return {"session": request.application_session.id}


class PostOnly(HttpServlet):
    def do_post(self, request: HttpRequest) -> Any:
        return {"ok": True}


WEB = DeploymentDescriptor(name="web", http="/web", servlets={"http": WebServlet},
                           session_timeout=60)
KEYED = DeploymentDescriptor(
    name="keyed", http="/keyed", servlets={"http": KeyedServlet},
    application_keys={"http": lambda request: request.args.get("room")})
INNER = DeploymentDescriptor(name="inner", http="/web/inner", servlets={"http": KeyedServlet})
POSTONLY = DeploymentDescriptor(name="postonly", http="/post", servlets={"http": PostOnly})


def app(descriptor: DeploymentDescriptor, path: str | None = None) -> Application:
    servlets = {p: cls() for p, cls in descriptor.servlets.items()}
    return Application(descriptor.name, descriptor, servlets,
                       http_path=path or descriptor.http)


@implementer(IBodyProducer)
class BytesProducer:
    """A request body of unknown length (sent chunked)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = UNKNOWN_LENGTH

    def startProducing(self, consumer: Any) -> Deferred:
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class RawClient(Protocol):
    """Sends bytes, collects the answer until the server closes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.received = b""
        self.done: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.data)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any) -> None:
        self.done.callback(self.received)


class BodyCollector(Protocol):
    """Collects a response body (readBody without its transport warning)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.chunks.append(data)

    def connectionLost(self, reason: Any) -> None:
        if reason.check(ResponseDone):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)


def read_body(response: Any) -> Deferred:
    collector = BodyCollector()
    response.deliverBody(collector)
    return collector.done


class Response:
    def __init__(self, response: Any, body: bytes) -> None:
        self.code = response.code
        self.headers = response.headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def cookie(self) -> str | None:
        """The session cookie's value set by this response, if any."""
        for value in self.headers.getRawHeaders("set-cookie") or ():
            name, _, rest = value.partition("=")
            if name == COOKIE_NAME:
                return rest.split(";")[0]
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class HttpFixture(TestCase):
    timeout = 30
    max_body_size = 1024

    def setUp(self) -> None:
        self.clock = Clock()
        self.web = app(WEB)
        self.keyed = app(KEYED)
        self.inner = app(INNER)
        self.postonly = app(POSTONLY)
        self.container = Container(self.clock, [self.web, self.keyed, self.inner,
                                                self.postonly])
        self.addCleanup(self.container.undeploy_all)
        self.servlet: WebServlet = self.web.servlet("http")
        self.site = make_site(self.container, self.max_body_size)
        self.listen(self.site)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)
        self.container.factories["http"].base_url = self.base

    def listen(self, site: Any) -> None:
        self.wrapper = WrappingFactory(site)
        self.port = reactor.listenTCP(0, self.wrapper, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.addCleanup(self.stop_listening)

    async def stop_listening(self) -> None:
        await self.port.stopListening()
        for protocol in list(self.wrapper.protocols):
            protocol.transport.loseConnection()
        while self.wrapper.protocols:
            await sleep(0.01)
        await sleep(0)

    async def fetch(self, path: str, method: str = "GET", cookie: str | None = None,
                    body: bytes | None = None, headers: dict[str, str] | None = None,
                    producer: Any = None) -> Response:
        h = Headers({k: [v] for k, v in (headers or {}).items()})
        if cookie is not None:
            h.addRawHeader("Cookie", f"{COOKIE_NAME}={cookie}")
        if body is not None:
            producer = FileBodyProducer(BytesIO(body))
        url = path if path.startswith("http") else self.base + path
        response = await self.agent.request(method.encode(), url.encode(), h, producer)
        return Response(response, await read_body(response))

    async def raw(self, data: bytes) -> bytes:
        client = RawClient(data)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        await connectProtocol(endpoint, client)
        return await client.done


class RoutingTests(HttpFixture):
    async def test_unknown_paths_are_404(self) -> None:
        """The root, unknown apps and mere prefixes of a context path are 404."""
        for path in ("/", "/nothing", "/nothing/deeper", "/webx/", "/we"):
            response = await self.fetch(path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(response.body, b"Not Found\n")

    async def test_context_path_without_slash_redirects(self) -> None:
        """/web redirects to /web/, keeping the query; POST gets a 308."""
        response = await self.fetch("/web")
        self.assertEqual(response.code, 301)
        self.assertEqual(response.header("location"), "/web/")
        response = await self.fetch(f"/web?{SESSION_PARAM}=abc")
        self.assertEqual(response.header("location"), f"/web/?{SESSION_PARAM}=abc")
        response = await self.fetch("/web", "POST", body=b"x")
        self.assertEqual(response.code, 308)

    async def test_request_paths_and_arguments(self) -> None:
        """path, path_info, args (last wins), args_all and client, decoded."""
        response = await self.fetch("/web/info?a=1&a=2&b=%C3%A9&empty=")
        self.assertEqual(response.code, 200)
        info = response.json()
        self.assertEqual(info["path"], "/web/info")
        self.assertEqual(info["path_info"], "/info")
        self.assertEqual(info["context_path"], "/web")
        self.assertEqual(info["args"], {"a": "2", "b": "é", "empty": ""})
        self.assertEqual(info["args_all"], {"a": ["1", "2"], "b": ["é"], "empty": [""]})
        self.assertEqual(info["client"], "127.0.0.1")

    async def test_longest_context_path_wins(self) -> None:
        """An app mounted at /web/inner gets its paths; /web keeps the rest."""
        response = await self.fetch("/web/inner/")
        self.assertEqual(response.code, 200)
        self.assertIn("session", response.json())
        response = await self.fetch("/web/info")
        self.assertEqual(response.json()["path_info"], "/info")
        response = await self.fetch("/web/inner")
        self.assertEqual(response.header("location"), "/web/inner/")

    def test_two_apps_on_one_path_conflict(self) -> None:
        """Two applications claiming one context path cannot be mounted."""
        other = DeploymentDescriptor(name="other", http="/web",
                                     servlets={"http": KeyedServlet})
        container = Container(Clock(), [app(WEB), app(other)])
        with self.assertRaises(MountConflict) as cm:
            make_site(container)
        self.assertIn("/web", str(cm.exception))


class ServletTests(HttpFixture):
    def test_servlet_interface(self) -> None:
        """HttpServlet provides the container's IServlet; Allow follows overrides."""
        self.assertTrue(verifyObject(IServlet, HttpServlet()))
        self.assertEqual(HttpServlet().allowed_methods(), ["OPTIONS"])
        self.assertEqual(self.servlet.allowed_methods(), ["GET", "HEAD", "POST", "OPTIONS"])

    async def test_html_result(self) -> None:
        """A str result is UTF-8 HTML with its length."""
        response = await self.fetch("/web/")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header("content-type"), "text/html; charset=utf-8")
        self.assertEqual(response.body, "<p>héllo</p>".encode())

    async def test_json_result(self) -> None:
        """A dict result is JSON."""
        response = await self.fetch("/web/info")
        self.assertEqual(response.header("content-type"), "application/json")
        self.assertEqual(response.json()["method"], "GET")

    async def test_handler_content_type_is_kept(self) -> None:
        """A Content-Type the handler set wins over the default."""
        response = await self.fetch("/web/custom-type")
        self.assertEqual(response.header("content-type"), "text/plain; charset=utf-8")
        self.assertEqual(response.body, b"plain")

    async def test_async_and_deferred_handlers(self) -> None:
        """Coroutines and Deferreds are awaited for their result."""
        response = await self.fetch("/web/async")
        self.assertEqual(response.json(), {"async": True})
        response = await self.fetch("/web/deferred")
        self.assertEqual(response.body, b"<p>later</p>")

    async def test_handler_writes_itself(self) -> None:
        """Returning None after write(): the container finishes the response."""
        response = await self.fetch("/web/self")
        self.assertEqual(response.code, 201)
        self.assertEqual(response.header("content-type"), "text/plain")
        self.assertEqual(response.body, b"one two")

    async def test_redirect(self) -> None:
        """request.redirect answers 302 with Location and an empty body."""
        response = await self.fetch("/web/go")
        self.assertEqual(response.code, 302)
        self.assertEqual(response.header("location"), "/web/info")
        self.assertEqual(response.body, b"")

    async def test_http_error(self) -> None:
        """HttpError answers its status with its message as text."""
        response = await self.fetch("/web/teapot")
        self.assertEqual(response.code, 418)
        self.assertEqual(response.header("content-type"), "text/plain; charset=utf-8")
        self.assertEqual(response.body, b"no coffee here\n")
        response = await self.fetch("/web/no-such-page")
        self.assertEqual((response.code, response.body), (404, b"Not Found\n"))

    async def test_exception_is_500_without_traceback(self) -> None:
        """Any other exception: 500, logged with its traceback, never shown."""
        response = await self.fetch("/web/crash")
        self.assertEqual(response.code, 500)
        self.assertEqual(response.body, b"Internal Server Error\n")
        self.assertNotIn(b"secret", response.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        response = await self.fetch("/web/wrong-type")
        self.assertEqual(response.code, 500)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    async def test_method_not_handled_is_405_with_allow(self) -> None:
        """PUT to a servlet without do_put: 405 listing what it handles."""
        response = await self.fetch("/web/", "PUT", body=b"x")
        self.assertEqual(response.code, 405)
        self.assertEqual(response.header("allow"), "GET, HEAD, POST, OPTIONS")
        response = await self.fetch("/post/", "GET")
        self.assertEqual(response.code, 405)
        self.assertEqual(response.header("allow"), "POST, OPTIONS")
        response = await self.fetch("/post/", "HEAD")
        self.assertEqual(response.code, 405)

    async def test_unknown_method_is_501(self) -> None:
        """A method HTTP servlets do not know: 501 with Allow."""
        response = await self.fetch("/web/", "BREW")
        self.assertEqual(response.code, 501)
        self.assertEqual(response.header("allow"), "GET, HEAD, POST, OPTIONS")

    async def test_options(self) -> None:
        """OPTIONS: 204 with Allow."""
        response = await self.fetch("/post/", "OPTIONS")
        self.assertEqual(response.code, 204)
        self.assertEqual(response.header("allow"), "POST, OPTIONS")
        self.assertEqual(response.body, b"")

    async def test_head(self) -> None:
        """HEAD runs do_get and sends its headers and length, not its body."""
        answer = await self.raw(b"HEAD /web/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertIn(b"Content-Length: %d" % len("<p>héllo</p>".encode()), head)
        self.assertIn(b"Content-Type: text/html; charset=utf-8", head)
        self.assertEqual(body, b"")

    async def test_json_body(self) -> None:
        """request.json() parses the body; bad JSON is 400."""
        response = await self.fetch("/web/json", "POST", body=b'{"a": [1, 2]}')
        self.assertEqual(response.json(), {"got": {"a": [1, 2]}})
        response = await self.fetch("/web/json", "POST", body=b"{nope")
        self.assertEqual(response.code, 400)
        self.assertIn(b"JSON", response.body)

    async def test_form_body(self) -> None:
        """An urlencoded body is available as request.form."""
        response = await self.fetch(
            "/web/form", "POST", body=b"name=Ann+B&x=%C3%A9",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(response.json(), {"name": "Ann B", "x": "é"})

    async def test_body_size_limit(self) -> None:
        """A body at the limit is read; one byte more is 413, chunked too."""
        response = await self.fetch("/web/size", "POST", body=b"x" * self.max_body_size)
        self.assertEqual(response.json(), {"size": self.max_body_size})
        response = await self.fetch("/web/size", "POST", body=b"x" * (self.max_body_size + 1))
        self.assertEqual(response.code, 413)
        response = await self.fetch("/web/size", "POST",
                                    producer=BytesProducer(b"y" * 5000))
        self.assertEqual(response.code, 413)
        response = await self.fetch("/nothing", "POST", body=b"z" * 5000)
        self.assertEqual(response.code, 413)

    async def test_client_gone_before_result(self) -> None:
        """A client that disconnects before the result is ready: no error."""
        client = RawClient(b"GET /web/slow HTTP/1.1\r\nHost: x\r\n\r\n")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        await connectProtocol(endpoint, client)
        await self.servlet.seen
        client.transport.loseConnection()
        await self.servlet.lost
        self.servlet.slow.callback({"too": "late"})
        await sleep(0.01)
        self.assertTrue(self.servlet.requests[-1].disconnected)
        self.assertEqual(await client.done, b"")


class SessionTests(HttpFixture):
    async def test_cookie_attributes(self) -> None:
        """The session cookie is HttpOnly, SameSite=Lax, scoped to the context path."""
        response = await self.fetch("/web/count")
        cookies = response.headers.getRawHeaders("set-cookie")
        self.assertEqual(len(cookies), 1)
        name, _, rest = cookies[0].partition("=")
        self.assertEqual(name, COOKIE_NAME)
        attributes = [a.strip() for a in rest.split(";")[1:]]
        self.assertEqual(sorted(attributes), ["HttpOnly", "Path=/web", "SameSite=Lax"])
        self.assertGreaterEqual(len(response.cookie()), 32)

    async def test_no_session_until_used(self) -> None:
        """A handler that never asks for the session creates none."""
        response = await self.fetch("/web/")
        self.assertIsNone(response.headers.getRawHeaders("set-cookie"))
        self.assertEqual(self.container.sessions.sessions("web"), [])

    async def test_cookie_keeps_the_application_session(self) -> None:
        """The same cookie reaches the same ApplicationSession and its data."""
        first = await self.fetch("/web/count")
        cookie = first.cookie()
        second = await self.fetch("/web/count", cookie=cookie)
        self.assertEqual(second.json()["count"], 2)
        self.assertEqual(second.json()["session"], first.json()["session"])
        self.assertEqual(second.json()["http"], first.json()["http"])
        self.assertIsNone(second.cookie())
        app_session = self.container.sessions.get(first.json()["session"])
        self.assertEqual(app_session["count"], 2)
        [http] = app_session.sessions_of("http")
        self.assertIsInstance(http, HttpSession)
        self.assertEqual((http.peer, http.state, http.id), ("127.0.0.1", "active", cookie))
        self.assertEqual(http.kind, "http")
        self.assertTrue(verifyObject(IProtocolSession, http))

    async def test_encoded_url_joins_an_application_session(self) -> None:
        """encode_url of a session made by the container joins a cookie-less client."""
        app_session = self.container.sessions.create(self.web)
        app_session["count"] = 10
        url = app_session.encode_url(self.base + "/web/count")
        self.assertEqual(url, self.container.factories["http"].url(
            self.web, "/count", app_session))
        response = await self.fetch(url)
        self.assertEqual(response.json()["session"], app_session.id)
        self.assertEqual(response.json()["count"], 11)
        cookie = response.cookie()
        self.assertIsNotNone(cookie)
        response = await self.fetch("/web/count", cookie=cookie)
        self.assertEqual(response.json()["session"], app_session.id)
        self.assertEqual(response.json()["count"], 12)
        # The same link again, with the cookie: the same HttpSession.
        response = await self.fetch(url, cookie=cookie)
        self.assertIsNone(response.cookie())
        self.assertEqual(len(app_session.sessions_of("http")), 1)

    async def test_encoded_url_moves_a_client_with_a_cookie(self) -> None:
        """A client in one session following a link to another joins that one."""
        mine = await self.fetch("/web/count")
        old = self.container.sessions.get(mine.json()["session"])
        target = self.container.sessions.create(self.web)
        response = await self.fetch(target.encode_url("/web/count"), cookie=mine.cookie())
        self.assertEqual(response.json()["session"], target.id)
        self.assertNotEqual(response.cookie(), mine.cookie())
        self.assertEqual(old.sessions_of("http"), [])

    async def test_unknown_ids_get_a_fresh_session(self) -> None:
        """An unknown cookie or appsession, or another app's, is a new session."""
        other_app = self.container.sessions.create(self.keyed)
        seen = set()
        for path, cookie in [("/web/count", "no-such-session"),
                             (f"/web/count?{SESSION_PARAM}=no-such-session", None),
                             (f"/web/count?{SESSION_PARAM}={other_app.id}", None),
                             (f"/web/count?{SESSION_PARAM}=", "")]:
            response = await self.fetch(path, cookie=cookie)
            self.assertEqual(response.code, 200, path)
            self.assertEqual(response.json()["count"], 1)
            self.assertIsNotNone(response.cookie())
            seen.add(response.json()["session"])
        self.assertEqual(len(seen), 4)
        self.assertNotIn(other_app.id, seen)

    async def test_expired_session_gets_a_fresh_one(self) -> None:
        """After the ApplicationSession times out its cookie starts a new one."""
        first = await self.fetch("/web/count")
        self.clock.advance(WEB.session_timeout + 1)
        self.assertIsNone(self.container.sessions.get(first.json()["session"]))
        second = await self.fetch("/web/count", cookie=first.cookie())
        self.assertEqual(second.code, 200)
        self.assertEqual(second.json()["count"], 1)
        self.assertNotEqual(second.json()["session"], first.json()["session"])
        self.assertNotEqual(second.cookie(), first.cookie())
        # Expired appsession links too.
        third = await self.fetch(f"/web/count?{SESSION_PARAM}={first.json()['session']}")
        self.assertEqual(third.json()["count"], 1)

    async def test_requests_keep_the_session_alive(self) -> None:
        """Each request with the cookie restarts the expiry timer."""
        first = await self.fetch("/web/")  # no session yet
        first = await self.fetch("/web/count")
        for _ in range(3):
            self.clock.advance(WEB.session_timeout - 1)
            await self.fetch("/web/", cookie=first.cookie())
        response = await self.fetch("/web/count", cookie=first.cookie())
        self.assertEqual(response.json()["session"], first.json()["session"])

    async def test_invalidating_the_application_session_ends_http(self) -> None:
        """Invalidating the ApplicationSession ends its HttpSession and cookie."""
        first = await self.fetch("/web/count")
        app_session = self.container.sessions.get(first.json()["session"])
        [http] = app_session.sessions_of("http")
        store = self.site.root.sessions
        self.assertIs(store.get(first.cookie()), http)
        app_session.invalidate()
        self.assertFalse(http.valid)
        self.assertEqual(http.state, "ended")
        self.assertIsNone(store.get(first.cookie()))
        self.assertEqual(len(store), 0)
        second = await self.fetch("/web/count", cookie=first.cookie())
        self.assertEqual(second.json()["count"], 1)
        self.assertNotEqual(second.json()["session"], app_session.id)

    async def test_application_key_joins_clients(self) -> None:
        """Two cookie-less clients with the same ?room= share one session."""
        a = await self.fetch("/keyed/?room=42")
        b = await self.fetch("/keyed/?room=42")
        c = await self.fetch("/keyed/?room=43")
        d = await self.fetch("/keyed/")
        e = await self.fetch("/keyed/")
        self.assertEqual(a.json(), b.json())
        self.assertNotEqual(a.cookie(), b.cookie())
        self.assertNotEqual(a.json(), c.json())
        self.assertNotEqual(d.json(), e.json())
        app_session = self.container.sessions.by_key("keyed", "42")
        self.assertEqual(app_session.id, a.json()["session"])
        self.assertEqual(len(app_session.sessions_of("http")), 2)


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> Path:
        path = Path(self.mktemp())
        path.write_text(text)
        return path

    def test_http_settings(self) -> None:
        """[http] max_body_size and apps.<name>.http are read and checked."""
        config = load_config(self.write(
            '[http]\nmax_body_size = 4096\n[apps.web]\nmodule = "x"\nhttp = "/a/b"\n'))
        self.assertEqual(config.http.max_body_size, 4096)
        self.assertEqual([a.http for a in config.apps if a.name == "web"], ["/a/b"])
        self.assertEqual(load_config().http.max_body_size, 1048576)
        for text, key in [("[http]\nmax_body_size = 10\n", "http.max_body_size"),
                          ("[http]\nnope = 1\n", "http.nope"),
                          ('[apps.web]\nhttp = "web"\n', "apps.web.http"),
                          ('[apps.web]\nhttp = "/web/"\n', "apps.web.http"),
                          ('[apps.web]\nhttp = "/"\n', "apps.web.http"),
                          ('[apps.web]\nhttp = "/a//b"\n', "apps.web.http"),
                          ("[apps.web]\nhttp = 3\n", "apps.web.http")]:
            with self.assertRaises(ConfigError) as cm:
                load_config(self.write(text))
            self.assertIn(key, str(cm.exception))


class ServiceTests(HttpFixture):
    CONFIG = """
[http]
max_body_size = 2048
[apps.web]
module = "httpapp_for_tests"
http = "/site"
"""

    def setUp(self) -> None:
        module = types.ModuleType("httpapp_for_tests")
        module.descriptor = WEB  # type: ignore[attr-defined]
        sys.modules["httpapp_for_tests"] = module
        self.addCleanup(sys.modules.pop, "httpapp_for_tests")
        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text(self.CONFIG)
        self.config = load_config(root / "c.toml", {
            "data_dir": str(root / "data"), "http_port": 18080})
        self.service = make_service(self.config, reactor)
        self.server = self.service.server
        self.addCleanup(self.server.close)
        self.listen(self.server.http)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)

    def test_make_service_listens_on_http_port(self) -> None:
        """make_service adds a TCP listener for the HTTP site on http_port."""
        servers = [s for s in self.service if isinstance(s, internet.TCPServer)
                   and s.args[1] is self.server.http]
        self.assertEqual(len(servers), 1)
        self.assertEqual(servers[0].args[0], 18080)
        self.assertEqual(servers[0].kwargs["interface"], "127.0.0.1")
        self.assertEqual(self.server.container.factories["http"].url("web", "/x"),
                         "http://127.0.0.1:18080/site/x")

    async def test_built_server_serves_apps(self) -> None:
        """The built server serves the app at its configured path, with its limit."""
        response = await self.fetch("/site/count")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json()["count"], 1)
        self.assertEqual(response.header("set-cookie").split("; ")[1], "Path=/site")
        response = await self.fetch("/web/count")
        self.assertEqual(response.code, 404)
        response = await self.fetch("/site/size", "POST", body=b"x" * 2049)
        self.assertEqual(response.code, 413)
        response = await self.fetch("/site/size", "POST", body=b"x" * 2048)
        self.assertEqual(response.json(), {"size": 2048})

    def test_http_port_zero_disables_the_listener(self) -> None:
        """With http_port 0 there is no HTTP listener."""
        config = load_config(None, {"data_dir": str(self.config.data_dir),
                                    "http_port": 0})
        service = make_service(config, reactor)
        self.addCleanup(service.server.close)
        self.assertFalse([s for s in service if isinstance(s, internet.TCPServer)
                          and s.args[1] is service.server.http])
