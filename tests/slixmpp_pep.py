"""
slixmpp as three PEP users (alice, bob, carol) of a running convergence.

Run as a subprocess by tests/test_slixmpp_pep.py:

    python slixmpp_pep.py PORT CAFILE

alice and bob subscribe to each other; alice publishes an avatar
(XEP-0084 data and metadata); bob, whose client advertises the metadata
node's +notify in its XEP-0115 caps, should be notified and fetch the data; carol, not
subscribed, should be refused.  carol's explicit XEP-0060 subscription
to the presence node is refused; to an open node it is accepted, she
gets the last item and the next, then unsubscribes.  Then bookmarks: a XEP-0402 publish read
through XEP-0048 private storage, and a XEP-0048 private-storage write
read as XEP-0402 items.  Prints one JSON object; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import sys
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048 import Bookmarks
from slixmpp_common import until

TIMEOUT = 10.0
AVATAR_META = "urn:xmpp:avatar:metadata"
AVATAR_DATA = "urn:xmpp:avatar:data"
BOOKMARKS = "urn:xmpp:bookmarks:1"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
IMAGE = bytes(range(256)) * 4
STATUS = "urn:x:status"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in ("xep_0030", "xep_0004", "xep_0115", "xep_0060", "xep_0163",
                       "xep_0084", "xep_0049", "xep_0048", "xep_0223", "xep_0402"):
            self.register_plugin(plugin)
        self.auto_authorize = True
        self.auto_subscribe = True
        self.started = asyncio.get_event_loop().create_future()
        self.metadata_events: list[tuple[str, str]] = []
        #: (from, node, item id) of every pubsub item notification
        self.item_events: list[tuple[str, str, str]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("avatar_metadata_publish", self._metadata)
        self.add_event_handler("pubsub_publish", self._item)

    async def _start(self, event) -> None:
        await self.get_roster(timeout=TIMEOUT)
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _item(self, message) -> None:
        items = message["pubsub_event"]["items"]
        self.item_events.append((str(message["from"]), items["node"], items["item"]["id"]))

    def _metadata(self, message) -> None:
        item = message["pubsub_event"]["items"]["item"]
        self.metadata_events.append((str(message["from"]), item["id"]))

    def subscription(self, contact: str) -> str | None:
        roster = self.client_roster
        return roster[contact]["subscription"] if contact in roster else None




async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


def refusal(error: IqError) -> list[str | None]:
    """[condition, pubsub#errors condition] of an iq error."""
    pubsub = None
    for child in error.iq.xml.iter():
        if child.tag.startswith(f"{{{PUBSUB_ERRORS}}}"):
            pubsub = child.tag.split("}")[1]
    return [error.condition, pubsub]


def open_options(user: User):
    form = user.plugin["xep_0004"].stanza.Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    form.add_field(var="pubsub#access_model", value="open")
    form.add_field(var="pubsub#max_items", value="10")
    return form


def private_options(user: User):
    form = user.plugin["xep_0004"].stanza.Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in (("pubsub#persist_items", "true"), ("pubsub#access_model", "whitelist"),
                       ("pubsub#max_items", "max"),
                       ("pubsub#send_last_published_item", "never")):
        form.add_field(var=var, value=value)
    return form


async def main(port: int, cafile: str) -> dict:
    result: dict = {}
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)
    carol = await start("carol@localhost/slix", "carol-pw", port, cafile)

    alice.send_presence_subscription(pto="bob@localhost")
    result["both"] = await until(lambda: alice.subscription("bob@localhost") == "both"
                                 and bob.subscription("alice@localhost") == "both")

    # XEP-0163 discovery on the account
    info = await bob.plugin["xep_0030"].get_info(jid="alice@localhost", timeout=TIMEOUT)
    result["identities"] = sorted(f"{c}/{t}" for c, t, *_ in info["disco_info"]["identities"])
    result["features"] = sorted(info["disco_info"]["features"])

    # XEP-0084: data, then metadata
    avatar_id = alice.plugin["xep_0084"].generate_id(IMAGE)
    await alice.plugin["xep_0084"].publish_avatar(IMAGE, timeout=TIMEOUT)
    await alice.plugin["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(IMAGE)}, timeout=TIMEOUT)
    result["avatar_id"] = avatar_id
    result["bob_notified"] = await until(lambda: bool(bob.metadata_events))
    result["bob_events"] = bob.metadata_events
    data = await bob.plugin["xep_0084"].retrieve_avatar("alice@localhost", avatar_id,
                                                        timeout=TIMEOUT)
    value = data.xml.find(f".//{{{AVATAR_DATA}}}data").text
    result["bob_got_image"] = base64.b64decode(value) == IMAGE
    try:
        await carol.plugin["xep_0060"].get_items("alice@localhost", AVATAR_META,
                                                 timeout=TIMEOUT)
        result["carol_refused"] = None
    except IqError as e:
        result["carol_refused"] = refusal(e)
    try:
        await carol.plugin["xep_0084"].retrieve_avatar("alice@localhost", avatar_id,
                                                       timeout=TIMEOUT)
        result["carol_data_refused"] = None
    except IqError as e:
        result["carol_data_refused"] = refusal(e)
    result["carol_events"] = carol.metadata_events

    # explicit XEP-0060 subscriptions: carol, without a presence
    # subscription, is refused on the presence node and follows an open one
    try:
        await carol.plugin["xep_0060"].subscribe("alice@localhost", AVATAR_META,
                                                 timeout=TIMEOUT)
        result["carol_subscribe_refused"] = None
    except IqError as e:
        result["carol_subscribe_refused"] = refusal(e)
    await alice.plugin["xep_0060"].publish(
        None, STATUS, id="s1", payload=ET.Element(f"{{{STATUS}}}status"),
        options=open_options(alice), timeout=TIMEOUT)
    answer = await carol.plugin["xep_0060"].subscribe("alice@localhost", STATUS,
                                                      timeout=TIMEOUT)
    sub = answer["pubsub"]["subscription"]
    result["carol_subscription"] = [sub["node"], str(sub["jid"]), sub["subscription"]]
    await until(lambda: bool(carol.item_events))  # the last item, at once
    await alice.plugin["xep_0060"].publish(
        None, STATUS, id="s2", payload=ET.Element(f"{{{STATUS}}}status"), timeout=TIMEOUT)
    await until(lambda: len(carol.item_events) >= 2)
    result["carol_items"] = [list(e) for e in carol.item_events]
    mine = await carol.plugin["xep_0060"].get_subscriptions("alice@localhost",
                                                            timeout=TIMEOUT)
    result["carol_subscriptions"] = [[s["node"], str(s["jid"])]
                                     for s in mine["pubsub"]["subscriptions"]]
    await carol.plugin["xep_0060"].unsubscribe("alice@localhost", STATUS, timeout=TIMEOUT)
    await alice.plugin["xep_0060"].publish(
        None, STATUS, id="s3", payload=ET.Element(f"{{{STATUS}}}status"), timeout=TIMEOUT)
    await asyncio.sleep(0.3)  # bounded: s3 must not come
    result["carol_items_after"] = [list(e) for e in carol.item_events]

    # XEP-0402 publish, read through XEP-0048 private storage
    conference = ET.Element(f"{{{BOOKMARKS}}}conference", name="Coven", autojoin="true")
    ET.SubElement(conference, f"{{{BOOKMARKS}}}nick").text = "al"
    await alice.plugin["xep_0060"].publish(
        None, BOOKMARKS, id="coven@chat.localhost", payload=conference,
        options=private_options(alice), timeout=TIMEOUT)
    legacy = await alice.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=TIMEOUT)
    result["legacy_read"] = [[str(c["jid"]), c["name"], c["nick"], c["autojoin"]]
                             for c in legacy["private"]["bookmarks"]["conferences"]]

    # XEP-0048 write through private storage, read as XEP-0402 items
    bookmarks = Bookmarks()
    bookmarks.add_conference("council@chat.localhost", "puck", name="Council",
                             autojoin=False)
    await alice.plugin["xep_0048"].set_bookmarks(bookmarks, method="xep_0049",
                                                 timeout=TIMEOUT)
    items = await alice.plugin["xep_0060"].get_items(None, BOOKMARKS, timeout=TIMEOUT)
    result["pep_read"] = []
    for item in items["pubsub"]["items"]:
        conf = item.xml.find(f"{{{BOOKMARKS}}}conference")
        result["pep_read"].append([item["id"], conf.get("name"),
                                   conf.findtext(f"{{{BOOKMARKS}}}nick")])
    try:
        await bob.plugin["xep_0060"].get_items("alice@localhost", BOOKMARKS, timeout=TIMEOUT)
        result["bob_bookmarks_refused"] = None
    except IqError as e:
        result["bob_bookmarks_refused"] = refusal(e)

    for user in (alice, bob, carol):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(main(int(sys.argv[1]), sys.argv[2]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
