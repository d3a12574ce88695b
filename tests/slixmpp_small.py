"""
slixmpp against a running convergence: in-band registration and the small
server features of XEP-0479 (version, time, last activity, pings both
ways, contact addresses).

Run as a subprocess by tests/test_slixmpp_small.py:

    python slixmpp_small.py open PORT CAFILE     # registration enabled
    python slixmpp_small.py default PORT CAFILE  # the default configuration

Prints one JSON object with what it observed.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from datetime import datetime

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp_common import until

TIMEOUT = 10.0
PLUGINS = ("xep_0030", "xep_0004", "xep_0066", "xep_0077", "xep_0092", "xep_0202",
           "xep_0012", "xep_0199")
SERVERINFO = "http://jabber.org/network/serverinfo"
DATA = "jabber:x:data"


class User(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str, register: bool = False) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        for plugin in PLUGINS:
            self.register_plugin(plugin)
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.auth_failed = loop.create_future()
        self.gone = loop.create_future()
        self.register_called = False
        self.registered: bool | None = None
        self.register_error: str | None = None
        self.pings = 0
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("disconnected", self._disconnected)
        self.add_filter("in", self._count_pings)
        if register:
            self.add_event_handler("register", self._register)

    async def _register(self, form) -> None:
        self.register_called = True
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send(timeout=TIMEOUT)
            self.registered = True
        except IqError as e:
            self.registered = False
            self.register_error = e.iq["error"]["condition"]

    def _start(self, event) -> None:
        if not self.started.done():
            self.started.set_result(True)

    def _failed(self, event) -> None:
        if not self.auth_failed.done():
            self.auth_failed.set_result(True)

    def _disconnected(self, event) -> None:
        if not self.gone.done():
            self.gone.set_result(True)

    def _count_pings(self, stanza):
        if stanza.name == "iq" and stanza["type"] == "get" \
                and stanza.xml.find("{urn:xmpp:ping}ping") is not None:
            self.pings += 1
        return stanza




async def session(jid: str, password: str, port: int, cafile: str,
                  register: bool = False) -> tuple[User, str]:
    """Connect; return the user and "started" or "auth-failed"."""
    user = User(jid, password, cafile, register)
    user.connect("127.0.0.1", port)
    done, _ = await asyncio.wait([user.started, user.auth_failed], timeout=TIMEOUT,
                                 return_when=asyncio.FIRST_COMPLETED)
    if user.started in done:
        return user, "started"
    if user.auth_failed in done:
        user.disconnect()
        await asyncio.wait([user.gone], timeout=TIMEOUT)
        return user, "auth-failed"
    return user, "timeout"


async def open_server(port: int, cafile: str) -> dict:
    result: dict = {}
    newbie, state = await session("newbie@localhost/slix", "first-pw", port, cafile,
                                  register=True)
    result["first_login"] = state
    result["registered"] = newbie.registered
    if state != "started":
        return result

    version = await newbie["xep_0092"].get_version("localhost", timeout=TIMEOUT)
    result["version"] = {k: version["software_version"][k] for k in ("name", "version", "os")}
    entity_time = await newbie["xep_0202"].get_entity_time("localhost", timeout=TIMEOUT)
    # read from the XML: slixmpp's own getter appends a second "Z"
    utc = entity_time.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
    result["utc_text"] = utc
    result["utc"] = datetime.fromisoformat(utc).timestamp()
    result["tzo"] = entity_time.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}tzo")
    uptime = await newbie["xep_0012"].get_last_activity("localhost", timeout=TIMEOUT)
    result["uptime"] = uptime["last_activity"]["seconds"]
    newbie.send_presence()
    own = await newbie["xep_0012"].get_last_activity("newbie@localhost", timeout=TIMEOUT)
    result["own_last"] = own["last_activity"]["seconds"]
    info = await newbie["xep_0030"].get_info("localhost", timeout=TIMEOUT)
    contact = {}
    for x in info.xml.iter(f"{{{DATA}}}x"):
        fields = {f.get("var"): [v.text for v in f.iter(f"{{{DATA}}}value")]
                  for f in x.iter(f"{{{DATA}}}field")}
        if fields.get("FORM_TYPE") == [SERVERINFO]:
            contact = fields
    result["contact"] = contact
    result["features"] = sorted(info["disco_info"]["features"])

    # XEP-0199 from the server: idle for a while, answered by slixmpp
    result["pinged"] = await until(lambda: newbie.pings >= 2, limit=8)
    await newbie["xep_0199"].ping("localhost", timeout=TIMEOUT)
    result["alive_after_pings"] = not newbie.gone.done()

    await newbie["xep_0077"].change_password("second-pw", timeout=TIMEOUT)
    result["password_changed"] = True
    newbie.disconnect()
    await asyncio.wait([newbie.gone], timeout=TIMEOUT)

    _, result["old_password"] = await session("newbie@localhost/old", "first-pw", port,
                                               cafile)
    again, result["new_password"] = await session("newbie@localhost/slix", "second-pw",
                                                  port, cafile)
    if result["new_password"] == "started":
        await again["xep_0077"].cancel_registration(timeout=TIMEOUT)
        result["removed"] = True
        done, _ = await asyncio.wait([again.gone], timeout=TIMEOUT)
        result["closed_after_removal"] = again.gone in done
    _, result["after_removal"] = await session("newbie@localhost/gone", "second-pw", port,
                                               cafile)
    return result


async def default_server(port: int, cafile: str) -> dict:
    mallory, state = await session("mallory@localhost/slix", "pw", port, cafile,
                                   register=True)
    if state == "started":
        mallory.disconnect()
    return {"login": state, "register_called": mallory.register_called,
            "registered": mallory.registered}


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    scenario = {"open": open_server, "default": default_server}[sys.argv[1]]
    out = loop.run_until_complete(asyncio.wait_for(
        scenario(int(sys.argv[2]), sys.argv[3]), 90))
    sys.stdout.write(json.dumps(out) + "\n")
