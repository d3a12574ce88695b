"""
Client-to-server streams on a StringTransport: negotiation, errors, routing.
"""

from __future__ import annotations

import base64

from lxml import etree
from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.errors import StanzaError
from convergence.xmpp.servlet import XmppConnectionListener, XmppServlet
from tests.xmpphelpers import HEADER, Client, make_app, make_server, scram_client_proof

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"


def stream_error(client: Client) -> str:
    """The condition of the stream error the client received."""
    for el in client.read() + client.elements:
        if etree.QName(el).localname == "error" and etree.QName(el).namespace == \
                "http://etherx.jabber.org/streams":
            return etree.QName(el[0]).localname
    raise AssertionError("no stream error received")


def stanza_error(element: etree._Element) -> str:
    assert element.get("type") == "error", etree.tostring(element)
    error = element.find("{jabber:client}error")
    return etree.QName(error.find(f"{{{STANZAS}}}*")).localname


class HeaderTests(SynchronousTestCase):
    """RFC 6120 4.7-4.9: the stream header and its errors."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())

    def test_features_offer_mechanisms(self) -> None:
        """Without TLS configured, the first features offer SASL mechanisms."""
        c = Client(self.server)
        c.send(HEADER)
        features = c.expect("features")
        mechs = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        self.assertEqual(mechs, ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
        self.assertEqual(c.header.get("from"), "localhost")
        self.assertTrue(c.header.get("id"))
        self.assertEqual(c.header.get("version"), "1.0")

    def test_host_unknown(self) -> None:
        """A stream to a domain not served here gets host-unknown."""
        c = Client(self.server)
        c.send(HEADER.replace(b"to='localhost'", b"to='example.net'"))
        self.assertEqual(stream_error(c), "host-unknown")
        self.assertTrue(c.closed_tag)

    def test_invalid_namespace(self) -> None:
        """The content namespace must be jabber:client."""
        c = Client(self.server)
        c.send(HEADER.replace(b"xmlns='jabber:client'", b"xmlns='jabber:server'"))
        self.assertEqual(stream_error(c), "invalid-namespace")

    def test_unsupported_version(self) -> None:
        """A stream without version 1.x gets unsupported-version."""
        c = Client(self.server)
        c.send(HEADER.replace(b" version='1.0' xml:lang", b" xml:lang"))
        self.assertEqual(stream_error(c), "unsupported-version")

    def test_bad_namespace_prefix(self) -> None:
        """The stream namespace must use the prefix 'stream'."""
        c = Client(self.server)
        c.send(b"<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'"
               b" to='localhost' version='1.0'>")
        self.assertEqual(stream_error(c), "bad-namespace-prefix")

    def test_connection_limit_per_ip(self) -> None:
        """Connections beyond max_connections_per_ip are refused at accept."""
        from convergence.xmpp.c2s import C2SFactory
        from tests.xmpphelpers import _Addr

        server, _ = make_server(self.mktemp(), max_connections_per_ip=2)
        clients = [Client(server), Client(server)]
        factory = C2SFactory(server)
        self.assertIsNone(factory.buildProtocol(_Addr("127.0.0.1")))
        self.assertIsNotNone(factory.buildProtocol(_Addr("127.0.0.2")))
        clients[0].stream.connectionLost(None)
        self.assertIsNotNone(factory.buildProtocol(_Addr("127.0.0.1")))

    def test_not_well_formed(self) -> None:
        """Broken XML gets not-well-formed."""
        c = Client(self.server)
        c.send(HEADER + b"<message><body></message>")
        self.assertEqual(stream_error(c), "not-well-formed")

    def test_restricted_xml(self) -> None:
        """A comment in the stream gets restricted-xml."""
        c = Client(self.server)
        c.send(HEADER + b"<!-- hello -->")
        self.assertEqual(stream_error(c), "restricted-xml")

    def test_stanza_before_auth(self) -> None:
        """A stanza before authentication gets not-authorized."""
        c = Client(self.server)
        c.send(HEADER + b"<message to='bob@localhost'><body>x</body></message>")
        self.assertEqual(stream_error(c), "not-authorized")

    def test_policy_violation_for_huge_stanza(self) -> None:
        """A stanza above max_stanza_size gets policy-violation."""
        server, _ = make_server(self.mktemp(), max_stanza_size=4096)
        c = Client(server)
        c.login()
        c.send(b"<message to='bob@localhost'><body>" + b"x" * 5000 + b"</body></message>")
        self.assertEqual(stream_error(c), "policy-violation")

    def test_closing_handshake(self) -> None:
        """The server answers the client's closing tag and disconnects."""
        c = Client(self.server)
        c.login()
        c.send(b"</stream:stream>")
        c.read()
        self.assertTrue(c.closed_tag)
        self.assertTrue(c.transport.disconnecting)

    def test_whitespace_keepalive(self) -> None:
        """Whitespace between stanzas is accepted."""
        c = Client(self.server)
        c.login()
        c.send(b" \n ")
        c.send(b"<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        self.assertEqual(c.expect("iq").get("type"), "result")

    def test_iq_to_own_account_unhandled(self) -> None:
        """An iq without 'to' nobody handles is answered from the account."""
        c = Client(self.server)
        c.login()
        c.send(b"<iq type='get' id='v'><query xmlns='jabber:iq:version'/></iq>")
        reply = c.expect("iq")
        self.assertEqual(stanza_error(reply), "service-unavailable")
        self.assertEqual(reply.get("from"), "alice@localhost")

    def test_negotiation_timeout(self) -> None:
        """A client that never authenticates is dropped with connection-timeout."""
        c = Client(self.server)
        c.send(HEADER)
        self.clock.advance(61)
        self.assertEqual(stream_error(c), "connection-timeout")


class SaslTests(SynchronousTestCase):
    """RFC 6120 6: SASL PLAIN and SCRAM, failures and limits."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())

    def auth_plain(self, c: Client, user: str, password: str) -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        c.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")

    def test_plain_success_then_bind(self) -> None:
        """PLAIN with the right password succeeds and binding gives the JID."""
        c = Client(self.server)
        self.assertEqual(c.login(resource="desk"), "alice@localhost/desk")

    def test_plain_failure_is_delayed(self) -> None:
        """A wrong password fails with not-authorized, only after the delay."""
        c = Client(self.server)
        c.send(HEADER)
        c.read()
        self.auth_plain(c, "alice", "wrong")
        self.assertEqual(c.read(), [])
        self.clock.advance(1.0)
        failure = c.expect("failure")
        self.assertEqual(etree.QName(failure[0]).localname, "not-authorized")

    def test_too_many_failures(self) -> None:
        """After auth_attempts failures the stream is closed."""
        c = Client(self.server)
        c.send(HEADER)
        c.read()
        for attempt in range(3):
            self.auth_plain(c, "alice", "wrong")
            self.clock.advance(10)
        self.assertEqual(stream_error(c), "policy-violation")

    def test_result_of_an_aborted_exchange_is_dropped(self) -> None:
        """<abort/> while the credentials are being read, then a new <auth>:
        the late answer of the first exchange does not land in the second."""
        lookup = self.server.account_lookup
        held: list[Deferred] = []
        real = lookup.credentials

        def hold(user, host):
            gate: Deferred = Deferred()
            held.append(gate)
            return gate.addCallback(lambda _: real(user, host))

        self.patch(lookup, "credentials", hold)
        c = Client(self.server)
        c.send(HEADER)
        c.read()
        self.auth_plain(c, "alice", "wrong")
        c.send(f"<abort xmlns='{SASL}'/>")
        self.clock.advance(2)
        self.assertEqual(etree.QName(c.expect("failure")[0]).localname, "aborted")
        self.auth_plain(c, "alice", "secret")
        held[0].callback(None)  # the aborted exchange's wrong password
        self.clock.advance(10)
        self.assertEqual(c.read(), [])  # no failure for the new exchange
        held[1].callback(None)
        self.assertIsNotNone(c.expect("success"))

    def test_unknown_mechanism(self) -> None:
        """An unoffered mechanism gets invalid-mechanism."""
        c = Client(self.server)
        c.send(HEADER)
        c.read()
        c.send(f"<auth xmlns='{SASL}' mechanism='DIGEST-MD5'/>")
        self.assertEqual(etree.QName(c.expect("failure")[0]).localname,
                         "invalid-mechanism")

    def test_bad_base64(self) -> None:
        """Invalid base64 gets incorrect-encoding."""
        c = Client(self.server)
        c.send(HEADER)
        c.read()
        c.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>!!!</auth>")
        self.clock.advance(2)
        self.assertEqual(etree.QName(c.expect("failure")[0]).localname,
                         "incorrect-encoding")

    def test_plain_hidden_without_tls(self) -> None:
        """PLAIN is not offered on an unencrypted stream by default."""
        server, _ = make_server(self.mktemp(), allow_plain_without_tls=False)
        c = Client(server)
        c.send(HEADER)
        mechs = [m.text for m in c.expect("features").iter(f"{{{SASL}}}mechanism")]
        self.assertNotIn("PLAIN", mechs)

    def scram(self, mechanism: str, hash_name: str, password: str,
              user: str = "alice", server=None) -> Client:
        c = Client(server or self.server)
        c.send(HEADER)
        c.read()
        bare = f"n={user},r=clientnonce123".encode()
        c.send(f"<auth xmlns='{SASL}' mechanism='{mechanism}'>"
               f"{base64.b64encode(b'n,,' + bare).decode()}</auth>")
        server_first = base64.b64decode(c.expect("challenge").text)
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        self.assertTrue(attrs["r"].startswith("clientnonce123"))
        without_proof = f"c=biws,r={attrs['r']}".encode()
        auth_message = bare + b"," + server_first + b"," + without_proof
        self.iterations = int(attrs["i"])
        proof = scram_client_proof(hash_name, password, base64.b64decode(attrs["s"]),
                                   int(attrs["i"]), auth_message)
        final = without_proof + b",p=" + base64.b64encode(proof)
        c.send(f"<response xmlns='{SASL}'>{base64.b64encode(final).decode()}</response>")
        return c

    def test_scram_sha256(self) -> None:
        """SCRAM-SHA-256 with the right password succeeds with a server signature."""
        c = self.scram("SCRAM-SHA-256", "sha256", "secret")
        success = c.expect("success")
        self.assertTrue(base64.b64decode(success.text).startswith(b"v="))

    def test_scram_sha1(self) -> None:
        """SCRAM-SHA-1 with the right password succeeds."""
        c = self.scram("SCRAM-SHA-1", "sha1", "secret")
        c.expect("success")

    def test_scram_unknown_user_fails_only_at_the_end(self) -> None:
        """An unknown user gets a challenge with the configured cost, then not-authorized."""
        server, clock = make_server(self.mktemp(), scram_iterations=5000)
        c = self.scram("SCRAM-SHA-256", "sha256", "x", user="mallory", server=server)
        self.assertEqual(self.iterations, 5000)
        clock.advance(1)
        self.assertEqual(etree.QName(c.expect("failure")[0]).localname, "not-authorized")

    def test_scram_wrong_password(self) -> None:
        """SCRAM with a wrong password fails with not-authorized."""
        c = self.scram("SCRAM-SHA-256", "sha256", "nope")
        self.clock.advance(1)
        self.assertEqual(etree.QName(c.expect("failure")[0]).localname, "not-authorized")


class BindTests(SynchronousTestCase):
    """RFC 6120 7: resource binding and the conflict policy."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())

    def test_generated_resource(self) -> None:
        """An empty bind request gets a server-generated resource."""
        c = Client(self.server)
        jid = c.login(resource="")
        self.assertTrue(jid.startswith("alice@localhost/"))
        self.assertGreater(len(jid), len("alice@localhost/"))

    def test_conflict_replaces_older(self) -> None:
        """Binding the same resource again closes the older stream with conflict."""
        first = Client(self.server)
        first.login(resource="r")
        second = Client(self.server)
        self.assertEqual(second.login(resource="r"), "alice@localhost/r")
        self.assertEqual(stream_error(first), "conflict")
        self.assertIs(self.server.registry.get(
            __import__("convergence.xmpp.jid", fromlist=["JID"]).JID.parse(
                "alice@localhost/r")), second.stream)

    def test_stanza_before_bind(self) -> None:
        """A message after SASL but before binding gets not-authorized."""
        c = Client(self.server)
        c.send(HEADER)
        c.read()
        token = base64.b64encode(b"\0alice\0secret").decode()
        c.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
        c.expect("success")
        c.restart_parser()
        c.send(HEADER)
        c.read()
        c.send("<message to='bob@localhost'><body>hi</body></message>")
        self.assertEqual(stream_error(c), "not-authorized")


class RoutingTests(SynchronousTestCase):
    """RFC 6120 8 and 10: stamping, routing and stanza errors."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())
        self.alice = Client(self.server)
        self.alice.login()
        self.bob = Client(self.server)
        self.bob.login("bob", "hunter2", "laptop")

    def test_message_to_full_jid(self) -> None:
        """A message to a bound full JID arrives with the sender stamped."""
        self.alice.send("<message to='bob@localhost/laptop' type='chat'><body>hi</body></message>")
        msg = self.bob.expect("message")
        self.assertEqual(msg.get("from"), "alice@localhost/phone")
        self.assertEqual(msg.findtext("{jabber:client}body"), "hi")

    def test_stream_language_travels(self) -> None:
        """A stanza without xml:lang gets the stream's default language."""
        self.alice.send("<message to='bob@localhost/laptop'><body>hi</body></message>")
        msg = self.bob.expect("message")
        self.assertEqual(msg.get("{http://www.w3.org/XML/1998/namespace}lang"), "en")

    def test_message_to_bare_jid_goes_to_available(self) -> None:
        """A message to a bare JID goes to the available resource."""
        self.bob.available(5)
        self.alice.send("<message to='bob@localhost' type='chat'><body>yo</body></message>")
        self.assertEqual(self.bob.expect("message").findtext("{jabber:client}body"), "yo")

    def test_bare_jid_with_resources_asks_no_database(self) -> None:
        """Bound resources prove the account: no account query per message."""
        asked: list = []
        lookup = self.server.account_lookup
        self.patch(lookup, "exists", lambda *a: asked.append(a))
        self.bob.available()
        self.alice.send("<message to='bob@localhost' type='chat'><body>yo</body></message>")
        self.assertEqual(self.bob.expect("message").findtext("{jabber:client}body"), "yo")
        self.assertEqual(asked, [])

    def test_message_to_unknown_user_bounces(self) -> None:
        """No such account: service-unavailable, without the 'not online' text."""
        self.alice.send("<message to='nobody@localhost' type='chat' id='m2'><body>x</body></message>")
        reply = self.alice.expect("message")
        self.assertEqual(stanza_error(reply), "service-unavailable")
        self.assertNotIn("not online", etree.tostring(reply).decode())

    def test_failed_account_lookup_still_answers(self) -> None:
        """The database failing: internal-server-error, to a message and to
        a disco#info query alike."""
        self.patch(self.server.account_lookup, "exists",
                   lambda *a: fail(RuntimeError("database is locked")))
        self.alice.send("<message to='nobody@localhost' type='chat' id='m3'><body>x</body></message>")
        self.assertEqual(stanza_error(self.alice.expect("message")), "internal-server-error")
        self.alice.send("<iq type='get' id='d1' to='nobody@localhost'>"
                        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        self.assertEqual(stanza_error(self.alice.expect("iq")), "internal-server-error")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_message_to_offline_user_is_kept(self) -> None:
        """No available resource: no error; the message is stored and
        delivered with a delay stamp once the user is available."""
        self.alice.send("<message to='bob@localhost' type='chat' id='m1'><body>yo</body></message>")
        self.assertEqual(self.alice.read(), [])
        [message] = [e for e in self.bob.available() if e.tag == "{jabber:client}message"]
        self.assertEqual(message.findtext("{jabber:client}body"), "yo")
        self.assertEqual(message.find("{urn:xmpp:delay}delay").get("from"), "localhost")

    def test_spoofed_from(self) -> None:
        """A client may never send as someone else: invalid-from."""
        self.alice.send("<message from='bob@localhost/laptop' to='bob@localhost'>"
                        "<body>x</body></message>")
        self.assertEqual(stream_error(self.alice), "invalid-from")
        self.assertEqual(self.bob.read(), [])

    def test_unknown_user(self) -> None:
        """An iq to a local user who does not exist gets service-unavailable."""
        self.alice.send("<iq type='get' id='q' to='nobody@localhost/x'>"
                        "<query xmlns='jabber:iq:version'/></iq>")
        reply = self.alice.expect("iq")
        self.assertEqual(stanza_error(reply), "service-unavailable")
        self.assertEqual(reply.get("id"), "q")

    def test_remote_domain(self) -> None:
        """A foreign domain gets remote-server-not-found (no federation yet)."""
        self.alice.send("<message to='juliet@example.net' id='r'><body>x</body></message>")
        self.assertEqual(stanza_error(self.alice.expect("message")),
                         "remote-server-not-found")

    def test_jid_malformed(self) -> None:
        """A malformed 'to' gets jid-malformed."""
        self.alice.send("<message to='@localhost' id='j'><body>x</body></message>")
        self.assertEqual(stanza_error(self.alice.expect("message")), "jid-malformed")

    def test_ping_server(self) -> None:
        """The server answers XEP-0199 ping on its domain."""
        self.alice.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        reply = self.alice.expect("iq")
        self.assertEqual((reply.get("type"), reply.get("id"), reply.get("from")),
                         ("result", "p1", "localhost"))

    def test_disco_info(self) -> None:
        """disco#info on the domain lists the declared features."""
        self.alice.send("<iq type='get' id='d1' to='localhost'>"
                        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        reply = self.alice.expect("iq")
        vars_ = {f.get("var") for f in reply.iter("{http://jabber.org/protocol/disco#info}feature")}
        self.assertIn("urn:xmpp:ping", vars_)
        self.assertIn("http://jabber.org/protocol/disco#info", vars_)
        identity = reply.find(".//{http://jabber.org/protocol/disco#info}identity")
        self.assertEqual((identity.get("category"), identity.get("type")), ("server", "im"))

    def test_unknown_iq_to_server(self) -> None:
        """An iq the server does not handle gets service-unavailable."""
        self.alice.send("<iq type='get' id='u' to='localhost'><query xmlns='urn:example'/></iq>")
        self.assertEqual(stanza_error(self.alice.expect("iq")), "service-unavailable")

    def test_iq_without_payload(self) -> None:
        """An iq get without exactly one payload gets bad-request."""
        self.alice.send("<iq type='get' id='e' to='localhost'/>")
        self.assertEqual(stanza_error(self.alice.expect("iq")), "bad-request")

    def test_no_error_for_error(self) -> None:
        """An error stanza to a missing resource is dropped, never answered."""
        self.alice.send("<message to='bob@localhost/gone' type='error'><body>x</body></message>")
        self.assertEqual(self.alice.read(), [])

    def test_bad_stanza_kind(self) -> None:
        """A non-stanza element after binding gets unsupported-stanza-type."""
        self.alice.send("<foo xmlns='jabber:client'/>")
        self.assertEqual(stream_error(self.alice), "unsupported-stanza-type")


class EchoLike(XmppServlet):
    def do_message(self, request):
        reply = request.create_response()
        etree.SubElement(reply.stanza, "{jabber:client}body").text = request.body
        reply.send()


class Failing(XmppServlet):
    def do_message(self, request):
        raise RuntimeError("boom")

    async def do_iq(self, request):
        if request.payload.get("fail") == "stanza":
            raise StanzaError("not-allowed")
        return request.create_response().send()


class ApplicationTests(SynchronousTestCase):
    """Stanzas to an application's addresses reach its servlet."""

    def setUp(self) -> None:
        self.apps = (
            make_app("echo", EchoLike(), ("echo.localhost",)),
            make_app("failing", Failing(), ("bot@localhost",)),
        )
        self.server, self.clock = make_server(self.mktemp(), self.apps)
        self.alice = Client(self.server)
        self.alice.login()

    def test_echo(self) -> None:
        """The app answers with the same body and thread, in a session."""
        self.alice.send("<message to='echo.localhost' type='chat'><body>hello</body>"
                        "<thread>t1</thread></message>")
        reply = self.alice.expect("message")
        self.assertEqual(reply.get("from"), "echo.localhost")
        self.assertEqual(reply.findtext("{jabber:client}body"), "hello")
        self.assertEqual(reply.findtext("{jabber:client}thread"), "t1")
        sessions = self.server.container.sessions.sessions("echo")
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0].sessions_of("xmpp")[0].peer, "alice@localhost/phone")

    def test_exception_becomes_internal_server_error(self) -> None:
        """An app exception answers that stanza only; the stream lives on."""
        self.alice.send("<message to='bot@localhost' id='m' type='chat'><body>x</body></message>")
        self.assertEqual(stanza_error(self.alice.expect("message")), "internal-server-error")
        self.flushLoggedErrors(RuntimeError)
        self.alice.send("<iq to='bot@localhost' id='ok' type='get'><q xmlns='urn:x'/></iq>")
        self.assertEqual(self.alice.expect("iq").get("type"), "result")

    def test_async_stanza_error(self) -> None:
        """An async handler raising StanzaError answers with that condition."""
        self.alice.send("<iq to='bot@localhost' id='f' type='get'><q xmlns='urn:x' fail='stanza'/></iq>")
        self.assertEqual(stanza_error(self.alice.expect("iq")), "not-allowed")

    def test_iq_without_handler(self) -> None:
        """An iq to an app without do_iq gets service-unavailable."""
        self.alice.send("<iq to='echo.localhost' id='n' type='get'><q xmlns='urn:x'/></iq>")
        self.assertEqual(stanza_error(self.alice.expect("iq")), "service-unavailable")

    def test_session_expiry(self) -> None:
        """The application session expires after its timeout."""
        self.alice.send("<message to='echo.localhost' type='chat'><body>a</body></message>")
        self.alice.read()
        self.assertEqual(len(self.server.container.sessions.sessions("echo")), 1)
        self.clock.advance(1801)
        self.assertEqual(self.server.container.sessions.sessions("echo"), [])


class ThreadKeyTests(SynchronousTestCase):
    """Application keys: a <thread> joins the ApplicationSession bound to it."""

    def test_thread_joins_bound_session(self) -> None:
        """A message whose thread names a bound session joins it."""
        app = make_app("echo", EchoLike(), ("echo.localhost",),
                       application_keys={"xmpp": lambda r: r.thread})
        server, _ = make_server(self.mktemp(), (app,))
        existing = server.container.sessions.create(app)
        existing.bind_key("t-7")
        alice = Client(server)
        alice.login()
        alice.send("<message to='echo.localhost' type='chat'><body>a</body>"
                   "<thread>t-7</thread></message>")
        alice.expect("message")
        self.assertEqual(server.container.sessions.sessions("echo"), [existing])
        self.assertEqual(existing.sessions_of("xmpp")[0].peer, "alice@localhost/phone")
        alice.send("<message to='echo.localhost' type='chat'><body>b</body>"
                   "<thread>other</thread></message>")
        alice.expect("message")
        self.assertEqual(len(server.container.sessions.sessions("echo")), 1)

    def test_factory_session_receives_replies(self) -> None:
        """A session an app starts with the XMPP factory gets the peer's replies."""
        app = make_app("echo", EchoLike(), ("bot@localhost",))
        server, _ = make_server(self.mktemp(), (app,))
        app_session = server.container.sessions.create(app)
        session = server.container.factories["xmpp"].create_session(
            app_session, "bot@localhost", "alice@localhost/phone")
        alice = Client(server)
        alice.login()
        alice.available()
        session.send_message("hello", thread="th")
        greeting = alice.expect("message")
        self.assertEqual((greeting.get("from"), greeting.findtext("{jabber:client}thread")),
                         ("bot@localhost", "th"))
        alice.send("<message to='bot@localhost' type='chat'><body>hi</body></message>")
        alice.expect("message")
        self.assertEqual(server.container.sessions.sessions("echo"), [app_session])


class FeatureListener(XmppConnectionListener):
    def on_stream(self, event):
        event.add_feature(etree.Element("{urn:example:hello}hello"))


class ConnectionListenerTests(SynchronousTestCase):
    """XmppConnectionListener.on_stream adds stream features."""

    def test_feature_added_after_sasl(self) -> None:
        """A listener with process_stream after_sasl adds a feature post-auth."""
        from convergence.container.descriptor import LoginConfig

        app = make_app("hello", XmppServlet(), ("hello.localhost",),
                       connection_listener=FeatureListener,
                       client_login=LoginConfig(process_stream="after_sasl"))
        server, _ = make_server(self.mktemp(), (app,))
        c = Client(server)
        c.login()
        features = [e for e in c.elements if etree.QName(e).localname == "features"]
        self.assertEqual(len(features), 2)
        self.assertIsNone(features[0].find("{urn:example:hello}hello"))
        self.assertIsNotNone(features[1].find("{urn:example:hello}hello"))


class TlsContextTests(SynchronousTestCase):
    def test_tls_1_2_or_later_with_the_certificate(self) -> None:
        """The server context refuses TLS below 1.2 and holds the certificate."""
        import ssl
        from pathlib import Path

        from convergence.tls import generate_self_signed, server_tls_context

        pem = Path(self.mktemp())
        pem.write_bytes(generate_self_signed(["localhost"]))
        context = server_tls_context(pem)
        self.assertEqual(context.minimum_version, ssl.TLSVersion.TLSv1_2)
        self.assertTrue(context.options & ssl.OP_NO_RENEGOTIATION)
        self.assertEqual(context.cert_store_stats()["x509"], 0)  # no client CAs
        self.assertIsNotNone(context.get_ciphers())
