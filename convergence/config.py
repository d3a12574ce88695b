# -*- test-case-name: tests.test_config -*-
"""
Typed configuration: embedded defaults, a TOML file, command-line overrides.

Every key is validated when the configuration is loaded; a bad value raises
L{ConfigError} with a one-line message naming the key, so the server never
starts half-configured.  The keys are documented in C{docs/configuration.md}.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


class ConfigError(Exception):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class ListenConfig:
    """Listening ports; C{0} disables a listener."""

    c2s_port: int = 5222
    #: XEP-0368 direct TLS for clients: TLS from the first byte
    c2s_tls_port: int = 5223
    s2s_port: int = 5269
    #: XEP-0368 direct TLS for servers (0: off; 5270 is customary)
    s2s_tls_port: int = 0
    sip_port: int = 5060
    http_port: int = 8080
    #: HTTPS (TLS from the first byte) on the same site, with the
    #: certificate of C{[tls]}; 0: off.  When on, upload slots and other
    #: URLs the site makes are C{https://<first domain>:<port>}.
    https_port: int = 0


@dataclass(frozen=True)
class TlsConfig:
    """
    The certificate served for STARTTLS and direct TLS.

    Empty paths mean: a self-signed certificate for the first domain,
    generated in the data directory on first run.
    """

    certificate: str = ""
    private_key: str = ""
    #: PEM CA bundle for client certificates (SASL EXTERNAL on c2s); "": off
    client_ca: str = ""


@dataclass(frozen=True)
class XmppConfig:
    """XMPP service-layer policy and limits."""

    require_tls: bool = True
    allow_plain_without_tls: bool = False
    sasl_mechanisms: tuple[str, ...] = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
    max_stanza_size: int = 262144
    auth_attempts: int = 3
    auth_failure_delay: float = 1.0
    scram_iterations: int = 4096
    negotiation_timeout: float = 60.0
    max_connections_per_ip: int = 100
    #: bytes/s one connection may send (0: unlimited), and the burst above it
    max_read_rate: int = 1048576
    read_burst: int = 4194304
    #: failed authentications allowed per address / per account in the window
    auth_failures_per_ip: int = 20
    auth_failures_per_account: int = 10
    auth_failure_window: float = 300.0
    #: seconds a guest's one-time login token works (convergence.xmpp.guests)
    guest_token_lifetime: float = 60.0
    #: roster limits (RFC 6121 2.3.3): items per roster, characters of an
    #: item's name and of a group name, groups per item
    max_roster_items: int = 1000
    max_roster_text: int = 1023
    max_roster_groups: int = 64
    #: messages stored per user while offline (XEP-0160; 0: no limit)
    offline_quota: int = 1000
    #: XEP-0357 push: registrations per account (0: no limit), seconds
    #: between two notifications to one registration (0: no limit), and
    #: whether a notification carries the message body
    max_push_registrations: int = 20
    push_min_interval: float = 5.0
    push_include_body: bool = False
    #: XEP-0115: verified client capabilities kept in memory (by hash and
    #: ver), and seconds a client gets to answer the server's disco#info
    caps_cache_size: int = 1000
    caps_query_timeout: float = 30.0
    #: XEP-0163 across federation: disco#info queries to remote resources
    #: (their caps) outstanding at once
    caps_remote_max_queries: int = 100
    #: bytes of one stored vCard (XEP-0054), serialized
    vcard_max_size: int = 65536
    #: XEP-0092: tell the operating system in the server's version answer
    version_show_os: bool = False
    #: XEP-0157: contact addresses by role (abuse, admin …), each a tuple
    #: of URIs, published in the server's disco#info
    contact: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: XEP-0199: seconds of silence from a bound client before the server
    #: pings it (0: never), and seconds it waits for any answer
    ping_interval: float = 300.0
    ping_timeout: float = 60.0
    #: XEP-0077: in-band registration of new accounts (password changes
    #: and account removal by their users work either way)
    allow_registration: bool = False
    registrations_per_ip: int = 5
    registration_window: float = 3600.0
    #: personal eventing (XEP-0163): nodes per account, items per node
    #: (also what pubsub#max_items "max" means), bytes of one item's
    #: payload on any node and on urn:xmpp:avatar:data (XEP-0084)
    pep_max_nodes: int = 100
    pep_max_items: int = 256
    pep_max_item_size: int = 65536
    pep_max_subscriptions: int = 1000
    pep_max_avatar_size: int = 262144
    #: private XML storage (XEP-0049): bytes of one stored element,
    #: elements per account
    private_max_size: int = 65536
    private_max_elements: int = 100
    #: JIDs one user's blocklist may hold (XEP-0191)
    max_blocklist_items: int = 1000
    #: stanzas held for an inactive client before they are flushed (XEP-0352)
    csi_max_held: int = 256
    #: XEP-0198 stream management: the longest a detached session may
    #: hibernate awaiting resumption (seconds; 0: no resumption)
    sm_resume_max: float = 300.0
    #: the server asks for an acknowledgement after this many unacked
    #: stanzas, or this many seconds after one went unacked (0: never)
    sm_ack_every: int = 5
    sm_ack_interval: float = 30.0
    #: unacknowledged stanzas one session may hold; over it the stream
    #: ends with resource-constraint and they go to offline storage
    sm_max_queue: int = 500
    #: seconds an <r/> may go unanswered before the connection is taken
    #: for dead (the session hibernates, or ends; 0: wait for TCP)
    sm_ack_timeout: float = 60.0
    #: host[:port] clients should resume at (XEP-0198 'location'; "": any)
    sm_location: str = ""
    #: XEP-0045 multi-user chat on C{<muc_subdomain>.<domain>} of each
    #: domain: who may create rooms (anyone, local users, or only
    #: C{muc_admins}, who also own every room), messages of history kept per
    #: room by default and at most, rooms per service, occupants per room,
    #: characters of a nickname, flood limits per occupant
    muc_enabled: bool = True
    muc_subdomain: str = "conference"
    muc_room_creation: str = "local"
    muc_admins: tuple[str, ...] = ()
    muc_history_default: int = 20
    muc_history_max: int = 100
    muc_max_rooms: int = 1000
    muc_max_occupants: int = 200
    muc_max_nick_length: int = 64
    #: stanzas per second one occupant may send into its room on average
    #: (0: no limit), and at once
    muc_occupant_rate: float = 5.0
    muc_occupant_burst: int = 20
    #: XEP-0313 archives of rooms: whether a new room archives its
    #: messages (C{muc#roomconfig_enablearchiving}), days kept (0: forever)
    muc_archive: bool = True
    muc_archive_retention: int = 365
    #: message archive (XEP-0313): messages per page without <max/>, the
    #: most per page, the default preference, days kept (0: forever)
    mam_default_page_size: int = 50
    mam_max_page_size: int = 250
    mam_default_prefs: str = "always"
    mam_retention: int = 365
    #: RFC 7395 XMPP over WebSocket on the HTTP listener: on/off, its path
    #: (one segment), the public ws(s):// URL XEP-0156 advertises ("": from
    #: the HTTP base URL), and which plain-HTTP WebSocket connections count
    #: as encrypted ("loopback": those from a loopback address, i.e. a
    #: local TLS-terminating proxy; "always"; "never")
    websocket: bool = True
    websocket_path: str = "/xmpp-websocket"
    websocket_url: str = ""
    websocket_secure: str = "loopback"
    #: proxies whose X-Forwarded-For names a WebSocket client's address
    #: (per-address limits and logs then use the client's, not the proxy's)
    websocket_trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class SipConfig:
    """SIP stack policy, limits and timers."""

    max_message_size: int = 65536
    udp_receive_buffer: int = 4194304
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    challenge_invites: bool = False
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600
    nonce_lifetime: float = 300.0
    #: digest nonce uses remembered against replay (per realm); when full,
    #: new ones are answered stale until nonces expire
    digest_replay_entries: int = 100000
    #: challenge order; MD5 first for clients that read only the first
    digest_algorithms: tuple[str, ...] = ("MD5", "SHA-256")
    #: seconds dialogs get on shutdown for their BYEs to be answered
    shutdown_grace: float = 2.0
    #: requests/s one source address may send (0: no limit), its burst,
    #: the networks never limited, and how many sources are tracked
    max_requests_per_second_per_source: float = 200.0
    request_burst_per_source: int = 400
    rate_limit_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    rate_limit_max_sources: int = 65536
    #: proxy requests to registered users that no application serves
    proxy: bool = True
    #: SIP over WebSocket (RFC 7118) on the HTTP listener, at this path
    websocket: bool = True
    websocket_path: str = "/sip"
    #: seconds between WebSocket pings, each to be answered within as many
    #: (a dead connection ends, and its registrations with it); 0: none
    websocket_ping_interval: float = 30.0
    #: challenge order over WebSocket: JsSIP and SIP.js answer only the
    #: last WWW-Authenticate, and only MD5
    websocket_digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")


@dataclass(frozen=True)
class HttpConfig:
    """HTTP service limits and timeouts (see docs/http.md, "Limits")."""

    max_body_size: int = 1048576
    #: header fields per request, and bytes of request line plus fields
    max_headers: int = 100
    max_header_size: int = 16384
    #: seconds from a request head's first byte to its end (slowloris)
    header_timeout: float = 10.0
    #: seconds a connection may stay silent (between requests, in a body)
    idle_timeout: float = 60.0
    #: seconds requests in progress get to finish on shutdown
    shutdown_grace: float = 5.0


@dataclass(frozen=True)
class HttpUploadConfig:
    """
    HTTP File Upload (XEP-0363) through the HTTP listener, offered as
    C{upload.<domain>} (see docs/xmpp-features.md).
    """

    enabled: bool = True
    #: largest file, in bytes (uploads may exceed C{http.max_body_size})
    max_file_size: int = 10485760
    #: bytes of files (and unused slots) one user may hold; 0: no limit
    quota_per_user: int = 104857600
    #: seconds a file is kept after its upload; 0: forever
    expire_after: float = 604800.0
    #: seconds a PUT URL stays valid
    slot_lifetime: float = 300.0
    #: seconds between runs of the job deleting expired files
    purge_interval: float = 3600.0
    #: the URL under which the HTTP listener's root is reached by clients
    #: (e.g. C{https://files.example.com} behind a TLS proxy); empty: the
    #: listener's own C{http://host:port}
    public_url: str = ""


@dataclass(frozen=True)
class AlertConfig:
    """
    Event alerting over HTTP (C{POST /api/alert}, see docs/alerts.md):
    off while no token is configured.
    """

    #: (name, secret) bearer tokens; the name is what the log shows
    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: an alert to a room that does not exist creates it (else 404)
    create_rooms: bool = False
    #: the nickname alerts come from in a room (a request's from_nick replaces it)
    nick: str = "alert"
    #: bytes of one request body; larger: 413 (never above http.max_body_size)
    max_body_size: int = 16384
    #: alerts per second one token may post on average (0: no limit), and at once
    rate: float = 1.0
    burst: int = 10


#: the environment variable whose value is one more alert token, named
#: L{ENV_ALERT_TOKEN_NAME} (C{CONVERGENCE_ALERT_TOKEN=... make run})
ENV_ALERT_TOKEN = "CONVERGENCE_ALERT_TOKEN"
ENV_ALERT_TOKEN_NAME = "env"


@dataclass(frozen=True)
class S2SPolicy:
    """
    One direction of federation: the patent's C{server_login} (streams
    other servers open to us) or C{login_to_other_server} (ours to them).
    """

    #: C{required}, C{optional} or C{disabled}
    tls: str = "required"
    #: the peer must present a certificate valid for its domain
    #: (SASL EXTERNAL, XEP-0178); otherwise dialback may be used
    require_valid_certificate: bool = False
    #: server dialback (XEP-0220) may authenticate the stream
    dialback: bool = True


@dataclass(frozen=True)
class S2SConfig:
    """Server-to-server streams (federation; see docs/federation.md)."""

    #: federation on or off (the listener, outgoing streams)
    enabled: bool = True
    #: remote domain -> "host:port", overriding DNS (private federations,
    #: tests on loopback); "tls:host:port" for direct TLS (XEP-0368)
    hosts: tuple[tuple[str, str], ...] = ()
    #: XEP-0185 dialback secret; empty: a random one made at start
    dialback_secret: str = ""
    #: PEM file of trusted CA certificates for peers; empty: the system's
    ca_file: str = ""
    #: seconds to connect (each address) and to authenticate a new stream
    connect_timeout: float = 10.0
    #: seconds a queued stanza waits for its stream before it bounces
    #: with remote-server-timeout
    queue_timeout: float = 30.0
    #: stanzas queued per remote domain while its stream is negotiated
    max_queue: int = 1000
    #: inbound streams open at once from one IP address; more are refused
    #: at accept (a server hosting many domains opens one per domain pair)
    max_connections_per_ip: int = 100
    #: seconds without traffic after which a stream is closed (0: never)
    idle_timeout: float = 600.0
    #: remote domains never federated with
    blocked_domains: tuple[str, ...] = ()
    #: non-empty: federate only with these domains (closed federation)
    allowed_domains: tuple[str, ...] = ()
    #: the patent's login configs: inbound and outbound policy
    server_login: S2SPolicy = S2SPolicy()
    login_to_other_server: S2SPolicy = S2SPolicy()


@dataclass(frozen=True)
class MetricsConfig:
    """
    The OpenMetrics endpoint (see docs/operations.md): off unless enabled;
    on a listener of its own (loopback by default), or at C{path} on the
    HTTP listener (C{listen = "http"}), where a bearer token is required.
    """

    enabled: bool = False
    #: C{"host:port"} of a listener of its own, or C{"http"}
    listen: str = "127.0.0.1:9090"
    path: str = "/metrics"
    #: bearer token scrapers must send (C{Authorization: Bearer <token>});
    #: "": none (allowed only on a loopback listener of its own, or with
    #: C{allow_unauthenticated})
    token: str = ""
    #: a file holding the token (first line), instead of C{token}
    token_file: str = ""
    #: serve a listener on a non-loopback address without a token
    allow_unauthenticated: bool = False
    #: seconds between two measurements of the reactor's scheduling delay
    reactor_lag_interval: float = 1.0

    @property
    def on_http(self) -> bool:
        """Whether the endpoint is on the HTTP listener."""
        return self.listen == "http"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the endpoint's own listener."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class LogConfig:
    """The server's log (twistd's log file, or standard output with -n)."""

    #: C{"text"} (twistd's lines) or C{"json"} (one JSON object per line)
    format: str = "text"
    #: the lowest level written: debug, info, warn, error, critical
    level: str = "info"


@dataclass(frozen=True)
class AppConfig:
    """One deployed application: where its code is and what it serves."""

    name: str
    module: str
    xmpp: tuple[str, ...] | None = None
    sip: tuple[str, ...] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    http: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole server configuration."""

    domains: tuple[str, ...] = ("localhost",)
    interface: str = "127.0.0.1"
    data_dir: Path = Path("convergence-data")
    listen: ListenConfig = ListenConfig()
    tls: TlsConfig = TlsConfig()
    xmpp: XmppConfig = XmppConfig()
    sip: SipConfig = SipConfig()
    http: HttpConfig = HttpConfig()
    http_upload: HttpUploadConfig = HttpUploadConfig()
    alert: AlertConfig = AlertConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()
    s2s: S2SConfig = S2SConfig()
    apps: tuple[AppConfig, ...] = (
        AppConfig(name="echo", module="apps.echo"),
        AppConfig(name="chatline", module="apps.chatline"),
        AppConfig(name="selfhelp", module="apps.selfhelp"),
    )

    @property
    def database_path(self) -> Path:
        """The embedded SQLite database."""
        return self.data_dir / "convergence.sqlite3"

    @property
    def certificate_path(self) -> Path:
        """The PEM file (certificate and key) served for TLS."""
        if self.tls.certificate:
            return Path(self.tls.certificate)
        return self.data_dir / "tls" / f"{self.domains[0]}.pem"


KNOWN_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")


def _expect(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "number"
        raise ConfigError(f"{key}: expected {name}, got {value!r}")
    return value


def _port(key: str, value: Any) -> int:
    _expect(key, value, int)
    if not 0 <= value <= 65535:
        raise ConfigError(f"{key}: port must be 0..65535, got {value}")
    return value


def _positive_int(key: str, value: Any, minimum: int = 1) -> int:
    _expect(key, value, int)
    if value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum}, got {value}")
    return value


def _non_negative(key: str, value: Any) -> float:
    _expect(key, value, (int, float))
    if value < 0:
        raise ConfigError(f"{key}: must not be negative, got {value}")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    return _expect(key, value, bool)


def _string(key: str, value: Any) -> str:
    return _expect(key, value, str)


def _domain(key: str, value: Any) -> str:
    _string(key, value)
    from convergence.xmpp.jid import JID, InvalidJID

    try:
        jid = JID.parse(value)
    except InvalidJID as e:
        raise ConfigError(f"{key}: invalid domain {value!r}: {e}") from None
    if jid.user is not None or jid.resource is not None:
        raise ConfigError(f"{key}: {value!r} is not a bare domain")
    return jid.host


def _domains(key: str, value: Any) -> tuple[str, ...]:
    _expect(key, value, list)
    if not value:
        raise ConfigError(f"{key}: at least one domain is required")
    result: list[str] = []
    for i, item in enumerate(value):
        domain = _domain(f"{key}[{i}]", item)
        if domain not in result:
            result.append(domain)
    return tuple(result)


def _interface(key: str, value: Any) -> str:
    _string(key, value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{key}: not an IP address: {value!r}") from None
    return value


def _mechanisms(key: str, value: Any) -> tuple[str, ...]:
    _expect(key, value, list)
    for item in value:
        if item not in KNOWN_MECHANISMS:
            raise ConfigError(
                f"{key}: unknown SASL mechanism {item!r}"
                f" (known: {', '.join(KNOWN_MECHANISMS)})"
            )
    if not value:
        raise ConfigError(f"{key}: at least one mechanism is required")
    return tuple(value)


def _section(
    key: str,
    raw: Any,
    fields: Mapping[str, Callable[[str, Any], Any]],
) -> dict[str, Any]:
    """Validate a TOML table against named field validators."""
    _expect(key, raw, dict)
    result = {}
    for name, value in raw.items():
        if name not in fields:
            raise ConfigError(f"{key}.{name}: unknown key")
        result[name] = fields[name](f"{key}.{name}", value)
    return result


_LISTEN_FIELDS = {
    "c2s_port": _port,
    "c2s_tls_port": _port,
    "s2s_port": _port,
    "s2s_tls_port": _port,
    "sip_port": _port,
    "http_port": _port,
    "https_port": _port,
}
_TLS_FIELDS = {"certificate": _string, "private_key": _string, "client_ca": _string}
_XMPP_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "require_tls": _bool,
    "allow_plain_without_tls": _bool,
    "sasl_mechanisms": _mechanisms,
    "max_stanza_size": lambda k, v: _positive_int(k, v, 4096),
    "auth_attempts": _positive_int,
    "auth_failure_delay": _non_negative,
    "scram_iterations": lambda k, v: _positive_int(k, v, 4096),
    "negotiation_timeout": _non_negative,
    "max_connections_per_ip": _positive_int,
    "max_read_rate": lambda k, v: _positive_int(k, v, 0),
    "read_burst": lambda k, v: _positive_int(k, v, 4096),
    "auth_failures_per_ip": _positive_int,
    "auth_failures_per_account": _positive_int,
    "auth_failure_window": _non_negative,
    "guest_token_lifetime": lambda k, v: _positive_float(k, v),
    "max_roster_items": _positive_int,
    "max_roster_text": _positive_int,
    "max_roster_groups": _positive_int,
    "offline_quota": lambda k, v: _positive_int(k, v, 0),
    "max_push_registrations": lambda k, v: _positive_int(k, v, 0),
    "push_min_interval": _non_negative,
    "push_include_body": _bool,
    "caps_cache_size": _positive_int,
    "caps_query_timeout": lambda k, v: _positive_float(k, v),
    "caps_remote_max_queries": _positive_int,
    "vcard_max_size": lambda k, v: _positive_int(k, v, 1024),
    "version_show_os": _bool,
    "contact": lambda k, v: _contact(k, v),
    "ping_interval": _non_negative,
    "ping_timeout": lambda k, v: _positive_float(k, v),
    "allow_registration": _bool,
    "registrations_per_ip": _positive_int,
    "registration_window": lambda k, v: _positive_float(k, v),
    "pep_max_nodes": _positive_int,
    "pep_max_items": _positive_int,
    "pep_max_item_size": lambda k, v: _positive_int(k, v, 1024),
    "pep_max_subscriptions": _positive_int,
    "pep_max_avatar_size": lambda k, v: _positive_int(k, v, 1024),
    "private_max_size": lambda k, v: _positive_int(k, v, 1024),
    "private_max_elements": _positive_int,
    "max_blocklist_items": _positive_int,
    "csi_max_held": _positive_int,
    "sm_resume_max": _non_negative,
    "sm_ack_every": _positive_int,
    "sm_ack_interval": _non_negative,
    "sm_max_queue": _positive_int,
    "sm_ack_timeout": _non_negative,
    "sm_location": _string,
    "muc_enabled": _bool,
    "muc_subdomain": lambda k, v: _label(k, v),
    "muc_room_creation": lambda k, v: _one_of(k, v, ("anyone", "local", "admins")),
    "muc_admins": lambda k, v: _bare_jids(k, v),
    "muc_history_default": lambda k, v: _positive_int(k, v, 0),
    "muc_history_max": lambda k, v: _positive_int(k, v, 0),
    "muc_max_rooms": _positive_int,
    "muc_max_occupants": _positive_int,
    "muc_max_nick_length": lambda k, v: _positive_int(k, v, 1),
    "muc_occupant_rate": _non_negative,
    "muc_occupant_burst": _positive_int,
    "muc_archive": _bool,
    "muc_archive_retention": lambda k, v: _positive_int(k, v, 0),
    "mam_default_page_size": _positive_int,
    "mam_max_page_size": _positive_int,
    "mam_default_prefs": lambda k, v: _one_of(k, v, ("always", "roster", "never")),
    "mam_retention": lambda k, v: _positive_int(k, v, 0),
    "websocket": _bool,
    "websocket_path": lambda k, v: _segment_path(k, v),
    "websocket_url": lambda k, v: _ws_url(k, v),
    "websocket_secure": lambda k, v: _one_of(k, v, ("loopback", "always", "never")),
    "websocket_trusted_proxies": lambda k, v: _networks(k, v),
}

def _s2s_hosts(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """C{[s2s.hosts]}: domain = "host:port" (or "tls:host:port")."""
    _expect(key, value, dict)
    result = []
    for domain, target in value.items():
        name = _domain(f"{key}.{domain}", domain)
        _string(f"{key}.{domain}", target)
        rest = target[4:] if target.startswith("tls:") else target
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{key}.{domain}: expected host:port, got {target!r}")
        result.append((name, target))
    return tuple(result)


def _domain_list(key: str, value: Any) -> tuple[str, ...]:
    _expect(key, value, list)
    return tuple(_domain(f"{key}[{i}]", item) for i, item in enumerate(value))


def _s2s_policy(key: str, value: Any) -> "S2SPolicy":
    fields = {
        "tls": lambda k, v: _one_of(k, v, ("required", "optional", "disabled")),
        "require_valid_certificate": _bool,
        "dialback": _bool,
    }
    policy = S2SPolicy(**_section(key, value, fields))
    if not policy.dialback and not policy.require_valid_certificate:
        policy = S2SPolicy(policy.tls, True, False)
    if policy.require_valid_certificate and policy.tls == "disabled":
        raise ConfigError(f"{key}.tls: a valid certificate needs TLS")
    return policy


_S2S_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "enabled": _bool,
    "hosts": _s2s_hosts,
    "dialback_secret": _string,
    "ca_file": _string,
    "connect_timeout": lambda k, v: _positive_float(k, v),
    "queue_timeout": lambda k, v: _positive_float(k, v),
    "max_queue": _positive_int,
    "max_connections_per_ip": _positive_int,
    "idle_timeout": _non_negative,
    "blocked_domains": _domain_list,
    "allowed_domains": _domain_list,
    "server_login": _s2s_policy,
    "login_to_other_server": _s2s_policy,
}

#: XEP-0157 roles: each becomes the C{<role>-addresses} field of the
#: serverinfo form
CONTACT_ROLES = ("abuse", "admin", "feedback", "sales", "security", "status",
                 "support")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


def _contact(key: str, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """C{[xmpp.contact]}: role = [URI, …] (C{mailto:}, C{xmpp:}, C{https:} …)."""
    _expect(key, value, dict)
    result = []
    for role, uris in value.items():
        where = f"{key}.{role}"
        if role not in CONTACT_ROLES:
            raise ConfigError(f"{where}: unknown role (known: {', '.join(CONTACT_ROLES)})")
        _expect(where, uris, list)
        for uri in uris:
            if not isinstance(uri, str) or not _URI.fullmatch(uri):
                raise ConfigError(f"{where}: not a URI: {uri!r}"
                                  " (expected e.g. mailto:abuse@example.org)")
        result.append((role, tuple(uris)))
    return tuple(result)


def _label(key: str, value: Any) -> str:
    """One DNS label (the first label of a service's domain)."""
    _string(key, value)
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value):
        raise ConfigError(f"{key}: expected one lowercase DNS label, got {value!r}")
    return value


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    _string(key, value)
    if value not in allowed:
        raise ConfigError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _bare_jids(key: str, value: Any) -> tuple[str, ...]:
    _expect(key, value, list)
    from convergence.xmpp.jid import JID, InvalidJID

    result = []
    for i, item in enumerate(value):
        _string(f"{key}[{i}]", item)
        try:
            jid = JID.parse(item)
        except InvalidJID as e:
            raise ConfigError(f"{key}[{i}]: invalid JID {item!r}: {e}") from None
        if jid.user is None or jid.resource is not None:
            raise ConfigError(f"{key}[{i}]: {item!r} is not a bare user JID")
        result.append(str(jid))
    return tuple(result)


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    _string(key, value)
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _positive_float(key: str, value: Any) -> float:
    _expect(key, value, (int, float))
    if value <= 0:
        raise ConfigError(f"{key}: must be positive, got {value}")
    return float(value)


_SIP_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "max_message_size": lambda k, v: _positive_int(k, v, 1500),
    "udp_receive_buffer": lambda k, v: _positive_int(k, v, 65536),
    "t1": _positive_float,
    "t2": _positive_float,
    "t4": _positive_float,
    "challenge_invites": _bool,
    "min_expires": _positive_int,
    "max_expires": _positive_int,
    "default_expires": _positive_int,
    "nonce_lifetime": _positive_float,
    "digest_replay_entries": _positive_int,
    "digest_algorithms": lambda k, v: _choices(k, v, ("SHA-256", "MD5")),
    "shutdown_grace": _non_negative,
    "max_requests_per_second_per_source": _non_negative,
    "request_burst_per_source": _positive_int,
    "rate_limit_exempt": lambda k, v: _networks(k, v),
    "rate_limit_max_sources": lambda k, v: _positive_int(k, v, 16),
    "websocket": _bool,
    "proxy": _bool,
    "websocket_path": lambda k, v: _segment_path(k, v),
    "websocket_ping_interval": lambda k, v: _ping_interval(k, v),
    "websocket_digest_algorithms": lambda k, v: _choices(k, v, ("SHA-256", "MD5")),
}


def _networks(key: str, value: Any) -> tuple[str, ...]:
    """A list of IP networks (CIDR, or single addresses)."""
    _expect(key, value, list)
    for item in value:
        _string(key, item)
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{key}: not an IP network: {item!r}") from None
    return tuple(value)


def _choices(key: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    _expect(key, value, list)
    if not value:
        raise ConfigError(f"{key}: at least one value is required")
    for item in value:
        if item not in allowed:
            raise ConfigError(f"{key}: {item!r} is not one of {', '.join(allowed)}")
    return tuple(value)


_HTTP_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "max_body_size": lambda k, v: _positive_int(k, v, 1024),
    "max_headers": _positive_int,
    "max_header_size": lambda k, v: _positive_int(k, v, 1024),
    "header_timeout": _positive_float,
    "idle_timeout": _positive_float,
    "shutdown_grace": _non_negative,
}


def _public_url(key: str, value: Any) -> str:
    """An absolute http(s) URL without query or fragment, or C{""}."""
    _string(key, value)
    if value == "":
        return value
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ConfigError(f"{key}: not a URL: {value!r}") from None
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.query
            or parts.fragment or any(c.isspace() for c in value)):
        raise ConfigError(f"{key}: expected an http:// or https:// URL without query,"
                          f" got {value!r}")
    return value.rstrip("/")


def _ws_url(key: str, value: Any) -> str:
    """An absolute ws:// or wss:// URL without query or fragment, or C{""}."""
    _string(key, value)
    if value == "":
        return value
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ConfigError(f"{key}: not a URL: {value!r}") from None
    if (parts.scheme not in ("ws", "wss") or not parts.hostname or parts.query
            or parts.fragment or any(c.isspace() for c in value)):
        raise ConfigError(f"{key}: expected a ws:// or wss:// URL without query,"
                          f" got {value!r}")
    return value


_HTTP_UPLOAD_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "enabled": _bool,
    "max_file_size": lambda k, v: _positive_int(k, v, 1),
    "quota_per_user": lambda k, v: _positive_int(k, v, 0),
    "expire_after": _non_negative,
    "slot_lifetime": _positive_float,
    "purge_interval": _positive_float,
    "public_url": _public_url,
}


_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _alert_token(key: str, name: str, secret: Any) -> tuple[str, str]:
    """One alert token; the messages never show the secret."""
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise ConfigError(f"{key}: a token name is 1-64 letters, digits, '_', '.' or '-'")
    if not isinstance(secret, str) or not secret or any(c.isspace() for c in secret) \
            or not secret.isprintable():
        raise ConfigError(f"{key}: the secret of token {name!r} must be a non-empty"
                          " string without spaces")
    return name, secret


def _alert_tokens(key: str, value: Any) -> tuple[tuple[str, str], ...]:
    """C{["name:secret", …]} or a table C{{name = "secret"}}."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or ":" not in item:
                raise ConfigError(f"{key}[{i}]: expected \"name:secret\"")
            pairs.append(tuple(item.split(":", 1)))
    else:
        raise ConfigError(f"{key}: expected a list of \"name:secret\" or a table")
    tokens: dict[str, str] = {}
    for name, secret in pairs:
        name, secret = _alert_token(key, name, secret)
        if name in tokens:
            raise ConfigError(f"{key}: token {name!r} is defined twice")
        tokens[name] = secret
    return tuple(tokens.items())


_ALERT_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "tokens": _alert_tokens,
    "create_rooms": _bool,
    "nick": lambda k, v: _alert_nick(k, v),
    "max_body_size": lambda k, v: _positive_int(k, v, 256),
    "rate": _non_negative,
    "burst": _positive_int,
}


def _alert_nick(key: str, value: Any) -> str:
    _string(key, value)
    if not value.strip() or not value.isprintable() or len(value) > 64:
        raise ConfigError(f"{key}: expected a printable nickname of 1-64 characters")
    return value


def _with_env_token(config: Config, environ: Mapping[str, str]) -> Config:
    """C{config} with the token of L{ENV_ALERT_TOKEN}, if it is set."""
    secret = environ.get(ENV_ALERT_TOKEN)
    if not secret:
        return config
    name, secret = _alert_token(ENV_ALERT_TOKEN, ENV_ALERT_TOKEN_NAME, secret)
    tokens = tuple(t for t in config.alert.tokens if t[0] != name) + ((name, secret),)
    return dataclasses.replace(config, alert=dataclasses.replace(config.alert, tokens=tokens))


def _listen_address(key: str, value: Any) -> str:
    """C{"http"}, or C{"host:port"} with an IP address (IPv6 in brackets)."""
    _string(key, value)
    if value == "http":
        return value
    host, sep, port = value.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        if not sep or ":" in bare and not host.startswith("["):
            raise ValueError
        ipaddress.ip_address(bare)
        number = int(port)
    except ValueError:
        raise ConfigError(f"{key}: expected \"http\" or \"host:port\" with an IP address"
                          f" (e.g. \"127.0.0.1:9090\"), got {value!r}") from None
    if not 1 <= number <= 65535:
        raise ConfigError(f"{key}: port must be 1..65535, got {number}")
    return value


def _metrics_path(key: str, value: Any) -> str:
    _string(key, value)
    if (not re.fullmatch(r"/[A-Za-z0-9._~-]+", value)):
        raise ConfigError(f"{key}: expected one path segment like '/metrics', got {value!r}")
    return value


def _token(key: str, value: Any) -> str:
    _string(key, value)
    if value and (len(value) < MIN_TOKEN_LENGTH or not value.isprintable()
                  or any(c.isspace() for c in value)):
        raise ConfigError(f"{key}: a token must be at least {MIN_TOKEN_LENGTH} printable"
                          " characters without spaces")
    return value


#: The shortest bearer token accepted for the metrics endpoint.
MIN_TOKEN_LENGTH = 16

_METRICS_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "enabled": _bool,
    "listen": _listen_address,
    "path": _metrics_path,
    "token": _token,
    "token_file": _string,
    "allow_unauthenticated": _bool,
    "reactor_lag_interval": _positive_float,
}

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")

_LOG_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "format": lambda k, v: _one_of(k, v, LOG_FORMATS),
    "level": lambda k, v: _one_of(k, v, LOG_LEVELS),
}


def read_token_file(key: str, path: str) -> str:
    """The token in the first line of C{path} (C{metrics.token_file})."""
    try:
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{key}: cannot read {path}: {getattr(e, 'strerror', e)}") from None
    return _token(key, token) or _missing_token(key, path)


def _missing_token(key: str, path: str) -> str:
    raise ConfigError(f"{key}: {path} holds no token")


def _check_metrics(config: "Config") -> None:
    """The placement policy of the metrics endpoint (docs/operations.md)."""
    metrics = config.metrics
    if not metrics.enabled:
        return
    if metrics.token and metrics.token_file:
        raise ConfigError("metrics.token: set token or token_file, not both")
    has_token = bool(metrics.token or metrics.token_file)
    if metrics.on_http:
        if not (config.listen.http_port or config.listen.https_port):
            raise ConfigError('metrics.listen: "http" needs the HTTP listener'
                              " (listen.http_port and listen.https_port are 0)")
        if not has_token:
            raise ConfigError('metrics.token: required when metrics.listen = "http"'
                              " (the HTTP listener is public); or give the metrics a"
                              ' listener of their own, e.g. listen = "127.0.0.1:9090"')
        return
    host, port = metrics.address
    if not ipaddress.ip_address(host).is_loopback and not has_token \
            and not metrics.allow_unauthenticated:
        raise ConfigError(f"metrics.listen: {host} is not a loopback address; set"
                          " metrics.token (or metrics.allow_unauthenticated = true"
                          " behind a firewall)")
    listen = config.listen
    for name in ("c2s_port", "c2s_tls_port", "sip_port", "http_port", "https_port"):
        if getattr(listen, name) == port and _overlap(host, config.interface):
            raise ConfigError(f"metrics.listen: port {port} is listen.{name} already")


def _overlap(a: str, b: str) -> bool:
    """Whether listeners on addresses C{a} and C{b} share a port space."""
    wildcard = ("0.0.0.0", "::")
    return a == b or a in wildcard or b in wildcard


def _context_path(key: str, value: Any) -> str | None:
    """An HTTP context path like C{/selfhelp} (one or more plain segments)."""
    if value is None:
        return None
    _string(key, value)
    segments = value[1:].split("/")
    if (not value.startswith("/") or value == "/" or value.endswith("/")
            or "" in segments
            or any(c.isspace() or c in "?#%;" for c in value)):
        raise ConfigError(f"{key}: context path {value!r} must look like '/name'")
    return value


def _ping_interval(key: str, value: Any) -> float:
    """0 (off), or at least 2 seconds (autobahn's timers have whole-second
    buckets: a shorter timeout could fire before the pong)."""
    seconds = _non_negative(key, value)
    if 0 < seconds < 2:
        raise ConfigError(f"{key}: 0 (off) or at least 2 seconds, not {value!r}")
    return seconds


def _segment_path(key: str, value: Any) -> str:
    """A path of one plain segment, like C{/sip} or C{/xmpp-websocket}."""
    _string(key, value)
    if re.fullmatch(r"/[A-Za-z0-9._~-]+", value) is None or value in ("/.", "/.."):
        raise ConfigError(f"{key}: {value!r} must be one path segment like '/sip'")
    return value


def _addresses(key: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    _expect(key, value, list)
    return tuple(_string(key, item) for item in value)


def _apps(key: str, raw: Any) -> tuple[AppConfig, ...]:
    _expect(key, raw, dict)
    apps = []
    for name, table in raw.items():
        where = f"{key}.{name}"
        _expect(where, table, dict)
        unknown = set(table) - {"module", "xmpp", "sip", "http", "enabled", "settings"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
        if not _bool(f"{where}.enabled", table.get("enabled", True)):
            continue
        module = _string(f"{where}.module", table.get("module", f"apps.{name}"))
        xmpp = _addresses(f"{where}.xmpp", table.get("xmpp"))
        sip = _addresses(f"{where}.sip", table.get("sip"))
        settings = _expect(f"{where}.settings", table.get("settings", {}), dict)
        http = _context_path(f"{where}.http", table.get("http"))
        apps.append(AppConfig(name, module, xmpp, sip, settings, http=http))
    return tuple(apps)


def _apps_with_defaults(key: str, raw: Any) -> tuple[AppConfig, ...]:
    """The shipped apps stay on unless the file disables or redefines them."""
    configured = _apps(key, raw)
    named = set(raw)
    defaults = tuple(a for a in Config.apps if a.name not in named)
    return defaults + configured


def _from_mapping(raw: Mapping[str, Any]) -> Config:
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "domains":
            kwargs["domains"] = _domains(name, value)
        elif name == "interface":
            kwargs["interface"] = _interface(name, value)
        elif name == "data_dir":
            kwargs["data_dir"] = Path(_string(name, value))
        elif name == "listen":
            kwargs["listen"] = ListenConfig(**_section(name, value, _LISTEN_FIELDS))
        elif name == "tls":
            kwargs["tls"] = TlsConfig(**_section(name, value, _TLS_FIELDS))
        elif name == "xmpp":
            kwargs["xmpp"] = XmppConfig(**_section(name, value, _XMPP_FIELDS))
        elif name == "sip":
            kwargs["sip"] = SipConfig(**_section(name, value, _SIP_FIELDS))
        elif name == "http":
            kwargs["http"] = HttpConfig(**_section(name, value, _HTTP_FIELDS))
        elif name == "http_upload":
            kwargs["http_upload"] = HttpUploadConfig(
                **_section(name, value, _HTTP_UPLOAD_FIELDS))
        elif name == "alert":
            kwargs["alert"] = AlertConfig(**_section(name, value, _ALERT_FIELDS))
        elif name == "metrics":
            kwargs["metrics"] = MetricsConfig(**_section(name, value, _METRICS_FIELDS))
        elif name == "log":
            kwargs["log"] = LogConfig(**_section(name, value, _LOG_FIELDS))
        elif name == "s2s":
            kwargs["s2s"] = S2SConfig(**_section(name, value, _S2S_FIELDS))
        elif name == "apps":
            kwargs["apps"] = _apps_with_defaults(name, value)
        else:
            raise ConfigError(f"{name}: unknown key")
    config = Config(**kwargs)
    if not config.sip.t1 <= config.sip.t2:
        raise ConfigError("sip.t2: must not be smaller than sip.t1")
    if not config.sip.min_expires <= config.sip.default_expires <= config.sip.max_expires:
        raise ConfigError(
            "sip.default_expires: must lie between sip.min_expires and sip.max_expires")
    if config.xmpp.muc_history_default > config.xmpp.muc_history_max:
        raise ConfigError("xmpp.muc_history_default: must not be larger than"
                          " xmpp.muc_history_max")
    upload = config.http_upload
    if upload.quota_per_user and upload.quota_per_user < upload.max_file_size:
        raise ConfigError("http_upload.quota_per_user: must not be smaller than"
                          " http_upload.max_file_size (0: no quota)")
    if config.xmpp.mam_default_page_size > config.xmpp.mam_max_page_size:
        raise ConfigError(
            "xmpp.mam_default_page_size: must not be larger than xmpp.mam_max_page_size")
    _check_metrics(config)
    if config.tls.client_ca and not Path(config.tls.client_ca).is_file():
        raise ConfigError(f"tls.client_ca: no such file: {config.tls.client_ca}")
    if bool(config.tls.certificate) != bool(config.tls.private_key):
        raise ConfigError(
            "tls.certificate: certificate and private_key must be set together"
        )
    return config


#: Command-line override names mapped to their place in the TOML tree.
OVERRIDES = {
    "domains": ("domains",),
    "interface": ("interface",),
    "data_dir": ("data_dir",),
    "c2s_port": ("listen", "c2s_port"),
    "c2s_tls_port": ("listen", "c2s_tls_port"),
    "s2s_port": ("listen", "s2s_port"),
    "sip_port": ("listen", "sip_port"),
    "http_port": ("listen", "http_port"),
    "https_port": ("listen", "https_port"),
    "log_format": ("log", "format"),
    "log_level": ("log", "level"),
}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a one-line L{ConfigError}."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """
    Build the configuration from defaults, an optional TOML file and overrides.

    @param overrides: keys of L{OVERRIDES}; values of C{None} are ignored.
    @param environ: the environment (twistd passes C{os.environ}): its
        L{ENV_ALERT_TOKEN} adds an alert token named L{ENV_ALERT_TOKEN_NAME}.
    """
    raw: dict[str, Any] = read_toml(path) if path is not None else {}
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in OVERRIDES:
            raise ConfigError(f"{name}: unknown override")
        *parents, leaf = OVERRIDES[name]
        table = raw
        for parent in parents:
            table = table.setdefault(parent, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{parent}: expected a table")
        table[leaf] = value
    config = _from_mapping(raw)
    return _with_env_token(config, environ) if environ is not None else config
