"""Tests for convergence.sip.framing."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.sip.framing import PING, FramingError, StreamFramer
from convergence.sip.message import parse_message


def message(call_id: str, body: bytes = b"", compact: bool = False) -> bytes:
    """A small OPTIONS request with ``body``."""
    length = "l" if compact else "Content-Length"
    return (
        f"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK{call_id}\r\n"
        f"Max-Forwards: 70\r\n"
        f"To: <sip:bob@example.com>\r\n"
        f"From: <sip:alice@example.com>;tag=f\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"{length}: {len(body)}\r\n"
        f"\r\n").encode() + body


ONE = message("one", b"v=0\r\n\r\n")
TWO = message("two", compact=True)
THREE = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP c;branch=z9hG4bK3\r\n"
         b"To: <sip:b@e>;tag=t\r\nFrom: <sip:a@e>;tag=f\r\nCall-ID: three\r\n"
         b"CSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\n\x00\r\n")


class FramingTests(SynchronousTestCase):
    """Complete messages come out whatever the chunking."""

    def test_whole(self) -> None:
        """One message in one chunk comes out exactly."""
        self.assertEqual(StreamFramer().feed(ONE), [ONE])

    def test_every_split(self) -> None:
        """Splitting a stream of messages at any byte boundary works."""
        stream = ONE + TWO + THREE
        for cut in range(len(stream) + 1):
            framer = StreamFramer()
            out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
            self.assertEqual(out, [ONE, TWO, THREE], cut)
            self.assertEqual(framer.buffered, 0)

    def test_byte_by_byte(self) -> None:
        """Feeding one byte at a time works."""
        framer = StreamFramer()
        out = []
        for i in range(len(ONE + THREE)):
            out += framer.feed((ONE + THREE)[i:i + 1])
        self.assertEqual(out, [ONE, THREE])

    def test_several_in_one_chunk(self) -> None:
        """Several messages in one read all come out, in order."""
        framer = StreamFramer()
        self.assertEqual(framer.feed(ONE + TWO + THREE + ONE[:10]),
                         [ONE, TWO, THREE])
        self.assertEqual(framer.feed(ONE[10:]), [ONE])

    def test_parses(self) -> None:
        """What comes out is what parse_message wants."""
        (data,) = StreamFramer().feed(b"\r\n" + ONE)
        self.assertEqual(parse_message(data).body, b"v=0\r\n\r\n")

    def test_bare_lf(self) -> None:
        """A header block ended by bare LFs is found too."""
        data = ONE.replace(b"\r\n\r\nv=0", b"\n\nv=0")
        self.assertEqual(StreamFramer().feed(data), [data])


    def test_bare_lf_blank_line_before_crlf_one(self) -> None:
        """An LF LF blank line just before an LF CR LF ends the headers
        there (the body starts with the CR LF)."""
        data = ONE.replace(b"Content-Length: 7\r\n\r\nv=0\r\n\r\n",
                           b"Content-Length: 5\n\n\r\nv=\n")
        self.assertEqual(StreamFramer().feed(data + ONE), [data, ONE])
        self.assertEqual(parse_message(data).body, b"\r\nv=\n")

    def test_many_in_one_chunk_and_a_tail(self) -> None:
        """A read holding hundreds of messages and the start of the next:
        every message comes out whole, and only the tail is kept."""
        framer = StreamFramer()
        messages = [message(f"m{n}", b"x" * (n % 7)) for n in range(300)]
        stream = b"".join(messages)
        self.assertEqual(framer.feed(stream + messages[0][:30]), messages)
        self.assertEqual(framer.buffered, 30)
        self.assertEqual(framer.feed(messages[0][30:]), [messages[0]])
        self.assertEqual(framer.buffered, 0)


class KeepaliveTests(SynchronousTestCase):
    """RFC 5626 CRLF keepalives between messages."""

    def test_ping(self) -> None:
        """A double CRLF is reported as a ping."""
        self.assertEqual(StreamFramer().feed(b"\r\n\r\n"), [PING])

    def test_split_ping(self) -> None:
        """A ping split across reads is still one ping."""
        framer = StreamFramer()
        self.assertEqual(framer.feed(b"\r\n"), [])
        self.assertEqual(framer.feed(b"\r"), [])
        self.assertEqual(framer.feed(b"\n"), [PING])

    def test_pong_skipped(self) -> None:
        """A single CRLF (a pong) before a message is dropped."""
        self.assertEqual(StreamFramer().feed(b"\r\n" + ONE), [ONE])

    def test_pings_between_messages(self) -> None:
        """Pings keep their place among messages."""
        framer = StreamFramer()
        self.assertEqual(framer.feed(ONE + PING + PING + TWO),
                         [ONE, PING, PING, TWO])


class LimitTests(SynchronousTestCase):
    """Oversize, missing lengths and garbage end the stream."""

    def test_headers_too_large(self) -> None:
        """Headers that never end past the limit fail."""
        framer = StreamFramer(max_message_size=300)
        framer.feed(ONE[:100])
        error = self.assertRaises(FramingError, framer.feed,
                                  b"X-Pad: " + b"a" * 400)
        self.assertEqual(error.reason, "Message too large")

    def test_long_first_line(self) -> None:
        """A start line trickling in byte by byte hits the limit."""
        framer = StreamFramer(max_message_size=2000)
        framer.feed(b"OPTIONS sip:")
        with self.assertRaises(FramingError) as caught:
            for _ in range(3000):
                framer.feed(b"a")
        self.assertEqual(caught.exception.reason, "Message too large")

    def test_body_too_large(self) -> None:
        """A Content-Length past the limit fails before the body comes."""
        framer = StreamFramer(max_message_size=1000)
        data = message("big", b"x" * 2000)
        head = data[:data.index(b"\r\n\r\n") + 4]
        error = self.assertRaises(FramingError, framer.feed, head)
        self.assertEqual(error.reason, "Message too large")

    def test_buffer_bounded(self) -> None:
        """Between calls, never more than max_message_size is held."""
        framer = StreamFramer(max_message_size=len(ONE))
        for i in range(0, len(ONE) * 3, 7):
            framer.feed((ONE * 3)[i:i + 7])
            self.assertLessEqual(framer.buffered, len(ONE))

    def test_missing_length(self) -> None:
        """Content-Length is mandatory on a stream."""
        data = ONE.replace(b"Content-Length: 7\r\n", b"")
        error = self.assertRaises(FramingError, StreamFramer().feed, data)
        self.assertEqual(error.reason, "Missing Content-Length")

    def test_bad_length(self) -> None:
        """Content-Length must be a number, the same on every line."""
        for bad in (b"Content-Length: -1\r\n", b"Content-Length: 7x\r\n",
                    b"Content-Length: 7\r\nl: 8\r\n"):
            data = ONE.replace(b"Content-Length: 7\r\n", bad)
            error = self.assertRaises(FramingError, StreamFramer().feed, data)
            self.assertEqual(error.reason, "Bad Content-Length")

    def test_garbage(self) -> None:
        """Non-SIP bytes fail as soon as they are recognisable."""
        for data in (b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00",
                     b"hello world\n"):
            error = self.assertRaises(FramingError, StreamFramer().feed, data)
            self.assertEqual(error.reason, "Not a SIP message")

    def test_dead_after_error(self) -> None:
        """After an error the framer refuses more data."""
        framer = StreamFramer()
        self.assertRaises(FramingError, framer.feed, b"\x16\x03")
        self.assertRaises(FramingError, framer.feed, ONE)
        self.assertEqual(framer.buffered, 0)

    def test_short_content_length_cuts_body(self) -> None:
        """A Content-Length shorter than the body ends the message there:
        the bytes after it are the next message (RFC 3261 18.3)."""
        short = ONE.replace(b"Content-Length: 7", b"Content-Length: 3")
        framer = StreamFramer()
        first, second = framer.feed(short[:-4] + TWO)
        self.assertEqual(parse_message(first).body, b"v=0")
        self.assertEqual(parse_message(second).call_id, "two")
        self.assertIsNone(framer.error)

    def test_garbage_after_short_body(self) -> None:
        """Garbage after a cut body: the message before it comes out, the
        error waits in .error and the next feed raises it."""
        short = ONE.replace(b"Content-Length: 7", b"Content-Length: 3")
        framer = StreamFramer()
        [first] = framer.feed(short[:-4] + b"\x16\x03garbage")
        self.assertEqual(parse_message(first).call_id, "one")
        self.assertEqual(framer.error, "Not a SIP message")
        error = self.assertRaises(FramingError, framer.feed, TWO)
        self.assertEqual(error.reason, "Not a SIP message")
