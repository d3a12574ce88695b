#!/usr/bin/env python3
"""
SIP load with sipp: the highest call rate with zero failed calls.

Each call is ``tests/sipp/uac_jabber.xml``: INVITE offering the jabber-chat
SDP (draft-sparks-simple-jabber-sessions) → 200 (its SDP checked: audio
declined, chat accepted, our thread) → ACK → BYE → 200, over UDP or TCP
(``--transport``). The rate steps up a ladder (250, 500, 1000 … 16000
calls/s, each step ``duration`` seconds long, 8 by default) and stops at the
first step that fails; then one step halfway between the last good rate and
the failing one refines the answer. A step holds when no call failed,
retransmissions stayed under 1 % of the calls and sipp made at least 97 % of
the asked rate: what a user stepping sipp by hand calls "held".

Besides the call ladder:

- ``registrations``: REGISTERs/s with digest (``bench/sipreg.py``, MD5 or
  SHA-256) against convergence's registrar or Kamailio's;
- ``contact_memory`` and ``dialog_memory``: the server's RSS growth per
  registered contact, and per confirmed dialog (calls held open).

Targets:

- ``convergence``: ``twistd -n convergence`` with only SIP on, the shipped
  ``chatline`` app answering;
- ``sipp-uas``: a sipp UAS, ``tests/sipp/uas_for_selftest.xml``, answering
  exactly what chatline answers (the reference of the table);
- ``sipp-builtin``: sipp's own ``-sn uas``, driven by a copy of the UAC
  scenario without the SDP checks (the built-in UAS answers an audio SDP
  and no chat stream, which uac_jabber.xml rightly counts as a failure);
- ``python-floor``: ``bench/sip_floor.py``, the least Python on Twisted that
  answers the scenario (no SIP stack): the ceiling of any Python server here.

    python bench/sipbench.py --target convergence --duration 3 --rates 100,200
    python bench/sipbench.py --target all --json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.servers import (
    PASSWORD,
    BenchDir,
    ConvergenceRegistrar,
    ConvergenceSipServer,
    KamailioServer,
    tail,
)
from bench.xmppload import read_cpu_s, read_rss_kib
from tests.sipp_harness import (
    SELFTEST_UAS_KEYS,
    free_port,
    port_bound,
    require_sipp,
    run_sipp,
    scenario_path,
    sipp_command,
    sipp_version,
)

SCENARIO = "uac_jabber.xml"
SERVICE = "chatline"
#: up to where sipp's own UAS holds over TCP (over 14,000 calls/s here), so
#: the reference's ceiling is found rather than capped
DEFAULT_RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000)
#: a step with more retransmissions than this share of its calls fails
MAX_RETRANS_SHARE = 0.01
#: a step fails when sipp made fewer calls per second than this share of the rate
MIN_ACHIEVED_SHARE = 0.97
#: sipp's transports: one UDP socket, one TCP connection
TRANSPORTS = {"udp": "u1", "tcp": "t1"}
TARGETS = ("convergence", "sipp-uas", "sipp-builtin", "python-floor")
#: seconds a step may run past its duration: a call answered late but well
#: (a retransmission or two) ends well within it; calls still open then failed
STEP_GRACE_S = 10.0


# ------------------------------------------------------------ measurements


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of a sorted sequence."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def read_rtt(workdir: Path) -> list[float]:
    """Response times (ms) from sipp's -trace_rtt file(s) in workdir, sorted.

    The file is ``<scenario>_<pid>_rtt.csv``: ``Date_ms;response_time_ms;rtd_no``
    rows, one per call (with -rtt_freq 1). sipp measures whole milliseconds."""
    values: list[float] = []
    for path in sorted(workdir.glob("*_rtt.csv")):
        with open(path, newline="", errors="replace") as f:
            for row in csv.reader(f, delimiter=";"):
                if len(row) >= 2:
                    try:
                        values.append(float(row[1]))
                    except ValueError:
                        continue  # the header
    return sorted(values)


def udp_drops() -> int | None:
    """The host's UDP datagrams dropped for a full receive buffer so far
    (RcvbufErrors in /proc/net/snmp: any socket, sipp's included)."""
    try:
        lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
                 if line.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Step:
    """One sipp run at one rate."""

    rate: int
    calls: int
    ok: bool
    reason: str  # why it failed ("" when ok)
    successful: int
    failed: int
    failures: dict[str, int]
    retransmissions: int
    achieved_rate: float
    wall_s: float
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    generator_cpu_s: float
    generator_cpu_pct: float
    server_cpu_pct: float | None
    returncode: int | None
    udp_rcvbuf_drops: int | None = None
    errors: str = ""


def judge(rate: int, calls: int, result: Any, elapsed_s: float | None) -> tuple[bool, str, float]:
    """(passed, reason, achieved calls/s) for a finished sipp run."""
    elapsed = elapsed_s if elapsed_s and elapsed_s > 0 else None
    achieved = round(result.successful / elapsed, 1) if elapsed else 0.0
    if not result.ok:
        if result.timed_out:
            return False, "timed out", achieved
        if result.failed:
            return False, f"{result.failed} failed calls {result.failures}", achieved
        return False, (f"exit {result.returncode}, {result.successful}/{calls} "
                       "successful"), achieved
    if result.retransmissions > MAX_RETRANS_SHARE * calls:
        return False, f"{result.retransmissions} retransmissions", achieved
    if achieved < MIN_ACHIEVED_SHARE * rate:
        return False, f"only {achieved} calls/s achieved", achieved
    return True, "", achieved


def run_step(target: str, rate: int, duration: float, workdir: Path, *,
             scenario: str | os.PathLike[str] = SCENARIO,
             server_pid: int | None = None, transport: str = "u1") -> Step:
    """Run sipp at rate for duration seconds against target ('127.0.0.1:5060')."""
    calls = max(1, round(rate * duration))
    step_dir = workdir / f"rate-{rate}"
    shutil.rmtree(step_dir, ignore_errors=True)
    cpu_children = children_cpu_s()
    server_cpu = read_cpu_s(server_pid)
    drops = udp_drops()
    began = time.monotonic()
    result = run_sipp(
        scenario, target, transport=transport,  # type: ignore[arg-type]
        service=SERVICE, calls=calls, rate=rate,
        max_concurrent=max(100, rate * 2), timeout=duration + STEP_GRACE_S,
        trace_msg=False, workdir=step_dir, extra=["-trace_rtt", "-rtt_freq", "1"],
    )
    wall = time.monotonic() - began
    generator = children_cpu_s() - cpu_children
    server_after = read_cpu_s(server_pid)
    drops_after = udp_drops()
    elapsed = _stat_seconds(result.stats.get("ElapsedTime(C)", "")) or wall
    ok, reason, achieved = judge(rate, calls, result, elapsed)
    rtt = read_rtt(step_dir)
    step = Step(
        rate=rate, calls=calls, ok=ok, reason=reason, successful=result.successful,
        failed=result.failed, failures=dict(result.failures),
        retransmissions=result.retransmissions, achieved_rate=achieved,
        wall_s=round(wall, 2), p50_ms=percentile(rtt, 50), p99_ms=percentile(rtt, 99),
        mean_ms=result.response_time_ms, generator_cpu_s=round(generator, 3),
        generator_cpu_pct=round(generator / elapsed * 100, 1) if elapsed else 0.0,
        server_cpu_pct=(round((server_after - server_cpu) / wall * 100, 1)
                        if server_cpu is not None and server_after is not None else None),
        returncode=result.returncode,
        udp_rcvbuf_drops=(drops_after - drops
                          if drops is not None and drops_after is not None else None),
        errors="" if ok else result.errors[-2000:],
    )
    shutil.rmtree(step_dir, ignore_errors=True)
    return step


def _stat_seconds(value: str) -> float | None:
    """sipp's 'HH:MM:SS:uuuuuu' as seconds."""
    parts = value.strip().split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    h, m, s, micro = (int(p) for p in parts)
    return (h * 60 + m) * 60 + s + micro / 1e6


def find_max_rate(run: Callable[[int], Step], rates: Sequence[int] = DEFAULT_RATES,
                  refine: int = 1) -> dict[str, Any]:
    """Step through rates until one fails, then bisect `refine` times.

    Returns {max_rate, capped, steps: [...], best: the step at max_rate}; a
    max_rate of 0 means even the first rate failed; capped: the last rate
    passed (the real maximum is higher)."""
    steps: list[Step] = []
    good: Step | None = None
    bad: Step | None = None
    for rate in rates:
        step = run(rate)
        steps.append(step)
        if not step.ok:
            bad = step
            break
        good = step
    for _ in range(refine if bad is not None and good is not None else 0):
        assert good is not None and bad is not None
        middle = (good.rate + bad.rate) // 2
        if middle <= good.rate or middle >= bad.rate:
            break
        step = run(middle)
        steps.append(step)
        if step.ok:
            good = step
        else:
            bad = step
    return {
        "max_rate": good.rate if good else 0,
        "capped": bad is None,
        "best": asdict(good) if good else None,
        "steps": [asdict(s) for s in steps],
    }


# ------------------------------------------------------------ sipp as the UAS


def builtin_uac_scenario(dest: Path) -> Path:
    """uac_jabber.xml without the checks of the 200's SDP, for sipp's built-in
    UAS (which answers an audio-only SDP): the same messages, no verdict on
    the answer's body."""
    text = scenario_path(SCENARIO).read_text(encoding="iso-8859-1")
    text = re.sub(r'(<recv response="200" rtd="true">)\s*<action>.*?</action>\s*(</recv>)',
                  r"\1\n  \2", text, flags=re.DOTALL)
    text = re.sub(r"\s*<Reference variables=[^>]*/>", "", text)
    text = text.replace('name="convergence jabber chat session UAC"',
                        'name="uac_jabber without SDP checks"')
    dest.write_text(text, encoding="iso-8859-1")
    return dest


class SippReferenceUas:
    """A sipp UAS on a loopback port for as long as it is needed (no call limit,
    no timeout, no message trace): tests/sipp/uas_for_selftest.xml, or sipp's
    built-in uas ('builtin:uas')."""

    def __init__(self, workdir: Path, scenario: str = "uas_for_selftest.xml",
                 transport: str = "u1") -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.transport = transport
        keys = {} if scenario.startswith("builtin:") else dict(SELFTEST_UAS_KEYS)
        self.command = sipp_command(
            scenario, None, workdir=workdir, calls=None, local_port=self.port,
            timeout=None, keys=keys, domain=None, trace_msg=False,
            transport=transport,  # type: ignore[arg-type]
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "uas.out"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> Self:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while not port_bound(self.port, self.transport):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sipp UAS did not start: " + " ".join(self.command)
                                   + "\n" + tail(self.log))
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PythonFloorUas(SippReferenceUas):
    """bench/sip_floor.py on a loopback port (UDP and TCP)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.transport = "t1"  # ready once TCP listens (UDP is bound first)
        self.command = [sys.executable, str(ROOT / "bench" / "sip_floor.py"),
                        "--port", str(self.port)]
        self.process = None
        self.log = workdir / "floor.out"


# ------------------------------------------------------------ per target


def bench_target(bench: BenchDir, target: str, *, rates: Sequence[int] = DEFAULT_RATES,
                 duration: float = 8.0, refine: int = 1,
                 transport: str = "udp") -> dict[str, Any]:
    """Find the highest zero-failure rate of one target, on a fresh server."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    require_sipp()
    sipp_transport = TRANSPORTS[transport]
    workdir = bench.server_dir(f"sip-{target}-{transport}")
    scenario: str | Path = SCENARIO
    if target == "convergence":
        server: Any = ConvergenceSipServer(bench)
        describe = "twistd -n convergence, SIP only, the chatline app"
    elif target == "sipp-uas":
        server = SippReferenceUas(workdir / "uas", transport=sipp_transport)
        describe = "sipp UAS tests/sipp/uas_for_selftest.xml (answers as chatline does)"
    elif target == "python-floor":
        server = PythonFloorUas(workdir / "floor")
        describe = "bench/sip_floor.py: Python on Twisted, no SIP stack"
    else:
        server = SippReferenceUas(workdir / "uas", "builtin:uas", transport=sipp_transport)
        scenario = builtin_uac_scenario(workdir / "uac_jabber_unchecked.xml")
        describe = "sipp -sn uas (built-in), UAC without the SDP checks"
    with server:
        host = "127.0.0.1"
        address = f"{host}:{server.port}"

        def run(rate: int) -> Step:
            return run_step(address, rate, duration, workdir, scenario=scenario,
                            server_pid=server.pid, transport=sipp_transport)

        found = find_max_rate(run, rates, refine)
    found.update(target=target, server=describe, duration_s=duration,
                 scenario=str(scenario), transport=transport)
    return found


def ladder(found: dict[str, Any]) -> str:
    """One rate search as a line: every step, held or failed and why."""
    if "error" in found:
        return "ERROR " + found["error"]
    return ", ".join(
        f"{s['rate']} {'held' if s['ok'] else 'FAILED (' + s['reason'][:80] + ')'}"
        for s in found["steps"])


# ------------------------------------------------------------ registrations


REGISTRARS = ("convergence", "kamailio")


def sipreg(address: str, *args: str) -> dict[str, Any]:
    """Run bench/sipreg.py against address; its JSON result."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sipreg.py"), address,
         "--password", PASSWORD, *args],
        capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sipreg failed ({done.returncode}): {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_registrations(bench: BenchDir, target: str, algorithm: str, *,
                        users: int = 1000, concurrency: int = 50,
                        duration: float = 8.0) -> dict[str, Any]:
    """REGISTERs/s with digest `algorithm` against a fresh registrar."""
    if target not in REGISTRARS:
        raise ValueError(f"target must be one of {REGISTRARS}, not {target!r}")
    server: Any = (ConvergenceRegistrar(bench, users, (algorithm,)) if target == "convergence"
                   else KamailioServer(bench, algorithm))
    with server:
        address = f"127.0.0.1:{server.port}"
        sipreg(address, "--users", str(min(users, 200)), "--duration", "1",
               "--algorithm", algorithm)  # warm-up
        cpu = read_cpu_s(server.pid)
        found = sipreg(address, "--users", str(users), "--duration", f"{duration:g}",
                       "--concurrency", str(concurrency), "--algorithm", algorithm)
        after = read_cpu_s(server.pid)
    if cpu is not None and after is not None and found.get("seconds"):
        found["server_cpu_pct"] = round((after - cpu) / found["seconds"] * 100, 1)
    found.update(target=target, server=server.name)
    return found


# ------------------------------------------------------------ memory


def process_rss_kib(pid: int | None, group: bool = False) -> float | None:
    """VmRSS of pid (KiB); with group, the PSS of every process of pid's
    session summed (Kamailio's workers share its memory)."""
    if pid is None:
        return None
    if not group:
        return read_rss_kib(pid)
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) != os.getsid(pid):
                continue
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += float(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


def settle(pid: int | None, group: bool = False, seconds: float = 2.0) -> float | None:
    """The RSS once it has not grown for `seconds` (at most 20 s)."""
    last = process_rss_kib(pid, group)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = process_rss_kib(pid, group)
        if now is None or last is None or now <= last:
            return now
        last = now
    return last


def contact_memory(bench: BenchDir, target: str, contacts: int) -> dict[str, Any]:
    """RSS growth per registered contact: `contacts` users each register one
    contact (MD5 digest, expires 1 day), after a warm-up of 200 others."""
    warm = 200
    group = target == "kamailio"
    server: Any = (ConvergenceRegistrar(bench, contacts + warm, ("MD5",))
                   if target == "convergence" else KamailioServer(bench, "MD5"))
    with server:
        address = f"127.0.0.1:{server.port}"
        sipreg(address, "--users", str(warm), "--first", str(contacts + 1), "--once",
               "--expires", "86400")
        before = settle(server.pid, group)
        found = sipreg(address, "--users", str(contacts), "--once", "--expires", "86400",
                       "--concurrency", "50")
        after = settle(server.pid, group)
    growth = (after - before) if before is not None and after is not None else None
    return {"target": target, "contacts": contacts, "registered": found["completed"],
            "failed": found["failed"], "failure_reasons": found.get("failures", {}),
            "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_contact": round(growth / found["completed"], 2)
            if growth is not None and found["completed"] else None,
            "registrations_per_s": found["registrations_per_s"],
            "measure": "PSS of every process" if group else "VmRSS"}


def _current_calls(workdir: Path) -> tuple[int, int] | None:
    """(current, failed) calls from the last line of sipp's -trace_stat file."""
    try:
        text = (workdir / "stat.csv").read_text(errors="replace")  # sipp_command's -stf
    except OSError:
        return None
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row]
    if len(rows) < 2:
        return None
    header, last = rows[0], rows[-1]
    try:
        return (int(last[header.index("CurrentCall")]),
                int(last[header.index("FailedCall(C)")]))
    except (ValueError, IndexError):
        return None


def dialog_memory(bench: BenchDir, dialogs: int, rate: int = 1000,
                  linger_s: float = 35.0) -> dict[str, Any]:
    """
    RSS growth per confirmed dialog: sipp makes `dialogs` calls of
    uac_jabber.xml at `rate` and holds each after its ACK (a 10-minute
    pause before the BYE); the RSS is read once every call is up and the
    INVITE transactions' Timer L (32 s) has let them go, so what remains
    is the dialogs (with their sessions, SDP and the chatline app state).
    """
    require_sipp()
    with ConvergenceSipServer(bench) as server:
        address = f"127.0.0.1:{server.port}"
        workdir = bench.server_dir("sip-dialogs")
        run_step(address, 200, 2, workdir, server_pid=server.pid)  # warm-up, 400 calls
        time.sleep(linger_s)
        before = settle(server.pid)
        cmd = sipp_command(SCENARIO, address, workdir=workdir, service=SERVICE,
                           calls=dialogs, rate=rate, max_concurrent=dialogs + 10,
                           timeout=dialogs / rate + linger_s + 600, pause_ms=600_000,
                           trace_msg=False)
        sipp = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + dialogs / rate + 60
            state = None
            while time.monotonic() < deadline:
                time.sleep(1)
                state = _current_calls(workdir)
                if state is not None and state[0] + state[1] >= dialogs:
                    break
            time.sleep(linger_s)
            state = _current_calls(workdir)
            after = settle(server.pid)
        finally:
            sipp.send_signal(signal.SIGKILL)
            sipp.wait(timeout=10)
    held = state[0] if state else 0
    growth = (after - before) if before is not None and after is not None else None
    return {"dialogs": dialogs, "held": held, "failed": state[1] if state else None,
            "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_dialog": round(growth / held, 2) if growth is not None and held else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipbench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                        help="comma-separated calls/s, in increasing order")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per step")
    parser.add_argument("--refine", type=int, default=1,
                        help="bisection steps after the first failing rate")
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="udp")
    parser.add_argument("--registrations", choices=("MD5", "SHA-256"), default=None,
                        help="instead of calls: REGISTERs/s with this digest algorithm, "
                             "convergence and kamailio")
    parser.add_argument("--contacts", type=int, default=None,
                        help="instead of calls: RSS per registered contact at this many")
    parser.add_argument("--dialogs", type=int, default=None,
                        help="instead of calls: RSS per confirmed dialog at this many")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    targets = TARGETS if args.target == "all" else (args.target,)
    out: dict[str, Any] = {"sipp": sipp_version(), "results": {}}
    with BenchDir() as bench:
        if args.registrations or args.contacts or args.dialogs:
            if args.registrations:
                for target in REGISTRARS:
                    out["results"][f"register-{target}"] = bench_registrations(
                        bench, target, args.registrations, duration=args.duration)
            if args.contacts:
                for target in REGISTRARS:
                    out["results"][f"contacts-{target}"] = contact_memory(
                        bench, target, args.contacts)
            if args.dialogs:
                out["results"]["dialogs"] = dialog_memory(bench, args.dialogs)
            if not args.json:
                for name, found in out["results"].items():
                    sys.stdout.write(f"{name:22} {json.dumps(found)}\n")
            targets = ()
        for target in targets:
            found = bench_target(bench, target, rates=rates, duration=args.duration,
                                 refine=args.refine, transport=args.transport)
            out["results"][target] = found
            if not args.json:
                best = found["best"] or {}
                sys.stdout.write(
                    f"{target:13} {'>=' if found['capped'] else ''}{found['max_rate']} calls/s"
                    f"  p50 {best.get('p50_ms')} ms  p99 {best.get('p99_ms')} ms"
                    f"  ladder: {ladder(found)}\n")
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
