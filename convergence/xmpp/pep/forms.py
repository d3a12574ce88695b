# -*- test-case-name: tests.test_pep -*-
"""
The XEP-0004 data forms that PEP needs: reading a submitted form and
writing a form with typed fields (node configuration, publish-options).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

__all__ = ["DATA", "Field", "FormError", "build", "parse_submit"]

DATA = "jabber:x:data"
_X = f"{{{DATA}}}x"
_FIELD = f"{{{DATA}}}field"
_VALUE = f"{{{DATA}}}value"
_OPTION = f"{{{DATA}}}option"
#: fields and values per submitted form (a form is no place for a flood)
MAX_FIELDS = 64
MAX_VALUES = 256


class FormError(ValueError):
    """A submitted form that cannot be read."""


@dataclass(frozen=True)
class Field:
    """One field of a form the server writes."""

    var: str
    type: str
    values: tuple[str, ...] = ()
    label: str | None = None
    options: tuple[str, ...] = ()


def parse_submit(x: etree._Element) -> tuple[str | None, dict[str, list[str]]]:
    """
    The C{FORM_TYPE} and the values by field of a submitted form.

    @raise FormError: not a submit form, too big, or a field without var.
    """
    if x.tag != _X or x.get("type") != "submit":
        raise FormError("expected a data form of type submit")
    fields: dict[str, list[str]] = {}
    elements = x.findall(_FIELD)
    if len(elements) > MAX_FIELDS:
        raise FormError("too many fields")
    for field in elements:
        var = field.get("var")
        if not var:
            raise FormError("a field without var")
        values = [v.text or "" for v in field.findall(_VALUE)]
        if len(values) > MAX_VALUES:
            raise FormError("too many values")
        fields[var] = values
    form_type = fields.pop("FORM_TYPE", [None])
    return (form_type[0] if form_type else None), fields


def build(form_type: str, fields: list[Field], type_: str = "form") -> etree._Element:
    """A form (or a result) with a hidden C{FORM_TYPE} and C{fields}."""
    x = etree.Element(_X, nsmap={None: DATA}, type=type_)
    hidden = etree.SubElement(x, _FIELD, var="FORM_TYPE", type="hidden")
    etree.SubElement(hidden, _VALUE).text = form_type
    for f in fields:
        element = etree.SubElement(x, _FIELD, var=f.var, type=f.type)
        if f.label:
            element.set("label", f.label)
        for option in f.options:
            etree.SubElement(etree.SubElement(element, _OPTION), _VALUE).text = option
        for value in f.values:
            etree.SubElement(element, _VALUE).text = value
    return x
