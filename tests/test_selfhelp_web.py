"""
The selfhelp page's web side (apps/selfhelp/web.py): the page and its form
without JavaScript over real loopback HTTP, its scripts, and the live
session's guest login with the XMPP side on a StringTransport.
"""

from __future__ import annotations

import html
import json
import secrets
from http.cookiejar import CookieJar
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import (
    Agent,
    CookieAgent,
    FileBodyProducer,
    HTTPConnectionPool,
    readBody,
)
from twisted.web.http_headers import Headers

from apps.selfhelp import menu
from apps.selfhelp.web import PAGE, STATIC, describe, render_page
from convergence.config import load_config
from convergence.container.application import load_application
from convergence.http.servlet import HttpError
from convergence.service import build
from convergence.xmpp.jid import JID
from tests.siphelpers import UdpPeer, request
from tests.xmpphelpers import Client, make_server

BODY = "{jabber:client}body"
THREAD = "{jabber:client}thread"


class PageTests(TestCase):
    """The page, its form and its scripts over HTTP (in this reactor)."""

    timeout = 30

    def setUp(self) -> None:
        self.server = build(load_config(overrides={"data_dir": self.mktemp()}), reactor)
        self.addCleanup(self.server.close)
        port = reactor.listenTCP(0, self.server.http, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}/selfhelp/"
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = CookieAgent(Agent(reactor, pool=pool), CookieJar())

    async def fetch(self, path: str = "", method: bytes = b"GET", form: dict | None = None,
                    content_type: str = "application/x-www-form-urlencoded"):
        headers, body = Headers(), None
        if form is not None:
            headers.addRawHeader("Content-Type", content_type)
            body = FileBodyProducer(BytesIO(urlencode(form).encode()))
        response = await self.agent.request(method, (self.base + path).encode(), headers, body)
        return response, await readBody(response)

    async def test_new_visitor_gets_the_file(self) -> None:
        """A new visitor's page is index.html byte for byte; its greeting is the bot's."""
        response, body = await self.fetch()
        self.assertEqual(response.code, 200)
        self.assertEqual(body, PAGE.read_bytes())
        self.assertIn(f"Bot: {html.escape(menu.greeting())}</div>".encode(), body)

    async def test_form_posts_and_shows_the_transcript(self) -> None:
        """Without JavaScript: POST a choice, 303 back to the page, which
        shows it and the answer (escaped)."""
        response, _ = await self.fetch(method=b"POST", form={"choice": "1"})
        self.assertEqual(response.code, 303)
        self.assertEqual(response.headers.getRawHeaders("location"), ["/selfhelp/"])
        await self.fetch(method=b"POST", form={"choice": "<b>hi</b>"})
        _, body = await self.fetch()
        page = body.decode()
        self.assertIn('<div class="customer">You: 1</div>'
                      '<div class="bot">Bot: Your order #4711 has shipped', page)
        self.assertIn("You: &lt;b&gt;hi&lt;/b&gt;", page)
        self.assertNotIn("<b>hi</b>", page)
        self.assertEqual(body.count(b"<!--transcript-->"), 1)
        [session] = self.server.container.sessions.sessions("selfhelp")
        self.assertEqual((session["channel"], session["choices"]), ("web", 2))

    async def test_sessions_lists_only_the_visitors_own(self) -> None:
        """api/sessions shows a visitor its own conversation, and another
        visitor's never (its id would join it); asking makes no session."""
        pool = HTTPConnectionPool(reactor, persistent=False)
        stranger = Agent(reactor, pool=pool)
        response = await stranger.request(b"GET", (self.base + "api/sessions").encode())
        self.assertEqual(json.loads(await readBody(response)), {"sessions": []})
        self.assertEqual(self.server.container.sessions.sessions("selfhelp"), [])
        await self.fetch(method=b"POST", form={"choice": "1"})
        _, body = await self.fetch("api/sessions")
        [own] = self.server.container.sessions.sessions("selfhelp")
        self.assertEqual([s["id"] for s in json.loads(body)["sessions"]], [own.id])
        response = await stranger.request(
            b"GET", (self.base + "api/sessions").encode(),
            Headers({"Authorization": ["Bearer anything"]}))
        self.assertEqual(json.loads(await readBody(response)), {"sessions": []})

    async def test_bad_form(self) -> None:
        for form in ({}, {"choice": "  "}, {"choice": "9" * 201}):
            response, _ = await self.fetch(method=b"POST", form=form)
            self.assertEqual(response.code, 400, form)

    async def test_scripts(self) -> None:
        """The page's script and the vendored libraries with their licences;
        nothing else from the static folder or above it."""
        for path in ("selfhelp.js", "vendor/xmpp-0.14.0.min.js", "vendor/sip-0.21.2.min.js"):
            response, body = await self.fetch(path)
            self.assertEqual(response.code, 200, path)
            self.assertEqual(response.headers.getRawHeaders("content-type"),
                             ["text/javascript; charset=utf-8"])
            self.assertEqual(body, (STATIC / path).read_bytes())
        response, body = await self.fetch("vendor/sip-0.21.2.min.js.LICENSE.txt")
        self.assertEqual(response.code, 200)
        self.assertIn(b"sip.js 0.21.2 (MIT)", body)
        for path in ("vendor/../web.py", "vendor/%2e%2e/index.html", "vendor/nothing.js",
                     "vendor/", "index.js", "static/selfhelp.js", "../apps/selfhelp/web.py"):
            response, _ = await self.fetch(path)
            self.assertEqual(response.code, 404, path)

    async def test_live_login_is_json_only(self) -> None:
        """A form (which another site's page may send) gets no login."""
        response, _ = await self.fetch("api/live", b"POST", {"x": "1"})
        self.assertEqual(response.code, 415)
        response, body = await self.fetch("api/live", b"POST", {}, "application/json")
        self.assertEqual(response.code, 200)
        self.assertRegex(json.loads(body)["jid"], r"^guest-[0-9a-f]{24}@localhost$")


class FakeRequest:
    """What live_login reads of an HttpRequest."""

    def __init__(self, app_session, content_type: str = "application/json",
                 browser: str = "cookie-1") -> None:
        self.application_session = app_session
        self.headers = {"content-type": content_type}
        self.session = SimpleNamespace(id=browser)


class LiveSessionTests(SynchronousTestCase):
    """The guest login and the XMPP side of the live page."""

    def setUp(self) -> None:
        self.app = load_application("selfhelp", "apps.selfhelp", ["localhost"])
        self.server, self.clock = make_server(self.mktemp(), (self.app,))
        self.servlet = self.app.servlets["http"]
        self.session = self.server.container.sessions.create(self.app)
        self.session["channel"] = "web"

    def live(self) -> dict:
        return self.servlet.live_login(FakeRequest(self.session))

    def guest(self, login: dict) -> Client:
        client = Client(self.server)
        self.assertEqual(client.login(login["jid"].split("@")[0], login["token"], "web"),
                         login["jid"] + "/web")
        client.available()
        return client

    def chat(self, client: Client, text: str, thread: str):
        client.send(f"<message to='selfhelp@localhost' type='chat'><body>{text}</body>"
                    f"<thread>{thread}</thread></message>")
        return client.expect("message")

    def test_login_binds_the_chat_to_the_web_session(self) -> None:
        login = self.live()
        self.assertEqual(login["session"], self.session.id)
        self.assertEqual((login["bot"], login["domain"]), ("selfhelp@localhost", "localhost"))
        self.assertEqual((login["xmpp_websocket"], login["sip_websocket"]),
                         ("/xmpp-websocket", "/sip"))
        self.assertEqual(login["sip_uri"], "sip:selfhelp@localhost")
        self.assertEqual(self.session["guest_jid"], login["jid"])
        self.assertIs(self.server.container.sessions.by_key("selfhelp", login["thread"]),
                      self.session)
        reply = self.chat(self.guest(login), "1", login["thread"])
        self.assertIn("has shipped", reply.findtext(BODY))
        self.assertEqual(reply.findtext(THREAD), login["thread"])
        self.assertEqual(reply.get("to"), login["jid"] + "/web")
        self.assertEqual(self.session["customer_jid"], login["jid"] + "/web")
        self.assertEqual(self.session["channel"], "web")
        self.assertEqual([s.kind for s in self.session.protocol_sessions], ["xmpp"])
        self.assertEqual(self.server.container.sessions.sessions("selfhelp"), [self.session])
        # the public list does not give the thread away
        listed = describe(self.session)
        self.assertEqual((listed["customer"], listed["thread"]), (login["jid"] + "/web", None))

    def test_someone_else_in_the_thread_is_refused(self) -> None:
        login = self.live()
        alice = Client(self.server)
        alice.login()
        alice.available()
        error = self.chat(alice, "1", login["thread"])
        self.assertEqual(error.get("type"), "error")
        self.assertIsNotNone(error.find(
            ".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-allowed"))
        self.assertNotIn("customer_jid", self.session)

    def test_a_new_token_voids_the_last(self) -> None:
        first = self.live()
        second = self.live()
        self.assertEqual((first["jid"], first["thread"]), (second["jid"], second["thread"]))
        self.assertNotEqual(first["token"], second["token"])
        guests = self.server.guests
        self.assertFalse(guests.redeem(JID.parse(first["jid"]), first["token"]))
        self.assertTrue(guests.redeem(JID.parse(second["jid"]), second["token"]))

    def test_the_end_of_the_conversation_ends_the_guest(self) -> None:
        """Goodbye (9): the guest's tokens are void and its stream ends
        (not-authorized), after the goodbye."""
        login = self.live()
        guest = self.guest(login)
        guest.send("<message to='selfhelp@localhost' type='chat'><body>9</body>"
                   f"<thread>{login['thread']}</thread></message>")
        goodbye, error = guest.read()
        self.assertEqual(goodbye.findtext(BODY), menu.GOODBYE)
        self.assertEqual(error.tag, "{http://etherx.jabber.org/streams}error")
        self.assertIsNotNone(error.find("{urn:ietf:params:xml:ns:xmpp-streams}not-authorized"))
        self.assertFalse(self.session.valid)
        guest_jid = JID.parse(login["jid"])
        self.assertFalse(self.server.guests.redeem(guest_jid, login["token"]))
        self.assertTrue(guest.stream.closing)
        # a guest (and so out of the archive) until its stream is gone
        self.assertTrue(self.server.guests.is_guest(guest_jid))
        guest.stream.connectionLost(None)
        self.assertFalse(self.server.guests.is_guest(guest_jid))
        self.assertEqual(len(self.server.guests), 0)

    def test_another_browser_gets_no_login(self) -> None:
        """A browser joined to the conversation by ?appsession= gets no
        token for the guest of the browser that began it."""
        self.live()
        with self.assertRaises(HttpError) as raised:
            self.servlet.live_login(FakeRequest(self.session, browser="cookie-2"))
        self.assertEqual(raised.exception.status, 403)

    def test_json_only(self) -> None:
        with self.assertRaises(HttpError) as raised:
            self.servlet.live_login(FakeRequest(self.session, "text/plain"))
        self.assertEqual(raised.exception.status, 415)

    def test_websocket_off(self) -> None:
        app = load_application("selfhelp", "apps.selfhelp", ["localhost"])
        server, _ = make_server(self.mktemp(), (app,), websocket=False)
        session = server.container.sessions.create(app)
        with self.assertRaises(HttpError) as raised:
            app.servlets["http"].live_login(FakeRequest(session))
        self.assertEqual(raised.exception.status, 503)
        self.assertEqual(len(server.guests), 0)


def test_static_page_marks() -> None:
    """The transcript goes before the mark, which stays (for the next line)."""
    page = render_page([("customer", "1"), ("agent", "a & b")])
    assert page.count(b"<!--transcript-->") == 1
    assert b'<div class="agent">Agent: a &amp; b</div><!--transcript-->' in page
    assert render_page([]) == Path(PAGE).read_bytes()


class LiveCallTests(TestCase):
    """A call in the page's conversation (over UDP here; the page uses
    SIP/WebSocket): only the conversation's guest is answered."""

    timeout = 30

    def setUp(self) -> None:
        self.server = build(load_config(overrides={"data_dir": self.mktemp()}), reactor)
        for port in self.server.sip.transport.listen(0, "127.0.0.1"):
            self.addCleanup(port.stopListening)
        self.addCleanup(self.server.close)  # first: its BYEs still have the port
        self.sip_port = self.server.sip.transport.udp_port
        self.app = self.server.container.applications["selfhelp"]
        self.session = self.server.container.sessions.create(self.app)
        self.login = self.app.servlets["http"].live_login(FakeRequest(self.session))

    async def invite(self, jid: str) -> Any:
        phone = UdpPeer(self.sip_port)
        self.addCleanup(phone.close)
        offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 f"m=message 5222 xmpp/tcp chat\r\na=jid:{jid}\r\n"
                 f"a=thread:{self.login['thread']}\r\n")
        phone.send(request("INVITE", f"sip:selfhelp@127.0.0.1:{self.sip_port}", phone.port,
                           call_id=secrets.token_hex(6), body=offer,
                           content_type="application/sdp"))
        return await phone.wait(lambda m: m.start.startswith("SIP/2.0 ")
                                and not m.start.startswith("SIP/2.0 1"))

    async def test_someone_else_is_refused(self) -> None:
        final = await self.invite("romeo@localhost/orchard")
        self.assertTrue(final.start.startswith("SIP/2.0 403 "), final.start)
        self.assertNotIn("customer_jid", self.session)

    async def test_the_guest_is_answered_in_its_conversation(self) -> None:
        final = await self.invite(self.login["jid"] + "/web")
        self.assertTrue(final.start.startswith("SIP/2.0 200 "), final.start)
        self.assertIn(f"a=thread:{self.login['thread']}", final.body.decode())
        self.assertEqual(self.session["customer_jid"], self.login["jid"] + "/web")
        self.assertEqual(self.session["channel"], "web")
        self.assertEqual([s.kind for s in self.session.protocol_sessions], ["sip", "xmpp"])


def test_vendored_libraries_are_the_pinned_ones() -> None:
    """static/vendor holds the versions package-lock.json pins (make
    selfhelp-assets), each with its licences, and the page loads those."""
    assets = Path(STATIC).parent / "assets"
    lock = json.loads((assets / "package-lock.json").read_text())["packages"]
    page = PAGE.read_text()
    for package, stem in (("@xmpp/client", "xmpp"), ("sip.js", "sip")):
        version = lock[f"node_modules/{package}"]["version"]
        name = f"{stem}-{version}.min.js"
        assert (STATIC / "vendor" / name).is_file(), name
        licences = (STATIC / "vendor" / f"{name}.LICENSE.txt").read_text()
        assert f"{package} {version} (" in licences
        assert f'<script src="vendor/{name}" defer></script>' in page
    assert sorted(p.name for p in (STATIC / "vendor").iterdir()) == sorted(
        f"{n}{suffix}" for n in (f"xmpp-{lock['node_modules/@xmpp/client']['version']}.min.js",
                                 f"sip-{lock['node_modules/sip.js']['version']}.min.js")
        for suffix in ("", ".LICENSE.txt"))
