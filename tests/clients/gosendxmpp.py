"""
go-sendxmpp (Debian; Go, go-xmpp): send, listen, send into a room, HTTP
upload (``-h FILE``). Both sides of a chat are go-sendxmpp: one listens
(``-l``), the other sends; the listener prints what it gets.
"""

from __future__ import annotations

import os
import re
import shutil

from tests.clients.runner import (
    Background,
    Cell,
    Server,
    check,
    execute,
    failed,
    fetch,
    package_version,
    passed,
    start_witness,
    witness_result,
)

NAME = "go-sendxmpp"
LIBRARY = "Go, go-xmpp"
ACCOUNTS = ("gosx-a", "gosx-b", "gosx-c")
#: the slixmpp peer that creates the room (go-sendxmpp cannot configure one)
PEERS = ("gosx-owner",)
PLAIN_ONLY = "Debian's go-xmpp offers no SCRAM"
PROGRAM = "go-sendxmpp"
ROOM = "gosx-room@conference.localhost"
CANNOT = {
    "roster": "no roster commands",
    "presence": "shows no presence",
    "vcard": "no vCard commands",
    "carbons": "no carbons",
    "mam": "no archive queries",
    "sm": "no stream management in its go-xmpp",
}


def missing() -> str:
    return "" if shutil.which(PROGRAM) else f"{PROGRAM} not on PATH"


def version() -> str:
    _, out = execute([PROGRAM, "--version"], dict(os.environ), limit=10)
    m = re.search(r"go-sendxmpp (\S+)", out)
    return (m.group(1) if m else "unknown") + package_version(PROGRAM)


def _argv(server: Server, local: str, *args: str) -> list[str]:
    return [PROGRAM, "-u", server.jid(local), "-p", "matrix-pw",
            "-j", f"127.0.0.1:{server.c2s_port}", "--timeout", "10", *args]


def _listen(server: Server, local: str, name: str, *args: str) -> Background:
    skip = server.bound_count(local, "go-sendxmpp")
    listener = Background(_argv(server, local, "-l", *args), server.env(),
                          server.scratch("gosendxmpp") / f"{name}.out")
    server.wait_bound(local, "go-sendxmpp", skip=skip)
    return listener


def _send(server: Server, local: str, text: str, *args: str) -> tuple[int, str]:
    return execute(_argv(server, local, *args), server.env(), stdin=text.encode() + b"\n")


def chat(server: Server) -> Cell:
    notes = []
    for sender, receiver in (("gosx-a", "gosx-b"), ("gosx-b", "gosx-a")):
        text = f"go-sendxmpp says hello from {sender}"
        listener = _listen(server, receiver, f"chat-{receiver}")
        code, out = _send(server, sender, text, server.jid(receiver))
        got = listener.wait_for(text, 10)
        listener.stop()
        if code != 0 or not got:
            notes.append(f"{sender} -> {receiver}: exit {code}, received {got}: {out[-200:]}")
    return check(not notes, "both ways, as listener and sender", "; ".join(notes))


def offline(server: Server) -> Cell:
    text = "go-sendxmpp while you were out"
    code, out = _send(server, "gosx-a", text, server.jid("gosx-c"))
    if code != 0:
        return failed(f"send exit {code}: {out[-200:]}")
    if not server.wait_stored("gosx-c"):
        return failed("the message was never stored for the logged-out user")
    listener = _listen(server, "gosx-c", "offline-c")
    got = listener.wait_for(text, 10)
    listener.stop()
    return check(got, "stored, printed by the listener at its login", "not delivered at login")


def upload(server: Server) -> Cell:
    path = server.scratch("gosendxmpp") / "upload-test.bin"
    payload = bytes(range(256)) * 40
    path.write_bytes(payload)
    listener = _listen(server, "gosx-b", "upload-b")
    code, out = execute(_argv(server, "gosx-a", "-h", str(path), server.jid("gosx-b")),
                    server.env())
    got = listener.wait_for("upload-test.bin", 10)
    text = listener.stop()
    if code != 0:
        return failed(f"exit {code}: {out[-300:]}")
    m = re.search(r"(https?://\S+/upload-test\.bin)", text)
    if not got or not m:
        return failed("no URL received by the peer")
    body = fetch(m.group(1))
    return check(body == payload, f"{len(payload)} bytes PUT, URL sent, GET identical",
                 f"GET gave {len(body)} bytes")


def muc(server: Server) -> Cell:
    """go-sendxmpp joins rooms but cannot configure one, and a new room is
    locked until its owner does: a slixmpp peer creates it (an instant
    room) and stays in it, then a go-sendxmpp listener joins and another
    go-sendxmpp sends into it."""
    text = "go-sendxmpp into the room"
    owner = start_witness(server, "gosx-owner", server.scratch("gosendxmpp") / "muc-owner.out",
                          text, (ROOM, "owner"))
    # options before the recipients: go-sendxmpp's getopt stops at the first
    listener = _listen(server, "gosx-b", "muc-b", "-c", "-a", "gosx-b", ROOM)
    code, out = _send(server, "gosx-a", text, "-c", "-a", "gosx-a", ROOM)
    got = listener.wait_for(text, 8)
    heard = listener.stop()
    result = witness_result(owner)
    if result["joined"] is not True:
        return failed(f"the room's owner (slixmpp) could not create it: {result['joined']}")
    if code == 0 and got:
        return passed("joined a room (created by a slixmpp owner), sent into it,"
                      " seen by a go-sendxmpp listener in it")
    said = "; ".join(f"{who} said {text.strip()[-120:]!r}" for who, text
                     in (("sender", out), ("listener", heard)) if text.strip())
    return failed(f"sender exit {code}, not seen by a go-sendxmpp listener in the room"
                  + (f" ({said})" if said else " (neither reports an error)"))


def run(server: Server) -> dict[str, Cell]:
    return {"chat": chat(server), "offline": offline(server),
            "upload": upload(server), "muc": muc(server)}
