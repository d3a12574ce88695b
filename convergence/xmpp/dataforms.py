# -*- test-case-name: tests.test_dataforms -*-
"""XEP-0004 data forms: the little the server's features build and read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

DATA = "jabber:x:data"
_X = f"{{{DATA}}}x"
_FIELD = f"{{{DATA}}}field"
_VALUE = f"{{{DATA}}}value"

#: One field: its var, its values, and its type (C{None}: left out).
Field = tuple[str, Sequence[str], "str | None"]


def form(form_type: str, fields: Iterable[Field], type_: str = "result") -> etree._Element:
    """An C{<x/>} of C{type_} scoped by a hidden C{FORM_TYPE} (XEP-0068)."""
    x = etree.Element(_X, nsmap={None: DATA}, type=type_)
    add_field(x, "FORM_TYPE", [form_type], "hidden")
    for var, values, field_type in fields:
        add_field(x, var, values, field_type)
    return x


def add_field(x: etree._Element, var: str, values: Sequence[str],
              field_type: str | None = None) -> etree._Element:
    """Append a field with its values to the form C{x}."""
    field = etree.SubElement(x, _FIELD, var=var)
    if field_type is not None:
        field.set("type", field_type)
    for value in values:
        etree.SubElement(field, _VALUE).text = value
    return field


def find_form(parent: etree._Element, form_type: str | None = None) -> etree._Element | None:
    """The data form child of C{parent} (of C{form_type}, if given)."""
    for x in parent.iterchildren(_X):
        if form_type is None or values(x).get("FORM_TYPE", [None])[0] == form_type:
            return x
    return None


def values(x: etree._Element) -> dict[str, list[str]]:
    """Each field's var with its values (text of each C{<value/>})."""
    out: dict[str, list[str]] = {}
    for field in x.iterchildren(_FIELD):
        var = field.get("var")
        if var is not None:
            out[var] = [v.text or "" for v in field.iterchildren(_VALUE)]
    return out
