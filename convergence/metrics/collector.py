# -*- test-case-name: tests.test_metrics -*-
"""
The collector: reads the counters the protocol layers keep as plain
integers (L{XmppStats}, L{TransactionStats}, the SIP transport's and the
HTTP site's counts, the session manager's) when the endpoint is scraped,
and turns them into metric families.  Nothing here runs on a hot path.

Every metric is listed in docs/operations.md.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from twisted.internet.defer import Deferred, succeed

import convergence
from convergence.metrics.lag import ReactorLag

#: stanza kinds counted by name; anything else the router saw is "other"
STANZA_KINDS = ("message", "presence", "iq")


def status_class(digit: int) -> str:
    """C{2} -> C{"2xx"}; C{0} (no final response) -> C{"none"}."""
    return f"{digit}xx" if digit else "none"


class ConvergenceCollector(Collector):
    """
    The server's metrics, computed at scrape time.

    @param server: the assembled server (L{convergence.service.Convergence}):
        its C{xmpp}, C{sip}, C{http} (or None) and C{container}.
    @param run_in_db: runs the offline-storage count on the database thread.
    """

    def __init__(self, server: Any, lag: ReactorLag | None = None,
                 run_in_db: Callable[..., Deferred] | None = None) -> None:
        self.server = server
        self.lag = lag
        self.run_in_db = run_in_db
        #: messages in offline storage at the last refresh (None: not known)
        self.offline_messages: int | None = None

    # The values only the database knows, read before each scrape.
    def refresh(self) -> Deferred:
        """Count the stored offline messages (on the database thread)."""
        store = getattr(self.server.xmpp, "im_store", None)
        if self.run_in_db is None or store is None:
            return succeed(None)

        def counted(n: int) -> None:
            self.offline_messages = n

        return self.run_in_db(store.count_all_messages).addCallback(counted)

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: names are fixed

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("convergence_build_info", "The running version.",
                                 labels=["version"])
        info.add_metric([convergence.__version__], 1)
        yield info
        yield from self._connections()
        yield from self._xmpp()
        yield from self._sip()
        yield from self._http()
        yield from self._sessions()
        yield from self._lag()

    # Connections, by protocol and transport
    def _connections(self) -> Iterator[Metric]:
        open_ = GaugeMetricFamily(
            "convergence_connections_open", "Open connections.",
            labels=["protocol", "transport"])
        accepted = CounterMetricFamily(
            "convergence_connections_accepted", "Connections accepted.",
            labels=["protocol", "transport"])
        xmpp = self.server.xmpp
        by_transport: dict[str, int] = dict.fromkeys(("tcp", "tls"), 0)
        for stream in list(xmpp.connections):
            label = getattr(stream, "transport_label", "tcp")
            by_transport[label] = by_transport.get(label, 0) + 1
        accepted_c2s = {**dict.fromkeys(by_transport, 0), **xmpp.stats.accepted}
        for label in sorted(accepted_c2s):
            open_.add_metric(["c2s", label], by_transport.get(label, 0))
            accepted.add_metric(["c2s", label], accepted_c2s[label])
        transport = self.server.sip.transport
        open_.add_metric(["sip", "tcp"], len({id(c) for c in transport.connections.values()}))
        accepted.add_metric(["sip", "tcp"], transport.tcp_accepted)
        ws_open: dict[str, int] = dict.fromkeys(getattr(transport, "ws_accepted", {}), 0)
        for connection in list(getattr(transport, "ws_connections", {}).values()):
            kind = connection.sip_peer.transport
            ws_open[kind] = ws_open.get(kind, 0) + 1
        for kind in sorted(ws_open):
            open_.add_metric(["sip", kind.lower()], ws_open[kind])
            accepted.add_metric(["sip", kind.lower()], transport.ws_accepted.get(kind, 0))
        for label, site in self._http_sites():
            open_.add_metric(["http", label], len(site.channels))
            accepted.add_metric(["http", label], site.accepted)
        yield open_
        yield accepted

    # XMPP
    def _xmpp(self) -> Iterator[Metric]:
        xmpp = self.server.xmpp
        stats = xmpp.stats
        logins = CounterMetricFamily(
            "convergence_xmpp_logins", "Successful SASL authentications.",
            labels=["mechanism"])
        for mechanism, n in sorted(stats.logins.items()):
            logins.add_metric([mechanism], n)
        yield logins
        failures = CounterMetricFamily(
            "convergence_xmpp_sasl_failures", "Failed SASL authentications.",
            labels=["mechanism", "condition"])
        for (mechanism, condition), n in sorted(stats.sasl_failures.items()):
            failures.add_metric([mechanism, condition], n)
        yield failures
        routed = CounterMetricFamily(
            "convergence_xmpp_stanzas_routed",
            "Stanzas that entered the router (from clients, the server and apps).",
            labels=["kind"])
        other = 0
        for kind, n in xmpp.router.routed.items():
            if kind not in STANZA_KINDS:
                other += n
        for kind in STANZA_KINDS:
            routed.add_metric([kind], xmpp.router.routed.get(kind, 0))
        if other:
            routed.add_metric(["other"], other)
        yield routed
        yield GaugeMetricFamily("convergence_xmpp_sessions_bound",
                                "Bound client resources.", value=len(xmpp.registry))
        yield CounterMetricFamily("convergence_xmpp_offline_stored",
                                  "Messages committed to offline storage.",
                                  value=stats.offline_stored)
        yield CounterMetricFamily("convergence_xmpp_offline_delivered",
                                  "Messages delivered from offline storage.",
                                  value=stats.offline_delivered)
        if self.offline_messages is not None:
            yield GaugeMetricFamily("convergence_xmpp_offline_messages",
                                    "Messages in offline storage (read at scrape time).",
                                    value=self.offline_messages)

    # SIP
    def _sip(self) -> Iterator[Metric]:
        sip = self.server.sip
        transport = sip.transport
        received = CounterMetricFamily(
            "convergence_sip_messages_received", "SIP messages received.",
            labels=["transport"])
        counts = {"UDP": 0, "TCP": 0, **transport.received}
        for name in sorted(counts):
            received.add_metric([name.lower()], counts[name])
        yield received
        dropped = CounterMetricFamily(
            "convergence_sip_messages_dropped",
            "SIP messages dropped or refused before the transaction layer.",
            labels=["reason"])
        for reason, n in sorted(transport.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped
        layer = sip.transactions
        stats = layer.stats
        done = CounterMetricFamily(
            "convergence_sip_transactions",
            "SIP transactions ended, by side, method and final status class.",
            labels=["side", "method", "status_class"])
        for side, table in (("server", stats.server), ("client", stats.client)):
            for (method, digit), n in sorted(table.items()):
                done.add_metric([side, method, status_class(digit)], n)
        yield done
        active = GaugeMetricFamily("convergence_sip_transactions_active",
                                   "Live SIP transactions.", labels=["side"])
        active.add_metric(["server"], len(layer.server))
        active.add_metric(["client"], len(layer.client))
        yield active
        timers = CounterMetricFamily(
            "convergence_sip_timer_firings",
            "RFC 3261 transaction timers fired: A, E, G retransmit; B, F, H time out.",
            labels=["timer"])
        for name, n in stats.timers.items():
            timers.add_metric([name], n)
        yield timers
        yield CounterMetricFamily(
            "convergence_sip_retransmissions_received",
            "Requests matching a live server transaction (retransmissions, not ACKs).",
            value=stats.retransmissions_received)
        yield GaugeMetricFamily("convergence_sip_dialogs", "SIP dialogs held.",
                                value=len(sip.dialogs))

    # HTTP
    def _http_sites(self) -> list[tuple[str, Any]]:
        """(transport label, site) of the HTTP listener and the HTTPS one."""
        sites = [("tcp", self.server.http), ("tls", getattr(self.server, "https", None))]
        return [(label, site) for label, site in sites if site is not None]

    def _http(self) -> Iterator[Metric]:
        sites = self._http_sites()
        if not sites:
            return
        counts: dict[int, int] = {}
        for _, site in sites:
            for code, n in site.responses.items():
                counts[code] = counts.get(code, 0) + n
        requests = CounterMetricFamily(
            "convergence_http_responses",
            "HTTP responses sent (HTTP and HTTPS), by status code.", labels=["code"])
        for code, n in sorted(counts.items()):
            requests.add_metric([str(code)], n)
        yield requests

    # ApplicationSessions
    def _sessions(self) -> Iterator[Metric]:
        manager = self.server.container.sessions
        names = sorted(set(self.server.container.applications) | set(manager.created))
        live = GaugeMetricFamily("convergence_application_sessions",
                                 "Live ApplicationSessions.", labels=["application"])
        created = CounterMetricFamily("convergence_application_sessions_created",
                                      "ApplicationSessions created.",
                                      labels=["application"])
        invalidated = CounterMetricFamily(
            "convergence_application_sessions_invalidated",
            "ApplicationSessions invalidated (ended or expired).", labels=["application"])
        for name in names:
            made = manager.created.get(name, 0)
            ended = manager.invalidated.get(name, 0)
            live.add_metric([name], made - ended)
            created.add_metric([name], made)
            invalidated.add_metric([name], ended)
        yield live
        yield created
        yield invalidated

    # The reactor
    def _lag(self) -> Iterator[Metric]:
        lag = self.lag
        if lag is None:
            return
        histogram = HistogramMetricFamily(
            "convergence_reactor_lag_seconds",
            "How late the reactor ran a call due at a known time.",
            buckets=lag.cumulative(), sum_value=lag.sum, unit="seconds")
        yield histogram
        yield GaugeMetricFamily("convergence_reactor_lag_max_seconds",
                                "The largest reactor lag measured since the start.",
                                value=lag.max, unit="seconds")
