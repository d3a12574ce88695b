"""
Interoperability: convergence (a.test) and Debian's Prosody (p.test)
federating over STARTTLS + dialback on loopback, with a slixmpp user on
each (tests/slixmpp_s2s.py): messages both ways.

Prosody has no static route map: it finds a.test through DNS, so it is
given a hosts file (libunbound's C{hoststxt}) naming a.test's loopback
address, and convergence listens on the default s2s port 5269 there
(Prosody's fallback when there is no SRV record).  convergence finds
p.test through C{[s2s.hosts]}.  `make test` installs prosody when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bench.servers import lua_string, split_pem
from convergence.tls import generate_self_signed
from tests.test_s2s_twistd import SCENARIO, Instance, free_port

#: seconds Prosody gets to start listening
START_LIMIT = 30.0


def address_with_free_5269() -> str:
    """A loopback address on which port 5269 can be bound."""
    for n in range(20, 60):
        address = f"127.0.0.{n}"
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, 5269))
                return address
            except OSError:
                continue
    raise AssertionError("no loopback address with port 5269 free")


class Prosody:
    """Prosody serving p.test on C{address}, in the foreground."""

    def __init__(self, work: Path, address: str, hosts: dict[str, str]) -> None:
        self.work = work / "prosody"
        self.work.mkdir(parents=True)
        self.address = address
        self.c2s_port = free_port(address)
        self.s2s_port = free_port(address)
        self.log = self.work / "prosody.log"
        cert, key = split_pem(generate_self_signed(["p.test"]))
        self.cafile = self.work / "p.test.crt"
        self.cafile.write_bytes(cert)
        key_file = self.work / "p.test.key"
        key_file.write_bytes(key)
        hosts_file = self.work / "hosts"
        hosts_file.write_text("".join(f"{ip} {name}\n" for name, ip in hosts.items()))
        (self.work / "data").mkdir()
        self.config = self.work / "prosody.cfg.lua"
        self.config.write_text("\n".join([
            "run_as_root = true",
            f"pidfile = {lua_string(self.work / 'prosody.pid')}",
            f"data_path = {lua_string(self.work / 'data')}",
            f"certificates = {lua_string(self.work)}",
            "plugin_paths = { }",
            f"interfaces = {{ {lua_string(address)} }}",
            f"local_interfaces = {{ {lua_string(address)} }}",
            f"c2s_ports = {{ {self.c2s_port} }}",
            "c2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            f"s2s_ports = {{ {self.s2s_port} }}",
            "s2s_direct_tls_ports = { }",
            'modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco";'
            ' "ping"; "posix" }',
            'authentication = "internal_hashed"',
            'storage = "internal"',
            "s2s_require_encryption = true",
            "s2s_secure_auth = false",
            f"unbound = {{ hoststxt = {lua_string(hosts_file)} }}",
            f"log = {{ info = {lua_string(self.log)} }}",
            f"ssl = {{ certificate = {lua_string(self.cafile)}; key = {lua_string(key_file)} }}",
            'VirtualHost "p.test"',
            "",
        ]))
        self.proc: subprocess.Popen | None = None

    def add_user(self, user: str) -> None:
        subprocess.run(["prosodyctl", "--config", str(self.config), "register", user,
                        "p.test", "secret"], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.proc = subprocess.Popen(["prosody", "--config", str(self.config), "-F"],
                                     cwd=self.work, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + START_LIMIT
        for port in (self.c2s_port, self.s2s_port):
            while True:
                try:
                    socket.create_connection((self.address, port), timeout=1).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError("prosody did not start: " + self.log_text())
                    time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ProsodyInteropTests(SynchronousTestCase):
    timeout = 120

    def setUp(self) -> None:
        if shutil.which("prosody") is None:
            self.fail("prosody is not installed: `make test` installs it"
                      " (apt-get install prosody)")
        work = Path(self.mktemp()).resolve()
        work.mkdir()
        self.a = Instance(work, "a.test", address_with_free_5269())
        self.a.s2s_port = 5269
        self.prosody = Prosody(work, "127.0.0.6", {"a.test": self.a.address})
        self.a.write_config([], extra=f'"p.test" = "{self.prosody.address}:'
                                      f'{self.prosody.s2s_port}"')
        self.a.add_users("alice")
        self.prosody.add_user("carol")
        self.addCleanup(self.prosody.stop)
        self.prosody.start()
        self.addCleanup(self.a.stop)
        self.a.start()
        self.a.wait_listening()

    def test_messages_both_ways_over_dialback(self) -> None:
        args = [sys.executable, str(SCENARIO), "messages",
                "alice@a.test/slix", self.a.address, str(self.a.c2s_port), str(self.a.cafile),
                "carol@p.test/slix", self.prosody.address, str(self.prosody.c2s_port),
                str(self.prosody.cafile)]
        env = dict(os.environ, PYTHONPATH=str(SCENARIO.parent))
        done = subprocess.run(args, capture_output=True, timeout=120, env=env, check=False)
        logs = (self.a.log_text()[-4000:] + "\n--- prosody\n"
                + self.prosody.log_text()[-4000:])
        self.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace")[-3000:] + logs)
        result = json.loads(done.stdout.decode().strip().splitlines()[-1])
        self.assertTrue(result["bob_got"], logs)
        self.assertTrue(result["alice_got"], logs)
        log = self.a.log_text()
        self.assertIn("s2s: stream a.test -> p.test ready (dialback)", log)
        self.assertIn("s2s: p.test authenticated with dialback for a.test", log)
