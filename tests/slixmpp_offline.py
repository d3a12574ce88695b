"""
slixmpp as a sender or a receiver of offline messages, for
tests/test_offline_durable.py.

    python slixmpp_offline.py send PORT CAFILE JID PASSWORD TO TEXT...
    python slixmpp_offline.py receive PORT CAFILE JID PASSWORD COUNT

``send`` logs in, sends each TEXT as a chat message to TO and waits for a
server ping round trip (so any bounce has arrived), then prints
``{"errors": [...]}``.  ``receive`` logs in, sends available presence and
prints ``{"messages": [{"from", "body", "delay"}...]}`` once COUNT
messages arrived (or after the bound, with what it got).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import slixmpp

TIMEOUT = 15.0


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.load_verify_locations(cafile)
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        for plugin in ("xep_0199", "xep_0203"):
            self.register_plugin(plugin)
        self.ready = asyncio.get_event_loop().create_future()
        self.messages: list[dict] = []
        self.errors: list[str] = []
        self.wanted = 0
        self.enough = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)

    async def _start(self, event) -> None:
        if not self.ready.done():
            self.ready.set_result(True)

    def _message(self, msg) -> None:
        if msg["type"] == "error":
            self.errors.append(msg["error"]["condition"])
            return
        delay = msg["delay"]["stamp"]
        self.messages.append({"from": str(msg["from"].bare), "body": msg["body"],
                              "delay": delay.isoformat() if delay else None})
        if len(self.messages) >= self.wanted and not self.enough.done():
            self.enough.set_result(True)


async def main(mode: str, port: int, cafile: str, jid: str, password: str,
               rest: list[str]) -> dict:
    client = Client(jid, password, cafile)
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(client.ready, TIMEOUT)
    try:
        if mode == "send":
            to, texts = rest[0], rest[1:]
            for text in texts:
                client.send_message(mto=to, mbody=text, mtype="chat")
            await client.plugin["xep_0199"].ping(client.boundjid.host, timeout=TIMEOUT)
            return {"errors": client.errors}
        client.wanted = int(rest[0])
        client.send_presence()
        try:
            await asyncio.wait_for(client.enough, TIMEOUT)
        except asyncio.TimeoutError:
            pass
        return {"messages": client.messages, "errors": client.errors}
    finally:
        client.disconnect()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    mode, port, cafile, jid, password, *rest = sys.argv[1:]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    result = loop.run_until_complete(main(mode, int(port), cafile, jid, password, rest))
    sys.stdout.write(json.dumps(result) + "\n")
