"""Named, ordered schema migrations, each applied and recorded in one transaction.

A released migration is never edited: change the schema by appending a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..errors import DatabaseUnusable
from ..filters import iso, utcnow
from .connection import APPLICATION_ID
from .dialect import dialect_of

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration, under its function name."""
    if any(name == fn.__name__ for name, _ in MIGRATIONS):
        raise RuntimeError(f"duplicate migration name {fn.__name__}")
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in the database, in the order they ran."""
    dialect = dialect_of(conn)
    if not dialect.table_exists(conn, "_migrations"):
        return []
    order = dialect.applied_order()
    return [row[0] for row in conn.execute(f"SELECT name FROM _migrations ORDER BY {order}")]


def pending(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this version knows that the database has not had yet."""
    done = set(applied(conn))
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the database up to date; refuse one written by a newer version."""
    known = {name for name, _ in MIGRATIONS}
    unknown = [name for name in applied(conn) if name not in known]
    if unknown:
        raise DatabaseUnusable(
            f"{where} was written by a newer vpo-stats-plugin (unknown migrations: "
            f"{', '.join(unknown)}). Upgrade the plugin (pip install -U vpo-stats-plugin); "
            "the database was left as it is."
        )
    todo = pending(conn)
    dialect = dialect_of(conn)
    for name, fn in MIGRATIONS:
        if name not in todo:
            continue
        dialect.begin_migration(conn)
        try:
            if name in pending(conn):  # another process may have migrated meanwhile
                conn.execute(dialect.MIGRATIONS_TABLE)
                dialect.migration(name, fn)(conn)
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (name, iso(utcnow())),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            job_id TEXT,
            file_id,
            path TEXT NOT NULL,
            output_path TEXT,
            policy TEXT,
            node TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            last_activity_at TEXT,
            duration_seconds REAL,
            size_before_bytes INTEGER,
            size_after_bytes INTEGER,
            tracks_before_video INTEGER,
            tracks_before_audio INTEGER,
            tracks_before_subtitle INTEGER,
            tracks_before_attachment INTEGER,
            tracks_after_video INTEGER,
            tracks_after_audio INTEGER,
            tracks_after_subtitle INTEGER,
            tracks_after_attachment INTEGER,
            video_source_codec TEXT,
            video_target_codec TEXT,
            video_transcode_skipped INTEGER,
            video_skip_reason TEXT,
            audio_tracks_transcoded INTEGER,
            audio_tracks_preserved INTEGER,
            encoder_type TEXT,
            phases_completed INTEGER,
            phases_total INTEGER,
            total_changes INTEGER,
            hash_before TEXT,
            hash_after TEXT,
            error TEXT,
            source TEXT NOT NULL DEFAULT 'hooks',
            pid INTEGER,
            process_started REAL
        )
        """
    )
    conn.execute("CREATE INDEX runs_started ON runs (started_at)")
    conn.execute("CREATE INDEX runs_path ON runs (path, started_at)")
    conn.execute("CREATE INDEX runs_output_path ON runs (output_path, started_at)")
    conn.execute("CREATE INDEX runs_job ON runs (job_id)")
    conn.execute("CREATE INDEX runs_policy ON runs (policy, started_at)")
    conn.execute("CREATE INDEX runs_node ON runs (node, started_at)")
    conn.execute("CREATE INDEX runs_status ON runs (status, started_at)")
    conn.execute(
        """
        CREATE TABLE actions (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT,
            track_type TEXT,
            track_index INTEGER,
            before TEXT,
            after TEXT,
            success INTEGER NOT NULL,
            duration_ms REAL,
            rule TEXT,
            message TEXT,
            phase TEXT,
            PRIMARY KEY (run_id, seq)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE phases (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            name TEXT,
            wall_time_seconds REAL,
            bytes_read INTEGER,
            bytes_written INTEGER,
            encoding_fps REAL,
            encoding_bitrate REAL,
            PRIMARY KEY (run_id, seq)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE recording_errors (
            cause TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            last_message TEXT
        )
        """
    )
    # Rollups: finished runs summed per UTC day x policy x node x status (see rollups.py).
    conn.execute(
        """
        CREATE TABLE rollup_daily (
            day TEXT NOT NULL,
            policy TEXT NOT NULL,
            node TEXT NOT NULL,
            status TEXT NOT NULL,
            runs INTEGER NOT NULL DEFAULT 0,
            sized_runs INTEGER NOT NULL DEFAULT 0,
            size_before_bytes INTEGER NOT NULL DEFAULT 0,
            size_after_bytes INTEGER NOT NULL DEFAULT 0,
            removed_audio INTEGER NOT NULL DEFAULT 0,
            removed_subtitle INTEGER NOT NULL DEFAULT 0,
            removed_attachment INTEGER NOT NULL DEFAULT 0,
            videos_transcoded INTEGER NOT NULL DEFAULT 0,
            videos_transcode_skipped INTEGER NOT NULL DEFAULT 0,
            audio_tracks_transcoded INTEGER NOT NULL DEFAULT 0,
            audio_tracks_preserved INTEGER NOT NULL DEFAULT 0,
            timed_runs INTEGER NOT NULL DEFAULT 0,
            duration_seconds REAL NOT NULL DEFAULT 0,
            first_run_at TEXT,
            last_run_at TEXT,
            PRIMARY KEY (day, policy, node, status)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        """
        CREATE TABLE rollup_actions (
            day TEXT NOT NULL,
            policy TEXT NOT NULL,
            node TEXT NOT NULL,
            status TEXT NOT NULL,
            type TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, policy, node, status, type)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        "CREATE TABLE rollup_paths (path TEXT PRIMARY KEY, runs INTEGER NOT NULL) WITHOUT ROWID"
    )


_RUN_SUMS = """
            runs INTEGER NOT NULL DEFAULT 0,
            sized_runs INTEGER NOT NULL DEFAULT 0,
            size_before_bytes INTEGER NOT NULL DEFAULT 0,
            size_after_bytes INTEGER NOT NULL DEFAULT 0,
            removed_audio INTEGER NOT NULL DEFAULT 0,
            removed_subtitle INTEGER NOT NULL DEFAULT 0,
            removed_attachment INTEGER NOT NULL DEFAULT 0,
            videos_transcoded INTEGER NOT NULL DEFAULT 0,
            videos_transcode_skipped INTEGER NOT NULL DEFAULT 0,
            audio_tracks_transcoded INTEGER NOT NULL DEFAULT 0,
            audio_tracks_preserved INTEGER NOT NULL DEFAULT 0,
            timed_runs INTEGER NOT NULL DEFAULT 0,
            duration_seconds REAL NOT NULL DEFAULT 0,
            first_run_at TEXT,
            last_run_at TEXT,"""


_RUN_SUM_NAMES = (
    "runs, sized_runs, size_before_bytes, size_after_bytes, removed_audio, removed_subtitle, "
    "removed_attachment, videos_transcoded, videos_transcode_skipped, audio_tracks_transcoded, "
    "audio_tracks_preserved, timed_runs, duration_seconds"
)


def _summed(names: str) -> str:
    return ", ".join(f"SUM({name.strip()})" for name in names.split(","))


@migration
def m002_rollup_levels(conn: sqlite3.Connection) -> None:
    """Coarser rollups beside the daily ones, codec rollups, and a covering index on path.

    ``rollup_total`` (all time) answers whole-history questions and ``rollup_day_status`` the
    unfiltered trend in rows that do not grow with history; the ``rollup_codecs*`` tables
    answer codec transitions. They are filled here from what m001 kept (SQL frozen in this
    step, as a migration must not depend on code that changes later).
    """
    conn.execute(
        f"CREATE TABLE rollup_total (policy TEXT NOT NULL, node TEXT NOT NULL, "
        f"status TEXT NOT NULL, {_RUN_SUMS} PRIMARY KEY (policy, node, status)) WITHOUT ROWID"
    )
    conn.execute(
        f"CREATE TABLE rollup_day_status (day TEXT NOT NULL, status TEXT NOT NULL, {_RUN_SUMS} "
        "PRIMARY KEY (day, status)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE rollup_actions_total (policy TEXT NOT NULL, node TEXT NOT NULL, "
        "status TEXT NOT NULL, type TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0, "
        "failed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (policy, node, status, type)) "
        "WITHOUT ROWID"
    )
    codec_sums = "runs INTEGER NOT NULL DEFAULT 0, saved_bytes INTEGER NOT NULL DEFAULT 0"
    conn.execute(
        "CREATE TABLE rollup_codecs (day TEXT NOT NULL, policy TEXT NOT NULL, node TEXT NOT NULL, "
        f"status TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL, {codec_sums}, "
        "PRIMARY KEY (day, policy, node, status, source, target)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE rollup_codecs_total (policy TEXT NOT NULL, node TEXT NOT NULL, "
        f"status TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL, {codec_sums}, "
        "PRIMARY KEY (policy, node, status, source, target)) WITHOUT ROWID"
    )
    # counts kept beside the rollups; "files" = rows of rollup_paths (COUNT(*) reads them all)
    conn.execute(
        "CREATE TABLE rollup_counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
    )
    conn.execute(
        "INSERT INTO rollup_counts (name, value) SELECT 'files', COUNT(*) FROM rollup_paths"
    )
    # `file PATH` reads the same prefix; distinct-file counts under filters scan it alone
    conn.execute("CREATE INDEX runs_path_filters ON runs (path, started_at, policy, node, status)")
    conn.execute("DROP INDEX runs_path")
    # fill the new tables from the history already there
    sums = _summed(_RUN_SUM_NAMES)
    for table, key in (
        ("rollup_total", "policy, node, status"),
        ("rollup_day_status", "day, status"),
    ):
        conn.execute(
            f"INSERT INTO {table} ({key}, {_RUN_SUM_NAMES}, first_run_at, last_run_at) "
            f"SELECT {key}, {sums}, MIN(first_run_at), MAX(last_run_at) FROM rollup_daily "
            f"GROUP BY {key}"
        )
    conn.execute(
        "INSERT INTO rollup_actions_total (policy, node, status, type, count, failed) "
        "SELECT policy, node, status, type, SUM(count), SUM(failed) FROM rollup_actions "
        "GROUP BY policy, node, status, type"
    )
    codec_key = (
        "substr(r.started_at, 1, 10), COALESCE(r.policy, ''), r.node, r.status, "
        "COALESCE(r.video_source_codec, ''), CASE WHEN r.video_transcode_skipped = 1 THEN '' "
        "ELSE COALESCE(r.video_target_codec, '') END"
    )
    conn.execute(
        "INSERT INTO rollup_codecs (day, policy, node, status, source, target, runs, saved_bytes) "
        f"SELECT {codec_key}, COUNT(*), SUM(CASE WHEN r.size_before_bytes IS NOT NULL AND "
        "r.size_after_bytes IS NOT NULL THEN r.size_before_bytes - r.size_after_bytes ELSE 0 END) "
        "FROM runs r WHERE r.status = 'succeeded' AND (r.video_source_codec IS NOT NULL OR "
        f"r.video_target_codec IS NOT NULL) GROUP BY {codec_key}"
    )
    conn.execute(
        "INSERT INTO rollup_codecs_total (policy, node, status, source, target, runs, saved_bytes) "
        "SELECT policy, node, status, source, target, SUM(runs), SUM(saved_bytes) "
        "FROM rollup_codecs GROUP BY policy, node, status, source, target"
    )


@migration
def m003_started_path_index(conn: sqlite3.Connection) -> None:
    """``(started_at, path)`` replaces ``(started_at)``: distinct files over a time range read
    the index alone, and everything that read ``runs_started`` reads its prefix."""
    conn.execute("CREATE INDEX runs_started_path ON runs (started_at, path)")
    conn.execute("DROP INDEX runs_started")


@migration
def m004_drop_job_index(conn: sqlite3.Connection) -> None:
    """``runs_job`` is read by no query: dropping it makes every run insert cheaper."""
    conn.execute("DROP INDEX IF EXISTS runs_job")


# frozen here: the bounds of m005 (rollups.DURATION_BOUNDS may gain a migration of its own)
_M005_BOUNDS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)


@migration
def m005_duration_buckets(conn: sqlite3.Connection) -> None:
    """``rollup_durations``: finished runs with a duration per policy x node x status, counted
    into the cumulative buckets of the run-time histogram of ``GET /metrics``, filled from the
    runs already stored."""
    columns = ", ".join(f"le_{b} INTEGER NOT NULL DEFAULT 0" for b in _M005_BOUNDS)
    conn.execute(
        "CREATE TABLE rollup_durations (policy TEXT NOT NULL, node TEXT NOT NULL, "
        f"status TEXT NOT NULL, timed_runs INTEGER NOT NULL DEFAULT 0, {columns}, "
        "PRIMARY KEY (policy, node, status)) WITHOUT ROWID"
    )
    names = ", ".join(f"le_{b}" for b in _M005_BOUNDS)
    counts = ", ".join(
        f"SUM(CASE WHEN r.duration_seconds <= {b} THEN 1 ELSE 0 END)" for b in _M005_BOUNDS
    )
    key = "COALESCE(r.policy, ''), r.node, r.status"
    conn.execute(
        f"INSERT INTO rollup_durations (policy, node, status, timed_runs, {names}) "
        f"SELECT {key}, COUNT(*), {counts} FROM runs r "
        "WHERE r.status != 'running' AND r.duration_seconds IS NOT NULL "
        f"GROUP BY {key}"
    )


# frozen here: the shard of a path in the file count (rollups.FILE_SHARD, the same expression)
_M006_SHARD = "length(path) % 64"


@migration
def m006_no_row_all_nodes_write(conn: sqlite3.Connection) -> None:
    """No rollup row that every node's runs update, so nodes sharing a server never queue on
    one: the per-day totals gain the node in their key (``rollup_day_node`` replaces
    ``rollup_day_status``), and the file count is kept in 64 shards by path (``rollup_files``
    replaces ``rollup_counts``)."""
    conn.execute(
        f"CREATE TABLE rollup_day_node (day TEXT NOT NULL, node TEXT NOT NULL, "
        f"status TEXT NOT NULL, {_RUN_SUMS} PRIMARY KEY (day, node, status)) WITHOUT ROWID"
    )
    conn.execute("CREATE TABLE rollup_files (shard INTEGER PRIMARY KEY, files INTEGER NOT NULL)")
    m006_fill(conn)


def m006_fill(conn: sqlite3.Connection) -> None:
    """m006's steps after its tables are made, the same on both engines."""
    conn.execute(
        f"INSERT INTO rollup_day_node (day, node, status, {_RUN_SUM_NAMES}, first_run_at, "
        f"last_run_at) SELECT day, node, status, {_summed(_RUN_SUM_NAMES)}, MIN(first_run_at), "
        "MAX(last_run_at) FROM rollup_daily GROUP BY day, node, status"
    )
    conn.execute(
        f"INSERT INTO rollup_files (shard, files) SELECT {_M006_SHARD}, COUNT(*) "
        f"FROM rollup_paths GROUP BY {_M006_SHARD}"
    )
    conn.execute("DROP TABLE rollup_day_status")
    conn.execute("DROP TABLE rollup_counts")


@migration
def m007_files_by_policy_node_status(conn: sqlite3.Connection) -> None:
    """``rollup_path_keys``: the runs of each path within each policy, each node (running runs
    too) and each end status (finished runs), so that the files of one policy, node or status
    are counted from it, not from the runs (``summary --policy``, the dashboard with a node
    chosen: 120 ms at 1M runs before)."""
    conn.execute(
        "CREATE TABLE rollup_path_keys (dim TEXT NOT NULL, value TEXT NOT NULL, "
        "path TEXT NOT NULL, runs INTEGER NOT NULL, PRIMARY KEY (dim, value, path)) WITHOUT ROWID"
    )
    m007_fill(conn)


def m007_fill(conn: sqlite3.Connection) -> None:
    """m007's rows from the runs stored, the same on both engines."""
    for dim, column, where in (
        ("policy", "COALESCE(policy, '')", "TRUE"),
        ("node", "node", "TRUE"),
        ("status", "status", "status != 'running'"),
    ):
        conn.execute(
            f"INSERT INTO rollup_path_keys (dim, value, path, runs) SELECT '{dim}', {column}, "
            f"path, COUNT(*) FROM runs WHERE {where} GROUP BY {column}, path"
        )
