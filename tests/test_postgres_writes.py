"""Nodes writing into one PostgreSQL server at the same moment (CONTRACT 7): no rollup row that
every node's writes must lock, and totals exact when they write the same files at once."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_database

from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.store import Store, open_store, writes
from vpo_stats_plugin.store.connection import DatabaseLocked
from vpo_stats_plugin.store.dialect import SQLiteDialect
from vpo_stats_plugin.store.postgresql.dialect import PostgreSQLDialect

DAY = "2024-05-06"
WAIT_MS = 300  # how long the second node may wait for a row the first one holds


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return engine_database(request, "postgresql", Path("unused"))


def _run(path: str, node: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "path": path,
        "policy": "english",
        "node": node,
        "status": "running",
        "started_at": f"{DAY}T10:00:00.000000Z",
        "size_before_bytes": 1000,
        "pid": os.getpid(),
    }


FINISHED = {
    "status": "succeeded",
    "size_after_bytes": 600,
    "finished_at": f"{DAY}T10:01:00.000000Z",
}


class _Unpipelined(PostgreSQLDialect):
    """The server's dialect with plain transactions (BEGIN and COMMIT as statements), so
    that ``_HeldCommit`` sees the COMMIT it holds back."""

    pipelined_transaction = SQLiteDialect.pipelined_transaction


class _HeldCommit:
    """A store connection whose COMMITs wait for ``release``: a node caught mid-transaction,
    holding every row its write touched."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.dialect = _Unpipelined()

    def execute(self, sql: str, params: Any = ()) -> Any:
        return None if sql == "COMMIT" else self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        return self.conn.executemany(sql, rows)

    def release(self) -> None:
        self.conn.execute("COMMIT")


@pytest.fixture
def holding(url: str) -> Iterator[tuple[Store, _HeldCommit]]:
    """Node ``nas-1`` with one new file begun and finished, its transaction still open."""
    store = open_store(url, node="nas-1")
    held = _HeldCommit(store.conn)
    run = _run("/library/held/a-file-held-open.mkv", "nas-1")
    writes.begin_run(held, run)  # type: ignore[arg-type]
    writes.finish_run(held, run["id"], FINISHED, [])  # type: ignore[arg-type]
    yield store, held
    held.release()
    store.close()


def _record(store: Store, path: str) -> None:
    run = _run(path, store.node)
    store.begin_run(run)
    store.finish_run(run["id"], FINISHED, [])


def test_a_node_mid_write_holds_no_row_another_node_needs(
    url: str, holding: tuple[Store, _HeldCommit]
) -> None:
    other = open_store(url, node="nas-2", busy_timeout_ms=WAIT_MS)
    # same day, policy and status, and a file new to the history as well: only its own
    # node's rollup rows and its path's shard (another length) are touched
    started = time.monotonic()
    _record(other, "/library/other/b.mkv")
    assert time.monotonic() - started < WAIT_MS / 1000
    # the same file as the held write: that row is shared, so this one waits (the test sees
    # a lock when there is one)
    with pytest.raises(DatabaseLocked):
        _record(other, "/library/held/a-file-held-open.mkv")
    holding[1].release()
    _record(other, "/library/held/a-file-held-open.mkv")
    summary = other.summary(Filters.parse())
    assert (summary["runs"], summary["files"], summary["saved_bytes"]) == (3, 2, 1200)
    other.close()


def test_nodes_writing_the_same_files_at_once_keep_exact_totals(url: str) -> None:
    paths = [f"/library/shared/{'x' * n}.mkv" for n in range(12)]
    nodes, rounds = 4, 3
    failures: list[BaseException] = []
    start = threading.Barrier(nodes)

    def node(name: str) -> None:
        try:
            with open_store(url, node=name, busy_timeout_ms=5000) as store:
                start.wait()
                for _ in range(rounds):
                    for path in paths:
                        _record(store, path)
        except BaseException as err:  # shown by the assertion below
            failures.append(err)

    threads = [threading.Thread(target=node, args=(f"node-{n}",)) for n in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    with open_store(url) as store:
        summary = store.summary(Filters.parse())
        per_node = {row["node"]: row["runs"] for row in store.nodes(Filters.parse())["nodes"]}
        check = store.rebuild_rollups(check=True)
    assert summary["runs"] == nodes * rounds * len(paths)
    assert summary["files"] == len(paths)
    assert per_node == {f"node-{n}": rounds * len(paths) for n in range(nodes)}
    assert check["differing_rows"] == 0, check["differing_by_table"]
