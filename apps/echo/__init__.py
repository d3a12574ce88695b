# -*- test-case-name: tests.test_echo -*-
"""
The echo application: every chat message to C{echo.<domain>} comes back
with the same body and thread.  The smallest complete convergence app.
"""

from lxml import etree

from convergence.container import DeploymentDescriptor
from convergence.xmpp import ns
from convergence.xmpp.servlet import XmppRequest, XmppServlet


class EchoServlet(XmppServlet):
    """Answers each message with its own body."""

    def do_message(self, request: XmppRequest) -> None:
        if request.type == "error" or request.body is None:
            return
        reply = request.create_response()
        body = etree.SubElement(reply.stanza, f"{{{ns.CLIENT}}}body")
        body.text = request.body
        reply.send()


descriptor = DeploymentDescriptor(
    name="echo",
    xmpp=["echo.{domain}"],
    servlets={"xmpp": EchoServlet},
)
