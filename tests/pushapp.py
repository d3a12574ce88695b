"""
A test XEP-0357 app server: a convergence application (on
C{push.<domain>} by default) that records every notification published to
it and answers it.

Used by tests/test_push.py (deployed with make_app) and by the integration
test in a real twistd, configured as::

    [apps.pushservice]
    module = "tests.pushapp"
    settings = { record = "/path/to/pushes.jsonl" }

With C{record} set, each publish is appended to that file as one JSON line.
C{errors} (setting, or the servlet attribute) maps a node to the stanza
error condition to answer publishes on it with.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from convergence.container import DeploymentDescriptor
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.servlet import XmppRequest, XmppServlet

PUBSUB = "http://jabber.org/protocol/pubsub"
PUSH = "urn:xmpp:push:0"
DATA = "jabber:x:data"


def form_fields(form: etree._Element | None) -> dict[str, Any]:
    """A data form's fields: var -> value (a list if it has several)."""
    fields: dict[str, Any] = {}
    if form is None:
        return fields
    for field in form.iter(f"{{{DATA}}}field"):
        values = [v.text or "" for v in field.findall(f"{{{DATA}}}value")]
        fields[field.get("var")] = values[0] if len(values) == 1 else values
    return fields


class PushService(XmppServlet):
    """Records publishes to its nodes and answers them."""

    def __init__(self) -> None:
        self.publishes: list[dict[str, Any]] = []
        self.errors: dict[str, str] = {}
        #: nodes whose publishes are never answered
        self.silent: set[str] = set()
        self.record: str | None = None

    def init(self, context: Any) -> None:
        super().init(context)
        self.record = context.settings.get("record")
        self.errors.update(context.settings.get("errors", {}))

    def do_iq(self, request: XmppRequest) -> None:
        pubsub = request.payload
        publish = pubsub.find(f"{{{PUBSUB}}}publish") if pubsub is not None else None
        if (request.type != "set" or pubsub is None
                or pubsub.tag != f"{{{PUBSUB}}}pubsub" or publish is None):
            raise StanzaError("service-unavailable")
        notification = publish.find(f"{{{PUBSUB}}}item/{{{PUSH}}}notification")
        if notification is None:
            raise StanzaError("bad-request", "no notification")
        options = pubsub.find(f"{{{PUBSUB}}}publish-options/{{{DATA}}}x")
        entry = {
            "from": str(request.sender),
            "to": str(request.to),
            "node": publish.get("node"),
            "summary": form_fields(notification.find(f"{{{DATA}}}x")),
            "options": form_fields(options),
        }
        self.publishes.append(entry)
        if self.record:
            with open(self.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        if entry["node"] in self.silent:
            return
        condition = self.errors.get(entry["node"])
        if condition:
            raise StanzaError(condition)
        request.create_response().send()


descriptor = DeploymentDescriptor(
    name="pushservice",
    xmpp=["push.{domain}"],
    servlets={"xmpp": PushService},
)
