# -*- test-case-name: tests.test_sip_message -*-
"""SIP header fields as an ordered multi-map of raw values (RFC 3261 7.3).

Values stay the strings that were received (folding already undone), so a
message forwarded or answered unchanged goes out as it came in; typed
views (Via, From, CSeq …) are parsed on demand by the message.  Names are
stored in their canonical spelling, so lookups are case-insensitive and
compact forms (``v``, ``i``, ``l`` …) find their long names.
"""

from __future__ import annotations

import functools
import re
from typing import Iterable, Iterator

__all__ = ["COMPACT", "LIST_HEADERS", "Headers", "canonical", "split_list"]

COMPACT: dict[str, str] = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding",
    "l": "Content-Length", "c": "Content-Type", "f": "From", "s": "Subject",
    "k": "Supported", "t": "To", "v": "Via", "o": "Event", "r": "Refer-To",
    "b": "Referred-By", "u": "Allow-Events", "x": "Session-Expires",
    "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition",
    "y": "Identity", "n": "Identity-Info",
}

# Names whose spelling is not simply Title-Cased dash parts.
_SPECIAL = {name.lower(): name for name in (
    "Call-ID", "CSeq", "WWW-Authenticate", "RSeq", "RAck", "MIME-Version",
    "SIP-ETag", "SIP-If-Match", "Content-ID", "Min-SE", "P-Asserted-Identity",
    "P-Preferred-Identity", "P-Charging-Vector", "P-Access-Network-Info",
    "P-Called-Party-ID", "P-Associated-URI", "P-Visited-Network-ID",
)}

# Headers whose grammar is a comma-separated list (RFC 3261 7.3.1).
LIST_HEADERS = frozenset((
    "Via", "Route", "Record-Route", "Contact", "Allow", "Supported",
    "Require", "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding",
    "Accept-Language", "Content-Encoding", "Allow-Events", "In-Reply-To",
    "Alert-Info", "Call-Info", "Error-Info", "Warning", "Path",
    "Service-Route",
))

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")

#: The typed views computed from each header name (filled as the message
#: module defines them): what an edit of that name drops.
VIEWS_OF: dict[str, list[str]] = {}

#: The names a parsed message's headers index (L{Headers.from_canonical}):
#: those every message needs, and those its typed views read.
INDEXED = frozenset((
    "Via", "From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards",
    "Contact", "Route", "Record-Route", "Require", "Supported",
    "Content-Type", "Expires",
))


@functools.lru_cache(maxsize=1024)
def canonical(name: str) -> str:
    """The canonical spelling of a header name (compact forms expanded)."""
    low = name.lower()
    special = _SPECIAL.get(low)
    if special is not None:
        return special
    if len(low) == 1 and low in COMPACT:
        return COMPACT[low]
    return "-".join(part[:1].upper() + part[1:] for part in low.split("-"))


def _line(name: str, value: str) -> tuple[str, str]:
    """A checked ``(canonical name, value)`` pair for an edit."""
    key = checked_name(name)
    if key is None:
        raise ValueError(f"bad header name: {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"line break in {key} value: {value!r}")
    return key, value


@functools.lru_cache(maxsize=1024)
def checked_name(name: str) -> str | None:
    """L{canonical} for a received name (LWS before the colon allowed),
    or None if it is not a token."""
    name = name.rstrip(" \t")
    if not _TOKEN.match(name):
        return None
    return canonical(name)


def split_list(value: str) -> list[str]:
    """Split a list-valued header at commas outside quotes and ``<…>``."""
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:
        return [part for part in (p.strip() for p in value.split(","))
                if part]
    parts = []
    start = 0
    quoted = False
    angle = False
    i = 0
    n = len(value)
    while i < n:
        char = value[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            angle = True
        elif char == ">":
            angle = False
        elif char == "," and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return [part for part in parts if part]


class Headers:
    """Ordered ``(name, raw value)`` pairs; several may share a name.

    ``views`` keeps the typed views a message parsed from these lines (its
    From, Via, CSeq …), by view name; an edit of a name drops the views of
    that name (L{VIEWS_OF}), and ``version`` counts the edits.  Names and
    values given to the constructor and the editing methods are checked (a
    token; no CR or LF), so nothing an application sets can inject header
    lines.
    """

    __slots__ = ("_index", "_items", "version", "views")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = [_line(name, value) for name, value in items]
        self.version = 0
        self.views: dict[str, object] = {}
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_canonical(cls, items: list[tuple[str, str]],
                       index: dict[str, list[str]] | None = None,
                       views: dict[str, object] | None = None) -> Headers:
        """Adopt a list whose names are already canonical (parser use);
        C{index} has the values of every L{INDEXED} name among them, by
        name (kept until the first edit, it spares the lookups a scan);
        C{views}, views already parsed from them."""
        headers = cls.__new__(cls)
        headers._items = items
        headers.version = 0
        headers.views = {} if views is None else views
        headers._index = index
        return headers

    def _edited(self, key: str) -> None:
        """Count an edit of C{key}'s lines; drop their views."""
        self._index = None
        self.version += 1
        views = self.views
        if views:
            for view in VIEWS_OF.get(key, ()):
                views.pop(view, None)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` as written, or ``default``."""
        key = canonical(name)
        index = self._index
        if index is not None and key in INDEXED:
            values = index.get(key)
            return values[0] if values else default
        for item_name, value in self._items:
            if item_name == key:
                return value
        return default

    def get_lines(self, name: str) -> list[str]:
        """The value of every header line of ``name``, unsplit."""
        key = canonical(name)
        index = self._index
        if index is not None and key in INDEXED:
            return list(index.get(key, ()))
        return [value for item_name, value in self._items if item_name == key]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; list-valued headers split at commas."""
        key = canonical(name)
        index = self._index
        if index is not None and key in INDEXED:
            values = list(index.get(key, ()))
        else:
            values = [value for item_name, value in self._items
                      if item_name == key]
        if key not in LIST_HEADERS:
            return values
        return [part for value in values for part in split_list(value)]

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line by one, where the first one was."""
        key, value = _line(name, value)
        items = []
        placed = False
        for item in self._items:
            if item[0] != key:
                items.append(item)
            elif not placed:
                items.append((key, value))
                placed = True
        if not placed:
            items.append((key, value))
        self._items = items
        self._edited(key)

    def set_line(self, name: str, value: str, index: int = 0) -> None:
        """Replace the ``index``-th line of ``name``; IndexError if none."""
        key, value = _line(name, value)
        seen = 0
        for position, (item_name, _) in enumerate(self._items):
            if item_name == key:
                if seen == index:
                    self._items[position] = (key, value)
                    self._edited(key)
                    return
                seen += 1
        raise IndexError(f"no {key} line {index}")

    def add(self, name: str, value: str, first: bool = False) -> None:
        """Append a line, or with ``first`` put it before the other lines
        of that name (at the very top if there are none)."""
        key, value = _line(name, value)
        self._edited(key)
        if not first:
            self._items.append((key, value))
            return
        for index, (item_name, _) in enumerate(self._items):
            if item_name == key:
                self._items.insert(index, (key, value))
                return
        self._items.insert(0, (key, value))

    def remove(self, name: str) -> int:
        """Remove every line of ``name``; return how many there were."""
        key = canonical(name)
        before = len(self._items)
        self._items = [item for item in self._items if item[0] != key]
        self._edited(key)
        return before - len(self._items)

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers.from_canonical(list(self._items))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical(name)
        index = self._index
        if index is not None and key in INDEXED:  # a parsed message's
            return key in index
        return any(item_name == key for item_name, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
