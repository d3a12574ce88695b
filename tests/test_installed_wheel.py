"""
The server as a user installs it: the wheel built from this checkout, put
into a fresh virtual environment (no editable install, no system site
packages), started with that environment's ``twistd -n convergence`` from
a directory outside the checkout.  A smoke over real sockets: an account
made with ``convergencectl``, an XMPP login (slixmpp, over STARTTLS),
``GET /selfhelp/`` (the page is package data), SIP OPTIONS over UDP.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.test_service import free_port

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = Path(__file__).with_name("slixmpp_customer.py")
#: every file outside Python modules that the server or an app reads
PACKAGE_DATA = ("apps/selfhelp/static/index.html", "apps/selfhelp/static/selfhelp.js",
                "apps/selfhelp/static/vendor/xmpp-0.14.0.min.js",
                "apps/selfhelp/static/vendor/xmpp-0.14.0.min.js.LICENSE.txt",
                "apps/selfhelp/static/vendor/sip-0.21.2.min.js",
                "apps/selfhelp/static/vendor/sip-0.21.2.min.js.LICENSE.txt")


def run(*args: str, cwd: Path, timeout: float = 600) -> str:
    """Run a command; fail with its output if it fails."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done.stdout


def wait_for_port(port: int, proc: subprocess.Popen, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server did not start: " + proc.stderr.read())
            time.sleep(0.2)


def sip_options(port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)
        me = udp.getsockname()[1]
        udp.sendto((
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKwheel\r\n"
            "From: <sip:t@localhost>;tag=1\r\nTo: <sip:localhost>\r\n"
            "Call-ID: wheel-test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
        return udp.recv(65536)


class InstalledWheelTests(SynchronousTestCase):
    def test_wheel_in_fresh_venv(self) -> None:
        """Built, installed and run from a wheel: XMPP login, the selfhelp
        page and SIP OPTIONS all answer."""
        base = Path(self.mktemp()).resolve()
        wheels, env_dir, work = base / "wheels", base / "venv", base / "work"
        work.mkdir(parents=True)
        # From a copy without build/ and *.egg-info (a stale build/lib
        # would hide a file missing from the package data): the sdist
        # first, then the wheel from the sdist, as pip builds one for a
        # user installing from a source release.
        source = base / "source"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__"))
        venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
        python = str(env_dir / "bin" / "python")
        run(python, "-m", "pip", "install", "-q", "setuptools>=68", "wheel", cwd=work)
        sdist = base / "sdist" / run(
            python, "-c", "from setuptools import build_meta;"
            f"print(build_meta.build_sdist({str(base / 'sdist')!r}))", cwd=source
        ).split()[-1]
        with tarfile.open(sdist) as archive:
            names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        for data_file in PACKAGE_DATA:
            self.assertIn(data_file, names)
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
            str(sdist), cwd=work)
        [wheel] = wheels.glob("convergence-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            self.assertLessEqual(set(PACKAGE_DATA), set(archive.namelist()))
        bin_dir = env_dir / "bin"
        run(python, "-m", "pip", "install", "-q", str(wheel), cwd=work)
        where = run(str(bin_dir / "python"), "-c",
                    "import convergence, apps; print(convergence.__file__, apps.__file__)",
                    cwd=work)
        for path in where.split():
            self.assertTrue(path.startswith(str(env_dir)), where)

        run(str(bin_dir / "convergencectl"), "adduser", "wheel@localhost",
            "--password", "wheel-secret", cwd=work)
        c2s, c2s_tls, sip, http = free_port(), free_port(), free_port(), free_port()
        server = subprocess.Popen(
            [str(bin_dir / "twistd"), "-n", "--pidfile=", "convergence", "--s2s-port", "0",
             "--c2s-port", str(c2s), "--c2s-tls-port", str(c2s_tls),
             "--sip-port", str(sip), "--http-port", str(http)],
            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_port(c2s, server)
            wait_for_port(http, server)
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/selfhelp/",
                                        timeout=10) as reply:
                self.assertEqual(reply.status, 200)
                page = reply.read().decode()
            self.assertEqual(page, (ROOT / "apps" / "selfhelp" / "static"
                                    / "index.html").read_text())
            for script in ("selfhelp.js", "vendor/xmpp-0.14.0.min.js",
                           "vendor/sip-0.21.2.min.js"):
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/selfhelp/{script}",
                                            timeout=10) as reply:
                    self.assertEqual(reply.read(), (ROOT / "apps" / "selfhelp" / "static"
                                                    / script).read_bytes(), script)
            self.assertTrue(sip_options(sip).startswith(b"SIP/2.0 200 OK"))
            self.assert_xmpp_login(c2s, work / "convergence-data" / "tls" / "localhost.pem")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log = server.stdout.read() + server.stderr.read()
            server.stdout.close()
            server.stderr.close()
        self.assertNotIn("Traceback", log)

    def assert_xmpp_login(self, port: int, cafile: Path) -> None:
        """slixmpp logs in as the account (STARTTLS, SASL, bind, ping)."""
        client = subprocess.Popen(
            [sys.executable, str(CUSTOMER), str(port), str(cafile),
             "wheel@localhost", "wheel-secret"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = client.stdout.readline()
            self.assertTrue(line, client.stderr.read() if client.poll() is not None else "")
            event = json.loads(line)
            self.assertEqual(event["event"], "ready")
            self.assertTrue(event["jid"].startswith("wheel@localhost/"), event)
            client.stdin.write("quit\n")
            client.stdin.flush()
            client.wait(20)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
            for stream in (client.stdin, client.stdout, client.stderr):
                stream.close()
