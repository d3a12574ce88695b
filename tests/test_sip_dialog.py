"""Dialogs (RFC 3261 section 12): creation, route sets, CSeq, target refresh."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.sip.dialog import CONFIRMED, EARLY, CSeqOutOfOrder, Dialog
from convergence.sip.message import parse_message

INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "From: Alice <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: call-1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:alice@10.0.0.1:5060>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def message(text: str):
    return parse_message(text.encode())


class UasDialogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.invite = message(INVITE)
        response = self.invite.create_response(200)
        response.set_to_tag("b1")
        self.dialog = Dialog.for_uas(self.invite, response)

    def test_creation(self) -> None:
        """A UAS dialog takes its route set in order and the caller's Contact."""
        d = self.dialog
        self.assertEqual(d.id, ("call-1", "b1", "a1"))
        self.assertEqual(d.state, CONFIRMED)
        self.assertEqual(d.route_set, ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        self.assertEqual(str(d.remote_target), "sip:alice@10.0.0.1:5060")
        self.assertEqual(d.remote_seq, 10)

    def test_loose_routing_bye(self) -> None:
        """A BYE goes to the remote target with the route set as Route headers."""
        bye = self.dialog.create_request("BYE", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb")
        self.assertEqual(str(bye.uri), "sip:alice@10.0.0.1:5060")
        self.assertEqual([str(r.uri) for r in bye.routes],
                         ["sip:p1.example.com;lr", "sip:p2.example.com;lr"])
        self.assertEqual(bye.from_.tag, "b1")
        self.assertEqual(bye.to.tag, "a1")
        self.assertEqual(bye.cseq[1], "BYE")
        second = self.dialog.create_request("INFO", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKc")
        self.assertEqual(second.cseq[0], bye.cseq[0] + 1)

    def test_cseq_order_and_target_refresh(self) -> None:
        """Older CSeqs are refused; a re-INVITE moves the remote target."""
        reinvite = message(INVITE.replace("CSeq: 10", "CSeq: 11")
                           .replace("10.0.0.1:5060>", "10.0.0.9:5070>")
                           .replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=b1"))
        self.dialog.receive_request(reinvite)
        self.assertEqual(str(self.dialog.remote_target), "sip:alice@10.0.0.9:5070")
        old = message(INVITE.replace("CSeq: 10 INVITE", "CSeq: 9 INFO")
                      .replace("INVITE sip:", "INFO sip:"))
        with self.assertRaises(CSeqOutOfOrder):
            self.dialog.receive_request(old)


class UacDialogTests(SynchronousTestCase):
    def test_uac_route_set_reversed_and_strict_routing(self) -> None:
        """A UAC reverses Record-Route; a strict router becomes the Request-URI."""
        invite = message(INVITE.replace("Record-Route: <sip:p1.example.com;lr>\r\n", "")
                         .replace("Record-Route: <sip:p2.example.com;lr>\r\n", ""))
        response = message(
            "SIP/2.0 180 Ringing\r\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\n"
            "Record-Route: <sip:strict.example.com>\r\n"
            "Record-Route: <sip:loose.example.com;lr>\r\n"
            "From: Alice <sip:alice@example.com>;tag=a1\r\n"
            "To: <sip:bob@example.com>;tag=b9\r\n"
            "Call-ID: call-1\r\nCSeq: 10 INVITE\r\n"
            "Contact: <sip:bob@10.0.0.5>\r\nContent-Length: 0\r\n\r\n")
        d = Dialog.for_uac(invite, response)
        self.assertEqual(d.state, EARLY)
        self.assertEqual(d.id, ("call-1", "a1", "b9"))
        self.assertEqual(d.route_set, ["<sip:loose.example.com;lr>", "<sip:strict.example.com>"])
        d.route_set = ["<sip:strict.example.com>"]
        bye = d.create_request("BYE", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKz")
        self.assertEqual(str(bye.uri), "sip:strict.example.com")
        self.assertEqual([str(r.uri) for r in bye.routes], ["sip:bob@10.0.0.5"])
        ack = d.create_request("ACK", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKy")
        self.assertEqual(ack.cseq, (10, "ACK"))
