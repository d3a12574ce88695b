# -*- test-case-name: tests.test_mam -*-
"""
Archiving preferences (XEP-0441, carried in C{urn:xmpp:mam:2}): the
C{<prefs/>} element and the rule they make for one contact.
"""

from __future__ import annotations

from lxml import etree

from convergence.store.interfaces import ArchivePrefs
from convergence.xmpp.jid import JID, InvalidJID

MAM = "urn:xmpp:mam:2"
MODES = ("always", "roster", "never")
_PREFS = f"{{{MAM}}}prefs"


class BadPrefs(ValueError):
    """A C{<prefs/>} a client sent that cannot be applied."""


def parse_prefs(element: etree._Element, max_jids: int) -> ArchivePrefs:
    """
    The preferences of an iq set; JIDs are prepared, duplicates dropped.

    @raise BadPrefs: no or an unknown default, a malformed JID, more than
        C{max_jids} JIDs in all.
    """
    default = element.get("default")
    if default not in MODES:
        raise BadPrefs("default must be always, roster or never")
    lists: dict[str, list[str]] = {}
    total = 0
    for name in ("always", "never"):
        jids: list[str] = []
        for container in element.iterchildren(f"{{{MAM}}}{name}"):
            for child in container.iterchildren(f"{{{MAM}}}jid"):
                try:
                    jid = str(JID.parse((child.text or "").strip()))
                except InvalidJID:
                    raise BadPrefs(f"not a JID: {child.text!r}") from None
                if jid not in jids:
                    jids.append(jid)
        total += len(jids)
        lists[name] = jids
    if total > max_jids:
        raise BadPrefs(f"at most {max_jids} JIDs")
    never = set(lists["never"])
    # a JID in both lists is never archived: the stricter wish wins
    always = tuple(j for j in lists["always"] if j not in never)
    return ArchivePrefs(default, always, tuple(lists["never"]))


def prefs_element(prefs: ArchivePrefs) -> etree._Element:
    """C{<prefs/>} with both lists, present even when empty (XEP-0441 2.1)."""
    element = etree.Element(_PREFS, nsmap={None: MAM}, default=prefs.default)
    for name, jids in (("always", prefs.always), ("never", prefs.never)):
        container = etree.SubElement(element, f"{{{MAM}}}{name}")
        for jid in jids:
            etree.SubElement(container, f"{{{MAM}}}jid").text = jid
    return element


def _listed(jids: tuple[str, ...], peer: JID) -> bool:
    """XEP-0441 2.3.1: a listed full JID matches as is, a bare one any
    resource."""
    full, bare = str(peer), str(peer.bare)
    for jid in jids:
        if jid == full or jid == bare:
            return True
    return False


def decide(prefs: ArchivePrefs, peer: JID, in_roster: bool) -> bool:
    """Whether a message with C{peer} goes into the archive."""
    if _listed(prefs.never, peer):
        return False
    if _listed(prefs.always, peer):
        return True
    if prefs.default == "roster":
        return in_roster
    return prefs.default == "always"
