"""Rough SIP parse/serialize speed: ``python bench/sip_parse.py``.

    python bench/sip_parse.py          # the SIP message parser and serializer
    python bench/sip_parse.py --sdp    # one call's SDP work, as the chatline app does it

Prints numbers only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from convergence.sip import sdp
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


def message_cases() -> dict[str, Callable[[], object]]:
    """The SIP message parser and serializer."""
    request = parse_message(INVITE)
    return {
        "parse_message": lambda: parse_message(INVITE),
        "parse + contacts": lambda: parse_message(INVITE).contacts,
        "serialize": request.serialize,
        "create_response": lambda: request.create_response(180).serialize(),
        "frame (StreamFramer)": lambda: StreamFramer().feed(INVITE),
    }


def chatline_answer(offer: sdp.SessionDescription) -> sdp.SessionDescription:
    """The SDP work of C{apps.chatline.ChatlineServlet.do_invite}."""
    chat = sdp.jabber_chats(offer)[0]
    address = "127.0.0.1"
    answer = sdp.OfferAnswer(offer, sdp.Origin.create(address),
                             sdp.Connection.for_address(address))
    for index in range(len(offer.media)):
        if index == chat.index:
            answer.modify(index, sdp.answer_chat(chat, "chatline@127.0.0.1"))
        else:
            answer.decline(index)
    return answer.build()


def sdp_cases() -> dict[str, Callable[[], object]]:
    """One call's SDP: the offer of bench/sip_callpath.py parsed, answered
    and the answer serialized."""
    from bench.sip_callpath import SDP

    data = SDP.format(n=10 ** 6).encode()
    offer = sdp.parse_sdp(data)
    answer = chatline_answer(offer)
    return {
        "parse_sdp (offer)": lambda: sdp.parse_sdp(data),
        "chatline answer": lambda: chatline_answer(offer),
        "serialize (answer)": answer.serialize,
        "all three": lambda: chatline_answer(sdp.parse_sdp(data)).serialize(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdp", action="store_true",
                        help="time one call's SDP work instead of SIP messages")
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args(argv)
    cases = sdp_cases() if args.sdp else message_cases()
    for name, call in cases.items():
        seconds = min(timeit.repeat(call, number=args.number, repeat=5))
        sys.stdout.write(f"{name:24} {args.number / seconds:10.0f} /s"
                         f"  ({seconds / args.number * 1e6:.1f} us)\n")


if __name__ == "__main__":
    main()
