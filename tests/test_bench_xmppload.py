"""
bench/xmppload.py, the project's own XMPP load generator: its SCRAM client
against the RFC test vectors, its stream framing and report, and each mode
run as a subprocess against a real convergence server (twistd, also a
subprocess) over loopback with STARTTLS.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task, utils
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bench import rosters, xmppload
from bench.xmppload import ScramClient, StreamFramer, XmppError

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "xmppload.py"
IMLOAD = ROOT / "bench" / "imload.py"
MUCLOAD = ROOT / "bench" / "mucload.py"
BIN = Path(sys.executable).parent
USERS = 7
#: two login users with five contacts each (bench/rosters.py)
ROSTERS = "hub:2:5"
PASSWORD = "pw"


class ScramClientTests(SynchronousTestCase):
    """The client side of SCRAM against RFC 5802 and RFC 7677 section 3."""

    def test_sha1_vector(self) -> None:
        """RFC 5802 section 5: client-first, client-final, server signature."""
        client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
        self.assertEqual(client.first(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
        final = client.final(
            b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        self.assertEqual(final, b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                                b"p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
        client.verify(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")

    def test_sha256_vector(self) -> None:
        """RFC 7677 section 3."""
        client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
        final = client.final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                             b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        self.assertEqual(final, b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")

    def test_wrong_server_signature(self) -> None:
        """A server that cannot prove it knows the password is rejected."""
        client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
        client.final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        self.assertRaises(XmppError, client.verify, b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        self.assertRaises(XmppError, client.verify, b"e=invalid-proof")
        self.assertRaises(XmppError, client.verify, b"x=1")

    def test_server_nonce_must_extend_ours(self) -> None:
        """A server-first-message with a foreign nonce or an extension fails."""
        client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce="abc")
        self.assertRaises(XmppError, client.final, b"r=xyz123,s=QSXCR+Q6sek8bf92,i=4096")
        self.assertRaises(XmppError, client.final, b"r=abc,s=QSXCR+Q6sek8bf92,i=4096")
        self.assertRaises(XmppError, client.final, b"m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=4096")

    def test_username_escaped(self) -> None:
        """',' and '=' in the username are escaped (RFC 5802 section 5.1)."""
        client = ScramClient("SCRAM-SHA-256", "a=b,c", "pw", nonce="n")
        self.assertEqual(client.first(), b"n,,n=a=3Db=2Cc,r=n")


class FramerTests(SynchronousTestCase):
    """Top-level elements out of a stream fed in arbitrary pieces."""

    STREAM = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
              b" xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost'"
              b" version='1.0'><stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
              b"</stream:features><message from='a@localhost/r' type='chat'>"
              b"<body>xl 1 2</body></message></stream:stream>")

    def test_byte_by_byte(self) -> None:
        """Split anywhere, the same elements come out, then the close."""
        framer = StreamFramer()
        elements = []
        for i in range(len(self.STREAM)):
            elements += framer.feed(self.STREAM[i:i + 1])
        self.assertEqual(framer.header, {"id": "s1", "from": "localhost", "version": "1.0"})
        self.assertEqual([e.tag for e in elements],
                         [xmppload.TAG_FEATURES, xmppload.TAG_MESSAGE])
        self.assertEqual(elements[1].findtext(xmppload.TAG_BODY), "xl 1 2")
        self.assertTrue(framer.closed)

    def test_one_chunk_and_junk_after_close(self) -> None:
        """Everything at once works; bytes after the close are ignored."""
        framer = StreamFramer()
        self.assertEqual(len(framer.feed(self.STREAM + b"<junk/>")), 2)
        self.assertTrue(framer.closed)
        self.assertEqual(framer.feed(b"more"), [])

    def test_bad_xml(self) -> None:
        """Malformed XML inside the stream is an error, not a hang."""
        framer = StreamFramer()
        framer.feed(self.STREAM[:200])
        self.assertRaises(XmppError, framer.feed, b"<a></b>")


class ReportTests(SynchronousTestCase):
    """Percentiles, the command line defaults, the report and its summary."""

    def test_percentile(self) -> None:
        """Nearest rank; None for no samples."""
        values = [float(v) for v in range(1, 101)]
        self.assertEqual(xmppload.percentile(values, 50), 50.0)
        self.assertEqual(xmppload.percentile(values, 99), 99.0)
        self.assertEqual(xmppload.percentile([3.0], 99), 3.0)
        self.assertIsNone(xmppload.percentile([], 50))
        stats = xmppload.latency_stats([0.002, 0.001, 0.003])
        self.assertEqual(stats, {"latency_p50_ms": 2.0, "latency_p99_ms": 3.0,
                                 "latency_max_ms": 3.0})

    def test_default_users(self) -> None:
        """One user per worker/connection, two per pair, unless --users says."""
        self.assertEqual(xmppload.parse_args(["login", "--concurrency", "3"]).users, 3)
        self.assertEqual(xmppload.parse_args(["throughput", "--pairs", "5"]).users, 10)
        self.assertEqual(xmppload.parse_args(["idle", "--connections", "7"]).users, 7)
        self.assertEqual(xmppload.parse_args(["idle", "--users", "2"]).users, 2)

    def test_s2s_arguments(self) -> None:
        """s2s: one user per pair on each server, the peer's domain distinct."""
        args = xmppload.parse_args(["s2s", "--pairs", "4", "--domain", "a.test",
                                    "--peer-host", "127.0.0.9", "--peer-port", "5999",
                                    "--peer-domain", "b.test"])
        self.assertEqual(args.users, 4)
        self.assertEqual((args.peer_host, args.peer_port, args.peer_domain),
                         ("127.0.0.9", 5999, "b.test"))
        self.assertEqual(xmppload.SUCCESS_KEYS["s2s"], "delivered")
        self.assertIn("peer_domain", xmppload.MODE_PARAMS["s2s"])
        with open(os.devnull, "w") as null:
            stderr, sys.stderr = sys.stderr, null
            try:
                self.assertRaises(SystemExit, xmppload.parse_args,
                                  ["s2s", "--domain", "x.test", "--peer-domain", "x.test"])
            finally:
                sys.stderr = stderr

    def test_report_and_summary(self) -> None:
        """The JSON shape is fixed; the summary names every result."""
        args = xmppload.parse_args(["login", "--port", "1", "--label", "x", "--json"])
        report = xmppload.build_report(args, None, {"logins": 3, "failure_reasons": {}},
                                       2.0, False)
        self.assertEqual(set(report), {"mode", "server", "params", "results",
                                       "generator_cpu_s", "generator_cpu_pct", "wall_s"})
        self.assertEqual(report["server"], "x")
        self.assertEqual(report["params"]["concurrency"], 10)
        self.assertNotIn("password", report["params"])
        json.dumps(report)
        summary = xmppload.format_summary(report)
        self.assertIn("logins", summary)
        self.assertIn("generator_cpu_s", summary)
        self.assertTrue(xmppload.succeeded(report))


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgainstConvergenceTests(TestCase):
    """Every mode against a real convergence in a subprocess, STARTTLS on."""

    timeout = 60

    async def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="xmppload-test-"))
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)  # runs last
        self.data = self.root / "data"
        for i in range(1, USERS + 1):
            _out, err, code = await self.command(
                str(BIN / "convergencectl"), "--data-dir", str(self.data),
                "adduser", f"user{i}@localhost", "--password", PASSWORD)
            self.assertEqual(code, 0, err)
        rosters.write_convergence(self.data / "convergence.sqlite3", ROSTERS, USERS,
                                  "user", "localhost")
        self.port = free_port()
        self.http_port = free_port()
        self.start_server()
        deadline = time.monotonic() + 20
        for port in (self.port, self.http_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if self.server.poll() is not None or time.monotonic() > deadline:
                        self.fail(f"server did not start: {self.server_log()}")
                    await task.deferLater(reactor, 0.05)
        self.assertTrue((self.data / "tls" / "localhost.pem").exists())

    def start_server(self) -> None:
        """twistd -n convergence on free c2s and HTTP ports (XMPP over
        WebSocket there), SIP off; log to a file."""
        self.log = (self.root / "twistd.log").open("wb")
        self.addCleanup(self.log.close)
        self.server = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
             "--data-dir", str(self.data), "--config", str(self.config()),
             "--c2s-port", str(self.port),
             "--c2s-tls-port", "0", "--sip-port", "0", "--http-port", str(self.http_port)],
            cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_server)

    def config(self) -> Path:
        """The server's config: no flood limit in rooms (the muc mode sends
        as fast as the room takes it, as the bench's servers allow)."""
        path = self.root / "convergence.toml"
        path.write_text("[xmpp]\nmuc_occupant_rate = 0\n")
        return path

    def stop_server(self) -> None:
        """SIGTERM, then wait (kill if it will not go)."""
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(15)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()

    def server_log(self) -> str:
        """The end of the server's log, for failure messages."""
        self.log.flush()
        return (Path(self.log.name).read_bytes()[-2000:]).decode(errors="replace")

    async def command(self, *argv: str) -> tuple[bytes, bytes, int]:
        """Run a program to completion without blocking the reactor."""
        d = utils.getProcessOutputAndValue(argv[0], argv[1:], env=dict(os.environ), path=ROOT)
        d.addTimeout(45, reactor)
        out, err, code = await d
        return out, err, code

    async def load(self, mode: str, *options: str, expect_ok: bool = True,
                   script: Path = SCRIPT) -> dict[str, Any]:
        """Run xmppload (or imload) with --json against the server; return its report."""
        began = time.monotonic()
        out, err, code = await self.command(
            sys.executable, str(script), mode, "--host", "127.0.0.1", "--port", str(self.port),
            "--domain", "localhost", "--users-prefix", "user", "--password", PASSWORD,
            "--server-pid", str(self.server.pid), "--json", "--timeout", "5", *options)
        detail = f"stderr: {err.decode(errors='replace')[-2000:]}\nserver: {self.server_log()}"
        self.assertEqual(code, 0 if expect_ok else 1, detail)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 1, out)
        report = json.loads(lines[0])
        self.assertEqual(report["mode"], mode)
        self.assertEqual(report["server"], "convergence")
        self.assertEqual(report["params"]["server_pid"], self.server.pid)
        self.assertGreater(report["generator_cpu_s"], 0)
        self.assertGreater(report["generator_cpu_pct"], 0)
        self.assertLessEqual(report["wall_s"], time.monotonic() - began)
        self.assertIsNone(self.server.poll(), "server died")
        return report

    async def test_login_scram(self) -> None:
        """Two workers loop full SCRAM-SHA-1 logins over STARTTLS for 2 s."""
        report = await self.load("login", "--tls", "--mechanism", "SCRAM-SHA-1",
                                 "--concurrency", "2", "--duration", "2")
        results = report["results"]
        self.assertEqual(report["params"]["mechanism"], "SCRAM-SHA-1")
        self.assertTrue(report["params"]["tls"])
        self.assertGreater(results["logins"], 0)
        self.assertEqual(results["failures"], 0, results["failure_reasons"])
        self.assertGreater(results["logins_per_s"], 0)
        self.assertGreater(results["latency_p50_ms"], 0)
        self.assertLessEqual(results["latency_p50_ms"], results["latency_p99_ms"])
        self.assertEqual(results["unclean_closes"], 0)
        self.assertIsNotNone(results["server_cpu_s"])

    async def test_login_plain_and_wrong_password(self) -> None:
        """PLAIN logs in; a wrong password counts failures and ends on time."""
        report = await self.load("login", "--mechanism", "PLAIN", "--concurrency", "2",
                                 "--duration", "1.5")
        self.assertGreater(report["results"]["logins"], 0)
        self.assertEqual(report["results"]["failures"], 0)
        report = await self.load("login", "--password", "wrong", "--concurrency", "2",
                                 "--duration", "1", expect_ok=False)
        results = report["results"]
        self.assertEqual(results["logins"], 0)
        self.assertGreater(results["failures"], 0)
        self.assertEqual(set(results["failure_reasons"]), {"auth-failed"})
        self.assertIsNone(results["latency_p50_ms"])
        self.assertLess(report["wall_s"], 8)

    async def test_throughput(self) -> None:
        """Two pairs, window 10: messages delivered end to end, none lost."""
        report = await self.load("throughput", "--pairs", "2", "--window", "10",
                                 "--duration", "2", "--warmup", "0.5")
        results = report["results"]
        self.assertEqual(results["pairs"], 2)
        self.assertGreater(results["delivered"], 0)
        self.assertGreater(results["messages_per_s"], 0)
        self.assertEqual(results["lost"], 0)
        self.assertEqual(results["errors"], 0, results)
        self.assertEqual(results["sent"], results["received"])
        self.assertGreaterEqual(results["received"], results["delivered"])
        self.assertLessEqual(results["latency_p50_ms"], results["latency_p99_ms"])
        self.assertLessEqual(results["latency_p99_ms"], results["latency_max_ms"])

    async def test_login_over_websocket(self) -> None:
        """--ws: the same logins over XMPP over WebSocket (RFC 7395)."""
        url = f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"
        report = await self.load("login", "--ws", url, "--mechanism", "SCRAM-SHA-1",
                                 "--concurrency", "2", "--duration", "1.5")
        results = report["results"]
        self.assertEqual(report["params"]["ws"], url)
        self.assertFalse(report["params"]["tls"])
        self.assertGreater(results["logins"], 0)
        self.assertEqual(results["failures"], 0, results["failure_reasons"])
        self.assertEqual(results["unclean_closes"], 0)
        self.assertIn("over WebSocket (counted as secure)", self.server_log_all())

    async def test_throughput_over_websocket(self) -> None:
        """--ws: messages delivered end to end over WebSocket, none lost."""
        report = await self.load("throughput", "--ws",
                                 f"ws://127.0.0.1:{self.http_port}/xmpp-websocket",
                                 "--pairs", "2", "--window", "10", "--duration", "1.5",
                                 "--warmup", "0.5")
        results = report["results"]
        self.assertGreater(results["delivered"], 0)
        self.assertEqual(results["lost"], 0)
        self.assertEqual(results["errors"], 0, results)
        self.assertEqual(results["sent"], results["received"])

    def server_log_all(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    async def test_paced_throughput(self) -> None:
        """--rate: an open loop at the asked pace, whatever the server's speed."""
        report = await self.load("throughput", "--pairs", "2", "--window", "100",
                                 "--rate", "300", "--duration", "2", "--warmup", "0.5")
        results = report["results"]
        self.assertEqual(report["params"]["rate"], 300)
        self.assertEqual(results["offered_per_s"], 300)
        self.assertEqual(results["throttled"], 0)
        self.assertEqual(results["lost"], 0)
        self.assertGreater(results["messages_per_s"], 240)
        self.assertLess(results["messages_per_s"], 360)
        self.assertEqual(results["sent"], results["received"])

    async def test_throughput_with_stream_management(self) -> None:
        """--sm: both sides enable XEP-0198; senders' stanzas are
        acknowledged, receivers answer the server's requests; none lost."""
        report = await self.load("throughput", "--pairs", "2", "--window", "10",
                                 "--duration", "2", "--warmup", "0.5", "--sm")
        results = report["results"]
        self.assertTrue(report["params"]["sm"])
        self.assertEqual(results["lost"], 0)
        self.assertEqual(results["errors"], 0, results)
        self.assertGreater(results["delivered"], 0)
        self.assertGreater(results["sm_acked"], 0)
        self.assertGreater(results["sm_requests"], 0)

    async def test_idle_hibernating(self) -> None:
        """--sm --hibernate: the connections are reset, the server's RSS per
        hibernating session is reported."""
        report = await self.load("idle", "--connections", "20", "--users", str(USERS),
                                 "--concurrency", "10", "--sm", "--hibernate",
                                 "--hold", "1")
        results = report["results"]
        self.assertEqual(results["connections"], 20)
        self.assertEqual(results["failures"], 0, results["failure_reasons"])
        self.assertIsInstance(results["rss_per_hibernating_kib"], float)
        self.assertGreater(results["rss_hibernating_kib"], 0)

    async def test_idle(self) -> None:
        """Twenty authenticated connections held: the server's RSS delta is reported."""
        report = await self.load("idle", "--connections", "20", "--users", str(USERS),
                                 "--concurrency", "10")
        results = report["results"]
        self.assertEqual(results["connections"], 20)
        self.assertEqual(results["failures"], 0, results["failure_reasons"])
        self.assertGreater(results["rss_before_kib"], 0)
        self.assertIsInstance(results["rss_delta_kib"], int)
        self.assertIsInstance(results["rss_per_connection_kib"], float)
        self.assertEqual(results["dropped_while_held"], 0)
        self.assertEqual(results["closed_cleanly"], 20)
        self.assertGreater(results["setup_s"], 0)


    async def test_roster_login(self) -> None:
        """imload: logins of users whose five contacts are online; every
        login gets its full roster and the contacts' presence."""
        report = await self.load("roster_login", "--concurrency", "2", "--contacts", "5",
                                 "--duration", "1.5", script=IMLOAD)
        results = report["results"]
        self.assertEqual(results["failures"], 0, results["failure_reasons"])
        self.assertGreater(results["logins"], 0)
        # per login: 5 probe answers in, available + unavailable to 5 contacts
        self.assertGreaterEqual(results["presence_delivered"], 5 * results["logins"])
        self.assertGreater(results["presence_per_s"], 0)

    async def test_muc(self) -> None:
        """mucload: five occupants in one room, two sending; every message
        reaches all five, none is refused."""
        report = await self.load("muc", "--occupants", "5", "--senders", "2", "--window", "3",
                                 "--duration", "1.5", "--warmup", "0.3", script=MUCLOAD)
        results = report["results"]
        self.assertEqual((results["occupants"], results["senders"]), (5, 2))
        self.assertEqual(results["errors"], 0, results)
        self.assertGreater(results["delivered"], 0)
        # one copy per occupant of what was sent (± the window at the edges)
        sent = results["sent_per_s"] * results["elapsed_s"]
        self.assertLessEqual(abs(results["delivered"] / 5 - sent), 2 * 3 + 1, results)
        self.assertGreater(results["fanout_p50_ms"], 0)
        self.assertLessEqual(results["fanout_p50_ms"], results["fanout_p99_ms"])
        self.assertEqual(report["params"]["occupants"], 5)

    async def test_offline(self) -> None:
        """imload: messages to an offline user, all delivered at login, in order."""
        report = await self.load("offline", "--messages", "50", script=IMLOAD)
        results = report["results"]
        self.assertEqual(results["messages"], 50)
        self.assertEqual((results["missing"], results["out_of_order"],
                          results["errors_to_sender"]), (0, 0, 0))
        self.assertGreater(results["stored_per_s"], 0)
        self.assertGreater(results["delivered_per_s"], 0)


class RosterTopologyTests(SynchronousTestCase):
    def test_hub_and_ring(self) -> None:
        hub = rosters.parse("hub:2:3", 5)
        self.assertEqual(hub, {1: [3, 4, 5], 2: [3, 4, 5], 3: [1, 2], 4: [1, 2], 5: [1, 2]})
        ring = rosters.parse("ring:4", 10)
        self.assertEqual(ring[1], [2, 3, 9, 10])
        self.assertTrue(all(len(peers) == 4 for peers in ring.values()))
        self.assertTrue(all(a in ring[b] for a, peers in ring.items() for b in peers))
        for bad in ("hub:5:5", "ring:3", "ring:10", "star:1"):
            self.assertRaises(ValueError, rosters.parse, bad, 9)

    def test_convergence_rows_are_what_the_store_reads(self) -> None:
        from convergence.store.sqlite import SqliteAccountStore
        from convergence.store.sqlite_im import SqliteImStore

        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        SqliteAccountStore(path).close()
        self.assertEqual(rosters.write_convergence(path, "hub:1:2", 3, "u", "x.test"), 4)
        store = SqliteImStore(path)
        self.addCleanup(store.close)
        version, items = store.roster("u1", "x.test")
        self.assertEqual(version, 1)
        self.assertEqual([(i.contact, i.subscription, i.listed) for i in items],
                         [("u2@x.test", "both", True), ("u3@x.test", "both", True)])

    def test_prosody_files(self) -> None:
        data = Path(self.mktemp())
        self.assertEqual(rosters.write_prosody(data, "hub:1:2", 3, "u", "x.test",
                                               lambda n: n.replace(".", "%2e")), 4)
        text = (data / "x%2etest" / "roster" / "u1.dat").read_text()
        self.assertTrue(text.startswith("return {\n\t[false] = {"), text)
        self.assertIn('["u2@x.test"] = { ["subscription"] = "both"; ["groups"] = {}; };', text)
