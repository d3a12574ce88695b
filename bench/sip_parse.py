"""Rough SIP parse/serialize speed: ``python bench/sip_parse.py``.

Prints numbers only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import sys
import timeit

from convergence.sip.framing import StreamFramer
from convergence.sip.message import parse_message

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776as;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, MESSAGE\r\n"
    b"Supported: timer, 100rel\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 142\r\n"
    b"\r\n" + b"v=0\r\n" + b"a=x\r\n" * 27 + b"s=-\r\n\r\n"[:2]
)


def main() -> None:
    request = parse_message(INVITE)
    cases = {
        "parse_message": lambda: parse_message(INVITE),
        "parse + contacts": lambda: parse_message(INVITE).contacts,
        "serialize": request.serialize,
        "create_response": lambda: request.create_response(180).serialize(),
        "frame (StreamFramer)": lambda: StreamFramer().feed(INVITE),
    }
    number = 20000
    for name, call in cases.items():
        seconds = min(timeit.repeat(call, number=number, repeat=3))
        sys.stdout.write(f"{name:24} {number / seconds:10.0f} /s"
                         f"  ({seconds / number * 1e6:.1f} us)\n")


if __name__ == "__main__":
    main()
