"""
A customer's XMPP client (slixmpp) for the selfhelp end-to-end test.

    python slixmpp_customer.py PORT CAFILE JID PASSWORD

Prints one JSON line per event: ready (logged in, available), then each
message it receives ({"event": "message", "from", "body", "thread"}). A line
"say <thread> <text>" on stdin makes it send <text> to selfhelp@localhost in
that thread. Exits on "quit" or after 60 s.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import slixmpp


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Customer(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.load_verify_locations(cafile)
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.message)

    async def start(self, event) -> None:
        self.send_presence()
        await self.plugin["xep_0199"].ping("localhost", timeout=10)
        emit(event="ready", jid=str(self.boundjid))

    def message(self, msg) -> None:
        emit(event="message", type=msg["type"], body=msg["body"], thread=msg["thread"],
             **{"from": str(msg["from"])})


async def commands(client: Customer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            break
        verb, thread, text = line.split(" ", 2)
        if verb == "say":
            msg = client.make_message(mto="selfhelp@localhost", mbody=text, mtype="chat")
            msg["thread"] = thread
            msg.send()
    client.disconnect()
    await asyncio.sleep(0.2)


async def main(port: int, cafile: str, jid: str, password: str) -> None:
    client = Customer(jid, password, cafile)
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(commands(client), 60)


if __name__ == "__main__":
    port, cafile, jid, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main(port, cafile, jid, password))
