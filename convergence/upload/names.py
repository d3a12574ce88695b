# -*- test-case-name: tests.test_upload -*-
"""
What a client may name a file and its type, and how those appear in URLs
and response headers.  A client's file name is only ever shown (in the URL
and C{Content-Disposition}); the file on disk is named by its slot id.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

__all__ = [
    "MAX_FILENAME_BYTES",
    "BadName",
    "check_content_type",
    "check_filename",
    "disposition",
    "url_segment",
]

#: longest file name, in UTF-8 bytes (the usual file system limit)
MAX_FILENAME_BYTES = 255

#: longest content type
MAX_CONTENT_TYPE = 255

_TOKEN = r"[A-Za-z0-9!#$&^_.+\-]+"
_PARAM = rf"{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\")"
_MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})((?:[ \t]*;[ \t]*{_PARAM})*)[ \t]*")
_PARAMS = re.compile(rf"[ \t]*;[ \t]*({_PARAM})")

#: bidirectional controls that can disguise an extension ("gpj.exe")
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: types a browser may show in place; anything else is an attachment
_INLINE = ("image/", "audio/", "video/")
_INLINE_EXACT = ("text/plain",)


class BadName(ValueError):
    """A file name or content type that is not acceptable."""


def check_filename(name: str | None) -> str:
    """
    The file name as given, if acceptable: 1 to L{MAX_FILENAME_BYTES} bytes,
    no path separators, no control or bidirectional characters, not C{.} or
    C{..}, not blank.

    @raise BadName: it is not.
    """
    if not name or not name.strip():
        raise BadName("The file name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise BadName(f"The file name is longer than {MAX_FILENAME_BYTES} bytes")
    if name in (".", ".."):
        raise BadName("The file name may not be . or ..")
    for char in name:
        if char in "/\\" or char in _BIDI or unicodedata.category(char) in ("Cc", "Cs"):
            raise BadName("The file name contains a path separator or control character")
    return name


def check_content_type(value: str | None) -> str:
    """
    The normalized media type (type and subtype lowercased, parameters
    after C{"; "}), or C{""} when none was given.

    @raise BadName: the value is not a media type.
    """
    if value is None or value == "":
        return ""
    match = _MEDIA_TYPE.fullmatch(value.strip()) if len(value) <= MAX_CONTENT_TYPE else None
    if match is None:
        raise BadName("The content type is not a media type")
    params = _PARAMS.findall(match.group(3))
    return "; ".join([f"{match.group(1)}/{match.group(2)}".lower(), *params])


def url_segment(name: str) -> str:
    """C{name} as one percent-encoded URL path segment."""
    return quote(name, safe="")


def disposition(name: str, content_type: str) -> str:
    """
    The C{Content-Disposition} of a download: C{inline} for images, audio,
    video and plain text, C{attachment} for everything else (HTML, SVG with
    scripts … is never shown in place), with the name in RFC 8187 form.
    """
    base = content_type.split(";", 1)[0]
    inline = base.startswith(_INLINE) and base != "image/svg+xml" or base in _INLINE_EXACT
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename*=UTF-8''{quote(name, safe='')}"
