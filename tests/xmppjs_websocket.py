"""
@xmpp/client over WebSocket and slixmpp over TCP against one running
convergence. Run as a subprocess by tests/test_xmppjs_websocket.py:

    python xmppjs_websocket.py WS_URL C2S_PORT CAFILE TWISTD_LOG PASSWORD

The Node driver (tests/clients/js/ws_driver.mjs) logs in as wsalice over
WebSocket, slixmpp as wsbob over STARTTLS; they chat both ways; then the
WebSocket is closed under alice's session, bob writes while it
hibernates, and @xmpp/client resumes it (XEP-0198) on a new WebSocket and
receives the message. Prints one JSON object; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path

import slixmpp
from slixmpp_common import TIMEOUT, until

JS = Path(__file__).with_name("clients") / "js"
#: seconds for the node driver to start and log in (its own limit is 60)
STARTUP_TIMEOUT = 30.0


class Bob(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, cafile: str) -> None:
        super().__init__(jid, password)
        self.ssl_context.check_hostname = True
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.load_verify_locations(cafile)
        self.started = asyncio.get_event_loop().create_future()
        self.bodies: list[tuple[str, str]] = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._message)

    async def _start(self, event) -> None:
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _message(self, message) -> None:
        if message["body"]:
            self.bodies.append((str(message["from"]), message["body"]))


class Node:
    """The driver process: JSON events out, commands in."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict] = []

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    async def event(self, kind: str, skip: int = 0, limit: float = TIMEOUT,
                    **match: str) -> dict | None:
        def find() -> dict | None:
            found = [e for e in self.events if e.get("event") == kind
                     and all(e.get(k) == v for k, v in match.items())]
            return found[skip] if len(found) > skip else None
        await until(lambda: find() is not None, limit)
        return find()


async def main(url: str, port: int, cafile: str, log: Path, password: str) -> dict:
    result: dict = {}
    bob = Bob("wsbob@localhost/slix", password, cafile)
    bob.connect("127.0.0.1", port)
    await asyncio.wait_for(bob.started, TIMEOUT)

    proc = await asyncio.create_subprocess_exec(
        "node", "--no-warnings", "--experimental-websocket", str(JS / "ws_driver.mjs"),
        url, "localhost", "wsalice", password, cwd=str(JS),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    node = Node(proc)
    reader = asyncio.ensure_future(node.read())
    try:
        # node's own start (loading @xmpp/client cold) counts here too
        online = await node.event("online", limit=STARTUP_TIMEOUT)
        result["online"] = online
        result["errors"] = [e for e in node.events if e.get("event") == "error"]
        if online is None:
            result["events"] = node.events
            return result
        alice = online["jid"]

        # chat both ways: TCP -> WebSocket -> TCP
        bob.send_message(mto="wsalice@localhost", mbody="hello from tcp", mtype="chat")
        got = await node.event("message", body="hello from tcp")
        result["ws_got"] = got and [got["from"], got["body"]]
        node.command("send wsbob@localhost/slix hello from the web")
        await until(lambda: any(b == "hello from the web" for _, b in bob.bodies))
        result["tcp_got"] = [[f, b] for f, b in bob.bodies if b == "hello from the web"]

        # XEP-0198 over WebSocket: the socket goes, the session hibernates,
        # a message waits for it, the library resumes on a new WebSocket
        node.command("drop")
        result["disconnected"] = await node.event("disconnected") is not None
        needle = f"{alice} hibernates"
        result["hibernated"] = await until(
            lambda: needle in log.read_text(errors="replace"))
        bob.send_message(mto=alice, mbody="while you were away", mtype="chat")
        result["resumed"] = await node.event("resumed")
        got = await node.event("message", body="while you were away")
        result["queued_got"] = got and [got["from"], got["body"]]
        node.command("send wsbob@localhost/slix back again")
        await until(lambda: any(b == "back again" for _, b in bob.bodies))
        result["after_resume"] = any(b == "back again" for _, b in bob.bodies)
        result["errors"] = [e for e in node.events if e.get("event") == "error"]
        node.command("quit")
        await asyncio.wait_for(proc.wait(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
        bob.disconnect()
    return result


if __name__ == "__main__":
    out = asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]),
                           sys.argv[5]))
    print(json.dumps(out))
