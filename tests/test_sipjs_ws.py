"""
SIP over WebSocket with a real client library against a real ``twistd -n
convergence``: SIP.js (npm, under Node with the ``ws`` package;
tests/clients/js/sipws.mjs) registers over ws://…/sip, receives an INVITE
that the dialer app places to its address-of-record (asked over UDP by
this test, so a UDP request ends in a call down the WebSocket), answers
it, gets the app's BYE; answers a UDP phone's INVITE proxied to it and
hangs up on the phone through the proxy; then calls the chatline app with a chat offer and
hangs up itself; then closes the connection without un-REGISTERing, and
the registration is gone from the registrar's store.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.accounts import Accounts
from convergence.store.sqlite import SqliteAccountStore
from tests.siphelpers import Parsed, request
from tests.test_service import BIN, free_port

ROOT = Path(__file__).resolve().parent.parent
JS = Path(__file__).with_name("clients") / "js"
SCRIPT = JS / "sipws.mjs"


def require_sipjs() -> None:
    """node and the npm packages (``make clients-deps``) are part of the test setup."""
    if shutil.which("node") is None:
        raise AssertionError("node is not on PATH (Debian's nodejs; see docs/testing.md)")
    for package in ("sip.js", "ws"):
        if not (JS / "node_modules" / package).is_dir():
            raise AssertionError(f"{package} missing: run `make clients-deps`"
                                 " (npm ci in tests/clients/js)")


class Lines:
    """A subprocess's JSON lines, read on a thread, waited for with a bound."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.queue.put(json.loads(line))
                except ValueError:
                    pass
        self.queue.put(None)

    def next(self, event: str, limit: float = 30.0) -> dict:
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event!r} from SIP.js within {limit} s: {self.seen}")
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError(f"SIP.js ended before {event!r}: {self.seen}")
            self.seen.append(item)
            if item["event"] == "error":
                raise AssertionError(f"SIP.js failed: {item['message']}")
            if item["event"] == event:
                return item


class SipJsOverWebSocketTests(SynchronousTestCase):
    def setUp(self) -> None:
        require_sipjs()
        self.work = Path(self.mktemp()).resolve()
        self.data = self.work / "convergence-data"
        self.data.mkdir(parents=True)
        self.http_port, self.sip_port, self.c2s_port = free_port(), free_port(), free_port()
        (self.work / "convergence.toml").write_text(f"""
data_dir = "{self.data}"

[listen]
c2s_port = {self.c2s_port}
c2s_tls_port = 0
sip_port = {self.sip_port}
http_port = {self.http_port}

[apps.dialer]
module = "tests.sipapps_dialer"
""")
        store = SqliteAccountStore(self.data / "convergence.sqlite3")
        Accounts(store, 4096).add("romeo@localhost", "montague")
        store.close()

    def start_twistd(self) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = self.work / "twistd.log"
        with open(self.log, "wb") as log:
            proc = subprocess.Popen(
                [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
                 "--config", str(self.work / "convergence.toml")],
                cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop, proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                return proc
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.fail("server did not start: " + self.log.read_text()[-3000:])
                time.sleep(0.1)

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def bindings(self) -> list[tuple[str, str, str]]:
        """The registrar's store, read as another process would."""
        db = sqlite3.connect(str(self.data / "convergence.sqlite3"), timeout=10)
        try:
            return db.execute("SELECT aor, contact, received FROM sip_bindings").fetchall()
        finally:
            db.close()

    def udp_message(self, target: str) -> bytes:
        """Ask the dialer app (over UDP) to call C{target}; its answer."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(10)
            port = udp.getsockname()[1]
            text = request("MESSAGE", f"sip:dialer@localhost:{self.sip_port}", port,
                           body=target, content_type="text/plain",
                           call_id=secrets.token_hex(8))
            udp.sendto(text.encode(), ("127.0.0.1", self.sip_port))
            while True:
                data, _ = udp.recvfrom(65536)
                if data.startswith(b"SIP/2.0 ") and not data.startswith(b"SIP/2.0 1"):
                    return data

    def sipjs(self, app: str, scenario: str = "full") -> tuple[subprocess.Popen, Lines]:
        """Run tests/clients/js/sipws.mjs as romeo against the server."""
        node = subprocess.Popen(
            ["node", "--no-warnings", str(SCRIPT), f"ws://127.0.0.1:{self.http_port}/sip",
             "localhost", "romeo", "montague", app, scenario],
            cwd=JS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: (node.poll() is None and node.kill(), node.wait(10)))
        return node, Lines(node)

    def offline_stanzas(self) -> list[str]:
        db = sqlite3.connect(str(self.data / "convergence.sqlite3"), timeout=10)
        try:
            rows = db.execute("SELECT stanza FROM offline_messages WHERE localpart = 'romeo'"
                              " ORDER BY id").fetchall()
        finally:
            db.close()
        return [bytes(row[0]).decode() if isinstance(row[0], bytes) else row[0]
                for row in rows]

    def phone_calls_romeo(self) -> dict:
        """A UDP phone INVITEs romeo (SIP.js, answering), ACKs along the
        Record-Route, and answers the BYE that comes back through the proxy."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(10)
            port = udp.getsockname()[1]
            server = ("127.0.0.1", self.sip_port)
            call_id = secrets.token_hex(8)
            offer = ("v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                     "t=0 0\r\nm=message 5222 xmpp/tcp chat\r\na=jid:phone@localhost\r\n"
                     "a=thread:phone-1\r\n")
            udp.sendto(request("INVITE", "sip:romeo@localhost", port, call_id=call_id,
                               from_tag="phone", body=offer,
                               content_type="application/sdp").encode(), server)
            while True:
                ok = Parsed(udp.recvfrom(65536)[0])
                if ok.status is not None and ok.status >= 200:
                    break
            self.assertEqual(ok.status, 200, ok.start)
            record_route = ok.all("record-route")
            contact = re.search(r"<([^>]+)>", ok.header("contact")).group(1)
            to_tag = ok.header("to").split("tag=")[1]
            routes = "\n".join(f"Route: {r}" for r in reversed(record_route))
            udp.sendto(request("ACK", contact, port, call_id=call_id, from_tag="phone",
                               to_tag=to_tag, to="<sip:romeo@localhost>",
                               extra=routes).encode(), server)
            while True:
                bye = Parsed(udp.recvfrom(65536)[0])
                if bye.method == "BYE":
                    break
            answer = ["SIP/2.0 200 OK", *[f"Via: {v}" for v in bye.all("via")],
                      f"From: {bye.header('from')}", f"To: {bye.header('to')}",
                      f"Call-ID: {bye.header('call-id')}", f"CSeq: {bye.header('cseq')}",
                      "Content-Length: 0"]
            udp.sendto(("\r\n".join(answer) + "\r\n\r\n").encode(), server)
            return {"record_route": record_route, "bye_vias": bye.all("via")}

    def test_register_invite_bye_close(self) -> None:
        self.start_twistd()
        node, lines = self.sipjs("chatline")

        registered = lines.next("registered")
        contact = registered["contact"]
        self.assertRegex(contact, r"^sip:\w+@\w+\.invalid;transport=ws$")
        [(aor, stored, received)] = self.bindings()
        self.assertEqual((aor, stored), ("sip:romeo@localhost", contact))
        self.assertRegex(received, r"^ws:127\.0\.0\.1:\d+$")

        # A UDP request makes the dialer app INVITE romeo: down the WebSocket.
        answer = self.udp_message("sip:romeo@localhost")
        self.assertTrue(answer.startswith(b"SIP/2.0 200 "), answer[:200])
        invite = lines.next("invite")
        self.assertEqual(invite["ruri"], contact)
        self.assertEqual(invite["from"], "sip:dialer@localhost")
        self.assertTrue(invite["via"].startswith(f"SIP/2.0/WS 127.0.0.1:{self.http_port};"),
                        invite["via"])
        self.assertIn(f":{self.http_port};transport=ws>", invite["contact"])
        self.assertIn("m=message 5222 xmpp/tcp chat", invite["offer"])
        lines.next("ended")  # SIP.js answered 200, the core ACKed, the app sent BYE

        # A UDP phone calls romeo: through the proxy, down the WebSocket.
        proxied = self.phone_calls_romeo()
        self.assertEqual(len(proxied["record_route"]), 2)
        self.assertIn(";transport=ws;lr>", proxied["record_route"][0])
        # SIP.js's BYE came through the proxy: its Via under ours
        [ours, theirs] = proxied["bye_vias"]
        self.assertTrue(ours.startswith(f"SIP/2.0/UDP 127.0.0.1:{self.sip_port};"), ours)
        self.assertIn(".invalid", theirs)
        event = lines.next("proxied")
        self.assertEqual(event["status"], 200)
        self.assertEqual(len(event["recordRoute"]), 2)

        # Our call to chatline over the same connection, and our BYE.
        call = lines.next("call")
        self.assertEqual(call["status"], 200)
        self.assertIn("a=jid:chatline@localhost", call["answer"])
        self.assertIn(";transport=ws>", call["contact"])
        self.assertEqual(lines.next("hungup")["status"], 200)

        # The connection closes without un-REGISTER: the binding goes.
        lines.next("closed")
        self.assertEqual(node.wait(15), 0)
        deadline = time.monotonic() + 10
        while self.bindings() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.bindings(), [])
        log = self.log.read_text()
        self.assertIn("flow ws:127.0.0.1:", log)
        self.assertNotIn("Traceback", log)

    def test_call_selfhelp_with_chat_offer(self) -> None:
        """SIP.js calls the selfhelp bot over WebSocket with a jabber chat
        offer (docs/sdp.md): 200 with the bot's a=jid and our thread; the
        bot greets over XMPP in that thread (romeo is not online, so the
        greeting waits in his offline store); our BYE gets 200 and the bot's
        goodbye follows in the same thread."""
        self.start_twistd()
        node, lines = self.sipjs("selfhelp", "call")
        call = lines.next("call")
        self.assertEqual(call["status"], 200)
        thread = re.search(r"a=thread:(\S+)", call["offer"]).group(1)
        self.assertIn("m=message 5222 xmpp/tcp chat", call["answer"])
        self.assertIn("a=jid:selfhelp@localhost", call["answer"])
        self.assertIn(f"a=thread:{thread}", call["answer"])
        self.assertEqual(lines.next("hungup")["status"], 200)
        lines.next("closed")
        self.assertEqual(node.wait(15), 0)
        deadline = time.monotonic() + 10
        while len(self.offline_stanzas()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        stanzas = self.offline_stanzas()
        self.assertEqual(len(stanzas), 2, stanzas)
        for stanza in stanzas:
            self.assertIn("from='selfhelp@localhost", stanza.replace('"', "'"))
            self.assertIn(f"<thread>{thread}</thread>", stanza)
        self.assertIn("Welcome to convergence self-help", stanzas[0])
        self.assertIn("Goodbye", stanzas[1])
