"""
slixmpp as carol (on a phone that registers for push) and bob, against a
running convergence whose test app server (tests/pushapp.py) records the
notifications it receives in a file, one JSON line each.

Run as a subprocess by tests/test_slixmpp_push.py:

    python slixmpp_push.py PORT CAFILE RECORD

Prints one JSON object with what it observed.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp_common import until

TIMEOUT = 10.0
PUSH = "urn:xmpp:push:0"
DATA = "jabber:x:data"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.started = asyncio.get_event_loop().create_future()
        self.messages: list[dict] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)

    async def _start(self, event) -> None:
        self.send_presence()
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        if not self.started.done():
            self.started.set_result(True)

    def _message(self, message) -> None:
        delay = message.xml.find("{urn:xmpp:delay}delay")
        self.messages.append({"from": str(message["from"]), "body": message["body"],
                              "delayed": delay is not None})

    async def push(self, action: str, node: str, secret: str | None = None) -> str:
        """Send enable or disable to the own account; the answer's type."""
        iq = self.make_iq_set()
        element = ET.SubElement(iq.xml, f"{{{PUSH}}}{action}",
                                {"jid": "push.localhost", "node": node})
        if secret is not None:
            form = ET.SubElement(element, f"{{{DATA}}}x", {"type": "submit"})
            for var, value in (("FORM_TYPE", PUBLISH_OPTIONS), ("secret", secret)):
                field = ET.SubElement(form, f"{{{DATA}}}field", {"var": var})
                ET.SubElement(field, f"{{{DATA}}}value").text = value
        answer = await iq.send(timeout=TIMEOUT)
        return answer["type"]

    async def leave(self) -> None:
        """Go unavailable (made sure of by a ping), then disconnect."""
        self.send_presence(ptype="unavailable")
        await self.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT)
        await asyncio.wait_for(self.disconnect(), TIMEOUT)




async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.started, TIMEOUT)
    return user


def records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def main(port: int, cafile: str, record: Path) -> dict:
    result: dict = {}
    carol = await start("carol@localhost/phone", "carol-pw", port, cafile)
    info = await carol.plugin["xep_0030"].get_info(jid="carol@localhost", timeout=TIMEOUT)
    result["account_features"] = sorted(info["disco_info"]["features"])
    result["enable"] = await carol.push("enable", "token-1", secret="s3cret")
    await carol.leave()

    bob = await start("bob@localhost/laptop", "builder", port, cafile)
    bob.send_message(mto="carol@localhost", mbody="wake up", mtype="chat")
    result["pushed"] = await until(lambda: len(records(record)) >= 1)
    result["records_after_first"] = records(record)

    carol = await start("carol@localhost/phone", "carol-pw", port, cafile)
    result["offline_delivered"] = await until(lambda: len(carol.messages) >= 1)
    result["carol_got"] = list(carol.messages)
    result["disable"] = await carol.push("disable", "token-1")
    await carol.leave()

    bob.send_message(mto="carol@localhost", mbody="second", mtype="chat")
    # The push lookup for this message runs before it is stored; once carol
    # has it from offline storage, any publish for it would have been made.
    carol = await start("carol@localhost/phone", "carol-pw", port, cafile)
    result["second_delivered"] = await until(lambda: len(carol.messages) >= 1)
    result["carol_got_second"] = list(carol.messages)
    result["records_at_end"] = records(record)
    for user in (carol, bob):
        await asyncio.wait_for(user.disconnect(), TIMEOUT)
    return result


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(
        main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])), 90))
    sys.stdout.write(json.dumps(out) + "\n")
