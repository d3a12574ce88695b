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

import autobahn.twisted.websocket as _autobahn_websocket
from autobahn.twisted.resource import WebSocketResource
from autobahn.wamp.types import TransportDetails

from convergence.starttls import TLSTransport

_create_transport_details = _autobahn_websocket.create_transport_details


def _transport_details(transport: Any, is_server: bool) -> TransportDetails:
    """
    autobahn's connection details, also over the HTTPS listener: its TLS
    (L{TLSTransport}, the standard library's C{ssl}) is not pyOpenSSL's
    C{TLSMemoryBIOProtocol}, from which autobahn reads a C{tls-unique}
    channel id (for WAMP, unused here) and fails the upgrade without it;
    that id is read from C{ssl} instead (L{_channel_id}).
    """
    if isinstance(transport, TLSTransport):
        details = _create_transport_details(transport.tcp, is_server)
        details.channel_type = TransportDetails.CHANNEL_TYPE_TLS
        details.is_secure = True
        return details
    return _create_transport_details(transport, is_server)


_transport_channel_id = _autobahn_websocket.transport_channel_id


def _channel_id(transport: Any, is_server: bool,
                channel_id_type: str | None = None) -> bytes | None:
    """The C{tls-unique} channel binding from the standard library's TLS."""
    if isinstance(transport, TLSTransport) and channel_id_type == "tls-unique":
        return transport._tls.get_channel_binding("tls-unique")
    return _transport_channel_id(transport, is_server, channel_id_type)


_autobahn_websocket.create_transport_details = _transport_details  # type: ignore[attr-defined]
_autobahn_websocket.transport_channel_id = _channel_id  # type: ignore[attr-defined]


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
