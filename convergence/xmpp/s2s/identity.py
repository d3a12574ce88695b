# -*- test-case-name: tests.test_s2s_identity -*-
"""
Is a peer's certificate valid for the domain it claims?  RFC 6120
13.7.1.2 and RFC 7590 (RFC 6125 rules): the chain must verify against the
trusted CAs, and one of the certificate's identifiers must match:

  - a DNS-ID (C{subjectAltName} dNSName, wildcards in the left label),
  - an SRV-ID C{_xmpp-server.<domain>} (RFC 4985),
  - an XmppAddr (C{id-on-xmppAddr} otherName) equal to the domain.

The handshake itself accepts any certificate (L{convergence.xmpp.s2s.tls});
the verdict is taken here, so a peer whose certificate does not verify
can still authenticate with dialback when the policy allows it.
"""

from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from OpenSSL import crypto
from service_identity import CertificateError, VerificationError
from service_identity.hazmat import DNS_ID, SRV_ID, verify_service_identity
from service_identity.pyopenssl import extract_patterns
from twisted.logger import Logger

#: id-on-xmppAddr (RFC 6120 13.7.1.4)
XMPP_ADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")

log = Logger()


def trust_store(ca_file: str = "") -> crypto.X509Store:
    """The CAs peers' certificates must chain to: C{ca_file}, else the
    system's default locations."""
    store = crypto.X509Store()
    if ca_file:
        store.load_locations(ca_file)
    else:
        paths = ssl.get_default_verify_paths()
        if paths.cafile or paths.capath:
            store.load_locations(paths.cafile, paths.capath)
    return store


def chain_verifies(connection: Any, store: crypto.X509Store) -> bool:
    """Whether the peer of a finished handshake sent a certificate that
    chains to C{store} and is in its validity period."""
    cert = connection.get_peer_certificate()
    if cert is None:
        return False
    chain = connection.get_peer_cert_chain() or []
    intermediates = [c for c in chain if c.to_cryptography() != cert.to_cryptography()]
    try:
        crypto.X509StoreContext(store, cert, intermediates).verify_certificate()
    except crypto.X509StoreContextError as e:
        log.info("peer certificate does not verify: {error}", error=str(e))
        return False
    return True


def xmpp_addrs(cert: x509.Certificate) -> list[str]:
    """The XmppAddr identifiers of a certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    result = []
    for other in san.value.get_values_for_type(x509.OtherName):
        if other.type_id != XMPP_ADDR:
            continue
        value = _utf8_string(other.value)
        if value is not None:
            result.append(value)
    return result


def _utf8_string(der: bytes) -> str | None:
    """Decode a DER UTF8String (tag 12)."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[2:2 + count], "big")
        offset = 2 + count
    try:
        return der[offset:offset + length].decode()
    except UnicodeDecodeError:
        return None


def matches_domain(cert: crypto.X509, domain: str) -> bool:
    """Whether C{cert} names C{domain} by DNS-ID, SRV-ID or XmppAddr."""
    patterns = extract_patterns(cert)
    for ident in (DNS_ID(domain), SRV_ID(f"_xmpp-server.{domain}")):
        try:
            verify_service_identity(patterns, obligatory_ids=[ident], optional_ids=[])
            return True
        except VerificationError:
            pass
        except (ValueError, CertificateError) as e:  # no usable identifiers
            log.debug("{domain}: {error}", domain=domain, error=e)
    return domain in xmpp_addrs(cert.to_cryptography())


def peer_valid_for(transport: Any, domain: str, store: crypto.X509Store) -> bool:
    """Whether the TLS peer on C{transport} proved to be C{domain}."""
    get_handle = getattr(transport, "getHandle", None)
    connection = get_handle() if get_handle is not None else None
    if connection is None or not hasattr(connection, "get_peer_certificate"):
        return False
    if not chain_verifies(connection, store):
        return False
    cert = connection.get_peer_certificate()
    ok = matches_domain(cert, domain)
    if not ok:
        log.info("peer certificate is not valid for {domain}", domain=domain)
    return ok
