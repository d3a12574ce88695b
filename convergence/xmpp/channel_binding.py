# -*- test-case-name: tests.test_channel_binding -*-
"""
TLS channel bindings (RFC 5056) for SASL SCRAM-*-PLUS (RFC 5802) on client
streams, and their XEP-0440 stream feature.

The TLS layer is the standard library's C{ssl} (L{convergence.starttls}),
which offers:

  - C{tls-server-end-point} (RFC 5929 section 4): a hash of the server's
    own certificate, which L{convergence.tls.server_tls_context} keeps on
    the context (C{end_point_certificate});
  - C{tls-unique} (RFC 5929 section 3) on TLS 1.2 only: RFC 9266 forbids it
    on TLS 1.3;
  - C{tls-exporter} (RFC 9266) on TLS 1.3, through
    L{convergence.tls_exporter} (C{ssl} has no exporter of its own).
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509
from lxml import etree

from convergence.tls_exporter import available as exporter_available
from convergence.tls_exporter import channel_binding as exporter_binding

#: XEP-0440 namespace
NS_SASL_CB = "urn:xmpp:sasl-cb:0"

#: types in order of preference
TYPES = ("tls-exporter", "tls-server-end-point", "tls-unique")

# RFC 5929 4.1: MD5 and SHA-1 signatures are hashed with SHA-256.
_WEAK_HASHES = {"md5", "sha1"}


def end_point_hash(certificate_der: bytes) -> bytes:
    """
    C{tls-server-end-point} data for a DER certificate: its hash with the
    hash of its signature algorithm, SHA-256 for MD5 and SHA-1 (and for a
    signature without a hash of its own, such as Ed25519).
    """
    cert = x509.load_der_x509_certificate(certificate_der)
    algorithm = cert.signature_hash_algorithm
    name = algorithm.name if algorithm is not None else "sha256"
    if name in _WEAK_HASHES:
        name = "sha256"
    try:
        return hashlib.new(name, certificate_der).digest()
    except ValueError:
        return hashlib.sha256(certificate_der).digest()


def _finished_tls(transport: Any) -> Any:
    tls = getattr(transport, "_tls", None)
    if tls is None or not getattr(transport, "handshake_done", False):
        return None
    return tls


def binding_types(transport: Any) -> list[str]:
    """
    The channel binding types offerable on a stream's transport, in
    L{TYPES} order, told from the TLS version and the server certificate
    alone: nothing is exported or hashed until an exchange names a type
    (L{channel_bindings}).  Empty when it is not a finished
    L{convergence.starttls.TLSTransport} (WebSocket, plain TCP).
    """
    tls = _finished_tls(transport)
    if tls is None:
        return []
    version = tls.version()
    offered = {
        "tls-exporter": version == "TLSv1.3" and exporter_available(),
        "tls-server-end-point": bool(getattr(tls.context, "end_point_certificate", None)),
        "tls-unique": version == "TLSv1.2",
    }
    return [name for name in TYPES if offered[name]]


def _end_point(context: Any) -> bytes | None:
    """The context's C{tls-server-end-point} data, hashed once."""
    cached = getattr(context, "end_point_hash", None)
    if cached is None:
        der = getattr(context, "end_point_certificate", None)
        if not der:
            return None
        cached = context.end_point_hash = end_point_hash(der)
    return cached


def channel_bindings(transport: Any) -> dict[str, bytes]:
    """
    The channel binding data by type for a stream's transport (the types
    of L{binding_types} whose data could be computed).
    """
    tls = _finished_tls(transport)
    if tls is None:
        return {}
    bindings: dict[str, bytes] = {}
    for name in binding_types(transport):
        if name == "tls-exporter":
            data = exporter_binding(tls)
        elif name == "tls-server-end-point":
            data = _end_point(tls.context)
        else:
            data = tls.get_channel_binding("tls-unique")
        if data:
            bindings[name] = data
    return bindings


def feature_element(types: list[str]) -> etree._Element:
    """C{<sasl-channel-binding/>} (XEP-0440) listing C{types}."""
    element = etree.Element(f"{{{NS_SASL_CB}}}sasl-channel-binding",
                            nsmap={None: NS_SASL_CB})
    for name in types:
        etree.SubElement(element, f"{{{NS_SASL_CB}}}channel-binding", type=name)
    return element
