#!/usr/bin/env python3
"""
One SIP call's cost without sockets: ``python bench/sip_callpath.py``.

Builds the whole server as ``twistd -n convergence`` does (the shipped
``chatline`` app answering), replaces the UDP socket by a list, and feeds
the datagrams sipp's ``tests/sipp/uac_jabber.xml`` sends (INVITE with the
jabber-chat SDP, ACK, BYE) straight into the UDP protocol, reading the
To-tag from the 200 as sipp does.  The timers run on a
simulated clock advanced by the call rate (with the reactor's own heap of
timed calls, not L{twisted.internet.task.Clock}'s sorted list), and each
call waits 100 ms between ACK and BYE as sipp's does, so the calls in
progress and the waiting transactions (Timer J/K/H/I) come and go as
under load.

    python bench/sip_callpath.py --calls 20000            # calls/s of the stack alone
    python bench/sip_callpath.py --profile callpath.prof  # cProfile the same run

Prints numbers only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import re
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twisted.internet.base import ReactorBase

from convergence.config import load_config
from convergence.service import build

SDP = (
    "v=0\r\n"
    "o=caller 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "m=message 5222 xmpp/tcp chat\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "a=jid:caller@localhost\r\n"
    "a=thread:sipp-1-{n}\r\n"
)

HEAD = (
    "{method} sip:chatline@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-{n}-{b}\r\n"
    "From: caller <sip:caller@127.0.0.1:5070>;tag=1SIPpTag00{n}\r\n"
    "To: chatline <sip:chatline@127.0.0.1:5060>{to_tag}\r\n"
    "Call-ID: {n}-1@127.0.0.1\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Contact: <sip:caller@127.0.0.1:5070;transport=UDP>\r\n"
    "Max-Forwards: 70\r\n"
    "{extra}"
    "Content-Length: {length}\r\n"
    "\r\n"
)

TO_TAG = re.compile(rb"\r\nTo:[^\r]*;tag=([^;\r>]+)", re.IGNORECASE)


def invite(n: int) -> bytes:
    body = SDP.format(n=n).encode()
    extra = ("Subject: jabber chat session (draft-sparks-simple-jabber-sessions)\r\n"
             "Content-Type: application/sdp\r\n")
    return HEAD.format(method="INVITE", n=n, b=0, to_tag="", cseq=1, extra=extra,
                       length=len(body)).encode() + body


def in_dialog(method: str, n: int, tag: str, cseq: int, branch: int) -> bytes:
    return HEAD.format(method=method, n=n, b=branch, to_tag=f";tag={tag}", cseq=cseq,
                       extra="", length=0).encode()


class Clock:
    """Simulated time with the reactor's timed calls: L{ReactorBase}'s own
    callLater, cancel and run methods over a heap, and C{advance} as
    L{twisted.internet.task.Clock}'s."""

    callLater = ReactorBase.callLater
    getDelayedCalls = ReactorBase.getDelayedCalls
    runUntilCurrent = ReactorBase.runUntilCurrent
    _cancelCallLater = ReactorBase._cancelCallLater
    _moveCallLaterSooner = ReactorBase._moveCallLaterSooner
    _insertNewDelayedCalls = ReactorBase._insertNewDelayedCalls

    def __init__(self) -> None:
        self.now = 0.0
        self._pendingTimedCalls: list[Any] = []
        self._newTimedCalls: list[Any] = []
        self._cancellations = 0
        self.threadCallQueue: list[Any] = []
        self._justStopped = False

    def seconds(self) -> float:
        return self.now

    def advance(self, amount: float) -> None:
        self.now += amount
        self.runUntilCurrent()


class Wire:
    """Stands in for the UDP port: keeps what is written."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes, addr: Any = None) -> None:
        self.sent.append(data)


def make_stack(tmp: Path) -> tuple[Any, Clock, Wire]:
    config_file = tmp / "c.toml"
    config_file.write_text("[sip]\nmax_requests_per_second_per_source = 0\n")
    clock = Clock()
    config = load_config(config_file, {"data_dir": str(tmp / "data")})
    server = build(config, clock)
    from convergence.sip.transport import SipDatagramProtocol

    layer = server.sip.transport
    layer.udp = SipDatagramProtocol(layer)
    wire = Wire()
    layer.udp.transport = wire
    layer.udp_port = layer.tcp_port = 5060
    layer.host = "127.0.0.1"
    return server, clock, wire


def run_calls(proto: Any, clock: Clock, wire: Wire, calls: int, rate: float,
              start: int = 0, pause: float = 0.1) -> int:
    """Feed `calls` calls; returns how many got 200 to both INVITE and BYE.

    As sipp's scenario, each call waits `pause` seconds of the simulated
    clock between its ACK and its BYE, so rate x pause calls are in
    progress at once (their dialogs, sessions and timers all live)."""
    ok = 0
    step = 1.0 / rate
    addr = ("127.0.0.1", 5070)
    waiting: deque[tuple[int, str]] = deque()
    in_flight = max(0, round(rate * pause))

    def bye(n: int, tag: str) -> int:
        wire.sent.clear()
        proto.datagramReceived(in_dialog("BYE", n, tag, 2, 1), addr)
        return 1 if wire.sent and wire.sent[-1].startswith(b"SIP/2.0 200") else 0

    for n in range(start, start + calls):
        wire.sent.clear()
        proto.datagramReceived(invite(n), addr)
        final = wire.sent[-1] if wire.sent else b""
        match = TO_TAG.search(final)
        if final.startswith(b"SIP/2.0 200") and match is not None:
            tag = match.group(1).decode()
            proto.datagramReceived(in_dialog("ACK", n, tag, 1, 0), addr)
            waiting.append((n, tag))
        while len(waiting) > in_flight:
            ok += bye(*waiting.popleft())
        clock.advance(step)
    while waiting:
        ok += bye(*waiting.popleft())
        clock.advance(step)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="calls per second of the simulated clock")
    parser.add_argument("--pause", type=float, default=0.1,
                        help="seconds between a call's ACK and its BYE (sipp's)")
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server, clock, wire = make_stack(Path(tmp))
        proto = server.sip.transport.udp
        run_calls(proto, clock, wire, 2000, args.rate, pause=args.pause)  # warm up
        gc.collect()
        gc.freeze()
        profiler = cProfile.Profile() if args.profile else None
        began = time.perf_counter()
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        ok = run_calls(proto, clock, wire, args.calls, args.rate, start=10**6,
                       pause=args.pause)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu
        elapsed = time.perf_counter() - began
        sys.stdout.write(f"{ok}/{args.calls} calls, {elapsed:.2f} s wall, {cpu:.2f} s CPU: "
                         f"{args.calls / cpu:.0f} calls/s of CPU, "
                         f"{cpu / args.calls * 1e6:.0f} us CPU/call\n")
        if profiler:
            profiler.dump_stats(args.profile)
            stats = pstats.Stats(args.profile)
            stats.sort_stats("tottime").print_stats(args.top)
        server.sip.shutdown()
    return 0 if ok == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
