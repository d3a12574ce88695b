"""
slixmpp over XEP-0368 direct TLS against a running convergence.

Run as a subprocess by tests/test_direct_tls.py:

    python slixmpp_direct_tls.py PORT CAFILE MECHANISM

Connects with TLS from the first byte (STARTTLS disabled in the client,
certificate verified, ALPN xmpp-client offered), logs in, checks the
server's XEP-0115 caps with slixmpp's own caps code, sends presence with
its caps, lets the server ask for them, pings and prints one JSON object.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import slixmpp
from slixmpp_common import until

TIMEOUT = 10.0


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str, mechanism: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        self.ssl_context.set_alpn_protocols(["xmpp-client"])
        self.enable_starttls = False
        self.enable_direct_tls = True
        self.enable_plaintext = False
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0115")
        self.register_plugin("xep_0199")
        self.plugin["feature_mechanisms"].use_mech = mechanism
        self.started = asyncio.get_event_loop().create_future()
        self.failed = asyncio.get_event_loop().create_future()
        self.disco_asked: list[str] = []
        self.mechanism_used = None
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("auth_success", self._auth)
        self.add_filter("in", self._disco)

    def _auth(self, stanza) -> None:
        self.mechanism_used = self.plugin["feature_mechanisms"].mech.name

    def _disco(self, stanza):
        """Note the server's disco#info queries as they come in."""
        query = stanza.xml.find("{http://jabber.org/protocol/disco#info}query")
        if stanza.name == "iq" and stanza["type"] == "get" and query is not None:
            self.disco_asked.append(query.get("node"))
        return stanza

    async def _start(self, event) -> None:
        if not self.started.done():
            self.started.set_result(True)

    def _failed(self, event) -> None:
        if not self.failed.done():
            self.failed.set_result(True)




async def main(port: int, cafile: str, mechanism: str) -> dict:
    client = Client("alice@localhost/direct", "wonderland", cafile, mechanism)
    client.connect("127.0.0.1", port)
    done, _ = await asyncio.wait({client.started, client.failed}, timeout=TIMEOUT,
                                 return_when=asyncio.FIRST_COMPLETED)
    result: dict = {"started": client.started.done()}
    if not client.started.done():
        return result
    ssl_object = client.transport.get_extra_info("ssl_object")
    result["tls"] = ssl_object is not None
    result["alpn"] = ssl_object.selected_alpn_protocol() if ssl_object else None
    result["mechanism"] = client.mechanism_used
    result["jid"] = str(client.boundjid)
    result["starttls_offered"] = "starttls" in client.features
    # slixmpp checks the server's caps stream feature on its own: it asks
    # the server's caps node and verifies the hash before it assigns it.
    caps = client.plugin["xep_0115"]
    server_ver = []

    async def poll_server_caps() -> None:
        while True:
            ver = await caps.get_verstring("localhost")
            if ver:
                server_ver.append(ver)
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll_server_caps(), TIMEOUT)
    except asyncio.TimeoutError:
        pass
    result["server_ver"] = server_ver[0] if server_ver else None
    # Our own caps: the presence carries them; the server asks node#ver.
    await caps.update_caps(broadcast=False)
    client.send_presence()
    await until(lambda: bool(client.disco_asked))
    result["disco_asked"] = client.disco_asked
    result["own_ver"] = await caps.get_verstring(client.boundjid.full)
    result["caps_node"] = caps.caps_node
    # A round trip after the disco answer: once the pong is back, the
    # server has processed that answer.
    result["ping"] = bool(await client.plugin["xep_0199"].ping("localhost",
                                                                timeout=TIMEOUT))
    client.disconnect()
    await asyncio.wait_for(client.disconnected, TIMEOUT)
    return result


if __name__ == "__main__":
    out = asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
    print(json.dumps(out))
