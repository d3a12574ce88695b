"""
vCards and HTTP file upload with a real client library against a real
``twistd -n convergence``: slixmpp's xep_0054 and xep_0363 over STARTTLS on
loopback, the file PUT and fetched back over the HTTP listener.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_service import BIN, free_port

SCRIPT = Path(__file__).with_name("slixmpp_vcard_upload.py")
MAX_FILE_SIZE = 200000


def wait_for_ports(ports: list[int], proc: subprocess.Popen, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("twistd exited: " + proc.stderr.read().decode(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", pending[0]), timeout=1).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.1)
    if pending:
        raise AssertionError(f"nothing listens on {pending}")


class SlixmppVCardUploadTests(SynchronousTestCase):
    #: the HTTPS port's command-line option, if the run serves HTTPS
    https = False

    def setUp(self) -> None:
        self.work = Path(self.mktemp())
        self.work.mkdir(parents=True)
        self.data = self.work / "convergence-data"
        for user, password in (("alice", "wonderland"), ("bob", "builder"),
                               ("carol", "carol-pw")):
            subprocess.run([str(BIN / "convergencectl"), "adduser", f"{user}@localhost",
                            "--password", password], cwd=self.work, check=True,
                           capture_output=True, timeout=60)
        # a body limit far below the file: the upload route must lift it
        (self.work / "convergence.toml").write_text(
            f"[http]\nmax_body_size = 4096\n"
            f"[http_upload]\nmax_file_size = {MAX_FILE_SIZE}\n")
        self.c2s, self.http_port = free_port(), free_port()
        self.https_port = free_port() if self.https else 0
        self.proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
             "--config", "convergence.toml", "--c2s-port", str(self.c2s),
             "--c2s-tls-port", str(free_port()),
             "--sip-port", str(free_port()), "--http-port", str(self.http_port),
             "--https-port", str(self.https_port)],
            cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self._stop)
        wait_for_ports([self.c2s, self.http_port, *([self.https_port] if self.https else [])],
                       self.proc)

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc.stderr.close()

    def test_vcards_and_upload(self) -> None:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(self.c2s),
             str(self.data / "tls" / "localhost.pem")],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        # XEP-0054
        self.assertEqual(result["own_before"], {"type": "result", "children": 0})
        self.assertEqual(result["own_fn"], "Alice Liddell")
        self.assertEqual(result["bob_sees"], {
            "from": "alice@localhost", "fn": "Alice Liddell", "nick": ["alice"],
            "desc": "Curiouser and curiouser"})
        self.assertEqual(result["carol"], "service-unavailable")
        self.assertEqual(result["bob_sets_alice"], "forbidden")
        self.assertTrue(result["bob_alive"])
        # XEP-0363
        self.assertEqual(result["service"], "upload.localhost")
        self.assertEqual(result["max_file_size"], str(MAX_FILE_SIZE))
        put, get = result["urls"]
        base = (f"https://localhost:{self.https_port}/upload/" if self.https
                else f"http://127.0.0.1:{self.http_port}/upload/")
        self.assertTrue(get.startswith(base) and get.endswith("/tr%C3%A8s%20cool.bin"), get)
        self.assertTrue(put.startswith(get + "?"), put)
        self.assertEqual(result["put"], 201)
        size = 256 * 400 + len("très cool ✓".encode())
        self.assertEqual(result["get"], {
            "status": 200, "same": True, "size": size, "type": "application/x-test",
            "length": str(size), "nosniff": "nosniff",
            "disposition": "attachment; filename*=UTF-8''tr%C3%A8s%20cool.bin"})
        self.assertEqual(result["put_again"], 409)
        self.assertEqual(result["too_large"], {"condition": "not-acceptable", "type": "modify",
                                               "max": str(MAX_FILE_SIZE)})
        stored = list((self.data / "http_upload" / "files").iterdir())
        self.assertEqual([p.name for p in stored], [get.split("/")[-2]])
        self.assertEqual(stored[0].stat().st_size, size)


class SlixmppHttpsUploadTests(SlixmppVCardUploadTests):
    """The same run with listen.https_port: the slots are https:// URLs
    on the first domain, the PUT and the GET go over TLS, verified by the
    client against the server's certificate; plain HTTP clients that do
    not trust it are refused in the handshake."""

    https = True

    def test_untrusted_client_is_refused(self) -> None:
        import ssl
        import urllib.error
        import urllib.request

        context = ssl.create_default_context()  # the system's CAs only
        with self.assertRaises(urllib.error.URLError) as caught:
            urllib.request.urlopen(f"https://localhost:{self.https_port}/upload/x/y",
                                   timeout=10, context=context)
        self.assertIsInstance(caught.exception.reason, ssl.SSLCertVerificationError)
        trusted = ssl.create_default_context(
            cafile=str(self.data / "tls" / "localhost.pem"))
        with self.assertRaises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"https://localhost:{self.https_port}/upload/x/y",
                                   timeout=10, context=trusted)
        self.assertEqual(missing.exception.code, 404)
