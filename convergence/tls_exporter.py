# -*- test-case-name: tests.test_tls_exporter -*-
"""
TLS keying material exporters (RFC 5705, RFC 8446 section 7.5) for the
standard library's C{ssl}, which does not offer them (CPython gh-82133).

C{tls-exporter} channel binding (RFC 9266) needs
C{SSL_export_keying_material}.  The c2s TLS layer is C{ssl} on purpose
(L{convergence.starttls}: half the memory per connection of pyOpenSSL), so
this module calls the function through C{ctypes} from the very OpenSSL the
C{_ssl} extension links, on the C{SSL *} inside the C{ssl.SSLObject}.

Finding that pointer reads CPython's private C{PySSLSocket} struct
(C{PyObject_HEAD}, C{PyObject *Socket}, C{SSL *ssl}, C{PySSLContext *ctx}),
so nothing is called before the layout is proven for the object at hand:
the C{Socket} word must be NULL (a memory-BIO object), the C{ctx} word
must be the object's own C{SSLContext}, and C{SSL_get_SSL_CTX} of the
candidate pointer must be the C{SSL_CTX *} of that context.  Once per
process a handshake between two C{SSLObject}s in memory checks that both
ends export the same bytes.  When anything fails, L{export} returns None
(logged once) and C{tls-exporter} is simply not offered.
"""

from __future__ import annotations

import _ssl
import ctypes
import os
import ssl
import sys
import tempfile
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from twisted.logger import Logger

log = Logger()

#: RFC 9266 section 2
CHANNEL_BINDING_LABEL = b"EXPORTER-Channel-Binding"
CHANNEL_BINDING_LENGTH = 32

_WORD = ctypes.sizeof(ctypes.c_void_p)
#: sizeof(PyObject_HEAD) of this interpreter (16 on a 64-bit default build)
_HEAD = object.__basicsize__

_lib: Any = None
_state: bool | None = None  # None: not checked yet; False: unavailable


def _word(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def _load() -> Any:
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
    lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
    export = lib.SSL_export_keying_material
    export.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                       ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                       ctypes.c_size_t, ctypes.c_int]
    export.restype = ctypes.c_int
    return lib


def _ssl_pointer(tls: ssl.SSLObject) -> int | None:
    """The C{SSL *} of a memory-BIO C{SSLObject}, or None if the struct
    does not read as expected."""
    raw = getattr(tls, "_sslobj", None)
    if type(raw) is not _ssl._SSLSocket:  # only that struct is read below
        return None
    base = id(raw)
    socket_word = _word(base + _HEAD)
    pointer = _word(base + _HEAD + _WORD)
    context_word = _word(base + _HEAD + 2 * _WORD)
    if socket_word != 0 or not pointer or context_word != id(raw.context):
        return None
    if _lib.SSL_get_SSL_CTX(pointer) != _word(context_word + _HEAD):
        return None
    return pointer


def _raw_export(tls: ssl.SSLObject, label: bytes, length: int,
                context: bytes | None) -> bytes | None:
    pointer = _ssl_pointer(tls)
    if pointer is None:
        return None
    out = ctypes.create_string_buffer(length)
    ok = _lib.SSL_export_keying_material(
        pointer, out, length, label, len(label), context or b"",
        len(context or b""), 0 if context is None else 1)
    return out.raw if ok == 1 else None


def _self_test() -> str | None:
    """Why exporting cannot be trusted here, or None: a TLS 1.3 handshake
    in memory whose two ends must export the same bytes."""
    from convergence.tls import generate_self_signed

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "self-test.pem")
        with open(path, "wb") as f:  # an EC key: milliseconds, not RSA's 100
            f.write(generate_self_signed(["exporter.self-test"], 1,
                                         ec.generate_private_key(ec.SECP256R1())))
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(path)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    ends = []
    for context, side in ((server_context, True), (client_context, False)):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        ends.append((context.wrap_bio(incoming, outgoing, server_side=side),
                     incoming, outgoing))
    (server, server_in, server_out), (client, client_in, client_out) = ends
    for _ in range(8):
        for end, out, peer_in in ((client, client_out, server_in),
                                  (server, server_out, client_in)):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
            data = out.read()
            if data:
                peer_in.write(data)
    if server.version() != "TLSv1.3" or client.version() != "TLSv1.3":
        return "the self-test handshake did not finish"
    mine = _raw_export(server, CHANNEL_BINDING_LABEL, CHANNEL_BINDING_LENGTH, b"")
    theirs = _raw_export(client, CHANNEL_BINDING_LABEL, CHANNEL_BINDING_LENGTH, b"")
    if mine is None or theirs is None:
        return "the SSLObject's struct does not read as expected"
    if mine != theirs:
        return "the two ends of the self-test exported different bytes"
    return None


def available() -> bool:
    """Whether L{export} works in this process (checked once: the server
    asks at startup, so no client stream waits on the self-test)."""
    global _lib, _state
    if _state is None:
        why: str | None
        if sys.implementation.name != "cpython":
            why = f"not CPython ({sys.implementation.name})"
        else:
            try:
                _lib = _load()
                why = _self_test()
            except Exception as e:  # an optional feature: never stop the server
                why = f"{type(e).__name__}: {e}"
        _state = why is None
        if why is not None:
            log.warn("TLS exporters unavailable, so no tls-exporter channel"
                     " binding: {why}", why=why)
    return _state


def export(tls: ssl.SSLObject, label: bytes, length: int,
           context: bytes | None = None) -> bytes | None:
    """
    C{length} bytes of keying material exported under C{label} (RFC 5705;
    C{context} None: no context, C{b""}: an empty one), or None when this
    cannot be done here or on this object.
    """
    if not available():
        return None
    return _raw_export(tls, label, length, context)


def channel_binding(tls: ssl.SSLObject) -> bytes | None:
    """
    C{tls-exporter} channel binding data (RFC 9266 section 2): 32 bytes
    under C{EXPORTER-Channel-Binding} with an empty context; only on TLS
    1.3 (on 1.2 it would be safe only with the extended master secret,
    which C{ssl} cannot tell).
    """
    if tls.version() != "TLSv1.3":
        return None
    return export(tls, CHANNEL_BINDING_LABEL, CHANNEL_BINDING_LENGTH, b"")
