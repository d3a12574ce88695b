"""
slixmpp (its xep_0045 plugin) as three users of chat rooms on a running
convergence.

Run as a subprocess by tests/test_slixmpp_muc.py, once per twistd:

    python slixmpp_muc.py first|second PORT CAFILE

C{first}: alice creates and configures a persistent room, bob joins, the
two talk, alice sets the subject, carol joins late and gets the history,
bob pages through the room's archive (xep_0313, two messages a page)
while carol, not in the room, is refused it, bob changes his nickname,
alice kicks carol and bans her, a password-protected room wants its
password, carol registers a nickname with it (jabber:iq:register) that
bob then cannot take, a members-only room refuses carol and takes bob
once alice made him a member.  C{second} (after a restart): the room is
still there with its name, subject, members and archive; bob's
self-ping.  Prints one JSON object; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any

import slixmpp
from slixmpp.exceptions import IqError, PresenceError
from slixmpp.xmlstream import ET
from slixmpp_common import until

TIMEOUT = 10.0
ROOM = "cave@conference.localhost"
CLUB = "club@conference.localhost"
SECRET = "secret@conference.localhost"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in ("xep_0030", "xep_0045", "xep_0199", "xep_0004", "xep_0410",
                       "xep_0059", "xep_0313", "xep_0359"):
            self.register_plugin(plugin)
        self.started = asyncio.get_event_loop().create_future()
        self.groupchat: list[tuple[str, str]] = []
        #: the stanza-ids by the room of the groupchat messages received
        self.stanza_ids: list[str] = []
        self.presences: list[tuple[str, str, list[int]]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("groupchat_message", self._message)
        self.add_event_handler("groupchat_presence", self._presence)

    @property
    def muc(self) -> Any:
        return self.plugin["xep_0045"]

    async def _start(self, event) -> None:
        self.send_presence()
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        if not self.started.done():
            self.started.set_result(True)

    def _message(self, msg) -> None:
        if msg["body"]:
            self.groupchat.append((str(msg["from"]), msg["body"]))
            if str(msg["stanza_id"]["by"]) == str(msg["from"].bare):
                self.stanza_ids.append(msg["stanza_id"]["id"])

    def _presence(self, presence) -> None:
        self.presences.append((str(presence["from"]), presence["type"],
                               sorted(presence["muc"]["status_codes"])))




async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


def codes(presence) -> list[int]:
    return sorted(presence["muc"]["status_codes"])


async def configure(user: User, room: str, **values: Any) -> None:
    form = await user.muc.get_room_config(room, timeout=TIMEOUT)
    fields = form.get_fields()
    submit = user.plugin["xep_0004"].make_form("submit")
    submit.add_field("FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig",
                     ftype="hidden")
    for var, value in values.items():
        name = f"muc#roomconfig_{var}"
        assert name in fields, name
        submit.add_field(name, value=value, ftype=fields[name]["type"])
    await user.muc.set_room_config(room, submit, timeout=TIMEOUT)


async def refused(user: User, room: str, nick: str, password: str | None = None) -> str:
    try:
        await user.muc.join_muc_wait(room, nick, maxstanzas=0, password=password,
                                     timeout=TIMEOUT)
    except PresenceError as e:
        return e.condition
    return "joined"


async def archive(user: User, room: str, page_size: int) -> tuple[list[int], list[dict]]:
    """The room's whole archive, paged: the size of each page, the messages."""
    pages: list[int] = []
    messages: list[dict] = []
    query = user.plugin["xep_0313"].retrieve(jid=slixmpp.JID(room), iterator=True,
                                             rsm={"max": page_size})
    async for page in query:
        results = page["mam"]["results"]
        pages.append(len(results))
        for message in results:
            forwarded = message["mam_result"]["forwarded"]["stanza"]
            messages.append({"id": message["mam_result"]["id"], "from": str(message["from"]),
                             "inner_from": str(forwarded["from"]),
                             "body": forwarded["body"], "subject": forwarded["subject"]})
        if sum(pages) > 100:
            break
    return pages, messages


async def register(user: User, room: str, nick: str) -> dict:
    """XEP-0045 7.10: the form, the submission, the answer once registered."""
    out: dict = {}
    get = user.make_iq_get(queryxmlns="jabber:iq:register", ito=room)
    form = (await get.send(timeout=TIMEOUT)).xml.find(
        "{jabber:iq:register}query/{jabber:x:data}x")
    out["form_fields"] = sorted(f.get("var") for f in form.iter("{jabber:x:data}field"))
    submit = user.plugin["xep_0004"].make_form("submit")
    submit.add_field("FORM_TYPE", value="http://jabber.org/protocol/muc#register",
                     ftype="hidden")
    submit.add_field("muc#register_roomnick", value=nick)
    iq = user.make_iq_set(ito=room)
    query = ET.SubElement(iq.xml, "{jabber:iq:register}query")
    query.append(submit.xml)
    out["submitted"] = (await iq.send(timeout=TIMEOUT))["type"]
    get = user.make_iq_get(queryxmlns="jabber:iq:register", ito=room)
    query = (await get.send(timeout=TIMEOUT)).xml.find("{jabber:iq:register}query")
    out["registered"] = query.find("{jabber:iq:register}registered") is not None
    out["username"] = query.findtext("{jabber:iq:register}username")
    info = await user.plugin["xep_0030"].get_info(jid=room, node="x-roomuser-item",
                                                  timeout=TIMEOUT)
    out["reserved"] = [i[3] for i in info["disco_info"]["identities"]]
    return out


async def first(port: int, cafile: str) -> dict:
    result: dict = {}
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)
    carol = await start("carol@localhost/slix", "carol-pw", port, cafile)

    own, _, _, _ = await alice.muc.join_muc_wait(ROOM, "Alice", maxstanzas=0, timeout=TIMEOUT)
    result["create_codes"] = codes(own)
    await configure(alice, ROOM, roomname="The Cave", persistentroom=True)
    own, _, occupants, _ = await bob.muc.join_muc_wait(ROOM, "Bob", timeout=TIMEOUT)
    result["bob_codes"] = codes(own)
    result["bob_saw"] = sorted(str(p["from"]) for p in occupants)

    alice.muc.set_subject(ROOM, "Brewing")
    for n in range(3):
        alice.send_message(mto=ROOM, mbody=f"alice {n}", mtype="groupchat")
        bob.send_message(mto=ROOM, mbody=f"bob {n}", mtype="groupchat")
    await until(lambda: len(alice.groupchat) >= 6 and len(bob.groupchat) >= 6)
    result["alice_got"] = alice.groupchat[:]
    result["bob_got"] = bob.groupchat[:]
    result["live_ids"] = bob.stanza_ids[:]
    result["pages"], result["archive"] = await archive(bob, ROOM, 2)
    try:
        await carol.plugin["xep_0313"].retrieve(jid=slixmpp.JID(ROOM), timeout=TIMEOUT)
        result["carol_archive"] = "answered"
    except IqError as e:
        result["carol_archive"] = e.condition
    info = await bob.plugin["xep_0030"].get_info(jid=ROOM, timeout=TIMEOUT)
    result["room_features"] = sorted(
        f for f in info["disco_info"]["features"]
        if f in ("urn:xmpp:mam:2", "urn:xmpp:sid:0", "jabber:iq:register"))

    _, subject, _, history = await carol.muc.join_muc_wait(ROOM, "Carol", maxstanzas=4,
                                                          timeout=TIMEOUT)
    result["carol_subject"] = subject["subject"]
    result["carol_history"] = [(str(m["from"]), m["body"]) for m in history]

    result["new_nick"] = await bob.muc.set_self_nick(ROOM, "Robert", timeout=TIMEOUT)
    await until(lambda: any(p[0] == f"{ROOM}/Robert" for p in alice.presences))
    result["alice_saw_303"] = any(p[0] == f"{ROOM}/Bob" and 303 in p[2]
                                  for p in alice.presences)
    result["roster"] = sorted(alice.muc.get_roster(ROOM))

    await alice.muc.set_role(ROOM, "Carol", "none", reason="Enough", timeout=TIMEOUT)
    await until(lambda: any(307 in p[2] for p in carol.presences))
    result["carol_kicked"] = [p[2] for p in carol.presences
                              if p[0] == f"{ROOM}/Carol" and p[1] == "unavailable"]

    await alice.muc.set_affiliation(ROOM, "outcast", jid="carol@localhost", timeout=TIMEOUT)
    result["banned_carol"] = await refused(carol, ROOM, "Carol")
    outcasts = await alice.muc.get_affiliation_list(ROOM, "outcast", timeout=TIMEOUT)
    result["outcasts"] = sorted(str(j) for j in outcasts)

    await alice.muc.join_muc_wait(SECRET, "Alice", maxstanzas=0, timeout=TIMEOUT)
    await configure(alice, SECRET, passwordprotectedroom=True, roomsecret="cauldron")
    result["secret_without"] = await refused(bob, SECRET, "Bob")
    result["secret_wrong"] = await refused(bob, SECRET, "Bob", "toad")
    result["secret_right"] = await refused(bob, SECRET, "Bob", "cauldron")
    result["carol_registers"] = await register(carol, SECRET, "Witch")
    result["bob_takes_witch"] = await refused(bob, SECRET, "witch", "cauldron")

    await alice.muc.join_muc_wait(CLUB, "Alice", maxstanzas=0, timeout=TIMEOUT)
    await configure(alice, CLUB, membersonly=True, persistentroom=True)
    result["club_refuses_carol"] = await refused(carol, CLUB, "Carol")
    await alice.muc.set_affiliation(CLUB, "member", jid="bob@localhost", timeout=TIMEOUT)
    result["club_takes_bob"] = await refused(bob, CLUB, "Bob")
    try:
        await carol.muc.get_affiliation_list(CLUB, "member", timeout=TIMEOUT)
        result["carol_member_list"] = "answered"
    except IqError as e:
        result["carol_member_list"] = e.condition

    for user in (alice, bob, carol):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


async def second(port: int, cafile: str) -> dict:
    result: dict = {}
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)
    items = await bob.plugin["xep_0030"].get_items(jid="conference.localhost", timeout=TIMEOUT)
    result["public"] = sorted((i[0], i[2]) for i in items["disco_items"]["items"])
    own, subject, _, _ = await alice.muc.join_muc_wait(ROOM, "Alice", maxstanzas=0,
                                                       timeout=TIMEOUT)
    result["rejoin_codes"] = codes(own)
    result["rejoin_affiliation"] = own["muc"]["affiliation"]
    result["subject"] = subject["subject"]
    result["pages"], result["archive"] = await archive(alice, ROOM, 3)
    result["club_takes_bob"] = await refused(bob, CLUB, "Bob")
    result["club_members"] = sorted(str(j) for j in await alice.muc.get_affiliation_list(
        CLUB, "member", timeout=TIMEOUT))
    ping = bob.make_iq_get(ito=f"{CLUB}/Bob")
    ping.enable("ping")
    result["self_ping"] = (await ping.send(timeout=TIMEOUT))["type"]
    bob.muc.leave_muc(CLUB, "Bob")
    await asyncio.sleep(0.2)
    ping = bob.make_iq_get(ito=f"{CLUB}/Bob")
    ping.enable("ping")
    try:
        await ping.send(timeout=TIMEOUT)
        result["ping_after_leaving"] = "result"
    except IqError as e:
        result["ping_after_leaving"] = e.condition
    for user in (alice, bob):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    phase = first if sys.argv[1] == "first" else second
    out = loop.run_until_complete(asyncio.wait_for(phase(int(sys.argv[2]), sys.argv[3]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
