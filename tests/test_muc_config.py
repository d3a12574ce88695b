"""XEP-0045 configuration: the xmpp.muc_* keys, the muc#roomconfig form,
nicknames and the affiliation rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, load_config
from convergence.xmpp.muc.affiliations import (
    affiliation_change_error,
    default_role,
    role_change_error,
)
from convergence.xmpp.muc.forms import FormError
from convergence.xmpp.muc.nick import BadNick, fold, prepare_nick
from convergence.xmpp.muc.roomconfig import RoomConfig, apply_form, config_form
from tests.muchelpers import MucFixture, error, of

XDATA = "jabber:x:data"


class ConfigKeyTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_defaults_and_values(self) -> None:
        x = load_config().xmpp
        self.assertEqual((x.muc_enabled, x.muc_subdomain, x.muc_room_creation, x.muc_admins),
                         (True, "conference", "local", ()))
        self.assertEqual((x.muc_archive, x.muc_archive_retention), (True, 365))
        x = load_config(self.write(
            '[xmpp]\nmuc_subdomain = "rooms"\nmuc_room_creation = "admins"\n'
            'muc_admins = ["Boss@localhost"]\nmuc_history_default = 5\nmuc_history_max = 50\n'
            'muc_max_rooms = 3\nmuc_max_occupants = 10\nmuc_max_nick_length = 20\n'
            'muc_enabled = false\nmuc_occupant_rate = 0\nmuc_occupant_burst = 5\n'
            'muc_archive = false\nmuc_archive_retention = 0\n')).xmpp
        self.assertEqual((x.muc_occupant_rate, x.muc_occupant_burst), (0.0, 5))
        self.assertEqual((x.muc_archive, x.muc_archive_retention), (False, 0))
        self.assertEqual((x.muc_subdomain, x.muc_room_creation, x.muc_admins),
                         ("rooms", "admins", ("boss@localhost",)))
        self.assertEqual((x.muc_history_default, x.muc_history_max, x.muc_max_rooms,
                          x.muc_max_occupants, x.muc_max_nick_length, x.muc_enabled),
                         (5, 50, 3, 10, 20, False))

    def test_errors_name_the_key(self) -> None:
        for text, key in [
                ('muc_subdomain = "a.b"', "xmpp.muc_subdomain"),
                ('muc_subdomain = ""', "xmpp.muc_subdomain"),
                ('muc_room_creation = "everyone"', "xmpp.muc_room_creation"),
                ('muc_admins = ["localhost"]', "xmpp.muc_admins[0]"),
                ('muc_admins = ["a@b/c"]', "xmpp.muc_admins[0]"),
                ('muc_admins = "a@b"', "xmpp.muc_admins"),
                ('muc_max_rooms = 0', "xmpp.muc_max_rooms"),
                ('muc_max_occupants = true', "xmpp.muc_max_occupants"),
                ('muc_max_nick_length = 0', "xmpp.muc_max_nick_length"),
                ('muc_history_default = 30\nmuc_history_max = 10', "xmpp.muc_history_default"),
                ('muc_enabled = 1', "xmpp.muc_enabled"),
                ('muc_occupant_rate = -1', "xmpp.muc_occupant_rate"),
                ('muc_occupant_burst = 0', "xmpp.muc_occupant_burst"),
                ('muc_archive = "yes"', "xmpp.muc_archive"),
                ('muc_archive_retention = -1', "xmpp.muc_archive_retention")]:
            with self.assertRaises(ConfigError) as caught:
                load_config(self.write("[xmpp]\n" + text + "\n"))
            self.assertTrue(str(caught.exception).startswith(key), (text, caught.exception))


def submit(**fields: str) -> etree._Element:
    x = etree.Element(f"{{{XDATA}}}x", type="submit")
    for var, value in fields.items():
        field = etree.SubElement(x, f"{{{XDATA}}}field", var=var.replace("__", "#"))
        etree.SubElement(field, f"{{{XDATA}}}value").text = value
    return x


class FormTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        config = apply_form(RoomConfig(), submit(
            muc__roomconfig_roomname="Cave", muc__roomconfig_persistentroom="true",
            muc__roomconfig_moderatedroom="1", muc__roomconfig_whois="anyone",
            muc__roomconfig_maxusers="10", muc__maxhistoryfetch="3",
            muc__roomconfig_passwordprotectedroom="1", muc__roomconfig_roomsecret="s"), 50, 20)
        self.assertEqual(config, RoomConfig(name="Cave", persistent=True, moderated=True,
                                            whois="anyone", max_users=10, history_length=3,
                                            password="s"))
        self.assertEqual(RoomConfig.from_json(config.to_json(), RoomConfig()), config)
        form = config_form(config, 50, 20)
        values = {f.get("var"): [v.text for v in f.findall(f"{{{XDATA}}}value")]
                  for f in form.iter(f"{{{XDATA}}}field")}
        self.assertEqual(values["muc#roomconfig_roomsecret"], ["s"])
        self.assertEqual(values["muc#roomconfig_maxusers"], ["10"])

    def test_unprotecting_drops_the_password(self) -> None:
        config = apply_form(RoomConfig(password="s"),
                            submit(muc__roomconfig_passwordprotectedroom="0"), 50, 20)
        self.assertEqual(config.password, "")

    def test_wrong_types(self) -> None:
        for fields in ({"muc__roomconfig_publicroom": "yes"},
                       {"muc__roomconfig_maxusers": "0"},
                       {"muc__maxhistoryfetch": "21"},
                       {"FORM_TYPE": "urn:other"}):
            with self.assertRaises(FormError):
                apply_form(RoomConfig(), submit(**fields), 50, 20)
        form = submit()
        form.set("type", "form")
        with self.assertRaises(FormError):
            apply_form(RoomConfig(), form, 50, 20)


class NickTests(SynchronousTestCase):
    def test_profile(self) -> None:
        self.assertEqual(prepare_nick("  Bob   the  Builder ", 64), "Bob the Builder")
        self.assertEqual(prepare_nick("\uff21", 64), "A")  # NFKC
        self.assertEqual(fold("ALICE"), fold("alice"))
        for bad, condition in ((None, "jid-malformed"), ("", "jid-malformed"),
                               ("   ", "not-acceptable"), ("x" * 11, "not-acceptable"),
                               ("a\u200bb", "not-acceptable")):
            with self.assertRaises(BadNick) as caught:
                prepare_nick(bad, 10)
            self.assertEqual(caught.exception.condition, condition)


class RuleTests(SynchronousTestCase):
    def test_default_roles(self) -> None:
        self.assertEqual([default_role(a, False) for a in ("owner", "admin", "member", "none")],
                         ["moderator", "moderator", "participant", "participant"])
        self.assertEqual(default_role("none", True), "visitor")

    def test_role_changes(self) -> None:
        self.assertIsNone(role_change_error("moderator", "none", "member", "none"))
        self.assertEqual(role_change_error("participant", "member", "none", "none"), "forbidden")
        self.assertEqual(role_change_error("moderator", "none", "none", "moderator"),
                         "not-allowed")
        self.assertIsNone(role_change_error("moderator", "admin", "none", "moderator"))
        self.assertEqual(role_change_error("moderator", "owner", "admin", "none"), "not-allowed")

    def test_affiliation_changes(self) -> None:
        self.assertIsNone(affiliation_change_error("owner", "admin", "none"))
        self.assertIsNone(affiliation_change_error("admin", "member", "outcast"))
        self.assertEqual(affiliation_change_error("admin", "admin", "none"), "not-allowed")
        self.assertEqual(affiliation_change_error("member", "none", "member"), "forbidden")


class ServiceConfigTests(MucFixture):
    config: ClassVar[dict[str, Any]] = {"muc_subdomain": "rooms", "muc_max_nick_length": 5,
              "muc_admins": ("carol@localhost",)}

    def test_subdomain_nick_length_and_admins(self) -> None:
        self.alice.send("<presence to='r@rooms.localhost/Alice'/>")
        self.assertTrue(of(self.alice.read(), "presence", from_="r@rooms.localhost/Alice"))
        self.bob.send("<presence to='r@rooms.localhost/Bobby1'/>")
        self.assertEqual(error(of(self.bob.read(), "presence", type="error")[0]),
                         "not-acceptable")
        # carol, a service admin, owns every room
        self.carol.send("<iq type='get' id='c' to='r@rooms.localhost'>"
                        "<query xmlns='http://jabber.org/protocol/muc#owner'/></iq>")
        self.assertEqual(of(self.carol.read(), "iq", id="c")[0].get("type"), "result")


class DisabledTests(MucFixture):
    config: ClassVar[dict[str, Any]] = {"muc_enabled": False}

    def test_no_service(self) -> None:
        self.alice.send("<presence to='r@conference.localhost/Alice'/>")
        self.assertEqual(self.server.muc, None)
        self.alice.send("<message to='r@conference.localhost' type='groupchat'><body>x</body>"
                        "</message>")
        self.assertEqual(error(of(self.alice.read(), "message")[0]), "remote-server-not-found")
