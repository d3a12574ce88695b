"""
A slixmpp peer for clients that cannot be both sides of a scenario
(sendxmpp only sends): it logs in, says ``ready`` on a line, and prints
one JSON object with the messages it got once every expected text has
arrived or the time is up.

    python witness.py PORT CAFILE JID PASSWORD SECONDS [ROOM NICK] -- TEXT...
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import xml.etree.ElementTree as ET

import slixmpp


async def main(argv: list[str]) -> dict:
    port, cafile, jid, password, seconds = argv[:5]
    rest = argv[5:]
    split = rest.index("--")
    room = rest[:split]
    expected = rest[split + 1:]
    client = slixmpp.ClientXMPP(jid, password)
    client.ssl_context.load_verify_locations(cafile)
    client.ssl_context.verify_mode = ssl.CERT_REQUIRED
    client.register_plugin("xep_0045")
    client.register_plugin("xep_0203")
    ready = asyncio.get_event_loop().create_future()
    done = asyncio.get_event_loop().create_future()
    messages: list[dict] = []
    result: dict = {"messages": messages, "joined": None}

    async def start(_event) -> None:
        client.send_presence()
        await client.get_roster()
        if room:
            try:
                own, *_ = await asyncio.wait_for(client.plugin["xep_0045"].join_muc_wait(
                    room[0], room[1], maxstanzas=0), 5)
                if 201 in own["muc"]["status_codes"]:
                    # a new room stays locked until its owner configures it
                    iq = client.make_iq_set(ito=room[0])
                    iq.append(ET.fromstring(
                        "<query xmlns='http://jabber.org/protocol/muc#owner'>"
                        "<x xmlns='jabber:x:data' type='submit'/></query>"))
                    await iq.send(timeout=5)
                result["joined"] = True
            except TimeoutError:
                result["joined"] = "no self-presence from the room within 5 s"
            except Exception as e:  # noqa: BLE001 (the server's answer, reported
                result["joined"] = f"{type(e).__name__}: {e}"
                if not done.done():
                    done.set_result(False)  # not in the room: nothing to wait for
        if not ready.done():
            ready.set_result(True)

    def message(msg) -> None:
        messages.append({"from": str(msg["from"]), "type": msg["type"],
                         "body": msg["body"], "delay": bool(msg["delay"]["stamp"])})
        bodies = {m["body"].strip() for m in messages}
        if all(t in bodies for t in expected) and not done.done():
            done.set_result(True)

    client.add_event_handler("session_start", start)
    client.add_event_handler("message", message)
    client.connect("127.0.0.1", int(port))
    try:
        await asyncio.wait_for(ready, 10)
        print("ready", flush=True)
        if expected or done.done():
            await asyncio.wait_for(done, float(seconds))
    except TimeoutError:
        pass
    client.disconnect()
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))), flush=True)
