# -*- test-case-name: tests.test_muc_affiliations -*-
"""
Roles and affiliations (XEP-0045 section 5): their ranks, the role an
affiliation brings on entering, and who may change whose role or
affiliation.
"""

from __future__ import annotations

__all__ = [
    "AFFILIATIONS", "ROLES", "affiliation_change_error", "default_role",
    "role_change_error",
]

#: affiliations from the lowest, C{none} being no affiliation at all
AFFILIATIONS = ("outcast", "none", "member", "admin", "owner")
ROLES = ("none", "visitor", "participant", "moderator")
_AFF_RANK = {a: i for i, a in enumerate(AFFILIATIONS)}


def rank(affiliation: str) -> int:
    return _AFF_RANK[affiliation]


def default_role(affiliation: str, moderated: bool) -> str:
    """The role an occupant with C{affiliation} gets on entering (5.1)."""
    if affiliation in ("owner", "admin"):
        return "moderator"
    if affiliation == "outcast":
        return "none"
    if affiliation == "member":
        return "participant"
    return "visitor" if moderated else "participant"


def role_change_error(actor_role: str, actor_aff: str, target_aff: str,
                      new_role: str) -> str | None:
    """
    The stanza error condition refusing a role change, or C{None} when the
    actor may make it (8.4, 8.5, 9.6): moderators kick and grant or revoke
    voice; only admins and owners grant or revoke moderator; an admin's or
    owner's role is theirs by affiliation.
    """
    if actor_role != "moderator":
        return "forbidden"
    if target_aff in ("admin", "owner"):
        return "not-allowed"
    if new_role == "moderator" and actor_aff not in ("admin", "owner"):
        return "not-allowed"
    return None


def affiliation_change_error(actor_aff: str, target_aff: str,
                             new_aff: str) -> str | None:
    """
    The stanza error condition refusing an affiliation change, or C{None}
    (9.1–9.5, 10.3–10.7): admins ban and grant or revoke membership of
    those below them; owners change anyone's.
    """
    if actor_aff == "owner":
        return None
    if actor_aff != "admin":
        return "forbidden"
    if new_aff in ("admin", "owner") or target_aff in ("admin", "owner"):
        return "not-allowed"
    return None
