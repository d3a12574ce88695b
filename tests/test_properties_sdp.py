"""Property-based tests (hypothesis) for the SDP fast paths: the parser's
and builders' constructors, and serialize's one check of the whole text."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, astuple
from dataclasses import fields as dataclass_fields
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from convergence.sip.sdp import (
    Bandwidth,
    Connection,
    JabberChat,
    MediaDescription,
    Origin,
    Repeat,
    SessionDescription,
    Timing,
    ZoneAdjustment,
)
from tests.test_properties_sip import (
    _bandwidth,
    _connection,
    _digits,
    _origin,
    _repeat,
    _sdp_token,
    _sdps,
    _timing,
)


class SerializePropertyTests(SynchronousTestCase):
    """SessionDescription.serialize."""

    @given(_sdps(), st.lists(st.tuples(
        st.integers(0, 20), st.sampled_from(["\x00", "\r", "\n", "\r\n", "x"])),
        max_size=3))
    def test_serialize_checks_every_line(
            self, sdp: SessionDescription, edits: list[tuple[int, str]]) -> None:
        """serialize() (one check of the joined text) gives the lines with
        CRLF ends, or the ValueError naming the first line with a CR, LF or
        NUL, as a check of each line would."""
        places: list[tuple[Any, str]] = [(sdp, "session_name"), (sdp, "information")]
        places += [(media, "key") for media in sdp.media]
        for where, text in edits:
            target, name = places[where % len(places)]
            setattr(target, name, (getattr(target, name) or "") + text)
            sdp.attributes.append(("x", text))
        lines = sdp.lines()
        bad = [line for line in lines if re.search("[\x00\r\n]", line)]
        if bad:
            error = self.assertRaises(ValueError, sdp.serialize)
            self.assertEqual(str(error), f"line break or NUL in SDP line {bad[0]!r}")
        else:
            self.assertEqual(sdp.serialize(),
                             "".join(line + "\r\n" for line in lines).encode("utf-8"))


def _same_object(case: SynchronousTestCase, fast: object, public: object) -> None:
    """C{fast} is what C{public} is: same class, equal, the same
    C{__dict__} (keys in order), and for a frozen class the same hash and
    still frozen."""
    case.assertIs(type(fast), type(public))
    case.assertEqual(fast, public)
    case.assertEqual(list(vars(fast).items()), list(vars(public).items()))
    case.assertEqual(repr(fast), repr(public))
    if type(public).__hash__ is not None:
        case.assertEqual(hash(fast), hash(public))
        with case.assertRaises(FrozenInstanceError):
            fast.address = "changed"  # type: ignore[attr-defined]


class SdpFastConstructionPropertyTests(SynchronousTestCase):
    """The parser's and builders' constructors in convergence.sip.sdp make
    the objects the public (dataclass) constructors make."""

    @given(_origin, _connection, _bandwidth, _repeat,
           st.builds(ZoneAdjustment, _digits, _sdp_token))
    def test_frozen(self, origin: Origin, connection: Connection,
                    bandwidth: Bandwidth, repeat: Repeat,
                    zone: ZoneAdjustment) -> None:
        """Origin, Connection, Bandwidth, Repeat, ZoneAdjustment."""
        from convergence.sip import sdp

        for fast, public in (
                (sdp._origin(*astuple(origin)), origin),
                (sdp._connection(*astuple(connection)), connection),
                (sdp._bandwidth(*astuple(bandwidth)), bandwidth),
                (sdp._repeat(*astuple(repeat)), repeat),
                (sdp._zone_adjustment(*astuple(zone)), zone)):
            _same_object(self, fast, public)

    @given(st.builds(JabberChat, _sdp_token, st.none() | _sdp_token,
                     st.none() | _sdp_token, st.integers(0, 65535),
                     st.integers(0, 9)))
    def test_jabber_chat(self, chat: JabberChat) -> None:
        """JabberChat."""
        from convergence.sip import sdp

        _same_object(self, sdp._jabber_chat(*astuple(chat)), chat)

    @given(_sdps(), _timing)
    def test_mutable(self, sdp_: SessionDescription, timing: Timing) -> None:
        """Timing, MediaDescription and SessionDescription, field by field
        (each list the one given, not a copy)."""
        from convergence.sip import sdp

        fields = [getattr(timing, f.name) for f in dataclass_fields(timing)]
        made = sdp._timing(*fields)
        _same_object(self, made, Timing(*fields))
        self.assertIs(made.repeats, timing.repeats)
        for media in sdp_.media:
            fields = [getattr(media, f.name) for f in dataclass_fields(media)]
            _same_object(self, sdp._media(*fields), MediaDescription(*fields))
        named = {f.name: getattr(sdp_, f.name) for f in dataclass_fields(sdp_)}
        made_session = sdp._session(*named.values())
        _same_object(self, made_session, SessionDescription(**named))
        self.assertIs(made_session.media, sdp_.media)

    @given(st.text(st.characters(), max_size=6)
           | st.from_regex(r"[0-9]{1,6}", fullmatch=True))
    @example("\u0663")  # ARABIC-INDIC DIGIT THREE: a digit, not [0-9]
    @example("\u00b2")  # SUPERSCRIPT TWO
    @example("12\n")
    def test_is_digits(self, text: str) -> None:
        """The parser's digit test is the regular expression [0-9]+ over
        the whole text."""
        from convergence.sip.sdp import _is_digits

        self.assertEqual(_is_digits(text),
                         re.fullmatch(r"[0-9]+", text) is not None)
