"""
slixmpp users on two federating convergence servers (a.test, b.test).

Run as a subprocess by tests/test_s2s_twistd.py:

    python slixmpp_s2s.py SCENARIO A_JID A_ADDR A_PORT A_CAFILE B_JID B_ADDR B_PORT B_CAFILE

(the JIDs are full JIDs with the password "secret"; C{full} expects
alice@a.test and bob@b.test)

C{full}: messages both ways, iq ping both ways, a subscription ending in
both with presence, a room on b.test joined from a.test, the echo
application on a.test answering a user of b.test, a stanza to a server
that is down bouncing.  C{messages}: messages both ways only.  Prints one
JSON object with what it observed; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import slixmpp
from slixmpp_common import TIMEOUT, until

MUC = "http://jabber.org/protocol/muc"
ROOM = "lounge@conference.b.test"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, cafile: str) -> None:
        super().__init__(jid, "secret")
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in ("xep_0030", "xep_0045", "xep_0199", "xep_0004"):
            self.register_plugin(plugin)
        self.auto_authorize = True
        self.auto_subscribe = True
        self.started = asyncio.get_event_loop().create_future()
        self.messages: list[tuple[str, str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self.groupchat: list[tuple[str, str]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)
        self.add_event_handler("message_error", self._error)
        self.add_event_handler("groupchat_message", self._groupchat)

    async def _start(self, event) -> None:
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _error(self, msg) -> None:
        self.errors.append((msg["id"], msg["error"]["condition"]))

    def _message(self, msg) -> None:
        if msg["type"] not in ("groupchat", "error"):
            self.messages.append((str(msg["from"]), msg["type"], msg["body"]))

    def _groupchat(self, msg) -> None:
        if msg["body"]:
            self.groupchat.append((str(msg["from"]), msg["body"]))

    def subscription(self, contact: str) -> str | None:
        roster = self.client_roster
        return roster[contact]["subscription"] if contact in roster else None

    def online(self, contact: str) -> list[str]:
        roster = self.client_roster
        return sorted(roster[contact].resources) if contact in roster else []


async def start(jid: str, addr: str, port: int, cafile: str) -> User:
    user = User(jid, cafile)
    user.connect(addr, port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


async def ping(user: User, jid: str) -> bool:
    try:
        await user.plugin["xep_0199"].send_ping(jid, timeout=TIMEOUT)
        return True
    except Exception as e:  # an error answer or a timeout
        sys.stderr.write(f"ping {jid}: {e!r}\n")
        return False


async def messages(alice: User, bob: User) -> dict:
    result: dict = {}
    a, b = str(alice.boundjid), str(bob.boundjid)
    alice.send_message(mto=b, mbody="hello from a", mtype="chat")
    bob.send_message(mto=a, mbody="hello from b", mtype="chat")
    result["bob_got"] = await until(lambda: (a, "chat", "hello from a") in bob.messages)
    result["alice_got"] = await until(lambda: (b, "chat", "hello from b") in alice.messages)
    return result


async def full(alice: User, bob: User) -> dict:
    result = await messages(alice, bob)
    result["ping_a_to_b"] = await ping(alice, "b.test")
    result["ping_b_to_a"] = await ping(bob, "a.test")
    result["ping_user_a_to_b"] = await ping(alice, "bob@b.test/slix")

    alice.send_presence_subscription(pto="bob@b.test")
    result["both"] = await until(lambda: alice.subscription("bob@b.test") == "both"
                                 and bob.subscription("alice@a.test") == "both")
    result["presence"] = await until(lambda: alice.online("bob@b.test") == ["slix"]
                                     and bob.online("alice@a.test") == ["slix"])

    muc = bob.plugin["xep_0045"]
    await muc.join_muc_wait(ROOM, "Bob", maxstanzas=0, timeout=TIMEOUT)
    form = await muc.get_room_config(ROOM, timeout=TIMEOUT)
    submit = bob.plugin["xep_0004"].make_form(ftype="submit")
    await muc.set_room_config(ROOM, submit, timeout=TIMEOUT)
    _, _, occupants, _ = await alice.plugin["xep_0045"].join_muc_wait(
        ROOM, "Alice", timeout=TIMEOUT)
    result["alice_saw"] = sorted(str(p["from"]) for p in occupants)
    alice.send_message(mto=ROOM, mbody="hi room", mtype="groupchat")
    result["room_message"] = await until(
        lambda: (f"{ROOM}/Alice", "hi room") in bob.groupchat
        and (f"{ROOM}/Alice", "hi room") in alice.groupchat)
    del form

    bob.send_message(mto="echo.a.test", mbody="echo me", mtype="chat")
    result["echo"] = await until(lambda: any(m[0].startswith("echo.a.test")
                                             and "echo me" in (m[2] or "")
                                             for m in bob.messages))

    down = alice.make_message(mto="nobody@down.test", mbody="lost", mtype="chat")
    down["id"] = "down1"
    down.send()
    await until(lambda: alice.errors)
    result["down_errors"] = alice.errors[:]

    alice.send_presence(ptype="unavailable")
    result["bob_saw_unavailable"] = await until(lambda: not bob.online("alice@a.test"))
    return result


async def main(scenario: str, a: tuple[str, str, int, str],
               b: tuple[str, str, int, str]) -> dict:
    alice = await start(*a)
    bob = await start(*b)
    result = await (full if scenario == "full" else messages)(alice, bob)
    for user in (alice, bob):
        user.disconnect()
    await asyncio.sleep(0.2)
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(main(
        args[0], (args[1], args[2], int(args[3]), args[4]),
        (args[5], args[6], int(args[7]), args[8])), 100))
    sys.stdout.write(json.dumps(out) + "\n")
