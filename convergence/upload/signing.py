# -*- test-case-name: tests.test_upload -*-
"""
Signed PUT URLs and the server secret they are signed with.

A PUT URL carries its slot's size, content type and expiry in its query,
with an HMAC-SHA256 over the URL path (decoded: C{/upload/<id>/<name>}),
the size, the content type and the expiry under a secret that only the
server knows (C{http_upload.key} in the data directory, made on first
start, mode 0600).  Changing any of them, or the path, breaks the
signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from twisted.logger import Logger

__all__ = ["SECRET_BYTES", "Signer", "load_secret"]

#: size of a generated secret
SECRET_BYTES = 32

log = Logger()


def load_secret(path: Path) -> bytes:
    """
    The secret in C{path}, created (mode 0600, never overwritten) if the
    file does not exist.  A secret file readable by others is made private.

    @raise OSError: the file cannot be made or read.
    @raise ValueError: the file holds too short a secret.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warn("{path} was readable by others: made private (0600)", path=str(path))
            os.chmod(path, 0o600)
        secret = bytes.fromhex(path.read_text("ascii").strip())
        if len(secret) < SECRET_BYTES // 2:
            raise ValueError(f"{path}: the secret is too short")
        return secret
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    log.info("created the HTTP upload secret {path}", path=str(path))
    return secret


class Signer:
    """Signs and checks PUT URLs with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, path: str, size: int, content_type: str, expires: int) -> str:
        """The signature (base64url, unpadded) of a PUT URL's parts."""
        message = "\n".join((path, str(size), content_type, str(expires))).encode("utf-8")
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, signature: str, path: str, size: int, content_type: str,
               expires: int) -> bool:
        """Whether C{signature} is that of these parts (constant time)."""
        expected = self.sign(path, size, content_type, expires)
        return hmac.compare_digest(expected.encode("ascii"),
                                   signature.encode("ascii", "replace"))
