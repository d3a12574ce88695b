#!/usr/bin/env python3
"""
IM load on top of bench/xmppload.py: logins with a full roster and presence
fan-out, offline messages stored and delivered.

    python bench/imload.py roster_login --port 5222 --concurrency 10 --contacts 100
    python bench/imload.py offline      --port 5222 --messages 2000 --json

The rosters must exist before the run (bench/rosters.py writes them):

- ``roster_login``: login users user1..userC (C = --concurrency), each with the
  contacts user(C+1)..user(C+K) (K = --contacts), subscription both. The K
  contacts log in first and stay online. Then C workers repeat: connect,
  authenticate, bind, get the roster (it must hold K items), send initial
  presence, wait for the K contacts' presence (the server answers its probes),
  and close. Reported: logins/s, and presence stanzas delivered per second to
  all clients (the probe answers to the login user, and its available and
  unavailable presence to every contact).
- ``offline``: user1 sends --messages chat messages to user2, who is offline,
  then pings the server; the store phase ends with the ping's answer. user2
  then logs in, sends presence and receives them; the delivery phase ends with
  the last one. Reported: stored/s, delivered/s, both phases together, and how
  many came out of order or not at all.

The options, the report and the exit status are xmppload's.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import xmppload  # noqa: E402
from bench.xmppload import (  # noqa: E402
    FAILURES,
    NS_PING,
    READ_SIZE,
    TAG_BODY,
    TAG_IQ,
    TAG_MESSAGE,
    TAG_PRESENCE,
    CpuMeter,
    Run,
    XmppClient,
    XmppError,
    close_all,
    failure_reason,
    latency_stats,
    login_many,
)


async def _hold(client: XmppClient, counts: Counter[str]) -> None:
    """Read until the stream ends: count presence, answer iqs."""
    assert client.reader is not None

    def handle(element: Any) -> None:
        if element.tag == TAG_PRESENCE:
            counts["presence"] += 1
        elif element.tag == TAG_IQ:
            client.answer_iq(element)

    for element in client.pending:
        handle(element)
    client.pending.clear()
    while not client.framer.closed:
        try:
            data = await client.reader.read(READ_SIZE)
        except (OSError, ssl.SSLError):
            return
        if not data:
            return
        try:
            for element in client.framer.feed(data):
                handle(element)
        except XmppError:
            return


async def _await_contacts(client: XmppClient, wanted: int, timeout: float) -> int:
    """Read until ``wanted`` contacts (other bare JIDs) sent available
    presence; return the presence stanzas read."""
    own = client.jid.split("/", 1)[0]
    seen: set[str] = set()
    count = 0
    async with asyncio.timeout(timeout):
        while len(seen) < wanted:
            element = await client.recv()
            if element.tag == TAG_IQ:
                client.answer_iq(element)
                continue
            if element.tag != TAG_PRESENCE:
                continue
            count += 1
            sender = element.get("from", "").split("/", 1)[0]
            if sender != own and element.get("type") is None:
                seen.add(sender)
    return count


async def mode_roster_login(run: Run) -> dict[str, Any]:
    """C workers repeat logins of users with K online contacts."""
    args = run.args
    hubs, size = args.concurrency, args.contacts
    prefix = args.users_prefix
    contacts, reasons = await login_many(
        run, size, lambda i: f"{prefix}{hubs + 1 + i}", min(50, size))
    live = [c for c in contacts if c is not None]
    if len(live) < size:
        for client in live:
            client.abort()
        return {"logins": 0, "failures": size - len(live),
                "failure_reasons": {f"contact login: {k}": v for k, v in reasons.items()}}
    counts: Counter[str] = Counter()
    holders = [asyncio.create_task(_hold(c, counts)) for c in live]
    await run.sleep(0.5)  # the contacts' own probes and presence settle
    counts.clear()
    deadline = time.monotonic() + args.duration
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    received = Counter[str]()
    cpu = CpuMeter(run.server_pid)

    async def worker(index: int) -> None:
        while not run.stop.is_set() and time.monotonic() < deadline:
            client = XmppClient(run.target, f"{prefix}{index + 1}", run.source(index))
            begin = time.monotonic()
            try:
                await client.login(presence=False, roster=True)
                if len(client.roster) != size:
                    raise XmppError("roster-size", f"{len(client.roster)} items, not {size}")
                client.send(b"<presence/>")
                received["presence"] += await _await_contacts(client, size,
                                                              run.target.timeout)
                latencies.append(time.monotonic() - begin)
                await client.close()
            except FAILURES as e:
                client.abort()
                failures[failure_reason(e)] += 1
                await run.sleep(0.05)

    began = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(hubs)))
    elapsed = time.monotonic() - began
    await run.sleep(0.3)  # the last unavailable presence reaches the contacts
    server_cpu = cpu.result()
    delivered = received["presence"] + counts["presence"]
    for task in holders:
        task.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    await close_all(live, 50, args.timeout)
    return {
        "logins": len(latencies),
        "failures": sum(failures.values()),
        "failure_reasons": dict(failures),
        "logins_per_s": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "presence_delivered": delivered,
        "presence_per_s": round(delivered / elapsed, 1) if elapsed > 0 else 0.0,
        "elapsed_s": round(elapsed, 3),
        **latency_stats(latencies),
        **server_cpu,
    }


async def mode_offline(run: Run) -> dict[str, Any]:
    """user1 fills user2's offline store; user2 logs in and drains it."""
    args = run.args
    total = args.messages
    prefix, domain = args.users_prefix, run.target.domain
    sender = XmppClient(run.target, f"{prefix}1", run.source(0))
    receiver = XmppClient(run.target, f"{prefix}2", run.source(1))
    cpu = CpuMeter(run.server_pid)
    try:
        await sender.login()
        began = time.monotonic()
        to = f"{prefix}2@{domain}"
        for n in range(total):
            sender.send(f"<message to='{to}' type='chat' id='o{n}'>"
                        f"<body>offline {n}</body></message>".encode())
            if n % 100 == 99:
                assert sender.writer is not None
                await sender.writer.drain()
        sender.send(f"<iq type='get' id='done' to='{domain}'>"
                    f"<ping xmlns='{NS_PING}'/></iq>".encode())
        errors = 0
        async with asyncio.timeout(max(run.target.timeout, total / 200)):
            while True:
                element = await sender.recv()
                if element.tag == TAG_MESSAGE and element.get("type") == "error":
                    errors += 1
                elif element.tag == TAG_IQ and element.get("id") == "done":
                    break
        stored = time.monotonic() - began
        store_cpu = cpu.result()

        await receiver.login(presence=False)
        cpu = CpuMeter(run.server_pid)
        began = time.monotonic()
        receiver.send(b"<presence/>")
        bodies: list[int] = []
        async with asyncio.timeout(max(run.target.timeout, total / 200)):
            while len(bodies) < total:
                element = await receiver.recv()
                if element.tag == TAG_IQ:
                    receiver.answer_iq(element)
                elif element.tag == TAG_MESSAGE:
                    text = element.findtext(TAG_BODY) or ""
                    if text.startswith("offline "):
                        bodies.append(int(text.split()[1]))
        delivered = time.monotonic() - began
        deliver_cpu = cpu.result()
    except FAILURES as e:
        sender.abort()
        receiver.abort()
        return {"messages": 0, "failures": 1, "failure_reasons": {failure_reason(e): 1}}
    await close_all([sender, receiver], 2, args.timeout)
    return {
        "messages": len(bodies),
        "errors_to_sender": errors,
        "out_of_order": sum(1 for a, b in zip(bodies, bodies[1:]) if b < a),
        "missing": total - len(set(bodies)),
        "store_s": round(stored, 3),
        "deliver_s": round(delivered, 3),
        "stored_per_s": round(total / stored, 1) if stored > 0 else 0.0,
        "delivered_per_s": round(total / delivered, 1) if delivered > 0 else 0.0,
        "store_and_deliver_per_s": round(total / (stored + delivered), 1),
        "store_server_cpu_s": store_cpu["server_cpu_s"],
        "deliver_server_cpu_s": deliver_cpu["server_cpu_s"],
    }


MODES = {"roster_login": mode_roster_login, "offline": mode_offline}


def install() -> None:
    """Make the IM modes xmppload modes."""
    xmppload.MODES.update(MODES)
    xmppload.DEFAULT_USERS.update({
        "roster_login": lambda a: a.concurrency + a.contacts,
        "offline": lambda a: 2})
    xmppload.SUCCESS_KEYS.update({"roster_login": "logins", "offline": "messages"})
    xmppload.MODE_PARAMS.update({
        "roster_login": ("concurrency", "contacts", "duration"),
        "offline": ("messages",)})


if __name__ == "__main__":
    install()
    sys.exit(xmppload.main())
