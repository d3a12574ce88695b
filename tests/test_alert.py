"""
Event alerting (convergence/alert/): POST /api/alert on an HttpChannel
over StringTransport, into the rooms and to the users of an XmppServer on
StringTransport; every error code, nothing posted on any error, the
tokens compared in constant time and never logged, the rate limit on a
Clock, the [alert] config keys and the environment token.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from convergence.alert import resource as alert_resource
from convergence.alert import tokens as tokens_module
from convergence.alert.alerts import AlertRefused, parse_alert
from convergence.alert.poster import XmppAlerts
from convergence.alert.resource import AlertResource
from convergence.alert.tokens import Tokens
from convergence.config import (
    ENV_ALERT_TOKEN,
    AlertConfig,
    Config,
    ConfigError,
    HttpConfig,
    ListenConfig,
    load_config,
)
from convergence.container.container import Container
from convergence.http.resource import make_site
from convergence.service import build_alerts
from convergence.store.interfaces import StoredRoom
from convergence.xmpp.muc.history import HistoryRequest
from convergence.xmpp.muc.roomconfig import RoomConfig
from tests.muchelpers import ROOM, MucFixture, body, of

SECRET = "s3cret-token-for-tests"
OTHER = "another-token-0123456789"
CONFIG = AlertConfig(tokens=(("monitoring", SECRET), ("ci", OTHER)), rate=1.0, burst=1000,
                     max_body_size=512)
LIMITED = dataclasses.replace(CONFIG, burst=3)


class AlertFixture(MucFixture):
    alert_config = CONFIG

    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(1_700_000_000)
        self.make_site(self.alert_config)

    def make_site(self, config: AlertConfig) -> None:
        self.site = make_site(Container(self.clock, []), reactor=self.clock)
        self.tokens = Tokens(config.tokens, config.rate, config.burst)
        self.resource = AlertResource(XmppAlerts(self.server, config), self.tokens,
                                      config.max_body_size, self.clock)
        alert_resource.install(self.site, self.resource)

    def http(self, body: bytes | str | dict | None = None, token: str | None = SECRET,
             method: str = "POST", path: str = "/api/alert",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """One request; (status, lower-cased headers, the JSON answer or raw bytes)."""
        if isinstance(body, dict):
            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:8080",
                f"Content-Length: {len(raw)}", "Content-Type: application/json"]
        if token is not None:
            head.append(f"Authorization: Bearer {token}")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(lambda: channel in self.site.channels
                        and channel.connectionLost(Failure(ConnectionDone())))
        channel.dataReceived(("\r\n".join(head) + "\r\n\r\n").encode() + raw)
        response, _, payload = transport.value().partition(b"\r\n\r\n")
        lines = response.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.decode().lower()] = value.strip().decode()
        if fields.get("transfer-encoding") == "chunked":
            payload = _unchunk(payload)
        try:
            answer: Any = json.loads(payload)
        except ValueError:
            answer = payload
        return status, fields, answer

    def room_with(self, *who: tuple[Any, str]) -> None:
        """A configured room ROOM with these (client, nick) in it."""
        first, nick = who[0]
        self.join(first, nick)
        self.instant(first)
        for client, nick in who[1:]:
            self.join(client, nick)
        for client, _ in who:
            client.read()

    def nothing_sent(self, *clients: Any) -> None:
        for client in clients:
            self.assertEqual(client.read(), [])


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


class RoomAlertTests(AlertFixture):
    def test_groupchat_to_every_occupant_from_the_nick(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        status, _, answer = self.http({"room": "room", "body": "disk full on db1"})
        self.assertEqual(status, 202)
        stanza_id = answer["id"]
        for client in (self.alice, self.bob):
            [message] = of(client.read(), "message")
            self.assertEqual(message.get("type"), "groupchat")
            self.assertEqual(message.get("from"), f"{ROOM}/alert")
            self.assertEqual(message.get("id"), stanza_id)
            self.assertEqual(body(message), "disk full on db1")
            # archived by the room (xmpp.muc_archive): the room's stanza-id
            [sid] = message.iter("{urn:xmpp:sid:0}stanza-id")
            self.assertEqual(sid.get("by"), ROOM)
        # the poster never entered: no presence came or went
        self.assertEqual(self.server.muc.api.occupants(ROOM), ["Alice", "Bob"])

    def test_in_the_history_of_a_newcomer(self) -> None:
        self.room_with((self.alice, "Alice"))
        self.http({"room": ROOM, "body": "deploy done", "from_nick": "CI"})
        got = self.join(self.carol, "Carol")
        history = [m for m in of(got, "message") if body(m)]
        self.assertEqual([(m.get("from"), body(m)) for m in history],
                         [(f"{ROOM}/CI", "deploy done")])

    def test_subject_changes_the_rooms_subject(self) -> None:
        self.room_with((self.alice, "Alice"))
        status, _, answer = self.http({"room": "room", "body": "outage",
                                       "subject": "Outage in progress"})
        self.assertEqual(status, 202)
        first, second = of(self.alice.read(), "message")
        self.assertEqual((body(first), first.get("id")), ("outage", answer["id"]))
        self.assertEqual(second.findtext("{jabber:client}subject"), "Outage in progress")
        self.assertIsNone(body(second))
        self.assertEqual(self.server.muc.room(ROOM).subject, "Outage in progress")

    def test_a_stored_room_is_read_first(self) -> None:
        """The first alert reaches a persistent room although no stanza
        has made the service read its rooms yet: it waits for them."""
        self.assertFalse(self.server.muc.loaded)
        config = RoomConfig(persistent=True).to_json()
        self.server.muc_store.put_room("conference.localhost", StoredRoom(
            "stored", config, affiliations={"alice@localhost": "owner"}, nicks={}))
        status, _, _ = self.http({"room": "stored", "body": "kept"})
        self.assertEqual(status, 202)
        self.assertTrue(self.server.muc.loaded)
        room = self.server.muc.room("stored@conference.localhost")
        history = room.history.select(HistoryRequest(), self.clock.seconds(), 10)
        self.assertEqual([body(m) for _, m in history], ["kept"])

    def test_unknown_room_is_404(self) -> None:
        self.room_with((self.alice, "Alice"))
        status, _, answer = self.http({"room": "nowhere", "body": "x"})
        self.assertEqual((status, answer["error"]), (404, "no_such_room"))
        self.assertIsNone(self.server.muc.room("nowhere@conference.localhost"))
        self.nothing_sent(self.alice)

    def test_locked_room_is_404(self) -> None:
        self.join(self.alice, "Alice")  # created, not configured yet
        self.alice.read()
        status, _, answer = self.http({"room": "room", "body": "x"})
        self.assertEqual((status, answer["error"]), (404, "no_such_room"))
        self.nothing_sent(self.alice)

    def test_nick_of_an_occupant_is_409(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        status, _, answer = self.http({"room": "room", "body": "I quit", "from_nick": "bob"})
        self.assertEqual((status, answer["error"]), (409, "nick_in_use"))
        self.nothing_sent(self.alice, self.bob)

    def test_bad_nick_is_400(self) -> None:
        self.room_with((self.alice, "Alice"))
        status, _, answer = self.http({"room": "room", "body": "x", "from_nick": "a" * 80})
        self.assertEqual((status, answer["error"]), (400, "bad_field"))
        self.nothing_sent(self.alice)

    def test_room_jid_of_another_service_is_400(self) -> None:
        for room in ("room@localhost", "room@conference.example.org",
                     f"{ROOM}/Nick", "a/b", "@conference.localhost"):
            status, _, answer = self.http({"room": room, "body": "x"})
            self.assertEqual((status, answer["error"]), (400, "bad_jid"), room)

    def test_without_a_chat_service_rooms_are_404(self) -> None:
        self.server.muc = None
        status, _, answer = self.http({"room": "room", "body": "x"})
        self.assertEqual((status, answer["error"]), (404, "no_such_room"))


class CreateRoomsTests(AlertFixture):
    alert_config = dataclasses.replace(CONFIG, create_rooms=True)

    def test_unknown_room_is_created(self) -> None:
        status, _, _ = self.http({"room": "alerts", "body": "first"})
        self.assertEqual(status, 202)
        room = self.server.muc.room("alerts@conference.localhost")
        self.assertTrue(room.config.persistent)
        self.assertFalse(room.locked)
        self.assertEqual(room.affiliations, {"localhost": "owner"})
        got = self.join(self.bob, "Bob", "alerts@conference.localhost")
        self.assertIn("first", [body(m) for m in of(got, "message")])

    def test_a_locked_room_stays_404(self) -> None:
        self.join(self.alice, "Alice")
        self.alice.read()
        status, _, answer = self.http({"room": "room", "body": "x"})
        self.assertEqual((status, answer["error"]), (404, "no_such_room"))
        self.nothing_sent(self.alice)


class JidAlertTests(AlertFixture):
    def test_normal_message_to_an_online_user(self) -> None:
        status, _, answer = self.http({"to": "alice@localhost", "body": "backup failed",
                                       "subject": "Backup", "from_nick": "cron"})
        self.assertEqual(status, 202)
        [message] = of(self.alice.read(), "message")
        self.assertEqual(message.get("from"), "localhost")
        self.assertEqual(message.get("id"), answer["id"])
        self.assertIsNone(message.get("type"))  # normal
        self.assertEqual(body(message), "backup failed")
        self.assertEqual(message.findtext("{jabber:client}subject"), "Backup")
        self.assertEqual(message.findtext("{http://jabber.org/protocol/nick}nick"), "cron")

    def test_chat_to_a_full_jid(self) -> None:
        jid = str(self.bob.stream.jid)
        status, _, _ = self.http({"to": jid, "body": "hi", "type": "chat"})
        self.assertEqual(status, 202)
        [message] = of(self.bob.read(), "message")
        self.assertEqual((message.get("type"), message.get("to")), ("chat", jid))

    def test_offline_user_gets_it_at_login(self) -> None:
        self.carol.send("<presence type='unavailable'/>")
        self.carol.transport.loseConnection()
        self.carol.stream.connectionLost(Failure(ConnectionDone()))
        status, _, answer = self.http({"to": "carol@localhost", "body": "while away"})
        self.assertEqual(status, 202)
        carol = self.client("carol", "carol-pw", "pad2")
        got = [m for m in of(carol.elements, "message") if body(m) == "while away"]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0].get("id"), answer["id"])

    def test_addresses_of_other_servers_are_400(self) -> None:
        for to in ("bob@example.org", "localhost.evil", "", "a@b@c", "@localhost"):
            status, _, answer = self.http({"to": to, "body": "x"})
            self.assertEqual(status, 400, to)
            self.assertIn(answer["error"], ("bad_jid", "bad_field"), to)


class RequestErrorTests(AlertFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"))

    def refused(self, status: int, error: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        got, fields, answer = self.http(*args, **kwargs)
        self.assertEqual((got, answer.get("error")), (status, error), answer)
        self.assertEqual(fields["content-type"], "application/json")
        self.assertTrue(answer["text"])
        self.nothing_sent(self.alice)
        return fields

    def test_bad_json(self) -> None:
        for raw in (b"", b"{", b"[1]", b'"x"', b"\xff\xfe", b"null"):
            self.refused(400, "bad_json", raw)

    def test_bad_fields(self) -> None:
        for alert in ({"room": "room"}, {"room": "room", "body": ""},
                      {"room": "room", "body": "  "}, {"room": "room", "body": 5},
                      {"room": 5, "body": "x"}, {"room": None, "body": "x"},
                      {"room": "room", "body": "x", "subject": ["a"]},
                      {"room": "room", "body": "x", "from_nick": ""},
                      {"room": "room", "body": "x", "type": "chat"},
                      {"room": "room", "body": "x", "colour": "red"},
                      {"room": "room", "to": "alice@localhost", "body": "x"},
                      {"body": "x"}, {"to": "alice@localhost", "body": "x", "type": "groupchat"},
                      {"room": "room", "body": "bell \x07"}):
            self.refused(400, "bad_field", alert)

    def test_missing_token_is_401_with_a_bearer_challenge(self) -> None:
        fields = self.refused(401, "unauthorized", {"room": "room", "body": "x"}, token=None)
        self.assertEqual(fields["www-authenticate"], 'Bearer realm="convergence"')

    def test_wrong_token_is_401(self) -> None:
        for token in ("wrong", SECRET + "x", SECRET[:-1], OTHER.upper()):
            fields = self.refused(401, "unauthorized", {"room": "room", "body": "x"},
                                  token=token)
            self.assertIn('error="invalid_token"', fields["www-authenticate"])

    def test_other_schemes_are_401(self) -> None:
        self.refused(401, "unauthorized", {"room": "room", "body": "x"}, token=None,
                     headers={"Authorization": f"Basic {SECRET}"})
        self.refused(401, "unauthorized", {"room": "room", "body": "x"}, token=None,
                     headers={"Authorization": "Bearer"})

    def test_the_second_token_works_too(self) -> None:
        status, _, _ = self.http({"room": "room", "body": "x"}, token=OTHER)
        self.assertEqual(status, 202)

    def test_oversized_body_is_413(self) -> None:
        self.refused(413, "too_large", {"room": "room", "body": "x" * 600})

    def test_other_methods_are_405(self) -> None:
        for method in ("GET", "PUT", "DELETE", "OPTIONS"):
            fields = self.refused(405, "method_not_allowed", None, method=method)
            self.assertEqual(fields["allow"], "POST")

    def test_paths_below_are_404(self) -> None:
        self.refused(404, "not_found", {"room": "room", "body": "x"}, path="/api/alert/x")
        status, _, _ = self.http({"room": "room", "body": "x"}, path="/api/other")
        self.assertEqual(status, 404)
        self.nothing_sent(self.alice)

    def test_trailing_slash_is_the_endpoint(self) -> None:
        status, _, _ = self.http({"room": "room", "body": "x"}, path="/api/alert/")
        self.assertEqual(status, 202)


class RateLimitTests(AlertFixture):
    alert_config = LIMITED

    def test_burst_then_429_with_retry_after_then_again(self) -> None:
        for n in range(3):
            self.assertEqual(self.http({"to": "alice@localhost", "body": f"{n}"})[0], 202)
        self.alice.read()
        status, fields, answer = self.http({"to": "alice@localhost", "body": "too many"})
        self.assertEqual((status, answer["error"]), (429, "rate_limited"))
        self.assertEqual(fields["retry-after"], "1")
        self.nothing_sent(self.alice)
        # another token has its own bucket
        self.assertEqual(self.http({"to": "alice@localhost", "body": "ci"}, token=OTHER)[0],
                         202)
        self.clock.advance(1.0)
        self.assertEqual(self.http({"to": "alice@localhost", "body": "later"})[0], 202)
        self.assertEqual(self.http({"to": "alice@localhost", "body": "x"})[0], 429)

    def test_retry_after_counts_whole_seconds(self) -> None:
        tokens = Tokens((("t", "secret"),), rate=0.25, burst=1)
        self.assertEqual(tokens.retry_after("t", 100.0), 0)
        self.assertEqual(tokens.retry_after("t", 100.0), 4)
        self.assertEqual(tokens.retry_after("t", 102.5), 2)
        self.assertEqual(tokens.retry_after("t", 104.0), 0)

    def test_rate_zero_is_unlimited(self) -> None:
        tokens = Tokens((("t", "secret"),), rate=0.0, burst=1)
        self.assertEqual([tokens.retry_after("t", 1.0) for _ in range(100)], [0] * 100)

    def test_bad_requests_count_too(self) -> None:
        for _ in range(3):
            self.assertEqual(self.http(b"{")[0], 400)
        self.assertEqual(self.http({"to": "alice@localhost", "body": "x"})[0], 429)


class TokenTests(SynchronousTestCase):
    def test_every_token_compared_with_compare_digest(self) -> None:
        calls: list[tuple[bytes, bytes]] = []
        real = tokens_module.hmac.compare_digest

        def recording(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return real(a, b)

        self.patch(tokens_module.hmac, "compare_digest", recording)
        tokens = Tokens((("a", "first-secret"), ("b", "second-secret"), ("c", "third")),
                        1.0, 1)
        self.assertEqual(tokens.match(b"first-secret"), "a")  # no early exit
        self.assertEqual(len(calls), 3)
        self.assertTrue(all(len(x) == len(y) == 32 for x, y in calls))
        calls.clear()
        self.assertIsNone(tokens.match(b"nothing"))
        self.assertEqual(len(calls), 3)
        self.assertEqual(tokens.match(b"third"), "c")

    def test_no_tokens_is_false(self) -> None:
        self.assertFalse(Tokens((), 1.0, 1))
        self.assertTrue(Tokens((("a", "b"),), 1.0, 1))


class LogTests(AlertFixture):
    alert_config = LIMITED

    def test_tokens_never_logged_their_names_are(self) -> None:
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.room_with((self.alice, "Alice"))
        self.http({"room": "room", "body": "ok"})
        self.http({"room": "room", "body": "x"}, token=SECRET + "-wrong")
        self.http({"room": "nowhere", "body": "x"})
        self.http(b"{")
        for _ in range(4):
            self.http({"to": "alice@localhost", "body": "x"})
        text = "\n".join(repr(e) for e in events)
        self.assertIn("monitoring", text)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(SECRET[:12], text)
        from twisted.logger import formatEvent
        formatted = "\n".join(formatEvent(e) for e in events)
        self.assertIn("alert", formatted)
        self.assertNotIn(SECRET, formatted)

    def test_config_repr_hides_the_secrets(self) -> None:
        self.assertNotIn(SECRET, repr(CONFIG))
        self.assertNotIn(SECRET, repr(Config(alert=CONFIG)))


class ParseTests(SynchronousTestCase):
    def test_room_alert(self) -> None:
        alert = parse_alert(b'{"room": "ops", "body": "b", "subject": "s", "from_nick": "n"}')
        self.assertEqual((alert.room, alert.body, alert.subject, alert.from_nick, alert.to),
                         ("ops", "b", "s", "n", None))

    def test_jid_alert(self) -> None:
        alert = parse_alert('{"to": "a@localhost", "body": "ü", "type": "chat"}'.encode())
        self.assertEqual((alert.to, alert.body, alert.type), ("a@localhost", "ü", "chat"))
        self.assertEqual(parse_alert(b'{"to": "a@localhost", "body": "x"}').type, "normal")

    def test_errors_are_400(self) -> None:
        with self.assertRaises(AlertRefused) as caught:
            parse_alert(b'{"room": "ops", "body": "\\u0000"}')
        self.assertEqual(caught.exception.status, 400)


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> Path:
        path = Path(self.mktemp())
        path.write_text(text)
        return path

    def test_defaults_no_tokens(self) -> None:
        alert = load_config().alert
        self.assertEqual(alert, AlertConfig())
        self.assertEqual((alert.tokens, alert.create_rooms, alert.nick, alert.max_body_size,
                          alert.rate, alert.burst), ((), False, "alert", 16384, 1.0, 10))

    def test_tokens_as_a_list_or_a_table(self) -> None:
        c = load_config(self.write('[alert]\ntokens = ["ops:abc:def", "ci:xyz"]\n'
                                   'create_rooms = true\nnick = "Monitor"\n'
                                   'max_body_size = 1024\nrate = 0.5\nburst = 2\n'))
        self.assertEqual(c.alert.tokens, (("ops", "abc:def"), ("ci", "xyz")))
        self.assertEqual((c.alert.create_rooms, c.alert.nick, c.alert.max_body_size,
                          c.alert.rate, c.alert.burst), (True, "Monitor", 1024, 0.5, 2))
        c = load_config(self.write('[alert.tokens]\nops = "abc"\n'))
        self.assertEqual(c.alert.tokens, (("ops", "abc"),))

    def test_bad_values(self) -> None:
        for text in ('tokens = "ops:abc"', 'tokens = ["nocolon"]', 'tokens = [":abc"]',
                     'tokens = ["ops:"]', 'tokens = ["ops:a b"]', 'tokens = ["o p:abc"]',
                     'tokens = ["ops:a", "ops:b"]', 'tokens = [1]', 'create_rooms = 1',
                     'nick = ""', 'max_body_size = 10', 'rate = -1', 'burst = 0',
                     'colour = "red"'):
            with self.assertRaises(ConfigError, msg=text) as caught:
                load_config(self.write(f"[alert]\n{text}\n"))
            self.assertIn("alert", str(caught.exception))

    def test_error_messages_hide_secrets(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(self.write('[alert]\ntokens = ["ops:secret-one", "ops:secret-two"]\n'))
        self.assertNotIn("secret-", str(caught.exception))

    def test_environment_token(self) -> None:
        c = load_config(None, None, {ENV_ALERT_TOKEN: "from-env"})
        self.assertEqual(c.alert.tokens, (("env", "from-env"),))
        c = load_config(self.write('[alert]\ntokens = ["ops:abc", "env:old"]\n'), None,
                        {ENV_ALERT_TOKEN: "new"})
        self.assertEqual(c.alert.tokens, (("ops", "abc"), ("env", "new")))
        self.assertEqual(load_config(None, None, {ENV_ALERT_TOKEN: ""}).alert.tokens, ())
        self.assertEqual(load_config(None, None, {}).alert.tokens, ())
        with self.assertRaises(ConfigError):
            load_config(None, None, {ENV_ALERT_TOKEN: "has space"})

    def test_environment_ignored_without_environ(self) -> None:
        import os
        self.patch(os, "environ", {**os.environ, ENV_ALERT_TOKEN: "x"})
        self.assertEqual(load_config().alert.tokens, ())

    def test_plugin_passes_the_environment(self) -> None:
        import os

        from convergence import plugin

        seen: list[Any] = []
        real = plugin.load_config

        def spy(path: Any, overrides: Any, environ: Any = None) -> Config:
            seen.append(environ)
            raise ConfigError("stop here")

        self.patch(plugin, "load_config", spy)
        options = plugin.Options()
        options.parseOptions([])
        with self.assertRaises(SystemExit):
            plugin.ConvergenceServiceMaker().makeService(options)
        self.assertIs(seen[0], os.environ)
        self.assertIsNotNone(real)


class MountTests(SynchronousTestCase):
    """build_alerts: on with a token and an HTTP listener, else off."""

    def site(self) -> Any:
        return make_site(Container(None, []))

    def test_off_without_tokens(self) -> None:
        site = self.site()
        self.assertIsNone(build_alerts(Config(), object(), site, None))
        self.assertNotIn("api", site.root.resources)

    def test_off_without_http(self) -> None:
        config = Config(alert=CONFIG, listen=ListenConfig(http_port=0))
        site = self.site()
        self.assertIsNone(build_alerts(config, object(), site, None))
        self.assertNotIn("api", site.root.resources)

    def test_on_with_a_token_body_capped_by_http(self) -> None:
        config = Config(alert=dataclasses.replace(CONFIG, max_body_size=4096),
                        http=HttpConfig(max_body_size=2048))
        site = self.site()
        resource = build_alerts(config, object(), site, None)
        self.assertIsNotNone(resource)
        self.assertEqual(resource.max_body_size, 2048)
        self.assertIn("api", site.root.resources)


class OffTests(MucFixture):
    def test_not_mounted_is_404(self) -> None:
        site = make_site(Container(None, []))
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"POST /api/alert HTTP/1.1\r\nHost: x\r\n"
                             b"Authorization: Bearer " + SECRET.encode() +
                             b"\r\nContent-Length: 2\r\n\r\n{}")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 404"))
        channel.connectionLost(Failure(ConnectionDone()))
