#!/usr/bin/env python3
"""
SIP REGISTER load with digest authentication (MD5 or SHA-256, RFC 8760).

sipp 3.6 computes MD5 digests only, so this generator is ours, the same
for every registrar: each registration is a REGISTER without credentials,
its 401, and the REGISTER answering the challenge of the chosen algorithm
(``qop=auth``), answered 200.  ``--concurrency`` registrations are in
flight at any time (a closed loop, as many user agents refreshing at
once), over UDP, each user its own Call-ID with a rising CSeq;
retransmissions after 500 ms, doubling (RFC 3261 Timer E).

    python bench/sipreg.py 127.0.0.1:5060 --users 1000 --duration 8 --algorithm SHA-256
    python bench/sipreg.py 127.0.0.1:5060 --users 10000 --once   # register each user once

Prints one JSON object: registrations/s, failures, latency percentiles,
the generator's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)\s*:\s*([^\r\n]+)", re.IGNORECASE)
_CHALLENGE = re.compile(rb"\r\nWWW-Authenticate\s*:\s*([^\r\n]+)", re.IGNORECASE)


def h(algorithm: str, text: str) -> str:
    return HASHES[algorithm](text.encode()).hexdigest()


def authorization(challenge: str, algorithm: str, user: str, password: str,
                  uri: str, nc: int) -> str:
    """The Authorization value answering one Digest challenge (RFC 7616 3.4)."""
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(challenge)}
    realm, nonce = params["realm"], params["nonce"]
    ha1 = h(algorithm, f"{user}:{realm}:{password}")
    ha2 = h(algorithm, f"REGISTER:{uri}")
    qop = "auth" if "auth" in (params.get("qop") or "").split(",") else None
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if qop:
        cnonce = os.urandom(8).hex()
        count = f"{nc:08x}"
        response = h(algorithm, f"{ha1}:{nonce}:{count}:{cnonce}:{qop}:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{h(algorithm, f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in params:
        parts.append(f'opaque="{params["opaque"]}"')
    parts.append(f"algorithm={algorithm}")
    return "Digest " + ", ".join(parts)


def pick_challenge(values: list[str], algorithm: str) -> str | None:
    """The challenge of `algorithm` (no algorithm= means MD5)."""
    for value in values:
        found = re.search(r"algorithm=\"?([\w-]+)", value, re.IGNORECASE)
        named = found.group(1).upper() if found else "MD5"
        if named == algorithm:
            return value
    return None


@dataclass
class Registration:
    """One registration in flight."""

    user: str
    call_id: str
    cseq: int
    began: float
    step: int = 0  # 0: waiting for the 401, 1: waiting for the 200
    data: bytes = b""
    timer: asyncio.TimerHandle | None = None
    interval: float = 0.5


@dataclass
class Results:
    completed: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    retransmissions: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1


class RegisterClient(asyncio.DatagramProtocol):
    """Keeps `concurrency` registrations in flight against one registrar."""

    def __init__(self, target: tuple[str, int], domain: str, users: list[str], password: str,
                 algorithm: str, concurrency: int, once: bool, expires: int) -> None:
        self.target = target
        self.domain = domain
        self.users = users
        self.password = password
        self.algorithm = algorithm
        self.concurrency = concurrency
        self.once = once
        self.expires = expires
        self.transport: asyncio.DatagramTransport | None = None
        self.local = ("127.0.0.1", 0)
        self.pending: dict[str, Registration] = {}
        self.cseqs: dict[str, int] = {}
        self.next_user = 0
        self.results = Results()
        self.stopping = False
        self.done = asyncio.get_event_loop().create_future()
        self.tag = os.urandom(4).hex()

    # sending
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.local = transport.get_extra_info("sockname")[:2]

    def start(self) -> None:
        for _ in range(self.concurrency):
            self.launch()

    def launch(self) -> None:
        if self.stopping or (self.once and self.next_user >= len(self.users)):
            if not self.pending and not self.done.done():
                self.done.set_result(None)
            return
        user = self.users[self.next_user % len(self.users)]
        self.next_user += 1
        call_id = f"{user}-{self.tag}"
        if call_id in self.pending:  # still in flight (slow): the next user instead
            asyncio.get_event_loop().call_soon(self.launch)
            return
        cseq = self.cseqs.get(user, 0) + 1
        self.cseqs[user] = cseq + 1
        reg = Registration(user, call_id, cseq, time.monotonic())
        self.pending[call_id] = reg
        self.send(reg, None)

    def request(self, reg: Registration, auth: str | None) -> bytes:
        host, port = self.local
        uri = f"sip:{self.domain}"
        lines = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{os.urandom(6).hex()};rport",
            "Max-Forwards: 70",
            f"From: <sip:{reg.user}@{self.domain}>;tag={self.tag}",
            f"To: <sip:{reg.user}@{self.domain}>",
            f"Call-ID: {reg.call_id}",
            f"CSeq: {reg.cseq} REGISTER",
            f"Contact: <sip:{reg.user}@{host}:{port}>",
            f"Expires: {self.expires}",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode()

    def send(self, reg: Registration, auth: str | None) -> None:
        reg.data = self.request(reg, auth)
        reg.interval = 0.5
        self._transmit(reg)

    def _transmit(self, reg: Registration) -> None:
        assert self.transport is not None
        self.transport.sendto(reg.data, self.target)
        loop = asyncio.get_event_loop()
        reg.timer = loop.call_later(reg.interval, self._retransmit, reg)

    def _retransmit(self, reg: Registration) -> None:
        if self.pending.get(reg.call_id) is not reg:
            return
        if time.monotonic() - reg.began > 32:  # Timer F
            self._finish(reg, "timeout")
            return
        self.results.retransmissions += 1
        reg.interval = min(reg.interval * 2, 4.0)
        self._transmit(reg)

    # receiving
    def datagram_received(self, data: bytes, addr: Any) -> None:
        status = _STATUS.match(data)
        call_id = _CALL_ID.search(data)
        if status is None or call_id is None:
            return
        reg = self.pending.get(call_id.group(1).strip().decode())
        if reg is None:
            return
        code = int(status.group(1))
        if code < 200:
            return
        expected = 401 if reg.step == 0 else 200
        if reg.step == 0 and code == 200:
            self._finish(reg, None)  # a registrar that does not challenge
            return
        if code != expected:
            self._finish(reg, f"{code}")
            return
        if reg.timer is not None:
            reg.timer.cancel()
        if code == 200:
            self._finish(reg, None)
            return
        challenges = [m.decode() for m in _CHALLENGE.findall(data)]
        challenge = pick_challenge(challenges, self.algorithm)
        if challenge is None:
            self._finish(reg, f"no {self.algorithm} challenge")
            return
        reg.step = 1
        reg.cseq = self.cseqs[reg.user]
        self.cseqs[reg.user] = reg.cseq + 1
        self.send(reg, authorization(challenge, self.algorithm, reg.user, self.password,
                                     f"sip:{self.domain}", 1))

    def _finish(self, reg: Registration, failure: str | None) -> None:
        if reg.timer is not None:
            reg.timer.cancel()
        self.pending.pop(reg.call_id, None)
        if failure is None:
            self.results.completed += 1
            self.results.latencies_ms.append((time.monotonic() - reg.began) * 1000)
        else:
            self.results.fail(failure)
        self.launch()


def percentile(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, int(p / 100 * len(ordered) + 0.5) - 1))], 2)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    host, _, port = args.target.rpartition(":")
    users = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.users)]
    concurrency = min(args.concurrency, len(users))  # a user is in flight once at most
    loop = asyncio.get_event_loop()
    transport, client = await loop.create_datagram_endpoint(
        lambda: RegisterClient((host, int(port)), args.domain, users, args.password,
                               args.algorithm, concurrency, args.once, args.expires),
        local_addr=("127.0.0.1", 0))
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    except OSError:
        pass
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    client.start()
    if args.once:
        # each user once: as long as they take, at 100 registrations/s or more
        await asyncio.wait_for(client.done, timeout=args.duration + 60 + len(users) / 100)
    else:
        await asyncio.sleep(args.duration)
        client.stopping = True
        if client.pending:
            client.done = loop.create_future()
            try:
                await asyncio.wait_for(client.done, timeout=40)
            except TimeoutError:
                pass
    elapsed = time.monotonic() - began
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    transport.close()
    results = client.results
    lat = sorted(results.latencies_ms)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "algorithm": args.algorithm, "users": args.users, "concurrency": concurrency,
        "completed": results.completed, "failed": sum(results.failed.values()),
        "failures": results.failed, "retransmissions": results.retransmissions,
        "seconds": round(elapsed, 2),
        "registrations_per_s": round(results.completed / elapsed, 1) if elapsed else 0.0,
        "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
        "generator_cpu_pct": round(cpu / elapsed * 100, 1) if elapsed else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipreg", description=__doc__.split("\n\n")[1])
    parser.add_argument("target", help="host:port of the registrar")
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--prefix", default="user")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--first", type=int, default=1, help="the first user's number")
    parser.add_argument("--password", default="bench-password")
    parser.add_argument("--algorithm", choices=sorted(HASHES), default="MD5")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--expires", type=int, default=3600)
    parser.add_argument("--once", action="store_true",
                        help="register every user once, then stop (memory figures)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
