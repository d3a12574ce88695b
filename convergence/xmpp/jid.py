# -*- test-case-name: tests.test_jid -*-
"""XMPP addresses (JIDs) prepared per RFC 7622, using the standard library.

* localpart: PRECIS UsernameCaseMapped (RFC 8265: width mapping, Unicode
  lower-casing, NFC, the Bidi Rule) over the IdentifierClass, minus the
  characters ``" & ' / : < > @`` (RFC 7622 section 3.3.1);
* resourcepart: PRECIS OpaqueString (non-ASCII spaces mapped to U+0020,
  NFC) over the FreeformClass (RFC 7622 section 3.4);
* domainpart: lower-cased, final dot stripped, IP literals accepted,
  otherwise IDNA labels checked and stored as U-labels.  The stdlib only
  implements IDNA2003, so non-ASCII labels go through nameprep and ToASCII
  (``encodings.idna``) rather than IDNA2008.

The PRECIS string classes are derived from ``unicodedata`` (the running
Python's Unicode version).  Two contextual rules need data the stdlib
lacks: ZERO WIDTH (NON-)JOINER is accepted only after a virama, and the
script tests use Unicode character names.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from encodings import idna
from typing import Any

__all__ = ["InvalidJID", "JID", "MAX_PART_BYTES"]

#: Longest part of a JID, in UTF-8 octets (RFC 7622 section 3.1).
MAX_PART_BYTES = 1023

# Inputs longer than this (in code points) cannot prepare to a valid part;
# refuse them before any per-character work.
_MAX_RAW_CHARS = 4 * MAX_PART_BYTES

# Longer JID strings are parsed without being cached.
_MAX_CACHED_LENGTH = 512

_LOCAL_ASCII = re.compile(
    r"[\x21\x23-\x25\x28-\x2e\x30-\x39\x3b\x3d\x3f\x41-\x7e]+")
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")
_RESOURCE_ASCII = re.compile(r"[\x20-\x7e]+")
_LDH_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ASCII_HOST = re.compile(rf"{_LDH_LABEL}(?:\.{_LDH_LABEL})*")
_LDH = re.compile(_LDH_LABEL)
_DOTTED_QUAD = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IDNA_DOTS = re.compile("[\u3002\uff0e\uff61]")

# PRECIS derived properties (RFC 8264 section 8), with the ID_DIS and
# FREE_PVAL outcomes folded into one.
_PVALID = 0
_FREE = 1
_CONTEXTJ = 2
_CONTEXTO = 3
_DISALLOWED = 4
_UNASSIGNED = 5

_EXCEPTIONS = {
    **dict.fromkeys("\u00df\u03c2\u06fd\u06fe\u0f0b\u3007", _PVALID),
    **dict.fromkeys("\u00b7\u0375\u05f3\u05f4\u30fb", _CONTEXTO),
    **dict.fromkeys(map(chr, range(0x0660, 0x066A)), _CONTEXTO),
    **dict.fromkeys(map(chr, range(0x06F0, 0x06FA)), _CONTEXTO),
    **dict.fromkeys(
        "\u0640\u07fa\u302e\u302f\u3031\u3032\u3033\u3034\u3035\u303b",
        _DISALLOWED),
}

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt).
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C),
    (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)

# Conjoining jamo: Hangul_Syllable_Type L, V or T.
_OLD_HANGUL_JAMO = ((0x1100, 0x11FF), (0xA960, 0xA97C), (0xD7B0, 0xD7FB))

_LETTER_DIGITS = frozenset({"Ll", "Lu", "Lo", "Nd", "Lm", "Mn", "Mc"})
_FREE_CATEGORIES = frozenset({
    "Lt", "Nl", "No", "Me",  # OtherLetterDigits
    "Zs",  # Spaces
    "Sm", "Sc", "Sk", "So",  # Symbols
    "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",  # Punctuation
})

_RTL = frozenset({"R", "AL", "AN"})
_RTL_ALLOWED = frozenset(
    {"R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"})
_LTR_ALLOWED = frozenset({"L", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"})


class InvalidJID(ValueError):
    """A string or part that is not a valid XMPP address."""


def _in_ranges(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= cp <= high for low, high in ranges)


def _is_noncharacter(cp: int) -> bool:
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


@functools.lru_cache(maxsize=4096)
def _precis_property(char: str) -> int:
    """The PRECIS derived property of one code point (RFC 8264 section 8)."""
    exception = _EXCEPTIONS.get(char)
    if exception is not None:
        return exception
    cp = ord(char)
    category = unicodedata.category(char)
    if category == "Cn" and not _is_noncharacter(cp):
        return _UNASSIGNED
    if 0x21 <= cp <= 0x7E:
        return _PVALID
    if cp in (0x200C, 0x200D):
        return _CONTEXTJ
    if _in_ranges(cp, _OLD_HANGUL_JAMO):
        return _DISALLOWED
    if _in_ranges(cp, _DEFAULT_IGNORABLE) or _is_noncharacter(cp):
        return _DISALLOWED
    if category == "Cc":
        return _DISALLOWED
    if unicodedata.normalize("NFKC", char) != char:
        return _FREE
    if category in _LETTER_DIGITS:
        return _PVALID
    if category in _FREE_CATEGORIES:
        return _FREE
    return _DISALLOWED


def _name_starts(char: str, *prefixes: str) -> bool:
    return unicodedata.name(char, "").startswith(prefixes)


def _context_ok(text: str, index: int) -> bool:
    """Apply the RFC 5892 appendix A rule for the code point at ``index``."""
    char = text[index]
    before = text[index - 1] if index else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    cp = ord(char)
    if cp in (0x200C, 0x200D):
        # The Joining_Type alternative for ZWNJ needs data the stdlib
        # lacks, so only the virama form is accepted.
        return bool(before) and unicodedata.combining(before) == 9
    if cp == 0x00B7:
        return before == "l" and after == "l"
    if cp == 0x0375:
        return bool(after) and _name_starts(after, "GREEK")
    if cp in (0x05F3, 0x05F4):
        return bool(before) and _name_starts(before, "HEBREW")
    if cp == 0x30FB:
        return any(
            c != "\u30fb" and _name_starts(
                c, "HIRAGANA", "KATAKANA", "CJK UNIFIED IDEOGRAPH",
                "CJK COMPATIBILITY IDEOGRAPH")
            for c in text)
    if 0x0660 <= cp <= 0x0669:
        return not any("\u06f0" <= c <= "\u06f9" for c in text)
    if 0x06F0 <= cp <= 0x06F9:
        return not any("\u0660" <= c <= "\u0669" for c in text)
    return False


def _check_class(text: str, free_allowed: bool, what: str) -> None:
    """Refuse code points outside the IdentifierClass or FreeformClass."""
    for index, char in enumerate(text):
        prop = _precis_property(char)
        if prop == _PVALID or (prop == _FREE and free_allowed):
            continue
        if prop in (_CONTEXTJ, _CONTEXTO) and _context_ok(text, index):
            continue
        raise InvalidJID(
            f"{what} contains disallowed character U+{ord(char):04X}")


def _check_bidi(text: str, what: str) -> None:
    """Apply the Bidi Rule (RFC 5893 section 2) to right-to-left strings."""
    classes = [unicodedata.bidirectional(c) for c in text]
    if not _RTL.intersection(classes):
        return
    first = classes[0]
    if first in ("R", "AL"):
        allowed, endings = _RTL_ALLOWED, ("R", "AL", "EN", "AN")
        if "EN" in classes and "AN" in classes:
            raise InvalidJID(f"{what} mixes European and Arabic digits")
    elif first == "L":
        allowed, endings = _LTR_ALLOWED, ("L", "EN")
    else:
        raise InvalidJID(f"{what} violates the Bidi Rule")
    trimmed = classes
    while trimmed and trimmed[-1] == "NSM":
        trimmed = trimmed[:-1]
    if (not set(classes) <= allowed or not trimmed
            or trimmed[-1] not in endings):
        raise InvalidJID(f"{what} violates the Bidi Rule")


def _width_map(text: str) -> str:
    """Map fullwidth and halfwidth code points to their decompositions."""
    chars = []
    for char in text:
        decomposition = unicodedata.decomposition(char)
        if decomposition.startswith(("<wide>", "<narrow>")):
            char = chr(int(decomposition.split()[1], 16))
        chars.append(char)
    return "".join(chars)


def _map_spaces(text: str) -> str:
    """Map non-ASCII spaces to U+0020."""
    return "".join(
        " " if c != " " and unicodedata.category(c) == "Zs" else c
        for c in text)


def _until_stable(text: str, rules: Any, what: str) -> str:
    """Apply ``rules`` until the result is stable (RFC 8264 section 7)."""
    for _ in range(4):
        result = rules(text)
        if result == text:
            return result
        text = result
    raise InvalidJID(f"{what} does not stabilise under preparation")


def _check_length(text: str, what: str) -> None:
    if not text:
        raise InvalidJID(f"empty {what}")
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > MAX_PART_BYTES:
        raise InvalidJID(f"{what} longer than {MAX_PART_BYTES} octets")


def _username_rules(text: str) -> str:
    return unicodedata.normalize("NFC", _width_map(text).lower())


def _opaque_rules(text: str) -> str:
    return unicodedata.normalize("NFC", _map_spaces(text))


@functools.lru_cache(maxsize=4096)
def prepare_localpart(text: str) -> str:
    """Return the enforced localpart or raise :class:`InvalidJID`."""
    if not text or len(text) > _MAX_RAW_CHARS:
        _check_length(text, "localpart")
    if text.isascii():
        prepared = text.lower()
        if _LOCAL_ASCII.fullmatch(prepared) is None:
            raise InvalidJID(f"invalid character in localpart {text!r}")
    else:
        prepared = _until_stable(text, _username_rules, "localpart")
        if not _LOCAL_FORBIDDEN.isdisjoint(prepared):
            raise InvalidJID(f"invalid character in localpart {text!r}")
        _check_class(prepared, False, "localpart")
        _check_bidi(prepared, "localpart")
    _check_length(prepared, "localpart")
    return prepared


@functools.lru_cache(maxsize=4096)
def prepare_resourcepart(text: str) -> str:
    """Return the enforced resourcepart or raise :class:`InvalidJID`."""
    if not text or len(text) > _MAX_RAW_CHARS:
        _check_length(text, "resourcepart")
    if text.isascii():
        if _RESOURCE_ASCII.fullmatch(text) is None:
            raise InvalidJID("control character in resourcepart")
        prepared = text
    else:
        prepared = _until_stable(text, _opaque_rules, "resourcepart")
        _check_class(prepared, True, "resourcepart")
    _check_length(prepared, "resourcepart")
    return prepared


def _prepare_label(label: str) -> str:
    """Return one domain label as a lower-case LDH label or U-label."""
    if label.isascii():
        label = label.lower()
        if _LDH.fullmatch(label) is None:
            raise InvalidJID(f"invalid domain label {label!r}")
        if not label.startswith("xn--"):
            return label
        try:
            ulabel = idna.ToUnicode(label)
        except UnicodeError as exc:
            raise InvalidJID(f"invalid A-label {label!r}") from exc
        if ulabel.isascii():
            raise InvalidJID(f"invalid A-label {label!r}")
        label = ulabel
    try:
        ulabel = idna.nameprep(label)
        alabel = idna.ToASCII(ulabel).decode("ascii")
    except UnicodeError as exc:
        raise InvalidJID(f"invalid domain label {label!r}") from exc
    if _LDH.fullmatch(alabel.lower()) is None:
        raise InvalidJID(f"invalid domain label {label!r}")
    return ulabel


@functools.lru_cache(maxsize=4096)
def prepare_domainpart(text: str) -> str:
    """Return the canonical domainpart or raise :class:`InvalidJID`."""
    if not text or len(text) > _MAX_RAW_CHARS:
        _check_length(text, "domainpart")
    if text.startswith("["):
        if not text.endswith("]") or "%" in text:
            raise InvalidJID(f"invalid IP literal {text!r}")
        try:
            address = ipaddress.IPv6Address(text[1:-1])
        except ValueError as exc:
            raise InvalidJID(f"invalid IP literal {text!r}") from exc
        return f"[{address.compressed}]"
    if not text.isascii():
        text = _IDNA_DOTS.sub(".", text)
    if text.endswith("."):
        text = text[:-1]
    if text.isascii():
        prepared = text.lower()
        if _ASCII_HOST.fullmatch(prepared) is None:
            raise InvalidJID(f"invalid domainpart {text!r}")
        if _DOTTED_QUAD.fullmatch(prepared) is not None:
            try:
                ipaddress.IPv4Address(prepared)
            except ValueError as exc:
                raise InvalidJID(f"invalid IPv4 address {text!r}") from exc
            return prepared
        if "xn--" in prepared:
            prepared = ".".join(map(_prepare_label, prepared.split(".")))
    else:
        prepared = ".".join(map(_prepare_label, text.split(".")))
    _check_length(prepared, "domainpart")
    return prepared


class JID:
    """An immutable, prepared XMPP address.

    ``JID(user, host, resource)`` prepares each part; :meth:`parse` splits
    and prepares a string (cached).  Equal JIDs have equal prepared parts.
    """

    __slots__ = ("user", "host", "resource", "_full", "_hash", "_bare")

    user: str | None
    host: str
    resource: str | None

    def __init__(self, user: str | None, host: str,
                 resource: str | None = None) -> None:
        _init(self,
              None if user is None else prepare_localpart(user),
              prepare_domainpart(host),
              None if resource is None else prepare_resourcepart(resource))

    @classmethod
    def parse(cls, text: str) -> JID:
        """Parse and prepare a JID string (RFC 7622 section 3.1)."""
        if not isinstance(text, str):
            raise TypeError(f"JID text must be str, not {type(text).__name__}")
        jid = _parse_cached(text) if len(text) <= _MAX_CACHED_LENGTH else (
            _parse(text))
        if cls is not JID:
            return cls._from_prepared(jid.user, jid.host, jid.resource)
        return jid

    @classmethod
    def _from_prepared(cls, user: str | None, host: str,
                       resource: str | None) -> JID:
        jid = object.__new__(cls)
        _init(jid, user, host, resource)
        return jid

    @property
    def bare(self) -> JID:
        """This JID without its resource."""
        if self.resource is None:
            return self
        bare = self._bare
        if bare is None:
            bare = self._from_prepared(self.user, self.host, None)
            object.__setattr__(self, "_bare", bare)
        return bare

    @property
    def is_bare(self) -> bool:
        """Whether this JID has no resource."""
        return self.resource is None

    @property
    def full(self) -> str:
        """The string form, ``user@host/resource`` with parts omitted."""
        return self._full

    def __str__(self) -> str:
        return self._full

    def __repr__(self) -> str:
        return f"{type(self).__name__}.parse({self._full!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JID):
            return self._full == other._full
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.user, self.host, self.resource))

    def __copy__(self) -> JID:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> JID:
        return self


def _init(jid: JID, user: str | None, host: str,
          resource: str | None) -> None:
    """Fill the slots of ``jid`` from prepared parts."""
    full = host if user is None else f"{user}@{host}"
    if resource is not None:
        full = f"{full}/{resource}"
    setter = object.__setattr__
    setter(jid, "user", user)
    setter(jid, "host", host)
    setter(jid, "resource", resource)
    setter(jid, "_full", full)
    setter(jid, "_hash", hash(full) ^ 0x4A1D)
    setter(jid, "_bare", None)


def _parse(text: str) -> JID:
    """Split ``text`` into parts and prepare them."""
    slash = text.find("/")
    if slash < 0:
        rest, resource = text, None
    else:
        rest, resource = text[:slash], text[slash + 1:]
    at = rest.find("@")
    if at < 0:
        user, host = None, rest
    else:
        user, host = rest[:at], rest[at + 1:]
    return JID._from_prepared(
        None if user is None else prepare_localpart(user),
        prepare_domainpart(host),
        None if resource is None else prepare_resourcepart(resource))


_parse_cached = functools.lru_cache(maxsize=8192)(_parse)
