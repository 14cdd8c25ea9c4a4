"""Reads the history VPO keeps in its own ``library.db`` as runs, strictly read-only (stdlib only).

VPO writes one ``processing_stats`` row per processed file (with ``performance_metrics`` rows per
phase) once the file is done. This module opens that database with a read-only URI and reads the
rows by column name (schema 18 and later); vpo_mapping.py turns each one into a run in the Run
shape of CONTRACT section 4. It never writes to VPO's database: no rows, no schema, no checkpoint.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import DatabaseUnusable, InputMissing, StatsError
from .filters import iso
from .vpo_mapping import SkipRow, map_row

KNOWN_SCHEMA = 27  # the newest VPO schema this reader was checked against
FIRST_STATS_SCHEMA = 18  # processing_stats, action_results, performance_metrics appeared here
READ_BATCH = 500  # rows per read query; each query is its own short read transaction


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# processing_stats columns the reader uses; all but REQUIRED_COLUMNS may be absent
STATS_COLUMNS = _words(
    """id processed_at success file_id policy_name size_before size_after size_change
    audio_tracks_before subtitle_tracks_before attachments_before audio_tracks_after
    subtitle_tracks_after attachments_after duration_seconds phases_completed phases_total
    total_changes video_source_codec video_target_codec video_transcode_skipped video_skip_reason
    audio_tracks_transcoded audio_tracks_preserved hash_before hash_after error_message
    encoder_type job_id"""
)
REQUIRED_COLUMNS = ("id", "processed_at", "success")
PHASE_COLUMNS = _words(
    "phase_name wall_time_seconds bytes_read bytes_written encoding_fps encoding_bitrate"
)
ACTION_COLUMNS = _words(
    """action_type track_type track_index before_state after_state success duration_ms
    rule_reference message"""
)


def default_vpo_path() -> Path:
    """``VPO_DATABASE_PATH`` when set, else ``~/.vpo/library.db``."""
    env = os.environ.get("VPO_DATABASE_PATH")
    return Path(env).expanduser() if env else Path.home() / ".vpo" / "library.db"


class VpoUnavailable(StatsError):
    """VPO's database cannot be read right now (locked, being replaced); exit 1, or retry."""

    def __init__(self, path: Path, cause: object) -> None:
        super().__init__(
            f"cannot read VPO's database {path} right now ({cause}): VPO may hold a lock on it. "
            "Try again in a moment, or use --follow, which retries."
        )
        self.path = path
        self.cause = str(cause)


def _query(conn: sqlite3.Connection, path: Path, sql: str, params: Iterable[Any] = ()) -> list:
    """Run a read on VPO's database; its SQLite errors become errors naming VPO's file."""
    try:
        return conn.execute(sql, list(params)).fetchall()
    except sqlite3.OperationalError as err:
        raise VpoUnavailable(path, err) from None
    except sqlite3.DatabaseError as err:
        raise _unusable(path, f"SQLite cannot read it ({err})") from None


def _unusable(path: Path, why: str) -> DatabaseUnusable:
    return DatabaseUnusable(
        f"{path} cannot be read as VPO's database: {why}. Give the path of VPO's library.db "
        "(default ~/.vpo/library.db, or set VPO_DATABASE_PATH)."
    )


def open_vpo(path: str | Path, *, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open VPO's database read-only (``mode=ro`` URI, ``query_only``); nothing is ever written."""
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise InputMissing(
            f"VPO's database {path} does not exist. Give the path of VPO's library.db "
            "(default ~/.vpo/library.db, or set VPO_DATABASE_PATH)."
        )
    if path.is_dir():
        raise _unusable(path, "it is a directory")
    uri = f"{path.as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None)
    except sqlite3.Error as err:
        raise VpoUnavailable(path, err) from None
    conn.row_factory = sqlite3.Row
    _query(conn, path, "PRAGMA query_only = 1")
    return conn


@dataclass(frozen=True)
class VpoSchema:
    """What the reader found in VPO's database: schema version and the columns it can use."""

    path: Path
    version: int | None
    stats_columns: frozenset[str]
    phase_columns: frozenset[str]
    action_columns: frozenset[str]
    has_files: bool

    def describe(self) -> str:
        """One line for the user: which VPO schema, and whether it is newer than known."""
        if self.version is None:
            text = "VPO schema version unknown (no _meta row)"
        else:
            text = f"VPO schema version {self.version}"
        if self.version is not None and self.version > KNOWN_SCHEMA:
            text += (
                f" (newer than {KNOWN_SCHEMA}, the newest checked: reading known columns by name)"
            )
        return text


def _columns(conn: sqlite3.Connection, path: Path, table: str) -> frozenset[str]:
    return frozenset(row[1] for row in _query(conn, path, f'PRAGMA table_info("{table}")'))


def inspect_vpo(conn: sqlite3.Connection, path: str | Path) -> VpoSchema:
    """Check ``conn`` is a VPO database with processing stats; raises ``DatabaseUnusable``."""
    path = Path(path)
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.OperationalError as err:
        raise VpoUnavailable(path, err) from None
    except sqlite3.DatabaseError as err:
        raise _unusable(path, f"it is not an SQLite database ({err})") from None
    version = None
    if "_meta" in tables:
        rows = _query(conn, path, "SELECT value FROM _meta WHERE key = 'schema_version'")
        if rows and str(rows[0][0]).strip().isdigit():
            version = int(str(rows[0][0]).strip())
    if "processing_stats" not in tables:
        why = "it has no processing_stats table"
        if version is not None and version < FIRST_STATS_SCHEMA:
            why += f" (VPO schema {version}; statistics start at schema {FIRST_STATS_SCHEMA})"
        raise _unusable(path, why)
    stats = _columns(conn, path, "processing_stats")
    missing = [c for c in REQUIRED_COLUMNS if c not in stats]
    if missing:
        raise _unusable(path, f"processing_stats lacks the column(s) {', '.join(missing)}")
    try:
        conn.execute("SELECT rowid FROM processing_stats LIMIT 0")
    except sqlite3.OperationalError:
        raise _unusable(path, "processing_stats has no rowid to read it in order") from None
    return VpoSchema(
        path=path,
        version=version,
        stats_columns=stats,
        phase_columns=_columns(conn, path, "performance_metrics")
        if "performance_metrics" in tables
        else frozenset(),
        action_columns=_columns(conn, path, "action_results")
        if "action_results" in tables
        else frozenset(),
        has_files="files" in tables and "path" in _columns(conn, path, "files"),
    )


def _children(
    conn: sqlite3.Connection,
    path: Path,
    table: str,
    columns: frozenset[str],
    wanted: tuple[str, ...],
    ids: list[str],
) -> dict[str, list[dict[str, Any]]]:
    if not columns or not ids or "stats_id" not in columns:
        return {}
    names = [c for c in wanted if c in columns]
    select = ", ".join(f'"{c}"' for c in ["stats_id", *names])
    order = "rowid" if "id" not in columns else "id"
    sql = (
        f'SELECT {select} FROM "{table}" WHERE stats_id IN ({", ".join("?" * len(ids))}) '
        f"ORDER BY {order}"
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in _query(conn, path, sql, ids):
        out.setdefault(row["stats_id"], []).append(dict(row))
    return out


class VpoReader:
    """Reads ``processing_stats`` rows past a rowid as runs; counts what it read and skipped."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        schema: VpoSchema,
        *,
        node: str,
        since: datetime | None = None,
        batch: int = READ_BATCH,
        stop: threading.Event | None = None,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.node = node
        self.since = since
        self.batch = batch
        self.stop = stop
        self.read = 0
        self.skipped: list[tuple[str, str]] = []
        self.high_water: tuple[int, str | None] = (0, None)
        names = [c for c in STATS_COLUMNS if c in schema.stats_columns]
        cols = ", ".join(f'ps."{c}"' for c in names)
        path = "f.path" if schema.has_files else "NULL"
        join = " LEFT JOIN files AS f ON f.id = ps.file_id" if schema.has_files else ""
        where = "ps.rowid > ?"
        if since is not None:
            # a coarse, index-friendly bound on the finish time (text); exact test in runs()
            where += " AND ps.processed_at >= ?"
        self._sql = (
            f"SELECT ps.rowid AS _rowid, {cols}, {path} AS path FROM processing_stats AS ps{join} "
            f"WHERE {where} ORDER BY ps.rowid LIMIT ?"
        )

    def _params(self, after: int) -> list[Any]:
        params: list[Any] = [after]
        if self.since is not None:
            params.append((self.since - timedelta(days=1)).date().isoformat())
        return params

    def remaining(self, after_rowid: int = 0) -> int:
        """How many rows lie past ``after_rowid`` (within ``since``), for a progress total."""
        sql = self._sql.split(" ORDER BY")[0]
        sql = "SELECT COUNT(*) FROM (" + sql + ")"
        return int(_query(self.conn, self.schema.path, sql, self._params(after_rowid))[0][0])

    def marker_holds(self, rowid: int, stats_id: str | None) -> bool:
        """Whether the row at ``rowid`` is still ``stats_id`` (else VPO renumbered the table)."""
        if rowid <= 0 or stats_id is None:
            return True
        rows = _query(
            self.conn, self.schema.path, "SELECT id FROM processing_stats WHERE rowid = ?", [rowid]
        )
        return bool(rows) and rows[0][0] == stats_id

    def runs(self, after_rowid: int = 0) -> Iterator[dict[str, Any]]:
        """Runs for the rows past ``after_rowid``, in rowid order; ``high_water`` follows them."""
        after = after_rowid
        while not (self.stop and self.stop.is_set()):
            path = self.schema.path
            params = [*self._params(after), self.batch]
            rows = [dict(r) for r in _query(self.conn, path, self._sql, params)]
            if not rows:
                return
            ids = [r["id"] for r in rows if r.get("id") is not None]
            phases = _children(
                self.conn,
                path,
                "performance_metrics",
                self.schema.phase_columns,
                PHASE_COLUMNS,
                ids,
            )
            actions = _children(
                self.conn, path, "action_results", self.schema.action_columns, ACTION_COLUMNS, ids
            )
            for row in rows:
                after = row["_rowid"]
                self.high_water = (after, row.get("id"))
                try:
                    run = map_row(
                        row,
                        node=self.node,
                        phases=phases.get(row.get("id"), ()),
                        actions=actions.get(row.get("id"), ()),
                    )
                except SkipRow as why:
                    self.read += 1
                    self.skipped.append((str(row.get("id")), str(why)))
                    continue
                if self.since is not None and run["started_at"] < iso(self.since):
                    continue
                self.read += 1
                yield run
            if len(rows) < self.batch:
                return


def read_vpo_runs(
    path: str | Path,
    *,
    node: str,
    since: datetime | None = None,
    after_rowid: int = 0,
    batch: int = READ_BATCH,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(rowid, run)`` for each usable row of VPO's database at ``path`` past ``after_rowid``."""
    conn = open_vpo(path)
    try:
        reader = VpoReader(conn, inspect_vpo(conn, path), node=node, since=since, batch=batch)
        for run in reader.runs(after_rowid):
            yield reader.high_water[0], run
    finally:
        conn.close()
