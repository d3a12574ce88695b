"""
PBKDF2 work for SASL PLAIN runs in a thread, never on the reactor thread:
other connections keep being served while a password is checked.
"""

from __future__ import annotations

import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from convergence.auth.scram import derive_credential
from convergence.xmpp import sasl
from convergence.xmpp.server import XmppServer


class Accounts:
    def __init__(self, credential) -> None:
        self.credential = credential

    def credentials(self, user: str, host: str):
        return succeed({"SCRAM-SHA-256": self.credential} if user == "romeo" else None)


class PlainHashingTests(TestCase):
    timeout = 30

    async def test_plain_verifies_off_the_reactor_thread(self) -> None:
        credential = derive_credential("secret", "sha256", 20000)
        threads: list[bool] = []
        original = sasl.verify_password

        def recording(password, stored):
            threads.append(threading.current_thread() is threading.main_thread())
            return original(password, stored)

        self.patch(sasl, "verify_password", recording)
        mechanism = sasl.PlainMechanism("localhost", Accounts(credential), deferToThread)
        d = mechanism.respond(b"\0romeo\0secret")
        outcome: list = []
        d.addBoth(lambda r: outcome.append(r) or r)
        self.assertEqual(outcome, [])  # the reactor is free while the hash runs
        ticked: Deferred = Deferred()
        reactor.callLater(0, ticked.callback, None)
        await ticked
        result = await d
        self.assertEqual(str(result.jid), "romeo@localhost")
        self.assertEqual(threads, [False])
        wrong = mechanism.respond(b"\0romeo\0wrong")
        failure = await self.assertFailure(wrong, sasl.SaslError)
        self.assertEqual(failure.condition, "not-authorized")

    async def test_unknown_user_costs_the_same_hash(self) -> None:
        """No such account: the password is still hashed (at the configured
        cost, in the pool) before not-authorized, so timing does not tell."""
        costs: list[int] = []
        original = sasl.verify_password

        def recording(password, stored):
            costs.append(stored.iterations)
            return original(password, stored)

        self.patch(sasl, "verify_password", recording)
        mechanism = sasl.PlainMechanism("localhost", Accounts(None), deferToThread, 20000)
        failure = await self.assertFailure(mechanism.respond(b"\0juliet\0secret"),
                                           sasl.SaslError)
        self.assertEqual(failure.condition, "not-authorized")
        self.assertEqual(costs, [20000])

    def test_server_default_is_the_thread_pool(self) -> None:
        from convergence.config import XmppConfig
        from convergence.container.container import Container

        container = Container(reactor, domains=("localhost",))
        server = XmppServer(XmppConfig(), ["localhost"], None, container, reactor)
        self.assertIs(server.run_in_thread, deferToThread)
