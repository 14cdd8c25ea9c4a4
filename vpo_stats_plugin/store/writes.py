"""Writes: a short transaction per recorded event, one per purge (import: importing.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import BadParameter
from ..filters import Filters, iso, utcnow
from ..liveness import is_alive
from ..purging import Token, set_digest
from . import rollups
from .dialect import dialect_of
from .shapes import (
    ACTION_FIELDS,
    PHASE_FIELDS,
    RUN_COLUMNS,
    action_columns,
    run_columns,
)
from .where import run_where


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def hook_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A transaction of one hook's few small writes: on a server, the statements whose
    answers are not read go out together (pipelined), so a hook costs a round trip per
    answer it reads instead of one per statement."""
    with dialect_of(conn).pipelined_transaction(conn):
        yield conn


def _insert(table: str, columns: Iterable[str]) -> str:
    cols = list(columns)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


# each table's columns in the order its rows are written (an import's rows too)
RUN_ROW = (*RUN_COLUMNS, "last_activity_at", "pid", "process_started")
ACTION_ROW = ("run_id", "seq", *ACTION_FIELDS)
PHASE_ROW = ("run_id", "seq", *PHASE_FIELDS)
INSERT_RUN = _insert("runs", RUN_ROW)
INSERT_ACTION = _insert("actions", ACTION_ROW)
INSERT_PHASE = _insert("phases", PHASE_ROW)


def begin_run(conn: sqlite3.Connection, run: dict[str, Any]) -> None:
    """Store a new running run (``run`` in the Run shape, plus ``pid``/``process_started``)."""
    columns = run_columns(run)
    row = {c: columns[c] for c in RUN_COLUMNS}
    row.update(
        last_activity_at=run["started_at"],
        pid=run.get("pid"),
        process_started=run.get("process_started"),
    )
    dialect = dialect_of(conn)
    if dialect.begin_run_at_once(conn, row) is not None:
        return
    row["file_id"] = dialect.file_id(row["file_id"])
    with hook_transaction(conn):
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (row["id"],)).fetchone():
            return  # begun already (a write kept on disk and saved twice)
        conn.execute(INSERT_RUN, [row[c] for c in RUN_ROW])
        rollups.count_files(conn, {(row["path"], row["policy"], row["node"]): 1})


def record_action(
    conn: sqlite3.Connection,
    run_id: str,
    action: dict[str, Any],
    when: str,
    seq: int | None = None,
) -> bool:
    """Append one action to a run (as its ``seq``-th, when given: an action already stored
    under that number is not added again); False when the run is unknown."""
    columns = action_columns(action)
    done = dialect_of(conn).append_action_at_once(conn, run_id, seq, columns, when)
    if done is not None:
        return done
    with hook_transaction(conn):
        # the run's state and whether this action is stored already, in one answer
        row = conn.execute(
            "SELECT status, EXISTS (SELECT 1 FROM actions WHERE run_id = ? AND seq = ?) "
            "AS stored FROM runs WHERE id = ?",
            (run_id, seq, run_id),
        ).fetchone()
        if row is None:
            return False
        if seq is None:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM actions WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
        elif row["stored"]:
            return True
        conn.execute(INSERT_ACTION, [run_id, seq, *(columns[c] for c in ACTION_FIELDS)])
        conn.execute("UPDATE runs SET last_activity_at = ? WHERE id = ?", (when, run_id))
        if row["status"] != "running":
            rollups.add_action(conn, run_id, seq)
    return True


def finish_run(
    conn: sqlite3.Connection, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]
) -> bool:
    """Finish a run with ``fields`` (run columns) and its phases; False when the run is unknown."""
    if dialect_of(conn).finish_run_at_once(conn, run_id, fields, phases):
        return True
    with hook_transaction(conn):
        # the run's state and its successful actions, in one answer
        row = conn.execute(
            "SELECT status, (SELECT COUNT(*) FROM actions WHERE run_id = ? AND success != 0) "
            "AS changes FROM runs WHERE id = ?",
            (run_id, run_id),
        ).fetchone()
        if row is None:
            return False
        if fields.get("total_changes") is None:
            fields = {**fields, "total_changes": row["changes"]}
        assignments = ", ".join(f"{name} = ?" for name in fields)
        # finished twice, or reaped as interrupted before its end arrived: out of the rollups
        # as it was, back in as it is now
        counted = row["status"] != "running"
        with rollups.removing(conn, "r.id = ?", [run_id]) if counted else nullcontext():
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])
        conn.execute("DELETE FROM phases WHERE run_id = ?", (run_id,))
        conn.executemany(
            INSERT_PHASE,
            [[run_id, i, *(p.get(c) for c in PHASE_FIELDS)] for i, p in enumerate(phases, 1)],
        )
        rollups.add_run(conn, run_id)
    return True


def reap_interrupted(
    conn: sqlite3.Connection, node: str, stale_after: float, now: datetime | None = None
) -> int:
    """Mark runs whose process died as interrupted; answers how many.

    A run of this node is dead when its process (pid and start time) is gone, whatever its age;
    a run of another node, whose processes cannot be seen from here, when it has shown no
    activity (its recorder touches it while it lives) for ``stale_after`` seconds.
    """
    rows = conn.execute(
        "SELECT id, node, pid, process_started, last_activity_at FROM runs WHERE status = 'running'"
    ).fetchall()
    if not rows:
        return 0
    cutoff = iso((now or datetime.now(timezone.utc)) - timedelta(seconds=stale_after))
    dead = [
        r["id"]
        for r in rows
        if (
            not is_alive(r["pid"], r["process_started"])
            if r["node"] == node
            else (r["last_activity_at"] or "") < cutoff
        )
    ]
    if not dead:
        return 0
    reaped = 0
    with transaction(conn):
        for run_id in dead:
            changed = conn.execute(  # a run touched since it was read above is left alone
                "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?) "
                "WHERE id = ? AND status = 'running' "
                "AND (node = ? OR COALESCE(last_activity_at, '') < ?)",
                (
                    "interrupted: the processing stopped before the file was done",
                    run_id,
                    node,
                    cutoff,
                ),
            ).rowcount
            if changed:
                reaped += 1
                rollups.add_run(conn, run_id)
    return reaped


def touch_runs(conn: sqlite3.Connection, run_ids: list[str], when: str) -> None:
    """Mark runs still in flight as active at ``when`` (the recorder's heartbeat)."""
    with transaction(conn):
        conn.executemany(
            "UPDATE runs SET last_activity_at = ? WHERE id = ? AND status = 'running'",
            [(when, run_id) for run_id in run_ids],
        )


def purge(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    everything: bool = False,
    dry_run: bool = True,
    at: datetime | None = None,
    expect: Token | None = None,
) -> dict[str, Any]:
    """Delete the finished runs matching ``filters`` (with actions, phases, rollups) at once.

    A dry run answers a token of the set it counted (its filters resolved ``at``); with
    ``expect``, a token, the runs are deleted (or counted) only if they are exactly that set,
    checked in the transaction that deletes them, else ``SetChanged``.
    """
    if not everything and filters.empty:
        raise BadParameter(
            "filters", "purge needs --before/--since/--until, --policy, --node, --status or --all"
        )
    where, params = run_where(filters)
    where += " AND r.status != 'running'"
    if dry_run:
        matched, digest = _matching(conn, where, params)
        if expect is not None:
            expect.check(matched, digest)
        token = Token(expect.at if expect else at or utcnow(), matched, digest)
        return {"matched": matched, "deleted": 0, "token": str(token)}
    with transaction(conn):
        if expect is not None:
            expect.check(*_matching(conn, where, params))
        files = conn.execute(
            f"SELECT r.path, r.policy, r.node, COUNT(*) FROM runs r WHERE {where} "
            "GROUP BY r.path, r.policy, r.node",
            params,
        ).fetchall()
        with rollups.removing(conn, where, params):
            deleted = conn.execute(
                f"DELETE FROM runs WHERE id IN (SELECT r.id FROM runs r WHERE {where})", params
            ).rowcount
        rollups.uncount_files(conn, {(p, policy, node): n for p, policy, node, n in files})
    return {"matched": deleted, "deleted": deleted, "token": None}


def _matching(conn: sqlite3.Connection, where: str, params: list[Any]) -> tuple[int, str]:
    """How many runs ``where`` selects and the digest of their ids (one read)."""
    cursor = conn.execute(f"SELECT r.id FROM runs r WHERE {where}", params)
    return set_digest(row[0] for batch in iter(lambda: cursor.fetchmany(5000), []) for row in batch)


def record_error(conn: sqlite3.Connection, cause: str, message: str, count: int, when: str) -> None:
    """Add ``count`` recording errors of ``cause`` to the persistent tally."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO recording_errors (cause, count, first_at, last_at, last_message) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cause) DO UPDATE SET count = "
            "recording_errors.count + excluded.count, last_at = excluded.last_at, "
            "last_message = excluded.last_message",
            (cause, count, when, when, message[:2000]),
        )


def copy_errors(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Recording-error rows of another database (a backup's), added to this one's tally."""
    with transaction(conn):
        for row in rows:
            conn.execute(
                "INSERT INTO recording_errors (cause, count, first_at, last_at, last_message) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cause) DO UPDATE SET count = "
                "recording_errors.count + excluded.count, last_at = excluded.last_at, "
                "last_message = excluded.last_message",
                (row["cause"], row["count"], row["first_at"], row["last_at"], row["last_message"]),
            )
