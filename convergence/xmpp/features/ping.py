# -*- test-case-name: tests.test_ping -*-
"""
XEP-0199: XMPP Ping, both ways.

The server answers pings to its domains, and pings bound client streams
that have been silent for C{xmpp.ping_interval} seconds (silence measured
from the last data received, whatever it was).  Any data from the client
within C{xmpp.ping_timeout} proves it alive: a result, an error reply
(a client that does not know the ping still answers), or anything else.
Only silence ends the stream, with C{connection-timeout}.
"""

from __future__ import annotations

import secrets
from typing import Any

from lxml import etree
from twisted.internet.interfaces import IDelayedCall

from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

_IQ = f"{{{ns.CLIENT}}}iq"


def on_ping(event: StanzaEvent) -> bool:
    event.reply(iq_result(event.stanza))
    return True


class ClientPinger:
    """Pings idle client streams; closes those that stay silent."""

    def __init__(self, clock: Any, interval: float, timeout: float) -> None:
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self._timers: dict[Any, IDelayedCall] = {}
        self.stopped = False

    def watch(self, stream: Any) -> None:
        """Start watching a stream that has just bound a resource (or a
        session resumed on a new connection, XEP-0198)."""
        if not self.stopped:
            self.forget(stream)
            self._schedule(stream, self.interval)

    def stop(self, _: Any = None) -> None:
        """The server shuts down: no more pings, no timers left."""
        self.stopped = True
        for stream in list(self._timers):
            self.forget(stream)

    def forget(self, stream: Any) -> None:
        """The stream is gone: drop its timer."""
        timer = self._timers.pop(stream, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _schedule(self, stream: Any, delay: float) -> None:
        self._timers[stream] = self.clock.callLater(delay, self._check, stream)

    def _check(self, stream: Any) -> None:
        if stream.closed or stream.closing:
            self._timers.pop(stream, None)
            return
        idle = self.clock.seconds() - stream.last_received
        if idle < self.interval:
            self._schedule(stream, self.interval - idle)
            return
        self._ping(stream)
        self._timers[stream] = self.clock.callLater(
            self.timeout, self._expired, stream, stream.reads)

    def _ping(self, stream: Any) -> None:
        iq = etree.Element(_IQ, nsmap={None: ns.CLIENT}, type="get",
                           id="s2c-ping-" + secrets.token_hex(6))
        iq.set("from", stream.host or "")
        iq.set("to", str(stream.jid))
        etree.SubElement(iq, f"{{{ns.PING}}}ping", nsmap={None: ns.PING})
        stream.deliver(iq)

    def _expired(self, stream: Any, reads_at_ping: int) -> None:
        if stream.closed or stream.closing:
            self._timers.pop(stream, None)
        elif stream.reads > reads_at_ping:
            self._check(stream)  # it answered (or said anything): alive
        else:
            self._timers.pop(stream, None)
            stream.stream_error("connection-timeout",
                                f"no answer to a ping in {self.timeout:g} s")


def install(server: Any) -> None:
    server.router.hook_iq("get", "host", ns.PING, "ping", on_ping)
    config = server.config
    if not config.ping_interval:
        return
    pinger = ClientPinger(server.clock, config.ping_interval, config.ping_timeout)
    server.pinger = pinger
    server.bus.hook("c2s/bound", pinger.watch)
    server.bus.hook("c2s/resumed", pinger.watch)
    server.bus.hook("c2s/unbound", pinger.forget)
    server.bus.hook("xmpp/shutdown", pinger.stop)


FEATURE = Feature(
    name="ping", spec="XEP-0199", version="2.0.1",
    disco_features=(ns.PING,), install=install,
)
