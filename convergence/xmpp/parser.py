# -*- test-case-name: tests.test_parser -*-
"""Incremental XMPP stream parser on lxml's pull parser.

One :class:`StreamParser` per direction of a connection turns bytes into
three callbacks: the stream header, each top-level element ("stanza",
including negotiation elements such as ``<starttls/>``) and the stream
close.  Stanzas are handed over detached, in a document of their own, so
the stream's tree never grows and an application may keep a stanza for as
long as it likes.

Notes on lxml/libxml2 behaviour that shaped this module:

* ``resolve_entities=False`` must not be used: lxml then deliberately
  ignores "undefined entity" errors while libxml2 stops parsing, so the
  stream silently stops producing events and the next ``feed`` starts a
  new document.  ``resolve_entities="internal"`` raises instead.
* Namespace errors (an unbound prefix, ...) are not fatal for libxml2's
  push parser; they are only visible in ``feed_error_log``.  That log
  also holds warnings that say nothing about well-formedness: a relative
  namespace name such as ``vcard-temp`` (deprecated by XML Namespaces 1.0,
  used by XMPP since its beginning), ``version='1.1'`` in the declaration,
  an unusual ``xml:space`` value.  Only what breaks well-formedness or
  namespace-well-formedness ends a stream; see :data:`_HARMLESS`.
* libxml2 stops reporting errors after the hundredth in a document
  (``XML_MAX_ERRORS``; warnings have a count of their own).  A stream that
  has used up that budget on harmless reports could then pass an unbound
  prefix unseen, so from there on each stanza is checked again on its own
  (:meth:`StreamParser._recheck`).
* Removing nodes from a tree while libxml2 is still building it is only
  safe if the root never ends with a text node libxml2 did not just
  create (libxml2 appends character data to ``parent->last`` using sizes
  cached in the parser context), so the root's text is always cleared
  after each batch of events.
* Detaching an element whose default namespace is declared on the stream
  root makes lxml invent an ``ns0:`` prefix (which RFC 6120 forbids for
  ``jabber:client`` and ``jabber:server``), and a copy made straight out
  of the stream document keeps the whole parser alive (about 11 KB per
  retained stanza).  Stanzas are therefore moved into a small holder
  element carrying the stream's namespace declarations and copied from
  there.
"""

from __future__ import annotations

import re
from typing import Callable

from lxml import etree
from twisted.logger import Logger

__all__ = ["StreamParseError", "StreamParser"]

_log = Logger()

#: Default limit for one stanza, in bytes.
DEFAULT_MAX_STANZA_SIZE = 262144

# Bytes are fed to libxml2 in pieces of at most this size.  A stanza that
# starts in the same piece as the previous one ends may have up to this
# many bytes go uncounted (see StreamParser.feed).
_PIECE_SIZE = 8192

# Bytes kept from the start of a stream to inspect the XML declaration.
_HEAD_SIZE = 256

_XML_WHITESPACE = " \t\r\n"

_EVENTS = ("start", "end", "comment", "pi")

_ENTITY_ERRORS = frozenset({
    etree.ErrorTypes.ERR_UNDECLARED_ENTITY,
    etree.ErrorTypes.WAR_UNDECLARED_ENTITY,
})

# Reports at error level that do not break namespace-well-formedness: a
# namespace name that is not a valid URI reference (an IRI such as
# ``urn:é``, a space) is only a SHOULD of XML Namespaces 1.0, not one of
# its constraints.  Every warning is harmless too, but for an undeclared
# entity (restricted XML, RFC 6120 section 11.1).
_HARMLESS = frozenset({etree.ErrorTypes.WAR_NS_URI})

# libxml2 reports at most this many errors in one document.
_LIBXML2_MAX_ERRORS = 100

_ENCODING_DECL = re.compile(
    rb"(?:\xef\xbb\xbf)?<\?xml\s[^>]*?\bencoding\s*=\s*"
    rb"(['\"])([A-Za-z][A-Za-z0-9._-]*)\1")

_UTF8_NAMES = frozenset({b"utf-8", b"utf8"})

StanzaCallback = Callable[[etree._Element], None]


class StreamParseError(Exception):
    """The peer sent something that ends the stream with a stream error.

    ``condition`` is the RFC 6120 stream error condition (``not-well-formed``,
    ``restricted-xml``, ``bad-format``, ``policy-violation``,
    ``unsupported-encoding``, ``invalid-namespace``) and ``text`` a human
    readable detail.
    """

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(condition, text)
        self.condition = condition
        self.text = text

    def __str__(self) -> str:
        if not self.text:
            return self.condition
        return f"{self.condition}: {self.text}"


def _new_pull_parser() -> etree.XMLPullParser:
    """Return a pull parser configured for restricted XMPP XML."""
    return etree.XMLPullParser(
        events=_EVENTS,
        encoding="utf-8",
        resolve_entities="internal",
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        collect_ids=False,
    )


def _fatal_entry(entries) -> etree._LogEntry | None:
    """Return the first entry that must end the stream, if any."""
    for entry in entries:
        if entry.type in _ENTITY_ERRORS:
            return entry
        if (entry.level >= etree.ErrorLevels.ERROR
                and entry.type not in _HARMLESS):
            return entry
    return None


_BOM = b"\xef\xbb\xbf"


def _may_start_xml(head: bytes) -> bool:
    """Whether ``head`` (a stream's first bytes) may begin an XML document:
    after a UTF-8 byte-order mark and whitespace, a C{<} or nothing yet."""
    if _BOM.startswith(head[:3]):
        head = head[3:] if len(head) >= 3 else b""
    rest = head.lstrip(b" \t\r\n")
    return not rest or rest[:1] == b"<"


#: Namespace errors a stanza or header parsed again on its own reports
#: again (names libxml2 could not resolve stay in the tree as written), so
#: they can be placed; others (a bad xmlns declaration, dropped from the
#: tree) cannot, and end the stream before anything of their piece.
_PLACEABLE = frozenset({
    etree.ErrorTypes.NS_ERR_UNDEFINED_NAMESPACE,
    etree.ErrorTypes.NS_ERR_QNAME,
})


def _placeable(entries) -> bool:
    """Whether every error among ``entries`` is a L{_PLACEABLE} one."""
    return all(entry.type in _PLACEABLE for entry in entries
               if _fatal_entry([entry]) is not None)


def _namespace_errors_before_fatal(entries) -> list[etree._LogEntry]:
    """The namespace entries of ``entries`` before the first fatal one."""
    earlier = []
    for entry in entries:
        if entry.domain == etree.ErrorDomains.NAMESPACE:
            earlier.append(entry)
        elif entry.level == etree.ErrorLevels.FATAL:
            break
    return earlier


def _counted_errors(entries) -> int:
    """How many of ``entries`` count towards libxml2's error budget."""
    return sum(1 for entry in entries
               if entry.level >= etree.ErrorLevels.ERROR)


def _is_whitespace(text: str) -> bool:
    """Whether ``text`` holds XML whitespace only."""
    return not text.strip(_XML_WHITESPACE)


class StreamParser:
    """Parse one XML stream incrementally and report its top-level parts.

    ``on_stream_start(root)`` is called once the stream header is complete,
    ``on_stanza(element)`` for every complete child of the root (detached,
    in its own document) and ``on_stream_end()`` when the root closes.
    Callbacks may call :meth:`reset` or :meth:`close`; the rest of the data
    given to the current :meth:`feed` is then discarded.
    """

    def __init__(
        self,
        on_stream_start: StanzaCallback,
        on_stanza: StanzaCallback,
        on_stream_end: Callable[[], None],
        max_stanza_size: int = DEFAULT_MAX_STANZA_SIZE,
    ) -> None:
        if max_stanza_size < 1:
            raise ValueError("max_stanza_size must be positive")
        self._on_stream_start = on_stream_start
        self._on_stanza = on_stanza
        self._on_stream_end = on_stream_end
        self.max_stanza_size = max_stanza_size
        self._parser: etree.XMLPullParser | None = None
        self.reset()

    def reset(self) -> None:
        """Start over with a fresh parser, e.g. for a restarted stream."""
        self._parser = _new_pull_parser()
        self._root: etree._Element | None = None
        self._holder: etree._Element | None = None
        self._depth = 0
        self._pending = 0
        self._head = b""
        # Entries of the parser's error log already looked at, and how
        # many of them were errors libxml2 counts (see _recheck).
        self._log_seen = 0
        self._errors_seen = 0

    def close(self) -> None:
        """Drop the parser; later calls to :meth:`feed` are ignored."""
        self._parser = None
        self._root = None
        self._holder = None
        self._head = b""

    @property
    def closed(self) -> bool:
        """Whether the parser was closed (explicitly or by an error)."""
        return self._parser is None

    def feed(self, data: bytes) -> None:
        """Parse ``data`` and run the callbacks for what it completes.

        Raises :class:`StreamParseError` (and closes the parser) on input
        that must end the stream.  The size limit counts the bytes since
        the last complete top-level element; it is exact for a stanza that
        starts a piece of input and counts a stanza that starts in the same
        piece as its predecessor ends from the last ``>`` of that piece, so
        such a stanza can exceed the limit by at most 8 KiB.
        """
        parser = self._parser
        if parser is None or not data:
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        size = len(data)
        limit = self.max_stanza_size
        if size <= _PIECE_SIZE and self._pending + size <= limit:
            self._feed_piece(parser, data)
            return
        pos = 0
        while pos < size and self._parser is parser:
            room = limit - self._pending
            if room <= 0:
                self._fail("policy-violation",
                           f"stanza larger than {limit} bytes")
            end = pos + min(room, _PIECE_SIZE, size - pos)
            self._feed_piece(parser, data[pos:end])
            pos = end

    def _feed_piece(self, parser: etree.XMLPullParser, piece: bytes) -> None:
        """Feed one piece that fits the size budget and dispatch events."""
        self._pending += len(piece)
        nul = piece.find(b"\x00")
        if nul >= 0:
            # Never XML. libxml2's push parser, given one in an XML
            # declaration or a CDATA section cut across pieces, waits
            # silently for ever: parse what precedes it, then end here.
            if nul:
                self._feed_piece(parser, piece[:nul])
                if self._parser is not parser:
                    return
            if self._root is None and len(self._head) < _HEAD_SIZE:
                self._head += piece[nul:nul + _HEAD_SIZE - len(self._head)]
            self._fail(*self._classify(0, "NUL character", piece))
        if self._root is None and len(self._head) < _HEAD_SIZE:
            self._head += piece[:_HEAD_SIZE - len(self._head)]
            if not _may_start_xml(self._head):
                # libxml2 waits for four bytes first, and then not always
                self._fail(*self._classify(0, "Start tag expected, '<' not found", piece))
        try:
            parser.feed(piece)
        except etree.XMLSyntaxError as exc:
            # A namespace error before the syntax error ends the stream
            # first, as it does when the piece is cut between the two; one
            # reported after it (libxml2 goes on a little) is its echo.
            earlier = _namespace_errors_before_fatal(
                list(parser.feed_error_log)[self._log_seen:])
            error = _fatal_entry(earlier)
            if error is not None and not _placeable(earlier):
                self._fail(*self._classify(error.type, error.message, piece))
            # Deliver what preceded the errors, as a split feed would have.
            self._dispatch(parser, piece, alone=error is not None)
            if self._parser is parser:
                if error is not None:
                    self._fail(*self._classify(error.type, error.message, piece))
                self._fail(*self._classify(exc.code, exc.msg or str(exc),
                                           piece))
            return
        log = parser.feed_error_log
        error = None
        if len(log) > self._log_seen:
            error = self._check_log(log, piece)
        self._dispatch(parser, piece, alone=error is not None)
        if error is not None and self._parser is parser:
            self._fail(*self._classify(error.type, error.message, piece))

    def _check_log(self, log: etree._ListErrorLog,
                   piece: bytes) -> etree._LogEntry | None:
        """End the stream for new fatal entries of ``log``; skip the rest.

        Namespace errors only (libxml2 parses on) are returned instead:
        what came before them is delivered first."""
        entries = list(log)[self._log_seen:]
        self._log_seen += len(entries)
        error = _fatal_entry(entries)
        if error is not None and not _placeable(entries):
            self._fail(*self._classify(error.type, error.message, piece))
        self._errors_seen += _counted_errors(entries)
        return error

    def _classify(self, code: int, message: str,
                  piece: bytes) -> tuple[str, str]:
        """Map a libxml2 error to a stream error condition and text."""
        if code in _ENTITY_ERRORS:
            return "restricted-xml", message
        if b"<!DOCTYPE" in piece or b"<!ENTITY" in piece:
            return "restricted-xml", "DTDs are not allowed"
        head = self._head
        if self._root is None and (
                head[:2] in (b"\xfe\xff", b"\xff\xfe")
                or b"\x00" in head[:4]):
            return "unsupported-encoding", "streams must be UTF-8"
        return "not-well-formed", message

    def _fail(self, condition: str, text: str) -> None:
        """Close the parser and raise a stream error."""
        self.close()
        _log.debug("XML stream error {condition}: {text}",
                   condition=condition, text=text)
        raise StreamParseError(condition, text)

    def _dispatch(self, parser: etree.XMLPullParser, piece: bytes,
                  alone: bool = False) -> None:
        """Run the callbacks for the events produced by the last piece.

        With ``alone`` (a namespace error in the piece, place unknown), the
        header and each stanza are parsed again on their own before they
        are delivered: the first that holds the error ends the stream."""
        root = self._root
        depth = self._depth
        boundary = False
        try:
            for action, element in parser.read_events():
                if action == "end":
                    depth -= 1
                    if depth == 1:
                        boundary = True
                        self._depth = depth
                        stanza, bad_tail = self._detach(root, element)
                        if alone or self._errors_seen >= _LIBXML2_MAX_ERRORS:
                            self._recheck(stanza)
                        self._on_stanza(stanza)
                        if self._parser is not parser:
                            return
                        if bad_tail:
                            self._fail("bad-format",
                                       "text outside stanzas")
                    elif depth == 0:
                        boundary = True
                        self._depth = depth
                        self._check_root_text(root)
                        self._on_stream_end()
                        if self._parser is not parser:
                            return
                elif action == "start":
                    depth += 1
                    if depth == 1:
                        boundary = True
                        self._depth = depth
                        self._root = root = element
                        if alone:
                            self._recheck_header(element)
                        self._start_stream(element)
                        if self._parser is not parser:
                            return
                else:
                    self._fail("restricted-xml",
                               "comments and processing instructions "
                               "are not allowed")
            self._depth = depth
            had_text = self._check_root_text(root)
        except BaseException:
            if self._parser is parser:
                self._depth = depth
                if root is not None:
                    root.text = None
            raise
        if boundary:
            self._pending = len(piece) - piece.rfind(b">") - 1
        elif had_text and depth == 1 and piece.isspace():
            # libxml2 reported whitespace at the top level, so no tag is
            # half-read: keepalives do not count towards the next stanza.
            self._pending = 0

    def _start_stream(self, root: etree._Element) -> None:
        """Check the prologue and announce the stream header."""
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            self._fail("restricted-xml", "DTDs are not allowed")
        match = _ENCODING_DECL.match(self._head)
        if match is not None and match.group(2).lower() not in _UTF8_NAMES:
            self._fail("unsupported-encoding", "streams must be UTF-8")
        self._head = b""
        try:
            self._holder = etree.Element("holder", nsmap=root.nsmap)
        except ValueError as exc:
            self._fail("invalid-namespace", str(exc))
        self._on_stream_start(root)

    def _detach(self, root: etree._Element,
                element: etree._Element) -> tuple[etree._Element, bool]:
        """Return a standalone copy of ``element`` and drop it from the tree.

        The flag tells whether non-whitespace text follows the element.
        """
        self._check_root_text(root)
        tail = element.tail
        bad_tail = False
        if tail is not None:
            bad_tail = not _is_whitespace(tail)
            element.tail = None
        holder = self._holder
        holder.append(element)
        stanza = element.__copy__()  # lxml copies the whole subtree
        holder.remove(element)
        return stanza, bad_tail

    def _recheck(self, stanza: etree._Element) -> None:
        """Parse ``stanza`` again alone, for errors libxml2 stopped reporting.

        Only runs once a stream has had libxml2's budget of reports that
        were let through, so an ordinary stream never pays for it.
        """
        # recover=True: lxml would raise for the harmless reports too; what
        # is fatal is read from the log instead.
        parser = etree.XMLParser(resolve_entities=False, no_network=True,
                                 load_dtd=False, recover=True,
                                 collect_ids=False)
        etree.fromstring(etree.tostring(stanza), parser)
        entries = list(parser.error_log)
        error = _fatal_entry(entries)
        if error is not None:
            self._fail("not-well-formed", error.message)
        if _counted_errors(entries) >= _LIBXML2_MAX_ERRORS:
            self._fail("policy-violation",
                       "too many namespace names that are not URIs")

    def _recheck_header(self, root: etree._Element) -> None:
        """L{_recheck} for the stream header: its start tag alone."""
        try:
            alone = etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)
        except ValueError as exc:  # a name libxml2 could not resolve
            self._fail("not-well-formed", str(exc))
        self._recheck(alone)

    def _check_root_text(self, root: etree._Element | None) -> bool:
        """Clear text at the top level; fail unless it is whitespace.

        Returns whether there was any.
        """
        if root is None:
            return False
        text = root.text
        if text is None:
            return False
        root.text = None
        if not _is_whitespace(text):
            self._fail("bad-format", "text outside stanzas")
        return True
