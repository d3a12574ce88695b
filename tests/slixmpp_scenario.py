"""
A real third-party client (slixmpp) exercising a running convergence server.

Run as a subprocess by tests/test_slixmpp.py:

    python slixmpp_scenario.py PORT CAFILE MECHANISM

It prints one JSON object with what it observed and exits; every wait is
bounded so a broken server makes it fail fast, never hang.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

TIMEOUT = 10.0


class Client(slixmpp.ClientXMPP):
    """A client that records messages and session start."""

    def __init__(self, jid: str, password: str, cafile: str, mechanism: str) -> None:
        super().__init__(jid, password)
        self.ca_certs = cafile
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.plugin["feature_mechanisms"].use_mech = mechanism
        self.started = asyncio.get_event_loop().create_future()
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.auth_failed = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)
        self.add_event_handler("message_error", self._message)
        self.add_event_handler("failed_auth", self._failed)
        self.mechanism_used = None
        self.add_event_handler("auth_success", self._auth)

    def _auth(self, stanza) -> None:
        self.mechanism_used = self.plugin["feature_mechanisms"].mech.name

    async def _start(self, event) -> None:
        self.send_presence()
        # A round trip on the same stream: once the pong is back the server
        # has processed the presence, so bare-JID routing sees us available.
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        if not self.started.done():
            self.started.set_result(True)

    def _message(self, msg) -> None:
        self.inbox.put_nowait(msg)

    def _failed(self, event) -> None:
        if not self.auth_failed.done():
            self.auth_failed.set_result(True)


async def connect(jid: str, password: str, port: int, cafile: str, mechanism: str) -> Client:
    client = Client(jid, password, cafile, mechanism)
    client.connect("127.0.0.1", port)
    return client


async def next_message(client: Client) -> dict:
    msg = await asyncio.wait_for(client.inbox.get(), TIMEOUT)
    out = {"from": str(msg["from"]), "type": msg["type"], "body": msg["body"],
           "thread": msg["thread"]}
    if msg["type"] == "error":
        out["error"] = msg["error"]["condition"]
    return out


async def main(port: int, cafile: str, mechanism: str) -> dict:
    result: dict = {}
    alice = await connect("alice@localhost/slix", "wonderland", port, cafile, mechanism)
    bob = await connect("bob@localhost/slix", "builder", port, cafile, mechanism)
    await asyncio.wait_for(asyncio.gather(alice.started, bob.started), TIMEOUT)
    result["alice_jid"] = str(alice.boundjid)
    result["mechanism"] = alice.mechanism_used
    result["tls"] = alice.transport.get_extra_info("ssl_object") is not None

    alice.send_message(mto="echo.localhost", mbody="hello echo", mtype="chat")
    await asyncio.sleep(0)
    msg = alice.make_message(mto="echo.localhost", mbody="threaded", mtype="chat")
    msg["thread"] = "thread-42"
    msg.send()
    result["echo"] = [await next_message(alice), await next_message(alice)]

    alice.send_message(mto="bob@localhost", mbody="hi bob", mtype="chat")
    result["bob_got"] = await next_message(bob)
    bob.send_message(mto=str(alice.boundjid), mbody="hi alice", mtype="chat")
    result["alice_got"] = await next_message(alice)

    alice.send_message(mto="nobody@localhost", mbody="anyone?", mtype="chat")
    result["unknown_user"] = await next_message(alice)
    alice.send_message(mto="juliet@capulet.example", mbody="o romeo", mtype="chat")
    result["remote"] = await next_message(alice)

    rtt = await alice.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
    result["ping_rtt"] = rtt is not None
    info = await alice.plugin["xep_0030"].get_info(jid="localhost", timeout=TIMEOUT)
    result["disco_features"] = sorted(info["disco_info"]["features"])
    try:
        await alice.plugin["xep_0030"].get_items(jid="nobody@localhost", timeout=TIMEOUT)
        result["iq_unknown_user"] = "result"
    except IqError as e:
        result["iq_unknown_user"] = e.iq["error"]["condition"]

    # Every client fetches its contacts' vCards (XEP-0054): the namespace
    # name "vcard-temp" is relative, and once ended the whole stream.
    vcard = alice.make_iq_get(ito="bob@localhost")
    vcard.append(ET.Element("{vcard-temp}vCard"))
    try:
        await vcard.send(timeout=TIMEOUT)
        result["vcard"] = "result"
    except IqError as e:
        result["vcard"] = e.iq["error"]["condition"]
    rtt = await alice.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
    result["alive_after_vcard"] = rtt is not None

    mallory = Client("alice@localhost/evil", "wrong password", cafile, mechanism)
    mallory.connect("127.0.0.1", port)
    try:
        await asyncio.wait_for(mallory.auth_failed, TIMEOUT)
        result["wrong_password"] = "failed_auth"
    except asyncio.TimeoutError:
        result["wrong_password"] = "no failure seen"
    mallory.disconnect()

    for client in (alice, bob):
        client.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    port, cafile, mechanism = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(main(port, cafile, mechanism), 60))
    sys.stdout.write(json.dumps(out) + "\n")
