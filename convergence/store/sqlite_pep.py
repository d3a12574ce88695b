# -*- test-case-name: tests.test_store_pep -*-
"""
Personal eventing nodes and items (XEP-0163) and private XML (XEP-0049)
in the server's SQLite database (the tables of migration 9 in
L{convergence.store.sqlite.MIGRATIONS}).

Every call is one statement or one transaction, made on the database
thread.  Like the IM tables these have no foreign key to the accounts:
L{convergence.store.sqlite.SqliteAccountStore.delete} removes the rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from zope.interface import implementer

from convergence.store.interfaces import IPepStore, IPrivateStore
from convergence.store.sqlite import _transaction, open_database

__all__ = ["SqlitePepStore"]

_USER = "localpart = ? AND domain = ?"
_NODE = "localpart = ? AND domain = ? AND node = ?"


class _OverQuota(Exception):
    """Rolls a private-data transaction back."""


@implementer(IPepStore, IPrivateStore)
class SqlitePepStore:
    """L{IPepStore} and L{IPrivateStore} in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    # IPepStore
    def pep_nodes(self, localpart: str, domain: str) -> list[tuple[str, dict]]:
        rows = self._db.execute(f"SELECT node, config FROM pep_nodes WHERE {_USER}"
                                " ORDER BY node", (localpart, domain))
        return [(node, json.loads(config)) for node, config in rows]

    def create_pep_node(self, localpart: str, domain: str, node: str, config: Mapping,
                        max_nodes: int) -> bool:
        with _transaction(self._db) as db:
            if db.execute(f"SELECT 1 FROM pep_nodes WHERE {_NODE}",
                          (localpart, domain, node)).fetchone():
                raise ValueError(f"node {node!r} exists")
            if max_nodes:
                (count,) = db.execute(f"SELECT COUNT(*) FROM pep_nodes WHERE {_USER}",
                                      (localpart, domain)).fetchone()
                if count >= max_nodes:
                    return False
            db.execute("INSERT INTO pep_nodes (localpart, domain, node, config)"
                       " VALUES (?, ?, ?, ?)",
                       (localpart, domain, node, json.dumps(dict(config))))
        return True

    def configure_pep_node(self, localpart: str, domain: str, node: str,
                           config: Mapping, max_items: int) -> None:
        with _transaction(self._db) as db:
            db.execute(f"UPDATE pep_nodes SET config = ? WHERE {_NODE}",
                       (json.dumps(dict(config)), localpart, domain, node))
            self._trim(db, localpart, domain, node, max_items)

    def delete_pep_node(self, localpart: str, domain: str, node: str) -> None:
        with _transaction(self._db) as db:
            db.execute(f"DELETE FROM pep_items WHERE {_NODE}", (localpart, domain, node))
            db.execute(f"DELETE FROM pep_subscriptions WHERE {_NODE}",
                       (localpart, domain, node))
            db.execute(f"DELETE FROM pep_nodes WHERE {_NODE}", (localpart, domain, node))

    def put_pep_item(self, localpart: str, domain: str, node: str, item_id: str,
                     payload: bytes, max_items: int) -> None:
        with _transaction(self._db) as db:
            # delete, then insert: a republished id becomes the newest
            db.execute(f"DELETE FROM pep_items WHERE {_NODE} AND item_id = ?",
                       (localpart, domain, node, item_id))
            db.execute("INSERT INTO pep_items (localpart, domain, node, item_id, payload)"
                       " VALUES (?, ?, ?, ?, ?)",
                       (localpart, domain, node, item_id, payload))
            self._trim(db, localpart, domain, node, max_items)

    @staticmethod
    def _trim(db, localpart: str, domain: str, node: str, max_items: int) -> None:
        db.execute(f"DELETE FROM pep_items WHERE {_NODE} AND seq NOT IN"
                   f" (SELECT seq FROM pep_items WHERE {_NODE}"
                   " ORDER BY seq DESC LIMIT ?)",
                   (localpart, domain, node, localpart, domain, node, max(max_items, 0)))

    def pep_items(self, localpart: str, domain: str, node: str, limit: int | None = None,
                  ids: Sequence[str] | None = None) -> list[tuple[str, bytes]]:
        args: list = [localpart, domain, node]
        query = f"SELECT item_id, payload FROM pep_items WHERE {_NODE}"
        if ids is not None:
            query += f" AND item_id IN ({', '.join('?' * len(ids))})"
            args += list(ids)
        query += " ORDER BY seq DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        rows = self._db.execute(query, args).fetchall()
        return [(item_id, bytes(payload)) for item_id, payload in reversed(rows)]

    def retract_pep_item(self, localpart: str, domain: str, node: str,
                         item_id: str) -> bool:
        cursor = self._db.execute(f"DELETE FROM pep_items WHERE {_NODE} AND item_id = ?",
                                  (localpart, domain, node, item_id))
        return cursor.rowcount > 0

    def purge_pep_node(self, localpart: str, domain: str, node: str) -> None:
        self._db.execute(f"DELETE FROM pep_items WHERE {_NODE}", (localpart, domain, node))

    def pep_subscriptions(self, localpart: str, domain: str) -> list[tuple[str, str]]:
        rows = self._db.execute(f"SELECT node, jid FROM pep_subscriptions WHERE {_USER}"
                                " ORDER BY node, jid", (localpart, domain))
        return [(node, jid) for node, jid in rows]

    def subscribe_pep(self, localpart: str, domain: str, node: str, jid: str,
                      max_subscriptions: int) -> bool:
        with _transaction(self._db) as db:
            if db.execute(f"SELECT 1 FROM pep_subscriptions WHERE {_NODE} AND jid = ?",
                          (localpart, domain, node, jid)).fetchone():
                return True
            if max_subscriptions:
                (count,) = db.execute(
                    f"SELECT COUNT(*) FROM pep_subscriptions WHERE {_NODE}",
                    (localpart, domain, node)).fetchone()
                if count >= max_subscriptions:
                    return False
            db.execute("INSERT INTO pep_subscriptions (localpart, domain, node, jid)"
                       " VALUES (?, ?, ?, ?)", (localpart, domain, node, jid))
        return True

    def remove_subscriber(self, jid: str) -> int:
        prefix = jid + "/"
        cursor = self._db.execute(
            "DELETE FROM pep_subscriptions WHERE jid = ? OR substr(jid, 1, ?) = ?",
            (jid, len(prefix), prefix))
        return cursor.rowcount

    def unsubscribe_pep(self, localpart: str, domain: str, node: str, jid: str) -> bool:
        cursor = self._db.execute(
            f"DELETE FROM pep_subscriptions WHERE {_NODE} AND jid = ?",
            (localpart, domain, node, jid))
        return cursor.rowcount > 0

    # IPrivateStore
    def private_data(self, localpart: str, domain: str, namespace: str,
                     name: str) -> bytes | None:
        row = self._db.execute(
            f"SELECT data FROM private_xml WHERE {_USER} AND namespace = ? AND name = ?",
            (localpart, domain, namespace, name)).fetchone()
        return None if row is None else bytes(row[0])

    def set_private_data(self, localpart: str, domain: str,
                         entries: Sequence[tuple[str, str, bytes | None]],
                         max_elements: int) -> bool:
        try:
            with _transaction(self._db) as db:
                for namespace, name, data in entries:
                    key = (localpart, domain, namespace, name)
                    if data is None:
                        db.execute(f"DELETE FROM private_xml WHERE {_USER}"
                                   " AND namespace = ? AND name = ?", key)
                    else:
                        db.execute("INSERT OR REPLACE INTO private_xml"
                                   " (localpart, domain, namespace, name, data)"
                                   " VALUES (?, ?, ?, ?, ?)", (*key, data))
                if max_elements:
                    (count,) = db.execute(
                        f"SELECT COUNT(*) FROM private_xml WHERE {_USER}",
                        (localpart, domain)).fetchone()
                    if count > max_elements:
                        raise _OverQuota  # rolls the whole set back
        except _OverQuota:
            return False
        return True

    def close(self) -> None:
        self._db.close()
