"""
slixmpp users receiving HTTP alerts from a running convergence.

Run as a subprocess by tests/test_slixmpp_alert.py:

    python slixmpp_alert.py C2S_PORT HTTP_PORT CAFILE TOKEN

alice creates the room ops@conference.localhost and bob joins it; an
alert POSTed (urllib, in a thread) into the room reaches both as a
groupchat from ops@…/alert with the answer's id; a chat alert to bob
reaches him; an alert to carol while she is offline reaches her at her
next login; a wrong token and an unknown room are refused.  Prints one
JSON object; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

import slixmpp
from slixmpp_common import TIMEOUT, until

ROOM = "ops@conference.localhost"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in ("xep_0030", "xep_0045", "xep_0004", "xep_0199", "xep_0203"):
            self.register_plugin(plugin)
        self.started = asyncio.get_event_loop().create_future()
        self.groupchat: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("groupchat_message", self._groupchat)
        self.add_event_handler("message", self._message)

    @property
    def muc(self) -> Any:
        return self.plugin["xep_0045"]

    async def _start(self, event) -> None:
        self.send_presence()
        await self.get_roster()
        if not self.started.done():
            self.started.set_result(True)

    def _groupchat(self, msg) -> None:
        if msg["body"]:
            self.groupchat.append({"from": str(msg["from"]), "body": msg["body"],
                                   "id": msg["id"]})

    def _message(self, msg) -> None:
        if msg["type"] in ("normal", "chat") and msg["body"]:
            self.messages.append({"from": str(msg["from"]), "body": msg["body"],
                                  "id": msg["id"], "type": msg["type"],
                                  "delayed": bool(msg["delay"]["stamp"])})


async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


def post(http_port: int, token: str, alert: dict) -> tuple[int, dict]:
    """POST one alert with urllib; (status, JSON answer)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/api/alert", data=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def main(port: int, http_port: int, cafile: str, token: str) -> dict:
    result: dict = {}
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)
    await alice.muc.join_muc_wait(ROOM, "Alice", maxstanzas=0, timeout=TIMEOUT)
    form = await alice.muc.get_room_config(ROOM, timeout=TIMEOUT)
    submit = alice.plugin["xep_0004"].make_form("submit")
    submit.add_field("FORM_TYPE", value=form.get_fields()["FORM_TYPE"]["value"],
                     ftype="hidden")
    await alice.muc.set_room_config(ROOM, submit, timeout=TIMEOUT)
    await bob.muc.join_muc_wait(ROOM, "Bob", maxstanzas=0, timeout=TIMEOUT)

    status, answer = await asyncio.to_thread(
        post, http_port, token, {"room": "ops", "body": "disk full on db1"})
    result["room_post"] = [status, answer]
    await until(lambda: alice.groupchat and bob.groupchat)
    result["alice_groupchat"] = alice.groupchat[:]
    result["bob_groupchat"] = bob.groupchat[:]

    status, answer = await asyncio.to_thread(
        post, http_port, token, {"to": "bob@localhost", "body": "page: db1", "type": "chat"})
    result["jid_post"] = [status, answer]
    await until(lambda: bob.messages)
    result["bob_messages"] = bob.messages[:]

    status, answer = await asyncio.to_thread(
        post, http_port, token, {"to": "carol@localhost", "body": "while you were away"})
    result["offline_post"] = [status, answer]
    carol = await start("carol@localhost/slix", "carol-pw", port, cafile)
    await until(lambda: carol.messages)
    result["carol_messages"] = carol.messages[:]

    result["wrong_token"] = list(await asyncio.to_thread(
        post, http_port, token + "-wrong", {"room": "ops", "body": "x"}))
    result["unknown_room"] = list(await asyncio.to_thread(
        post, http_port, token, {"room": "nowhere", "body": "x"}))
    await asyncio.sleep(0.3)  # anything posted by mistake would be here by now
    result["alice_groupchat_after"] = len(alice.groupchat)

    for user in (alice, bob, carol):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    c2s, http, ca, secret = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    print(json.dumps(asyncio.run(main(c2s, http, ca, secret))))
