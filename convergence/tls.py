# -*- test-case-name: tests.test_tls -*-
"""
The server certificate: loaded from the configured PEM files, or a
self-signed one generated for the server's domains on first run.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path
from typing import Any, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.logger import Logger

log = Logger()


def generate_self_signed(domains: Sequence[str], days: int = 3650, key: Any = None) -> bytes:
    """A PEM holding a key (RSA 2048 unless C{key} is given) and a
    self-signed certificate for C{domains}."""
    if key is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = []
    for domain in domains:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(domain.strip("[]"))))
        except ValueError:
            alt_names.append(x509.DNSName(domain))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)


def ensure_certificate(path: Path, domains: Sequence[str]) -> None:
    """Create a self-signed certificate at C{path} unless one exists."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_self_signed(domains)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    log.info("generated a self-signed certificate for {domains} in {path}",
             domains=", ".join(domains), path=str(path))


#: ALPN protocol of XMPP client streams over direct TLS (XEP-0368)
ALPN_XMPP_CLIENT = "xmpp-client"
#: ALPN of the HTTPS port (RFC 7301; HTTP/2 is not offered)
ALPN_HTTP_1_1 = "http/1.1"


def server_tls_context(certificate: Path, private_key: Path | None = None,
                       alpn: Sequence[str] = (),
                       client_ca: Path | None = None) -> ssl.SSLContext:
    """
    The TLS server context (TLS 1.2+) for the given PEM file(s), for
    L{convergence.starttls}: the standard library's C{ssl} on the system
    OpenSSL, which releases idle connections' buffers by default.

    @param alpn: application protocols offered (RFC 7301), e.g.
        L{ALPN_XMPP_CLIENT} on a direct TLS port; a client asking for none
        of them still connects, without ALPN.
    @param client_ca: PEM CA bundle: ask clients for a certificate and
        verify one that is sent against it (SASL EXTERNAL,
        L{convergence.xmpp.sasl_external}); a client sending none still
        connects.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.2 renegotiation: a CPU sink for attackers, and a mid-stream
    # handshake the STARTTLS layer does not do.
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(str(certificate), str(private_key) if private_key else None)
    # The server's own certificate, for tls-server-end-point channel binding
    # (RFC 5929; convergence.xmpp.channel_binding): ssl cannot tell it.
    context.end_point_certificate = _first_certificate_der(certificate)  # type: ignore[attr-defined]
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if client_ca is not None:
        context.load_verify_locations(cafile=str(client_ca))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _first_certificate_der(path: Path) -> bytes | None:
    """The DER of the first certificate in a PEM file (the server's)."""
    try:
        cert = x509.load_pem_x509_certificates(Path(path).read_bytes())[0]
    except (ValueError, IndexError, OSError):
        return None
    return cert.public_bytes(serialization.Encoding.DER)
