# -*- test-case-name: tests.test_s2s_inbound -*-
"""
A stream another server opened to us (RFC 6120): the receiving role of
dialback (XEP-0220), the authoritative role (C{<db:verify/>} about keys we
made) and SASL EXTERNAL (XEP-0178) for peers whose certificate is valid.

Every domain pair (remote, local) authenticated on the stream is kept;
a stanza is taken only when its C{from} domain and C{to} domain form such
a pair: before any pair, C{not-authorized}; a C{from} domain not
authenticated here, C{invalid-from} (RFC 6120 4.9.3.9); a C{to} domain not
authenticated with it, C{host-unknown}.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from lxml import etree
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from convergence.xmpp import ns
from convergence.xmpp.errors import StreamError
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.s2s import dialback, identity
from convergence.xmpp.stanza import split_tag
from convergence.xmpp.stream import XmlStreamServer

if TYPE_CHECKING:
    from convergence.xmpp.s2s.manager import S2SManager

OPENING = "opening"
TLS = "tls"  # STARTTLS required first
AUTH = "auth"  # authentication offered
READY = "ready"  # at least one domain pair authenticated

STANZAS = frozenset(f"{{{ns.SERVER}}}{k}" for k in ("message", "presence", "iq"))
_STARTTLS = f"{{{ns.TLS}}}starttls"
_AUTH = f"{{{ns.SASL}}}auth"


def _check_header(root: etree._Element) -> None:
    if split_tag(root.tag) != (ns.STREAMS, "stream"):
        raise StreamError("invalid-namespace", "expected a stream:stream root")
    if root.nsmap.get(None) != ns.SERVER:
        raise StreamError("invalid-namespace", "content namespace must be jabber:server")
    if root.prefix != "stream":
        raise StreamError("bad-namespace-prefix", "the stream prefix must be 'stream'")


def domain_of(address: str | None) -> str | None:
    """The domain of a JID string, or None when it is not a valid JID."""
    if not address:
        return None
    try:
        return JID.parse(address).host
    except InvalidJID:
        return None


class S2SInbound(XmlStreamServer):
    """One stream from a remote server."""

    content_namespace = ns.SERVER
    header_namespaces = {"db": dialback.NS}

    def __init__(self, manager: "S2SManager", direct_tls: bool = False) -> None:
        server = manager.server
        super().__init__(manager.clock, server.config.max_stanza_size, server.read_rate())
        self.manager = manager
        self.policy = manager.config.server_login
        self.state = OPENING
        self.local: str | None = None
        self.remote: str | None = None
        self.version = True
        #: TLS from the first byte (XEP-0368), STARTTLS never offered
        self.direct_tls = direct_tls
        self.secure = False
        #: (remote domain, local domain) pairs authenticated on this stream
        self.authenticated: set[tuple[str, str]] = set()
        self.sasl_done = False
        self.remote_cert_valid = False
        self.last_sent = self.clock.seconds()
        self._timeout: Any = None

    def __repr__(self) -> str:
        return f"<S2SInbound {self.remote or '-'}->{self.local or '-'} {self.state}>"

    def connectionMade(self) -> None:
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        if self.direct_tls:
            self.transport.startTLS(self.manager.server_tls)
            self.secure = True
        self.manager.inbound_opened(self)
        timeout = self.manager.server.config.negotiation_timeout
        if timeout:
            self._timeout = self.clock.callLater(timeout, self._negotiation_timeout)

    def _negotiation_timeout(self) -> None:
        self._timeout = None
        if not self.authenticated:
            self.stream_error("connection-timeout", "no domain authenticated in time")

    def stream_closed(self, reason: Failure | None) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self.manager.inbound_closed(self)

    def default_from(self) -> str:
        return self.local or self.manager.server.default_host

    def _write(self, data: bytes) -> None:
        self.last_sent = self.clock.seconds()
        super()._write(data)

    # Header and features
    def stream_opened(self, root: etree._Element) -> None:
        to = domain_of(root.get("to"))
        local = to if to is not None and self.manager.is_local(to) else None
        self.version = root.get("version") is not None
        self.send_header(local or self.manager.server.default_host,
                         to=root.get("from"), version="1.0" if self.version else None)
        _check_header(root)
        if root.get("to") is not None and local is None:
            raise StreamError("host-unknown", f"{root.get('to')} is not served here")
        if self.local is not None and local not in (None, self.local):
            raise StreamError("host-unknown", "the domain may not change on restart")
        self.local = local or self.local or self.manager.server.default_host
        remote = domain_of(root.get("from"))
        if root.get("from") is not None and remote is None:
            raise StreamError("invalid-from", "not a domain")
        if remote is not None:
            if not self.manager.permitted(remote):
                raise StreamError("policy-violation", f"no federation with {remote}")
            self.remote = remote
        if self.secure and self.remote is not None:
            self.remote_cert_valid = identity.peer_valid_for(
                self.transport, self.remote, self.manager.trust)
        if not self.version:
            # RFC 3920-era peer: no features, dialback straight away.
            if self.policy.tls == "required" and not self.secure:
                raise StreamError("policy-violation", "TLS is required")
            self.state = AUTH
            return
        self.send(self._features())

    def _tls_offered(self) -> bool:
        return (not self.secure and self.policy.tls != "disabled"
                and self.manager.server_tls is not None)

    def _dialback_allowed(self) -> bool:
        if not self.policy.dialback:
            return False
        if self.policy.tls == "required" and not self.secure:
            return False
        return not (self.policy.require_valid_certificate and not self.remote_cert_valid)

    def _features(self) -> etree._Element:
        features = etree.Element(f"{{{ns.STREAMS}}}features", nsmap={"stream": ns.STREAMS})
        if self.sasl_done:
            self.state = READY
            return features
        if self._tls_offered():
            starttls = etree.SubElement(features, _STARTTLS, nsmap={None: ns.TLS})
            if self.policy.tls == "required":
                etree.SubElement(starttls, f"{{{ns.TLS}}}required")
                self.state = TLS
                return features
        if self.secure and self.remote_cert_valid:
            mechs = etree.SubElement(features, f"{{{ns.SASL}}}mechanisms",
                                     nsmap={None: ns.SASL})
            etree.SubElement(mechs, f"{{{ns.SASL}}}mechanism").text = "EXTERNAL"
        if self._dialback_allowed():
            db = etree.SubElement(features, f"{{{dialback.FEATURE_NS}}}dialback",
                                  nsmap={None: dialback.FEATURE_NS})
            etree.SubElement(db, f"{{{dialback.FEATURE_NS}}}errors")
        self.state = READY if self.authenticated else AUTH
        return features

    # Elements
    def element_received(self, element: etree._Element) -> None:
        tag = element.tag
        if tag in STANZAS:
            self._stanza(element)
        elif tag == dialback.VERIFY:
            self._db_verify(element)
        elif tag == dialback.RESULT:
            self._db_result(element)
        elif tag == _STARTTLS and self.state in (TLS, AUTH):
            self._starttls()
        elif tag == _AUTH and self.state == AUTH:
            self._sasl_external(element)
        elif tag == f"{{{ns.STREAMS}}}error":
            self.log.info("s2s: stream error from {remote}: {error}", remote=self.remote,
                          error=etree.tostring(element, encoding=str)[:200])
            self.close()
        elif self.state in (TLS, AUTH, OPENING):
            raise StreamError("not-authorized", "authenticate first")
        else:
            raise StreamError("unsupported-stanza-type",
                              f"unexpected element {split_tag(tag)[1]}")

    def _starttls(self) -> None:
        if not self._tls_offered():
            self._write(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.close()
            return
        self._write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.parser.reset()
        self.transport.startTLS(self.manager.server_tls)
        self.secure = True
        self.state = OPENING

    # SASL EXTERNAL (XEP-0178)
    def _sasl_external(self, element: etree._Element) -> None:
        if element.get("mechanism") != "EXTERNAL" or not self.secure:
            self._sasl_failure("invalid-mechanism")
            return
        text = (element.text or "").strip()
        try:
            authzid = base64.b64decode(text, validate=True).decode() if text not in ("", "=") else ""
        except (binascii.Error, ValueError):
            self._sasl_failure("incorrect-encoding")
            return
        domain = authzid or self.remote
        if domain is None or domain_of(domain) != domain:
            self._sasl_failure("invalid-authzid")
            return
        if not self.manager.permitted(domain):
            self._sasl_failure("not-authorized")
            return
        valid = self.remote_cert_valid if domain == self.remote else identity.peer_valid_for(
            self.transport, domain, self.manager.trust)
        if not valid:
            self._sasl_failure("not-authorized")
            return
        self.send(etree.Element(f"{{{ns.SASL}}}success", nsmap={None: ns.SASL}))
        assert self.local is not None
        self.remote = domain
        self.authenticated.add((domain, self.local))
        self.sasl_done = True
        self.log.info("s2s: {remote} authenticated with SASL EXTERNAL on an inbound stream",
                      remote=domain)
        self.parser.reset()
        self.state = OPENING

    def _sasl_failure(self, condition: str) -> None:
        failure = etree.Element(f"{{{ns.SASL}}}failure", nsmap={None: ns.SASL})
        etree.SubElement(failure, f"{{{ns.SASL}}}{condition}")
        self.send(failure)

    # Dialback: receiving role
    def _db_result(self, element: etree._Element) -> None:
        originating = element.get("from", "")
        receiving = element.get("to", "")
        key = (element.text or "").strip()

        def error(condition: str) -> None:
            self.send(_db_error(dialback.RESULT, receiving, originating, condition))

        if not self._dialback_allowed():
            error("not-allowed")
            return
        if not self.manager.is_local(receiving):
            error("item-not-found")
            return
        if domain_of(originating) != originating or not key:
            error("bad-request")
            return
        if not self.manager.permitted(originating):
            error("forbidden")
            return
        if (originating, receiving) in self.authenticated:
            self.send(dialback.element(dialback.RESULT, receiving, originating, type_="valid"))
            return
        assert self.stream_id is not None
        d = self.manager.verify_dialback(originating, receiving, self.stream_id, key)
        d.addCallback(self._db_verified, originating, receiving)
        d.addErrback(lambda f: self.log.failure("dialback verification", f))

    def _db_verified(self, valid: bool, originating: str, receiving: str) -> None:
        if self.closed or self.closing:
            return
        self.send(dialback.element(dialback.RESULT, receiving, originating,
                                   type_="valid" if valid else "invalid"))
        if valid:
            self.authenticated.add((originating, receiving))
            if self.remote is None:
                self.remote = originating
            self.state = READY
            self.log.info("s2s: {remote} authenticated with dialback for {local}",
                          remote=originating, local=receiving)
        else:
            self.log.info("s2s: dialback from {remote} for {local} is invalid",
                          remote=originating, local=receiving)

    # Dialback: authoritative role
    def _db_verify(self, element: etree._Element) -> None:
        if self.policy.tls == "required" and not self.secure and self.version:
            raise StreamError("policy-violation", "TLS is required")
        receiving = element.get("from", "")
        originating = element.get("to", "")
        stream_id = element.get("id", "")
        if not self.manager.is_local(originating):
            self.send(_db_error(dialback.VERIFY, originating, receiving, "item-not-found",
                                stream_id))
            return
        valid = self.manager.keys.verify(receiving, originating, stream_id,
                                         element.text or "")
        self.send(dialback.element(dialback.VERIFY, originating, receiving,
                                   type_="valid" if valid else "invalid", id_=stream_id))

    # Stanzas
    def _stanza(self, stanza: etree._Element) -> None:
        if not self.authenticated:
            raise StreamError("not-authorized", "no domain is authenticated on this stream")
        sender = domain_of(stanza.get("from"))
        if sender is None or not any(r == sender for r, _ in self.authenticated):
            raise StreamError("invalid-from",
                              f"{stanza.get('from')} is not authenticated on this stream")
        target = domain_of(stanza.get("to"))
        if target is None:
            raise StreamError("improper-addressing", "a stanza needs a valid 'to'")
        if (sender, target) not in self.authenticated:
            raise StreamError("host-unknown", f"{target} is not authenticated for {sender}")
        self.manager.deliver(stanza, self)


def _db_error(tag: str, from_: str, to: str, condition: str,
              id_: str | None = None) -> etree._Element:
    """A dialback error (XEP-0220 2.4)."""
    el = dialback.element(tag, from_, to, type_="error", id_=id_)
    error = etree.SubElement(el, f"{{{ns.SERVER}}}error", nsmap={None: ns.SERVER})
    error.set("type", "cancel" if condition != "remote-server-timeout" else "wait")
    etree.SubElement(error, f"{{{ns.STANZA_ERRORS}}}{condition}",
                     nsmap={None: ns.STANZA_ERRORS})
    return el


class S2SFactory(Factory):
    """Builds an L{S2SInbound} for each connection to the s2s port (with
    C{direct_tls}, the XEP-0368 port: TLS from the first byte)."""

    def __init__(self, manager: "S2SManager", direct_tls: bool = False) -> None:
        self.manager = manager
        self.tls_first = direct_tls

    def buildProtocol(self, addr: Any) -> S2SInbound | None:
        if not self.manager.admit(addr):
            return None
        return S2SInbound(self.manager, self.tls_first)
