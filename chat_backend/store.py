"""store: the one place that keeps state beyond a process (budget ledger, shared pages, kept text).

SQLite under `DATA_DIR` by default (one file, WAL, shared safely by threads and processes on one machine), or
Redis when `REDIS_URL` is set, so that replicas share it. Features above this module never ask which is behind.
Every method raises `StoreUnavailable` when the backend fails; callers degrade the feature, never the site.
Keys and values are whatever the caller passes: callers never put a key, a password or a visitor's secret in
them. The Redis URL itself may hold a password, so it never appears in a message or log line.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, cast

from .config import Settings

SQLITE_FILE = "store.sqlite3"
BUSY_TIMEOUT_S = 5.0  # another process holding the write lock: wait this long before giving up
REDIS_TIMEOUT_S = 2.0
REDIS_PREFIX = "chat"
WARN_EVERY_S = 60.0


class StoreUnavailable(Exception):
    """The backend failed (disk, lock timeout, Redis down); the caller decides how to degrade."""


class Store(Protocol):
    """Bytes by (namespace, key). `ttl` is seconds from now (None: forever); `add` treats a missing entry as 0,
    is atomic across threads, processes and replicas, and sets the expiry again each time; `trim` keeps the
    newest entries of a namespace that fit in `max_bytes` (key and value lengths) and drops the rest."""

    def get(self, namespace: str, key: str) -> bytes | None: ...

    def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None: ...

    def delete(self, namespace: str, key: str) -> bool: ...

    def add(self, namespace: str, key: str, amount: float, ttl: float | None = None) -> float: ...

    def trim(self, namespace: str, max_bytes: int) -> None: ...


class WarnEvery:
    """A warning about a degraded backend, logged at most once per `interval`: a failing store is news once, not
    with every message."""

    def __init__(self, logger: logging.Logger, interval: float = WARN_EVERY_S) -> None:
        self._logger = logger
        self._interval = interval
        self._last = -math.inf
        self._lock = threading.Lock()

    def __call__(self, message: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                return
            self._last = now
        self._logger.warning(message, *args)


def open_store(settings: Settings) -> Store:
    """Redis when `REDIS_URL` is set, else SQLite under `DATA_DIR`. Opening never fails: the first use does."""
    if settings.redis_url:
        return RedisStore(settings.redis_url)
    return SQLiteStore(Path(settings.data_dir) / SQLITE_FILE)


class SQLiteStore:
    """One table; `add` runs in one IMMEDIATE transaction, so concurrent adds from other processes never get lost.

    `ttl` (on `put` and `add`) sets the expiry from now; an expired entry reads as missing and is purged later.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
                " expires REAL, created REAL NOT NULL, PRIMARY KEY (namespace, key))"
            )
            self._db = db
        return self._db

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; a writer's lock is taken up front, so a read-modify-write cannot interleave with
        another process. Readers take no lock (WAL lets them read beside a writer)."""
        with self._lock:
            try:
                db = self._connect()
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except (sqlite3.Error, OSError) as error:
                raise StoreUnavailable(f"SQLite store at {self.path} failed: {error}") from error

    def _expires(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    def _live(self, db: sqlite3.Connection, namespace: str, key: str) -> bytes | None:
        row = db.execute(
            "SELECT value FROM entries WHERE namespace = ? AND key = ? AND (expires IS NULL OR expires > ?)",
            (namespace, key, self._clock()),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def get(self, namespace: str, key: str) -> bytes | None:
        with self._transaction(write=False) as db:
            return self._live(db, namespace, key)

    def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM entries WHERE expires IS NOT NULL AND expires <= ?", (self._clock(),))
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE"
                " SET value = excluded.value, expires = excluded.expires, created = excluded.created",
                (namespace, key, bytes(value), self._expires(ttl), self._clock()),
            )

    def delete(self, namespace: str, key: str) -> bool:
        with self._transaction() as db:
            found = self._live(db, namespace, key) is not None
            db.execute("DELETE FROM entries WHERE namespace = ? AND key = ?", (namespace, key))
            return found

    def add(self, namespace: str, key: str, amount: float, ttl: float | None = None) -> float:
        with self._transaction() as db:
            current = self._live(db, namespace, key)
            total = (float(current) if current else 0.0) + amount
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE"
                " SET value = excluded.value, expires = excluded.expires"
                + ("" if current else ", created = excluded.created"),
                (namespace, key, repr(total).encode(), self._expires(ttl), self._clock()),
            )
            return total

    def trim(self, namespace: str, max_bytes: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM entries WHERE expires IS NOT NULL AND expires <= ?", (self._clock(),))
            rows = db.execute(
                "SELECT key, length(key) + length(value) FROM entries WHERE namespace = ? ORDER BY created DESC, key",
                (namespace,),
            ).fetchall()
            kept = 0
            for key, size in rows:  # newest first: keep while they fit, drop the rest
                kept += size
                if kept > max_bytes:
                    db.execute("DELETE FROM entries WHERE namespace = ? AND key = ?", (namespace, key))


class RedisStore:
    """Values under `chat:<namespace>:<key>`; a sorted set per namespace (`chat:<namespace>` scored by insertion
    time) lets `trim` drop the oldest first. Expiry is Redis's own."""

    def __init__(self, url: str) -> None:
        import redis  # only deployments with REDIS_URL need it

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)

    @staticmethod
    def _name(namespace: str, key: str) -> str:
        return f"{REDIS_PREFIX}:{namespace}:{key}"

    @staticmethod
    def _index(namespace: str) -> str:
        return f"{REDIS_PREFIX}:{namespace}"

    @contextmanager
    def _failing_as_unavailable(self) -> Iterator[None]:
        try:
            yield
        except self._errors as error:  # the message names the error class only: the URL may hold a password
            raise StoreUnavailable(f"Redis store failed: {type(error).__name__}") from error

    def get(self, namespace: str, key: str) -> bytes | None:
        with self._failing_as_unavailable():
            return cast("bytes | None", self._redis.get(self._name(namespace, key)))  # decode_responses is off

    def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._failing_as_unavailable():
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(self._name(namespace, key), bytes(value), px=None if ttl is None else max(1, int(ttl * 1000)))
            pipe.zadd(self._index(namespace), {key: time.time()})
            pipe.execute()

    def delete(self, namespace: str, key: str) -> bool:
        with self._failing_as_unavailable():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._name(namespace, key))
            pipe.zrem(self._index(namespace), key)
            return bool(pipe.execute()[0])

    def add(self, namespace: str, key: str, amount: float, ttl: float | None = None) -> float:
        with self._failing_as_unavailable():
            pipe = self._redis.pipeline(transaction=True)
            pipe.incrbyfloat(self._name(namespace, key), amount)
            if ttl is not None:
                pipe.pexpire(self._name(namespace, key), max(1, int(ttl * 1000)))
            pipe.zadd(self._index(namespace), {key: time.time()}, nx=True)
            return float(pipe.execute()[0])

    def trim(self, namespace: str, max_bytes: int) -> None:
        with self._failing_as_unavailable():
            newest_first = cast("list[bytes]", self._redis.zrevrange(self._index(namespace), 0, -1))
            keys = [key.decode() for key in newest_first]
            sizes = self._redis.pipeline(transaction=False)
            for key in keys:
                sizes.strlen(self._name(namespace, key))
            kept, dropped = 0, []
            for key, size in zip(keys, sizes.execute(), strict=True):
                kept += len(key) + size if size else 0  # size 0: the entry expired, only its index entry is left
                if not size or kept > max_bytes:
                    dropped.append(key)
            if dropped:
                pipe = self._redis.pipeline(transaction=True)
                pipe.delete(*(self._name(namespace, key) for key in dropped))
                pipe.zrem(self._index(namespace), *dropped)
                pipe.execute()
