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

from . import redis_scripts
from .config import Settings

SQLITE_FILE = "store.sqlite3"
BUSY_TIMEOUT_S = 5.0  # another process holding the write lock: wait this long before giving up
REDIS_TIMEOUT_S = 2.0
REDIS_PREFIX = "chat"
WARN_EVERY_S = 60.0


class StoreUnavailable(Exception):
    """The backend failed (disk, lock timeout, Redis down); the caller decides how to degrade."""


class StoreFull(Exception):
    """`put_capped` found no room: in the whole namespace, or (`owner_only`) in the owner's part of it."""

    def __init__(self, owner_only: bool) -> None:
        super().__init__("the owner's part is full" if owner_only else "the namespace is full")
        self.owner_only = owner_only


class Store(Protocol):
    """Bytes by (namespace, key). `ttl` is seconds from now (None: forever); `add` treats a missing entry as 0,
    is atomic across threads, processes and replicas, and sets the expiry again each time; `trim` keeps the
    newest entries of a namespace that fit in `max_bytes` (key and value lengths) and drops the rest: for caches.

    `put_capped` is for what belongs to visitors: it stores an entry only if its namespace then holds at most
    `max_bytes` and the entries of `owner` at most `max_owner_bytes` (0: no cap), else raises `StoreFull`; it
    never removes anything. A namespace is written either with `put_capped` or with `put`, not both."""

    def get(self, namespace: str, key: str) -> bytes | None: ...

    def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None: ...

    def delete(self, namespace: str, key: str) -> bool: ...

    def add(self, namespace: str, key: str, amount: float, ttl: float | None = None) -> float: ...

    def trim(self, namespace: str, max_bytes: int) -> None: ...

    def put_capped(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        owner: str,
        max_bytes: int,
        max_owner_bytes: int,
        ttl: float | None = None,
    ) -> None: ...


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
            db.execute("BEGIN IMMEDIATE")  # one process creates or upgrades the table, the others see it done
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
                " expires REAL, created REAL NOT NULL, owner TEXT, PRIMARY KEY (namespace, key))"
            )
            if "owner" not in {row[1] for row in db.execute("PRAGMA table_info(entries)")}:
                db.execute("ALTER TABLE entries ADD COLUMN owner TEXT")  # a file from before owners
            db.execute("COMMIT")
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
                f"{_INSERT} ON CONFLICT (namespace, key) DO UPDATE"
                " SET value = excluded.value, expires = excluded.expires, created = excluded.created",
                (namespace, key, bytes(value), self._expires(ttl), self._clock(), None),
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
                f"{_INSERT} ON CONFLICT (namespace, key) DO UPDATE"
                " SET value = excluded.value, expires = excluded.expires"
                + ("" if current else ", created = excluded.created"),
                (namespace, key, repr(total).encode(), self._expires(ttl), self._clock(), None),
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

    def put_capped(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        owner: str,
        max_bytes: int,
        max_owner_bytes: int,
        ttl: float | None = None,
    ) -> None:
        size = len(key) + len(value)
        with self._transaction() as db:  # IMMEDIATE: the sums cannot change before the insert
            used, owned = db.execute(
                "SELECT coalesce(sum(length(key) + length(value)), 0),"
                " coalesce(sum(CASE WHEN owner = ? THEN length(key) + length(value) END), 0)"
                " FROM entries WHERE namespace = ? AND key != ? AND (expires IS NULL OR expires > ?)",
                (owner, namespace, key, self._clock()),
            ).fetchone()
            if max_bytes and used + size > max_bytes:
                raise StoreFull(owner_only=False)
            if max_owner_bytes and owned + size > max_owner_bytes:
                raise StoreFull(owner_only=True)
            db.execute(
                f"{_INSERT} ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " expires = excluded.expires, created = excluded.created, owner = excluded.owner",
                (namespace, key, bytes(value), self._expires(ttl), self._clock(), owner),
            )


_INSERT = "INSERT INTO entries (namespace, key, value, expires, created, owner) VALUES (?, ?, ?, ?, ?, ?)"


class RedisStore:
    """Values under `chat:<namespace>:<key>`; a sorted set per namespace (`chat:<namespace>` scored by insertion
    time) lets `trim` drop the oldest first. Expiry is Redis's own."""

    def __init__(self, url: str) -> None:
        import redis  # only deployments with REDIS_URL need it

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
        self._put_capped = self._redis.register_script(redis_scripts.PUT_CAPPED)
        self._delete = self._redis.register_script(redis_scripts.DELETE)

    @staticmethod
    def _name(namespace: str, key: str) -> str:
        return f"{REDIS_PREFIX}:{namespace}:{key}"

    @staticmethod
    def _index(namespace: str) -> str:
        return f"{REDIS_PREFIX}:{namespace}"

    def _script_keys(self, namespace: str, key: str) -> list[str]:
        """The KEYS of the Lua scripts: the value, the index, and the accounting of capped puts."""
        kept = [f"{REDIS_PREFIX}+{part}:{namespace}" for part in ("held", "expiries", "bytes")]
        return [self._name(namespace, key), self._index(namespace), *kept]

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
            return bool(self._delete(keys=self._script_keys(namespace, key), args=[key]))

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

    def put_capped(
        self,
        namespace: str,
        key: str,
        value: bytes,
        *,
        owner: str,
        max_bytes: int,
        max_owner_bytes: int,
        ttl: float | None = None,
    ) -> None:
        ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        now_ms = int(time.time() * 1000)
        args: list[str | bytes | int] = [key, bytes(value), ttl_ms, now_ms, max_bytes, max_owner_bytes, owner]
        with self._failing_as_unavailable():
            refused = int(self._put_capped(keys=self._script_keys(namespace, key), args=args))
        if refused:
            raise StoreFull(owner_only=refused == 2)
