"""
slixmpp as alice (two resources) and bob against a running convergence:
carbons (XEP-0280), blocking (XEP-0191) and CSI (XEP-0352, raw nonzas).

Run as a subprocess by tests/test_slixmpp_carbons.py:

    python slixmpp_carbons.py PORT CAFILE

Prints one JSON object with what it observed.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Callable

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp_common import until

TIMEOUT = 10.0
VERSION = "jabber:iq:version"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in ("xep_0030", "xep_0199", "xep_0280", "xep_0191", "xep_0352"):
            self.register_plugin(plugin)
        self.auto_authorize = True
        self.auto_subscribe = True
        self.started = asyncio.get_event_loop().create_future()
        #: everything in arrival order: (kind, from, detail)
        self.log: list[tuple[str, str, str]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)
        self.add_event_handler("message_error", self._message_error)
        self.add_event_handler("carbon_received", self._carbon("received"))
        self.add_event_handler("carbon_sent", self._carbon("sent"))
        self.add_event_handler("presence", self._presence)

    async def _start(self, event) -> None:
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        if not self.started.done():
            self.started.set_result(True)

    def _message(self, msg) -> None:
        if msg["type"] != "error" and msg["body"]:
            self.log.append(("message", str(msg["from"]), msg["body"]))

    def _message_error(self, msg) -> None:
        blocked = msg.xml.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked")
        self.log.append(("error", str(msg["from"]),
                         f"{msg['error']['condition']}:{blocked is not None}"))

    def _carbon(self, direction: str) -> Callable:
        def handler(msg) -> None:
            inner = msg["carbon_" + direction]
            self.log.append((f"carbon_{direction}", str(msg["from"]),
                             f"{inner['from']}>{inner['to']}:{inner['body']}"))
        return handler

    def _presence(self, presence) -> None:
        self.log.append(("presence", str(presence["from"]),
                         presence["type"] if presence["type"] != "available"
                         else (presence["show"] or "available")))

    def seen(self, kind: str, detail: str | None = None) -> list[tuple[str, str, str]]:
        return [e for e in self.log if e[0] == kind and (detail is None or e[2] == detail)]

    def subscription(self, contact: str) -> str | None:
        roster = self.client_roster
        return roster[contact]["subscription"] if contact in roster else None




async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


async def barrier(sender: User, to: str) -> str:
    """An iq from C{sender} to C{to}, answered (result or error): what
    C{sender} sent before it has been routed."""
    iq = sender.make_iq_get(queryxmlns=VERSION, ito=to)
    try:
        await iq.send(timeout=TIMEOUT)
        return "result"
    except IqError as e:
        return e.iq["error"]["condition"]


async def main(port: int, cafile: str) -> dict:
    result: dict = {}
    phone = await start("alice@localhost/phone", "wonderland", port, cafile)
    laptop = await start("alice@localhost/laptop", "wonderland", port, cafile)
    bob = await start("bob@localhost/desk", "builder", port, cafile)
    result["csi_offered"] = laptop.plugin["xep_0352"].enabled

    phone.send_presence_subscription(pto="bob@localhost")
    result["both"] = await until(lambda: phone.subscription("bob@localhost") == "both"
                                 and bob.subscription("alice@localhost") == "both")
    await until(lambda: len({e[1] for e in bob.seen("presence", "available")
                             if e[1].startswith("alice@")}) == 2)

    # Carbons on both of alice's resources: results, not errors
    enabled = []
    for user in (phone, laptop):
        try:
            await user.plugin["xep_0280"].enable(timeout=TIMEOUT)
            enabled.append(True)
        except IqError as e:
            enabled.append(e.iq["error"]["condition"])
    result["enabled"] = enabled

    # bob to alice's bare JID, both at priority 0: once each, no carbon
    bob.send_message(mto="alice@localhost", mbody="to both", mtype="chat")
    await until(lambda: phone.seen("message", "to both") and laptop.seen("message", "to both"))
    await barrier(bob, "alice@localhost/phone")
    result["bare_phone"] = len(phone.seen("message", "to both"))
    result["bare_laptop"] = len(laptop.seen("message", "to both"))
    result["bare_carbons"] = len(phone.seen("carbon_received") + laptop.seen("carbon_received"))

    # phone writes to bob: bob gets it, laptop gets a sent carbon
    phone.send_message(mto="bob@localhost", mbody="from phone", mtype="chat")
    await until(lambda: laptop.seen("carbon_sent") and bob.seen("message", "from phone"))
    result["sent_carbon"] = [e[1:] for e in laptop.seen("carbon_sent")]
    result["bob_got"] = [e[1:] for e in bob.seen("message", "from phone")]
    result["phone_own_carbon"] = phone.seen("carbon_sent")

    # bob to alice/phone only: laptop gets a received carbon
    bob.send_message(mto="alice@localhost/phone", mbody="to phone", mtype="chat")
    await until(lambda: laptop.seen("carbon_received"))
    result["received_carbon"] = [e[1:] for e in laptop.seen("carbon_received")]

    # CSI: laptop inactive; bob's presence change waits, his message flushes it
    laptop.send_raw("<inactive xmlns='urn:xmpp:csi:0'/>")
    await barrier(laptop, "localhost")
    mark = len(laptop.log)
    bob.send_presence(pshow="away")
    await until(lambda: phone.seen("presence", "away"))
    await asyncio.sleep(0.3)  # bounded: had it been sent, it would be here
    result["csi_inactive_before_iq"] = laptop.log[mark:]
    await barrier(bob, "alice@localhost/laptop")  # the iq passes, and flushes
    result["csi_held_until_iq"] = laptop.log[mark:]
    mark = len(laptop.log)
    bob.send_presence(pshow="xa")
    await until(lambda: phone.seen("presence", "xa"))
    await asyncio.sleep(0.3)
    result["csi_inactive_saw"] = list(laptop.log[mark:])
    bob.send_message(mto="alice@localhost/phone", mbody="flush", mtype="chat")
    await until(lambda: laptop.seen("carbon_received", "bob@localhost/desk>alice@localhost/phone:flush"))
    result["csi_after_message"] = laptop.log[mark:]
    laptop.send_raw("<active xmlns='urn:xmpp:csi:0'/>")

    # Blocking bob: he sees alice go, his messages and presence stop
    await phone.plugin["xep_0191"].block("bob@localhost", timeout=TIMEOUT)
    result["blocklist"] = sorted(str(j) for j in
                                 await laptop.plugin["xep_0191"].get_blocked_jids(
                                     timeout=TIMEOUT))
    await until(lambda: len([e for e in bob.seen("presence", "unavailable")
                             if e[1].startswith("alice@")]) == 2)
    result["bob_saw_alice_go"] = sorted(e[1] for e in bob.seen("presence", "unavailable")
                                        if e[1].startswith("alice@"))
    mark_phone, mark_laptop = len(phone.log), len(laptop.log)
    bob.send_message(mto="alice@localhost", mbody="blocked?", mtype="chat")
    bob.send_presence(pshow="dnd")
    result["blocked_iq"] = await barrier(bob, "alice@localhost/phone")
    result["phone_while_blocked"] = phone.log[mark_phone:]
    result["laptop_while_blocked"] = laptop.log[mark_laptop:]
    phone.send_message(mto="bob@localhost", mbody="to blocked", mtype="chat")
    await until(lambda: phone.seen("error"))
    result["outbound_error"] = [e[1:] for e in phone.seen("error")]
    await barrier(phone, "bob@localhost")
    result["bob_got_blocked"] = bob.seen("message", "to blocked")

    # Unblock: presence both ways again, messages flow
    mark_bob = len(bob.log)
    await phone.plugin["xep_0191"].unblock("bob@localhost", timeout=TIMEOUT)
    await until(lambda: phone.log[mark_phone:] and
                any(e[0] == "presence" and e[1] == "bob@localhost/desk"
                    for e in phone.log[mark_phone:]))
    result["phone_sees_bob_again"] = [e for e in phone.log[mark_phone:]
                                      if e[0] == "presence"]
    await until(lambda: len([e for e in bob.log[mark_bob:] if e[0] == "presence"]) >= 2)
    result["bob_sees_alice_again"] = sorted(e[1] for e in bob.log[mark_bob:]
                                            if e[0] == "presence" and e[2] != "unavailable")
    bob.send_message(mto="alice@localhost/phone", mbody="unblocked", mtype="chat")
    result["unblocked_message"] = await until(lambda: phone.seen("message", "unblocked"))

    for user in (phone, laptop, bob):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(main(int(sys.argv[1]), sys.argv[2]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
