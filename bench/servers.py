"""
The servers `make bench` measures, started on loopback as subprocesses.

- ``ConvergenceServer``: ``twistd -n convergence`` with its own data
  directory and TOML config (``[xmpp] scram_iterations``, ``require_tls``,
  ``allow_plain_without_tls`` per figure, limits raised).
- ``ProsodyServer``: Debian's ``prosody`` in the foreground with its own Lua
  config (see ``prosody_config``): loopback only, no s2s, a minimal module
  set, ``internal_hashed`` accounts, the same certificate as convergence.
- ``FederatedPair``: two servers of a kind (``ConvergenceS2SServer``,
  ``ProsodyS2SServer``) serving ``a.test`` and ``b.test`` on loopback
  addresses of their own and federating over STARTTLS + dialback
  (convergence: ``[s2s.hosts]``; Prosody: port 5269 and a hosts file read by
  libunbound, no DNS), for the ``s2s`` figure.
- ``ConvergenceSipServer``: ``twistd -n convergence`` with only its SIP
  listener (the shipped ``chatline`` app answers the jabber-chat INVITEs).

Accounts are created once per run (``UserTemplates``): for convergence
through its own admin API (``Accounts`` on a ``SqliteAccountStore``, what
``convergencectl adduser`` does), for Prosody with ``prosodyctl register``
(about 40 ms an account). The work is spread over worker processes. Each
server then starts from a fresh copy of the template.

Every process started here leads its own session and is stopped by its pid
(SIGTERM, then SIGKILL); ``BenchDir`` and the servers are context managers.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import rosters  # noqa: E402
from bench.xmppload import read_rss_kib  # noqa: E402
from tests.sipp_harness import free_port, port_bound  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
LOOPBACK = "127.0.0.1"
DOMAIN = "localhost"
#: the chat service of DOMAIN (both servers' default name)
MUC_DOMAIN = f"conference.{DOMAIN}"
USERS_PREFIX = "user"
PASSWORD = "pw"
#: what Prosody 0.12 uses (mod_auth_internal_hashed's default_iteration_count)
PROSODY_ITERATIONS = 10000
#: convergence's default ([xmpp] scram_iterations)
CONVERGENCE_DEFAULT_ITERATIONS = 4096
#: the s2s figure's two domains (sender's, receiver's) and Prosody's s2s port
#: (without SRV records it connects to 5269: each Prosody gets its own
#: loopback address)
S2S_DOMAINS = ("a.test", "b.test")
S2S_PORT = 5269
#: open files wanted by servers holding thousands of connections
NOFILE = 65536

log = logging.getLogger("bench")


class ServerError(RuntimeError):
    """A server did not start; the message carries the tail of its log."""


# ------------------------------------------------------------------ helpers


def tcp_listening(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def raise_nofile() -> None:
    """Allow NOFILE open files in this process and so in the servers it starts
    (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((max(soft, NOFILE), max(hard, NOFILE)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return
        except (ValueError, OSError):
            continue


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def split_pem(pem: bytes) -> tuple[bytes, bytes]:
    """(certificate blocks, private key block) of a PEM holding both."""
    certs: list[bytes] = []
    keys: list[bytes] = []
    block: list[bytes] = []
    for line in pem.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN "):
            block = [line]
        elif block:
            block.append(line)
            if line.startswith(b"-----END "):
                (keys if b"PRIVATE KEY" in block[0] else certs).append(b"".join(block))
                block = []
    if not certs or not keys:
        raise ValueError("the PEM needs a certificate and a private key")
    return b"".join(certs), b"".join(keys)


def prosody_version() -> str | None:
    """E.g. '0.12.3 (Debian 0.12.3-1+deb12u1)', or None when not installed."""
    version = None
    try:
        version = Path("/usr/lib/prosody/prosody.version").read_text().strip()
    except OSError:
        pass
    try:
        package = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "prosody"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        package = ""
    if package:
        version = f"{version or '?'} (Debian {package})"
    return version


def prosody_missing_hint() -> str:
    return "prosody is not installed: run `make bench-deps` (apt-get install prosody)"


# ------------------------------------------------------------ accounts


def _convergence_users(db_path: str, iterations: int, first: int, last: int,
                       domain: str = DOMAIN) -> int:
    """Worker: create prefix<first>..prefix<last>@domain in a convergence database."""
    sys.path.insert(0, str(ROOT))
    from convergence.auth.accounts import Accounts
    from convergence.store.sqlite import SqliteAccountStore

    store = SqliteAccountStore(db_path)
    try:
        accounts = Accounts(store, iterations)
        for n in range(first, last + 1):
            for attempt in range(20):  # another worker holding the write lock
                try:
                    accounts.add(f"{USERS_PREFIX}{n}@{domain}", PASSWORD)
                    break
                except sqlite3.OperationalError:
                    if attempt == 19:
                        raise
                    time.sleep(0.05)
    finally:
        store.close()
    return last - first + 1


def prosody_encode(name: str) -> str:
    """util.datamanager's path encoding: anything but [A-Za-z0-9] as %xx."""
    return "".join(c if c.isascii() and c.isalnum() else f"%{ord(c):02x}" for c in name)


def prosodyctl_config(data: Path, iterations: int, domain: str = DOMAIN) -> str:
    """The Lua config `prosodyctl register` creates the bench accounts with:
    the template's data directory, internal_hashed storage, the iteration
    count of the figure."""
    return "\n".join([
        "-- written by bench/servers.py for prosodyctl register",
        "run_as_root = true",
        f"data_path = {lua_string(data)}",
        f"pidfile = {lua_string(data / 'prosodyctl.pid')}",
        f"certificates = {lua_string(data)}",
        "plugin_paths = { }",
        'authentication = "internal_hashed"',
        f"default_iteration_count = {iterations}",
        'storage = "internal"',
        f"log = {{ warn = {lua_string(data / 'prosodyctl.log')} }}",
        f"VirtualHost {lua_string(domain)}",
        "",
    ])


def _prosody_users(config: str, iterations: int, first: int, last: int,
                   domain: str = DOMAIN) -> int:
    """Worker: `prosodyctl register` prefix<first>..prefix<last> on domain."""
    for n in range(first, last + 1):
        done = subprocess.run(
            ["prosodyctl", "--config", config, "register", f"{USERS_PREFIX}{n}", domain,
             PASSWORD], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ServerError(f"prosodyctl register {USERS_PREFIX}{n} failed "
                              f"({done.returncode}): {done.stdout}{done.stderr}")
    return last - first + 1


def _chunks(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    count = last - first + 1
    parts = max(1, min(parts, count))
    size = -(-count // parts)
    return [(a, min(last, a + size - 1)) for a in range(first, last + 1, size)]


class UserTemplates:
    """Data directories with user1..userN, made once per run and copied per server."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = root
        self.workers = workers or os.cpu_count() or 1
        self._made: dict[tuple[str, int, str], int] = {}
        self.seconds: dict[str, float] = {}  # creation time per template, for the report

    def _fill(self, kind: str, iterations: int, count: int, domain: str = DOMAIN) -> Path:
        name = f"{kind}-{iterations}" + ("" if domain == DOMAIN else f"-{domain}")
        path = self.root / name
        have = self._made.get((kind, iterations, domain), 0)
        if count <= have:
            return path
        began = time.monotonic()
        if kind == "convergence":
            path.mkdir(parents=True, exist_ok=True)
            db = path / "convergence.sqlite3"
            sys.path.insert(0, str(ROOT))
            from convergence.store.sqlite import SqliteAccountStore

            SqliteAccountStore(db).close()  # create and migrate before the workers
            target, args = _convergence_users, str(db)
        elif kind == "prosody":
            if shutil.which("prosodyctl") is None:
                raise ServerError(prosody_missing_hint())
            path.mkdir(parents=True, exist_ok=True)
            config = self.root / f"prosodyctl-{name}.cfg.lua"
            config.write_text(prosodyctl_config(path, iterations, domain))
            target, args = _prosody_users, str(config)
        else:
            raise ValueError(kind)
        chunks = _chunks(have + 1, count, self.workers)
        if len(chunks) == 1:
            target(args, iterations, *chunks[0], domain)
        else:
            with ProcessPoolExecutor(len(chunks)) as pool:
                for future in [pool.submit(target, args, iterations, a, b, domain)
                               for a, b in chunks]:
                    future.result()
        if kind == "convergence":
            with sqlite3.connect(str(path / "convergence.sqlite3")) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._made[(kind, iterations, domain)] = count
        key = name
        self.seconds[key] = round(self.seconds.get(key, 0.0) + time.monotonic() - began, 2)
        log.info("created users %d..%d@%s for %s (%d iterations) in %.1f s",
                 have + 1, count, domain, kind, iterations, time.monotonic() - began)
        return path

    def copy_to(self, kind: str, iterations: int, count: int, dest: Path,
                domain: str = DOMAIN) -> None:
        """Make dest a data directory holding (at least) user1..user<count>@domain."""
        source = self._fill(kind, iterations, count, domain)
        if kind == "convergence":
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / "convergence.sqlite3", dest / "convergence.sqlite3")
        else:
            shutil.copytree(source, dest, dirs_exist_ok=True)


# ------------------------------------------------------------ the run's dir


class BenchDir:
    """A temporary directory for one bench run: certificate, templates, servers."""

    def __init__(self, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="convergence-bench-"))
        self.keep = keep
        self.users = UserTemplates(self.path / "templates")
        self._cert: tuple[Path, Path] | None = None
        self._serial = 0

    def certificate(self) -> tuple[Path, Path]:
        """(cert.pem, key.pem): one self-signed RSA-2048 certificate for localhost,
        made with convergence's own generator, served by both servers."""
        if self._cert is None:
            sys.path.insert(0, str(ROOT))
            from convergence.tls import generate_self_signed

            cert, key = split_pem(generate_self_signed([DOMAIN]))
            tls = self.path / "tls"
            tls.mkdir()
            (tls / "cert.pem").write_bytes(cert)
            (tls / "key.pem").write_bytes(key)
            os.chmod(tls / "key.pem", 0o600)
            self._cert = (tls / "cert.pem", tls / "key.pem")
        return self._cert

    def server_dir(self, name: str) -> Path:
        self._serial += 1
        path = self.path / f"{self._serial:03d}-{name}"
        path.mkdir()
        return path

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# ------------------------------------------------------------ settings


@dataclass(frozen=True)
class XmppSettings:
    """What one XMPP figure asks of a server (the same for both servers)."""

    require_tls: bool = True  # STARTTLS before SASL; False: plaintext, PLAIN allowed
    iterations: int = PROSODY_ITERATIONS  # SCRAM iteration count of the stored credentials
    users: int = 10  # user1..userN exist
    roster: str = ""  # a bench/rosters.py topology (hub:C:K, ring:K); "": empty rosters
    #: XEP-0198 on the server (Prosody: mod_smacks; convergence has it built in)
    stream_management: bool = False
    #: XEP-0045 on conference.<domain> (Prosody: a mod_muc component;
    #: convergence runs it by default)
    muc: bool = False
    #: RFC 7395 XMPP over WebSocket on an HTTP port, plain ws:// on loopback
    #: counted as secure (Prosody: mod_websocket, consider_websocket_secure;
    #: convergence: its HTTP listener, xmpp.websocket_secure = "loopback")
    websocket: bool = False

    def describe(self) -> str:
        tls = "STARTTLS required" if self.require_tls else "plaintext, PLAIN allowed"
        rosters = f", rosters {self.roster}" if self.roster else ""
        sm = ", stream management" if self.stream_management else ""
        muc = ", chat rooms" if self.muc else ""
        ws = ", over WebSocket (ws:// on loopback)" if self.websocket else ""
        return (f"{tls}, {self.iterations} iterations, {self.users} users"
                f"{rosters}{sm}{muc}{ws}")


def convergence_config(settings: XmppSettings, cert: Path, key: Path) -> str:
    """The TOML config of a convergence server for settings."""
    return "\n".join([
        "# written by bench/servers.py",
        "[tls]",
        f'certificate = "{cert}"',
        f'private_key = "{key}"',
        "",
        "[xmpp]",
        f"require_tls = {'true' if settings.require_tls else 'false'}",
        f"allow_plain_without_tls = {'false' if settings.require_tls else 'true'}",
        f"scram_iterations = {settings.iterations}",
        "max_connections_per_ip = 100000",
        "negotiation_timeout = 120.0",
        "# Prosody runs without mod_limits: no read rate here either",
        "max_read_rate = 0",
        "# Prosody's mod_offline keeps any number of messages",
        "offline_quota = 1000000",
        "# XEP-0198 as Prosody's mod_smacks is set below: <r/> after 5 unacked,",
        "# 300 s of hibernation, 500 stanzas queued at most",
        f"sm_ack_every = {SM_ACK_EVERY}",
        f"sm_resume_max = {SM_HIBERNATION_S}",
        f"sm_max_queue = {SM_MAX_QUEUE}",
        "# Prosody's mod_muc runs without mod_muc_limits: no flood limit in rooms",
        "muc_occupant_rate = 0",
        "",
        "[sip]",
        "# the bench drives thousands of calls/s from one address: no per-source",
        "# request limit (loopback is exempt by default anyway)",
        "max_requests_per_second_per_source = 0",
        "",
    ])


#: XEP-0198 settings shared by both servers when a figure uses it
SM_ACK_EVERY = 5
SM_HIBERNATION_S = 300
SM_MAX_QUEUE = 500

#: Prosody modules loaded for the bench: what convergence also does.
PROSODY_MODULES = ("roster", "saslauth", "tls", "disco", "ping", "posix",
                   # convergence archives (XEP-0313), copies (XEP-0280) and
                   # checks blocklists (XEP-0191) on every message: so does
                   # Prosody here (its default archive policy: every chat)
                   "mam", "carbons", "blocklist")
#: Prosody modules loaded by default (autoloaded or in Debian's config) that do
#: work convergence does not do; not loaded.  (mod_offline and mod_presence
#: stay: convergence stores offline messages and handles presence too.)
PROSODY_DISABLED = ("s2s", "s2s_auth_certs")


def lua_string(value: str | Path) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def prosody_config(settings: XmppSettings, *, port: int, data: Path, cert: Path,
                   key: Path, log_file: Path, pidfile: Path,
                   http_port: int | None = None, address: str = LOOPBACK,
                   domain: str = DOMAIN, s2s_hosts: Path | None = None) -> str:
    """The Lua config of a Prosody for settings: loopback only, one c2s port,
    no s2s, a minimal module set, internal_hashed accounts, the bench
    certificate, warnings only in the log, no rate limits (mod_limits is
    not loaded), Nagle off as convergence has it.

    With ``s2s_hosts`` (a hosts file naming the peers' loopback addresses,
    read by libunbound as ``hoststxt``: no DNS): federation on port 5269 of
    ``address``, STARTTLS required, dialback accepted over it
    (``s2s_secure_auth = false``): convergence's default s2s policy."""
    require = "true" if settings.require_tls else "false"
    plain = "false" if settings.require_tls else "true"
    names = PROSODY_MODULES + (("smacks",) if settings.stream_management else ())
    http: list[str] = []
    if settings.websocket:
        # mod_websocket on mod_http's server: plain HTTP on loopback only,
        # no HTTPS port; ws:// there counts as secure, as on convergence
        names += ("http", "websocket")
        http = [f"http_ports = {{ {http_port} }}",
                f"http_interfaces = {{ {lua_string(LOOPBACK)} }}",
                "https_ports = { }",
                "consider_websocket_secure = true"]
    s2s: list[str] = ["s2s_ports = { }"]
    disabled_names = PROSODY_DISABLED
    if s2s_hosts is not None:
        names += ("dialback",)
        disabled_names = ()
        s2s = [f"s2s_ports = {{ {S2S_PORT} }}",
               "s2s_require_encryption = true",
               "s2s_secure_auth = false",
               "s2s_timeout = 120",
               f"unbound = {{ hoststxt = {lua_string(s2s_hosts)} }}"]
    modules = "; ".join(lua_string(m) for m in names)
    disabled = "; ".join(lua_string(m) for m in disabled_names)
    return "\n".join([
        "-- written by bench/servers.py",
        "-- started as root by the bench (prosody refuses root without this)",
        "run_as_root = true",
        f"pidfile = {lua_string(pidfile)}",
        f"data_path = {lua_string(data)}",
        f"certificates = {lua_string(cert.parent)}",
        "plugin_paths = { }",
        f"interfaces = {{ {lua_string(address)} }}",
        f"local_interfaces = {{ {lua_string(address)} }}",
        f"c2s_ports = {{ {port} }}",
        "c2s_direct_tls_ports = { }",
        "legacy_ssl_ports = { }",
        *s2s,
        "s2s_direct_tls_ports = { }",
        f"modules_enabled = {{ {modules} }}",
        f"modules_disabled = {{ {disabled} }}",
        'authentication = "internal_hashed"',
        f"default_iteration_count = {settings.iterations}",
        'storage = "internal"',
        f"c2s_require_encryption = {require}",
        f"allow_unencrypted_plain_auth = {plain}",
        "c2s_timeout = 120",
        "-- convergence sets TCP_NODELAY on client connections; Prosody's default",
        "-- keeps Nagle on (same figures under load, 40 ms stalls when idle-ish)",
        "network_settings = { nagle = false }",
        f"log = {{ warn = {lua_string(log_file)} }}",
        f"smacks_max_unacked_stanzas = {SM_ACK_EVERY}",
        f"smacks_hibernation_time = {SM_HIBERNATION_S}",
        f"smacks_max_queue_size = {SM_MAX_QUEUE}",
        f"ssl = {{ certificate = {lua_string(cert)}; key = {lua_string(key)} }}",
        *http,
        "",
        f"VirtualHost {lua_string(domain)}",
        "",
        *([f"Component {lua_string(MUC_DOMAIN)} \"muc\"",
           "-- convergence keeps 20 messages of history per room too, and archives",
           "-- every room's groupchat (xmpp.muc_archive): so does mod_muc_mam here",
           "max_history_messages = 20",
           f"modules_enabled = {{ {lua_string('muc_mam')} }}",
           ""] if settings.muc else []),
    ])


# ------------------------------------------------------------ processes


class Server:
    """A server subprocess on loopback: start(), stop(), pid, port; a context manager."""

    name = "server"
    start_timeout = 30.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_file = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        #: the HTTP port of XMPP over WebSocket (figures with websocket)
        self.http_port: int | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        return tcp_listening(self.port) and (self.http_port is None
                                             or tcp_listening(self.http_port))

    @property
    def websocket_url(self) -> str:
        """Where XMPP over WebSocket is served (both servers' default path)."""
        return f"ws://{LOOPBACK}:{self.http_port}/xmpp-websocket"

    def start(self) -> Self:
        raise_nofile()  # inherited by the server
        with open(self.log_file, "ab") as out:
            self.process = subprocess.Popen(
                self.command(), cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self.env(), start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                why = f"exited with {code}" if code is not None else "did not listen in time"
                raise ServerError(f"{self.name} {why} (port {self.port}); its log:\n"
                                  + tail(self.log_file))
            time.sleep(0.05)
        return self

    def stop(self) -> int | None:
        """SIGTERM, up to 15 s, then SIGKILL: only this process."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=10)

    def rss_kib(self) -> int | None:
        """The server process's RSS so far."""
        return read_rss_kib(self.pid)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def twistd_warn_observer():
    """twistd --logger: convergence's log at warn and above only (Prosody's
    bench config logs warnings only too), written to twistd's stdout."""
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        textFileLogObserver,
    )

    return FilteringLogObserver(
        textFileLogObserver(sys.stdout),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )


class ConvergenceServer(Server):
    """twistd -n convergence serving XMPP c2s (SIP and HTTP off)."""

    name = "convergence"

    def __init__(self, bench: BenchDir, settings: XmppSettings,
                 domain: str = DOMAIN) -> None:
        super().__init__(bench.server_dir(self.name))
        self.settings = settings
        self.data = self.workdir / "data"
        bench.users.copy_to("convergence", settings.iterations, settings.users, self.data,
                            domain)
        if settings.roster:
            rosters.write_convergence(self.data / "convergence.sqlite3", settings.roster,
                                      settings.users, USERS_PREFIX, DOMAIN)
        cert, key = bench.certificate()
        self.config = self.workdir / "convergence.toml"
        self.config.write_text(convergence_config(settings, cert, key))
        if settings.websocket:
            self.http_port = free_port()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        return env

    def twistd(self) -> list[str]:
        # no federation, as Prosody's bench config has none
        return [str(VENV_BIN / "twistd"), "-n", "--pidfile=",
                "--logger", "bench.servers.twistd_warn_observer", "convergence",
                "--s2s-port", "0"]

    def command(self) -> list[str]:
        return [*self.twistd(), "--data-dir", str(self.data), "--config", str(self.config),
                "--c2s-port", str(self.port), "--c2s-tls-port", "0",
                "--sip-port", "0", "--http-port", str(self.http_port or 0)]


class ConvergenceSipServer(ConvergenceServer):
    """twistd -n convergence serving SIP only (UDP and TCP); chatline answers."""

    name = "convergence-sip"

    def __init__(self, bench: BenchDir) -> None:
        Server.__init__(self, bench.server_dir(self.name))
        self.settings = XmppSettings(users=0)
        self.data = self.workdir / "data"
        cert, key = bench.certificate()
        self.config = self.workdir / "convergence.toml"
        self.config.write_text(convergence_config(self.settings, cert, key))

    def ready(self) -> bool:
        return port_bound(self.port, "u1") and tcp_listening(self.port)

    def command(self) -> list[str]:
        return [*self.twistd(), "--data-dir", str(self.data), "--config", str(self.config),
                "--c2s-port", "0", "--c2s-tls-port", "0",
                "--sip-port", str(self.port), "--http-port", "0"]


def sip_accounts(db_path: Path, count: int) -> float:
    """
    user1..user<count> (password PASSWORD) in a fresh convergence database,
    for the SIP figures: each account has its own digest HA1s (MD5,
    SHA-256), the registrar's only use of it; the SCRAM credentials, which
    SIP never reads, are derived once and shared, so that 100,000 accounts
    take seconds rather than PBKDF2 minutes.  Returns the seconds taken.
    """
    sys.path.insert(0, str(ROOT))
    from convergence.auth.accounts import Accounts
    from convergence.store.sqlite import SqliteAccountStore

    began = time.monotonic()
    store = SqliteAccountStore(str(db_path))
    try:
        accounts = Accounts(store)
        shared = accounts._derive(PASSWORD)
        store._db.execute("PRAGMA synchronous=OFF")
        for n in range(1, count + 1):
            localpart = f"{USERS_PREFIX}{n}"
            store.create(localpart, DOMAIN, shared,
                         accounts._digests(localpart, DOMAIN, PASSWORD))
    finally:
        store.close()
    return time.monotonic() - began


class ConvergenceRegistrar(ConvergenceSipServer):
    """ConvergenceSipServer with user1..user<users> able to REGISTER (digest
    challenges in the given order of algorithms)."""

    name = "convergence-registrar"

    def __init__(self, bench: BenchDir, users: int,
                 algorithms: tuple[str, ...] = ("MD5", "SHA-256")) -> None:
        super().__init__(bench)
        self.data.mkdir(parents=True, exist_ok=True)
        template = bench.path / "templates" / f"sip-accounts-{users}.sqlite3"
        if not template.exists():
            template.parent.mkdir(parents=True, exist_ok=True)
            partial = template.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            log.info("created %d SIP accounts in %.1f s", users, sip_accounts(partial, users))
            with sqlite3.connect(str(partial)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            partial.rename(template)
        shutil.copy2(template, self.data / "convergence.sqlite3")
        algos = ", ".join(f'"{a}"' for a in algorithms)
        self.config.write_text(self.config.read_text()
                               + f"digest_algorithms = [{algos}]\n"
                               + "max_expires = 86400\n"
                               # every user of the 100,000-contact row registers
                               # within one nonce lifetime
                               + f"digest_replay_entries = {max(100000, 2 * users)}\n")


KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


def kamailio_config(port: int, algorithm: str, children: int) -> str:
    """
    A minimal registrar: usrloc in memory (db_mode 0), digest against one
    fixed password for every user (pv_www_authenticate), qop=auth, the
    given algorithm (auth's ``algorithm`` parameter, RFC 8760), UDP on
    loopback, ``children`` UDP worker processes, logs at errors only.
    """
    algorithm_param = "" if algorithm == "MD5" else algorithm
    return "\n".join([
        "#!KAMAILIO",
        "# written by bench/servers.py",
        "debug=1",
        "log_stderror=yes",
        "fork=yes",
        f"children={children}",
        "auto_aliases=no",
        "dns=no",
        "rev_dns=no",
        f"listen=udp:127.0.0.1:{port}",
        f'mpath="{KAMAILIO_MODULES}/"',
        'loadmodule "sl.so"',
        'loadmodule "pv.so"',
        'loadmodule "usrloc.so"',
        'loadmodule "registrar.so"',
        'loadmodule "auth.so"',
        'modparam("usrloc", "db_mode", 0)',
        'modparam("registrar", "max_expires", 86400)',
        f'modparam("auth", "algorithm", "{algorithm_param}")',
        "request_route {",
        '    if (method != "REGISTER") {',
        '        sl_send_reply("405", "Method Not Allowed");',
        "        exit;",
        "    }",
        f'    if (!pv_www_authenticate("$td", "{PASSWORD}", "0")) {{',
        '        www_challenge("$td", "1");',
        "        exit;",
        "    }",
        '    if (!save("location")) {',
        "        sl_reply_error();",
        "    }",
        "    exit;",
        "}",
        "",
    ])


class KamailioServer(Server):
    """Debian's kamailio in the foreground (-DD) as a registrar (kamailio_config)."""

    name = "kamailio"

    def __init__(self, bench: BenchDir, algorithm: str = "MD5", children: int = 1,
                 shm_mb: int = 512) -> None:
        if shutil.which("kamailio") is None:
            raise ServerError("kamailio is not installed: run `make bench-deps` "
                              "(apt-get install kamailio)")
        super().__init__(bench.server_dir(self.name))
        self.config = self.workdir / "kamailio.cfg"
        self.config.write_text(kamailio_config(self.port, algorithm, children))
        self.shm_mb = shm_mb

    def ready(self) -> bool:
        return port_bound(self.port, "u1")

    def command(self) -> list[str]:
        return ["kamailio", "-f", str(self.config), "-DD", "-E", "-m", str(self.shm_mb),
                "-M", "16", "-P", str(self.workdir / "kamailio.pid"),
                "-Y", str(self.workdir)]


class ProsodyServer(Server):
    """Debian's prosody in the foreground (-F) with a config of its own."""

    name = "prosody"

    def __init__(self, bench: BenchDir, settings: XmppSettings,
                 domain: str = DOMAIN) -> None:
        if shutil.which("prosody") is None:
            raise ServerError(prosody_missing_hint())
        super().__init__(bench.server_dir(self.name))
        self.bench = bench
        self.settings = settings
        self.data = self.workdir / "data"
        bench.users.copy_to("prosody", settings.iterations, settings.users, self.data,
                            domain)
        if settings.roster:
            rosters.write_prosody(self.data, settings.roster, settings.users, USERS_PREFIX,
                                  DOMAIN, prosody_encode)
        cert, key = bench.certificate()
        self.prosody_log = self.workdir / "prosody.log"
        self.config = self.workdir / "prosody.cfg.lua"
        if settings.websocket:
            self.http_port = free_port()
        self.config.write_text(prosody_config(
            settings, port=self.port, data=self.data, cert=cert, key=key,
            log_file=self.prosody_log, pidfile=self.workdir / "prosody.pid",
            http_port=self.http_port))

    def command(self) -> list[str]:
        return ["prosody", "--config", str(self.config), "-F"]

    def start(self) -> Self:
        try:
            return super().start()
        except ServerError as e:
            raise ServerError(f"{e}\n--- prosody.log\n{tail(self.prosody_log)}") from None



# ------------------------------------------------------------ federation


def loopback_addresses(count: int, port: int | None = None,
                       first: int = 20) -> list[str]:
    """``count`` addresses 127.0.0.<first>.. on which ``port`` (or, with
    None, any port) can be bound now: Linux routes all of 127/8 on lo."""
    found: list[str] = []
    for n in range(first, 250):
        address = f"127.0.0.{n}"
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port or 0))
            except OSError:
                continue
        found.append(address)
        if len(found) == count:
            return found
    raise ServerError(f"no {count} loopback addresses with port {port} free")


class ConvergenceS2SServer(ConvergenceServer):
    """twistd -n convergence serving ``domain`` on its own loopback address,
    c2s and s2s; its peer found through ``[s2s.hosts]`` (no DNS), the
    default s2s policy (STARTTLS required, dialback allowed)."""

    name = "convergence-s2s"

    def __init__(self, bench: BenchDir, settings: XmppSettings, domain: str,
                 address: str) -> None:
        self.domain = domain
        self.address = address
        super().__init__(bench, settings, domain)
        self.port = free_port(address)
        self.s2s_port = free_port(address)

    def peer_with(self, peer: ConvergenceS2SServer) -> None:
        """Write the config: the bench's, this domain and address, peer's route."""
        self.config.write_text("\n".join([
            f'domains = ["{self.domain}"]', f'interface = "{self.address}"',
            self.config.read_text(),
            "[s2s]", f'dialback_secret = "bench secret of {self.domain}"',
            "[s2s.hosts]", f'"{peer.domain}" = "{peer.address}:{peer.s2s_port}"', ""]))

    def ready(self) -> bool:
        return tcp_listening(self.port, self.address) and tcp_listening(self.s2s_port,
                                                                        self.address)

    def twistd(self) -> list[str]:
        return [str(VENV_BIN / "twistd"), "-n", "--pidfile=",
                "--logger", "bench.servers.twistd_warn_observer", "convergence",
                "--s2s-port", str(self.s2s_port)]


class ProsodyS2SServer(ProsodyServer):
    """Debian's prosody serving ``domain`` on its own loopback address, c2s
    on a free port and s2s on 5269; its peers resolved by a hosts file."""

    name = "prosody-s2s"

    def __init__(self, bench: BenchDir, settings: XmppSettings, domain: str,
                 address: str) -> None:
        self.domain = domain
        self.address = address
        super().__init__(bench, settings, domain)
        self.port = free_port(address)
        self.s2s_port = S2S_PORT

    def peer_with(self, peer: ProsodyS2SServer) -> None:
        hosts = self.workdir / "hosts"
        hosts.write_text(f"{peer.address} {peer.domain}\n{self.address} {self.domain}\n")
        cert, key = self.bench.certificate()
        self.config.write_text(prosody_config(
            self.settings, port=self.port, data=self.data, cert=cert, key=key,
            log_file=self.prosody_log, pidfile=self.workdir / "prosody.pid",
            address=self.address, domain=self.domain, s2s_hosts=hosts))

    def ready(self) -> bool:
        return tcp_listening(self.port, self.address) and tcp_listening(self.s2s_port,
                                                                        self.address)


class FederatedPair:
    """Two servers of one kind federating on loopback: ``sender`` serves
    S2S_DOMAINS[0], ``receiver`` S2S_DOMAINS[1], each with user1..userN."""

    def __init__(self, kind: str, bench: BenchDir, settings: XmppSettings) -> None:
        cls = ConvergenceS2SServer if kind == "convergence" else ProsodyS2SServer
        # Prosody dials port 5269 of its peer: each needs an address with it free
        addresses = loopback_addresses(2, S2S_PORT if kind != "convergence" else None,
                                       first=20 if kind == "convergence" else 40)
        self.sender = cls(bench, settings, S2S_DOMAINS[0], addresses[0])
        self.receiver = cls(bench, settings, S2S_DOMAINS[1], addresses[1])
        self.sender.peer_with(self.receiver)
        self.receiver.peer_with(self.sender)

    @property
    def pid(self) -> int | None:
        return self.sender.pid

    def start(self) -> Self:
        self.receiver.start()
        try:
            self.sender.start()
        except ServerError:
            self.receiver.stop()
            raise
        return self

    def stop(self) -> None:
        self.sender.stop()
        self.receiver.stop()

    def rss_kib(self) -> int | None:
        values = [s.rss_kib() for s in (self.sender, self.receiver)]
        return None if None in values else sum(v for v in values if v is not None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
