"""
Rosters for the IM figures, written straight into each server's data
directory before it starts, so both servers begin with the same contacts.

A topology names who is whose contact. Every contact pair is mutual with
subscription ``both``:

- ``hub:C:K``: the login users user1..userC each have the K contacts
  user(C+1)..user(C+K); each contact has the C login users.
- ``ring:K``: user i has the K users nearest to it on a ring of all the users
  (K/2 on each side).

convergence gets rows in its ``roster_items`` and ``roster_versions`` tables
(what its roster store writes). Prosody gets ``<host>/roster/<user>.dat``
files in the format of its ``internal`` storage (util.datamanager with
util.serialization), which is what ``mod_roster`` reads.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path


def parse(spec: str, users: int) -> dict[int, list[int]]:
    """Each user's contacts (user numbers, 1-based) for a topology spec."""
    kind, _, rest = spec.partition(":")
    contacts: dict[int, set[int]] = defaultdict(set)
    if kind == "hub":
        hubs, size = (int(x) for x in rest.split(":"))
        if hubs + size > users:
            raise ValueError(f"{spec} needs {hubs + size} users, {users} exist")
        for a in range(1, hubs + 1):
            for b in range(hubs + 1, hubs + size + 1):
                contacts[a].add(b)
                contacts[b].add(a)
    elif kind == "ring":
        size = int(rest)
        if size % 2 or size >= users:
            raise ValueError(f"{spec}: an even size below the {users} users")
        for a in range(users):
            for step in range(1, size // 2 + 1):
                b = (a + step) % users
                contacts[a + 1].add(b + 1)
                contacts[b + 1].add(a + 1)
    else:
        raise ValueError(f"unknown roster topology {spec!r}")
    return {user: sorted(peers) for user, peers in contacts.items()}


def write_convergence(db_path: Path, spec: str, users: int, prefix: str,
                      domain: str) -> int:
    """Insert the rosters into a convergence database; return the rows."""
    rosters = parse(spec, users)
    rows = [(f"{prefix}{user}", domain, f"{prefix}{peer}@{domain}")
            for user, peers in rosters.items() for peer in peers]
    db = sqlite3.connect(str(db_path))
    try:
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO roster_items (localpart, domain, contact, name,"
                " subscription, ask, pending_in, approved, groups, listed, request)"
                " VALUES (?, ?, ?, NULL, 'both', 0, 0, 0, '[]', 1, NULL)", rows)
            db.executemany(
                "INSERT OR REPLACE INTO roster_versions (localpart, domain, version)"
                " VALUES (?, ?, 1)", [(f"{prefix}{user}", domain) for user in rosters])
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return len(rows)


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def prosody_roster(contacts: list[str]) -> str:
    """One user's roster file for Prosody's internal storage."""
    lines = ["return {", '\t[false] = {', '\t\t["version"] = 1;', '\t\t["pending"] = {};',
             "\t};"]
    for jid in contacts:
        lines.append(f'\t[{_lua(jid)}] = {{ ["subscription"] = "both"; ["groups"] = {{}}; }};')
    lines.append("};")
    return "\n".join(lines) + "\n"


def write_prosody(data: Path, spec: str, users: int, prefix: str, domain: str,
                  encode) -> int:
    """Write the roster files into a Prosody data directory; return the items.

    @param encode: util.datamanager's path encoding of names.
    """
    rosters = parse(spec, users)
    folder = data / encode(domain) / "roster"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for user, peers in rosters.items():
        text = prosody_roster([f"{prefix}{peer}@{domain}" for peer in peers])
        (folder / f"{encode(prefix + str(user))}.dat").write_text(text)
        count += len(peers)
    return count
