# -*- test-case-name: tests.test_compliance -*-
"""
XEP-0479: XMPP Compliance Suites 2023 (version 0.1.0, 2023-05-04), the
server columns of its Core, IM and Mobile suites, and what the declared
features meet of them.

Each requirement names its providers as the XEP's "Providers" column
does: all of them are needed, and a provider may itself be a choice
("one of" several specifications).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from convergence.compliance.specs import Spec

SUITE = "XEP-0479"
SUITE_VERSION = "0.1.0"
SUITE_DATE = "2023-05-04"

#: levels of the server columns
SERVER = "Server"
ADVANCED_SERVER = "Advanced Server"


@dataclass(frozen=True)
class Requirement:
    """One row of a suite's table, as far as servers go."""

    suite: str
    feature: str
    #: the server levels that require it
    levels: tuple[str, ...]
    #: all needed; each a tuple of alternatives (one of them is enough)
    providers: tuple[tuple[str, ...], ...]
    #: how convergence stands towards it, beyond the declarations
    note: str = ""


def _r(suite: str, feature: str, levels: tuple[str, ...], *providers: str | tuple[str, ...],
       note: str = "") -> Requirement:
    return Requirement(suite, feature, levels,
                       tuple((p,) if isinstance(p, str) else p for p in providers), note)


BOTH = (SERVER, ADVANCED_SERVER)
ADVANCED = (ADVANCED_SERVER,)

#: The server requirements of XEP-0479 0.1.0 (rows N/A or unrequired for
#: servers at both levels are left out: /me, User Avatars, Message
#: Acknowledgements, Chat States, Message Correction, Direct File Transfer).
REQUIREMENTS: tuple[Requirement, ...] = (
    _r("Core", "Core features", BOTH, "RFC 6120"),
    _r("Core", "TLS", BOTH, "RFC 7590"),
    _r("Core", "Direct TLS", ADVANCED, "XEP-0368"),
    _r("Core", "Feature discovery", BOTH, "XEP-0030"),
    _r("Core", "Feature broadcasts", ADVANCED, "XEP-0115"),
    _r("Core", "Server Extensibility", BOTH, "XEP-0114",
       note="components are not offered: converged applications deployed in the"
            " container take their place (docs/xmpp-features.md)"),
    _r("Core", "Event publishing", ADVANCED, "XEP-0163"),
    _r("IM", "Core features", BOTH, "RFC 6121"),
    _r("IM", "User Avatar Compatibility", ADVANCED, "XEP-0398", "XEP-0153"),
    _r("IM", "vcard-temp", BOTH, "XEP-0054"),
    _r("IM", "Outbound Message Synchronization", BOTH, "XEP-0280"),
    _r("IM", "User Blocking", ADVANCED, "XEP-0191"),
    _r("IM", "Group Chat", BOTH, "XEP-0045", "XEP-0249"),
    _r("IM", "Advanced Group Chat", ADVANCED, "XEP-0048", "XEP-0313", "XEP-0402",
       "XEP-0410"),
    _r("IM", "Persistent Storage of Private Data via PubSub", ADVANCED, "XEP-0223"),
    _r("IM", "Private XML Storage", ADVANCED, "XEP-0049"),
    _r("IM", "Stream Management", ADVANCED, "XEP-0198"),
    _r("IM", "History Storage / Retrieval", ADVANCED, "XEP-0313"),
    _r("IM", "File Upload", BOTH, "XEP-0363"),
    _r("Mobile", "Stream Management", BOTH, "XEP-0198"),
    _r("Mobile", "Client State Indication", BOTH, "XEP-0352"),
    _r("Mobile", "Third Party Push Notifications", ADVANCED, "XEP-0357"),
)

SUITES = ("Core", "IM", "Mobile")


@dataclass(frozen=True)
class Assessment:
    """A requirement against what is implemented."""

    requirement: Requirement
    #: "met", "partial" (met, some provider only partly) or "missing"
    status: str
    #: the providers not implemented (for each choice, all its options)
    missing: tuple[tuple[str, ...], ...]
    #: the implemented specifications that meet it
    met_by: tuple[str, ...]


def assess(specs: Iterable[Spec], level: str = ADVANCED_SERVER,
           requirements: Iterable[Requirement] = REQUIREMENTS) -> list[Assessment]:
    """Each requirement of C{level}, met or missing by C{specs}."""
    have = {s.spec: s for s in specs}
    out = []
    for req in requirements:
        if level not in req.levels:
            continue
        missing = []
        met_by = []
        partial = False
        for choice in req.providers:
            found = [have[p] for p in choice if p in have]
            if not found:
                missing.append(choice)
                continue
            best = next((s for s in found if s.status == "complete"), found[0])
            partial = partial or best.status != "complete"
            met_by.append(best.spec)
        status = "missing" if missing else ("partial" if partial else "met")
        out.append(Assessment(req, status, tuple(missing), tuple(met_by)))
    return out
