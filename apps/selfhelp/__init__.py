# -*- test-case-name: tests.test_selfhelp -*-
"""
selfhelp: a self-help (IVR-style) bot on three channels, one conversation.

- XMPP: chat with C{selfhelp@<domain>} gets the menu.
- SIP: an INVITE to C{sip:selfhelp@<domain>} offering audio and a jabber
  chat is answered declining audio and accepting the chat; the bot then
  opens the chat over XMPP in the offered thread; BYE ends it.
- HTTP: C{/selfhelp/} is the same menu on a web page (a form without
  JavaScript; with it, a live XMPP-over-WebSocket chat as a one-time
  guest and a "call us" button over SIP/WebSocket, docs/selfhelp.md), and
  C{/selfhelp/api/sessions} shows the visitor's conversation (every live
  one to an operator's bearer token).

Settings: C{agent} — C{xmpp:agent@localhost} or C{sip:agent@localhost},
who "3 Talk to an agent" brings into the conversation; C{sip_websocket} —
the path of SIP over WebSocket the page calls on (C{sip.websocket_path});
C{operator_token} — the bearer token that lists every conversation in
C{api/sessions} (unset: nobody can).
"""

from apps.selfhelp import sip, web, xmpp
from convergence.container import DeploymentDescriptor

descriptor = DeploymentDescriptor(
    name="selfhelp",
    xmpp=["selfhelp@{domain}"],
    sip=["selfhelp@{domain}"],
    http="/selfhelp",
    servlets={
        "xmpp": xmpp.SelfhelpXmppServlet,
        "sip": sip.SelfhelpSipServlet,
        "http": web.SelfhelpHttpServlet,
    },
    application_keys={"xmpp": xmpp.thread_key, "sip": sip.thread_key},
    session_timeout=900.0,
    settings={"agent": "xmpp:agent@localhost", "sip_websocket": "/sip"},
)
