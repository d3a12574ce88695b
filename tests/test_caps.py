"""
XEP-0115 Entity Capabilities: the verification string (the XEP's own
worked examples), the server's caps stream feature and caps node, and the
cache of clients' capabilities with its disco#info queries.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp import ns
from convergence.xmpp.features import builtin_features
from convergence.xmpp.features.caps import (
    NODE,
    IllFormed,
    parse_info,
    ver,
    verification_string,
)
from convergence.xmpp.features.disco import DiscoInfo
from tests.xmpphelpers import HEADER, Client, make_server

MUC = "http://jabber.org/protocol/muc"
EXODUS_NODE = "http://code.google.com/p/exodus"
EXODUS_VER = "QgayPKawpkPSDYmwT/WM94uAlu0="
EXODUS_FEATURES = (ns.CAPS, ns.DISCO_INFO, ns.DISCO_ITEMS, MUC)
#: section 5.3's disco#info answer, as the XEP prints it
PSI_QUERY = """<query xmlns='http://jabber.org/protocol/disco#info'
         node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
    <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
    <identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>
    <feature var='http://jabber.org/protocol/caps'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='http://jabber.org/protocol/muc'/>
    <x xmlns='jabber:x:data' type='result'>
      <field var='FORM_TYPE' type='hidden'>
        <value>urn:xmpp:dataforms:softwareinfo</value>
      </field>
      <field var='ip_version'>
        <value>ipv4</value>
        <value>ipv6</value>
      </field>
      <field var='os'>
        <value>Mac</value>
      </field>
      <field var='os_version'>
        <value>10.5.1</value>
      </field>
      <field var='software'>
        <value>Psi</value>
      </field>
      <field var='software_version'>
        <value>0.11</value>
      </field>
    </x>
  </query>"""


def query(xml: str) -> etree._Element:
    return etree.fromstring(xml)


def exodus_answer(features: tuple[str, ...] = EXODUS_FEATURES) -> str:
    """The body of a disco#info result: Exodus' identity and features."""
    vars_ = "".join(f"<feature var='{v}'/>" for v in features)
    return (f"<query xmlns='{ns.DISCO_INFO}' node='{EXODUS_NODE}#{EXODUS_VER}'>"
            "<identity category='client' name='Exodus 0.9.1' type='pc'/>"
            f"{vars_}</query>")


class VerificationStringTests(SynchronousTestCase):
    """Section 5: generating the ver, and section 5.4's well-formedness."""

    def test_simple_example(self) -> None:
        """Section 5.2: Exodus 0.9.1 with four features."""
        info = DiscoInfo((("client", "pc", "", "Exodus 0.9.1"),),
                         (ns.DISCO_INFO, ns.DISCO_ITEMS, MUC, ns.CAPS))
        self.assertEqual(
            verification_string(info),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
            "http://jabber.org/protocol/disco#info<"
            "http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<")
        self.assertEqual(ver(info), EXODUS_VER)

    def test_complex_example(self) -> None:
        """Section 5.3: two identities in two languages and a software
        form, parsed from the XEP's own disco#info answer."""
        info = parse_info(query(PSI_QUERY))
        self.assertEqual(
            verification_string(info),
            "client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<"
            "http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<"
            "http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"
            "urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<"
            "os_version<10.5.1<software<Psi<software_version<0.11<")
        self.assertEqual(ver(info), "q07IKJEyjvHSyhy//CH0CxmKi8w=")

    def test_other_hashes(self) -> None:
        """The hash attribute picks the function: sha-256 differs from sha-1."""
        info = parse_info(query(PSI_QUERY))
        self.assertNotEqual(ver(info, "sha-256"), ver(info, "sha-1"))
        self.assertEqual(len(ver(info, "sha-256")), 44)

    def test_ill_formed_answers(self) -> None:
        """Duplicate identities, features or FORM_TYPEs, and a FORM_TYPE
        with differing values, make the whole answer ill-formed (5.4)."""
        dup_identity = PSI_QUERY.replace(
            "<feature var='http://jabber.org/protocol/caps'/>",
            "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
            "<feature var='http://jabber.org/protocol/caps'/>")
        dup_feature = PSI_QUERY.replace(
            "<feature var='http://jabber.org/protocol/muc'/>",
            "<feature var='http://jabber.org/protocol/muc'/>" * 2)
        form_start = PSI_QUERY.index("<x ")
        form = PSI_QUERY[form_start:PSI_QUERY.index("</x>") + 4]
        dup_form = PSI_QUERY.replace(form, form * 2)
        two_values = PSI_QUERY.replace(
            "<value>urn:xmpp:dataforms:softwareinfo</value>",
            "<value>urn:xmpp:dataforms:softwareinfo</value><value>urn:other</value>")
        for xml in (dup_identity, dup_feature, dup_form, two_values):
            self.assertRaises(IllFormed, parse_info, query(xml))

    def test_forms_without_hidden_form_type_are_ignored(self) -> None:
        """A form whose FORM_TYPE is not hidden, or missing, is left out
        of the hash but the answer is still used (5.4 step 3.6)."""
        bare = parse_info(query(PSI_QUERY[:PSI_QUERY.index("<x ")] + "</query>"))
        shown = parse_info(query(PSI_QUERY.replace("type='hidden'", "type='text-single'")))
        missing = parse_info(query(PSI_QUERY.replace("var='FORM_TYPE' type='hidden'",
                                                     "var='kind'")))
        self.assertEqual(ver(shown), ver(bare))
        self.assertEqual(ver(missing), ver(bare))
        self.assertEqual(shown.forms, ())


class ServerCapsTests(SynchronousTestCase):
    """The server's own capabilities: stream feature and caps node."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())

    def features_after_auth(self) -> etree._Element:
        client = Client(self.server)
        client.send(HEADER)
        before = client.read()[-1]
        self.assertIsNone(before.find(f"{{{ns.CAPS}}}c"))
        client.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                    "AGFsaWNlAHNlY3JldA==</auth>")
        client.expect("success")
        client.restart_parser()
        client.send(HEADER)
        return client.read()[-1]

    def disco(self, node: str | None = None) -> etree._Element:
        client = Client(self.server)
        client.login()
        attr = f" node='{node}'" if node is not None else ""
        client.send(f"<iq type='get' id='d1' to='localhost'>"
                    f"<query xmlns='{ns.DISCO_INFO}'{attr}/></iq>")
        return client.expect("iq")

    def test_stream_feature_after_auth(self) -> None:
        """After SASL the features carry <c/> whose ver hashes exactly what
        the server's disco#info answers (and not before SASL)."""
        c = self.features_after_auth().find(f"{{{ns.CAPS}}}c")
        self.assertIsNotNone(c)
        self.assertEqual((c.get("hash"), c.get("node")), ("sha-1", NODE))
        answer = self.disco()
        info = parse_info(answer.find(f"{{{ns.DISCO_INFO}}}query"))
        self.assertEqual(c.get("ver"), ver(info))
        self.assertIn(ns.PING, info.features)
        # section 7: supporting caps is advertised; the optional caps
        # optimization (8.4) is not done, so not advertised either
        self.assertIn(ns.CAPS, info.features)
        self.assertNotIn(f"{ns.CAPS}#optimize", info.features)

    def test_caps_node_answers_the_same(self) -> None:
        """disco#info to node#ver answers with that node and the same data;
        another node is item-not-found."""
        c = self.features_after_auth().find(f"{{{ns.CAPS}}}c")
        node = f"{NODE}#{c.get('ver')}"
        answer = self.disco(node)
        self.assertEqual(answer.get("type"), "result")
        q = answer.find(f"{{{ns.DISCO_INFO}}}query")
        self.assertEqual(q.get("node"), node)
        self.assertEqual(ver(parse_info(q)), c.get("ver"))
        wrong = self.disco(f"{NODE}#AAAA")
        self.assertEqual(wrong.get("type"), "error")
        self.assertIsNotNone(wrong.find(f".//{{{ns.STANZA_ERRORS}}}item-not-found"))

    def test_ver_follows_the_declared_features(self) -> None:
        """A server running fewer features announces another ver."""
        full = self.features_after_auth().find(f"{{{ns.CAPS}}}c").get("ver")
        self.server, _ = make_server(self.mktemp(), features=[
            f for f in builtin_features() if f.name != "ping"])
        fewer = self.features_after_auth().find(f"{{{ns.CAPS}}}c").get("ver")
        self.assertNotEqual(full, fewer)


class ClientCapsTests(SynchronousTestCase):
    """Clients' caps: looked up, asked for, verified, cached."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())
        self.updated: list[Any] = []
        self.server.bus.hook("caps/updated", self.updated.append)
        self.alice = self.connect("alice", "secret")
        self.bob = self.connect("bob", "hunter2")

    def connect(self, user: str, password: str, resource: str = "phone") -> Client:
        client = Client(self.server)
        client.login(user, password, resource)
        return client

    def advertise(self, client: Client, ver_: str = EXODUS_VER,
                  hash_: str | None = "sha-1") -> etree._Element | None:
        """Send available presence with caps; return the server's
        disco#info query to this client, if it sent one."""
        attr = f" hash='{hash_}'" if hash_ else ""
        client.send(f"<presence><c xmlns='{ns.CAPS}'{attr} node='{EXODUS_NODE}'"
                    f" ver='{ver_}'/></presence>")
        queries = [e for e in client.read() if etree.QName(e).localname == "iq"]
        self.assertLessEqual(len(queries), 1)
        return queries[0] if queries else None

    def answer(self, client: Client, iq: etree._Element, body: str,
               type_: str = "result") -> None:
        client.send(f"<iq type='{type_}' id='{iq.get('id')}' to='{iq.get('from')}'>"
                    f"{body}</iq>")

    def test_unknown_ver_is_asked_verified_and_cached(self) -> None:
        """The first client with a ver is asked (disco#info to its full JID,
        node#ver); its verified features are set and caps/updated fires; a
        second client with that ver is not asked."""
        iq = self.advertise(self.alice)
        self.assertIsNotNone(iq)
        self.assertEqual((iq.get("type"), iq.get("from"), iq.get("to")),
                         ("get", "localhost", "alice@localhost/phone"))
        self.assertEqual(iq.find(f"{{{ns.DISCO_INFO}}}query").get("node"),
                         f"{EXODUS_NODE}#{EXODUS_VER}")
        self.assertIsNone(self.alice.stream.client_features)
        self.answer(self.alice, iq, exodus_answer())
        self.assertEqual(self.alice.stream.client_features, frozenset(EXODUS_FEATURES))
        self.assertEqual(self.updated, [self.alice.stream])
        self.assertIsNone(self.advertise(self.bob))
        self.assertEqual(self.bob.stream.client_features, frozenset(EXODUS_FEATURES))
        self.assertEqual(self.updated, [self.alice.stream, self.bob.stream])

    def test_wrong_hash_is_not_cached(self) -> None:
        """An answer that does not hash to the ver sets nothing and is not
        cached: the next client with that ver is asked."""
        iq = self.advertise(self.alice)
        self.answer(self.alice, iq, exodus_answer(EXODUS_FEATURES + ("urn:evil",)))
        self.assertIsNone(self.alice.stream.client_features)
        self.assertEqual(self.updated, [])
        self.assertEqual(self.server.caps.cache, {})
        self.assertIsNotNone(self.advertise(self.bob))

    def test_clients_waiting_on_the_same_ver(self) -> None:
        """While one client is asked, another with the same ver waits and
        gets the result; after a wrong answer, the waiting one is asked."""
        iq = self.advertise(self.alice)
        self.assertIsNone(self.advertise(self.bob))
        self.answer(self.alice, iq, exodus_answer(("urn:evil",)))
        bob_iq = [e for e in self.bob.read() if etree.QName(e).localname == "iq"]
        self.assertEqual(len(bob_iq), 1)
        self.answer(self.bob, bob_iq[0], exodus_answer())
        self.assertEqual(self.bob.stream.client_features, frozenset(EXODUS_FEATURES))
        self.assertIsNone(self.alice.stream.client_features)
        carol = self.connect("alice", "secret", "tablet")
        iq = self.advertise(carol)
        self.assertIsNone(iq)
        self.assertEqual(carol.stream.client_features, frozenset(EXODUS_FEATURES))

    def test_waiting_client_gets_the_verified_answer(self) -> None:
        """A right answer serves every client waiting on that ver."""
        iq = self.advertise(self.alice)
        self.assertIsNone(self.advertise(self.bob))
        self.answer(self.alice, iq, exodus_answer())
        self.assertEqual(self.bob.stream.client_features, frozenset(EXODUS_FEATURES))
        self.assertEqual(set(self.updated), {self.alice.stream, self.bob.stream})

    def test_timeout_and_error(self) -> None:
        """No answer within caps_query_timeout, or an error, caches
        nothing; the client waiting next is asked."""
        iq = self.advertise(self.alice)
        self.assertIsNone(self.advertise(self.bob))
        self.clock.advance(self.server.config.caps_query_timeout)
        bob_iq = [e for e in self.bob.read() if etree.QName(e).localname == "iq"]
        self.assertEqual(len(bob_iq), 1)
        self.answer(self.alice, iq, exodus_answer())  # too late: ignored
        self.assertIsNone(self.alice.stream.client_features)
        self.answer(self.bob, bob_iq[0],
                    f"<error type='cancel'><service-unavailable xmlns='{ns.STANZA_ERRORS}'/>"
                    "</error>", "error")
        self.assertIsNone(self.bob.stream.client_features)
        self.assertEqual(self.server.caps.cache, {})
        self.assertEqual(self.server.caps.pending, {})

    def test_answer_from_another_client_is_not_taken(self) -> None:
        """Only the client asked can answer the query."""
        iq = self.advertise(self.alice)
        self.answer(self.bob, iq, exodus_answer())
        self.assertIsNone(self.bob.stream.client_features)
        self.assertEqual(self.server.caps.cache, {})
        self.answer(self.alice, iq, exodus_answer())
        self.assertEqual(self.alice.stream.client_features, frozenset(EXODUS_FEATURES))

    def test_cache_is_bounded(self) -> None:
        """caps_cache_size entries at most, the least recently used dropped."""
        self.server, self.clock = make_server(self.mktemp(), caps_cache_size=1)
        alice = self.connect("alice", "secret")
        self.answer(alice, self.advertise(alice), exodus_answer())
        other = DiscoInfo((("client", "pc", "", "Other"),), (ns.DISCO_INFO,))
        other_ver = ver(other)
        bob = self.connect("bob", "hunter2")
        iq = self.advertise(bob, other_ver)
        self.answer(bob, iq, f"<query xmlns='{ns.DISCO_INFO}'>"
                             "<identity category='client' type='pc' name='Other'/>"
                             f"<feature var='{ns.DISCO_INFO}'/></query>")
        self.assertEqual(bob.stream.client_features, frozenset((ns.DISCO_INFO,)))
        self.assertEqual(list(self.server.caps.cache), [("sha-1", other_ver)])
        again = self.connect("alice", "secret", "laptop")
        self.assertIsNotNone(self.advertise(again))

    def test_unsupported_hash_is_trusted_for_that_client_only(self) -> None:
        """A hash the server cannot compute: the client is asked, its
        features set for it alone, nothing cached (5.4 step 2)."""
        iq = self.advertise(self.alice, "opaque", "md2")
        self.answer(self.alice, iq, exodus_answer())
        self.assertEqual(self.alice.stream.client_features, frozenset(EXODUS_FEATURES))
        self.assertEqual(self.server.caps.cache, {})
        self.assertIsNotNone(self.advertise(self.bob, "opaque", "md2"))

    def test_legacy_caps_and_presence_without_caps(self) -> None:
        """No hash (the legacy format): nothing is asked. A later presence
        without <c/> keeps the features; unavailable clears them."""
        self.assertIsNone(self.advertise(self.alice, "0.9", None))
        self.answer(self.bob, self.advertise(self.bob), exodus_answer())
        self.bob.send("<presence><show>away</show></presence>")
        self.bob.read()
        self.assertEqual(self.bob.stream.client_features, frozenset(EXODUS_FEATURES))
        self.bob.send("<presence type='unavailable'/>")
        self.assertIsNone(self.bob.stream.client_features)

    def test_same_caps_again_do_nothing(self) -> None:
        """Presence repeating the caps already known fires nothing new."""
        self.answer(self.alice, self.advertise(self.alice), exodus_answer())
        self.assertIsNone(self.advertise(self.alice))
        self.assertEqual(self.updated, [self.alice.stream])

    def test_disconnect_while_asked_passes_the_query_on(self) -> None:
        """A client that goes away before answering: the next is asked."""
        self.advertise(self.alice)
        self.assertIsNone(self.advertise(self.bob))
        self.alice.stream.connectionLost(None)
        bob_iq = [e for e in self.bob.read() if etree.QName(e).localname == "iq"]
        self.assertEqual(len(bob_iq), 1)
        self.assertNotIn(self.alice.stream, self.server.caps.advertised)

    def test_one_query_per_client(self) -> None:
        """A client changing its ver over and over has one query in flight:
        the newest; an answer to an older one is not taken."""
        first = self.advertise(self.alice, "AAAA")
        for n in range(20):
            self.advertise(self.alice, f"ver{n}")
        last = self.advertise(self.alice)
        self.assertEqual(len(self.server.caps.pending), 1)
        self.assertEqual(len(self.server.caps.waiting), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # its one timeout
        self.answer(self.alice, first, exodus_answer())
        self.assertIsNone(self.alice.stream.client_features)
        self.answer(self.alice, last, exodus_answer())
        self.assertEqual(self.alice.stream.client_features, frozenset(EXODUS_FEATURES))
        self.assertEqual(self.server.caps.pending, {})
