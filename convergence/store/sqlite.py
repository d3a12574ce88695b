# -*- test-case-name: tests.test_store_sqlite,tests.test_location_store -*-
"""
The embedded SQLite backend (stdlib C{sqlite3}, WAL mode).

Calls are synchronous and made from the reactor thread, so each one is a
single short statement or transaction.  The schema version lives in
C{PRAGMA user_version}; L{MIGRATIONS} is applied in order on open, so later
features add tables by appending a step.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

from zope.interface import implementer

from convergence.auth.digest import ALGORITHMS as DIGEST_ALGORITHMS
from convergence.auth.scram import MECHANISMS, ScramCredential
from convergence.store.errors import AccountExists, NoSuchAccount, StoreError
from convergence.store.interfaces import Binding, IAccountStore, ILocationStore
from convergence.store.location import LocationStoreBase, ordered

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "open_database",
    "SqliteAccountStore",
    "SqliteLocationStore",
]

#: Schema steps; step N (1-based) brings the database to C{user_version} N.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE accounts (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            created INTEGER NOT NULL,
            PRIMARY KEY (localpart, domain)
        )
        """,
        """
        CREATE TABLE credentials (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            mechanism TEXT NOT NULL,
            salt BLOB NOT NULL,
            iterations INTEGER NOT NULL,
            stored_key BLOB NOT NULL,
            server_key BLOB NOT NULL,
            PRIMARY KEY (localpart, domain, mechanism),
            FOREIGN KEY (localpart, domain)
                REFERENCES accounts (localpart, domain) ON DELETE CASCADE
        )
        """,
    ),
    # 2: HTTP Digest HA1 for SIP, realm = domain (RFC 8760 algorithm names).
    (
        """
        CREATE TABLE digest_credentials (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            ha1 TEXT NOT NULL,
            PRIMARY KEY (localpart, domain, algorithm),
            FOREIGN KEY (localpart, domain)
                REFERENCES accounts (localpart, domain) ON DELETE CASCADE
        )
        """,
    ),
    # 3: the SIP location service (registrar bindings).
    (
        """
        CREATE TABLE sip_bindings (
            aor TEXT NOT NULL,
            contact TEXT NOT NULL,
            expires_at REAL NOT NULL,
            call_id TEXT NOT NULL,
            cseq INTEGER NOT NULL,
            q REAL,
            path TEXT NOT NULL,
            instance_id TEXT,
            reg_id INTEGER,
            received TEXT,
            PRIMARY KEY (aor, contact)
        )
        """,
        "CREATE INDEX sip_bindings_expires_at ON sip_bindings (expires_at)",
    ),
    # 4: rosters with subscription states (RFC 6121), offline messages (XEP-0160).
    # No foreign keys: the IM store may live apart from the accounts (tests,
    # embedding); SqliteAccountStore.delete removes these rows itself.
    (
        """
        CREATE TABLE roster_items (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            contact TEXT NOT NULL,
            name TEXT,
            subscription TEXT NOT NULL,
            ask INTEGER NOT NULL,
            pending_in INTEGER NOT NULL,
            approved INTEGER NOT NULL,
            groups TEXT NOT NULL,
            listed INTEGER NOT NULL,
            request TEXT,
            PRIMARY KEY (localpart, domain, contact)
        )
        """,
        """
        CREATE TABLE roster_versions (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (localpart, domain)
        )
        """,
        """
        CREATE TABLE offline_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            stamp REAL NOT NULL,
            stanza BLOB NOT NULL
        )
        """,
        "CREATE INDEX offline_messages_user ON offline_messages (localpart, domain, id)",
    ),
    (
        # who subscribes to a contact (an application's presence broadcast)
        "CREATE INDEX roster_items_contact ON roster_items (contact, subscription)",
    ),
    # 6: XEP-0357 push registrations (no foreign key, as for 4).
    (
        """
        CREATE TABLE push_registrations (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            service TEXT NOT NULL,
            node TEXT NOT NULL,
            options BLOB,
            created REAL NOT NULL,
            PRIMARY KEY (localpart, domain, service, node)
        )
        """,
    ),
    # 7: vCards (XEP-0054) and HTTP upload slots and files (XEP-0363).
    (
        """
        CREATE TABLE vcards (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            vcard BLOB NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (localpart, domain)
        )
        """,
        """
        CREATE TABLE http_uploads (
            id TEXT PRIMARY KEY,
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            filename TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            created REAL NOT NULL,
            slot_expires REAL NOT NULL,
            uploaded REAL
        )
        """,
        "CREATE INDEX http_uploads_user ON http_uploads (localpart, domain)",
    ),
    # 8: XEP-0012 last logout per user (no foreign key, as in 4).
    (
        """
        CREATE TABLE last_activity (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            stamp REAL NOT NULL,
            status TEXT,
            PRIMARY KEY (localpart, domain)
        )
        """,
    ),
    # 9: personal eventing (XEP-0163) nodes and items, private XML (XEP-0049).
    (
        """
        CREATE TABLE pep_nodes (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            node TEXT NOT NULL,
            config TEXT NOT NULL,
            PRIMARY KEY (localpart, domain, node)
        )
        """,
        """
        CREATE TABLE pep_items (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            node TEXT NOT NULL,
            item_id TEXT NOT NULL,
            payload BLOB NOT NULL,
            UNIQUE (localpart, domain, node, item_id)
        )
        """,
        "CREATE INDEX pep_items_node ON pep_items (localpart, domain, node, seq)",
        """
        CREATE TABLE private_xml (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (localpart, domain, namespace, name)
        )
        """,
    ),
    # 10: blocklists (XEP-0191); no foreign key, as for migration 4.
    (
        """
        CREATE TABLE blocklist_items (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            jid TEXT NOT NULL,
            PRIMARY KEY (localpart, domain, jid)
        )
        """,
    ),
    # 11: messages held for hibernating stream management sessions (XEP-0198),
    # so that a crash while a session hibernates loses none of them.
    (
        """
        CREATE TABLE sm_held (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session TEXT NOT NULL,
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            stamp REAL NOT NULL,
            stanza BLOB NOT NULL
        )
        """,
        "CREATE INDEX sm_held_session ON sm_held (session, id)",
    ),
    # 12: persistent XEP-0045 rooms and their affiliations.
    (
        """
        CREATE TABLE muc_rooms (
            service TEXT NOT NULL,
            name TEXT NOT NULL,
            config TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            subject_from TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            PRIMARY KEY (service, name)
        )
        """,
        """
        CREATE TABLE muc_affiliations (
            service TEXT NOT NULL,
            name TEXT NOT NULL,
            jid TEXT NOT NULL,
            affiliation TEXT NOT NULL,
            nick TEXT,
            PRIMARY KEY (service, name, jid),
            FOREIGN KEY (service, name) REFERENCES muc_rooms (service, name)
                ON DELETE CASCADE
        )
        """,
    ),
    # 13: message archives (XEP-0313) and archiving preferences (XEP-0441).
    # seq is the order of the archive; stamps never go back within one.
    (
        """
        CREATE TABLE mam_messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            id TEXT NOT NULL,
            stamp REAL NOT NULL,
            with_jid TEXT NOT NULL,
            with_resource TEXT NOT NULL,
            stanza BLOB NOT NULL,
            UNIQUE (localpart, domain, id)
        )
        """,
        "CREATE INDEX mam_messages_time ON mam_messages (localpart, domain, stamp)",
        "CREATE INDEX mam_messages_with ON mam_messages"
        " (localpart, domain, with_jid, stamp)",
        "CREATE INDEX mam_messages_expiry ON mam_messages (stamp)",
        """
        CREATE TABLE mam_prefs (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            default_mode TEXT NOT NULL,
            always TEXT NOT NULL,
            never TEXT NOT NULL,
            PRIMARY KEY (localpart, domain)
        )
        """,
    ),
    # 14: explicit XEP-0060 subscriptions to PEP nodes (XEP-0163), by node;
    # jid is the subscribed JID as given (bare or full).
    (
        """
        CREATE TABLE pep_subscriptions (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            node TEXT NOT NULL,
            jid TEXT NOT NULL,
            PRIMARY KEY (localpart, domain, node, jid)
        )
        """,
    ),
    # 15: SIP bindings by the flow they came through (a WebSocket's closing
    # removes its registrations, RFC 7118 5.3).
    ("CREATE INDEX sip_bindings_received ON sip_bindings (received)",),
)

SCHEMA_VERSION = len(MIGRATIONS)

#: Tables of per-account data without a foreign key to C{accounts}.
_ACCOUNT_DATA = ("roster_items", "roster_versions", "offline_messages",
                 "push_registrations", "vcards", "http_uploads", "last_activity",
                 "pep_nodes", "pep_items", "private_xml", "blocklist_items",
                 "sm_held", "mam_messages", "mam_prefs", "pep_subscriptions")

_HEX = re.compile(r"[0-9a-f]+")


def _rows(credentials: Mapping[str, ScramCredential]) -> list[tuple]:
    """Validate credentials and turn them into C{credentials} table rows."""
    rows = []
    for mechanism, credential in credentials.items():
        if MECHANISMS.get(mechanism) != credential.hash_name:
            raise ValueError(f"{credential.hash_name} credential given as {mechanism}")
        rows.append(
            (
                mechanism,
                credential.salt,
                credential.iterations,
                credential.stored_key,
                credential.server_key,
            )
        )
    return rows


def _digest_rows(digests: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """Validate HA1s by algorithm; return C{(algorithm, lowercase hex)} rows."""
    rows = []
    for algorithm, ha1 in (digests or {}).items():
        hash_name = DIGEST_ALGORITHMS.get(algorithm)
        if hash_name is None:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        ha1 = ha1.lower()
        size = 2 * hashlib.new(hash_name).digest_size
        if len(ha1) != size or not _HEX.fullmatch(ha1):
            raise ValueError(f"{algorithm} HA1 must be {size} hex digits")
        rows.append((algorithm, ha1))
    return rows


def _schema_version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: sqlite3.Connection) -> None:
    with _transaction(db):
        version = _schema_version(db)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {version} is newer than"
                f" this software ({SCHEMA_VERSION})"
            )
        for number, steps in enumerate(MIGRATIONS[version:], version + 1):
            for statement in steps:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number:d}")


def open_database(path: str | Path) -> sqlite3.Connection:
    """
    Connect to (creating if needed) the database at C{path}, in WAL mode
    (C{synchronous = NORMAL}) with foreign keys on, and bring it to
    L{SCHEMA_VERSION}.

    @raise StoreError: the database is newer than this code.
    """
    # The server queries from its database thread (convergence.store.dbthread),
    # one thread per connection at a time.
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a commit does not wait for fsync (durable across a
        # crash of the process; the last commits may be lost on power loss).
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


@implementer(IAccountStore)
class SqliteAccountStore:
    """L{IAccountStore} in one SQLite file."""

    def __init__(
        self, path: str | Path, now: Callable[[], float] = time.time
    ) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @param now: the clock used for account creation times.
        @raise StoreError: the database is newer than this code.
        """
        self._now = now
        self._db = open_database(path)

    @property
    def schema_version(self) -> int:
        """The database's C{PRAGMA user_version}."""
        return _schema_version(self._db)

    def create(
        self,
        localpart: str,
        domain: str,
        credentials: Mapping[str, ScramCredential],
        digests: Mapping[str, str] | None = None,
    ) -> None:
        rows = _rows(credentials)
        digest_rows = _digest_rows(digests)
        with _transaction(self._db) as db:
            try:
                db.execute(
                    "INSERT INTO accounts (localpart, domain, created)"
                    " VALUES (?, ?, ?)",
                    (localpart, domain, int(self._now())),
                )
            except sqlite3.IntegrityError:
                raise AccountExists(f"{localpart}@{domain}") from None
            self._insert(db, localpart, domain, rows)
            self._insert_digests(db, localpart, domain, digest_rows)

    def set_credentials(
        self,
        localpart: str,
        domain: str,
        credentials: Mapping[str, ScramCredential],
        digests: Mapping[str, str] | None = None,
    ) -> None:
        rows = _rows(credentials)
        digest_rows = _digest_rows(digests)
        with _transaction(self._db) as db:
            if not self._exists(db, localpart, domain):
                raise NoSuchAccount(f"{localpart}@{domain}")
            db.execute(
                "DELETE FROM credentials WHERE localpart = ? AND domain = ?",
                (localpart, domain),
            )
            self._insert(db, localpart, domain, rows)
            self._replace_digests(db, localpart, domain, digest_rows)

    def set_digest(
        self, localpart: str, domain: str, ha1_by_algorithm: Mapping[str, str]
    ) -> None:
        digest_rows = _digest_rows(ha1_by_algorithm)
        with _transaction(self._db) as db:
            if not self._exists(db, localpart, domain):
                raise NoSuchAccount(f"{localpart}@{domain}")
            self._replace_digests(db, localpart, domain, digest_rows)

    def get_digest(self, localpart: str, domain: str, algorithm: str) -> str | None:
        row = self._db.execute(
            "SELECT ha1 FROM digest_credentials"
            " WHERE localpart = ? AND domain = ? AND algorithm = ?",
            (localpart, domain, algorithm),
        ).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _insert(
        db: sqlite3.Connection, localpart: str, domain: str, rows: list[tuple]
    ) -> None:
        db.executemany(
            "INSERT INTO credentials (localpart, domain, mechanism, salt,"
            " iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(localpart, domain, *row) for row in rows],
        )

    @staticmethod
    def _insert_digests(
        db: sqlite3.Connection,
        localpart: str,
        domain: str,
        rows: list[tuple[str, str]],
    ) -> None:
        db.executemany(
            "INSERT INTO digest_credentials (localpart, domain, algorithm, ha1)"
            " VALUES (?, ?, ?, ?)",
            [(localpart, domain, *row) for row in rows],
        )

    @classmethod
    def _replace_digests(
        cls,
        db: sqlite3.Connection,
        localpart: str,
        domain: str,
        rows: list[tuple[str, str]],
    ) -> None:
        db.execute(
            "DELETE FROM digest_credentials WHERE localpart = ? AND domain = ?",
            (localpart, domain),
        )
        cls._insert_digests(db, localpart, domain, rows)

    @staticmethod
    def _exists(db: sqlite3.Connection, localpart: str, domain: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM accounts WHERE localpart = ? AND domain = ?",
            (localpart, domain),
        ).fetchone()
        return row is not None

    def delete(self, localpart: str, domain: str) -> None:
        with _transaction(self._db) as db:
            cursor = db.execute(
                "DELETE FROM accounts WHERE localpart = ? AND domain = ?",
                (localpart, domain),
            )
            if cursor.rowcount == 0:
                raise NoSuchAccount(f"{localpart}@{domain}")
            # credentials go by cascade; the IM tables have no foreign key
            for table in _ACCOUNT_DATA:
                db.execute(f"DELETE FROM {table} WHERE localpart = ? AND domain = ?",
                           (localpart, domain))

    def get_credentials(
        self, localpart: str, domain: str
    ) -> dict[str, ScramCredential] | None:
        rows = self._db.execute(
            "SELECT c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key"
            " FROM accounts AS a LEFT JOIN credentials AS c"
            " ON c.localpart = a.localpart AND c.domain = a.domain"
            " WHERE a.localpart = ? AND a.domain = ?",
            (localpart, domain),
        ).fetchall()
        if not rows:
            return None
        return {
            mechanism: ScramCredential(
                MECHANISMS[mechanism], salt, iterations, stored_key, server_key
            )
            for mechanism, salt, iterations, stored_key, server_key in rows
            if mechanism in MECHANISMS
        }

    def exists(self, localpart: str, domain: str) -> bool:
        return self._exists(self._db, localpart, domain)

    def list_accounts(self, domain: str | None = None) -> list[str]:
        if domain is None:
            rows = self._db.execute("SELECT localpart, domain FROM accounts")
        else:
            rows = self._db.execute(
                "SELECT localpart, domain FROM accounts WHERE domain = ?", (domain,)
            )
        return sorted(f"{localpart}@{host}" for localpart, host in rows)

    def close(self) -> None:
        self._db.close()


_BINDING_COLUMNS = (
    "aor, contact, expires_at, call_id, cseq, q, path, instance_id, reg_id,"
    " received"
)


def _binding(row: tuple) -> Binding:
    aor, contact, expires_at, call_id, cseq, q, path, instance, reg_id, received = row
    return Binding(
        aor, contact, expires_at, call_id, cseq, q,
        tuple(json.loads(path)), instance, reg_id, received,
    )


@implementer(ILocationStore)
class SqliteLocationStore(LocationStoreBase):
    """
    L{ILocationStore} in a SQLite file (the server's database is fine: its
    table comes from the same L{MIGRATIONS}), so registrations survive a
    restart until they expire.
    """

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    def store(self, b: Binding) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO sip_bindings ({_BINDING_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                b.aor, b.contact, b.expires_at, b.call_id, b.cseq, b.q,
                json.dumps(list(b.path)), b.instance_id, b.reg_id, b.received,
            ),
        )

    def remove_binding(self, aor: str, contact: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM sip_bindings WHERE aor = ? AND contact = ?", (aor, contact)
        )
        return cursor.rowcount > 0

    def remove_all(self, aor: str) -> int:
        cursor = self._db.execute("DELETE FROM sip_bindings WHERE aor = ?", (aor,))
        return cursor.rowcount

    def remove_received(self, received: str) -> int:
        cursor = self._db.execute("DELETE FROM sip_bindings WHERE received = ?",
                                  (received,))
        return cursor.rowcount

    def remove_received_prefix(self, prefix: str) -> int:
        # substr, not LIKE: a prefix holding % or _ means itself
        cursor = self._db.execute(
            "DELETE FROM sip_bindings WHERE substr(received, 1, ?) = ?",
            (len(prefix), prefix))
        return cursor.rowcount

    def bindings(self, aor: str, now: float) -> list[Binding]:
        rows = self._db.execute(
            f"SELECT {_BINDING_COLUMNS} FROM sip_bindings"
            " WHERE aor = ? AND expires_at > ?",
            (aor, now),
        )
        return ordered([_binding(row) for row in rows])

    def purge_expired(self, now: float) -> int:
        cursor = self._db.execute(
            "DELETE FROM sip_bindings WHERE expires_at <= ?", (now,)
        )
        return cursor.rowcount

    def live_bindings(self, now: float) -> list[Binding]:
        """Every binding expiring after C{now} (to load a cache at startup)."""
        rows = self._db.execute(
            f"SELECT {_BINDING_COLUMNS} FROM sip_bindings WHERE expires_at > ?", (now,)
        )
        return [_binding(row) for row in rows]

    def apply(self, changes: list[tuple[str, tuple]]) -> None:
        """
        C{(method name, arguments)} of the store's own methods (C{store},
        C{remove_binding}, C{remove_all}, C{purge_expired} …), applied in
        order in one transaction; none of them is applied if one fails.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for name, args in changes:
                getattr(self, name)(*args)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
