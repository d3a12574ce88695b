#!/usr/bin/env python3
"""
A room's groupchat fan-out without sockets: ``python bench/muc_fanout.py``.

An XmppServer with every built-in feature (as ``twistd -n convergence``
runs it, flood limit off), N users bound on StringTransports in one
room, one of them sending groupchat messages: what the server does per
copy (routing, MAM's checks, carbons, blocking, delivery,
serialisation) without TLS and the kernel.

    python bench/muc_fanout.py --occupants 50 --messages 2000
    python bench/muc_fanout.py --profile fanout.prof     # cProfile the same run

Prints numbers only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.xmpphelpers import Client, make_server

ROOM = "bench@conference.localhost"


def setup(occupants: int) -> list[Client]:
    server, _clock = make_server(tempfile.mkdtemp(prefix="muc-fanout-"),
                                 muc_occupant_rate=0)
    clients = []
    for n in range(occupants):
        server.accounts.add(f"u{n}@localhost", "pw")
        client = Client(server)
        client.login(f"u{n}", "pw", "r")
        client.available()
        client.send(f"<presence to='{ROOM}/u{n}'/>")
        clients.append(client)
    for client in clients:
        client.transport.clear()
    return clients


def send(clients: list[Client], messages: int) -> float:
    """Seconds to fan C{messages} groupchat messages out to every occupant."""
    sender = clients[0]
    began = time.perf_counter()
    for n in range(messages):
        sender.send(f"<message to='{ROOM}' type='groupchat' id='m{n}'>"
                    f"<body>mb0-{n}</body></message>")
        if n % 50 == 49:
            for client in clients:
                client.transport.clear()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/muc_fanout.py", description=__doc__)
    parser.add_argument("--occupants", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    args = parser.parse_args(argv)
    clients = setup(args.occupants)
    send(clients, min(200, args.messages))  # warm up
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
    seconds = send(clients, args.messages)
    copies = args.messages * args.occupants
    sys.stdout.write(f"{args.occupants} occupants, {args.messages} messages: "
                     f"{copies / seconds:,.0f} copies/s, {seconds / copies * 1e6:.1f} µs "
                     "per copy\n")
    if args.profile:
        profile.disable()
        profile.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
