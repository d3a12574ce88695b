"""The container: descriptors, loading, routing rules, sessions, dispatch."""

from __future__ import annotations

import sys
import types

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.container.application import ApplicationLoadError, load_application
from convergence.container.container import Container
from convergence.container.descriptor import DeploymentDescriptor, DescriptorError, LoginConfig
from convergence.container.dispatch import invoke
from convergence.container.interfaces import IApplicationRouter, IProtocolSession
from convergence.container.router import DefaultApplicationRouter, RoutingConflict, RoutingRule
from convergence.container.session import ProtocolSession


class DescriptorTests(SynchronousTestCase):
    def test_login_config_validation(self) -> None:
        """Login configs refuse unknown values when loaded, naming the field."""
        for kwargs, key in [({"process_stream": "later"}, "process_stream"),
                            ({"tls": "maybe"}, "tls"), ({"sasl": ("MD5",)}, "sasl"),
                            ({"sasl": ()}, "sasl")]:
            with self.assertRaises(DescriptorError) as cm:
                LoginConfig(**kwargs)
            self.assertIn(key, str(cm.exception))

    def test_descriptor_validation(self) -> None:
        """Bad names, protocols and timeouts are refused."""
        with self.assertRaises(DescriptorError):
            DeploymentDescriptor(name="bad name")
        with self.assertRaises(DescriptorError):
            DeploymentDescriptor(name="x", servlets={"smtp": object})
        with self.assertRaises(DescriptorError):
            DeploymentDescriptor(name="x", xmpp="x.example")
        with self.assertRaises(DescriptorError):
            DeploymentDescriptor(name="x", session_timeout=0)


class Servlet:
    def __init__(self):
        self.context = None

    def init(self, context):
        self.context = context


class LoaderTests(SynchronousTestCase):
    def setUp(self) -> None:
        module = types.ModuleType("fake_app_for_tests")
        module.descriptor = DeploymentDescriptor(
            name="fake", xmpp=["fake.{domain}", "bot@{domain}"],
            servlets={"xmpp": Servlet}, settings={"a": 1})
        sys.modules["fake_app_for_tests"] = module
        self.addCleanup(sys.modules.pop, "fake_app_for_tests")

    def test_load_expands_domains(self) -> None:
        """Address patterns expand for every server domain; settings merge."""
        app = load_application("fake", "fake_app_for_tests", ["a.example", "b.example"],
                               settings={"b": 2})
        self.assertEqual(app.xmpp_addresses, ("fake.a.example", "fake.b.example",
                                              "bot@a.example", "bot@b.example"))
        self.assertEqual(app.settings, {"a": 1, "b": 2})
        container = Container(Clock(), [app])
        self.assertIs(app.servlet("xmpp").context.container, container)
        self.assertIs(container.router.select("xmpp", ["x@fake.a.example", "fake.a.example"]), app)
        self.assertIs(container.router.select("xmpp", ["bot@b.example", "b.example"]), app)
        self.assertIsNone(container.router.select("xmpp", ["bob@b.example", "b.example"]))

    def test_load_errors(self) -> None:
        """A missing module or descriptor is a clear load error."""
        with self.assertRaises(ApplicationLoadError) as cm:
            load_application("nope", "no_such_module_xyz", ["localhost"])
        self.assertIn("apps.nope.module", str(cm.exception))
        with self.assertRaises(ApplicationLoadError):
            load_application("sys", "sys", ["localhost"])

    def test_echo_app_loads(self) -> None:
        """The shipped echo app serves echo.<domain>."""
        app = load_application("echo", "apps.echo", ["localhost"])
        self.assertEqual(app.xmpp_addresses, ("echo.localhost",))


class RouterTests(SynchronousTestCase):
    def test_interface_and_conflict(self) -> None:
        """The default router implements the interface and refuses double claims."""
        a, b = types.SimpleNamespace(name="a"), types.SimpleNamespace(name="b")
        router = DefaultApplicationRouter([RoutingRule("xmpp", "x.example", a)])
        verifyObject(IApplicationRouter, router)
        with self.assertRaises(RoutingConflict):
            router.add_rule(RoutingRule("xmpp", "X.example", b))
        self.assertIsNone(router.select("sip", ["x.example"]))


class Listener:
    def __init__(self):
        self.events = []

    def session_created(self, s):
        self.events.append(("created", s.id))

    def session_expiring(self, s):
        self.events.append(("expiring", s.id))

    def session_invalidated(self, s):
        self.events.append(("invalidated", s.id))


class SessionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.container = Container(self.clock)
        self.app = types.SimpleNamespace(
            name="app", descriptor=DeploymentDescriptor(name="app", session_timeout=10))
        self.listener = Listener()
        self.container.sessions.add_listener("app", self.listener)

    def test_expiry_fires_listeners(self) -> None:
        """An idle session expires on the clock: expiring, then invalidated."""
        s = self.container.sessions.create(self.app)
        proto = ProtocolSession(s)
        verifyObject(IProtocolSession, proto)
        s["cart"] = [1]
        self.clock.advance(9)
        s.touch()
        self.clock.advance(9)
        self.assertTrue(s.valid)
        self.clock.advance(1)
        self.assertFalse(s.valid)
        self.assertFalse(proto.valid)
        self.assertEqual([e for e, _ in self.listener.events],
                         ["created", "expiring", "invalidated"])
        self.assertIsNone(self.container.sessions.get(s.id))

    def test_invalidate_ends_protocol_sessions(self) -> None:
        """Invalidation ends each protocol session and stops the timer."""
        s = self.container.sessions.create(self.app)
        ended = []

        class P(ProtocolSession):
            kind = "test"

            def on_invalidate(self):
                ended.append(self)

        p = P(s)
        self.assertEqual(s.sessions_of("test"), [p])
        s.invalidate()
        self.assertEqual(ended, [p])
        self.assertEqual(s.protocol_sessions, ())
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DispatchTests(SynchronousTestCase):
    def test_value_deferred_coroutine_exception(self) -> None:
        """invoke() turns every kind of handler result into a Deferred."""
        self.assertEqual(self.successResultOf(invoke(lambda: 1)), 1)
        self.assertEqual(self.successResultOf(invoke(lambda: succeed(2))), 2)

        async def coro(x):
            return x * 3

        self.assertEqual(self.successResultOf(invoke(coro, 3)), 9)
        failure = self.failureResultOf(invoke(lambda: 1 / 0))
        failure.trap(ZeroDivisionError)
        d = Deferred()
        result = invoke(lambda: d)
        self.assertNoResult(result)
        d.callback(4)
        self.assertEqual(self.successResultOf(result), 4)


class ApplicationKeyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.container = Container(self.clock)
        self.app = types.SimpleNamespace(
            name="app", descriptor=DeploymentDescriptor(name="app", session_timeout=10))

    def test_same_key_joins(self) -> None:
        """Two initial requests with one key share a session; others get their own."""
        sessions = self.container.sessions
        a = sessions.find_or_create(self.app, "thread-1")
        self.assertIs(sessions.find_or_create(self.app, "thread-1"), a)
        self.assertIsNot(sessions.find_or_create(self.app, "thread-2"), a)
        self.assertIsNot(sessions.find_or_create(self.app, None), a)

    def test_bind_key_and_expiry_leaves_index(self) -> None:
        """Keys bound later lead to the session; an expired session leaves the index."""
        sessions = self.container.sessions
        s = sessions.create(self.app)
        s.bind_key(("jid", "romeo@localhost"))
        self.assertIs(sessions.by_key("app", ("jid", "romeo@localhost")), s)
        self.clock.advance(11)
        self.assertIsNone(sessions.by_key("app", ("jid", "romeo@localhost")))
        self.assertIsNot(sessions.find_or_create(self.app, ("jid", "romeo@localhost")), s)

    def test_encode_url(self) -> None:
        """encode_url adds (or replaces) the appsession parameter."""
        s = self.container.sessions.create(self.app)
        self.assertEqual(s.encode_url("http://h/selfhelp/?a=1&appsession=old"),
                         f"http://h/selfhelp/?a=1&appsession={s.id}")
        self.assertEqual(s.encode_url("/x"), f"/x?appsession={s.id}")

    def test_descriptor_checks_keys_and_http(self) -> None:
        """Unknown key protocols and bad context paths are refused at load."""
        with self.assertRaises(DescriptorError):
            DeploymentDescriptor(name="x", application_keys={"smtp": str})
        for path in ("selfhelp", "/", "/x/"):
            with self.assertRaises(DescriptorError):
                DeploymentDescriptor(name="x", http=path)
