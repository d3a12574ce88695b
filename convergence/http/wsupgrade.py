# -*- test-case-name: tests.test_sip_ws -*-
"""
WebSocket upgrades on the HTTP listener (RFC 6455 over twisted.web).

autobahn's L{WebSocketResource} takes the connection over from the HTTP
channel that received the upgrade request.  L{WebSocketUpgrade} then lets
the site forget the channel (it no longer carries HTTP): the upgraded
connection does not count as a busy HTTP request (L{HttpSite.drain} would
wait its grace period for it), and the channel's header timer is stopped.
The WebSocket protocol owns the connection from then on, and closes it
itself when its service stops.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.resource import WebSocketResource


class WebSocketUpgrade(WebSocketResource):
    """Serves one WebSocket factory at its path of the HTTP site."""

    def render(self, request: Any) -> Any:
        channel = request.channel
        result = super().render(request)
        if channel.transport is None:  # taken over by the WebSocket protocol
            cancel = getattr(channel, "_cancel_head_timer", None)
            if cancel is not None:
                cancel()
            channel.setTimeout(None)
            closed = getattr(channel.site, "channel_closed", None)
            if closed is not None:
                closed(channel)
        return result
