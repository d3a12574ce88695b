"""
slixmpp (plugins xep_0054 and xep_0363) as alice and bob of a running
``twistd convergence``, for tests/test_slixmpp_vcard_upload.py.

    python slixmpp_vcard_upload.py PORT CAFILE

alice publishes her vCard and reads it back; bob fetches alice's vCard
(the request whose relative namespace name once ended the stream) and
carol's, who has none; alice finds the upload service by disco, requests
a slot, PUTs a file with urllib and GETs it back; a slot over the size
limit gets the XEP's error.  Prints one JSON object; every wait is bounded.

slixmpp's xep_0363 module imports aiohttp (for its ``upload_file``
helper, which this script does not call) and aiohttp is not a dependency
of this project: an empty stand-in module satisfies the import.  The
plugin's discovery and slot request are used as shipped; the HTTP
transfers are urllib's.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import types
import urllib.error
import urllib.request

sys.modules.setdefault("aiohttp", types.SimpleNamespace(ClientSession=None))

import slixmpp
from slixmpp.exceptions import IqError

TIMEOUT = 15.0
UPLOAD = "urn:xmpp:http:upload:0"
#: HTTPS uploads are verified against the test's certificate (argv[2])
HTTPS_CONTEXT: ssl.SSLContext | None = None


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.load_verify_locations(cafile)
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        for plugin in ("xep_0030", "xep_0054", "xep_0199", "xep_0363"):
            self.register_plugin(plugin)
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._start)

    async def _start(self, event) -> None:
        self.send_presence()
        if not self.ready.done():
            self.ready.set_result(True)


async def start(jid: str, password: str, port: int, cafile: str) -> User:
    user = User(jid, password, cafile)
    user.connect("127.0.0.1", port)
    await asyncio.wait_for(user.ready, TIMEOUT)
    return user


def http(method: str, url: str, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT,
                                    context=HTTPS_CONTEXT) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


async def main(port: int, cafile: str) -> dict:
    result: dict = {}
    alice = await start("alice@localhost/slix", "wonderland", port, cafile)
    bob = await start("bob@localhost/slix", "builder", port, cafile)

    # XEP-0054
    empty = alice.make_iq_get()
    empty.enable("vcard_temp")
    got = await empty.send(timeout=TIMEOUT)
    result["own_before"] = {"type": got["type"], "children": len(got["vcard_temp"].xml)}
    vcard = alice.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Alice Liddell"
    vcard["NICKNAME"] = "alice"
    vcard["DESC"] = "Curiouser and curiouser"
    await alice.plugin["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)
    own = alice.make_iq_get()
    own.enable("vcard_temp")
    own = await own.send(timeout=TIMEOUT)
    result["own_fn"] = own["vcard_temp"]["FN"]
    seen = await bob.plugin["xep_0054"].get_vcard("alice@localhost", local=False,
                                                  timeout=TIMEOUT)
    result["bob_sees"] = {"from": str(seen["from"]), "fn": seen["vcard_temp"]["FN"],
                          "nick": seen["vcard_temp"]["NICKNAME"],
                          "desc": seen["vcard_temp"]["DESC"]}
    try:
        await bob.plugin["xep_0054"].get_vcard("carol@localhost", local=False,
                                               timeout=TIMEOUT)
        result["carol"] = "result"
    except IqError as e:
        result["carol"] = e.iq["error"]["condition"]
    try:
        await bob.plugin["xep_0054"].publish_vcard(vcard, jid="alice@localhost",
                                                   timeout=TIMEOUT)
        result["bob_sets_alice"] = "result"
    except IqError as e:
        result["bob_sets_alice"] = e.iq["error"]["condition"]
    result["bob_alive"] = await bob.plugin["xep_0199"].ping("localhost", timeout=TIMEOUT) \
        is not None

    # XEP-0363
    upload = alice.plugin["xep_0363"]
    info = await upload.find_upload_service(timeout=TIMEOUT)
    result["service"] = str(info["from"]) if info is not None else None
    fields = {}
    for form in info["disco_info"].iterables if info is not None else ():
        fields.update(form.get_values())
    result["max_file_size"] = fields.get("max-file-size")
    data = bytes(range(256)) * 400 + "très cool ✓".encode()
    slot = await upload.request_slot(info["from"], "très cool.bin", len(data),
                                     "application/x-test", timeout=TIMEOUT)
    put = slot["http_upload_slot"]["put"]["url"]
    get = slot["http_upload_slot"]["get"]["url"]
    result["urls"] = [put, get]
    status, _, _ = await asyncio.to_thread(
        http, "PUT", put, data, {"Content-Type": "application/x-test"})
    result["put"] = status
    status, headers, body = await asyncio.to_thread(http, "GET", get)
    headers = {k.lower(): v for k, v in headers.items()}
    result["get"] = {"status": status, "same": body == data, "size": len(body),
                     "type": headers.get("content-type"),
                     "length": headers.get("content-length"),
                     "nosniff": headers.get("x-content-type-options"),
                     "disposition": headers.get("content-disposition")}
    status, _, _ = await asyncio.to_thread(
        http, "PUT", put, data, {"Content-Type": "application/x-test"})
    result["put_again"] = status
    try:
        await upload.request_slot(info["from"], "huge.bin",
                                  int(result["max_file_size"]) + 1, timeout=TIMEOUT)
        result["too_large"] = "result"
    except IqError as e:
        error = e.iq["error"]
        limit = error.xml.find(f"{{{UPLOAD}}}file-too-large/{{{UPLOAD}}}max-file-size")
        result["too_large"] = {"condition": error["condition"], "type": error["type"],
                               "max": limit.text if limit is not None else None}
    for user in (alice, bob):
        user.disconnect()
    await asyncio.sleep(0.3)
    return result


if __name__ == "__main__":
    HTTPS_CONTEXT = ssl.create_default_context(cafile=sys.argv[2])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    out = loop.run_until_complete(asyncio.wait_for(main(int(sys.argv[1]), sys.argv[2]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
