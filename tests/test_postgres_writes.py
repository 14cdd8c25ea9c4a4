"""Nodes writing into one PostgreSQL server at the same moment (CONTRACT 7): no rollup row that
every node's writes must lock, and totals exact when they write the same files at once."""

from __future__ import annotations

import math
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


class _Transactions(_Unpipelined):
    """As ``_Unpipelined``, and every hook's write a transaction of several statements (the
    way of a late action or a second end) instead of one statement."""

    begin_run_at_once = SQLiteDialect.begin_run_at_once
    append_action_at_once = SQLiteDialect.append_action_at_once
    finish_run_at_once = SQLiteDialect.finish_run_at_once


class _HeldCommit:
    """A store connection whose COMMITs wait for ``release``: a node caught mid-transaction,
    holding every row its write touched."""

    def __init__(self, conn: Any, dialect: PostgreSQLDialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Any = ()) -> Any:
        return None if sql == "COMMIT" else self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        return self.conn.executemany(sql, rows)

    def release(self) -> None:
        self.conn.execute("COMMIT")


@pytest.fixture(params=["transactions", "one statement each"])
def holding(url: str, request: pytest.FixtureRequest) -> Iterator[tuple[Store, _HeldCommit]]:
    """Node ``nas-1`` with one new file begun and finished, its transaction still open."""
    store = open_store(url, node="nas-1")
    if request.param == "transactions":
        held = _HeldCommit(store.conn, _Transactions())
    else:  # the hooks' single statements, run inside one transaction left open
        held = _HeldCommit(store.conn, _Unpipelined())
        held.conn.execute("BEGIN")
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


def test_values_json_cannot_carry_go_in_by_the_transaction(url: str) -> None:
    # a hook's write goes as one JSON object; NaN and infinity are numbers a typed parameter
    # carries and JSON does not, so such a write takes the transaction of several statements
    with open_store(url, node="nas-1") as store:
        run = {**_run("/library/odd.mkv", "nas-1"), "process_started": math.nan}
        store.begin_run(run)
        action = {"type": "remux", "success": True, "duration_ms": math.inf}
        assert store.record_action(run["id"], action, seq=1)
        assert store.record_action(run["id"], action, seq=1)  # stored once
        phases = [{"name": "remux", "wall_time_seconds": 1.5, "encoding_fps": math.nan}]
        assert store.finish_run(run["id"], FINISHED, phases)
        detail = store.run(run["id"])
        check = store.rebuild_rollups(check=True)
    assert [a["duration_ms"] for a in detail["actions"]] == [math.inf]
    assert math.isnan(detail["phases"][0]["encoding_fps"])
    assert detail["status"] == "succeeded" and check["differing_rows"] == 0


def test_an_action_after_the_end_is_counted_once(url: str) -> None:
    # an action that arrives after its run ended (a late report) is not written by the one
    # statement a running run's action is: its rollups go with it, in one transaction
    with open_store(url, node="nas-1") as store:
        run = _run("/library/late.mkv", "nas-1")
        store.begin_run(run)
        assert store.record_action(run["id"], {"type": "remux", "success": True})
        assert store.finish_run(run["id"], FINISHED, [])
        late = {"type": "set_default", "success": False}
        assert store.record_action(run["id"], late, seq=2)
        assert store.record_action(run["id"], late, seq=2)  # a repeat adds nothing
        assert not store.record_action(str(uuid.uuid4()), late)  # an unknown run
        check = store.rebuild_rollups(check=True)
        counts = store.conn.execute(
            "SELECT type, count, failed FROM rollup_actions_total ORDER BY type"
        ).fetchall()
    assert [tuple(row) for row in counts] == [("remux", 1, 0), ("set_default", 1, 1)]
    assert check["differing_rows"] == 0, check["differing_by_table"]


def test_a_run_s_end_takes_its_rollup_rows_in_levels_order(url: str) -> None:
    # the end of a run is one statement whose parts PostgreSQL may run in any order; it must
    # lock the levels' rows in LEVELS order, as imports and purges do, or they could deadlock.
    # The last level's row is held: by then every earlier level's row must be locked, and
    # the end-status file count (after the levels) not yet.
    import psycopg

    from vpo_stats_plugin.store.rollups import LEVELS

    ended = {
        **FINISHED,
        "video_source_codec": "h264",
        "video_target_codec": "hevc",
        "duration_seconds": 60.0,
    }
    key = {"day": DAY, "policy": "english", "node": "nas-1", "status": "succeeded"}
    key.update(type="remux", source="h264", target="hevc")
    path = "/library/ordered.mkv"
    with open_store(url, node="nas-1") as store:
        for _ in range(2):  # the first one makes every level's row; the second is held
            run = _run(path, "nas-1")
            store.begin_run(run)
            assert store.record_action(run["id"], {"type": "remux", "success": True})
            if _ == 0:
                assert store.finish_run(run["id"], ended, [])

        def where(level: Any) -> tuple[str, list[Any]]:
            return " AND ".join(f"{c} = %s" for c in level.columns), [key[c] for c in level.columns]

        *earlier, last = LEVELS
        holder = psycopg.connect(url)
        clause, params = where(last)
        held = holder.execute(f"SELECT 1 FROM {last.table} WHERE {clause} FOR UPDATE", params)
        assert held.fetchone() is not None
        done: list[bool] = []
        ending = threading.Thread(
            target=lambda: done.append(store.finish_run(run["id"], ended, []))
        )
        ending.start()
        with psycopg.connect(url, autocommit=True) as probe:
            deadline = time.monotonic() + 10
            while (
                time.monotonic() < deadline
                and not probe.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'WITH r AS (UPDATE runs%%'"
                ).fetchone()
            ):
                time.sleep(0.02)
            locked = []
            for level in [*earlier, last]:
                clause, params = where(level)
                try:
                    with probe.transaction():
                        probe.execute(
                            f"SELECT 1 FROM {level.table} WHERE {clause} FOR UPDATE NOWAIT", params
                        )
                except psycopg.errors.LockNotAvailable:
                    locked.append(level.table)
            with probe.transaction():
                status_row = probe.execute(
                    "SELECT 1 FROM rollup_path_keys WHERE dim = 'status' AND value = %s "
                    "AND path = %s FOR UPDATE NOWAIT",
                    ("succeeded", path),
                ).fetchone()
        holder.rollback()
        holder.close()
        ending.join(timeout=30)
        check = store.rebuild_rollups(check=True)
    assert locked == [level.table for level in LEVELS]
    assert status_row is not None  # there, and not locked yet
    assert done == [True] and check["differing_rows"] == 0, check["differing_by_table"]
