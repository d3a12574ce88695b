"""
Guest logins (convergence/xmpp/guests.py): one-time, short-lived tokens
for addresses that are no account, and SASL PLAIN with them.
"""

from __future__ import annotations

import base64

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from convergence.xmpp.guests import PREFIX, GuestLogins
from convergence.xmpp.jid import JID
from tests.xmpphelpers import HEADER, Client, make_server


class GuestLoginsTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.guests = GuestLogins(self.clock, lifetime=60.0)

    def test_new_guest_address(self) -> None:
        jid, token = self.guests.issue("localhost")
        self.assertTrue(jid.user.startswith(PREFIX))
        self.assertEqual((jid.host, jid.resource), ("localhost", None))
        self.assertGreaterEqual(len(token), 32)
        other, other_token = self.guests.issue("localhost")
        self.assertNotEqual(jid, other)
        self.assertNotEqual(token, other_token)

    def test_one_time(self) -> None:
        jid, token = self.guests.issue("localhost")
        self.assertFalse(self.guests.redeem(jid, token + "x"))
        self.assertTrue(self.guests.redeem(JID.parse(f"{jid}/web"), token))
        self.assertFalse(self.guests.redeem(jid, token))
        self.assertTrue(self.guests.is_guest(jid))

    def test_expires(self) -> None:
        jid, token = self.guests.issue("localhost")
        self.clock.advance(60.5)
        self.assertFalse(self.guests.redeem(jid, token))

    def test_reissue_voids_the_previous_token(self) -> None:
        jid, first = self.guests.issue("localhost")
        same, second = self.guests.issue("localhost", jid)
        self.assertEqual(same, jid)
        self.assertFalse(self.guests.redeem(jid, first))
        self.assertTrue(self.guests.redeem(jid, second))

    def test_only_own_guests_reissued(self) -> None:
        with self.assertRaises(KeyError):
            self.guests.issue("localhost", JID.parse("alice@localhost"))

    def test_revoke(self) -> None:
        jid, token = self.guests.issue("localhost")
        self.guests.revoke(jid)
        self.assertFalse(self.guests.redeem(jid, token))
        self.assertFalse(self.guests.is_guest(jid))
        self.assertEqual(len(self.guests), 0)
        with self.assertRaises(KeyError):
            self.guests.issue("localhost", jid)

    def test_revoked_while_connected(self) -> None:
        """A guest revoked with streams up stays a guest (no tokens) until
        its last stream is gone."""
        jid, token = self.guests.issue("localhost")
        self.guests.revoke(jid, connected=True)
        self.assertFalse(self.guests.redeem(jid, token))
        self.assertTrue(self.guests.is_guest(jid))
        with self.assertRaises(KeyError):
            self.guests.issue("localhost", jid)
        self.guests.forget(jid)
        self.assertFalse(self.guests.is_guest(jid))
        self.assertEqual(len(self.guests), 0)

    def test_revoking_a_stranger(self) -> None:
        self.guests.revoke(JID.parse("alice@localhost"), connected=True)
        self.assertFalse(self.guests.is_guest(JID.parse("alice@localhost")))


def plain(user: str, password: str) -> str:
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"


class GuestSaslTests(TestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())

    def attempt(self, user: str, password: str) -> str:
        client = Client(self.server)
        client.send(HEADER)
        client.read()
        client.send(plain(user, password))
        self.clock.advance(2)  # failures are answered after auth_failure_delay
        return [e.tag.split("}")[1] for e in client.read()][-1]

    def test_guest_logs_in_once_and_binds(self) -> None:
        jid, token = self.server.guests.issue("localhost")
        client = Client(self.server)
        full = client.login(jid.user, token, resource="web")
        self.assertEqual(full, f"{jid}/web")
        self.assertEqual(self.attempt(jid.user, token), "failure")

    def test_wrong_or_expired_token(self) -> None:
        jid, token = self.server.guests.issue("localhost")
        self.assertEqual(self.attempt(jid.user, "not-the-token"), "failure")
        self.clock.advance(self.server.config.guest_token_lifetime + 1)
        self.assertEqual(self.attempt(jid.user, token), "failure")

    def test_accounts_are_never_guests(self) -> None:
        """An account's stored credentials decide, whatever the guest table holds."""
        self.server.guests._guests[JID.parse("alice@localhost")] = None
        jid, token = self.server.guests.issue("localhost")
        self.server.guests._guests[JID.parse("alice@localhost")] = \
            self.server.guests._guests.pop(jid)
        self.assertEqual(self.attempt("alice", token), "failure")
        self.assertEqual(self.attempt("alice", "secret"), "success")

    def test_revoked(self) -> None:
        jid, token = self.server.guests.issue("localhost")
        self.server.guests.revoke(jid)
        self.assertEqual(self.attempt(jid.user, token), "failure")

    def test_no_archive_no_last_logout(self) -> None:
        """A guest's chat is archived for its account peer only, and its
        logout is not recorded; it is forgotten once its stream is gone."""
        jid, token = self.server.guests.issue("localhost")
        guest = Client(self.server)
        guest.login(jid.user, token, resource="web")
        guest.available()
        alice = Client(self.server)
        alice.login()
        alice.available()
        guest.send("<message to='alice@localhost/phone' type='chat' id='g1'>"
                   "<body>hello from a guest</body></message>")
        [message] = [e for e in alice.read() if e.tag == "{jabber:client}message"]
        self.assertEqual(message.findtext("{jabber:client}body"), "hello from a guest")
        alice.send(f"<message to='{jid}/web' type='chat' id='a1'><body>hi</body></message>")
        self.assertEqual(guest.expect("message").findtext("{jabber:client}body"), "hi")
        archive = self.server.archive_store
        self.assertIsNone(archive.bounds(jid.user, "localhost"))
        first, last = archive.bounds("alice", "localhost")
        self.assertNotEqual(first.id, last.id)  # both directions, in alice's archive
        # the conversation ends (revoked with its stream up), then the stream goes
        self.server.guests.revoke(jid, connected=True)
        guest.stream.connectionLost(None)
        self.assertIsNone(self.server.im_store.last_logout(jid.user, "localhost"))
        self.assertFalse(self.server.guests.is_guest(jid))
        self.assertEqual(len(self.server.guests), 0)


    def test_registration_cannot_take_a_guest_address(self) -> None:
        """In-band registration (XEP-0077) of a live guest's name: conflict,
        so nobody logs in as the guest with a password of their own."""
        from tests.test_registration import Unauthenticated, condition, query

        server, _ = make_server(self.mktemp(), allow_registration=True)
        jid, _token = server.guests.issue("localhost")
        client = Unauthenticated(server)
        client.open()
        reply = client.iq("set", query(jid.user, "hijack"))
        self.assertEqual(condition(reply), "conflict")
        other = Unauthenticated(server)
        other.open()
        self.assertIsNone(condition(other.iq("set", query("guest-but-no-guest", "pw"))))
