# -*- test-case-name: tests.test_xmpp_websocket -*-
"""
A WebSocket endpoint on the HTTP site: autobahn's L{WebSocketResource},
with the upgraded connection handed over cleanly.

Once autobahn has taken the socket from the L{HttpChannel}, the channel is
done with: its idle and header timers are stopped and the site forgets it
(a WebSocket is not an HTTP request in progress for the graceful drain;
whoever serves the WebSocket closes it on shutdown).
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.resource import WebSocketResource


class WebSocketUpgrade(WebSocketResource):
    """Serves C{factory}'s WebSocket protocol at this resource's path."""

    def render(self, request: Any) -> Any:
        channel = request.channel
        result = super().render(request)
        if channel.transport is None:
            release(channel)
        return result


def release(channel: Any) -> None:
    """Forget an L{HttpChannel} whose socket now carries a WebSocket."""
    channel.setTimeout(None)
    cancel = getattr(channel, "_cancel_head_timer", None)
    if cancel is not None:
        cancel()
    closed = getattr(channel.site, "channel_closed", None)
    if closed is not None:
        closed(channel)
