"""Host stores written in Python: the protocol, and a real database store.

Any object with the methods of :class:`HostStore` can be the store of an
:class:`~librisk.Engine` (``Engine(store=obj)``). Method names are the C
callback names of ``struct risk_store`` (include/librisk/store.h). Records
cross as their canonical bytes (R-ST-3), with the few fields a column store
indexes alongside. Raise :class:`~librisk.Conflict` when a record changed
under you (R-ST-6; the engine rolls back and retries), ``NotFound`` or return
``None`` for an absent record; any other exception (a ``RiskError`` without a
code included) becomes a store error and the whole operation rolls back
(R-CC-2). A ``KeyboardInterrupt`` or ``SystemExit`` rolls it back too, then
propagates unchanged.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Protocol, runtime_checkable

from .errors import Conflict, NotFound, StoreError
from .types import Level

__all__ = ["HostStore", "UserRecord", "EventRecord", "PolicyRecord", "HistoryRecord",
           "SQLiteStore"]


@dataclass(frozen=True)
class UserRecord:
    """A user as ``put_user`` receives it. ``version`` is one more than the
    version read in the same transaction (1 for a new user)."""
    id: str
    version: int
    level: Level
    data: bytes


@dataclass(frozen=True)
class EventRecord:
    """An event as ``put_event`` receives it."""
    id: str
    user_id: str
    active: bool
    data: bytes


@dataclass(frozen=True)
class PolicyRecord:
    """A policy as ``put_policy`` receives it."""
    name: str
    data: bytes


@dataclass(frozen=True)
class HistoryRecord:
    """A history item as ``append_history`` receives it (``user_id`` is None
    for policy changes)."""
    seq: int
    user_id: Optional[str]
    data: bytes


@runtime_checkable
class HostStore(Protocol):
    """The store protocol. ``txn`` is whatever ``begin`` returned.

    Optional methods (leave them out and the matching queries raise
    ``Unsupported``, R-ST-4): ``close()`` (called once, when the last engine
    using this object closes), ``view_user(id) -> bytes | None``
    (committed state, no transaction), ``list_users(min_level) ->
    Iterable[bytes]`` (committed users whose stored level ≥ min_level),
    ``read_history(user_id | None, since_seq) -> Iterable[bytes]`` (committed
    items in seq order).

    ``policies_generation() -> object`` (optional, Python only): a value
    that changes whenever the committed policies change, by any engine.
    The engine reads it before each sign-in and, when it moved, reloads
    the policies it caches; without it, an engine sees another engine's
    policy change only after its own next one (see
    :meth:`~librisk.Engine.refresh_policies`).
    """

    def begin(self, user_id: Optional[str]) -> Any: ...
    def commit(self, txn: Any) -> None: ...
    def rollback(self, txn: Any) -> None: ...
    def get_user(self, txn: Any, id: str) -> Optional[bytes]: ...
    def put_user(self, txn: Any, user: UserRecord) -> None: ...
    def get_event(self, txn: Any, id: str) -> Optional[bytes]: ...
    def put_event(self, txn: Any, event: EventRecord) -> None: ...
    def user_events(self, txn: Any, user_id: str) -> Iterable[bytes]: ...
    def reserve_seq(self, txn: Any) -> int: ...
    def append_history(self, txn: Any, item: HistoryRecord) -> None: ...
    def list_policies(self, txn: Any) -> Iterable[bytes]: ...
    def put_policy(self, txn: Any, policy: PolicyRecord) -> None: ...
    def remove_policy(self, txn: Any, name: str) -> None: ...
    def get_meta(self, txn: Any, key: str) -> Optional[bytes]: ...
    def put_meta(self, txn: Any, key: str, value: bytes) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, version INTEGER NOT NULL,
                                  level INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS users_level ON users(level);
CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
                                   active INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id);
CREATE TABLE IF NOT EXISTS policies (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY, user_id TEXT, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS history_user ON history(user_id, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

#: The history counter lives in ``meta`` under a key the engine never uses.
_SEQ_KEY = "sqlite-store:next-seq"
#: So does the policy generation, bumped by every policy write.
_POLICY_GEN_KEY = "sqlite-store:policy-generation"


class _Txn:
    __slots__ = ("conn", "reserved")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.reserved = 0


class _ThreadConnections:
    """The connections of one thread, held by the store's ``threading.local``
    and so dropped when the thread ends; the finalizer then closes them."""
    __slots__ = ("conns", "_finalizer", "__weakref__")

    def __init__(self) -> None:
        self.conns: Dict[str, sqlite3.Connection] = {}
        self._finalizer = weakref.finalize(self, _close_all, self.conns)

    def close(self) -> None:
        self._finalizer()


def _close_all(conns: Dict[str, sqlite3.Connection]) -> None:
    for conn in list(conns.values()):
        conn.close()
    conns.clear()


class SQLiteStore:
    """A store on one SQLite file, safe for several threads and processes.

    One table per record kind holds the canonical encoding plus indexed
    columns. Every engine operation is one ``BEGIN IMMEDIATE`` transaction
    (writers take the database's write lock up front, so two processes
    serialise instead of deadlocking), and each user row carries the
    record version: ``put_user`` raises :class:`Conflict` when the stored
    version is not the one before (R-ST-6), and the engine retries.

    Each engine caches the policies; a policy change made by an engine in
    another process (or over another SQLiteStore object) bumps a counter in
    ``meta`` that :meth:`policies_generation` reads, and the next sign-in
    of every other engine reloads them. Users, events and history are
    always read fresh.

    Each thread gets its own connections (SQLite connections are not to be
    shared between threads mid-transaction): one for transactions, one for
    the committed reads of ``view_user``/``list_users``/``read_history``.
    They are closed when the thread ends, so short-lived threads do not
    accumulate connections.
    """

    def __init__(self, path: "os.PathLike[str] | str", *, timeout: float = 60.0,
                 synchronous: str = "FULL") -> None:
        """``synchronous`` is SQLite's PRAGMA (FULL: a commit survives power
        loss; NORMAL or OFF trade that for speed, e.g. in tests). Raises
        ``ValueError`` for a path that is no file (``":memory:"``, a URI)
        and :class:`~librisk.StoreError`, chained to SQLite's error, when
        the database cannot be opened or set up."""
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous: OFF, NORMAL, FULL or EXTRA")
        self.path = os.fspath(path)
        if self.path == "" or self.path == ":memory:" or self.path.startswith("file:"):
            # each thread's connections would open a database of their own
            raise ValueError(f"path: {self.path!r} is not a database file (SQLiteStore "
                             "opens one connection per thread; use Engine.memory() for "
                             "an in-memory engine)")
        self.timeout = timeout
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        #: The connections of the live threads (an entry goes with its thread).
        self._threads: "weakref.WeakSet[_ThreadConnections]" = weakref.WeakSet()
        self._lock = threading.Lock()
        try:
            conn = self._conn("writer")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(-15, f"sqlite: cannot open {self.path}: {exc}") from exc

    # -- connections
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    def _conn(self, which: str) -> sqlite3.Connection:
        mine: Optional[_ThreadConnections] = getattr(self._local, "conns", None)
        if mine is None:
            mine = self._local.conns = _ThreadConnections()
            with self._lock:
                self._threads.add(mine)
        conn = mine.conns.get(which)
        if conn is None:
            conn = mine.conns[which] = self._connect()
        return conn

    # -- transactions
    def begin(self, user_id: Optional[str]) -> _Txn:
        conn = self._conn("writer")
        if conn.in_transaction:
            if getattr(self._local, "txn", None) is not None:
                raise StoreError(-15, "sqlite: begin inside this thread's open transaction "
                                 "(a store callback called the engine?)")
            # A begin interrupted after BEGIN (the engine, seeing begin fail,
            # rolls nothing back): undo it rather than fail from now on.
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        txn = self._local.txn = _Txn(conn)
        return txn

    def commit(self, txn: _Txn) -> None:
        self._local.txn = None
        try:
            txn.conn.execute("COMMIT")
        except BaseException:
            # The engine does not roll back after a failed commit: we must.
            if txn.conn.in_transaction:
                txn.conn.execute("ROLLBACK")
            raise

    def rollback(self, txn: _Txn) -> None:
        self._local.txn = None
        if txn.conn.in_transaction:
            txn.conn.execute("ROLLBACK")

    # -- users
    def get_user(self, txn: _Txn, id: str) -> Optional[bytes]:
        row = txn.conn.execute("SELECT data FROM users WHERE id = ?", (id,)).fetchone()
        return row[0] if row else None

    def put_user(self, txn: _Txn, user: UserRecord) -> None:
        row = txn.conn.execute("SELECT version FROM users WHERE id = ?", (user.id,)).fetchone()
        stored = row[0] if row else 0
        if stored != user.version - 1:
            raise Conflict(f"user {user.id!r}: stored version {stored}, "
                           f"this transaction read {user.version - 1}")
        txn.conn.execute("INSERT OR REPLACE INTO users (id, version, level, data) "
                         "VALUES (?, ?, ?, ?)", (user.id, user.version, int(user.level),
                                                 user.data))

    # -- events
    def get_event(self, txn: _Txn, id: str) -> Optional[bytes]:
        row = txn.conn.execute("SELECT data FROM events WHERE id = ?", (id,)).fetchone()
        return row[0] if row else None

    def put_event(self, txn: _Txn, event: EventRecord) -> None:
        txn.conn.execute("INSERT OR REPLACE INTO events (id, user_id, active, data) "
                         "VALUES (?, ?, ?, ?)",
                         (event.id, event.user_id, int(event.active), event.data))

    def user_events(self, txn: _Txn, user_id: str) -> Iterable[bytes]:
        rows = txn.conn.execute("SELECT data FROM events WHERE user_id = ?", (user_id,))
        return [r[0] for r in rows]

    # -- history
    def reserve_seq(self, txn: _Txn) -> int:
        # Inside BEGIN IMMEDIATE: no other writer can reserve until we finish,
        # so readers never see a gap that later fills (store.h reserve_seq).
        row = txn.conn.execute("SELECT value FROM meta WHERE key = ?", (_SEQ_KEY,)).fetchone()
        seq = int(row[0]) if row else 1
        txn.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (_SEQ_KEY, seq + 1))
        txn.reserved = seq
        return seq

    def append_history(self, txn: _Txn, item: HistoryRecord) -> None:
        txn.conn.execute("INSERT INTO history (seq, user_id, data) VALUES (?, ?, ?)",
                         (item.seq, item.user_id, item.data))

    # -- policies and meta
    def list_policies(self, txn: _Txn) -> Iterable[bytes]:
        return [r[0] for r in txn.conn.execute("SELECT data FROM policies ORDER BY name")]

    def put_policy(self, txn: _Txn, policy: PolicyRecord) -> None:
        txn.conn.execute("INSERT OR REPLACE INTO policies (name, data) VALUES (?, ?)",
                         (policy.name, policy.data))
        self._bump_policy_generation(txn)

    def remove_policy(self, txn: _Txn, name: str) -> None:
        if txn.conn.execute("DELETE FROM policies WHERE name = ?", (name,)).rowcount == 0:
            raise NotFound(f"policy {name!r}")
        self._bump_policy_generation(txn)

    @staticmethod
    def _bump_policy_generation(txn: _Txn) -> None:
        txn.conn.execute("INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT(key) "
                         "DO UPDATE SET value = value + 1", (_POLICY_GEN_KEY,))

    def policies_generation(self) -> int:
        """How many policy writes have been committed (by any engine): the
        engine reloads its cached policies when this moves."""
        row = self._conn("reader").execute("SELECT value FROM meta WHERE key = ?",
                                           (_POLICY_GEN_KEY,)).fetchone()
        return int(row[0]) if row else 0

    def get_meta(self, txn: _Txn, key: str) -> Optional[bytes]:
        row = txn.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def put_meta(self, txn: _Txn, key: str, value: bytes) -> None:
        txn.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (key, bytes(value)))

    # -- committed reads (optional callbacks)
    def view_user(self, id: str) -> Optional[bytes]:
        row = self._conn("reader").execute("SELECT data FROM users WHERE id = ?",
                                           (id,)).fetchone()
        return row[0] if row else None

    def list_users(self, min_level: Level) -> Iterable[bytes]:
        rows = self._conn("reader").execute("SELECT data FROM users WHERE level >= ?",
                                            (int(min_level),))
        return [r[0] for r in rows]

    def read_history(self, user_id: Optional[str], since_seq: int) -> Iterable[bytes]:
        conn = self._conn("reader")
        if user_id is None:
            rows = conn.execute("SELECT data FROM history WHERE seq >= ? ORDER BY seq",
                                (since_seq,))
        else:
            rows = conn.execute("SELECT data FROM history WHERE user_id = ? AND seq >= ? "
                                "ORDER BY seq", (user_id, since_seq))
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            threads, self._threads = list(self._threads), weakref.WeakSet()
        for conns in threads:
            conns.close()
        self._local = threading.local()
