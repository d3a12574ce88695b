# -*- test-case-name: tests.test_mam -*-
"""
The query form of XEP-0313 section 4.1 (a XEP-0004 data form with
FORM_TYPE C{urn:xmpp:mam:2}): the fields offered, and a submitted form
read into filters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from convergence.xmpp.jid import JID, InvalidJID

MAM = "urn:xmpp:mam:2"
DATA = "jabber:x:data"
XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate"
_X = f"{{{DATA}}}x"
_FIELD = f"{{{DATA}}}field"
_VALUE = f"{{{DATA}}}value"
#: XEP-0082 DateTime: a time zone is required
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

#: (var, type) of every field a query may use, in the order offered
FIELDS = (
    ("FORM_TYPE", "hidden"),
    ("with", "jid-single"),
    ("start", "text-single"),
    ("end", "text-single"),
    ("before-id", "text-single"),
    ("after-id", "text-single"),
    ("ids", "list-multi"),
    # understood (section 4.1.4); groupchat messages are never in a user
    # archive here, so either value gives the same results
    ("include-groupchat", "boolean"),
)
_KNOWN = frozenset(var for var, _ in FIELDS)


class BadForm(ValueError):
    """A submitted form that cannot be read (bad-request)."""


class UnknownField(ValueError):
    """A field this server does not implement (feature-not-implemented)."""


@dataclass(frozen=True)
class Filters:
    """What a submitted form asks for."""

    with_jid: JID | None = None
    start: float | None = None
    end: float | None = None
    before_id: str | None = None
    after_id: str | None = None
    ids: tuple[str, ...] | None = None


def form_element() -> etree._Element:
    """The form a client fetches to learn the fields (section 4.1.5)."""
    x = etree.Element(_X, nsmap={None: DATA}, type="form")
    for var, type_ in FIELDS:
        field = etree.SubElement(x, _FIELD, var=var, type=type_)
        if var == "FORM_TYPE":
            etree.SubElement(field, _VALUE).text = MAM
        elif var == "ids":
            validate = etree.SubElement(field, f"{{{XDATA_VALIDATE}}}validate",
                                        nsmap={None: XDATA_VALIDATE}, datatype="xs:string")
            etree.SubElement(validate, f"{{{XDATA_VALIDATE}}}open")
    return x


def parse_datetime(text: str) -> float:
    """Seconds since the epoch of an XEP-0082 DateTime.

    @raise BadForm: not one."""
    text = text.strip()
    if not _DATETIME.fullmatch(text):
        raise BadForm(f"not an XEP-0082 DateTime: {text!r}")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise BadForm(f"not a valid date and time: {text!r}") from None


def parse_form(query: etree._Element, max_ids: int) -> Filters:
    """
    The filters of the form in C{query} (none without a form).

    @raise BadForm: not a submitted form of FORM_TYPE C{urn:xmpp:mam:2}, a
        field twice, a value that does not fit its field, too many ids.
    @raise UnknownField: a field this server does not implement.
    """
    x = query.find(_X)
    if x is None:
        return Filters()
    if x.get("type", "submit") != "submit":
        raise BadForm("the form must be of type submit")
    values: dict[str, list[str]] = {}
    for field in x.iterchildren(_FIELD):
        var = field.get("var")
        if var is None:
            raise BadForm("a field without var")
        if var in values:
            raise BadForm(f"field {var!r} appears twice")
        values[var] = [(v.text or "").strip() for v in field.iterchildren(_VALUE)]
    if values.get("FORM_TYPE") != [MAM]:
        raise BadForm(f"FORM_TYPE must be {MAM}")
    unknown = sorted(set(values) - _KNOWN)
    if unknown:
        raise UnknownField(f"unknown field {unknown[0]!r}")

    def single(var: str) -> str | None:
        got = values.get(var)
        if not got:
            return None
        if len(got) != 1 or not got[0]:
            raise BadForm(f"field {var!r} takes one value")
        return got[0]

    with_jid = None
    text = single("with")
    if text is not None:
        try:
            with_jid = JID.parse(text)
        except InvalidJID:
            raise BadForm(f"with: not a JID: {text!r}") from None
    groupchat = single("include-groupchat")
    if groupchat is not None and groupchat not in ("true", "false", "1", "0"):
        raise BadForm("include-groupchat: not a boolean")
    start, end = single("start"), single("end")
    ids = None
    if "ids" in values:
        ids = tuple(dict.fromkeys(v for v in values["ids"] if v))
        if not ids:
            raise BadForm("ids: no id given")
        if len(ids) > max_ids:
            raise BadForm(f"ids: at most {max_ids} at once")
    return Filters(
        with_jid,
        None if start is None else parse_datetime(start),
        None if end is None else parse_datetime(end),
        single("before-id"), single("after-id"), ids)
