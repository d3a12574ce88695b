"""
Integration: a real ``twistd -n convergence`` with C{[metrics]} on, scraped
over real sockets and parsed with prometheus_client's parsers; between two
scrapes a slixmpp login (with a message stored offline), a failed SASL
PLAIN, a SIP OPTIONS over UDP and HTTP GETs move the counters.  The same
run logs in JSON: every line of its output parses and carries the event's
fields.  Also: the endpoint on the HTTP listener refuses scrapes without
the bearer token, and a refused placement stops twistd with a clear error.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from tests.test_offline_durable import wait_for_port
from tests.test_service import BIN, free_port

SLIXMPP = Path(__file__).with_name("slixmpp_offline.py")
TOKEN = "metrics-" + "7" * 24
STREAM = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
          " xmlns:stream='http://etherx.jabber.org/streams' to='localhost'"
          " version='1.0'>")


def scrape(url: str, **headers: str) -> tuple[str, str]:
    """(content type, body) of a GET."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def total(metrics: dict, name: str) -> float:
    return sum(v for (n, _), v in metrics.items() if n == name)


def read_until(sock: socket.socket, needle: bytes, limit: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while needle not in data:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk or time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} in {data!r}")
        data += chunk
    return data


class TwistdMetricsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(self.mktemp()).resolve()
        self.work.mkdir(parents=True)
        self.data = self.work / "convergence-data"
        self.ports = {name: free_port() for name in ("c2s", "sip", "http", "metrics")}

    def start(self, metrics: str, log: str = 'format = "json"') -> subprocess.Popen:
        config = self.work / "convergence.toml"
        p = self.ports
        config.write_text(f"""
[listen]
c2s_port = {p["c2s"]}
c2s_tls_port = 0
sip_port = {p["sip"]}
http_port = {p["http"]}

[xmpp]
require_tls = false
allow_plain_without_tls = true
auth_failure_delay = 0

[sip]
t1 = 0.05
t2 = 0.4

[metrics]
enabled = true
reactor_lag_interval = 0.1
{metrics}

[log]
{log}
""")
        self.out = (self.work / "stdout").open("wb")
        self.err = (self.work / "stderr").open("wb")
        proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0", "--config", str(config)],
            cwd=self.work, stdout=self.out, stderr=self.err)
        self.addCleanup(self._stop, proc)
        wait_for_port(p["http"], proc)
        return proc

    def _stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(15)
        self.out.close()
        self.err.close()

    def add_users(self) -> None:
        for user, password in (("alice", "wonderland"), ("carol", "carol-pw")):
            subprocess.run([str(BIN / "convergencectl"), "adduser", f"{user}@localhost",
                            "--password", password], cwd=self.work, check=True,
                           capture_output=True, timeout=60)

    # The traffic between the scrapes
    def slixmpp_login(self) -> None:
        done = subprocess.run(
            [sys.executable, str(SLIXMPP), "send", str(self.ports["c2s"]),
             str(self.data / "tls" / "localhost.pem"), "alice@localhost", "wonderland",
             "carol@localhost", "stored while you were out"],
            capture_output=True, text=True, timeout=90)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        self.assertEqual(json.loads(done.stdout.strip().splitlines()[-1])["errors"], [])

    def failed_plain(self) -> None:
        with socket.create_connection(("127.0.0.1", self.ports["c2s"]), timeout=10) as s:
            s.sendall(STREAM.encode())
            read_until(s, b"</stream:features>")
            token = base64.b64encode(b"\0alice\0not-her-password").decode()
            s.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                      f"{token}</auth>".encode())
            read_until(s, b"not-authorized")

    def sip_options(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(10)
            port = s.getsockname()[1]
            s.sendto((
                f"OPTIONS sip:localhost SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:romeo@localhost>;tag=m1\r\n"
                "To: <sip:localhost>\r\n"
                f"Call-ID: {secrets.token_hex(8)}\r\nCSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", self.ports["sip"]))
            answer, _ = s.recvfrom(65536)
        self.assertTrue(answer.startswith(b"SIP/2.0 200"), answer[:200])

    def http_gets(self) -> None:
        base = f"http://127.0.0.1:{self.ports['http']}"
        with urllib.request.urlopen(base + "/selfhelp/", timeout=10) as response:
            self.assertEqual(response.status, 200)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/no-such-place", timeout=10)
        self.assertEqual(e.exception.code, 404)

    def test_counters_move_with_traffic(self) -> None:
        """Two scrapes of the loopback listener; the counters moved with
        the traffic between them; OpenMetrics on request; JSON log lines."""
        self.add_users()
        proc = self.start(f'listen = "127.0.0.1:{self.ports["metrics"]}"')
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        wait_for_port(self.ports["metrics"], proc)
        content_type, text = scrape(url)
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"), content_type)
        before = parse(text)

        self.slixmpp_login()
        self.failed_plain()
        self.sip_options()
        self.http_gets()

        after = parse(scrape(url)[1])

        def moved(name: str, **labels: str) -> float:
            return get(after, name, **labels) - get(before, name, **labels)

        # slixmpp's own connection attempts, and the raw client's
        self.assertGreaterEqual(moved("convergence_connections_accepted_total",
                                      protocol="c2s", transport="tcp"), 2)
        self.assertEqual(total(after, "convergence_xmpp_logins_total")
                         - total(before, "convergence_xmpp_logins_total"), 1)
        self.assertEqual(moved("convergence_xmpp_sasl_failures_total",
                               mechanism="PLAIN", condition="not-authorized"), 1)
        self.assertGreaterEqual(moved("convergence_xmpp_stanzas_routed_total",
                                      kind="message"), 1)
        self.assertGreaterEqual(moved("convergence_xmpp_stanzas_routed_total",
                                      kind="iq"), 2)  # roster get, the ping
        self.assertEqual(moved("convergence_xmpp_offline_stored_total"), 1)
        self.assertEqual(get(after, "convergence_xmpp_offline_messages"), 1)
        self.assertEqual(moved("convergence_sip_messages_received_total", transport="udp"), 1)
        self.assertEqual(moved("convergence_http_responses_total", code="200"), 1)
        self.assertEqual(moved("convergence_http_responses_total", code="404"), 1)
        self.assertGreaterEqual(moved("convergence_connections_accepted_total",
                                      protocol="http", transport="tcp"), 1)
        self.assertGreater(moved("convergence_reactor_lag_seconds_count"), 0)
        self.assertGreater(get(after, "process_resident_memory_bytes"), 0)

        # the OPTIONS transaction ends with Timer J (64 x T1 = 3.2 s)
        deadline = time.monotonic() + 20
        ended = ("convergence_sip_transactions_total",
                 (("method", "OPTIONS"), ("side", "server"), ("status_class", "2xx")))
        while time.monotonic() < deadline:
            latest = parse(scrape(url)[1])
            if latest.get(ended):
                break
            time.sleep(0.2)
        self.assertEqual(latest.get(ended), 1)

        content_type, om = scrape(url, Accept="application/openmetrics-text; version=1.0.0")
        self.assertTrue(content_type.startswith("application/openmetrics-text"), content_type)
        families = {f.name: f for f in parse_openmetrics(om)}
        self.assertEqual(families["convergence_xmpp_logins"].type, "counter")
        self.assertEqual(families["convergence_reactor_lag_seconds"].type, "histogram")

        # JSON logs: one object per line, with the event's fields
        proc.send_signal(signal.SIGTERM)
        # twistd ends by the signal it stopped for, after a clean shutdown
        self.assertIn(proc.wait(30), (0, -signal.SIGTERM))
        lines = (self.work / "stdout").read_text().splitlines()
        self.assertGreater(len(lines), 5)
        events = [json.loads(line) for line in lines]
        for event in events:
            for key in ("log_namespace", "log_level", "log_time", "level", "text"):
                self.assertIn(key, event)
        logins = [e for e in events if e.get("log_format", "").startswith(
            "{jid} authenticated")]
        self.assertEqual(len(logins), 1)
        self.assertEqual(logins[0]["jid"], "alice@localhost")
        # the default level is info: no debug events (per request, per stanza)
        self.assertEqual([e["text"] for e in events if e["level"] == "debug"], [])

    def test_http_listener_needs_the_token(self) -> None:
        """On the HTTP listener the endpoint answers 401 without the
        bearer token, the metrics with it; nothing on the default port."""
        self.start(f'listen = "http"\ntoken = "{TOKEN}"', log="")
        url = f"http://127.0.0.1:{self.ports['http']}/metrics"
        for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1]},
                        {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}):
            with self.assertRaises(urllib.error.HTTPError) as e:
                scrape(url, **headers)
            self.assertEqual(e.exception.code, 401, headers)
            self.assertEqual(e.exception.headers["WWW-Authenticate"], 'Bearer realm="metrics"')
        _, text = scrape(url, Authorization="Bearer " + TOKEN)
        metrics = parse(text)
        self.assertEqual(get(metrics, "convergence_build_info", version="0.1.0"), 1)
        # the refusals above went through the HTTP site, and were counted
        self.assertGreaterEqual(get(metrics, "convergence_http_responses_total", code="401"), 3)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.ports["metrics"]), timeout=2).close()

    def test_refused_placement(self) -> None:
        """The metrics on the HTTP listener without a token: twistd does
        not start, and says why."""
        config = self.work / "bad.toml"
        config.write_text(f'[listen]\nhttp_port = {self.ports["http"]}\n'
                          '[metrics]\nenabled = true\nlisten = "http"\n')
        done = subprocess.run(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0", "--config", str(config)],
            cwd=self.work, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn('convergence: configuration error: metrics.token: required when'
                      ' metrics.listen = "http"', done.stderr + done.stdout)
