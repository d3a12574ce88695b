# -*- test-case-name: tests.test_pep -*-
"""
The configuration of a PEP node (XEP-0060 section 8.2, the subset PEP
needs) and its C{pubsub#node_config} form, also read from a publish's
C{pubsub#publish-options} (XEP-0060 7.1.5, XEP-0223).

Fields: C{pubsub#title}, C{pubsub#access_model} (open, presence, roster,
whitelist), C{pubsub#roster_groups_allowed}, C{pubsub#max_items} (1 to
the server's limit, C{max} meaning the limit), C{pubsub#persist_items},
C{pubsub#send_last_published_item} (never, on_sub, on_sub_and_presence),
C{pubsub#notify_retract}.  Fields the server does not know are ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from convergence.xmpp.pep.forms import Field, build

__all__ = ["ACCESS_MODELS", "NODE_CONFIG", "PUBLISH_OPTIONS", "ConfigInvalid",
           "NodeConfig"]

NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
ACCESS_MODELS = ("open", "presence", "roster", "whitelist")
SEND_LAST = ("never", "on_sub", "on_sub_and_presence")
_TRUE = ("1", "true")
_FALSE = ("0", "false")
#: characters of a title, of a roster group name
MAX_TEXT = 1023


class ConfigInvalid(ValueError):
    """A field's value is not acceptable; C{field} names it."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(f"{field}: {text}")
        self.field = field


@dataclass(frozen=True)
class NodeConfig:
    """One node's configuration; the defaults are PEP's (XEP-0163 4.3)."""

    access_model: str = "presence"
    max_items: int = 1
    persist_items: bool = True
    send_last_published_item: str = "on_sub_and_presence"
    roster_groups_allowed: tuple[str, ...] = ()
    title: str = ""
    notify_retract: bool = False

    # Storage
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["roster_groups_allowed"] = list(self.roster_groups_allowed)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "roster_groups_allowed" in values:
            values["roster_groups_allowed"] = tuple(values["roster_groups_allowed"])
        return cls(**values)

    # Forms
    def with_fields(self, submitted: Mapping[str, list[str]], max_items: int) -> NodeConfig:
        """
        This configuration changed by submitted fields (C{pubsub#…}).

        @param max_items: the server's limit (what C{max} means).
        @raise ConfigInvalid: a value is out of range.
        """
        return replace(self, **_changes(submitted, max_items))

    def mismatch(self, submitted: Mapping[str, list[str]], max_items: int) -> str | None:
        """The first field whose submitted value differs from this
        configuration (publish-options preconditions), or C{None}."""
        for var in submitted:
            try:
                changes = _changes({var: submitted[var]}, max_items)
            except ConfigInvalid:
                return var
            if any(getattr(self, k) != v for k, v in changes.items()):
                return var
        return None

    def form(self, max_items: int, type_: str = "form") -> Any:
        """The C{pubsub#node_config} form showing this configuration."""
        return build(NODE_CONFIG, [
            Field("pubsub#title", "text-single", (self.title,), "A friendly name"),
            Field("pubsub#access_model", "list-single", (self.access_model,),
                  "Who may subscribe and retrieve items", ACCESS_MODELS),
            Field("pubsub#roster_groups_allowed", "list-multi",
                  self.roster_groups_allowed, "Roster groups allowed (roster model)"),
            Field("pubsub#max_items", "text-single", (str(self.max_items),),
                  f"Items to keep (at most {max_items})"),
            Field("pubsub#persist_items", "boolean", (_bool(self.persist_items),),
                  "Keep items in storage"),
            Field("pubsub#send_last_published_item", "list-single",
                  (self.send_last_published_item,), "When to send the last item",
                  SEND_LAST),
            Field("pubsub#notify_retract", "boolean", (_bool(self.notify_retract),),
                  "Notify subscribers when items are retracted"),
        ], type_)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _one(var: str, values: list[str]) -> str:
    if len(values) != 1:
        raise ConfigInvalid(var, "expected one value")
    return values[0].strip()


def _changes(submitted: Mapping[str, list[str]], max_items: int) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for var, values in submitted.items():
        if var == "pubsub#access_model":
            value = _one(var, values)
            if value not in ACCESS_MODELS:
                raise ConfigInvalid(var, f"unsupported access model {value!r}")
            changes["access_model"] = value
        elif var == "pubsub#max_items":
            value = _one(var, values)
            if value == "max":
                changes["max_items"] = max_items
                continue
            try:
                number = int(value)
            except ValueError:
                raise ConfigInvalid(var, "not a number") from None
            if not 1 <= number <= max_items:
                raise ConfigInvalid(var, f"must lie between 1 and {max_items}")
            changes["max_items"] = number
        elif var in ("pubsub#persist_items", "pubsub#notify_retract"):
            value = _one(var, values).lower()
            if value not in _TRUE + _FALSE:
                raise ConfigInvalid(var, "not a boolean")
            changes[var.partition("#")[2]] = value in _TRUE
        elif var == "pubsub#send_last_published_item":
            value = _one(var, values)
            if value not in SEND_LAST:
                raise ConfigInvalid(var, f"unsupported value {value!r}")
            changes["send_last_published_item"] = value
        elif var == "pubsub#roster_groups_allowed":
            groups = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
            if any(len(g) > MAX_TEXT for g in groups):
                raise ConfigInvalid(var, "a group name is too long")
            changes["roster_groups_allowed"] = groups
        elif var == "pubsub#title":
            value = " ".join(values)
            if len(value) > MAX_TEXT:
                raise ConfigInvalid(var, "too long")
            changes["title"] = value
    return changes
