# -*- test-case-name: tests.test_muc_config -*-
"""XEP-0004 data forms: just what the room configuration needs."""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from convergence.xmpp.ns import DATA_FORMS

__all__ = ["FormError", "add_field", "form", "parse_boolean", "submitted"]


class FormError(ValueError):
    """A submitted form that does not fit: C{bad-request} or C{not-acceptable}."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


def form(parent: etree._Element | None, type_: str, form_type: str,
         title: str | None = None) -> etree._Element:
    """An C{<x xmlns='jabber:x:data'/>} with its hidden FORM_TYPE."""
    tag = f"{{{DATA_FORMS}}}x"
    x = (etree.Element(tag, nsmap={None: DATA_FORMS}) if parent is None
         else etree.SubElement(parent, tag, nsmap={None: DATA_FORMS}))
    x.set("type", type_)
    if title:
        etree.SubElement(x, f"{{{DATA_FORMS}}}title").text = title
    add_field(x, "FORM_TYPE", (form_type,), "hidden")
    return x


def add_field(x: etree._Element, var: str, values: Iterable[str], type_: str | None = None,
              label: str | None = None,
              options: Iterable[tuple[str, str]] = ()) -> etree._Element:
    field = etree.SubElement(x, f"{{{DATA_FORMS}}}field", var=var)
    if type_:
        field.set("type", type_)
    if label:
        field.set("label", label)
    for value in values:
        etree.SubElement(field, f"{{{DATA_FORMS}}}value").text = value
    for value, option_label in options:
        option = etree.SubElement(field, f"{{{DATA_FORMS}}}option", label=option_label)
        etree.SubElement(option, f"{{{DATA_FORMS}}}value").text = value
    return field


def submitted(x: etree._Element, form_type: str) -> dict[str, list[str]]:
    """
    The fields of a submitted form, var -> values.

    @raise FormError: not a submit form, or of another FORM_TYPE.
    """
    if x.get("type") != "submit":
        raise FormError("bad-request", "Expected a form of type submit")
    fields: dict[str, list[str]] = {}
    for field in x.findall(f"{{{DATA_FORMS}}}field"):
        var = field.get("var")
        if not var:
            raise FormError("bad-request", "A field without var")
        fields[var] = [v.text or "" for v in field.findall(f"{{{DATA_FORMS}}}value")]
    kind = fields.pop("FORM_TYPE", [form_type])
    if kind != [form_type]:
        raise FormError("bad-request", f"Expected FORM_TYPE {form_type}")
    return fields


def parse_boolean(var: str, values: list[str]) -> bool:
    """An XEP-0004 boolean: 1/true or 0/false, nothing else."""
    if len(values) == 1 and values[0] in ("1", "true"):
        return True
    if len(values) == 1 and values[0] in ("0", "false"):
        return False
    raise FormError("not-acceptable", f"{var}: expected a boolean")
