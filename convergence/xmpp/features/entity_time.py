# -*- test-case-name: tests.test_entity_time -*-
"""
XEP-0202: Entity Time of the server, in UTC (XEP-0082 DateTime), from the
server's clock.  The offset is always C{+00:00}: the host's local zone is
nobody's business and UTC is what the XEP asks clients to compute with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lxml import etree

from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

TIME = "urn:xmpp:time"


def utc_datetime(seconds: float) -> str:
    """XEP-0082 DateTime in UTC, to the millisecond: C{2026-12-06T22:28:33.120Z}."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def install(server: Any) -> None:
    def on_time(event: StanzaEvent) -> bool:
        result = iq_result(event.stanza)
        time = etree.SubElement(result, f"{{{TIME}}}time", nsmap={None: TIME})
        etree.SubElement(time, f"{{{TIME}}}tzo").text = "+00:00"
        etree.SubElement(time, f"{{{TIME}}}utc").text = utc_datetime(server.clock.seconds())
        event.reply(result)
        return True

    server.router.hook_iq("get", "host", TIME, "time", on_time)


FEATURE = Feature(
    name="time", spec="XEP-0202", version="2.0",
    disco_features=(TIME,), install=install,
)
