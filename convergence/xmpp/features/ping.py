# -*- test-case-name: tests.test_features -*-
"""XEP-0199: XMPP Ping, answered for the server's domains."""

from __future__ import annotations

from typing import Any

from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result


def on_ping(event: StanzaEvent) -> bool:
    event.reply(iq_result(event.stanza))
    return True


def install(server: Any) -> None:
    server.router.hook_iq("get", "host", ns.PING, "ping", on_ping)


FEATURE = Feature(
    name="ping", spec="XEP-0199", version="2.0.1",
    disco_features=(ns.PING,), install=install,
)
