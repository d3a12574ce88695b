# -*- test-case-name: tests.test_mam -*-
"""XEP-0059 Result Set Management: the request C{<set/>} and the answer's."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

RSM = "http://jabber.org/protocol/rsm"
_SET = f"{{{RSM}}}set"


class BadSet(ValueError):
    """A request C{<set/>} that makes no sense (bad-request)."""


@dataclass(frozen=True)
class PageRequest:
    """
    @ivar max: items wanted (C{None}: the server's default).
    @ivar after: the page starts after this item.
    @ivar before: the page ends before this item (C{""}: the last page).
    @ivar index: the page starts at this position of the result set.
    """

    max: int | None = None
    after: str | None = None
    before: str | None = None
    index: int | None = None


def _count(text: str | None, name: str) -> int:
    text = (text or "").strip()
    if not text.isdigit() or len(text) > 9:
        raise BadSet(f"<{name}/> must be a non-negative integer")
    return int(text)


def parse_set(query: etree._Element) -> PageRequest:
    """The C{<set/>} child of C{query}, or an empty request if none."""
    element = query.find(_SET)
    if element is None:
        return PageRequest()
    values: dict[str, str | None] = {}
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{RSM}}}"):
            continue
        name = etree.QName(child).localname
        if name in values:
            raise BadSet(f"<{name}/> appears twice")
        values[name] = child.text or ""
    max_ = _count(values["max"], "max") if "max" in values else None
    index = _count(values["index"], "index") if "index" in values else None
    after = values.get("after")
    if after is not None and not after.strip():
        raise BadSet("<after/> needs an item id")
    before = values.get("before")
    return PageRequest(max_, after and after.strip(),
                       None if before is None else before.strip(), index)


def set_element(first: str | None, last: str | None, count: int,
                first_index: int | None) -> etree._Element:
    """The answer's C{<set/>}: first and last item of the page, the count."""
    element = etree.Element(_SET, nsmap={None: RSM})
    if first is not None:
        first_el = etree.SubElement(element, f"{{{RSM}}}first")
        first_el.text = first
        if first_index is not None:
            first_el.set("index", str(first_index))
        etree.SubElement(element, f"{{{RSM}}}last").text = last
    etree.SubElement(element, f"{{{RSM}}}count").text = str(count)
    return element
