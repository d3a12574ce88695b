#!/usr/bin/env python3
"""
`make bench`: convergence against the reference servers, same machine, same run.

For every figure, each server is started fresh on loopback with the same
settings, measured ``--runs`` times (default 3), and the median is reported:

    figure | convergence | reference | ratio | generator CPU %

XMPP figures are measured by ``bench/xmppload.py`` against convergence and
Debian's Prosody; SIP figures by sipp (``bench/sipbench.py``) against
convergence and a sipp UAS. Every raw run, the machine and the versions go to
``bench/results/<timestamp>.json``. See docs/performance.md.

    python bench/run.py                 # everything, about 20 minutes on 2 cores
    python bench/run.py --quick         # short runs, 1 run each, 1,000 idle only
    python bench/run.py --only login_scram,sip --servers convergence
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import servers
from bench.servers import (
    CONVERGENCE_DEFAULT_ITERATIONS,
    PROSODY_ITERATIONS,
    S2S_DOMAINS,
    BenchDir,
    ConvergenceServer,
    FederatedPair,
    ProsodyServer,
    Server,
    ServerError,
    XmppSettings,
)

RESULTS_DIR = ROOT / "bench" / "results"
XMPPLOAD = ROOT / "bench" / "xmppload.py"
IMLOAD = ROOT / "bench" / "imload.py"
MUCLOAD = ROOT / "bench" / "mucload.py"
SERVER_KINDS = ("convergence", "reference")

log = logging.getLogger("bench")


# ------------------------------------------------------------ figures


@dataclass(frozen=True)
class Figure:
    """One row group of the table."""

    name: str
    title: str  # the table's row label
    unit: str
    better: str  # "higher" or "lower"
    kind: str  # "xmpp", "s2s" (two federating servers a kind), "sip", ...
    mode: str = ""  # xmppload mode
    settings: XmppSettings | None = None
    load_args: tuple[str, ...] = ()
    metric: str = ""  # key in xmppload's results
    reference: bool = True  # measured on the reference too
    fresh_per_run: bool = False  # a new server for every run (memory figures)
    extra_rows: tuple[tuple[str, str, str, str], ...] = ()  # (metric, title, unit, better)
    sip_target: str = ""  # sipbench's reference target
    sip_transport: str = "udp"  # sipbench's transport (the call ladders)
    script: Path = XMPPLOAD  # the load generator (imload.py for the IM modes)
    describe: str = ""  # for the docs and the JSON


@dataclass
class Plan:
    """Durations and sizes: the default run, or --quick."""

    runs: int = 3
    login_duration: float = 8.0
    login_concurrency: int = 50
    pairs: int = 10
    window: int = 20
    throughput_duration: float = 8.0
    #: the open-loop figure's offered load (below both servers' maximum)
    paced_rate: int = 10000
    #: the s2s figure: sender -> receiver pairs across two servers, seconds
    #: sent before measuring (the s2s streams and dialback are set up then)
    s2s_pairs: int = 10
    s2s_warmup: float = 3.0
    idle_sizes: tuple[int, ...] = (1000, 5000)
    idle_concurrency: int = 50
    #: IM figures: login users (each with roster_contacts online contacts),
    #: messages through offline storage, users idle with ring rosters
    roster_logins: int = 10
    roster_contacts: int = 100
    offline_messages: int = 2000
    idle_roster_size: int = 1000
    sip_rates: tuple[int, ...] = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 16000)
    sip_duration: float = 8.0
    sip_refine: int = 1
    #: the INVITE->200 latency row's rate (the issue's "p99 at 1,000 calls/s")
    sip_latency_rate: int = 1000
    #: MUC fan-out: occupants of the room, how many send, messages in
    #: flight per sender, seconds measured
    muc_occupants: int = 50
    muc_senders: int = 5
    muc_window: int = 10
    muc_duration: float = 8.0
    #: registrations: users cycled through, registrations in flight, seconds
    sip_register_users: int = 1000
    sip_register_concurrency: int = 50
    sip_register_duration: float = 8.0
    #: memory rows: registered contacts, confirmed dialogs
    sip_contacts: tuple[int, ...] = (10000, 100000)
    sip_dialogs: tuple[int, ...] = (10000,)

    @classmethod
    def quick(cls) -> Plan:
        return cls(runs=1, login_duration=3.0, throughput_duration=3.0, muc_duration=3.0,
                   idle_sizes=(1000,), sip_duration=3.0, sip_refine=0,
                   sip_register_duration=3.0, sip_contacts=(2000,), sip_dialogs=(2000,))


def figures(plan: Plan) -> list[Figure]:
    """Every figure of a run, in table order."""
    c = plan.login_concurrency
    login = ("--concurrency", str(c), "--duration", f"{plan.login_duration:g}")
    result = [
        Figure(
            "login_scram", "logins/s, STARTTLS + SCRAM-SHA-1, 10000 iter.", "logins/s",
            "higher", "xmpp", "login",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=c),
            ("--tls", "--mechanism", "SCRAM-SHA-1", *login), "logins_per_s",
            describe=f"{c} clients each repeating connect, STARTTLS, SCRAM-SHA-1, bind, "
                     "presence, close"),
        Figure(
            "login_plain", "logins/s, plaintext, PLAIN, 10000 iter.", "logins/s",
            "higher", "xmpp", "login",
            XmppSettings(require_tls=False, iterations=PROSODY_ITERATIONS, users=c),
            ("--no-tls", "--mechanism", "PLAIN", *login), "logins_per_s",
            describe=f"{c} clients each repeating connect, PLAIN without TLS, bind, "
                     "presence, close (the server runs PBKDF2 on every login)"),
        Figure(
            "login_default", "logins/s, convergence defaults (4096 iter.)", "logins/s",
            "higher", "xmpp", "login",
            XmppSettings(require_tls=True, iterations=CONVERGENCE_DEFAULT_ITERATIONS,
                         users=c),
            ("--tls", *login), "logins_per_s", reference=False,
            describe="as login_scram, on convergence's default configuration: "
                     "4096 iterations, the client takes the best mechanism "
                     "offered (SCRAM-SHA-256)"),
        Figure(
            "throughput", f"messages/s, {plan.pairs} pairs x window {plan.window}",
            "msg/s", "higher", "xmpp", "throughput",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS,
                         users=2 * plan.pairs),
            ("--tls", "--mechanism", "SCRAM-SHA-1", "--pairs", str(plan.pairs),
             "--window", str(plan.window), "--duration", f"{plan.throughput_duration:g}"),
            "messages_per_s",
            extra_rows=(("latency_p50_ms", "  message latency p50", "ms", "lower"),
                        ("latency_p99_ms", "  message latency p99", "ms", "lower")),
            describe=f"{plan.pairs} sender->receiver pairs over STARTTLS, chat messages "
                     f"to full JIDs, {plan.window} in flight per pair (the same offered "
                     "load on both servers)"),
        Figure(
            "throughput_paced",
            f"message latency p99, {plan.paced_rate:,} msg/s offered", "ms", "lower",
            "xmpp", "throughput",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS,
                         users=2 * plan.pairs),
            ("--tls", "--mechanism", "SCRAM-SHA-1", "--pairs", str(plan.pairs),
             "--rate", str(plan.paced_rate), "--window", "1000",
             "--duration", f"{plan.throughput_duration:g}"),
            "latency_p99_ms",
            extra_rows=(("latency_p50_ms", "  message latency p50", "ms", "lower"),
                        ("messages_per_s", "  messages/s delivered", "msg/s", "higher")),
            describe=f"{plan.pairs} pairs over STARTTLS sending {plan.paced_rate:,} chat "
                     "messages/s in all at a fixed pace (an open loop: the same offered "
                     "load on both servers, whatever their speed); latency from send to "
                     "receipt"),
    ]
    result.append(Figure(
        "throughput_sm",
        f"messages/s, {plan.pairs} pairs x window {plan.window}, stream management",
        "msg/s", "higher", "xmpp", "throughput",
        XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS,
                     users=2 * plan.pairs, stream_management=True),
        ("--tls", "--mechanism", "SCRAM-SHA-1", "--pairs", str(plan.pairs),
         "--window", str(plan.window), "--duration", f"{plan.throughput_duration:g}",
         "--sm"),
        "messages_per_s",
        extra_rows=(("latency_p99_ms", "  message latency p99, stream management", "ms",
                     "lower"),),
        describe="as throughput, with XEP-0198 enabled (with resumption) by every "
                 "client and on both servers (Prosody: mod_smacks): the server asks "
                 "for an ack after 5 unacked stanzas, each client after 5 sent"))
    ws = XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=c,
                      websocket=True)
    result += [
        Figure(
            "login_ws", "logins/s, WebSocket (ws://), SCRAM-SHA-1, 10000 iter.",
            "logins/s", "higher", "xmpp", "login", ws,
            ("--mechanism", "SCRAM-SHA-1", *login), "logins_per_s",
            describe=f"{c} clients each repeating a WebSocket handshake (subprotocol "
                     "xmpp), <open/>, SCRAM-SHA-1, <open/>, bind, presence, <close/> "
                     "(RFC 7395) on the HTTP port, plain ws:// on loopback counted as "
                     "secure on both servers (Prosody: mod_websocket); the TCP rows "
                     "above are the same logins over STARTTLS / plaintext"),
        Figure(
            "throughput_ws",
            f"messages/s, {plan.pairs} pairs x window {plan.window}, WebSocket",
            "msg/s", "higher", "xmpp", "throughput",
            replace(ws, users=2 * plan.pairs),
            ("--mechanism", "SCRAM-SHA-1", "--pairs", str(plan.pairs),
             "--window", str(plan.window), "--duration", f"{plan.throughput_duration:g}"),
            "messages_per_s",
            extra_rows=(("latency_p99_ms", "  message latency p99, WebSocket", "ms",
                         "lower"),),
            describe="as throughput, every client over WebSocket (one message per "
                     "WebSocket message, RFC 7395) instead of STARTTLS"),
    ]
    for size in plan.idle_sizes:
        result.append(Figure(
            f"idle_{size}", f"RSS KiB/connection, {size} idle (TLS)", "KiB", "lower",
            "xmpp", "idle",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=size),
            ("--tls", "--mechanism", "SCRAM-SHA-1", "--connections", str(size),
             "--concurrency", str(plan.idle_concurrency)),
            "rss_per_connection_kib", fresh_per_run=True,
            describe=f"{size} authenticated, bound, available connections over STARTTLS, "
                     "distinct users; server RSS growth / connections"))
    hubs, size = plan.roster_logins, plan.roster_contacts
    n = plan.idle_roster_size
    result += [
        Figure(
            "roster_login", f"logins/s, {size}-contact roster, contacts online",
            "logins/s", "higher", "xmpp", "roster_login",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS,
                         users=hubs + size, roster=f"hub:{hubs}:{size}"),
            ("--tls", "--mechanism", "SCRAM-SHA-1", "--concurrency", str(hubs),
             "--contacts", str(size), "--duration", f"{plan.login_duration:g}"),
            "logins_per_s", script=IMLOAD,
            extra_rows=(("presence_per_s", "  presence stanzas delivered/s", "stanzas/s",
                         "higher"),),
            describe=f"{hubs} clients each repeating connect, STARTTLS, SCRAM-SHA-1, bind, "
                     f"roster get ({size} items, subscription both), initial presence, "
                     f"the {size} contacts' presence (probes answered by the server), "
                     f"close; the {size} contacts stay online and receive the "
                     "available and unavailable presence"),
        Figure(
            "offline", f"offline messages stored/s, {plan.offline_messages:,} messages",
            "msg/s", "higher", "xmpp", "offline",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=2),
            ("--tls", "--mechanism", "SCRAM-SHA-1", "--messages",
             str(plan.offline_messages)),
            "stored_per_s", script=IMLOAD,
            extra_rows=(("delivered_per_s", "  delivered/s at login", "msg/s", "higher"),
                        ("store_and_deliver_per_s", "  stored and delivered, together",
                         "msg/s", "higher")),
            describe=f"one client sends {plan.offline_messages:,} chat messages to an "
                     "offline user, then pings the server (stored/s up to the ping's "
                     "answer); the user logs in and receives them all, in order (delivered/s "
                     "from its presence to the last message)"),
        Figure(
            f"idle_{n}_roster", f"RSS KiB/connection, {n} idle, {size}-contact rosters",
            "KiB", "lower", "xmpp", "idle",
            XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=n,
                         roster=f"ring:{size}"),
            ("--tls", "--mechanism", "SCRAM-SHA-1", "--connections", str(n),
             "--concurrency", str(plan.idle_concurrency), "--roster"),
            "rss_per_connection_kib", fresh_per_run=True,
            describe=f"{n} authenticated, bound, available connections over STARTTLS, "
                     f"each user with {size} contacts (all of them online, subscription "
                     "both) and its roster fetched; server RSS growth / connections"),
    ]
    occupants = plan.muc_occupants
    result.append(Figure(
        "muc", f"groupchat messages delivered/s, {occupants}-occupant room", "msg/s",
        "higher", "xmpp", "muc",
        XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=occupants,
                     muc=True),
        ("--tls", "--mechanism", "SCRAM-SHA-1", "--occupants", str(occupants),
         "--senders", str(plan.muc_senders), "--window", str(plan.muc_window),
         "--duration", f"{plan.muc_duration:g}"),
        "delivered_per_s", script=MUCLOAD,
        extra_rows=(("sent_per_s", "  groupchat messages sent/s", "msg/s", "higher"),
                    ("fanout_p50_ms", f"  fan-out latency p50 (to all {occupants})", "ms",
                     "lower"),
                    ("fanout_p99_ms", f"  fan-out latency p99 (to all {occupants})", "ms",
                     "lower")),
        describe=f"{occupants} users over STARTTLS in one room on conference.localhost "
                 f"(Prosody: mod_muc), {plan.muc_senders} of them each keeping "
                 f"{plan.muc_window} groupchat messages in flight (until reflected); "
                 f"every copy to every occupant counts; fan-out latency from the send "
                 "to the last occupant's copy"))
    size = plan.idle_sizes[0]
    result.append(Figure(
        f"hibernating_{size}", f"RSS KiB/hibernating session, {size} (TLS)", "KiB",
        "lower", "xmpp", "idle",
        XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS, users=size,
                     stream_management=True),
        ("--tls", "--mechanism", "SCRAM-SHA-1", "--connections", str(size),
         "--concurrency", str(plan.idle_concurrency), "--sm", "--hibernate"),
        "rss_per_hibernating_kib", fresh_per_run=True,
        extra_rows=(("rss_per_connection_kib", "  RSS KiB/connection before the reset",
                     "KiB", "lower"),),
        describe=f"{size} connections as idle_{size}, each with XEP-0198 resumption "
                 "enabled, then every connection reset (RST): the sessions hibernate; "
                 "server RSS growth / sessions"))
    a, b = S2S_DOMAINS
    result.append(Figure(
        "s2s", f"messages/s server to server, {plan.s2s_pairs} pairs x window "
               f"{plan.window}", "msg/s", "higher", "s2s", "s2s",
        XmppSettings(require_tls=True, iterations=PROSODY_ITERATIONS,
                     users=plan.s2s_pairs),
        ("--tls", "--mechanism", "SCRAM-SHA-1", "--pairs", str(plan.s2s_pairs),
         "--window", str(plan.window), "--duration", f"{plan.throughput_duration:g}",
         "--warmup", f"{plan.s2s_warmup:g}"),
        "messages_per_s",
        extra_rows=(("latency_p50_ms", "  message latency p50, server to server", "ms",
                     "lower"),
                    ("latency_p99_ms", "  message latency p99, server to server", "ms",
                     "lower")),
        describe=f"two servers of a kind on loopback, {a} and {b}, federating over "
                 "STARTTLS + dialback (convergence's default s2s policy; Prosody: "
                 "s2s_require_encryption, mod_dialback, s2s_secure_auth off); "
                 f"{plan.s2s_pairs} senders on {a} each keeping {plan.window} chat "
                 f"messages in flight to a receiver on {b} (full JIDs); delivered/s "
                 f"counted at {b}, latency from send to receipt"))
    latency = plan.sip_latency_rate
    sip_rows = (("p50_ms", "  INVITE->200 p50 at the common rate", "ms", "lower"),
                ("p99_ms", "  INVITE->200 p99 at the common rate", "ms", "lower"),
                ("p99_ms@", f"  INVITE->200 p99 at {latency:,} calls/s", "ms", "lower"))
    result += [
        Figure(
            "sip", "SIP calls/s, zero failures, UDP (vs sipp UAS)", "calls/s", "higher", "sip",
            sip_target="sipp-uas", extra_rows=sip_rows,
            describe="tests/sipp/uac_jabber.xml (INVITE with jabber-chat SDP, 200 "
                     "checked, ACK, BYE, 200) over UDP, up a ladder of rates, "
                     f"{plan.sip_duration:g} s a step; held: no failed call, "
                     "retransmissions < 1 %, >= 97 % of the rate; reference: "
                     "sipp UAS tests/sipp/uas_for_selftest.xml"),
        Figure(
            "sip_tcp", "SIP calls/s, zero failures, TCP (vs sipp UAS)", "calls/s", "higher", "sip",
            sip_target="sipp-uas", sip_transport="tcp", extra_rows=sip_rows,
            describe="the same calls over one TCP connection (sipp -t t1), against "
                     "the same sipp UAS over TCP"),
    ]
    for algorithm in ("MD5", "SHA-256"):
        result.append(Figure(
            f"sip_register_{algorithm.lower().replace('-', '')}",
            f"SIP registrations/s, {algorithm} digest (vs Kamailio)", "reg/s", "higher",
            "sipreg", mode=algorithm, metric="registrations_per_s",
            extra_rows=(("p99_ms", "  registration p99 (401 + 200)", "ms", "lower"),),
            describe=f"bench/sipreg.py: {plan.sip_register_concurrency} registrations in "
                     f"flight over {plan.sip_register_users:,} users, each REGISTER, 401, "
                     f"REGISTER with {algorithm} digest (qop=auth), 200; reference: "
                     "Kamailio (usrloc in memory, one UDP worker)"))
    for n in plan.sip_contacts:
        result.append(Figure(
            f"sip_contacts_{n}", f"RSS KiB per registered contact, {n:,} contacts",
            "KiB", "lower", "sipmem", mode="contacts", metric="kib_per_contact",
            fresh_per_run=True,
            describe=f"{n:,} users register one contact each (MD5, expires 1 day); "
                     "growth of the server's RSS (Kamailio: PSS of all its processes) "
                     "over the contacts"))
    for n in plan.sip_dialogs:
        result.append(Figure(
            f"sip_dialogs_{n}", f"RSS KiB per confirmed dialog, {n:,} dialogs",
            "KiB", "lower", "sipmem", mode="dialogs", metric="kib_per_dialog",
            reference=False, fresh_per_run=True,
            describe=f"{n:,} uac_jabber.xml calls held after their ACK (BYE after 10 "
                     "minutes), measured once Timer L has ended the INVITE transactions; "
                     "growth of the server's RSS over the dialogs"))
    result += [
        Figure(
            "sip_builtin", "SIP calls/s, sipp -sn uas (no SDP checks)", "calls/s",
            "higher", "sip", sip_target="sipp-builtin",
            describe="the same calls without the SDP checks against sipp's built-in "
                     "uas; convergence is not measured in this row"),
    ]
    return result


FIGURE_GROUPS = {
    "login": ("login_scram", "login_plain", "login_default"),
    "xmpp": ("login_scram", "login_plain", "login_default", "throughput",
             "throughput_paced", "throughput_sm", "login_ws", "throughput_ws", "idle",
             "hibernating_1000", "roster_login", "offline", "muc", "s2s"),
    "im": ("roster_login", "offline", "idle_roster"),
    "sm": ("throughput_sm", "hibernating_1000"),
    "websocket": ("login_ws", "throughput_ws"),
    "idle": ("idle",),
}
FIGURE_GROUPS["sip"] = tuple(
    f.name for f in figures(Plan()) if f.kind in ("sip", "sipreg", "sipmem"))
#: the call ladders only (UDP, TCP, sipp's built-in UAS)
FIGURE_GROUPS["sip_calls"] = ("sip", "sip_tcp", "sip_builtin")
FIGURE_GROUPS["sip_register"] = ("sip_register_md5", "sip_register_sha256")


def _sip_groups(all_figures: Sequence[Figure]) -> dict[str, tuple[str, ...]]:
    """The sip group of this plan (its memory rows depend on the sizes)."""
    return {**FIGURE_GROUPS,
            "sip": tuple(f.name for f in all_figures if f.kind in ("sip", "sipreg", "sipmem")),
            "sip_memory": tuple(f.name for f in all_figures if f.kind == "sipmem")}


def select(all_figures: Sequence[Figure], only: str | None) -> list[Figure]:
    """The figures named by --only (names, or groups: login, xmpp, im, idle,
    idle_roster, sip)."""
    if not only:
        return list(all_figures)
    wanted: set[str] = set()
    for name in (n.strip() for n in only.split(",") if n.strip()):
        wanted.update(_sip_groups(all_figures).get(name, (name,)))
    def roster_idle(f: Figure) -> bool:
        return f.name.startswith("idle_") and f.name.endswith("_roster")

    chosen = [f for f in all_figures
              if f.name in wanted
              or ("idle" in wanted and f.name.startswith("idle_") and not roster_idle(f))
              or ("idle_roster" in wanted and roster_idle(f))]
    unknown = wanted - {f.name for f in all_figures} - {"idle", "idle_roster"}
    if unknown:
        names = ", ".join([f.name for f in all_figures] + list(FIGURE_GROUPS))
        raise SystemExit(f"bench: unknown figure(s) {', '.join(sorted(unknown))}; "
                         f"choose from {names}")
    return chosen


# ------------------------------------------------------------ math and table


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None (None when there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(convergence: float | None, reference: float | None) -> float | None:
    """convergence / reference (None when either is missing or the reference is 0)."""
    if convergence is None or reference is None or reference == 0:
        return None
    return convergence / reference


def fmt_number(value: float | None, capped: bool = False) -> str:
    if value is None:
        return "-"
    prefix = ">=" if capped else ""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{prefix}{value:,.0f}"
    if abs(value) >= 10:
        return f"{prefix}{value:.1f}"
    return f"{prefix}{value:.2f}"


def fmt_ratio(value: float | None, conv_capped: bool = False,
              ref_capped: bool = False) -> str:
    if value is None:
        return "-"
    if ref_capped and not conv_capped:
        return f"<={value:.2f}x"
    if conv_capped and not ref_capped:
        return f">={value:.2f}x"
    return f"{value:.2f}x"


def fmt_cpu(convergence: float | None, reference: float | None) -> str:
    def one(v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v:.0f}{'!' if v >= 90 else ''}"

    return f"{one(convergence)} / {one(reference)}"


@dataclass
class Row:
    """One line of the table (medians)."""

    title: str
    unit: str
    better: str
    convergence: float | None
    reference: float | None
    generator_cpu: tuple[float | None, float | None] = (None, None)
    capped: tuple[bool, bool] = (False, False)
    show_cpu: bool = True

    @property
    def ratio(self) -> float | None:
        return ratio(self.convergence, self.reference)


def format_table(rows: Sequence[Row]) -> str:
    """The plain-text table printed at the end (and stored in the JSON)."""
    header = ("figure", "convergence", "reference", "ratio", "generator CPU %")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        arrow = "(higher better)" if row.better == "higher" else "(lower better)"
        lines.append((
            f"{row.title} [{row.unit}] {arrow}",
            fmt_number(row.convergence, row.capped[0]),
            fmt_number(row.reference, row.capped[1]),
            fmt_ratio(row.ratio, *row.capped),
            fmt_cpu(*row.generator_cpu) if row.show_cpu else "",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]
        out.append(" | ".join(cells).rstrip())
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


def format_markdown(rows: Sequence[Row]) -> str:
    """The same table in Markdown (docs/performance.md)."""
    out = ["| figure | convergence | reference | ratio | generator CPU % (conv / ref) |",
           "|---|--:|--:|--:|--:|"]
    for row in rows:
        arrow = "higher is better" if row.better == "higher" else "lower is better"
        out.append(
            f"| {row.title.strip()} ({row.unit}, {arrow}) | "
            f"{fmt_number(row.convergence, row.capped[0])} | "
            f"{fmt_number(row.reference, row.capped[1])} | "
            f"{fmt_ratio(row.ratio, *row.capped)} | "
            f"{fmt_cpu(*row.generator_cpu) if row.show_cpu else ''} |")
    return "\n".join(out)


# ------------------------------------------------------------ machine


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else None


def _run(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=20,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info() -> dict[str, Any]:
    """What the figures ran on."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        meminfo = ""
    mem_kib = _first(r"^MemTotal:\s+(\d+)", meminfo)
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = None
    sipp = _first(r"(SIPp v\S+)", _run(["sipp", "-v"])) if shutil.which("sipp") else None
    kamailio = (_first(r"version: (kamailio \S+)", _run(["kamailio", "-v"]))
                if shutil.which("kamailio") else None)
    twisted_version = None
    try:
        import twisted

        twisted_version = twisted.__version__
    except ImportError:
        pass
    import ssl

    return {
        "nproc": os.cpu_count(),
        "cpu_model": _first(r"^model name\s*:\s*(.+)$", cpuinfo),
        "ram_gib": round(int(mem_kib) / 1024 / 1024, 1) if mem_kib else None,
        "kernel": platform.release(),
        "debian": debian,
        "python": platform.python_version(),
        "twisted": twisted_version,
        "openssl": ssl.OPENSSL_VERSION,
        "prosody": servers.prosody_version(),
        "sipp": sipp,
        "kamailio": kamailio,
        "commit": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or None,
    }


def describe_machine(machine: dict[str, Any]) -> str:
    return (f"{machine.get('nproc')} x {machine.get('cpu_model')}, "
            f"{machine.get('ram_gib')} GiB RAM, Linux {machine.get('kernel')}, "
            f"Debian {machine.get('debian')}, Python {machine.get('python')}, "
            f"Twisted {machine.get('twisted')}, Prosody {machine.get('prosody')}, "
            f"{machine.get('sipp')}"
            + (f", {machine['kamailio']}" if machine.get("kamailio") else ""))


# ------------------------------------------------------------ running


def run_xmppload(mode: str, server: Server, args: Sequence[str],
                 timeout: float, script: Path = XMPPLOAD) -> dict[str, Any]:
    """One xmppload (or imload) run against a live server; its JSON report
    (or an error)."""
    cmd = [sys.executable, str(script), mode, "--host", servers.LOOPBACK,
           "--port", str(server.port), "--domain", servers.DOMAIN,
           "--users-prefix", servers.USERS_PREFIX, "--password", servers.PASSWORD,
           "--server-pid", str(server.pid), "--label", server.name, "--json", *args]
    began = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"xmppload timed out after {timeout:.0f} s", "command": cmd}
    report: dict[str, Any] | None = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if report is None:
        return {"error": f"xmppload exited {proc.returncode} without a report",
                "stderr": proc.stderr[-2000:], "command": cmd}
    report["exit_code"] = proc.returncode
    report["elapsed_s"] = round(time.monotonic() - began, 2)
    return report


#: other names a result may have in an xmppload report
METRIC_ALIASES = {
    "latency_p50_ms": ("p50_ms",),
    "latency_p99_ms": ("p99_ms",),
    "rss_per_connection_kib": ("rss_kib_per_connection",),
}


def metric_of(report: dict[str, Any], key: str) -> float | None:
    """A number from an xmppload report's results (None when absent)."""
    results = report.get("results") or {}
    for name in (key, *METRIC_ALIASES.get(key, ())):
        value = results.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def failures_of(report: dict[str, Any]) -> int:
    """Failed logins, lost messages and errors of one xmppload run."""
    results = report.get("results") or {}
    return sum(v for k in ("failures", "lost", "errors", "errors_to_sender", "missing",
                           "out_of_order")
               if isinstance(v := results.get(k), int))


def xmpp_timeout(figure: Figure, plan: Plan) -> float:
    if figure.mode == "idle":
        size = int(figure.name.split("_")[1])
        return 120.0 + size / 20.0
    if figure.mode == "throughput":
        return plan.throughput_duration + 120.0
    if figure.mode == "offline":
        return 120.0 + plan.offline_messages / 50.0
    if figure.mode == "muc":
        return plan.muc_duration + 180.0
    if figure.mode == "s2s":
        return plan.throughput_duration + plan.s2s_warmup + 120.0
    return plan.login_duration + 120.0


def make_server(kind: str, bench: BenchDir, settings: XmppSettings) -> Server:
    if kind == "convergence":
        return ConvergenceServer(bench, settings)
    return ProsodyServer(bench, settings)


def measure_xmpp(figure: Figure, plan: Plan, bench: BenchDir, kinds: Sequence[str],
                 progress: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    """Run figure on each kind of server, runs interleaved; raw reports by kind."""
    assert figure.settings is not None
    kinds = [k for k in kinds if k == "convergence" or figure.reference]
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    live: dict[str, Server] = {}
    timeout = xmpp_timeout(figure, plan)
    try:
        for n in range(plan.runs):
            for kind in kinds:
                try:
                    if kind not in live:
                        live[kind] = make_server(kind, bench, figure.settings).start()
                    server = live[kind]
                    load_args = figure.load_args
                    if figure.settings.websocket:
                        load_args = (*load_args, "--ws", server.websocket_url)
                    report = run_xmppload(figure.mode, server, load_args, timeout,
                                          figure.script)
                    report["server_rss_end_kib"] = server.rss_kib()
                except ServerError as e:
                    report = {"error": str(e)}
                finally:
                    if figure.fresh_per_run and kind in live:
                        live.pop(kind).stop()
                raw[kind].append(report)
                progress(f"{figure.name} run {n + 1}/{plan.runs} {kind}: "
                         + summarize(figure, report))
    finally:
        for server in live.values():
            server.stop()
    return raw


def s2s_load_args(figure: Figure, pair: FederatedPair) -> tuple[str, ...]:
    """xmppload s2s's arguments for a live pair: senders on pair.sender,
    receivers on pair.receiver."""
    sender, receiver = pair.sender, pair.receiver
    return ("--host", sender.address, "--domain", sender.domain,
            "--peer-host", receiver.address, "--peer-port", str(receiver.port),
            "--peer-domain", receiver.domain, *figure.load_args)


def measure_s2s(figure: Figure, plan: Plan, bench: BenchDir, kinds: Sequence[str],
                progress: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    """The federation figure: a FederatedPair of each kind, runs interleaved;
    raw reports by kind (server RSS: both servers together)."""
    assert figure.settings is not None
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    live: dict[str, FederatedPair] = {}
    timeout = xmpp_timeout(figure, plan)
    try:
        for n in range(plan.runs):
            for kind in kinds:
                try:
                    if kind not in live:
                        live[kind] = FederatedPair(kind, bench, figure.settings).start()
                    pair = live[kind]
                    report = run_xmppload(figure.mode, pair.sender,
                                          s2s_load_args(figure, pair), timeout,
                                          figure.script)
                    report["server_rss_end_kib"] = pair.rss_kib()
                except ServerError as e:
                    report = {"error": str(e)}
                raw[kind].append(report)
                progress(f"{figure.name} run {n + 1}/{plan.runs} {kind}: "
                         + summarize(figure, report))
    finally:
        for pair in live.values():
            pair.stop()
    return raw


def summarize(figure: Figure, report: dict[str, Any]) -> str:
    if "error" in report:
        return "ERROR " + report["error"].splitlines()[0]
    value = metric_of(report, figure.metric)
    extra = ", ".join(f"{m}={metric_of(report, m)}" for m, *_ in figure.extra_rows)
    fails = failures_of(report)
    return (f"{figure.metric}={value}" + (f", {extra}" if extra else "")
            + (f", failures={fails}" if fails else "")
            + f", generator CPU {report.get('generator_cpu_pct')}%")


def measure_sip(figure: Figure, plan: Plan, bench: BenchDir, kinds: Sequence[str],
                progress: Callable[[str], None],
                cache: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The SIP ramps; convergence's are shared by the SIP figures (cache)."""
    from bench import sipbench

    raw: dict[str, list[dict[str, Any]]] = {}
    targets = {"convergence": "convergence", "reference": figure.sip_target}
    for n in range(plan.runs):
        for kind in kinds:
            target = targets[kind]
            if figure.name == "sip_builtin" and kind == "convergence":
                continue
            runs = cache.setdefault(f"{target}/{figure.sip_transport}", [])
            if len(runs) <= n:
                try:
                    runs.append(sipbench.bench_target(
                        bench, target, rates=plan.sip_rates, duration=plan.sip_duration,
                        refine=plan.sip_refine, transport=figure.sip_transport))
                except Exception as e:  # noqa: BLE001 - one broken run is reported, not fatal
                    runs.append({"error": f"{type(e).__name__}: {e}"})
                found = runs[n]
                progress(f"{figure.name} run {n + 1}/{plan.runs} {target} "
                         f"{figure.sip_transport}: " + (
                             "ERROR " + found["error"] if "error" in found else
                             f"max {'>=' if found['capped'] else ''}{found['max_rate']} "
                             "calls/s; ladder " + sipbench.ladder(found)))
            raw.setdefault(kind, []).append(runs[n])
    return raw


def measure_sip_other(figure: Figure, plan: Plan, bench: BenchDir, kinds: Sequence[str],
                      progress: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    """Registrations/s and the memory rows, runs interleaved: reports in
    xmppload's shape ({"results": ..., "generator_cpu_pct": ...})."""
    from bench import sipbench

    kinds = [k for k in kinds if k == "convergence" or figure.reference]
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for n in range(plan.runs):
        for kind in kinds:
            target = "convergence" if kind == "convergence" else "kamailio"
            try:
                if figure.kind == "sipreg":
                    found = sipbench.bench_registrations(
                        bench, target, figure.mode, users=plan.sip_register_users,
                        concurrency=plan.sip_register_concurrency,
                        duration=plan.sip_register_duration)
                elif figure.mode == "contacts":
                    found = sipbench.contact_memory(bench, target, int(figure.name.split("_")[-1]))
                else:
                    found = sipbench.dialog_memory(bench, int(figure.name.split("_")[-1]))
                report: dict[str, Any] = {"results": found,
                                          "generator_cpu_pct": found.get("generator_cpu_pct")}
                if found.get("failed"):
                    report["results"]["failures"] = found["failed"]
            except Exception as e:  # noqa: BLE001 - one broken run is reported, not fatal
                report = {"error": f"{type(e).__name__}: {e}"}
            raw[kind].append(report)
            progress(f"{figure.name} run {n + 1}/{plan.runs} {target}: "
                     + summarize(figure, report))
    return raw


def sip_generator_cpu(found: dict[str, Any]) -> float | None:
    """The busiest step's sipp (UAC) CPU %."""
    values = [s.get("generator_cpu_pct") for s in found.get("steps", [])]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def common_sip_rate(runs: Iterable[dict[str, Any]]) -> int | None:
    """The highest rate every run passed (for comparable latencies)."""
    passed: set[int] | None = None
    for found in runs:
        rates = {s["rate"] for s in found.get("steps", []) if s.get("ok")}
        passed = rates if passed is None else passed & rates
    return max(passed) if passed else None


def step_at(found: dict[str, Any], rate: int | None) -> dict[str, Any] | None:
    for s in found.get("steps", []):
        if s["rate"] == rate and s.get("ok"):
            return s
    return None


def rows_for(figure: Figure, raw: dict[str, list[dict[str, Any]]],
             plan: Plan | None = None) -> tuple[list[Row], dict]:
    """Table rows and the medians for one figure's raw runs."""
    conv = [r for r in raw.get("convergence", []) if "error" not in r]
    ref = [r for r in raw.get("reference", []) if "error" not in r]
    summary: dict[str, Any] = {}
    rows: list[Row] = []
    if not raw:
        return rows, summary
    if figure.kind != "sip":
        def med(runs: list[dict[str, Any]], key: str) -> float | None:
            return median(metric_of(r, key) for r in runs)

        cpu = (median(r.get("generator_cpu_pct") for r in conv),
               median(r.get("generator_cpu_pct") for r in ref))
        main = Row(figure.title, figure.unit, figure.better, med(conv, figure.metric),
                   med(ref, figure.metric) if figure.reference else None, cpu)
        rows.append(main)
        for metric, title, unit, better in figure.extra_rows:
            rows.append(Row(title, unit, better, med(conv, metric),
                            med(ref, metric) if figure.reference else None, show_cpu=False))
        summary = {"convergence": main.convergence, "reference": main.reference,
                   "ratio": main.ratio,
                   "failures": {"convergence": [failures_of(r) for r in conv],
                                "reference": [failures_of(r) for r in ref]},
                   **{m: {"convergence": med(conv, m), "reference": med(ref, m)}
                      for m, *_ in figure.extra_rows}}
    else:
        def max_rate(runs: list[dict[str, Any]]) -> tuple[float | None, bool]:
            value = median(r.get("max_rate") for r in runs)
            capped = bool(runs) and sum(bool(r.get("capped")) for r in runs) * 2 > len(runs)
            return value, capped

        c_rate, c_capped = max_rate(conv) if figure.name != "sip_builtin" else (None, False)
        r_rate, r_capped = max_rate(ref)
        cpu = (median(sip_generator_cpu(r) for r in conv) if conv else None,
               median(sip_generator_cpu(r) for r in ref))
        rows.append(Row(figure.title, figure.unit, figure.better, c_rate, r_rate, cpu,
                        (c_capped, r_capped)))
        summary = {"convergence": c_rate, "reference": r_rate,
                   "ratio": ratio(c_rate, r_rate), "capped": [c_capped, r_capped]}
        if figure.extra_rows:
            common = common_sip_rate([*conv, *ref])
            summary["common_rate"] = common

            def at(runs: list[dict[str, Any]], metric: str, rate: int | None
                   ) -> float | None:
                return median((step_at(r, rate) or {}).get(metric) for r in runs)

            for metric, title, unit, better in figure.extra_rows:
                label = title.replace("the common rate", f"{common} calls/s" if common
                                      else "(no common rate)")
                rate = common
                if metric.endswith("@"):  # at the plan's latency rate, where it held
                    metric, rate = metric[:-1], (plan or Plan()).sip_latency_rate
                c_value, r_value = at(conv, metric, rate), at(ref, metric, rate)
                rows.append(Row(label, unit, better, c_value, r_value, show_cpu=False))
                summary[metric] = {"convergence": c_value, "reference": r_value}
    return rows, summary


def format_ladders(cache: dict[str, list[dict[str, Any]]]) -> str:
    """Every SIP rate search of the run, a line each: target, transport, run,
    the steps held and the one that failed (and why)."""
    from bench import sipbench

    lines = []
    for key, runs in cache.items():
        target, _, transport = key.partition("/")
        for n, found in enumerate(runs, 1):
            best = "" if "error" in found else (
                f" -> {'>=' if found.get('capped') else ''}{found.get('max_rate')}")
            lines.append(f"  {target} {transport.upper()} run {n}{best}: "
                         f"{sipbench.ladder(found)}")
    return "\n".join(lines)


def write_results(result: dict[str, Any], directory: Path) -> Path:
    """bench/results/<timestamp>.json (the directory is git-ignored)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = result.get("started") or datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    name = re.sub(r"[^0-9A-Za-z]", "", stamp.split(".")[0])
    path = directory / f"{name}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{name}-{n}.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="convergence against Prosody and sipp, "
        "side by side (docs/performance.md)")
    parser.add_argument("--quick", action="store_true",
                        help="short runs, 1 run per figure, 1,000 idle connections only")
    parser.add_argument("--only", default=None,
                        help="comma-separated figures or groups (login, xmpp, im, idle, "
                             "idle_roster, muc, s2s, sip, sip_calls, sip_register, "
                             "sip_memory)")
    parser.add_argument("--servers", default="convergence,reference",
                        help="convergence, reference, or both")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure")
    parser.add_argument("--sip-rates", default=None,
                        help="comma-separated SIP call rates to step through "
                             "(default 250,500,1000,1500,2000,3000,4000,6000,8000,12000,16000)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (configs, server logs)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if not kinds or any(k not in SERVER_KINDS for k in kinds):
        parser.error("--servers takes convergence and/or reference")
    args.kinds = [k for k in SERVER_KINDS if k in kinds]
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        args.sip_rates = (tuple(int(r) for r in args.sip_rates.split(",") if r.strip())
                          if args.sip_rates else None)
    except ValueError:
        parser.error("--sip-rates takes comma-separated integers")
    if args.sip_rates is not None and (not args.sip_rates or min(args.sip_rates) < 1
                                       or list(args.sip_rates) != sorted(args.sip_rates)):
        parser.error("--sip-rates takes increasing positive integers")
    return args


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM unwinds like Ctrl-C, so every server started is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    plan = Plan.quick() if args.quick else Plan()
    if args.runs is not None:
        plan.runs = args.runs
    if args.sip_rates:
        plan.sip_rates = args.sip_rates
    chosen = select(figures(plan), args.only)
    if args.list:
        for f in chosen:
            sys.stdout.write(f"{f.name:14} {f.title}: {f.describe}\n")
        return 0
    needs_prosody = "reference" in args.kinds and any(
        f.kind in ("xmpp", "s2s") and f.reference for f in chosen)
    if needs_prosody and shutil.which("prosody") is None:
        sys.stderr.write(f"bench: {servers.prosody_missing_hint()}\n")
        return 2
    if any(f.kind in ("sip", "sipmem") for f in chosen) and shutil.which("sipp") is None:
        sys.stderr.write("bench: sipp is not installed: run `make bench-deps` "
                         "(apt-get install sip-tester)\n")
        return 2
    if "reference" in args.kinds and any(f.kind in ("sipreg", "sipmem") and f.reference
                                         for f in chosen) \
            and shutil.which("kamailio") is None:
        sys.stderr.write("bench: kamailio is not installed: run `make bench-deps` "
                         "(apt-get install kamailio)\n")
        return 2

    started = datetime.datetime.now()
    began = time.monotonic()
    result: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick, "plan": plan.__dict__, "servers": args.kinds,
        "machine": machine_info(), "figures": {},
    }

    def progress(line: str) -> None:
        sys.stderr.write(f"bench [{time.monotonic() - began:6.0f} s] {line}\n")
        sys.stderr.flush()

    progress("machine: " + describe_machine(result["machine"]))
    rows: list[Row] = []
    sip_cache: dict[str, list[dict[str, Any]]] = {}
    status = 0
    with BenchDir(keep=args.keep) as bench:
        if args.keep:
            progress(f"keeping {bench.path}")
        for figure in chosen:
            figure_began = time.monotonic()
            if figure.kind == "xmpp":
                raw = measure_xmpp(figure, plan, bench, args.kinds, progress)
            elif figure.kind == "s2s":
                raw = measure_s2s(figure, plan, bench, args.kinds, progress)
            elif figure.kind == "sip":
                raw = measure_sip(figure, plan, bench, args.kinds, progress, sip_cache)
            else:
                raw = measure_sip_other(figure, plan, bench, args.kinds, progress)
            figure_rows, summary = rows_for(figure, raw, plan)
            rows += figure_rows
            errors = [r["error"] for runs in raw.values() for r in runs if "error" in r]
            if errors:
                status = 1
            result["figures"][figure.name] = {
                "title": figure.title, "unit": figure.unit, "better": figure.better,
                "describe": figure.describe,
                "settings": figure.settings.__dict__ if figure.settings else None,
                "load_args": list(figure.load_args),
                "summary": summary, "runs": raw, "errors": errors,
                "seconds": round(time.monotonic() - figure_began, 1),
            }
        result["user_creation_s"] = bench.users.seconds
    result["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    result["wall_s"] = round(time.monotonic() - began, 1)
    table = format_table(rows)
    result["table"] = table
    result["table_markdown"] = format_markdown(rows)
    ladders = format_ladders(sip_cache)
    result["sip_ladders"] = ladders
    path = write_results(result, args.results_dir)
    sys.stdout.write(
        f"\nconvergence vs references ({'quick, ' if args.quick else ''}"
        f"median of {plan.runs} run{'s' if plan.runs > 1 else ''}; ratio = "
        f"convergence / reference; generator CPU % of one core, '!' = 90 % or more)\n"
        f"{table}\n" + (f"\nSIP rate ladders (calls/s, {plan.sip_duration:g} s a step; "
                        f"where each target breaks):\n{ladders}\n" if ladders else "")
        + f"\nmachine: {describe_machine(result['machine'])}\n"
        f"wall time {result['wall_s']:.0f} s; raw runs in {path}\n")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted; the servers it started are stopped\n")
        sys.exit(130)
