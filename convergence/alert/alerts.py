# -*- test-case-name: tests.test_alert -*-
"""
What an alert request asks for, read from its JSON body, and the errors
the endpoint answers (each a status, a short C{error} word and a text).

A body is one JSON object, either

    {"room": "<name or room JID>", "body": "...", "subject"?: "...", "from_nick"?: "..."}

or

    {"to": "<JID>", "body": "...", "subject"?: "...", "type"?: "normal"|"chat",
     "from_nick"?: "..."}

Unknown fields, a missing or empty C{body}, fields of the wrong type and
characters XML cannot carry are refused (400): a typo never becomes a
silently different alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["Alert", "AlertRefused", "parse_alert"]

#: the fields a body may have, and which kind of alert each belongs to
_ROOM_FIELDS = frozenset({"room", "body", "subject", "from_nick"})
_JID_FIELDS = frozenset({"to", "body", "subject", "type", "from_nick"})
MESSAGE_TYPES = ("normal", "chat")


class AlertRefused(Exception):
    """An alert is refused: answer C{status} with C{{"error", "text"}}."""

    def __init__(self, status: int, error: str, text: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, error, text)
        self.status = status
        self.error = error
        self.text = text
        self.headers = headers or {}


def bad_request(error: str, text: str) -> AlertRefused:
    return AlertRefused(400, error, text)


@dataclass(frozen=True)
class Alert:
    """One alert: to a room (C{room}) or to a JID (C{to})."""

    body: str
    room: str | None = None
    to: str | None = None
    subject: str | None = None
    from_nick: str | None = None
    type: str = "normal"


def _xml_text(text: str) -> bool:
    """Whether XML 1.0 can carry C{text} (no control characters but tab
    and newlines, no surrogates, no U+FFFE/U+FFFF)."""
    for c in text:
        o = ord(c)
        if o < 0x20 and c not in "\t\n\r":
            return False
        if 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            return False
    return True


def _string(data: dict, name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required or name in data:
            raise bad_request("bad_field", f"'{name}' must be a non-empty string")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_request("bad_field", f"'{name}' must be a non-empty string")
    if not _xml_text(value):
        raise bad_request("bad_field", f"'{name}' holds characters XML cannot carry")
    return value


def parse_alert(raw: bytes) -> Alert:
    """
    The alert in request body C{raw}.

    @raise AlertRefused: 400 for anything but one well-formed alert.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("bad_json", "The body must be a JSON object (UTF-8)") from None
    if not isinstance(data, dict):
        raise bad_request("bad_json", "The body must be a JSON object")
    if ("room" in data) == ("to" in data):
        raise bad_request("bad_field", "Give either 'room' or 'to'")
    allowed = _ROOM_FIELDS if "room" in data else _JID_FIELDS
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise bad_request("bad_field", f"Unknown field '{unknown[0]}'")
    body = _string(data, "body", required=True)
    assert body is not None
    subject = _string(data, "subject")
    from_nick = _string(data, "from_nick")
    if from_nick is not None and not from_nick.strip():
        raise bad_request("bad_field", "'from_nick' must be a non-empty string")
    if "room" in data:
        return Alert(body, room=_string(data, "room", required=True), subject=subject,
                     from_nick=from_nick)
    type_ = data.get("type", "normal")
    if type_ not in MESSAGE_TYPES:
        raise bad_request("bad_field", "'type' must be 'normal' or 'chat'")
    return Alert(body, to=_string(data, "to", required=True), subject=subject,
                 from_nick=from_nick, type=type_)
