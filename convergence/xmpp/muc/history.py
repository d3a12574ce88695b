# -*- test-case-name: tests.test_muc_history -*-
"""
Discussion history (XEP-0045 section 7.2.14): the last messages of a room
and the part of them a joining occupant asks for with C{maxstanzas},
C{maxchars}, C{seconds} and C{since}.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from convergence.xmpp.im.offline import stamp
from convergence.xmpp.muc.ns import DELAY, MUC

__all__ = ["History", "HistoryRequest", "parse_request"]


@dataclass(frozen=True)
class HistoryRequest:
    """What a joining occupant asked for (C{None}: no limit of that kind)."""

    maxstanzas: int | None = None
    maxchars: int | None = None
    seconds: int | None = None
    since: float | None = None


def _parse_time(text: str) -> float | None:
    """An XEP-0082 DateTime, or C{None}."""
    try:
        moment = datetime.fromisoformat(text)  # 3.11 reads "Z" too
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_request(x: etree._Element | None) -> HistoryRequest:
    """The C{<history/>} of a join's C{<x xmlns='…muc'/>}; bad values are ignored."""
    history = x.find(f"{{{MUC}}}history") if x is not None else None
    if history is None:
        return HistoryRequest()
    numbers: dict[str, int | None] = {}
    for name in ("maxstanzas", "maxchars", "seconds"):
        text = history.get(name)
        numbers[name] = int(text) if text is not None and text.isdigit() else None
    since = history.get("since")
    return HistoryRequest(numbers["maxstanzas"], numbers["maxchars"], numbers["seconds"],
                          _parse_time(since) if since else None)


class History:
    """The last messages of one room, oldest first."""

    def __init__(self, length: int) -> None:
        #: (time, size in characters, message from the room/nick without 'to')
        self._entries: deque[tuple[float, int, etree._Element]] = deque(maxlen=length or None)
        self.length = length

    def resize(self, length: int) -> None:
        self.length = length
        self._entries = deque(self._entries, maxlen=length or None) if length else deque()

    def add(self, message: etree._Element, now: float) -> None:
        if not self.length:
            return
        kept = copy.deepcopy(message)
        kept.attrib.pop("to", None)
        self._entries.append((now, len(etree.tostring(kept, encoding="unicode")), kept))

    def __len__(self) -> int:
        return len(self._entries)

    def select(self, request: HistoryRequest, now: float, limit: int) -> list[tuple[float, etree._Element]]:
        """The entries to send, oldest first, within every limit of the
        request and of the room (C{limit} messages)."""
        out: list[tuple[float, etree._Element]] = []
        chars = 0
        maxstanzas = limit if request.maxstanzas is None else min(limit, request.maxstanzas)
        for when, size, message in reversed(self._entries):
            if len(out) >= maxstanzas:
                break
            if request.seconds is not None and when < now - request.seconds:
                break
            if request.since is not None and when <= request.since:
                break
            if request.maxchars is not None and chars + size > request.maxchars:
                break
            chars += size
            out.append((when, message))
        out.reverse()
        return out

    @staticmethod
    def delayed(message: etree._Element, when: float, room: str, to: str) -> etree._Element:
        """A history message as sent: to the occupant, with its XEP-0203 delay."""
        out = copy.deepcopy(message)
        out.set("to", to)
        etree.SubElement(out, f"{{{DELAY}}}delay", nsmap={None: DELAY},
                         stamp=stamp(when)).set("from", room)
        return out
