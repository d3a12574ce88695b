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


def channel_bindings(transport: Any) -> dict[str, bytes]:
    """
    The channel binding data by type for a stream's transport: empty when
    it is not a finished L{convergence.starttls.TLSTransport} (WebSocket,
    plain TCP) or nothing is computable.
    """
    tls = getattr(transport, "_tls", None)
    if tls is None or not getattr(transport, "handshake_done", False):
        return {}
    bindings: dict[str, bytes] = {}
    if tls.version() == "TLSv1.3":
        exported = exporter_binding(tls)
        if exported:
            bindings["tls-exporter"] = exported
    der = getattr(tls.context, "end_point_certificate", None)
    if der:
        bindings["tls-server-end-point"] = end_point_hash(der)
    if tls.version() == "TLSv1.2":
        unique = tls.get_channel_binding("tls-unique")
        if unique:
            bindings["tls-unique"] = unique
    return bindings


def feature_element(types: list[str]) -> etree._Element:
    """C{<sasl-channel-binding/>} (XEP-0440) listing C{types}."""
    element = etree.Element(f"{{{NS_SASL_CB}}}sasl-channel-binding",
                            nsmap={None: NS_SASL_CB})
    for name in types:
        etree.SubElement(element, f"{{{NS_SASL_CB}}}channel-binding", type=name)
    return element
