"""The Store seam: the same behaviour from SQLite and from Redis, atomic under threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_backend.config import load_settings
from chat_backend.store import RedisStore, SQLiteStore, Store, StoreFull, StoreUnavailable, open_store
from tests.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return open_store(load_settings({"DATA_DIR": str(tmp_path / "data")}, dotenv_path=None))
    server: RedisServer = request.getfixturevalue("redis_server")
    RedisStore(server.url)._redis.flushall()
    return open_store(load_settings({"REDIS_URL": server.url}, dotenv_path=None))


def test_put_get_delete(store: Store) -> None:
    assert store.get("ns", "a") is None
    store.put("ns", "a", b"\x00one")
    store.put("other", "a", b"two")
    assert store.get("ns", "a") == b"\x00one" and store.get("other", "a") == b"two"
    store.put("ns", "a", b"three")
    assert store.get("ns", "a") == b"three"
    assert store.delete("ns", "a") is True and store.delete("ns", "a") is False
    assert store.get("ns", "a") is None and store.get("other", "a") == b"two"


def test_add_accumulates_and_reads_back(store: Store) -> None:
    assert store.add("budget", "2026-12-01", 0.25) == 0.25
    assert store.add("budget", "2026-12-01", 0.5, ttl=3600) == 0.75
    assert float(store.get("budget", "2026-12-01") or b"0") == 0.75


def test_an_entry_expires_after_its_ttl(store: Store) -> None:
    store.put("ns", "short", b"x", ttl=0.05)
    store.add("ns", "count", 1, ttl=0.05)
    store.put("ns", "kept", b"y")
    deadline = time.monotonic() + 5
    while (store.get("ns", "short") or store.get("ns", "count")) and time.monotonic() < deadline:
        time.sleep(0.01)  # expiry is wall-clock time: nothing to wait on
    assert store.get("ns", "short") is None and store.get("ns", "count") is None and store.get("ns", "kept") == b"y"
    assert store.add("ns", "count", 2) == 2  # an expired counter starts again from zero


def test_trim_drops_the_oldest_first(store: Store) -> None:
    for index in range(5):
        store.put("pages", f"k{index}", b"x" * 98)  # 100 bytes each, key included
        time.sleep(0.002)  # distinct insertion times
    store.put("elsewhere", "k0", b"x" * 500)
    store.trim("pages", 300)
    assert [store.get("pages", f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert store.get("elsewhere", "k0") is not None


def put_100(store: Store, key: str, owner: str, max_bytes: int = 300, max_owner_bytes: int = 0, **ttl: float) -> None:
    """100 bytes (the key's 4 included) into the capped namespace "links"."""
    value = b"x" * (100 - len(key))
    store.put_capped("links", key, value, owner=owner, max_bytes=max_bytes, max_owner_bytes=max_owner_bytes, **ttl)


def test_a_full_namespace_refuses_new_entries_and_never_drops_one(store: Store) -> None:
    for key in ("k001", "k002", "k003"):
        put_100(store, key, owner=f"owner of {key}")
    with pytest.raises(StoreFull) as full:
        put_100(store, "k004", owner="newcomer")
    assert not full.value.owner_only
    assert [store.get("links", key) is not None for key in ("k001", "k002", "k003", "k004")] == [True] * 3 + [False]
    store.put("elsewhere", "big", b"x" * 1000)  # other namespaces do not count
    assert store.delete("links", "k002")
    put_100(store, "k004", owner="newcomer")  # a deleted entry's room is free again
    with pytest.raises(StoreFull):
        put_100(store, "k005", owner="newcomer")


def test_each_owner_has_a_share_of_the_namespace(store: Store) -> None:
    put_100(store, "a001", owner="one", max_bytes=1000, max_owner_bytes=200)
    put_100(store, "a002", owner="one", max_bytes=1000, max_owner_bytes=200)
    with pytest.raises(StoreFull) as full:
        put_100(store, "a003", owner="one", max_bytes=1000, max_owner_bytes=200)
    assert full.value.owner_only
    put_100(store, "b001", owner="two", max_bytes=1000, max_owner_bytes=200)
    assert store.delete("links", "a001")
    put_100(store, "a003", owner="one", max_bytes=1000, max_owner_bytes=200)


def test_expired_entries_make_room(store: Store) -> None:
    put_100(store, "t001", owner="one", max_bytes=200, ttl=0.05)
    put_100(store, "t002", owner="one", max_bytes=200, ttl=0.05)
    deadline = time.monotonic() + 5
    while store.get("links", "t001") is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # expiry is wall-clock time: nothing to wait on
    put_100(store, "t003", owner="two", max_bytes=200, max_owner_bytes=100)
    put_100(store, "t004", owner="one", max_bytes=200, max_owner_bytes=100)


def test_capped_puts_never_overshoot_under_concurrency(store: Store) -> None:
    stored: list[str] = []

    def putter(number: int) -> None:
        for attempt in range(10):
            key = f"{number}-{attempt:02d}"
            try:
                put_100(store, key, owner=str(number % 3), max_bytes=1000)
            except StoreFull:
                continue
            stored.append(key)

    threads = [threading.Thread(target=putter, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(stored) == 10 and all(store.get("links", key) is not None for key in stored)


def test_add_is_atomic_across_threads(store: Store) -> None:
    def adder() -> None:
        for _ in range(50):
            store.add("count", "total", 1.0)

    threads = [threading.Thread(target=adder) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.add("count", "total", 0) == 300


def _add_many(path: str, times: int) -> None:
    store = SQLiteStore(Path(path))
    for _ in range(times):
        store.add("count", "total", 0.5)


def test_sqlite_add_is_atomic_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(path, 100)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert SQLiteStore(Path(path)).add("count", "total", 0) == 150


def test_sqlite_survives_reopening(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "s.sqlite3").add("budget", "day", 1.5)
    assert SQLiteStore(tmp_path / "s.sqlite3").get("budget", "day") == b"1.5"


def test_a_broken_backend_raises_store_unavailable(tmp_path: Path, unused_port: int) -> None:
    (tmp_path / "file").write_text("not a folder")
    broken_sqlite = open_store(load_settings({"DATA_DIR": str(tmp_path / "file")}, dotenv_path=None))
    secret_url = f"redis://:hunter2-password@127.0.0.1:{unused_port}/0"
    broken_redis = open_store(load_settings({"REDIS_URL": secret_url}, dotenv_path=None))
    calls = [
        ("get", ("a", "b")),
        ("put", ("a", "b", b"c")),
        ("add", ("a", "b", 1)),
        ("delete", ("a", "b")),
        ("trim", ("a", 0)),
    ]
    capped = {"owner": "o", "max_bytes": 10, "max_owner_bytes": 0}
    for broken in (broken_sqlite, broken_redis):
        for name, args in calls:
            with pytest.raises(StoreUnavailable) as caught:
                getattr(broken, name)(*args)
            assert "hunter2" not in str(caught.value)
        with pytest.raises(StoreUnavailable):
            broken.put_capped("a", "b", b"c", **capped)


def test_a_sqlite_file_from_before_owners_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE entries (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
            " expires REAL, created REAL NOT NULL, PRIMARY KEY (namespace, key))"
        )
        db.execute("INSERT INTO entries VALUES ('links', 'old1', ?, NULL, 1.0)", (b"x" * 96,))
    store = SQLiteStore(path)
    assert store.get("links", "old1") == b"x" * 96
    put_100(store, "new1", owner="one", max_bytes=200)
    with pytest.raises(StoreFull):
        put_100(store, "new2", owner="one", max_bytes=200)  # the old entry counts too
