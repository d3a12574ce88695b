# -*- test-case-name: tests.test_compliance -*-
"""
The specifications convergence implements: every feature module's
declaration (L{convergence.xmpp.features.builtin_features}) plus, in this
one place, those of the service layers that are not feature modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from convergence.xmpp.features import Feature


@dataclass(frozen=True)
class Spec:
    """One implemented RFC, XEP or draft, as the compliance table lists it."""

    spec: str
    version: str
    area: str
    status: str = "complete"
    note: str = ""

    @property
    def kind(self) -> str:
        """C{"XEP"}, C{"RFC"} or C{"draft"}."""
        return self.spec.split("-")[0].split(" ")[0]


#: Specifications of the service layers (streams, SASL, TLS, SIP, HTTP)
#: that no feature module declares.
CORE_SPECS: tuple[Spec, ...] = (
    Spec("RFC 6120", "", "XMPP",
         note="c2s and s2s streams, STARTTLS, SASL, binding, stanza routing and"
              " errors; s2s: SRV/A/AAAA resolution, certificate identities"
              " (DNS-ID, SRV-ID, XmppAddr), SASL EXTERNAL and dialback,"
              " invalid-from checks; 13.8: SCRAM-SHA-1(-PLUS) on c2s TLS, and"
              " SASL EXTERNAL with client certificates (tls.client_ca)"),
    Spec("RFC 7590", "", "XMPP", note="TLS 1.2 or later, no renegotiation;"
         " the system OpenSSL's cipher suites"),
    Spec("RFC 7622", "", "XMPP", status="partial",
         note="PRECIS for localpart and resourcepart; IDNA2003 (the standard"
              " library's) for the domainpart"),
    Spec("XEP-0368", "1.1.0", "XMPP",
         note="direct TLS for clients on listen.c2s_tls_port (default 5223),"
              " ALPN xmpp-client; for servers on listen.s2s_tls_port (off by"
              " default) and outgoing where _xmpps-server SRV records say so,"
              " ALPN xmpp-server; SRV records are the operator's"),
    Spec("RFC 7395", "", "XMPP",
         note="XMPP over WebSocket on the HTTP listener (xmpp.websocket_path), the"
              " same c2s service layer as TCP; wss:// on listen.https_port or a proxy"),
    Spec("XEP-0156", "1.4.0", "XMPP",
         note="HTTP lookup: /.well-known/host-meta and host-meta.json advertise the"
              " WebSocket endpoint; no BOSH to advertise"),
    Spec("XEP-0220", "1.1.1", "XMPP",
         note="server dialback in the originating, receiving and authoritative"
              " roles, over STARTTLS or plain TCP by policy; dialback errors;"
              " several domain pairs on one inbound stream"),
    Spec("XEP-0185", "1.0", "XMPP",
         note="keys: HMAC-SHA256 of SHA-256(s2s.dialback_secret), a random"
              " secret per start when none is configured"),
    Spec("XEP-0178", "1.2", "XMPP",
         note="SASL EXTERNAL for server streams, both directions, offered when"
              " the peer's certificate chains to a trusted CA and names its"
              " domain; for clients whose certificate chains to tls.client_ca"
              " and names their JID by XmppAddr"),
    Spec("RFC 4422", "", "SASL"),
    Spec("RFC 4616", "", "SASL", note="PLAIN, only over TLS unless configured"),
    Spec("RFC 5802", "", "SASL",
         note="SCRAM-SHA-1 and SCRAM-SHA-1-PLUS; -PLUS on c2s TLS (STARTTLS,"
              " direct TLS), not WebSocket; the y flag is refused where -PLUS"
              " was offered"),
    Spec("RFC 7677", "", "SASL",
         note="SCRAM-SHA-256 and SCRAM-SHA-256-PLUS"),
    Spec("RFC 5929", "", "SASL",
         note="channel bindings tls-server-end-point, and tls-unique on TLS 1.2"
              " only (RFC 9266 forbids it on TLS 1.3)"),
    Spec("RFC 9266", "", "SASL",
         note="tls-exporter channel binding on TLS 1.3 c2s streams, preferred"
              " in XEP-0440's list"),
    Spec("XEP-0440", "1.0.0", "SASL",
         note="<sasl-channel-binding/> lists the types offered on the stream"),
    Spec("RFC 4013", "", "SASL", note="SASLprep of user names and passwords"),
    Spec("RFC 3261", "", "SIP", status="partial",
         note="UDP, TCP and WebSocket, transactions, dialogs, registrar, UA core,"
              " a stateful proxy to registered contacts; no SIP over TLS, no forking,"
              " no re-INVITE glare handling"),
    Spec("RFC 5658", "", "SIP", note="double Record-Route across transports"),
    Spec("RFC 3581", "", "SIP", note="rport"),
    Spec("RFC 6026", "", "SIP", note="the Accepted state of INVITE transactions"),
    Spec("RFC 7118", "", "SIP", status="partial",
         note="SIP over WebSocket (ws/wss, sip subprotocol) on the HTTP listener;"
              " registrations and dialogs bound to their connection, removed"
              " when it closes; no Outbound (RFC 5626) reg-id/instance handling"),
    Spec("RFC 4566", "", "SIP", note="SDP parsing and serialization"),
    Spec("RFC 3264", "", "SIP", status="partial",
         note="offer/answer; no offers in reliable provisional responses"),
    Spec("RFC 7616", "", "SIP", note="digest authentication, qop=auth"),
    Spec("RFC 8760", "", "SIP", note="digest with MD5 and SHA-256"),
    Spec("draft-sparks-simple-jabber-sessions", "00", "SIP",
         note="SIP-invited XMPP chat sessions (m=message xmpp/tcp chat)"),
    Spec("RFC 9110", "", "HTTP", note="twisted.web, with request limits"),
    Spec("RFC 9112", "", "HTTP"),
    Spec("RFC 6455", "", "HTTP", note="WebSocket upgrades (autobahn)"),
)


def from_feature(feature: Feature) -> Spec:
    return Spec(feature.spec, feature.version, "XMPP", feature.status, feature.note)


def implemented(features: Iterable[Feature],
                core: Iterable[Spec] = CORE_SPECS) -> list[Spec]:
    """
    Every implemented specification, once each, sorted by area and number.

    Several declarations of one spec (the roster and presence modules both
    implement RFC 6121) merge: partial if any is, the notes joined, the
    first non-empty version kept.
    """
    merged: dict[str, Spec] = {}
    for spec in [*map(from_feature, features), *core]:
        known = merged.get(spec.spec)
        if known is None:
            merged[spec.spec] = spec
            continue
        status = "partial" if "partial" in (known.status, spec.status) else known.status
        notes = [n for n in (known.note, spec.note) if n]
        merged[spec.spec] = Spec(spec.spec, known.version or spec.version, known.area,
                                 status, "; ".join(dict.fromkeys(notes)))
    return sorted(merged.values(), key=_order)


_AREAS = ("XMPP", "SASL", "SIP", "HTTP")


def _order(spec: Spec) -> tuple[int, int, str, int]:
    kinds = {"RFC": 0, "XEP": 1}
    digits = "".join(c for c in spec.spec if c.isdigit())
    return (_AREAS.index(spec.area) if spec.area in _AREAS else len(_AREAS),
            kinds.get(spec.kind, 2), spec.spec if not digits else "", int(digits or 0))
