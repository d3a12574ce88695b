"""
Gajim's XMPP library, python3-nbxmpp, as two users of the client matrix.
Run with Debian's /usr/bin/python3 (which has the package), not the venv:

    /usr/bin/python3 nbxmpp_driver.py PORT CAFILE PASSWORD A B C ROOM SCRATCH_DIR

The library's own client API (Client, its modules Roster, Presence,
VCardTemp, MAM, HTTPUpload, Discovery; its HTTPSession for the PUT) on
GLib's main loop, STARTTLS with the test certificate accepted as Gajim
accepts one a user trusts. Prints one JSON object: scenario ->
{status, note}. Every wait is bounded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gi.repository import Gio, GLib
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.modules.vcard_temp import VCard
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import JID, Iq, Message, Node
from nbxmpp.structs import StanzaHandler

PORT, CAFILE, PASSWORD, USER_A, USER_B, USER_C, ROOM, SCRATCH = sys.argv[1:9]
DOWNLOAD = Path(SCRATCH) / "nbxmpp-download.txt"
DOMAIN = "localhost"
STEP = 5.0
CONTEXT = GLib.MainContext.default()
cells: dict[str, dict[str, str]] = {}


class Failed(Exception):
    pass


def spin(done: Callable[[], bool], limit: float = STEP) -> bool:
    """Run the main loop until done() or the limit."""
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            return False
        if not CONTEXT.iteration(False):
            time.sleep(0.005)
    return True


def call(method: Callable[..., Any], *args: Any, what: str, limit: float = STEP,
         **kwargs: Any) -> Any:
    """Run a module's request task with its callback (the way Gajim does):
    its result, or its error raised as Failed. A task's result is gone once
    it has finished, so only the callback can take it."""
    outcome: list[tuple[bool, Any]] = []

    def done(task: Any) -> None:
        try:
            outcome.append((True, task.finish()))
        except Exception as e:  # noqa: BLE001 (any error of the task is its outcome)
            outcome.append((False, e))

    method(*args, callback=done, **kwargs)
    if not spin(lambda: bool(outcome), limit):
        raise Failed(f"{what}: no answer within {limit} s")
    ok, value = outcome[0]
    if not ok:
        raise Failed(f"{what}: {getattr(value, 'condition', None) or value}")
    return value


def iq(user: User, stanza: Iq, what: str) -> Any:
    """Send an iq with the client's callback API; the answer or Failed."""
    answers: list[Any] = []
    user.client.send_stanza(stanza, callback=lambda _c, s: answers.append(s))
    if not spin(lambda: bool(answers)):
        raise Failed(f"{what}: no answer within {STEP} s")
    answer = answers[0]
    if answer.getType() == "error":
        raise Failed(f"{what}: {answer.getError()}")
    return answer


class User:
    def __init__(self, local: str) -> None:
        self.jid = f"{local}@{DOMAIN}"
        self.state = "connecting"
        self.stanzas: list[Any] = []
        client = Client(log_context=local)
        client.set_domain(DOMAIN)
        client.set_username(local)
        client.set_resource("nbxmpp")
        client.set_password(PASSWORD)
        client.set_custom_host(f"127.0.0.1:{PORT}", ConnectionProtocol.TCP,
                               ConnectionType.START_TLS)
        client.set_accepted_certificates([Gio.TlsCertificate.new_from_file(CAFILE)])
        client.subscribe("connected", lambda *_: setattr(self, "state", "connected"))
        client.subscribe("connection-failed", lambda *_: setattr(self, "state", "failed"))
        client.subscribe("disconnected", lambda *_: setattr(self, "state", "disconnected"))
        for name in ("message", "presence"):
            client.register_handler(StanzaHandler(name=name, callback=self._got, priority=10))
        client.register_handler(StanzaHandler(name="iq", callback=self._got, typ="set",
                                              ns=Namespace.ROSTER, priority=10))
        self.client = client

    def _got(self, _client: Any, stanza: Any, _properties: Any) -> None:
        self.stanzas.append(stanza)

    def login(self) -> User:
        self.client.connect()
        if not spin(lambda: self.state != "connecting", 15):
            raise Failed(f"login of {self.jid}: timed out")
        if self.state != "connected":
            raise Failed(f"login of {self.jid}: {self.client.get_error()}")
        self.client.get_module("BasePresence").send()
        return self

    def wait(self, test: Callable[[Any], bool], what: str, limit: float = STEP) -> Any:
        found: list[Any] = []

        def done() -> bool:
            found.extend(s for s in self.stanzas if test(s))
            return bool(found)

        if not spin(done, limit):
            raise Failed(f"no {what} within {limit} s")
        return found[0]

    def logout(self) -> None:
        if self.state == "connected":
            self.client.disconnect()
            spin(lambda: self.state != "connected", 3)


def bare(stanza: Any) -> str:
    frm = stanza.getFrom()
    return str(frm.bare) if frm is not None else ""


def scenario(key: str, body: Callable[[], str]) -> None:
    try:
        cells[key] = {"status": "pass", "note": body()}
    except Failed as e:
        cells[key] = {"status": "fail", "note": str(e)}
    except Exception as e:  # noqa: BLE001 (the library's own exceptions, reported as such
        cells[key] = {"status": "fail", "note": f"{type(e).__name__}: {e}"}


def roster() -> str:
    call(a.client.get_module("Roster").request_roster, what="roster get")
    call(a.client.get_module("Roster").set_item, JID.from_string(b.jid), "Bob",
         what="roster set")
    call(b.client.get_module("Roster").request_roster, what="roster get (B)")
    a.client.get_module("BasePresence").subscribe(JID.from_string(b.jid))
    b.wait(lambda s: s.getName() == "presence" and s.getType() == "subscribe"
           and bare(s) == a.jid, "subscribe at B")
    b.client.get_module("BasePresence").subscribed(JID.from_string(a.jid))
    b.client.get_module("BasePresence").subscribe(JID.from_string(a.jid))
    a.wait(lambda s: s.getName() == "presence" and s.getType() == "subscribe"
           and bare(s) == b.jid, "subscribe at A")
    a.client.get_module("BasePresence").subscribed(JID.from_string(b.jid))

    def both(other: str) -> Callable[[Any], bool]:
        def test(s: Any) -> bool:
            query = s.getTag("query", namespace=Namespace.ROSTER)
            return s.getName() == "iq" and query is not None and any(
                i.getAttr("jid") == other and i.getAttr("subscription") == "both"
                for i in query.getTags("item"))
        return test

    a.wait(both(b.jid), "roster push 'both' at A")
    b.wait(both(a.jid), "roster push 'both' at B")
    data = call(a.client.get_module("Roster").request_roster, what="roster get")
    item = data.items.get(JID.from_string(b.jid)) if isinstance(data.items, dict) else None
    if item is None:
        item = next((i for i in data.items if str(getattr(i, "jid", i)) == b.jid), None)
    subscription = getattr(item, "subscription", None)
    if subscription != "both":
        raise Failed(f"roster item after the handshake: {item}")
    return "list, add, subscribe/subscribed both ways, pushes, 'both' on the roster"


def presence() -> str:
    a.client.get_module("BasePresence").send(show="dnd", status="nbxmpp busy")
    b.wait(lambda s: s.getName() == "presence" and bare(s) == a.jid
           and s.getStatus() == "nbxmpp busy" and s.getShow() == "dnd", "A's presence at B")
    a.client.get_module("BasePresence").send()
    return "show/status broadcast to the subscribed contact"


def chat() -> str:
    a.client.send_stanza(Message(to=b.jid, body="nbxmpp a->b", typ="chat"))
    b.wait(lambda s: s.getName() == "message" and s.getBody() == "nbxmpp a->b", "message at B")
    b.client.send_stanza(Message(to=a.jid, body="nbxmpp b->a", typ="chat"))
    a.wait(lambda s: s.getName() == "message" and s.getBody() == "nbxmpp b->a", "message at A")
    return "both ways"


def offline() -> str:
    text = "nbxmpp while you were out"
    a.client.send_stanza(Message(to=f"{USER_C}@{DOMAIN}", body=text, typ="chat"))
    ping = Iq("get", to=DOMAIN)
    ping.addChild("ping", namespace=Namespace.PING)
    iq(a, ping, "ping")  # the message was handled first
    c = User(USER_C).login()
    try:
        msg = c.wait(lambda s: s.getName() == "message" and s.getBody() == text,
                     "offline message at C's login", 10)
    finally:
        c.logout()
    if msg.getTag("delay", namespace=Namespace.DELAY2) is None:
        raise Failed("no delay stamp")
    return "delivered at login with a delay stamp"


def vcard() -> str:
    card = VCard({"FN": "Alice Nbxmpp", "NICKNAME": "alicenb"})
    call(a.client.get_module("VCardTemp").set_vcard, card, what="vCard set")
    own = call(a.client.get_module("VCardTemp").request_vcard, what="own vCard get")
    other = call(b.client.get_module("VCardTemp").request_vcard, JID.from_string(a.jid),
                 what="contact's vCard get")
    if own.data.get("FN") != "Alice Nbxmpp" or other.data.get("FN") != "Alice Nbxmpp":
        raise Failed(f"FN read back: {own.data.get('FN')} / {other.data.get('FN')}")
    return "set, read back by its owner and by a contact"


def muc() -> str:
    def join(user: User, nick: str) -> None:
        user.client.get_module("BasePresence").send(jid=f"{ROOM}/{nick}", muc=True)

        def answer(s: Any) -> bool:
            if s.getName() != "presence" or bare(s) != ROOM:
                return False
            x = s.getTag("x", namespace=Namespace.MUC_USER)
            return s.getType() == "error" or (x is not None and any(
                st.getAttr("code") == "110" for st in x.getTags("status")))

        got = user.wait(answer, f"self-presence from {ROOM}")
        if got.getType() == "error":
            raise Failed(f"join: {got.getError()}")
        x = got.getTag("x", namespace=Namespace.MUC_USER)
        if any(st.getAttr("code") == "201" for st in x.getTags("status")):
            # a new room is locked until its owner configures it: an
            # instant room, as Gajim makes one
            form = Node(tag="x", attrs={"xmlns": Namespace.DATA})
            call(user.client.get_module("MUC").set_config, JID.from_string(ROOM), form,
                 what="instant room")

    join(a, "anb")
    join(b, "bnb")
    a.client.send_stanza(Message(to=ROOM, body="nbxmpp to the room", typ="groupchat"))
    b.wait(lambda s: s.getName() == "message" and s.getType() == "groupchat"
           and s.getBody() == "nbxmpp to the room", "groupchat at B")
    return "both joined, groupchat seen by the other"


def carbons() -> str:
    stanza = Iq("set")
    stanza.addChild("enable", namespace=Namespace.CARBONS)
    iq(a, stanza, "carbons enable")
    return "enabled"


def mam() -> str:
    result = call(a.client.get_module("MAM").make_query, JID.from_string(a.jid),
                  queryid="nb1", what="MAM query")
    return f"query answered (complete: {result.complete})"


def upload() -> str:
    items = call(a.client.get_module("Discovery").disco_items, DOMAIN, what="disco#items")
    service = None
    for item in items.items:
        try:
            info = call(a.client.get_module("Discovery").disco_info, item.jid, what="disco#info")
        except Failed:
            continue  # an item without disco#info (an app) is not the service
        if Namespace.HTTPUPLOAD_0 in info.features:
            service = item.jid
    if service is None:
        raise Failed("no upload service in disco")
    data = b"uploaded by nbxmpp\n" * 50
    slot = call(a.client.get_module("HTTPUpload").request_slot, service,
                "nbxmpp-upload.txt", len(data), "text/plain", what="slot request")
    session = a.client.http_session

    def transfer(method: str, url: str, body: bytes | None) -> Any:
        request = session.create_request()
        if body is not None:
            request.set_request_body("text/plain", body)
        else:  # downloads go to a file, as Gajim's do
            request.set_response_body_from_path(DOWNLOAD)
        for name, value in getattr(slot, "headers", {}).items():
            request.get_request_headers().append(name, value)
        finished: list[Any] = []
        request.send(method, url, timeout=10, callback=lambda r: finished.append(r))
        if not spin(lambda: bool(finished), 12):
            raise Failed(f"{method}: no answer")
        return request

    put = transfer("PUT", slot.put_uri, data)
    if put.get_status() != 201:
        raise Failed(f"PUT: {put.get_status()} {put.get_error_string()}")
    get = transfer("GET", slot.get_uri, None)
    got = DOWNLOAD.read_bytes() if DOWNLOAD.exists() else b""
    if not get.is_complete() or got != data:
        raise Failed(f"GET: {get.get_status()} {get.get_error_string()}, {len(got)} bytes")
    return f"slot, PUT {len(data)} bytes with its HTTPSession, GET identical"


def sm() -> str:
    smacks = a.client._smacks  # nbxmpp keeps SM state on its Smacks object only
    if not a.client.sm_supported:
        raise Failed("the server offers no stream management")
    if not smacks.enabled:
        raise Failed("stream management not enabled at login")
    a.client.send_stanza(Message(to=b.jid, body="nbxmpp counted", typ="chat"))
    if not smacks._uqueue:
        raise Failed("the sent message was not queued for acknowledgement")
    smacks._request_ack()
    if not spin(lambda: not smacks._uqueue):
        raise Failed(f"{len(smacks._uqueue)} stanzas never acknowledged (<r/> unanswered)")
    return "enabled at login; <r/> answered, the unacknowledged queue emptied"


try:
    a = User(USER_A).login()
    b = User(USER_B).login()
except Failed as e:
    print(json.dumps({"_login": str(e)}), flush=True)
    sys.exit(0)

for key, body in (("roster", roster), ("presence", presence), ("chat", chat),
                  ("offline", offline), ("vcard", vcard), ("muc", muc),
                  ("carbons", carbons), ("mam", mam), ("upload", upload), ("sm", sm)):
    scenario(key, body)
a.logout()
b.logout()
print(json.dumps(cells), flush=True)
