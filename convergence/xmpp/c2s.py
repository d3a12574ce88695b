# -*- test-case-name: tests.test_c2s -*-
"""
Client-to-server streams (RFC 6120): STARTTLS, SASL, resource binding and
stanza intake.  Negotiation ends here, in the service layer; applications
only ever see stanzas and sessions.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from lxml import etree
from twisted.internet.defer import maybeDeferred
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from convergence.auth.errors import SaslError
from convergence.starttls import start_tls
from convergence.xmpp import ns
from convergence.xmpp.channel_binding import binding_types, channel_bindings
from convergence.xmpp.channel_binding import feature_element as channel_binding_feature
from convergence.xmpp.errors import StanzaError, StreamError, error_reply
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.sasl import PLUS, Challenge, Success, create_mechanism
from convergence.xmpp.sasl_external import EXTERNAL, ExternalMechanism, certificate_jids
from convergence.xmpp.stanza import iq_result, split_tag
from convergence.xmpp.stream import XmlStreamServer

if TYPE_CHECKING:
    from convergence.xmpp.server import XmppServer

#: Negotiation states, in the order a client moves through them.
OPENING = "opening"  # waiting for the stream header
TLS = "tls"  # STARTTLS offered and required
AUTH = "auth"  # SASL offered
AUTHENTICATING = "authenticating"  # a SASL exchange is running
BIND = "bind"  # authenticated: resource binding offered
READY = "ready"  # bound: stanzas are routed

STANZA_KINDS = frozenset(
    f"{{{ns.CLIENT}}}{k}" for k in ("message", "presence", "iq")
)
_IQ_TYPES = frozenset(("get", "set", "result", "error"))
_TLS_STARTTLS = f"{{{ns.TLS}}}starttls"
_SASL_AUTH = f"{{{ns.SASL}}}auth"
_SASL_RESPONSE = f"{{{ns.SASL}}}response"
_SASL_ABORT = f"{{{ns.SASL}}}abort"
_IQ = f"{{{ns.CLIENT}}}iq"
_PRESENCE = f"{{{ns.CLIENT}}}presence"
_XML_LANG = f"{{{ns.XML}}}lang"


class C2SStream(XmlStreamServer):
    """One client's stream, from TCP accept to close."""

    content_namespace = ns.CLIENT
    #: False where TLS belongs to the layer below (XMPP over WebSocket,
    #: RFC 7395 3.8): STARTTLS is then never offered
    starttls_possible = True
    #: what the log says of the connection instead of " over TLS" (set for
    #: XMPP over WebSocket)
    transport_note: str | None = None
    #: the kind of connection, as the metrics name it: C{"tcp"} (the
    #: STARTTLS port), C{"tls"} (direct TLS), C{"ws"}/C{"wss"} (WebSocket)
    transport_label = "tcp"

    def __init__(self, server: "XmppServer", direct_tls: Any = None) -> None:
        """
        @param direct_tls: an C{ssl.SSLContext} for a direct TLS port
            (XEP-0368): TLS from the first byte, STARTTLS never offered.
        """
        super().__init__(server.clock, server.config.max_stanza_size,
                         server.read_rate())
        self.server = server
        self.state = OPENING
        self.host: str | None = None
        self.login: Any = None
        self.direct_tls = direct_tls
        if direct_tls is not None:
            self.transport_label = "tls"
        #: whether the stream is encrypted (STARTTLS done, or direct TLS)
        self.secure = False
        self.authenticated: JID | None = None
        self.jid: JID | None = None
        self.lang: str | None = None
        self.available = False
        self.priority = 0
        #: the last available presence broadcast (None: unavailable)
        self.presence: etree._Element | None = None
        #: addresses sent directed presence while available (RFC 6121 4.6)
        self.directed: set[str] = set()
        #: whether this resource asked for the roster (gets pushes, 2.1.6)
        self.roster_requested = False
        #: XEP-0352 client state: "active" or "inactive"
        self.client_state = "active"
        #: the client's disco features from its XEP-0115 caps (None: unknown)
        self.client_features: frozenset[str] | None = None
        #: outgoing stanza filters, in order: each returns the stanza to
        #: send (possibly changed) or None to hold or drop it
        self.filters: list[Callable[[etree._Element], etree._Element | None]] = []
        #: called with each stanza taken in from the client once it was
        #: handled (routed); XEP-0198 counts them
        self.inbound_observers: list[Callable[[etree._Element], None]] = []
        #: called with each stanza written to the client and its bytes
        #: (not nonzas); XEP-0198 counts and keeps them until acknowledged
        self.outbound_observers: list[Callable[[etree._Element, bytes], None]] = []
        #: XEP-0198: the connection is gone but the session lives on (still
        #: bound, presence unchanged, stanzas to it are queued)
        self.hibernating = False
        #: the client ended the stream with its closing tag
        self.peer_closed = False
        #: on a connection a resumed session took over: the session, which
        #: now gets this connection's input
        self.resumed_into: C2SStream | None = None
        #: this session left its first connection (resumed on another):
        #: what that first connection still reports is stale
        self._moved = False
        self.failures = 0
        self.mechanism: Any = None
        self.mechanism_name = ""
        self._cert_jids: list[JID] | None = None
        self._timeout = None

    def __repr__(self) -> str:
        return f"<C2SStream {self.jid or self.authenticated or '-'} {self.state}>"

    # Connection
    def connectionMade(self) -> None:
        # Negotiation is many small request/answer steps: without TCP_NODELAY
        # each can wait ~40 ms behind the peer's delayed ACK.
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        if self.direct_tls is not None:
            # XEP-0368: the handshake comes first; the stream header after
            # it is read as plaintext from the TLS layer.
            start_tls(self, self.direct_tls)
            self.secure = True
        self.server.connection_opened(self)
        timeout = self.server.config.negotiation_timeout
        if timeout:
            self._timeout = self.clock.callLater(timeout, self._negotiation_timeout)

    def _negotiation_timeout(self) -> None:
        self._timeout = None
        if self.state != READY:
            self.stream_error("connection-timeout", "negotiation took too long")

    def dataReceived(self, data: bytes) -> None:
        if self._moved:
            return  # the first connection of a session resumed elsewhere
        session = self.resumed_into
        if session is not None and session.transport is self.transport:
            # the session hears from its client (XEP-0199's idle check)
            session.last_received = self.clock.seconds()
            session.reads += 1
        super().dataReceived(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._moved:
            return
        super().connectionLost(reason)

    def stream_closed(self, reason: Failure | None) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        session = self.resumed_into
        if session is not None:
            if session.transport is self.transport:
                session._connection_lost(reason)
            return
        self.server.connection_closed(self)

    # XEP-0198 resumption: a session continues on a new connection
    def take_over(self, new: "C2SStream") -> None:
        """
        Continue this session on C{new}'s connection, whose stream was
        authenticated for the same account.  If this session's own
        connection is still open, it is closed with C{conflict}.
        """
        if not self.closed:
            old = self.transport
            self._write(etree.tostring(StreamError(
                "conflict", "the session was resumed on another connection"
            ).to_element()) + b"</stream:stream>")
            self.server.connection_released(self)
            old.loseConnection()
        if self._close_timer is not None and self._close_timer.active():
            self._close_timer.cancel()
        if new._timeout is not None and new._timeout.active():
            new._timeout.cancel()
        self._moved = True
        new.resumed_into = self
        self.transport = new.transport
        self.closed = self.closing = self.peer_closed = self.hibernating = False
        self.secure = new.secure
        self.stream_id = new.stream_id
        self.server.connection_moved(new, self)

    def _connection_lost(self, reason: Failure | None) -> None:
        """The connection this session took over is gone."""
        XmlStreamServer.connectionLost(self, reason)

    def _from_connection(self, connection: "C2SStream", element: etree._Element) -> None:
        if self.transport is connection.transport:
            self._on_element(element)

    def _on_stream_end(self) -> None:
        session = self.resumed_into
        if session is not None:
            if session.transport is self.transport:
                session._on_stream_end()
            else:
                self._disconnect()
            return
        self.peer_closed = True
        super()._on_stream_end()

    def stream_error(self, condition: str, text: str | None = None,
                     wait: bool = True, app: etree._Element | None = None) -> None:
        session = self.resumed_into
        if session is not None and session.transport is self.transport:
            session.stream_error(condition, text, wait, app)
            return
        if self.hibernating:
            # No connection to tell: the session ends (replaced, shut down).
            self.server.bus.fire("c2s/end-hibernation", self)
            return
        super().stream_error(condition, text, wait, app)

    def close(self, wait: bool = True) -> None:
        session = self.resumed_into
        if session is not None and session.transport is self.transport:
            session.close(wait)
            return
        super().close(wait)

    def default_from(self) -> str:
        return self.host or self.server.default_host

    def security_note(self) -> str:
        """How the connection is protected, for the log (" over TLS" …)."""
        if self.transport_note is not None:
            return self.transport_note
        return " over TLS" if self.secure else ""

    # Stream header (RFC 6120 4.7)
    def stream_opened(self, root: etree._Element) -> None:
        to = root.get("to")
        host = self._host_for(to)
        self.send_header(host or self.server.default_host,
                         to=str(self.authenticated) if self.authenticated else None)
        if split_tag(root.tag) != (ns.STREAMS, "stream"):
            raise StreamError("invalid-namespace", "expected a stream:stream root")
        if root.nsmap.get(None) != ns.CLIENT:
            raise StreamError("invalid-namespace", "content namespace must be jabber:client")
        if root.prefix != "stream":
            raise StreamError("bad-namespace-prefix", "the stream prefix must be 'stream'")
        version = root.get("version")
        if version is None or not _supported_version(version):
            raise StreamError("unsupported-version", "XMPP 1.0 is required")
        if host is None:
            raise StreamError("host-unknown", f"{to} is not served here")
        if self.host is not None and host != self.host:
            raise StreamError("host-unknown", "the domain may not change on restart")
        self.host = host
        self.lang = root.get(_XML_LANG)
        self.login = self.server.login_config(host)
        self._notify_listeners()
        self.send(self._features())

    def _host_for(self, to: str | None) -> str | None:
        if to is None:
            return self.host or self.server.default_host
        try:
            jid = JID.parse(to)
        except InvalidJID:
            return None
        if jid.user is not None or jid.resource is not None:
            return None
        return jid.host if self.server.serves_c2s(jid.host) else None

    def _tls_required(self) -> bool:
        return self.login.tls == "required" and self.server.tls_context is not None

    def _tls_offered(self) -> bool:
        return (self.starttls_possible and not self.secure
                and self.login.tls != "disabled"
                and self.server.tls_context is not None)

    def _mechanisms(self) -> list[str]:
        allowed = self.server.config.sasl_mechanisms
        mechs = [m for m in self.login.sasl if m in allowed]
        if self._certificate_jids():
            mechs.insert(0, EXTERNAL)
        if not self.secure and not self.server.config.allow_plain_without_tls:
            mechs = [m for m in mechs if m != "PLAIN"]
        if self._binding_types():
            # SCRAM-*-PLUS (RFC 5802, RFC 6120 13.8) wherever its SCRAM is
            # offered, preferred to it.
            with_plus: list[str] = []
            for m in mechs:
                if m.startswith("SCRAM-"):
                    with_plus.append(m + PLUS)
                with_plus.append(m)
            mechs = with_plus
        return mechs

    def _certificate_jids(self) -> list[JID]:
        """The accounts of this domain the client's verified TLS
        certificate names (SASL EXTERNAL; empty without one)."""
        if not self.secure:
            return []
        if self._cert_jids is None:
            der = getattr(self.transport, "peer_certificate_der", None)
            self._cert_jids = certificate_jids(der() if der else None, self.host)
        return self._cert_jids

    def _binding_types(self) -> list[str]:
        """The channel binding types this connection offers (no data is
        computed for them)."""
        if not self.secure:
            return []
        return binding_types(self.transport)

    def _channel_bindings(self) -> dict[str, bytes]:
        """This connection's TLS channel bindings by type (may be empty)."""
        if not self.secure:
            return {}
        return channel_bindings(self.transport)

    def _channel_binding_feature(self) -> etree._Element | None:
        """XEP-0440's list of the channel binding types offered."""
        types = self._binding_types()
        return channel_binding_feature(types) if types else None

    def _features(self) -> etree._Element:
        features = etree.Element(f"{{{ns.STREAMS}}}features",
                                 nsmap={"stream": ns.STREAMS})
        if self.authenticated is None:
            if self._tls_offered():
                starttls = etree.SubElement(features, _TLS_STARTTLS,
                                            nsmap={None: ns.TLS})
                if self._tls_required():
                    etree.SubElement(starttls, f"{{{ns.TLS}}}required")
                    self.state = TLS
                    self._add_listener_features(features)
                    return features
            mechs = etree.SubElement(features, f"{{{ns.SASL}}}mechanisms",
                                     nsmap={None: ns.SASL})
            for name in self._mechanisms():
                etree.SubElement(mechs, f"{{{ns.SASL}}}mechanism").text = name
            cb = self._channel_binding_feature()
            if cb is not None:
                features.append(cb)
            self._add_features(features, self.server.pre_auth_features)
            self.state = AUTH
        else:
            if self.login.bind:
                etree.SubElement(features, f"{{{ns.BIND}}}bind", nsmap={None: ns.BIND})
                session = etree.SubElement(features, f"{{{ns.SESSION}}}session",
                                           nsmap={None: ns.SESSION})
                etree.SubElement(session, f"{{{ns.SESSION}}}optional")
            self._add_features(features, self.server.stream_features)
            self.state = BIND
        self._add_listener_features(features)
        return features

    def _add_features(self, features: etree._Element, offered: list[Any]) -> None:
        """Append feature modules' stream features: C{(namespace, name)}
        for an empty element, or C{stream -> element | None}."""
        for feature in offered:
            if callable(feature):
                element = feature(self)
                if element is not None:
                    features.append(element)
            else:
                namespace, name = feature
                etree.SubElement(features, f"{{{namespace}}}{name}",
                                 nsmap={None: namespace})

    def _stage(self) -> str:
        if self.authenticated is not None:
            return "after_sasl"
        return "after_tls" if self.secure else "raw"

    def _notify_listeners(self) -> None:
        self._extra_features: list[etree._Element] = []
        for event in self.server.stream_opened(self, self._stage()):
            self._extra_features.extend(event.features)

    def _add_listener_features(self, features: etree._Element) -> None:
        for feature in self._extra_features:
            features.append(feature)

    # Elements
    def element_received(self, element: etree._Element) -> None:
        if self.resumed_into is not None:
            self.resumed_into._from_connection(self, element)
            return
        tag = element.tag
        if self.state == READY:
            self._stanza_received(element)
        elif tag == _TLS_STARTTLS and self.state in (TLS, AUTH):
            self._starttls()
        elif tag == _SASL_AUTH and self.state == AUTH:
            self._sasl_auth(element)
        elif tag == _SASL_RESPONSE and self.state == AUTHENTICATING:
            self._sasl_step(self.mechanism.respond, element)
        elif tag == _SASL_ABORT and self.state == AUTHENTICATING:
            self._sasl_failed(SaslError("aborted", None))
        elif tag == _IQ and self.state == BIND:
            self._pre_bind_iq(element)
        elif tag == _IQ and self.state == AUTH:
            self._pre_auth_iq(element)
        elif self.state == BIND and self._nonza(element):
            pass
        elif tag == _SASL_AUTH and self.state == TLS:
            self.server.stats.sasl_failure(element.get("mechanism", ""),
                                           "encryption-required")
            self._send_sasl_failure("encryption-required")
        elif tag in STANZA_KINDS or self.state in (TLS, AUTH):
            raise StreamError("not-authorized", "authenticate first")
        else:
            raise StreamError("unsupported-stanza-type",
                              f"unexpected element {split_tag(element.tag)[1]}")

    # STARTTLS (RFC 6120 5)
    def _starttls(self) -> None:
        if not self._tls_offered():
            self._write(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.close()
            return
        self._write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.parser.reset()
        start_tls(self, self.server.tls_context)
        self.secure = True
        self.state = OPENING

    # SASL (RFC 6120 6)
    def _sasl_auth(self, element: etree._Element) -> None:
        if self.server.auth_limits.address_blocked(self.peer_ip()):
            self.stream_error(
                "policy-violation",
                "too many failed authentications from this address;"
                " try again later")
            return
        name = element.get("mechanism", "")
        if name not in self._mechanisms():
            self.server.stats.sasl_failure(name, "invalid-mechanism")
            self._send_sasl_failure("invalid-mechanism")
            return
        self.mechanism_name = name
        try:
            initial = _decode_sasl(element.text)
        except SaslError as e:
            self._sasl_failed(e)
            return
        if name == EXTERNAL:
            self.mechanism = ExternalMechanism(
                self.host, self._certificate_jids(), self.server.account_lookup)
        else:
            self.mechanism = create_mechanism(
                name, self.host, self.server.account_lookup, self.server.run_in_thread,
                self.server.config.scram_iterations, self.server.guests,
                channel_bindings=self._channel_bindings() if name.endswith(PLUS) else None,
                plus_offered=any(m.endswith(PLUS) for m in self._mechanisms()))
        self.state = AUTHENTICATING
        self._sasl_step(self.mechanism.start, element, initial, decoded=True)

    def _sasl_step(self, step: Any, element: etree._Element,
                   data: bytes | None = None, decoded: bool = False) -> None:
        if not decoded:
            try:
                data = _decode_sasl(element.text) or b""
            except SaslError as e:
                self._sasl_failed(e)
                return
        mechanism = self.mechanism
        d = maybeDeferred(step, data)
        d.addCallbacks(self._sasl_next, self._sasl_error,
                       callbackArgs=(mechanism,), errbackArgs=(mechanism,))
        d.addErrback(lambda f: self.log.failure("SASL step failed", f))

    def _sasl_next(self, result: Challenge | Success, mechanism: Any) -> None:
        if self.closed or self.state != AUTHENTICATING or self.mechanism is not mechanism:
            return  # closed, aborted, or a newer exchange: this result is stale
        if isinstance(result, Challenge):
            challenge = etree.Element(f"{{{ns.SASL}}}challenge", nsmap={None: ns.SASL})
            challenge.text = base64.b64encode(result.data).decode() or "="
            self.send(challenge)
            return
        if self.server.auth_limits.account_locked(str(result.jid)):
            # The same answer as for a wrong password during the lock, so
            # guessing on goes nowhere.
            self._sasl_failed(SaslError("temporary-auth-failure",
                                        "account locked"))
            return
        success = etree.Element(f"{{{ns.SASL}}}success", nsmap={None: ns.SASL})
        if result.data:
            success.text = base64.b64encode(result.data).decode()
        self.send(success)
        self.authenticated = result.jid
        self.mechanism = None
        self.server.stats.login(self.mechanism_name)
        self.log.info("{jid} authenticated with {mechanism} from {peer}{tls}",
                      jid=result.jid, mechanism=self.mechanism_name,
                      peer=self.peer_name(), tls=self.security_note())
        self.parser.reset()
        self.state = OPENING

    def _sasl_error(self, failure: Failure, mechanism: Any) -> None:
        if self.mechanism is not mechanism:
            return  # the exchange was aborted or replaced meanwhile
        if failure.check(SaslError):
            error = failure.value
            account = getattr(mechanism, "account", None)
            limits = self.server.auth_limits
            if limits.account_locked(account):
                error = SaslError("temporary-auth-failure", "account locked")
            else:
                limits.failed(self.peer_ip(), account)
            self._sasl_failed(error)
        else:
            self.log.failure("SASL mechanism crashed", failure)
            self._sasl_failed(SaslError("temporary-auth-failure", None))

    def _sasl_failed(self, error: SaslError) -> None:
        if self.closed:
            return
        self.mechanism = None
        self.state = AUTH
        self.failures += 1
        self.server.stats.sasl_failure(self.mechanism_name, error.condition)
        self.log.info("authentication failure {n} from {peer}: {condition}",
                      n=self.failures, peer=self.peer_name(),
                      condition=error.condition)
        delay = self.server.config.auth_failure_delay * self.failures
        self.state = AUTHENTICATING  # hold input until the failure is sent
        self.clock.callLater(delay, self._send_delayed_failure, error.condition)

    def _send_delayed_failure(self, condition: str) -> None:
        if self.closed:
            return
        self.state = AUTH
        self._send_sasl_failure(condition)
        if self.failures >= self.server.config.auth_attempts:
            self.stream_error("policy-violation", "too many failed authentication attempts")

    def _send_sasl_failure(self, condition: str) -> None:
        failure = etree.Element(f"{{{ns.SASL}}}failure", nsmap={None: ns.SASL})
        etree.SubElement(failure, f"{{{ns.SASL}}}{condition}")
        self.send(failure)

    # Before authentication (XEP-0077 registration)
    def _pre_auth_iq(self, iq: etree._Element) -> None:
        """Offer an iq sent before SASL to C{iq-<type>/pre-auth/<ns>:<name>};
        one nobody claims is C{not-authorized}, as any other stanza is."""
        type_ = iq.get("type")
        if type_ in ("get", "set") and len(iq) == 1 and iq.get("id") is not None:
            namespace, local = split_tag(iq[0].tag)
            name = f"iq-{type_}/pre-auth/{namespace}:{local}"
            if self.server.bus.fire(name, PreAuthIqEvent(self, iq)):
                return
        raise StreamError("not-authorized", "authenticate first")

    # Resource binding (RFC 6120 7) and the legacy session iq
    def _pre_bind_iq(self, iq: etree._Element) -> None:
        payload = iq[0] if len(iq) == 1 else None
        if iq.get("type") == "set" and payload is not None and payload.tag == f"{{{ns.BIND}}}bind":
            self._bind(iq, payload)
        else:
            raise StreamError("not-authorized", "bind a resource first")

    def _bind(self, iq: etree._Element, bind: etree._Element) -> None:
        if not self.login.bind:
            self.send(error_reply(iq, StanzaError("not-allowed")))
            return
        resource_el = bind.find(f"{{{ns.BIND}}}resource")
        requested = (resource_el.text or "").strip() if resource_el is not None else ""
        try:
            account = self.authenticated
            assert account is not None
            jid = JID(account.user, account.host, requested or secrets.token_hex(6))
        except (InvalidJID, ValueError):
            self.send(error_reply(iq, StanzaError("bad-request", "invalid resource")))
            return
        self.jid = jid
        self.server.registry.bind(self, jid)
        self.state = READY
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        result = iq_result(iq)
        result.attrib.pop("from", None)
        out = etree.SubElement(result, f"{{{ns.BIND}}}bind", nsmap={None: ns.BIND})
        etree.SubElement(out, f"{{{ns.BIND}}}jid").text = str(jid)
        self.send(result)
        self.log.info("bound {jid}", jid=jid)
        self.server.bus.fire("c2s/bound", self)

    def _nonza(self, element: etree._Element) -> bool:
        """Offer a top-level element that is not a stanza (XEP-0198's
        C{<r/>}, XEP-0352's C{<active/>} …) to C{nonza/<namespace>}."""
        namespace, _ = split_tag(element.tag)
        return self.server.bus.fire(f"nonza/{namespace}", NonzaEvent(self, element))

    # Stanzas (RFC 6120 8)
    def _stanza_received(self, stanza: etree._Element) -> None:
        if stanza.tag not in STANZA_KINDS:
            if self._nonza(stanza):
                return
            raise StreamError("unsupported-stanza-type",
                              f"{split_tag(stanza.tag)[1]} is not a stanza")
        self._take_stanza(stanza)
        for observer in tuple(self.inbound_observers):
            observer(stanza)

    def _take_stanza(self, stanza: etree._Element) -> None:
        jid = self.jid
        assert jid is not None
        claimed = stanza.get("from")
        if claimed is not None and claimed != str(jid):
            try:
                ok = JID.parse(claimed) in (jid, jid.bare)
            except InvalidJID:
                ok = False
            if not ok:
                raise StreamError("invalid-from", "you may only send as yourself")
        stanza.set("from", str(jid))
        if self.lang and stanza.get(_XML_LANG) is None:
            # RFC 6120 8.1.5: the stream's default language travels along.
            stanza.set(_XML_LANG, self.lang)
        if stanza.tag == _IQ:
            if not self._valid_iq(stanza):
                return
            if len(stanza) == 1 and stanza[0].tag == f"{{{ns.SESSION}}}session":
                self.send(iq_result(stanza))
                return
        elif stanza.tag == _PRESENCE and stanza.get("to") is None:
            self._own_presence(stanza)
        self.server.router.route(stanza, self)

    def _valid_iq(self, iq: etree._Element) -> bool:
        type_ = iq.get("type")
        if iq.get("id") is None or type_ not in _IQ_TYPES:
            self.send(error_reply(iq, StanzaError("bad-request", "iq needs an id and a type")))
            return False
        if type_ in ("get", "set") and len(iq) != 1:
            self.send(error_reply(iq, StanzaError(
                "bad-request", "an iq get or set carries exactly one payload")))
            return False
        return True

    def _own_presence(self, presence: etree._Element) -> None:
        type_ = presence.get("type")
        if type_ is None:
            self.available = True
            priority = presence.findtext(f"{{{ns.CLIENT}}}priority")
            try:
                self.priority = max(-128, min(127, int(priority))) if priority else 0
            except ValueError:
                self.priority = 0
        elif type_ == "unavailable":
            self.available = False

    # Delivery
    def send(self, element: etree._Element) -> None:
        """Serialise and send one element; stanzas are shown to the
        outbound observers."""
        data = etree.tostring(element)
        self._write(data)
        if self.outbound_observers and element.tag in STANZA_KINDS:
            for observer in tuple(self.outbound_observers):
                observer(element, data)

    def resend(self, data: bytes) -> None:
        """Write a stanza again, as sent before (XEP-0198 resumption)."""
        self._write(data)

    def deliver(self, stanza: etree._Element) -> None:
        """Send a routed stanza to this client, through its filters."""
        for stanza_filter in self.filters:
            stanza = stanza_filter(stanza)
            if stanza is None:
                return
        self.send(stanza)

    def deliver_many(self, stanzas: Iterable[etree._Element]) -> None:
        """
        L{deliver} each of C{stanzas}, in order.  Without filters they go
        out in one write, each shown to the outbound observers after it
        as L{send} does; a filter may write what it held before passing
        a stanza (CSI), so with filters each is delivered on its own.
        """
        if self.filters:
            for stanza in stanzas:
                self.deliver(stanza)
            return
        sent = [(stanza, etree.tostring(stanza)) for stanza in stanzas]
        if not sent:
            return
        self._write(b"".join([data for _, data in sent]))
        if self.outbound_observers:
            for stanza, data in sent:
                if stanza.tag in STANZA_KINDS:
                    for observer in tuple(self.outbound_observers):
                        observer(stanza, data)


@dataclass
class NonzaEvent:
    """A top-level element other than a stanza, from a client stream."""

    stream: C2SStream
    element: etree._Element


@dataclass
class PreAuthIqEvent:
    """An iq from a client that has not authenticated: answered on its
    stream, never routed."""

    stream: C2SStream
    stanza: etree._Element

    def reply(self, element: etree._Element) -> None:
        """Send C{element} (an answer to the iq) to this stream only."""
        element.attrib.pop("to", None)
        self.stream.send(element)

    def reply_error(self, condition: str, text: str | None = None) -> None:
        """Answer the iq with a stanza error."""
        self.reply(error_reply(self.stanza, StanzaError(condition, text)))


def _supported_version(version: str) -> bool:
    major, _, minor = version.partition(".")
    return major == "1" and minor.isdigit()


def _decode_sasl(text: str | None) -> bytes | None:
    """Decode SASL element content: absent → None, C{=} → empty."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("incorrect-encoding", None) from None


class C2SFactory(Factory):
    """
    Builds a L{C2SStream} for each accepted client connection.

    @param direct_tls: an C{ssl.SSLContext} makes this a direct TLS port
        (XEP-0368); C{None}, a plain port offering STARTTLS.
    """

    def __init__(self, server: "XmppServer", direct_tls: Any = None) -> None:
        self.server = server
        self.direct_tls = direct_tls

    def buildProtocol(self, addr: Any) -> C2SStream | None:
        if not self.server.admit(addr):
            return None
        return C2SStream(self.server, self.direct_tls)
