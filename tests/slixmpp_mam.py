"""
slixmpp as alice and bob chatting, then alice paging through her archive
(XEP-0313 with XEP-0059 paging, slixmpp's xep_0313 plugin).

Run as a subprocess by tests/test_slixmpp_mam.py:

    python slixmpp_mam.py PORT CAFILE

alice and bob exchange 30 chat messages, each sent once the previous one
arrived; then alice fetches her archive 10 messages a page.  Prints one
JSON object with what each side saw live and what the archive returned.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import Callable

import slixmpp
from slixmpp.jid import JID
from slixmpp_common import until as _until

TIMEOUT = 10.0


async def until(check: Callable[[], bool], limit: float = TIMEOUT) -> bool:
    """Polling finer than the others: the archive answers fast."""
    return await _until(check, limit, 0.01)


SID = "{urn:xmpp:sid:0}stanza-id"
MESSAGES = 30
PAGE = 10


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in ("xep_0030", "xep_0059", "xep_0297", "xep_0313"):
            self.register_plugin(plugin)
        self.started = asyncio.get_event_loop().create_future()
        #: (body, [(by, id) of every stanza-id]) of each chat received live
        self.received: list[tuple[str, list[tuple[str, str]]]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)

    async def _start(self, event) -> None:
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _message(self, msg) -> None:
        if msg["type"] == "chat" and msg["body"]:
            ids = [(e.get("by"), e.get("id")) for e in msg.xml.findall(SID)]
            self.received.append((msg["body"], ids))



async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


async def main(port: int, cafile: str) -> dict:
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)
    result: dict = {}
    try:
        info = await alice["xep_0030"].get_info(jid="alice@localhost", timeout=TIMEOUT)
        result["features"] = sorted(info["disco_info"]["features"])
        sent: list[tuple[str, str]] = []
        for i in range(MESSAGES):
            sender, peer = (alice, bob) if i % 2 == 0 else (bob, alice)
            body = f"message {i} from {sender.boundjid.user}"
            before = len(peer.received)
            sender.send_message(mto=f"{peer.boundjid.user}@localhost", mbody=body,
                                mtype="chat")
            sent.append((sender.boundjid.user, body))
            if not await until(lambda p=peer, n=before: len(p.received) > n):
                result["lost"] = body
                return result
        result["sent"] = sent
        result["alice_received"] = alice.received
        result["bob_received"] = bob.received
        pages = []
        archive = []
        query = alice["xep_0313"].retrieve(jid=JID("alice@localhost"), iterator=True,
                                           rsm={"max": PAGE})
        async for page in query:
            results = page["mam"]["results"]
            pages.append(len(results))
            for message in results:
                forwarded = message["mam_result"]["forwarded"]["stanza"]
                archive.append({
                    "id": message["mam_result"]["id"],
                    "from": str(message["from"]),
                    "body": forwarded["body"],
                    "inner_from": str(forwarded["from"]),
                    "stamp": str(message["mam_result"]["forwarded"]["delay"]["stamp"]),
                })
            if len(pages) > MESSAGES:
                break
        result["pages"] = pages
        result["archive"] = archive
        bob_page = await bob["xep_0313"].retrieve(jid=JID("bob@localhost"),
                                                 rsm={"max": 50}, timeout=TIMEOUT)
        result["bob_archive"] = [m["mam_result"]["forwarded"]["stanza"]["body"]
                                 for m in bob_page["mam"]["results"]]
        return result
    finally:
        for user in (alice, bob):
            user.disconnect()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    port, cafile = int(sys.argv[1]), sys.argv[2]
    out = asyncio.run(asyncio.wait_for(main(port, cafile), 60))
    print(json.dumps(out))
