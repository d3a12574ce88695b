#!/usr/bin/env python3
"""
Chat-room load on top of bench/xmppload.py: groupchat fan-out in one room.

    python bench/mucload.py muc --port 5222 --occupants 50 --senders 5 --window 10

``muc``: users user1..userN (N = --occupants) log in and enter the room
``bench@conference.<domain>`` (user1 creates it and accepts the default
configuration, an instant room; every join asks for no history). Then
--senders of them keep --window groupchat messages each in flight: a
message is in flight until the room reflects it back to its sender.
Every occupant counts the messages it receives. After --warmup seconds,
--duration seconds are measured. Reported: groupchat messages delivered
per second (one per occupant per message: the room's fan-out),
messages sent per second, and the fan-out latency (send to the last
occupant's copy) at p50 and p99.

Occupants read the room's traffic as raw bytes cut at ``</message>``,
and only the marked body is looked at. So the generator does not parse
50 copies of every message, and the server is what is measured. Its
generator CPU % is in the report.

The options, the report and the exit status are xmppload's.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import xmppload
from bench.xmppload import (
    FAILURES,
    READ_SIZE,
    TAG_IQ,
    TAG_PRESENCE,
    CpuMeter,
    Run,
    XmppClient,
    XmppError,
    failure_reason,
    latency_stats,
    login_many,
)

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = NS_MUC + "#user"
NS_MUC_OWNER = NS_MUC + "#owner"
ROOM_NAME = "bench"
#: the body of a measured message: sender index and sequence number
MARK = re.compile(rb"<body>mb(\d+)-(\d+)</body>")
END = b"</message>"


def room_of(run: Run) -> str:
    return f"{ROOM_NAME}@conference.{run.target.domain}"


async def enter(client: XmppClient, room: str, nick: str, timeout: float) -> list[str]:
    """Join C{room} as C{nick} without history; return the self-presence's
    status codes (an error presence raises)."""
    client.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>"
                f"<history maxstanzas='0'/></x></presence>".encode())
    own = f"{room}/{nick}"
    async with asyncio.timeout(timeout):
        while True:
            element = await client.recv()
            if element.tag == TAG_IQ:
                client.answer_iq(element)
                continue
            if element.tag != TAG_PRESENCE or element.get("from") != own:
                continue
            if element.get("type") == "error":
                raise XmppError("muc-join", xmppload._condition(element))
            return [s.get("code", "") for s in element.iter(f"{{{NS_MUC_USER}}}status")]


async def instant_room(client: XmppClient, room: str, timeout: float) -> None:
    """Accept the default configuration of a new room (XEP-0045 10.1.2)."""
    client.send(f"<iq type='set' id='cfg' to='{room}'><query xmlns='{NS_MUC_OWNER}'>"
                "<x xmlns='jabber:x:data' type='submit'/></query></iq>".encode())
    async with asyncio.timeout(timeout):
        while True:
            element = await client.recv()
            if element.tag == TAG_IQ and element.get("id") == "cfg":
                if element.get("type") != "result":
                    raise XmppError("muc-config", xmppload._condition(element))
                return
            if element.tag == TAG_IQ:
                client.answer_iq(element)


class Fanout:
    """What the occupants receive while the senders send."""

    def __init__(self, occupants: int) -> None:
        self.occupants = occupants
        self.measuring = False
        self.delivered = 0
        self.sent = 0
        #: (sender, seq) -> (sent at, copies received so far)
        self.flight: dict[tuple[int, int], list[float]] = {}
        self.latencies: list[float] = []
        self.errors = 0
        self.windows: dict[int, asyncio.Semaphore] = {}

    def received(self, index: int, sender: int, seq: int, now: float) -> None:
        key = (sender, seq)
        entry = self.flight.get(key)
        if entry is None:
            return
        entry[1] += 1
        if self.measuring:
            self.delivered += 1
        if entry[1] >= self.occupants:
            del self.flight[key]
            if self.measuring:
                self.latencies.append(now - entry[0])
        if sender == index:
            self.windows[index].release()

    def refused(self, index: int, sender: int, seq: int) -> None:
        """The room bounced a message back to its sender (a flood limit …)."""
        if sender != index or self.flight.pop((sender, seq), None) is None:
            return
        self.errors += 1
        self.windows[index].release()


async def occupant(client: XmppClient, index: int, fanout: Fanout) -> None:
    """Read the room's traffic as bytes until the stream ends."""
    assert client.reader is not None
    carry = b""
    while True:
        try:
            data = await client.reader.read(READ_SIZE)
        except (OSError, ssl.SSLError):
            return
        if not data:
            return
        data = carry + data
        cut = data.rfind(END)
        if cut < 0:
            carry = data
            continue
        carry = data[cut + len(END):]
        now = time.monotonic()
        for segment in data[:cut].split(END):
            match = MARK.search(segment)
            if match is None:
                continue
            start = segment.rfind(b"<message")
            head = segment[start:segment.find(b">", start)]
            if b"type='error'" in head or b'type="error"' in head:
                fanout.refused(index, int(match.group(1)), int(match.group(2)))
            else:
                fanout.received(index, int(match.group(1)), int(match.group(2)), now)


async def sender(client: XmppClient, index: int, room: str, fanout: Fanout,
                 stop: asyncio.Event) -> None:
    window = fanout.windows[index]
    seq = 0
    while not stop.is_set():
        await window.acquire()
        if stop.is_set():
            return
        seq += 1
        fanout.flight[(index, seq)] = [time.monotonic(), 0]
        if fanout.measuring:
            fanout.sent += 1
        client.send(f"<message to='{room}' type='groupchat' id='m{seq}'>"
                    f"<body>mb{index}-{seq}</body></message>".encode())
        assert client.writer is not None
        if seq % 32 == 0:
            await client.writer.drain()


async def mode_muc(run: Run) -> dict[str, Any]:
    """N occupants in one room, S senders keeping W messages in flight."""
    args = run.args
    total, senders = args.occupants, min(args.senders, args.occupants)
    room = room_of(run)
    prefix = args.users_prefix
    began_setup = time.monotonic()
    clients, reasons = await login_many(run, total, lambda i: f"{prefix}{i + 1}",
                                        min(20, total))
    live = [c for c in clients if c is not None]
    if len(live) < total:
        for client in live:
            client.abort()
        return {"delivered": 0, "failures": total - len(live),
                "failure_reasons": {f"login: {k}": v for k, v in reasons.items()}}
    failures: Counter[str] = Counter()
    try:
        codes = await enter(live[0], room, "u1", run.target.timeout)
        if "201" in codes:
            await instant_room(live[0], room, run.target.timeout)
        gate = asyncio.Semaphore(10)

        async def join(n: int) -> None:
            async with gate:
                await enter(live[n], room, f"u{n + 1}", run.target.timeout)

        await asyncio.gather(*(join(n) for n in range(1, total)))
    except FAILURES as e:
        for client in live:
            client.abort()
        return {"delivered": 0, "failures": 1,
                "failure_reasons": {f"join: {failure_reason(e)}": 1}}
    setup = time.monotonic() - began_setup
    fanout = Fanout(total)
    for n in range(senders):
        fanout.windows[n] = asyncio.Semaphore(args.window)
    readers = [asyncio.create_task(occupant(c, n, fanout)) for n, c in enumerate(live)]
    await run.sleep(0.5)  # the joins' presence settles
    stop = asyncio.Event()
    tasks = [asyncio.create_task(sender(live[n], n, room, fanout, stop))
             for n in range(senders)]
    await run.sleep(args.warmup)
    fanout.measuring = True
    cpu = CpuMeter(run.server_pid)
    began = time.monotonic()
    await run.sleep(args.duration)
    fanout.measuring = False
    elapsed = time.monotonic() - began
    server_cpu = cpu.result()
    stop.set()
    for window in fanout.windows.values():
        window.release()
    await asyncio.gather(*tasks, return_exceptions=True)
    await run.sleep(min(args.grace, 2.0))  # in-flight copies arrive (not counted)
    lost = len(fanout.flight)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for client in live:
        client.abort()
    if fanout.errors:
        failures["error stanzas"] = fanout.errors
    return {
        "occupants": total,
        "senders": senders,
        "delivered": fanout.delivered,
        "delivered_per_s": round(fanout.delivered / elapsed, 1) if elapsed > 0 else 0.0,
        "sent_per_s": round(fanout.sent / elapsed, 1) if elapsed > 0 else 0.0,
        "in_flight_at_end": lost,
        "errors": fanout.errors,
        "failure_reasons": dict(failures),
        "elapsed_s": round(elapsed, 3),
        "setup_s": round(setup, 3),
        **latency_stats(fanout.latencies, "fanout"),
        **server_cpu,
    }


MODES = {"muc": mode_muc}


def install() -> None:
    """Make the chat-room mode an xmppload mode."""
    xmppload.MODES.update(MODES)
    xmppload.DEFAULT_USERS["muc"] = lambda a: a.occupants
    xmppload.SUCCESS_KEYS["muc"] = "delivered"
    xmppload.MODE_PARAMS["muc"] = ("occupants", "senders", "window", "duration", "warmup")


if __name__ == "__main__":
    install()
    sys.exit(xmppload.main())
