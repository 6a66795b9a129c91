"""SQLite state of the emulator: events, subscriptions, clients, policy rules, used jtis, keys.

One connection guarded by a lock: the server's event loop and the admin calls share it. Events keep
their serialized JSON as sent back to readers, so a page of 1000 is a single indexed range scan plus a
string join (no re-serialization). ``sequenceno`` is ``INTEGER PRIMARY KEY AUTOINCREMENT``: numbers are
never reused, also across restarts with a data file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    sequenceno INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    resource TEXT NOT NULL,
    subject TEXT,
    alternativesubject TEXT,
    type TEXT NOT NULL,
    time TEXT,
    registered REAL NOT NULL,
    body TEXT NOT NULL,
    push_body TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_id_source ON events (id, source);
CREATE INDEX IF NOT EXISTS events_resource_seq ON events (resource, sequenceno);
CREATE TABLE IF NOT EXISTS subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    source_filter TEXT,
    resource_filter TEXT,
    subject_filter TEXT,
    type_filter TEXT,
    consumer TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created TEXT NOT NULL,
    validated INTEGER NOT NULL DEFAULT 0,
    include_subunits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS subscriptions_resource ON subscriptions (resource_filter);
CREATE TABLE IF NOT EXISTS clients (client_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_rules (
    rule_id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource TEXT NOT NULL,
    consumer TEXT NOT NULL,
    actions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_rules_resource ON access_rules (resource);
CREATE TABLE IF NOT EXISTS used_jti (
    client_id TEXT NOT NULL, jti TEXT NOT NULL, exp REAL NOT NULL, PRIMARY KEY (client_id, jti)
);
"""

_EVENT_COLUMNS = (
    "sequenceno, id, source, resource, subject, alternativesubject, type, time, registered, body, push_body"
)


@dataclass(frozen=True)
class EventRow:
    """One stored event: the indexed attributes plus the serialized CloudEvent."""

    sequenceno: int
    id: str
    source: str
    resource: str
    subject: str | None
    alternativesubject: str | None
    type: str
    time: str | None
    registered: float
    body: str
    #: The pushed form when it differs from ``body`` (a ``time`` offset other than ``Z`` is kept in
    #: pushes; ``GET`` answers convert it to UTC): see docs/contract.rst.
    push_body: str | None = None

    @property
    def delivery_body(self) -> str:
        return self.push_body if self.push_body is not None else self.body


@dataclass(frozen=True)
class EventQuery:
    """Filter of a page read; patterns are SQLite GLOB (case-sensitive) or LIKE (case-insensitive)."""

    resource: str | None
    after_seq: int = 0
    subject: str | None = None
    alternativesubject: str | None = None
    type_globs: Sequence[str] = ()
    type_likes: Sequence[str] = ()
    source_likes: Sequence[str] = ()
    time_from: str | None = None
    time_to: str | None = None
    registered_before: float | None = None
    limit: int = 50


class Store:
    """The emulator's persistent state.

    :param path: SQLite file; ``None`` keeps everything in memory (lost when the server stops).
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        if "push_body" not in columns:  # a data file written before the column existed
            self._db.execute("ALTER TABLE events ADD COLUMN push_body TEXT")

    def close(self) -> None:
        """Close the database (the file keeps everything)."""
        with self._lock:
            self._db.close()

    # -- meta -----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- events ---------------------------------------------------------------------------------
    def insert_events(self, rows: Iterable[tuple[Any, ...]]) -> tuple[int, int]:
        """Insert events in one transaction; duplicates of (id, source) are ignored like the real one.

        :param rows: tuples ``(id, source, resource, subject, alternativesubject, type, time,
            registered, body, push_body)``; ``push_body`` may be ``None`` (same as ``body``).
        :returns: the first and last sequence number actually inserted, ``(0, 0)`` if none was.
        """
        with self._lock:
            before = self._max_seq()
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO events (id, source, resource, subject, alternativesubject, type, time,"
                    " registered, body, push_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id, source) DO NOTHING",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            after = self._max_seq()
        if after <= before:
            return 0, 0
        with self._lock:
            first = self._db.execute(
                "SELECT MIN(sequenceno) FROM events WHERE sequenceno > ?", (before,)
            ).fetchone()[0]
        return int(first), after

    def max_sequenceno(self) -> int:
        with self._lock:
            return self._max_seq()

    def _max_seq(self) -> int:
        row = self._db.execute("SELECT MAX(sequenceno) FROM events").fetchone()
        return int(row[0] or 0)

    def event_ids(self, first_seq: int, last_seq: int) -> tuple[str, str]:
        """The ids of the events at two sequence numbers (for ``generate``'s answer)."""
        with self._lock:
            first = self._db.execute("SELECT id FROM events WHERE sequenceno = ?", (first_seq,)).fetchone()
            last = self._db.execute("SELECT id FROM events WHERE sequenceno = ?", (last_seq,)).fetchone()
        return str(first[0]), str(last[0])

    def events_between(
        self, resource: str, after_seq: int, upto_seq: int, limit: int = 1000
    ) -> list[EventRow]:
        """Events of one resource with ``after_seq < sequenceno <= upto_seq`` (for push delivery)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE resource = ? AND sequenceno > ? AND sequenceno <= ?"
                " ORDER BY sequenceno LIMIT ?",
                (resource, after_seq, upto_seq, limit),
            ).fetchall()
        return [EventRow(*row) for row in rows]

    def all_events_between(self, after_seq: int, upto_seq: int, limit: int = 1000) -> list[EventRow]:
        """Events of every resource with ``after_seq < sequenceno <= upto_seq`` (cached push path)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE sequenceno > ? AND sequenceno <= ?"
                " ORDER BY sequenceno LIMIT ?",
                (after_seq, upto_seq, limit),
            ).fetchall()
        return [EventRow(*row) for row in rows]

    def subscribed_resources(self) -> list[str]:
        """Resources that at least one validated subscription filters on."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT resource_filter FROM subscriptions WHERE validated = 1 AND resource_filter IS NOT NULL"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def resolve_after(self, event_id: str) -> int:
        """Smallest sequence number of an event with this id; 0 when unknown (start from the beginning)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(sequenceno) FROM events WHERE id = ?", (event_id,)).fetchone()
        return int(row[0] or 0)

    def query_events(self, query: EventQuery) -> list[EventRow]:
        """One page in sequence order; ``LIMIT`` is applied here, before any authorization filter."""
        where = ["sequenceno > ?"]
        args: list[Any] = [query.after_seq]
        if query.resource is not None:
            where.insert(0, "resource = ?")
            args.insert(0, query.resource)
        if query.subject is not None:
            where.append("subject = ?")
            args.append(query.subject)
        if query.alternativesubject is not None:
            where.append("alternativesubject = ?")
            args.append(query.alternativesubject)
        if query.type_globs:
            where.append("(" + " OR ".join("type GLOB ?" for _ in query.type_globs) + ")")
            args.extend(query.type_globs)
        if query.type_likes:
            where.append("(" + " OR ".join("type LIKE ? ESCAPE '\\'" for _ in query.type_likes) + ")")
            args.extend(query.type_likes)
        if query.source_likes:
            where.append("(" + " OR ".join("source LIKE ? ESCAPE '\\'" for _ in query.source_likes) + ")")
            args.extend(query.source_likes)
        if query.time_from is not None:
            where.append("time >= ?")
            args.append(query.time_from)
        if query.time_to is not None:
            where.append("time <= ?")
            args.append(query.time_to)
        if query.registered_before is not None:
            where.append("registered <= ?")
            args.append(query.registered_before)
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY sequenceno LIMIT ?"
        args.append(query.limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [EventRow(*row) for row in rows]

    def count_events(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    # -- subscriptions --------------------------------------------------------------------------
    def find_subscription(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """An existing subscription identical in every filter, consumer, endpoint and includeSubunits."""
        keys = ("resource_filter", "source_filter", "subject_filter", "type_filter", "consumer", "endpoint")
        where = " AND ".join(f"{k} IS ?" for k in keys) + " AND include_subunits = ?"
        args = [fields[k] for k in keys] + [int(bool(fields["include_subunits"]))]
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM subscriptions WHERE {where} LIMIT 1", args)
            return _one(cur)

    def insert_subscription(self, fields: dict[str, Any]) -> dict[str, Any]:
        cols = list(fields)
        with self._lock:
            cur = self._db.execute(
                f"INSERT INTO subscriptions ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [fields[c] for c in cols],
            )
            new_id = int(cur.lastrowid or 0)
        found = self.get_subscription(new_id)
        assert found is not None
        return found

    def get_subscription(self, subscription_id: int) -> dict[str, Any] | None:
        with self._lock:
            return _one(self._db.execute("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,)))

    def list_subscriptions(self, consumer: str) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute("SELECT * FROM subscriptions WHERE consumer = ? ORDER BY id", (consumer,))
            return _all(cur)

    def all_subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return _all(self._db.execute("SELECT * FROM subscriptions ORDER BY id"))

    def delete_subscription(self, subscription_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))

    def set_validated(self, subscription_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE subscriptions SET validated = 1 WHERE id = ?", (subscription_id,))

    def validated_subscriptions_for(self, resource: str) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM subscriptions WHERE resource_filter = ? AND validated = 1 ORDER BY id",
                (resource,),
            )
            return _all(cur)

    # -- clients, rules, jti ---------------------------------------------------------------------
    def put_client(self, client_id: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO clients (client_id, data) VALUES (?, ?)",
                (client_id, json.dumps(data)),
            )

    def get_client(self, client_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def all_clients(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM clients").fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def add_rule(self, resource: str, consumer: str, actions: Sequence[str]) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO access_rules (resource, consumer, actions) VALUES (?, ?, ?)",
                (resource, consumer, json.dumps(list(actions))),
            )
            return int(cur.lastrowid or 0)

    def rules(self) -> list[tuple[str, str, list[str]]]:
        with self._lock:
            rows = self._db.execute("SELECT resource, consumer, actions FROM access_rules").fetchall()
        return [(str(r[0]), str(r[1]), list(json.loads(r[2]))) for r in rows]

    def use_jti(self, client_id: str, jti: str, exp: float, now: float) -> bool:
        """Remember a grant's jti until the grant expires; ``False`` if it was used before."""
        with self._lock:
            self._db.execute("DELETE FROM used_jti WHERE exp < ?", (now,))
            cur = self._db.execute(
                "INSERT OR IGNORE INTO used_jti (client_id, jti, exp) VALUES (?, ?, ?)", (client_id, jti, exp)
            )
            return cur.rowcount == 1

    def reset(self) -> None:
        """Forget events, subscriptions, clients, rules and jtis (signing keys in ``meta`` stay)."""
        with self._lock:
            self._db.execute("BEGIN")
            for table in ("events", "subscriptions", "clients", "access_rules", "used_jti"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("DELETE FROM sqlite_sequence")
            self._db.execute("COMMIT")


def _one(cur: sqlite3.Cursor) -> dict[str, Any] | None:
    row = cur.fetchone()
    if row is None:
        return None
    return {d[0]: v for d, v in zip(cur.description, row, strict=True)}


def _all(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
