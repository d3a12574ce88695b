"""
Run sipp (the SIP traffic generator, Debian package ``sip-tester``) from tests.

    result = run_sipp("uac_jabber.xml", "127.0.0.1:5060", transport="u1",
                      service="chatline", calls=5, rate=10, timeout=20)
    assert result.ok, result.explain()

``run_sipp`` blocks (``subprocess``): use it when the server runs in another
process. When the server runs in the test's own reactor, use
``run_sipp_async`` (same arguments, returns a Deferred), or the reactor cannot
answer sipp while it waits.

Scenarios live in ``tests/sipp/``; ``docs/sip-testing.md`` says what each one
checks. What sipp does, measured on sipp 3.6.1 (Debian 12):

- exit code 0 when every call succeeded, 1 when at least one failed, 99 when
  no call was processed, 97 on an internal stop command, 255 (-1) on a fatal
  error (a scenario error, -timeout_error reached, a digest it cannot compute),
  254 (-2) when it cannot bind its socket;
- a failed ``check_it`` regexp does NOT stop the call: sipp goes on with the
  scenario and counts the call as failed (FailedRegexpDoesntMatch) at its end;
- without ``-p`` sipp binds 5060, then 5061, ... (not a random port): we always
  pass an explicit free port, and a free control port (``-cp``, default 8888 on
  all interfaces) bound to 127.0.0.1 (``-ci``);
- ``-timeout`` without ``-timeout_error`` only stops new calls and waits for the
  running ones (UDP retransmissions can take 30 s): we always pass both.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SCENARIO_DIR = Path(__file__).with_name("sipp")
LOOPBACK = "127.0.0.1"
INSTALL_HINT = "run `make sipp` (it installs Debian's sip-tester), or `apt-get install sip-tester`"

Transport = Literal["u1", "t1"]

EXIT_CODES = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command",
    99: "normal exit without calls processed",
    255: "fatal error (-1)",
    254: "fatal error binding a socket (-2)",
}

#: seconds the harness waits past `timeout` before it kills sipp itself
KILL_GRACE = 10.0

#: defaults for the -key parameters of tests/sipp/uas_for_selftest.xml
SELFTEST_UAS_KEYS: dict[str, str] = {
    "audio_port": "0",
    "jid": "chatline@localhost",
    "thread_suffix": "",
    "user": "alice",
    "password": "secret",
    "allow": "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE",
}


class SippMissing(AssertionError):
    """The sipp binary is not on PATH: a test FAILS (never skips) on it."""


def sipp_path() -> str | None:
    path = shutil.which("sipp")
    return os.path.abspath(path) if path else None


def sipp_available() -> bool:
    return sipp_path() is not None


def require_sipp() -> str:
    """The sipp binary's path, or SippMissing with how to install it."""
    path = sipp_path()
    if path is None:
        raise SippMissing(f"sipp is not on PATH: {INSTALL_HINT}")
    return path


def sipp_version() -> str:
    """E.g. 'SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.'"""
    out = subprocess.run(
        [require_sipp(), "-v"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    match = re.search(r"SIPp v\S+", out)
    return match.group(0) if match else out.strip()


def scenario_path(scenario: str | os.PathLike[str]) -> Path:
    """A path as given, or a name in tests/sipp/ ('uac_jabber' or 'uac_jabber.xml')."""
    path = Path(scenario)
    if path.is_absolute() or len(path.parts) > 1:
        return path
    if path.suffix != ".xml":
        path = path.with_name(path.name + ".xml")
    return SCENARIO_DIR / path


def free_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP on host (as free as can be known)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError("no free port found on " + host)


def port_bound(port: int, transport: Transport, host: str = LOOPBACK) -> bool:
    """Whether something already holds port (UDP for u1, TCP for t1) on host."""
    kind = socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


# --------------------------------------------------------------------- parsing


def sipp_duration_ms(value: str) -> float | None:
    """sipp's 'HH:MM:SS:uuuuuu' (or 'HH:MM:SS') as milliseconds."""
    parts = value.strip().split(":")
    if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts[:3])
    micro = int(parts[3]) if len(parts) == 4 else 0
    return ((h * 60 + m) * 60 + s) * 1000.0 + micro / 1000.0


def parse_stat_csv(text: str) -> dict[str, str]:
    """The last (final, cumulative) row of a -trace_stat file, by column name.

    The file is ';'-separated; its first line names the columns
    (``SuccessfulCall(C)``, ``FailedCall(C)``, ``ResponseTime1(C)`` ...), each
    later line is one dump (every -fd period, and at exit). Empty if no row."""
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=";") if row]
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return {name: value for name, value in zip(header, last) if name}


_SCREEN_COUNTER = re.compile(
    r"^\s*(Successful call|Failed call|Outgoing calls created|Total Calls created)"
    r"\s*\|\s*(\d*)\s*\|\s*(\d+)",
    re.MULTILINE,
)


def parse_screen(text: str) -> dict[str, int]:
    """Cumulative counters from sipp's last statistics screen (its stdout with
    -nostdin): {'Successful call': 3, 'Failed call': 0, ...}. A fallback for
    when no statistics file was written."""
    counters: dict[str, int] = {}
    for match in _SCREEN_COUNTER.finditer(text):
        counters[match.group(1)] = int(match.group(3))  # later screens win
    return counters


def _int(stats: Mapping[str, str], name: str) -> int:
    try:
        return int(float(stats.get(name, "0") or 0))
    except ValueError:
        return 0


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class SippResult:
    """What one sipp run did. ``ok`` is the verdict; ``explain()`` the message."""

    command: list[str]
    calls: int  # calls asked for (-m)
    returncode: int | None  # None: killed by the harness on timeout
    timed_out: bool
    successful: int
    failed: int
    created: int  # outgoing (or, for a UAS, incoming) calls created
    failures: dict[str, int] = field(default_factory=dict)  # {'RegexpDoesntMatch': 2, ...}
    retransmissions: int = 0
    response_time_ms: float | None = None  # mean of the rtd="true" measure (ResponseTime1)
    call_length_ms: float | None = None  # mean
    stats: dict[str, str] = field(default_factory=dict)  # final row of the stat CSV
    errors: str = ""  # tail of -trace_err's file: unexpected messages, failed regexps
    stdout: str = ""  # tail: sipp's final screens
    stderr: str = ""  # tail
    workdir: str | None = None  # kept only when the caller gave one

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0
            and not self.timed_out
            and self.failed == 0
            and self.successful == self.calls
        )

    @property
    def incomplete(self) -> int:
        """Calls asked for that neither succeeded nor failed (a fatal error, a timeout)."""
        return max(0, self.calls - self.successful - self.failed)

    def explain(self) -> str:
        rc = self.returncode
        verdict = "killed on timeout" if rc is None else f"exit {rc} ({EXIT_CODES.get(rc, '?')})"
        lines = [
            f"sipp: {verdict}; {self.successful}/{self.calls} successful, "
            f"{self.failed} failed, {self.incomplete} incomplete; failures {self.failures}",
            "command: " + " ".join(self.command),
        ]
        if self.errors.strip():
            lines += ["--- errors", self.errors]
        if not self.ok and self.stderr.strip():
            lines += ["--- stderr", self.stderr]
        if not self.ok and self.stdout.strip():
            lines += ["--- last screen", _tail(self.stdout, 30)]
        return "\n".join(lines)


def _result(
    command: list[str],
    calls: int,
    returncode: int | None,
    timed_out: bool,
    stdout: str,
    stderr: str,
    workdir: Path,
    keep: bool,
) -> SippResult:
    stat_file = workdir / "stat.csv"
    stats = parse_stat_csv(stat_file.read_text(errors="replace")) if stat_file.exists() else {}
    if stats:
        successful = _int(stats, "SuccessfulCall(C)")
        failed = _int(stats, "FailedCall(C)")
        created = _int(stats, "OutgoingCall(C)") + _int(stats, "IncomingCall(C)")
    else:
        screen = parse_screen(stdout)
        successful = screen.get("Successful call", 0)
        failed = screen.get("Failed call", 0)
        created = screen.get("Total Calls created", 0)
    failures = {
        name[len("Failed") : -len("(C)")]: _int(stats, name)
        for name in stats
        if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)"
        and _int(stats, name)
    }
    error_file = workdir / "errors.log"
    errors = error_file.read_text(errors="replace") if error_file.exists() else ""
    return SippResult(
        command=command,
        calls=calls,
        returncode=returncode,
        timed_out=timed_out,
        successful=successful,
        failed=failed,
        created=created,
        failures=failures,
        retransmissions=_int(stats, "Retransmissions(C)"),
        response_time_ms=sipp_duration_ms(stats.get("ResponseTime1(C)", "")),
        call_length_ms=sipp_duration_ms(stats.get("CallLength(C)", "")),
        stats=stats,
        errors=_tail(errors, 60),
        stdout=_tail(stdout, 80),
        stderr=_tail(stderr, 40),
        workdir=str(workdir) if keep else None,
    )


# --------------------------------------------------------------------- command


def sipp_command(
    scenario: str | os.PathLike[str],
    target: str | None,
    *,
    workdir: Path,
    transport: Transport = "u1",
    service: str | None = None,
    calls: int | None = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    rate_increase: float | None = None,
    rate_max: float | None = None,
    max_concurrent: int | None = None,
    timeout: float | None = None,
    local_port: int | None = None,
    control_port: int | None = None,
    auth: tuple[str, str] | None = None,
    domain: str | None = "localhost",
    keys: Mapping[str, str] | None = None,
    pause_ms: int | None = None,
    trace_msg: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The argument list of one sipp run (target None: a UAS, listening)."""
    if transport not in ("u1", "t1"):
        raise ValueError(f"transport must be 'u1' or 't1', not {transport!r}")
    if calls is not None and calls < 1:
        raise ValueError("calls must be at least 1")
    if isinstance(scenario, str) and scenario.startswith("builtin:"):
        scenario_args = ["-sn", scenario[len("builtin:") :]]
    else:
        path = scenario_path(scenario)
        if not path.is_file():
            raise FileNotFoundError(f"no sipp scenario {path}")
        scenario_args = ["-sf", str(path)]
    cmd = [require_sipp()]
    if target is not None:
        cmd.append(target)
    cmd += scenario_args
    cmd += ["-t", transport, "-i", LOOPBACK, "-mi", LOOPBACK]
    cmd += ["-p", str(local_port if local_port is not None else free_port())]
    cmd += ["-ci", LOOPBACK, "-cp", str(control_port if control_port is not None else free_port())]
    cmd += ["-nostdin"]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if rate is not None:
        cmd += ["-r", f"{rate:g}"]
    if rate_period_ms is not None:
        cmd += ["-rp", str(rate_period_ms)]
    if rate_increase is not None:
        cmd += ["-rate_increase", f"{rate_increase:g}"]
    if rate_max is not None:
        cmd += ["-rate_max", f"{rate_max:g}"]
    if max_concurrent is not None:
        cmd += ["-l", str(max_concurrent)]
    if pause_ms is not None:
        cmd += ["-d", str(pause_ms)]
    if service is None and auth is not None:
        service = auth[0]
    if service is not None:
        cmd += ["-s", service]
    if auth is not None:
        cmd += ["-au", auth[0], "-ap", auth[1]]
    # sipp keeps the FIRST -key of a name: the caller's keys come before defaults
    all_keys = dict(keys or {})
    if domain is not None:
        all_keys.setdefault("domain", domain)
    for name, value in all_keys.items():
        cmd += ["-key", name, value]
    if timeout is not None:
        cmd += ["-timeout", f"{max(1, round(timeout))}s", "-timeout_error"]
    cmd += ["-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1"]
    cmd += ["-trace_err", "-error_file", str(workdir / "errors.log")]
    if trace_msg:
        cmd += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
    cmd += list(extra)
    return cmd


def _prepare(workdir: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="sipp-")), False
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return path, True


def run_sipp(
    scenario: str | os.PathLike[str],
    target: str,
    *,
    transport: Transport = "u1",
    service: str | None = None,
    calls: int = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    rate_increase: float | None = None,
    rate_max: float | None = None,
    max_concurrent: int | None = None,
    timeout: float = 30.0,
    extra: Sequence[str] = (),
    auth: tuple[str, str] | None = None,
    domain: str | None = "localhost",
    keys: Mapping[str, str] | None = None,
    pause_ms: int | None = None,
    trace_msg: bool | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> SippResult:
    """Run a sipp UAC scenario against target ('127.0.0.1:5060'), blocking.

    scenario: a name in tests/sipp/ ('uac_jabber'), a path, or 'builtin:uac'.
    transport: 'u1' (UDP, one socket) or 't1' (TCP, one connection).
    service: the user part of the Request-URI (-s), e.g. 'chatline', 'ringer';
      defaults to auth's user.
    auth: (user, password) for digest challenges (-au/-ap).
    domain: the -key domain (the AOR domain of register.xml).
    rate: calls per second (-r; sipp's default is 10); rate_period_ms (-rp);
      rate_increase / rate_max (-rate_increase, -rate_max: sipp QUITS when
      rate_max is reached, add extra=['-no_rate_quit'] not to);
      max_concurrent (-l).
    timeout: seconds; sipp itself stops at it (-timeout, -timeout_error: exit
      255) and the harness kills it KILL_GRACE s later if it has not
      (returncode None, timed_out True).
    pause_ms: the length of the scenarios' <pause/> (-d).
    trace_msg: keep every message in the log (default: when calls <= 20).
    workdir: where sipp's files go (kept); default a temporary directory, removed.
    """
    wd, keep = _prepare(workdir)
    try:
        for attempt in range(3):  # a port taken between free_port() and sipp's bind
            cmd = sipp_command(
                scenario, target, workdir=wd, transport=transport, service=service,
                calls=calls, rate=rate, rate_period_ms=rate_period_ms,
                rate_increase=rate_increase, rate_max=rate_max,
                max_concurrent=max_concurrent, timeout=timeout, auth=auth,
                domain=domain, keys=keys, pause_ms=pause_ms,
                trace_msg=calls <= 20 if trace_msg is None else trace_msg, extra=extra,
            )
            proc = subprocess.Popen(
                cmd, cwd=wd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
            )
            timed_out = False
            try:
                stdout, stderr = proc.communicate(timeout=timeout + KILL_GRACE)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(proc)
                stdout, stderr = proc.communicate(timeout=10)
            returncode = None if timed_out else proc.returncode
            if returncode != 254 or attempt == 2:
                return _result(cmd, calls, returncode, timed_out, stdout, stderr, wd, keep)
        raise AssertionError("unreachable")
    finally:
        if not keep:
            shutil.rmtree(wd, ignore_errors=True)


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL: only this process (it leads its own session)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# ----------------------------------------------------------- inside a reactor


def run_sipp_async(
    scenario: str | os.PathLike[str],
    target: str,
    *,
    reactor=None,
    transport: Transport = "u1",
    service: str | None = None,
    calls: int = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    rate_increase: float | None = None,
    rate_max: float | None = None,
    max_concurrent: int | None = None,
    timeout: float = 30.0,
    extra: Sequence[str] = (),
    auth: tuple[str, str] | None = None,
    domain: str | None = "localhost",
    keys: Mapping[str, str] | None = None,
    pause_ms: int | None = None,
    trace_msg: bool | None = None,
    workdir: str | os.PathLike[str] | None = None,
):
    """run_sipp without blocking the reactor: a Deferred firing with a SippResult.

    For a server listening in the test's own reactor (``await`` it in an
    ``async def`` trial test). Same arguments as run_sipp."""
    from twisted.internet import defer, protocol

    if reactor is None:
        from twisted.internet import reactor  # noqa: PLW0621

    wd, keep = _prepare(workdir)
    cmd = sipp_command(
        scenario, target, workdir=wd, transport=transport, service=service,
        calls=calls, rate=rate, rate_period_ms=rate_period_ms,
        rate_increase=rate_increase, rate_max=rate_max, max_concurrent=max_concurrent,
        timeout=timeout, auth=auth, domain=domain, keys=keys, pause_ms=pause_ms,
        trace_msg=calls <= 20 if trace_msg is None else trace_msg, extra=extra,
    )
    done: defer.Deferred[SippResult] = defer.Deferred()

    class Collect(protocol.ProcessProtocol):
        def __init__(self) -> None:
            self.out: list[bytes] = []
            self.err: list[bytes] = []
            self.timed_out = False

        def outReceived(self, data: bytes) -> None:
            self.out.append(data)

        def errReceived(self, data: bytes) -> None:
            self.err.append(data)

        def processEnded(self, reason) -> None:
            if killer.active():
                killer.cancel()
            if hard_killer is not None and hard_killer.active():
                hard_killer.cancel()
            code = getattr(reason.value, "exitCode", None)
            result = _result(
                cmd, calls, None if self.timed_out else code, self.timed_out,
                b"".join(self.out).decode(errors="replace"),
                b"".join(self.err).decode(errors="replace"), wd, keep,
            )
            if not keep:
                shutil.rmtree(wd, ignore_errors=True)
            done.callback(result)

    hard_killer = None

    def kill() -> None:
        nonlocal hard_killer
        proto.timed_out = True
        try:
            transport_.signalProcess("TERM")
        except Exception:  # already gone
            return
        hard_killer = reactor.callLater(3, _hard_kill)

    def _hard_kill() -> None:
        try:
            transport_.signalProcess("KILL")
        except Exception:
            pass

    proto = Collect()
    transport_ = reactor.spawnProcess(
        proto, cmd[0], cmd, env=dict(os.environ), path=str(wd), childFDs={0: "w", 1: "r", 2: "r"}
    )
    transport_.closeStdin()
    killer = reactor.callLater(timeout + KILL_GRACE, kill)
    return done


# ------------------------------------------------------------ a sipp as UAS


class SippUas:
    """A sipp UAS (server side) on a loopback port, for proving the UAC
    scenarios against sipp itself. Use as a context manager, or call stop().

    calls: with a number, sipp exits by itself after that many calls, and
    wait() tells whether they all succeeded (exit 0)."""

    def __init__(
        self,
        scenario: str | os.PathLike[str] = "uas_for_selftest.xml",
        *,
        transport: Transport = "u1",
        calls: int | None = None,
        keys: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.transport: Transport = transport
        self.calls = calls
        self.timeout = timeout
        self.port = free_port()
        self.workdir, self._keep = _prepare(workdir)
        all_keys = dict(keys or {})
        if not str(scenario).startswith("builtin:"):
            for name, value in SELFTEST_UAS_KEYS.items():
                all_keys.setdefault(name, value)
        self.command = sipp_command(
            scenario, None, workdir=self.workdir, transport=transport, calls=calls,
            local_port=self.port, timeout=timeout, keys=all_keys, domain=None,
            trace_msg=True,
        )
        self.process: subprocess.Popen[str] | None = None
        self.result: SippResult | None = None

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, ready_within: float = 5.0) -> SippUas:
        self.process = subprocess.Popen(
            self.command, cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_within
        while not port_bound(self.port, self.transport):
            if self.process.poll() is not None or time.monotonic() > deadline:
                result = self.stop()
                raise RuntimeError("sipp UAS did not start:\n" + result.explain())
            time.sleep(0.02)
        return self

    def wait(self, timeout: float = 10.0) -> SippResult:
        """Wait for sipp to exit by itself (it does after `calls` calls)."""
        assert self.process is not None
        timed_out = False
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(self.process)
            stdout, stderr = self.process.communicate(timeout=10)
        return self._finish(stdout, stderr, timed_out)

    def stop(self) -> SippResult:
        """Stop sipp now (if still running) and collect what it did."""
        if self.result is not None:
            return self.result
        assert self.process is not None
        _kill(self.process)
        stdout, stderr = self.process.communicate(timeout=10)
        return self._finish(stdout, stderr, False)

    def _finish(self, stdout: str, stderr: str, timed_out: bool) -> SippResult:
        assert self.process is not None
        self.result = _result(
            self.command, self.calls or 0, None if timed_out else self.process.returncode,
            timed_out, stdout, stderr, self.workdir, self._keep,
        )
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.result

    def __enter__(self) -> SippUas:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
