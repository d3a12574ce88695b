# -*- test-case-name: tests.test_s2s_dialback -*-
"""
Server dialback (XEP-0220 1.1.1) with keys per XEP-0185 1.0:

  key = hex(HMAC-SHA256(hex(SHA256(secret)),
                        receiving + " " + originating + " " + stream id))

The originating server sends the key in C{<db:result/>}; the receiving
server asks the authoritative server with C{<db:verify/>}, which
recomputes it from its secret alone: no state is kept between the two.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from lxml import etree

NS = "jabber:server:dialback"
#: the stream feature (XEP-0220 section 2.5)
FEATURE_NS = "urn:xmpp:features:dialback"
RESULT = f"{{{NS}}}result"
VERIFY = f"{{{NS}}}verify"


class DialbackKeys:
    """Makes and checks dialback keys for one server's secret."""

    def __init__(self, secret: str | None = None) -> None:
        secret = secret or secrets.token_hex(32)
        self._key = hashlib.sha256(secret.encode()).hexdigest().encode()

    def generate(self, receiving: str, originating: str, stream_id: str) -> str:
        """The key the originating server sends for this stream."""
        text = f"{receiving} {originating} {stream_id}".encode()
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()

    def verify(self, receiving: str, originating: str, stream_id: str,
               key: str) -> bool:
        """Whether C{key} is the one this server made (authoritative role)."""
        expected = self.generate(receiving, originating, stream_id)
        return hmac.compare_digest(expected, (key or "").strip())


def element(tag: str, from_: str, to: str, text: str | None = None,
            type_: str | None = None, id_: str | None = None) -> etree._Element:
    """A C{<db:result/>} or C{<db:verify/>}."""
    el = etree.Element(tag, nsmap={"db": NS})
    el.set("from", from_)
    el.set("to", to)
    if id_ is not None:
        el.set("id", id_)
    if type_ is not None:
        el.set("type", type_)
    if text is not None:
        el.text = text
    return el
