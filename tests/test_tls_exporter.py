"""
convergence.tls_exporter: keying material exported from the standard
library's TLS equals what pyOpenSSL (an independent OpenSSL binding)
exports on the other end, and nothing is called on an object whose struct
does not read as expected.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from convergence import tls_exporter
from convergence.tls import generate_self_signed
from convergence.tls_exporter import (
    CHANNEL_BINDING_LABEL,
    available,
    channel_binding,
    export,
)


def handshake(test: SynchronousTestCase, tls12: bool = False
              ) -> tuple[ssl.SSLObject, SSL.Connection]:
    """A stdlib server SSLObject and a pyOpenSSL client, in memory."""
    pem = Path(test.mktemp())
    pem.write_bytes(generate_self_signed(["localhost"]))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(pem))
    if tls12:
        server_context.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(incoming, outgoing, server_side=True)
    client = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
    client.set_connect_state()
    for _ in range(10):
        try:
            client.do_handshake()
        except SSL.WantReadError:
            pass
        try:
            incoming.write(client.bio_read(65536))
        except SSL.WantReadError:
            pass
        try:
            server.do_handshake()
        except ssl.SSLWantReadError:
            pass
        data = outgoing.read()
        if data:
            client.bio_write(data)
    test.assertEqual(server.version(), "TLSv1.2" if tls12 else "TLSv1.3")
    return server, client


class ExporterTests(SynchronousTestCase):
    def test_available_here(self) -> None:
        self.assertTrue(available())

    def test_equals_pyopenssl(self) -> None:
        """RFC 9266's binding, and other labels and lengths, as the peer's
        own OpenSSL binding computes them."""
        server, client = handshake(self)
        self.assertEqual(channel_binding(server),
                         client.export_keying_material(CHANNEL_BINDING_LABEL, 32, b""))
        for label, length, context in ((b"EXPORTER-test", 48, b"ctx"), (b"x", 16, None)):
            mine = export(server, label, length, context)
            self.assertEqual(len(mine), length)
            self.assertEqual(mine, client.export_keying_material(label, length, context))

    def test_differs_per_connection(self) -> None:
        first, _ = handshake(self)
        second, _ = handshake(self)
        self.assertNotEqual(channel_binding(first), channel_binding(second))

    def test_none_on_tls12(self) -> None:
        server, _ = handshake(self, tls12=True)
        self.assertIsNone(channel_binding(server))

    def test_socket_backed_object_refused(self) -> None:
        """An SSLSocket's struct has a socket in it: the layout check
        refuses it and nothing is called."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with socket.socket() as raw:
            wrapped = context.wrap_socket(raw, server_hostname="localhost",
                                          do_handshake_on_connect=False)
            self.assertIsNone(tls_exporter._ssl_pointer(wrapped))  # type: ignore[arg-type]
            self.assertIsNone(export(wrapped, b"x", 16))  # type: ignore[arg-type]

    def test_unavailable_when_the_self_test_fails(self) -> None:
        """A failed self-test turns exporting off (logged once), and the
        c2s channel bindings go without tls-exporter."""
        server, _ = handshake(self)
        self.patch(tls_exporter, "_state", None)
        self.patch(tls_exporter, "_self_test", lambda: "a test says no")
        messages: list[dict] = []
        self.patch(tls_exporter.log, "warn",
                   lambda fmt, **kw: messages.append({"format": fmt, **kw}))
        self.assertFalse(available())
        self.assertIsNone(channel_binding(server))
        self.assertFalse(available())
        self.assertEqual([m["why"] for m in messages], ["a test says no"])
