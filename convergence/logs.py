# -*- test-case-name: tests.test_logs -*-
"""
The server's log observers (C{[log]}, C{--log-format}, C{--log-level}):
twistd's text lines or one JSON object per line, dropping events below the
configured level, written where twistd would write its log (standard
output with C{-n}, else C{--logfile} or C{twistd.log}).

The JSON lines are L{twisted.logger.eventAsJSON} (every field of the event,
C{log_failure} as structured data; fields JSON has no type for, such as a
JID, as their text) plus C{level} and C{text}, the event's level name and
formatted message, for tools that want plain strings.
"""

from __future__ import annotations

import sys
from typing import IO, Any, Callable

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    PredicateResult,
    eventAsJSON,
    eventAsText,
    textFileLogObserver,
)

#: The levels from C{[log] level} up, by name.
_ORDER = ("debug", "info", "warn", "error", "critical")


def _levels_from(name: str) -> frozenset[LogLevel]:
    return frozenset(LogLevel.levelWithName(n) for n in _ORDER[_ORDER.index(name):])


def level_predicate(name: str) -> Callable[[dict[str, Any]], PredicateResult]:
    """A filter predicate passing events at level C{name} and above."""
    wanted = _levels_from(name)
    yes, no = PredicateResult.yes, PredicateResult.no

    def predicate(event: dict[str, Any]) -> PredicateResult:
        return yes if event.get("log_level", LogLevel.info) in wanted else no

    return predicate


_JSON_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


def json_line(event: dict[str, Any]) -> str:
    """One event as a line of JSON (with C{level} and C{text} added)."""
    record = dict(event)
    # the Logger and the object that logged: not data, and not serialisable
    record.pop("log_logger", None)
    record.pop("log_source", None)
    # the event's own fields as text when JSON has no type for them (a
    # JID, an address): eventAsJSON would write {"unpersistable": true}
    for key, value in event.items():
        if not key.startswith("log_") and not isinstance(value, _JSON_TYPES):
            record[key] = str(value)
    record["level"] = getattr(event.get("log_level"), "name", None)
    record["text"] = eventAsText(event, includeTraceback=True, includeTimestamp=False,
                                 includeSystem=False)
    return eventAsJSON(record) + "\n"


def json_file_observer(out: IO[str]) -> FileLogObserver:
    """JSON lines to C{out}, one per event, flushed after each."""
    return FileLogObserver(out, json_line)


def make_observer(out: IO[str], format: str = "text", level: str = "info") -> ILogObserver:
    """The observer for C{[log]}: C{format} (text or json) at C{level} and up."""
    inner = json_file_observer(out) if format == "json" else textFileLogObserver(out)
    return FilteringLogObserver(inner, [level_predicate(level)])


def twistd_log_file(twistd_options: Any) -> IO[str]:
    """Where twistd would log (its C{_getLogObserver}): standard output
    with C{-n} and no C{--logfile} (or C{--logfile -}), else the file."""
    from twisted.python import logfile

    name = twistd_options.get("logfile") if twistd_options is not None else None
    nodaemon = bool(twistd_options.get("nodaemon")) if twistd_options is not None else True
    if name == "-" or (nodaemon and not name):
        return sys.stdout
    return logfile.LogFile.fromFullPath(name or "twistd.log")
