"""A hook's write as one statement on a server: a run begun, an action added, a run finished.

A statement sent alone in autocommit mode is its own transaction and costs one round trip,
where a transaction of a few statements cost two or three (the answer that decides what to
write, then the commit): 0.35 against 0.75 ms for one durable update on loopback. The values
go as one JSON object that ``jsonb_populate_record`` types by the table's own columns, so a
NULL needs no cast. ``writes.py`` keeps the transaction of several statements for what these
do not cover: a late action, a second end, a value JSON cannot carry.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .. import rollups
from ..shapes import ACTION_FIELDS, PHASE_FIELDS
from .connection import param_value


def _as_json(values: dict[str, Any] | list[dict[str, Any]]) -> str | None:
    """A row (or rows) as JSON, its values as parameters carry them (flags as integers); None
    when one is a number JSON cannot hold (NaN, infinity), which a typed parameter can."""
    rows = [values] if isinstance(values, dict) else values
    plain = [{k: param_value(v) for k, v in row.items()} for row in rows]
    try:
        return json.dumps(plain[0] if isinstance(values, dict) else plain, allow_nan=False)
    except ValueError:
        return None


@cache
def _begin_statement(row: tuple[str, ...]) -> str:
    columns = ", ".join(row)
    keys = ", ".join(f"('{dim}', {expr})" for dim, expr in rollups.PATH_KEYS)
    # A path's row is new exactly when it counts one run after the upsert: rows that fall to
    # none are deleted (rollups.remove_paths). The path's row, its shard's and its keys' are
    # locked in that order, as every writer locks them (see _finish_statement for how).
    return (
        "WITH r AS ("
        f"INSERT INTO runs ({columns}) SELECT {columns} FROM jsonb_populate_record(NULL::runs, ?) "
        "ON CONFLICT (id) DO NOTHING RETURNING path, policy, node"
        "), counted AS ("
        "INSERT INTO rollup_paths (path, runs) SELECT path, 1 FROM r ON CONFLICT (path) "
        "DO UPDATE SET runs = rollup_paths.runs + excluded.runs RETURNING path, runs"
        "), new_file AS ("
        f"INSERT INTO rollup_files (shard, files) SELECT {rollups.FILE_SHARD}, 1 FROM counted "
        "WHERE runs = 1 ON CONFLICT (shard) DO UPDATE SET files = rollup_files.files + 1"
        " RETURNING 1), within AS ("
        "INSERT INTO rollup_path_keys (dim, value, path, runs) SELECT k.dim, k.value, r.path, 1 "
        f"FROM r CROSS JOIN LATERAL (VALUES {keys}) AS k (dim, value) "
        "WHERE (SELECT COUNT(*) FROM new_file) >= 0 ORDER BY k.dim, k.value "
        "ON CONFLICT (dim, value, path) DO UPDATE SET runs = rollup_path_keys.runs + 1"
        ") SELECT COUNT(*) FROM r"
    )


def begin_run(conn: Any, row: dict[str, Any]) -> bool | None:
    """Store a new running run (``row``: its columns, ``file_id`` as given) and count its file,
    in one statement: True when stored, False when begun already, None when not done here."""
    given = _as_json(row)
    if given is None:
        return None
    return conn.execute(_begin_statement(tuple(row)), (given,)).fetchone()[0] == 1


@cache
def _action_statement() -> str:
    columns = ", ".join(("run_id", "seq", *ACTION_FIELDS))
    values = ", ".join(f"a.{name}" for name in ACTION_FIELDS)
    return (
        "WITH run AS (SELECT status FROM runs WHERE id = ?), "
        "stored AS (SELECT 1 FROM actions WHERE run_id = ? AND seq = ?), "
        f"added AS (INSERT INTO actions ({columns}) SELECT a.run_id, COALESCE(a.seq, "
        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM actions WHERE run_id = a.run_id)), "
        f"{values} FROM jsonb_populate_record(NULL::actions, ?) AS a, run "
        "WHERE run.status = 'running' AND NOT EXISTS (SELECT 1 FROM stored) RETURNING 1), "
        "touched AS (UPDATE runs SET last_activity_at = ? WHERE id = ? "
        "AND EXISTS (SELECT 1 FROM added)) "
        "SELECT run.status, EXISTS (SELECT 1 FROM stored) AS stored FROM run"
    )


def append_action(
    conn: Any, run_id: str, seq: int | None, columns: dict[str, Any], when: str
) -> bool | None:
    """Add an action to a running run in one statement: True when stored (now or before),
    False when the run is unknown, None when not done here (the run has ended: a late action
    also goes into the rollups, in a transaction of its own)."""
    given = _as_json({"run_id": run_id, "seq": seq, **columns})
    if given is None:
        return None
    row = conn.execute(_action_statement(), (run_id, run_id, seq, given, when, run_id)).fetchone()
    if row is None:
        return False
    if row["status"] == "running" or row["stored"]:
        return True
    return None


@cache
def _finish_statement(names: tuple[str, ...], dialect: Any) -> str:
    assignments = ", ".join(f"{name} = ?" for name in names)
    if "total_changes" not in names:  # by default the successful actions recorded
        assignments += (
            ", total_changes = (SELECT COUNT(*) FROM actions WHERE run_id = runs.id "
            "AND success != 0)"
        )
    phase_columns = ", ".join(("run_id", "seq", *PHASE_FIELDS))
    # The rollups are summed from the run as the UPDATE left it (its RETURNING rows): the
    # statement's other parts see the tables as they were before it. PostgreSQL runs a
    # statement's parts in an order of its own: each level waits for the one before it (a
    # count of its rows, read before its first row is written), so that the levels' rows are
    # locked in LEVELS order, as every other writer locks them.
    parts, after = [], "TRUE"
    for i, level in enumerate(rollups.LEVELS):
        parts.append(f"level_{i} AS ({rollups.adding_sql(level, after, dialect, 'r')} RETURNING 1)")
        after = f"(SELECT COUNT(*) FROM level_{i}) >= 0"
    parts.append(f"ended AS ({rollups.count_ended_sql(after, 'r')})")
    return (
        f"WITH r AS (UPDATE runs SET {assignments} WHERE id = ? AND status = 'running' "
        "AND NOT EXISTS (SELECT 1 FROM phases WHERE run_id = ?) RETURNING *), "
        f"phased AS (INSERT INTO phases ({phase_columns}) SELECT {phase_columns} "
        "FROM jsonb_populate_recordset(NULL::phases, ?) WHERE EXISTS (SELECT 1 FROM r)), "
        f"{', '.join(parts)} SELECT COUNT(*) FROM r"
    )


def finish_run(
    conn: Any, run_id: str, fields: dict[str, Any], phases: list[dict[str, Any]]
) -> bool | None:
    """End a running run with ``fields`` (run columns) and its phases, and add it to the
    rollups, in one statement: True when done, None when not done here (the run is unknown,
    has ended already or holds phases: ``writes.finish_run`` sorts those out)."""
    if fields.get("total_changes") is None:
        fields = {k: v for k, v in fields.items() if k != "total_changes"}
    given = _as_json(
        [
            {"run_id": run_id, "seq": i, **{c: p.get(c) for c in PHASE_FIELDS}}
            for i, p in enumerate(phases, 1)
        ]
    )
    if given is None:
        return None
    statement = _finish_statement(tuple(fields), conn.dialect)
    params = [*fields.values(), run_id, run_id, given]
    return True if conn.execute(statement, params).fetchone()[0] == 1 else None
