"""
Federation between two real C{twistd convergence} processes on loopback:
a.test on 127.0.0.1 and b.test on 127.0.0.2 (Linux routes all of 127/8
on lo), each naming the other in C{[s2s.hosts]}, with slixmpp users on
each (tests/slixmpp_s2s.py).  One pair authenticates with dialback over
STARTTLS (self-signed certificates that do not verify), the other with
SASL EXTERNAL (certificates from a test CA made here, dialback refused).
A raw socket speaking s2s forges a C{from}.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.s2s.dialback import DialbackKeys
from tests.test_service import read_until
from tests.testca import TestCA

BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).with_name("slixmpp_s2s.py")
#: seconds an instance gets to start listening
START_LIMIT = 30.0


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Instance:
    """One convergence process serving C{domain} on C{address}."""

    def __init__(self, work: Path, domain: str, address: str) -> None:
        self.work = work / domain
        self.work.mkdir(parents=True)
        self.domain = domain
        self.address = address
        self.c2s_port = free_port(address)
        self.s2s_port = free_port(address)
        self.secret = f"dialback secret of {domain}"
        self.config = self.work / "convergence.toml"
        self.log = self.work / "twistd.log"
        self.cafile = self.work / "data" / "tls" / f"{domain}.pem"
        self.proc: subprocess.Popen | None = None

    def write_config(self, peers: list["Instance"], extra: str = "",
                     tls: tuple[Path, Path] | None = None, ca: Path | None = None) -> None:
        hosts = []
        for peer in peers:
            target = f"{peer.address}:{peer.s2s_port}"
            # the peer's services are domains of their own (DNS: SRV each)
            hosts += [f'"{name}{peer.domain}" = "{target}"'
                      for name in ("", "conference.", "echo.")]
        # nothing listens there: a server that is down
        hosts.append(f'"down.test" = "127.0.0.3:{free_port("127.0.0.3")}"')
        lines = [
            f'domains = ["{self.domain}"]', f'interface = "{self.address}"',
            f'data_dir = "{self.work / "data"}"',
            "[listen]", f"c2s_port = {self.c2s_port}", "c2s_tls_port = 0",
            f"s2s_port = {self.s2s_port}", "sip_port = 0", "http_port = 0",
        ]
        if tls is not None:
            lines += ["[tls]", f'certificate = "{tls[0]}"', f'private_key = "{tls[1]}"']
            self.cafile = ca
        lines += ["[s2s]", f'dialback_secret = "{self.secret}"', "queue_timeout = 8.0",
                  "connect_timeout = 3.0"]
        if ca is not None:
            lines.append(f'ca_file = "{ca}"')
        lines += ["[s2s.hosts]", *hosts, extra]
        self.config.write_text("\n".join(lines) + "\n")

    def add_users(self, *users: str) -> None:
        for user in users:
            subprocess.run([str(BIN / "convergencectl"), "--config", str(self.config),
                            "adduser", f"{user}@{self.domain}", "--password", "secret"],
                           check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", f"--logfile={self.log}",
             "convergence", "--config", str(self.config)],
            cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_LIMIT
        for port in (self.c2s_port, self.s2s_port):
            while True:
                try:
                    socket.create_connection((self.address, port), timeout=1).close()
                    break
                except OSError:
                    assert self.proc is not None
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"{self.domain} did not start: "
                                             + self.proc.stderr.read().decode(errors="replace"))
                    time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Federation(SynchronousTestCase):
    """A pair of instances, started for each test."""

    tls = False

    def setUp(self) -> None:
        work = Path(self.mktemp()).resolve()
        work.mkdir()
        self.a = Instance(work, "a.test", "127.0.0.1")
        self.b = Instance(work, "b.test", "127.0.0.2")
        if self.tls:
            ca = TestCA(work / "ca")
            for me, other in ((self.a, self.b), (self.b, self.a)):
                # a.test by DNS-ID, b.test by SRV-ID and XmppAddr
                ids = ({"dns": (me.domain, f"*.{me.domain}")} if me is self.a else
                       {"dns": (me.domain,), "srv": (f"_xmpp-server.{me.domain}",),
                        "xmpp": (me.domain,)})
                me.write_config([other], tls=ca.issue(me.domain, **ids), ca=ca.ca_file,
                                extra="[s2s.server_login]\ntls = \"required\"\n"
                                      "require_valid_certificate = true\ndialback = false\n")
        else:
            self.a.write_config([self.b])
            self.b.write_config([self.a])
        self.a.add_users("alice")
        self.b.add_users("bob")
        for instance in (self.a, self.b):
            self.addCleanup(instance.stop)
            instance.start()
        for instance in (self.a, self.b):
            instance.wait_listening()

    def scenario(self, name: str) -> dict:
        args = [sys.executable, str(SCENARIO), name]
        for i, user in ((self.a, "alice"), (self.b, "bob")):
            args += [f"{user}@{i.domain}/slix", i.address, str(i.c2s_port), str(i.cafile)]
        env = dict(os.environ, PYTHONPATH=str(SCENARIO.parent))
        done = subprocess.run(args, capture_output=True, timeout=120, env=env)
        self.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace")[-3000:]
                         + self.a.log_text()[-3000:] + self.b.log_text()[-3000:])
        return json.loads(done.stdout.decode().strip().splitlines()[-1])


class DialbackFederationTests(Federation):
    timeout = 180

    def test_federation(self) -> None:
        """Messages, pings, a subscription ending in both with presence, a
        room on b.test joined from a.test, an application answering a
        remote user, a bounce from a server that is down."""
        result = self.scenario("full")
        self.assertTrue(result["bob_got"], result)
        self.assertTrue(result["alice_got"], result)
        self.assertTrue(result["ping_a_to_b"], result)
        self.assertTrue(result["ping_b_to_a"], result)
        self.assertTrue(result["ping_user_a_to_b"], result)
        self.assertTrue(result["both"], result)
        self.assertTrue(result["presence"], result)
        self.assertEqual(result["alice_saw"], [f"lounge@conference.b.test/{n}"
                                               for n in ("Alice", "Bob")])
        self.assertTrue(result["room_message"], result)
        self.assertTrue(result["echo"], result)
        self.assertEqual(result["down_errors"], [["down1", "remote-server-not-found"]])
        self.assertTrue(result["bob_saw_unavailable"], result)
        for instance in (self.a, self.b):
            log = instance.log_text()
            self.assertIn("ready (dialback)", log)
            self.assertNotIn("Traceback", log)

    def s2s_over_tls(self, header: bytes) -> ssl.SSLSocket:
        """A raw stream to a.test's s2s port, after STARTTLS (required by
        the default policy), the header sent again."""
        raw = socket.create_connection((self.a.address, self.a.s2s_port), timeout=10)
        raw.sendall(header)
        self.assertIn(b"<required/>", read_until(raw, b"</stream:features>"))
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.assertIn(b"<proceed", read_until(raw, b"/>"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the self-signed certificate
        s = context.wrap_socket(raw, server_hostname="a.test")
        s.sendall(header)
        return s

    def test_forged_from(self) -> None:
        """A raw s2s peer: a stanza before authentication gets
        not-authorized; authenticated as b.test (dialback with b.test's
        real key, verified by b.test), a stanza from c.test gets
        invalid-from; neither reaches alice (offline: nothing stored)."""
        header = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
                  b" xmlns:stream='http://etherx.jabber.org/streams'"
                  b" xmlns:db='jabber:server:dialback' from='b.test' to='a.test'"
                  b" version='1.0'>")
        with self.s2s_over_tls(header) as s:
            read_until(s, b"</stream:features>")
            s.sendall(b"<message from='bob@b.test' to='alice@a.test'><body>early</body>"
                      b"</message>")
            data = read_until(s, b"</stream:stream>")
        self.assertIn(b"<not-authorized", data)
        with self.s2s_over_tls(header) as s:
            opened = read_until(s, b"</stream:features>")
            stream_id = opened.split(b" id='", 1)[1].split(b"'", 1)[0].decode()
            key = DialbackKeys(self.b.secret).generate("a.test", "b.test", stream_id)
            s.sendall(f"<db:result from='b.test' to='a.test'>{key}</db:result>".encode())
            answer = read_until(s, b"/>", limit=15)
            self.assertIn(b"type='valid'", answer.replace(b'"', b"'"))
            s.sendall(b"<message from='mallory@c.test' to='alice@a.test'><body>forged</body>"
                      b"</message>")
            data = read_until(s, b"</stream:stream>")
        self.assertIn(b"<invalid-from", data)
        self.a.stop()
        with sqlite3.connect(self.a.work / "data" / "convergence.sqlite3") as db:
            stored = [row[0] for row in db.execute("SELECT stanza FROM offline_messages")]
        self.assertEqual(stored, [])


class ExternalFederationTests(Federation):
    """STARTTLS required, certificates from a test CA: SASL EXTERNAL."""

    tls = True
    timeout = 120

    def test_messages_over_sasl_external(self) -> None:
        result = self.scenario("messages")
        self.assertTrue(result["bob_got"], result)
        self.assertTrue(result["alice_got"], result)
        for instance in (self.a, self.b):
            log = instance.log_text()
            self.assertIn("ready (SASL EXTERNAL)", log)
            self.assertIn("authenticated with SASL EXTERNAL", log)
            self.assertNotIn("ready (dialback)", log)
