# -*- test-case-name: tests.test_s2s_outbound -*-
"""
A stream we open to another server, from one local domain to one remote
domain (RFC 6120): STARTTLS when offered (or direct TLS, XEP-0368), then
SASL EXTERNAL when the peer offers it (it found our certificate valid,
XEP-0178), else dialback (XEP-0220, originating role).  The stream also
carries our C{<db:verify/>} questions to the peer as the authoritative
server of its domain (receiving role), which need no authentication.

The stream reports to its L{OutgoingLink}: C{negotiated} (verify
questions may go), C{ready} (stanzas may go), C{failed}, C{lost}.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from lxml import etree
from twisted.python.failure import Failure

from convergence.xmpp import ns
from convergence.xmpp.errors import StreamError
from convergence.xmpp.s2s import dialback, identity
from convergence.xmpp.s2s.namespaces import to_server
from convergence.xmpp.s2s.tls import ClientTls
from convergence.xmpp.stanza import split_tag
from convergence.xmpp.stream import XmlStreamServer

if TYPE_CHECKING:
    from convergence.xmpp.s2s.link import OutgoingLink

_FEATURES = f"{{{ns.STREAMS}}}features"
_STREAM_ERROR = f"{{{ns.STREAMS}}}error"
_PROCEED = f"{{{ns.TLS}}}proceed"
_TLS_FAILURE = f"{{{ns.TLS}}}failure"
_SUCCESS = f"{{{ns.SASL}}}success"
_SASL_FAILURE = f"{{{ns.SASL}}}failure"

OPENING = "opening"
TLS = "tls"  # STARTTLS asked for
SASL = "sasl"  # EXTERNAL asked for
DIALBACK = "dialback"  # db:result sent
READY = "ready"


class S2SOutbound(XmlStreamServer):
    """Our stream from C{local} to C{remote}."""

    content_namespace = ns.SERVER
    header_namespaces = {"db": dialback.NS}

    def __init__(self, link: "OutgoingLink", direct_tls: bool = False) -> None:
        manager = link.manager
        super().__init__(manager.clock, manager.server.config.max_stanza_size)
        self.link = link
        self.manager = manager
        self.local = link.local
        self.remote = link.remote
        self.policy = manager.config.login_to_other_server
        self.direct_tls = direct_tls
        self.secure = False
        self.peer_verified = False
        self.peer_stream_id: str | None = None
        self.sasl_done = False
        self.dialback_offered = False
        self.state = OPENING
        #: verify questions may be sent (the peer's TLS demands are met)
        self.negotiated = False
        self.last_sent = self.clock.seconds()

    def __repr__(self) -> str:
        return f"<S2SOutbound {self.local}->{self.remote} {self.state}>"

    # Connection
    def connectionMade(self) -> None:
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        if self.direct_tls:
            self.transport.startTLS(ClientTls(self.manager.client_tls_alpn, self.remote))
            self.secure = True
        self.send_header(self.local, to=self.remote)

    def stream_closed(self, reason: Failure | None) -> None:
        self.link.lost(self)

    def default_from(self) -> str:
        return self.local

    def _write(self, data: bytes) -> None:
        self.last_sent = self.clock.seconds()
        super()._write(data)

    def fail(self, condition: str, text: str) -> None:
        """Give up on this stream: the link bounces what waits."""
        self.log.info("s2s: stream {local} -> {remote} failed: {text}",
                      local=self.local, remote=self.remote, text=text)
        self.link.failed(self, condition, text)
        if not self.closed:
            self.close()

    # Negotiation
    def stream_opened(self, root: etree._Element) -> None:
        if split_tag(root.tag) != (ns.STREAMS, "stream") or root.nsmap.get(None) != ns.SERVER:
            raise StreamError("invalid-namespace", "expected a jabber:server stream")
        self.peer_stream_id = root.get("id")
        if self.secure:
            self.peer_verified = identity.peer_valid_for(
                self.transport, self.remote, self.manager.trust)
            if self.policy.require_valid_certificate and not self.peer_verified:
                self.fail("remote-server-not-found",
                          f"the certificate of {self.remote} is not valid")
                return
        if root.get("version") is None:
            self._ready_to_authenticate(None)

    def element_received(self, element: etree._Element) -> None:
        tag = element.tag
        if tag == _FEATURES:
            self._features(element)
        elif tag == dialback.VERIFY:
            self.link.verify_answered(element)
        elif tag == dialback.RESULT and self.state == DIALBACK:
            self._db_result(element)
        elif tag == _PROCEED and self.state == TLS:
            self.parser.reset()
            self.transport.startTLS(ClientTls(self.manager.client_tls, self.remote))
            self.secure = True
            self.state = OPENING
            self.send_header(self.local, to=self.remote)
        elif tag == _SUCCESS and self.state == SASL:
            self.sasl_done = True
            self.parser.reset()
            self.state = OPENING
            self.send_header(self.local, to=self.remote)
        elif tag == _SASL_FAILURE and self.state == SASL:
            self.log.info("s2s: {remote} refused SASL EXTERNAL", remote=self.remote)
            self._dialback()
        elif tag == _TLS_FAILURE:
            self.fail("remote-server-not-found", "STARTTLS failed")
        elif tag == _STREAM_ERROR:
            condition = next((split_tag(c.tag)[1] for c in element
                              if split_tag(c.tag)[0] == ns.STREAM_ERRORS), "undefined-condition")
            self.fail("remote-server-not-found", f"stream error from peer: {condition}")
        else:
            self.log.info("s2s: ignoring {tag} from {remote} on an outgoing stream",
                          tag=split_tag(tag)[1], remote=self.remote)

    def _features(self, features: etree._Element) -> None:
        if self.sasl_done:
            self._ready()
            return
        starttls = features.find(f"{{{ns.TLS}}}starttls")
        if not self.secure:
            if starttls is not None and self.policy.tls != "disabled":
                self.state = TLS
                self._write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                return
            if self.policy.tls == "required":
                self.fail("remote-server-not-found", f"{self.remote} offers no TLS")
                return
            if starttls is not None and starttls.find(f"{{{ns.TLS}}}required") is not None:
                self.fail("remote-server-not-found", f"{self.remote} requires TLS")
                return
        self._ready_to_authenticate(features)

    def _ready_to_authenticate(self, features: etree._Element | None) -> None:
        self.negotiated = True
        self.link.negotiated(self)
        mechanisms: list[str] = []
        if features is not None:
            mechanisms = [m.text or "" for m in features.iterfind(
                f"{{{ns.SASL}}}mechanisms/{{{ns.SASL}}}mechanism")]
            self.dialback_offered = features.find(
                f"{{{dialback.FEATURE_NS}}}dialback") is not None
        if self.secure and "EXTERNAL" in mechanisms:
            self.state = SASL
            auth = etree.Element(f"{{{ns.SASL}}}auth", nsmap={None: ns.SASL},
                                 mechanism="EXTERNAL")
            auth.text = base64.b64encode(self.local.encode()).decode()
            self.send(auth)
            return
        self._dialback()

    def _dialback(self) -> None:
        if not self.policy.dialback:
            self.fail("remote-server-not-found",
                      f"{self.remote} did not accept our certificate; dialback is off")
            return
        if self.peer_stream_id is None:
            self.fail("remote-server-not-found", "the peer gave no stream id")
            return
        self.state = DIALBACK
        key = self.manager.keys.generate(self.remote, self.local, self.peer_stream_id)
        self.send(dialback.element(dialback.RESULT, self.local, self.remote, text=key))

    def _db_result(self, element: etree._Element) -> None:
        if element.get("from") != self.remote or element.get("to") != self.local:
            return
        type_ = element.get("type")
        if type_ == "valid":
            self._ready()
        else:
            self.fail("remote-server-not-found",
                      f"{self.remote} answered our dialback with {type_}")

    def _ready(self) -> None:
        self.state = READY
        self.log.info("s2s: stream {local} -> {remote} ready ({how})", local=self.local,
                      remote=self.remote,
                      how="SASL EXTERNAL" if self.sasl_done else "dialback")
        self.link.ready(self)

    # Sending
    def send_stanza(self, stanza: etree._Element) -> None:
        """Send a routed stanza, in the server namespace."""
        self.send(to_server(stanza))
