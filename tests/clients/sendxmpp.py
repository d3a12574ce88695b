"""
sendxmpp (Debian; Perl, Net::XMPP): it sends and never receives, so the
other side of each scenario is a slixmpp peer (tests/clients/witness.py).
STARTTLS with the test certificate as its CA (``--tls-ca-path``).
"""

from __future__ import annotations

import os
import re
import shutil

from tests.clients.runner import (
    NOT_EXPRESSIBLE,
    PASSWORD,
    Background,
    Cell,
    Server,
    execute,
    failed,
    package_version,
    passed,
    start_witness,
    witness_result,
)

NAME = "sendxmpp"
LIBRARY = "Perl, Net::XMPP"
ACCOUNTS = ("sx-a",)
#: the slixmpp peers' accounts
PEERS = ("sx-b", "sx-c")
PLAIN_ONLY = "Authen::SASL (Perl) has no SCRAM"
PROGRAM = "sendxmpp"
ROOM = "sx-room@conference.localhost"
CANNOT = {
    "roster": "no roster commands",
    "presence": "sends no presence of its own choosing, shows none",
    "vcard": "no vCard commands",
    "carbons": "no carbons",
    "mam": "no archive queries",
    "upload": "no file transfer",
    "sm": "one connection per message, no stream management",
}


def missing() -> str:
    return "" if shutil.which(PROGRAM) else f"{PROGRAM} not on PATH"


def version() -> str:
    _, out = execute([PROGRAM, "--help"], dict(os.environ), limit=10)
    m = re.search(r"sendxmpp version (\S+)", out)
    return (m.group(1) if m else "unknown") + package_version(PROGRAM)


def _send(server: Server, local: str, text: str, *args: str) -> tuple[int, str]:
    return execute([PROGRAM, "-u", local, "-p", PASSWORD, "-j", f"localhost:{server.c2s_port}",
                    "-t", "--tls-ca-path", str(server.cert), "-r", "sendxmpp", *args],
                   server.env(), stdin=text.encode() + b"\n")


def _witness(server: Server, local: str, name: str, expect: str,
             room: tuple[str, ...] = ()) -> Background:
    return start_witness(server, local, server.scratch("sendxmpp") / f"{name}.out",
                         expect, room)


def chat(server: Server) -> Cell:
    text = "sendxmpp says hello"
    peer = _witness(server, "sx-b", "chat-b", text)
    code, out = _send(server, "sx-a", text, "--message-type", "chat", server.jid("sx-b"))
    got = [m for m in witness_result(peer)["messages"] if m["body"].strip() == text]
    if code != 0 or not got or got[0]["type"] != "chat":
        return failed(f"exit {code}, received {got}: {out[-200:]}")
    return Cell(NOT_EXPRESSIBLE, "sends only (a chat it sent was received live); cannot receive")


def offline(server: Server) -> Cell:
    text = "sendxmpp while you were out"
    code, out = _send(server, "sx-a", text, server.jid("sx-c"))
    if code != 0:
        return failed(f"exit {code}: {out[-200:]}")
    if not server.wait_stored("sx-c"):
        return failed("the message was never stored for the logged-out user")
    got = [m for m in witness_result(_witness(server, "sx-c", "offline-c", text))["messages"]
           if m["body"].strip() == text]
    if got and got[0]["delay"]:
        return passed("sent to a logged-out user, delivered with a delay stamp at its login")
    return failed(f"at the next login: {got}")


def muc(server: Server) -> Cell:
    text = "sendxmpp into the room"
    peer = _witness(server, "sx-b", "muc-b", text, (ROOM, "sx-b"))
    code, _ = _send(server, "sx-a", text, "-c", ROOM)
    result = witness_result(peer)
    got = [m for m in result["messages"] if m["body"].strip() == text and m["type"] == "groupchat"]
    if code == 0 and got and result["joined"] is True:
        return passed("joined a room created by a slixmpp peer, sent into it, seen there")
    return failed(f"exit {code}, peer joined: {result['joined']}, seen: {bool(got)}")


def run(server: Server) -> dict[str, Cell]:
    return {"chat": chat(server), "offline": offline(server), "muc": muc(server)}
