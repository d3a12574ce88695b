"""
slixmpp's XEP-0198 against a running convergence: acknowledgements,
resumption after an abrupt TCP reset, hibernation timeout into offline
storage, and a resumption attempt by another account.

Run as a subprocess by tests/test_slixmpp_sm.py:

    python slixmpp_sm.py PORT CAFILE [resume | crash-before | crash-after]

C{resume} (the default) is the whole story on one server; C{crash-before}
leaves alice's session hibernating with three messages (the test then kills
the server with SIGKILL); C{crash-after} logs alice in again on the
restarted server and reports what offline storage gave her.

Prints one JSON object with what it observed.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import sys

import slixmpp
from slixmpp_common import until

TIMEOUT = 10.0
DELAY = "urn:xmpp:delay"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str, sm: bool = False) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        self.register_plugin("xep_0199")
        if sm:
            self.register_plugin("xep_0198")
        self.auto_authorize = True
        self.auto_subscribe = True
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.enabled = loop.create_future()
        self.resumed: asyncio.Future = loop.create_future()
        self.sm_failures: list[str] = []
        self.bodies: list[str] = []
        self.delayed: list[bool] = []
        self.presences: list[tuple[str, str]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("presence", self._presence)
        self.add_event_handler("message", self._message)
        self.add_event_handler("sm_enabled", self._enabled)
        self.add_event_handler("session_resumed", self._resumed)
        self.add_event_handler("sm_failed", self._failed)

    async def _start(self, event) -> None:
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        if not self.started.done():
            self.started.set_result(True)

    def _enabled(self, stanza) -> None:
        if not self.enabled.done():
            self.enabled.set_result(stanza["id"])

    def _resumed(self, stanza) -> None:
        if not self.resumed.done():
            self.resumed.set_result(True)

    def _failed(self, stanza) -> None:
        self.sm_failures.append(stanza.xml[0].tag if len(stanza.xml) else "")

    def _presence(self, presence) -> None:
        self.presences.append((str(presence["from"]), presence["type"]))

    def _message(self, message) -> None:
        if message["body"]:
            self.bodies.append(message["body"])
            self.delayed.append(message.xml.find(f"{{{DELAY}}}delay") is not None)

    def subscription(self, contact: str) -> str | None:
        roster = self.client_roster
        return roster[contact]["subscription"] if contact in roster else None

    def reset(self) -> None:
        """Cut the TCP connection abruptly: SO_LINGER 0, then close, so
        the kernel sends RST and no </stream:stream> is ever written."""
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()




async def start(user: User, port: int) -> User:
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


async def main(port: int, cafile: str) -> dict:
    result: dict = {}
    alice = await start(User("alice@localhost/slix", "wonderland", cafile, sm=True), port)
    result["previd"] = await asyncio.wait_for(alice.enabled, TIMEOUT)
    bob = await start(User("bob@localhost/slix", "builder", cafile), port)
    alice.send_presence_subscription(pto="bob@localhost")
    result["both"] = await until(lambda: alice.subscription("bob@localhost") == "both"
                                 and bob.subscription("alice@localhost") == "both")
    to = "alice@localhost/slix"

    def send(numbers: range) -> None:
        for i in numbers:
            bob.send_message(mto=to, mbody=str(i), mtype="chat")

    # Attached: 1-3 arrive.
    send(range(1, 4))
    await until(lambda: len(alice.bodies) == 3)
    result["attached"] = list(alice.bodies)

    # Cut; 4-6 go to the detached resource; resume.
    alice.reset()
    await until(lambda: alice.transport is None)
    presences_before = len(bob.presences)
    send(range(4, 7))
    await bob.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
    alice.connect("127.0.0.1", port)
    result["resumed"] = await asyncio.wait_for(alice.resumed, TIMEOUT)
    await until(lambda: len(alice.bodies) >= 6)
    await asyncio.sleep(0.5)  # room for a duplicate to show itself
    result["after_resume"] = list(alice.bodies)
    result["unavailable_while_detached"] = [
        p for p in bob.presences[presences_before:] if p == (to, "unavailable")]
    bob.send_message(mto=to, mbody="7", mtype="chat")
    await until(lambda: len(alice.bodies) >= 7)
    result["on_resumed_stream"] = list(alice.bodies)
    # Acknowledge everything, and know the server has read it.
    alice.plugin["xep_0198"].send_ack()
    await alice.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)

    # Cut again; 8-10 wait in hibernation; carol tries to take the session.
    alice.reset()
    await until(lambda: alice.transport is None)
    send(range(8, 11))
    await bob.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
    carol = User("carol@localhost/slix", "carol-pw", cafile, sm=True)
    carol.plugin["xep_0198"].sm_id = result["previd"]
    carol.plugin["xep_0198"].handled = 0
    await start(carol, port)
    result["carol_failures"] = carol.sm_failures
    result["carol_enabled"] = await asyncio.wait_for(carol.enabled, TIMEOUT) is not None
    result["carol_bodies"] = list(carol.bodies)

    # The server's hibernation limit passes: unavailable, offline storage.
    result["unavailable_after_timeout"] = await until(
        lambda: (to, "unavailable") in bob.presences, 15)
    fresh = await start(User("alice@localhost/fresh", "wonderland", cafile), port)
    await until(lambda: len(fresh.bodies) >= 3)
    await asyncio.sleep(0.5)
    result["offline"] = list(fresh.bodies)
    result["offline_delayed"] = list(fresh.delayed)
    result["carol_bodies_end"] = list(carol.bodies)
    for user in (bob, carol, fresh):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


async def crash_before(port: int, cafile: str) -> dict:
    """alice gets and acknowledges 1-3, her connection is reset, bob
    sends 4-6 and knows the server took them (a ping answered after them)."""
    result: dict = {}
    alice = await start(User("alice@localhost/slix", "wonderland", cafile, sm=True), port)
    result["previd"] = await asyncio.wait_for(alice.enabled, TIMEOUT)
    bob = await start(User("bob@localhost/slix", "builder", cafile), port)
    to = "alice@localhost/slix"
    for i in range(1, 4):
        bob.send_message(mto=to, mbody=str(i), mtype="chat")
    await until(lambda: len(alice.bodies) == 3)
    result["attached"] = list(alice.bodies)
    alice.plugin["xep_0198"].send_ack()  # 1-3 are alice's now
    await alice.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
    alice.reset()
    await until(lambda: alice.transport is None)
    for i in range(4, 7):
        bob.send_message(mto=to, mbody=str(i), mtype="chat")
    await bob.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
    result["taken"] = True
    bob.disconnect()
    await asyncio.sleep(0.3)
    return result


async def crash_after(port: int, cafile: str) -> dict:
    alice = await start(User("alice@localhost/again", "wonderland", cafile), port)
    await until(lambda: len(alice.bodies) >= 3)
    await asyncio.sleep(0.5)
    result = {"offline": list(alice.bodies), "offline_delayed": list(alice.delayed)}
    alice.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mode = sys.argv[3] if len(sys.argv) > 3 else "resume"
    scenario = {"resume": main, "crash-before": crash_before, "crash-after": crash_after}[mode]
    out = loop.run_until_complete(
        asyncio.wait_for(scenario(int(sys.argv[1]), sys.argv[2]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
