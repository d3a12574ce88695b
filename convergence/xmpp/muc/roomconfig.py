# -*- test-case-name: tests.test_muc_config -*-
"""
A room's configuration (XEP-0045 section 10.2 and the
C{muc#roomconfig} FORM_TYPE of section 15.5.3): the form an owner gets,
the submitted form applied with its types checked, and JSON for the store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from lxml import etree

from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.muc.forms import (
    FormError,
    add_field,
    form,
    parse_boolean,
    submitted,
)
from convergence.xmpp.muc.ns import ROOMCONFIG

__all__ = ["RoomConfig", "apply_form", "config_form", "affiliation_lists"]

_P = "muc#roomconfig_"
WHOIS = ("moderators", "anyone")


@dataclass(frozen=True)
class RoomConfig:
    """What an owner configures."""

    name: str = ""
    description: str = ""
    #: whether participants (not only moderators) may change the subject
    change_subject: bool = False
    public: bool = True
    persistent: bool = False
    moderated: bool = False
    members_only: bool = False
    password: str = ""
    #: C{anyone}: non-anonymous; C{moderators}: semi-anonymous
    whois: str = "moderators"
    #: occupants at most (the service's limit caps it)
    max_users: int = 0
    #: messages of history sent to a joining occupant at most
    history_length: int = 20
    #: whether occupants may invite others
    allow_invites: bool = False
    #: whether the room keeps its messages in its XEP-0313 archive
    archive: bool = True

    @property
    def password_protected(self) -> bool:
        return bool(self.password)

    @property
    def non_anonymous(self) -> bool:
        return self.whois == "anyone"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, defaults: RoomConfig) -> RoomConfig:
        """A stored configuration; unknown or mistyped keys keep C{defaults}."""
        try:
            raw = json.loads(text)
        except ValueError:
            return defaults
        known = {f.name: type(getattr(defaults, f.name)) for f in fields(cls)}
        good = {k: v for k, v in raw.items() if k in known and type(v) is known[k]}
        return replace(defaults, **good)


def config_form(config: RoomConfig, max_users: int, max_history: int,
                owners: tuple[str, ...] = (), admins: tuple[str, ...] = ()) -> etree._Element:
    """The C{muc#roomconfig} form an owner fills in (10.1.3, 10.2), with
    the room's C{owners} and C{admins} (bare JIDs)."""
    x = form(None, "form", ROOMCONFIG, "Room configuration")
    add_field(x, _P + "roomname", (config.name,), "text-single", "Name")
    add_field(x, _P + "roomdesc", (config.description,), "text-single", "Description")
    add_field(x, _P + "changesubject", (_b(config.change_subject),), "boolean",
              "Participants may change the subject")
    add_field(x, _P + "publicroom", (_b(config.public),), "boolean",
              "Listed in the public directory")
    add_field(x, _P + "persistentroom", (_b(config.persistent),), "boolean",
              "Persistent (kept when empty)")
    add_field(x, _P + "moderatedroom", (_b(config.moderated),), "boolean",
              "Moderated (visitors have no voice)")
    add_field(x, _P + "membersonly", (_b(config.members_only),), "boolean",
              "Members only")
    add_field(x, _P + "allowinvites", (_b(config.allow_invites),), "boolean",
              "Occupants may invite others")
    add_field(x, _P + "passwordprotectedroom", (_b(config.password_protected),), "boolean",
              "Password required to enter")
    add_field(x, _P + "roomsecret", (config.password,), "text-private", "Password")
    add_field(x, _P + "whois", (config.whois,), "list-single",
              "Who may discover occupants' real JIDs",
              (("moderators", "Moderators only"), ("anyone", "Anyone")))
    add_field(x, _P + "maxusers", (str(config.max_users or max_users),), "list-single",
              "Maximum occupants",
              [(str(n), str(n)) for n in _steps(max_users)])
    add_field(x, "muc#maxhistoryfetch", (str(config.history_length),), "text-single",
              f"Messages of history sent on entering (at most {max_history})")
    add_field(x, _P + "enablearchiving", (_b(config.archive),), "boolean",
              "Archive messages (message archive, XEP-0313)")
    add_field(x, _P + "roomadmins", tuple(sorted(admins)), "jid-multi", "Room admins")
    add_field(x, _P + "roomowners", tuple(sorted(owners)), "jid-multi", "Room owners")
    return x


def affiliation_lists(x: etree._Element) -> dict[str, set[str]]:
    """The owners and admins a submitted form sets (C{"owner"}/C{"admin"}
    -> bare JIDs), for the lists it carries; a JID in both is an owner.

    @raise FormError: a value is not a JID (C{jid-malformed}).
    """
    values = submitted(x, ROOMCONFIG)
    lists: dict[str, set[str]] = {}
    for var, affiliation in ((_P + "roomowners", "owner"), (_P + "roomadmins", "admin")):
        if var not in values:
            continue
        jids = set()
        for value in values[var]:
            if not value.strip():
                continue
            try:
                jid = JID.parse(value.strip())
            except InvalidJID:
                raise FormError("jid-malformed", f"{var}: {value!r} is not a JID") from None
            jids.add(str(jid.bare))
        lists[affiliation] = jids
    if "owner" in lists and "admin" in lists:
        lists["admin"] -= lists["owner"]
    return lists


def _b(value: bool) -> str:
    return "1" if value else "0"


def _steps(limit: int) -> list[int]:
    steps = [n for n in (5, 10, 20, 30, 50, 100, 200, 500, 1000) if n < limit]
    return steps + [limit]


def _text(var: str, values: list[str]) -> str:
    if len(values) > 1:
        raise FormError("not-acceptable", f"{var}: expected one value")
    return values[0] if values else ""


def _int(var: str, values: list[str], low: int, high: int) -> int:
    text = _text(var, values)
    if not text.isdigit() or not low <= int(text) <= high:
        raise FormError("not-acceptable", f"{var}: expected a number from {low} to {high}")
    return int(text)


def apply_form(config: RoomConfig, x: etree._Element, max_users: int,
               max_history: int) -> RoomConfig:
    """
    C{config} changed by the submitted form C{x}; fields left out keep
    their values.

    @raise FormError: not a submit form, or a field of the wrong type or
        out of range (C{not-acceptable}).
    """
    values = submitted(x, ROOMCONFIG)
    changes: dict[str, object] = {}
    booleans = {"changesubject": "change_subject", "publicroom": "public",
                "persistentroom": "persistent", "moderatedroom": "moderated",
                "membersonly": "members_only", "allowinvites": "allow_invites"}
    for var, attr in booleans.items():
        if _P + var in values:
            changes[attr] = parse_boolean(_P + var, values[_P + var])
    # Prosody's field, and ejabberd's plain "mam"
    for var in (_P + "enablearchiving", "mam"):
        if var in values:
            changes["archive"] = parse_boolean(var, values[var])
    for var, attr in (("roomname", "name"), ("roomdesc", "description")):
        if _P + var in values:
            changes[attr] = _text(_P + var, values[_P + var])[:1024]
    if _P + "whois" in values:
        whois = _text(_P + "whois", values[_P + "whois"])
        if whois not in WHOIS:
            raise FormError("not-acceptable", f"{_P}whois: expected moderators or anyone")
        changes["whois"] = whois
    if _P + "maxusers" in values:
        changes["max_users"] = _int(_P + "maxusers", values[_P + "maxusers"], 1, max_users)
    if "muc#maxhistoryfetch" in values:
        changes["history_length"] = _int("muc#maxhistoryfetch",
                                         values["muc#maxhistoryfetch"], 0, max_history)
    protected = config.password_protected
    if _P + "passwordprotectedroom" in values:
        protected = parse_boolean(_P + "passwordprotectedroom",
                                  values[_P + "passwordprotectedroom"])
    password = config.password
    if _P + "roomsecret" in values:
        password = _text(_P + "roomsecret", values[_P + "roomsecret"])
    if protected and not password:
        raise FormError("not-acceptable", "A password-protected room needs a password")
    changes["password"] = password if protected else ""
    return replace(config, **changes)
