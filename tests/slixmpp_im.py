"""
slixmpp as three IM users (alice, bob, carol) of a running convergence.

Run as a subprocess by tests/test_slixmpp_im.py:

    python slixmpp_im.py PORT CAFILE

Prints one JSON object with what it observed: the subscription handshake
on both rosters, presence seen (and not seen), a second resource coming
and going, roster versioning.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp_common import until

TIMEOUT = 10.0
ROSTER = "jabber:iq:roster"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        self.register_plugin("xep_0199")
        # accept requests and subscribe back, as everyday clients offer
        self.auto_authorize = True
        self.auto_subscribe = True
        self.started = asyncio.get_event_loop().create_future()
        self.presences: list[tuple[str, str]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("presence", self._presence)

    async def _start(self, event) -> None:
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        if not self.started.done():
            self.started.set_result(True)

    def _presence(self, presence) -> None:
        self.presences.append((str(presence["from"]), presence["type"]))

    def subscription(self, contact: str) -> str | None:
        roster = self.client_roster
        return roster[contact]["subscription"] if contact in roster else None

    def online(self, contact: str) -> list[str]:
        roster = self.client_roster
        return sorted(roster[contact].resources) if contact in roster else []




async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


async def main(port: int, cafile: str) -> dict:
    result: dict = {}
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)
    carol = await start("carol@localhost/slix", "carol-pw", port, cafile)

    alice.send_presence_subscription(pto="bob@localhost")
    result["both"] = await until(lambda: alice.subscription("bob@localhost") == "both"
                                 and bob.subscription("alice@localhost") == "both")
    result["alice_sub"] = alice.subscription("bob@localhost")
    result["bob_sub"] = bob.subscription("alice@localhost")
    await until(lambda: alice.online("bob@localhost") and bob.online("alice@localhost"))
    result["alice_sees_bob"] = alice.online("bob@localhost")
    result["bob_sees_alice"] = bob.online("alice@localhost")

    second = await start("alice@localhost/second", "wonderland", port, cafile)
    await until(lambda: len(bob.online("alice@localhost")) == 2)
    result["bob_sees_two"] = bob.online("alice@localhost")
    second.disconnect()
    await until(lambda: bob.online("alice@localhost") == ["slix"])
    result["after_second_left"] = bob.online("alice@localhost")
    result["second_unavailable_seen"] = ("alice@localhost/second", "unavailable") \
        in bob.presences

    # Versioning: the version of a fresh roster get, then an empty answer.
    iq = alice.make_iq_get(queryxmlns=ROSTER)
    first = await iq.send(timeout=TIMEOUT)
    ver = first.xml.find(f"{{{ROSTER}}}query").get("ver")
    again = alice.make_iq_get()
    query = ET.SubElement(again.xml, f"{{{ROSTER}}}query")
    query.set("ver", ver)
    second_answer = await again.send(timeout=TIMEOUT)
    result["ver"] = ver
    result["unchanged_is_empty"] = len(second_answer.xml) == 0

    result["carol_saw_alice"] = [p for p in carol.presences if p[0].startswith("alice@")]
    result["carol_roster"] = sorted(carol.client_roster.keys())

    bob.disconnect()
    await until(lambda: not alice.online("bob@localhost"))
    result["after_bob_left"] = alice.online("bob@localhost")
    for user in (alice, carol):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(main(int(sys.argv[1]), sys.argv[2]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
