"""
The real launcher: `twistd -n convergence` in a subprocess, the plugin in a
normal (non-editable) install, and one-line configuration errors.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_when_listening(test: Any, proc: subprocess.Popen, port: int,
                           deadline: float) -> socket.socket:
    """A connection to twistd's C{port} once it listens (the listeners open
    one after another); the test fails if twistd exits or time runs out."""
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                test.fail("server did not start: "
                          + proc.stderr.read().decode(errors="replace"))
            time.sleep(0.2)


def read_until(sock: socket.socket, needle: bytes, limit: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while needle not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class TwistdTests(SynchronousTestCase):
    def twistd(self, *args: str, cwd: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "convergence", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def test_starts_on_defaults_and_serves_c2s(self) -> None:
        """twistd creates the data dir, certificate and database, then serves
        XMPP (STARTTLS, and direct TLS on --c2s-tls-port) and SIP."""
        work = Path(self.mktemp())
        work.mkdir()
        port = free_port()
        tls_port = free_port()
        sip_port = free_port()
        http_port = free_port()
        s2s_port = free_port()
        proc = self.twistd("--c2s-port", str(port), "--c2s-tls-port", str(tls_port),
                           "--sip-port", str(sip_port), "--s2s-port", str(s2s_port),
                           "--http-port", str(http_port), cwd=work)
        try:
            deadline = time.monotonic() + 30
            sock = connect_when_listening(self, proc, port, deadline)
            with connect_when_listening(self, proc, s2s_port, deadline) as s2s:
                s2s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
                            b" xmlns:stream='http://etherx.jabber.org/streams'"
                            b" xmlns:db='jabber:server:dialback'"
                            b" to='localhost' version='1.0'>")
                # federation listens, TLS first (the default s2s policy)
                self.assertIn(b"<required/></starttls>",
                              read_until(s2s, b"</stream:features>"))
            with sock:
                sock.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                             b" xmlns:stream='http://etherx.jabber.org/streams'"
                             b" to='localhost' version='1.0'>")
                data = read_until(sock, b"</stream:features>")
            self.assertIn(b"<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/>", data)
            pem_path = work / "convergence-data" / "tls" / "localhost.pem"
            context = ssl.create_default_context(cafile=str(pem_path))
            context.set_alpn_protocols(["xmpp-client"])
            with context.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), 10),
                                     server_hostname="localhost") as tls:
                self.assertEqual(tls.selected_alpn_protocol(), "xmpp-client")
                tls.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                            b" xmlns:stream='http://etherx.jabber.org/streams'"
                            b" to='localhost' version='1.0'>")
                data = read_until(tls, b"</stream:features>")
            self.assertNotIn(b"starttls", data)
            self.assertIn(b"<mechanism>PLAIN</mechanism>", data)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", 0))
                udp.settimeout(10)
                me = udp.getsockname()[1]
                udp.sendto((
                    f"OPTIONS sip:127.0.0.1:{sip_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKtwistd\r\n"
                    "From: <sip:t@localhost>;tag=1\r\nTo: <sip:localhost>\r\n"
                    "Call-ID: twistd-test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", sip_port))
                answer = udp.recv(65536)
            self.assertTrue(answer.startswith(b"SIP/2.0 200 OK"), answer)
            data_dir = work / "convergence-data"
            self.assertTrue((data_dir / "convergence.sqlite3").exists())
            pem = (data_dir / "tls" / "localhost.pem").read_bytes()
            self.assertIn(b"BEGIN CERTIFICATE", pem)
            self.assertEqual((data_dir / "tls" / "localhost.pem").stat().st_mode & 0o777, 0o600)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_bad_option_is_one_line(self) -> None:
        """A bad value stops twistd with one line naming the key."""
        work = Path(self.mktemp())
        work.mkdir()
        proc = self.twistd("--c2s-port", "99999", cwd=work)
        out, err = proc.communicate(timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        lines = err.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("listen.c2s_port", lines[0])
        self.assertFalse((work / "convergence-data").exists())

    def test_bad_config_file_is_one_line(self) -> None:
        """A config file with an unknown key stops twistd naming the key."""
        work = Path(self.mktemp())
        work.mkdir()
        (work / "c.toml").write_text("[xmpp]\nmax_stanza_size = 'big'\n")
        proc = self.twistd("--config", "c.toml", cwd=work)
        out, err = proc.communicate(timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertEqual(len(err.decode().strip().splitlines()), 1, err)
        self.assertIn("xmpp.max_stanza_size", err.decode())

    def test_help_lists_plugin_in_editable_install(self) -> None:
        """twistd --help lists convergence in the development (editable) install."""
        out = subprocess.run([str(BIN / "twistd"), "--help"], capture_output=True,
                             timeout=60, cwd="/").stdout
        self.assertIn(b"convergence", out)

    def test_plugin_found_in_normal_install(self) -> None:
        """After a plain (non-editable) `pip install .` twistd finds the plugin."""
        target = Path(self.mktemp()).resolve()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
             "--target", str(target), str(ROOT)],
            check=True, capture_output=True, timeout=300,
        )
        self.assertTrue((target / "twisted" / "plugins" / "convergence_plugin.py").exists())
        self.assertFalse((target / "twisted" / "__init__.py").exists())
        site = sysconfig.get_paths()["purelib"]
        # -S: no .pth processing, so the editable checkout is not on sys.path.
        env = dict(os.environ, PYTHONPATH=f"{target}{os.pathsep}{site}")
        out = subprocess.run(
            [sys.executable, "-S", "-c",
             "import sys; sys.argv = ['twistd', '--help'];"
             "from twisted.scripts.twistd import run; run()"],
            capture_output=True, timeout=60, cwd="/", env=env,
        )
        self.assertIn(b"convergence", out.stdout, out.stderr)
        where = subprocess.run(
            [sys.executable, "-S", "-c", "import convergence; print(convergence.__file__)"],
            capture_output=True, timeout=60, cwd="/", env=env,
        ).stdout.decode()
        self.assertTrue(where.startswith(str(target)), where)


class ShutdownTests(SynchronousTestCase):
    """SIGTERM under twistd, and the s2s port listening."""

    def test_sigterm_sends_system_shutdown(self) -> None:
        """An open stream gets system-shutdown and the process ends;
        the s2s port listens and the log says so."""
        work = Path(self.mktemp())
        work.mkdir()
        port = free_port()
        s2s_port = free_port()
        proc = TwistdTests.twistd(
            self, "--c2s-port", str(port), "--c2s-tls-port", str(free_port()),
            "--sip-port", "0", "--http-port", "0",
            "--s2s-port", str(s2s_port), cwd=work)
        try:
            deadline = time.monotonic() + 30
            sock = connect_when_listening(self, proc, port, deadline)
            with connect_when_listening(self, proc, s2s_port, deadline) as s2s:
                s2s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
                            b" xmlns:stream='http://etherx.jabber.org/streams'"
                            b" xmlns:db='jabber:server:dialback'"
                            b" to='localhost' version='1.0'>")
                # federation listens, TLS first (the default s2s policy)
                self.assertIn(b"<required/></starttls>",
                              read_until(s2s, b"</stream:features>"))
            with sock:
                sock.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                             b" xmlns:stream='http://etherx.jabber.org/streams'"
                             b" to='localhost' version='1.0'>")
                read_until(sock, b"</stream:features>")
                proc.send_signal(signal.SIGTERM)
                data = read_until(sock, b"</stream:stream>")
            self.assertIn(b"<system-shutdown", data)
            # twistd ends by re-raising the signal that stopped it.
            self.assertIn(proc.wait(15), (0, -signal.SIGTERM))
            log = proc.stdout.read().decode(errors="replace")
            self.assertIn(f"s2s {s2s_port}", log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_help_describes_s2s_port(self) -> None:
        """twistd convergence --help describes --s2s-port."""
        out = subprocess.run([str(BIN / "twistd"), "convergence", "--help"],
                             capture_output=True, timeout=60, cwd="/").stdout
        text = b" ".join(out.split())
        self.assertIn(b"XMPP server-to-server port, federation (default 5269",
                      text)
