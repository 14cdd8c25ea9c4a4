"""Builders of VPO-format ``library.db`` files, one DDL per schema shape, written for these tests.

The shapes follow what VPO's migrations leave behind (read from github randomparity/vpo,
``src/vpo/db/schema/definition.py`` and ``src/vpo/db/schema/migrations/``):

- 18 (v17->v18): ``processing_stats``, ``action_results``, ``performance_metrics`` appear;
- 21 (v20->v21): ``processing_stats.encoder_type`` added at the end by ``ALTER TABLE``;
- 23 (v22->v23): ``processing_stats.job_id`` added at the end; ``jobs.origin``, ``jobs.batch_id``;
- 27 (v24->v25 rebuilt ``processing_stats`` with a foreign key on ``job_id``; v27 is current);
- ``FUTURE``: an imagined later version with extra columns placed between known ones.

Only the tables the importer touches, plus ``jobs`` for the foreign key, are created.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

SHAPES = (18, 21, 23, 27)
FUTURE = 31

_META = "CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"

_FILES = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    filename TEXT NOT NULL,
    directory TEXT NOT NULL,
    extension TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    modified_at TEXT NOT NULL,
    content_hash TEXT,
    container_format TEXT,
    scanned_at TEXT NOT NULL,
    scan_status TEXT NOT NULL DEFAULT 'pending',
    scan_error TEXT,
    job_id TEXT,
    plugin_metadata TEXT{extra}
);
"""

_JOBS = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    file_id INTEGER,
    file_path TEXT NOT NULL,
    job_type TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    priority INTEGER NOT NULL DEFAULT 100,
    policy_name TEXT,
    policy_json TEXT,
    progress_percent REAL NOT NULL DEFAULT 0.0,
    progress_json TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    worker_pid INTEGER,
    worker_heartbeat TEXT,
    output_path TEXT,
    backup_path TEXT,
    error_message TEXT,
    files_affected_json TEXT,
    summary_json TEXT,
    log_path TEXT{extra},
    FOREIGN KEY (file_id) REFERENCES files(id) ON DELETE CASCADE
);
"""

# the columns of processing_stats as created at 18, in order; {middle} is where FUTURE adds some
_STATS_18 = """
    id TEXT PRIMARY KEY,
    file_id INTEGER NOT NULL,
    processed_at TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    size_before INTEGER NOT NULL,
    size_after INTEGER NOT NULL,
    size_change INTEGER NOT NULL,{middle}
    audio_tracks_before INTEGER NOT NULL DEFAULT 0,
    subtitle_tracks_before INTEGER NOT NULL DEFAULT 0,
    attachments_before INTEGER NOT NULL DEFAULT 0,
    audio_tracks_after INTEGER NOT NULL DEFAULT 0,
    subtitle_tracks_after INTEGER NOT NULL DEFAULT 0,
    attachments_after INTEGER NOT NULL DEFAULT 0,
    audio_tracks_removed INTEGER NOT NULL DEFAULT 0,
    subtitle_tracks_removed INTEGER NOT NULL DEFAULT 0,
    attachments_removed INTEGER NOT NULL DEFAULT 0,
    duration_seconds REAL NOT NULL,
    phases_completed INTEGER NOT NULL DEFAULT 0,
    phases_total INTEGER NOT NULL DEFAULT 0,
    total_changes INTEGER NOT NULL DEFAULT 0,
    video_source_codec TEXT,
    video_target_codec TEXT,
    video_transcode_skipped INTEGER NOT NULL DEFAULT 0,
    video_skip_reason TEXT,
    audio_tracks_transcoded INTEGER NOT NULL DEFAULT 0,
    audio_tracks_preserved INTEGER NOT NULL DEFAULT 0,
    hash_before TEXT,
    hash_after TEXT,
    success INTEGER NOT NULL,
    error_message TEXT"""

_ACTIONS = """
CREATE TABLE action_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stats_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    track_type TEXT,
    track_index INTEGER,
    before_state TEXT,
    after_state TEXT,
    success INTEGER NOT NULL,
    duration_ms INTEGER,
    rule_reference TEXT,
    message TEXT,
    FOREIGN KEY (stats_id) REFERENCES processing_stats(id) ON DELETE CASCADE
);
"""

_PERF = """
CREATE TABLE performance_metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stats_id TEXT NOT NULL,
    phase_name TEXT NOT NULL,{extra}
    wall_time_seconds REAL NOT NULL,
    bytes_read INTEGER,
    bytes_written INTEGER,
    encoding_fps REAL,
    encoding_bitrate INTEGER,
    FOREIGN KEY (stats_id) REFERENCES processing_stats(id) ON DELETE CASCADE
);
CREATE INDEX idx_perf_stats_id ON performance_metrics(stats_id);
"""

_STATS_INDEXES = """
CREATE INDEX idx_stats_file ON processing_stats(file_id);
CREATE INDEX idx_stats_policy ON processing_stats(policy_name);
CREATE INDEX idx_stats_time ON processing_stats(processed_at DESC);
CREATE INDEX idx_stats_success ON processing_stats(success);
"""

FUTURE_STATS_COLUMNS = ("container_before", "container_after", "worker_node")


def schema_sql(version: int) -> str:
    """The DDL of a VPO database at ``version`` (18, 21, 23, 27 or ``FUTURE``)."""
    future = version > 27
    files_extra = ",\n    container_tags TEXT" if version >= 27 else ""
    jobs_extra = ",\n    origin TEXT,\n    batch_id TEXT" if version >= 23 else ""
    middle = (
        "\n    container_before TEXT,\n    container_after TEXT DEFAULT 'mkv'," if future else ""
    )
    stats = "CREATE TABLE processing_stats (" + _STATS_18.format(middle=middle)
    if version >= 25:
        # v24->v25 rebuilt the table: the added columns are inline and job_id has a foreign key
        stats += ",\n    encoder_type TEXT,\n    job_id TEXT"
        if future:
            stats += ",\n    worker_node TEXT NOT NULL DEFAULT 'vpo-1'"
        stats += (
            ",\n    FOREIGN KEY (file_id) REFERENCES files(id) ON DELETE CASCADE,"
            "\n    FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE SET NULL\n);\n"
        )
    else:
        stats += ",\n    FOREIGN KEY (file_id) REFERENCES files(id) ON DELETE CASCADE\n);\n"
        if version >= 21:
            stats += "ALTER TABLE processing_stats ADD COLUMN encoder_type TEXT;\n"
        if version >= 23:
            stats += "ALTER TABLE processing_stats ADD COLUMN job_id TEXT;\n"
    indexes = _STATS_INDEXES
    if version >= 22:
        indexes += (
            "CREATE INDEX idx_stats_file_time ON processing_stats(file_id, processed_at DESC);\n"
        )
    if version >= 23:
        indexes += "CREATE INDEX idx_stats_job ON processing_stats(job_id);\n"
    perf_extra = "\n    gpu_utilisation REAL," if future else ""
    return "\n".join(
        [
            _META,
            _FILES.format(extra=files_extra),
            _JOBS.format(extra=jobs_extra),
            stats,
            indexes,
            _ACTIONS,
            _PERF.format(extra=perf_extra),
        ]
    )


@dataclass
class Phase:
    """One ``performance_metrics`` row as VPO writes it (bitrate in kbps)."""

    name: str
    wall_time_seconds: float
    encoding_fps: float | None = None
    encoding_bitrate_kbps: int | None = None
    bytes_read: int | None = None
    bytes_written: int | None = None


@dataclass
class VpoRow:
    """One ``processing_stats`` row with its file path and phases."""

    id: str
    path: str
    processed_at: str
    policy_name: str
    size_before: int
    size_after: int
    duration_seconds: float
    success: bool
    error_message: str | None = None
    audio_before: int = 0
    audio_after: int = 0
    subtitle_before: int = 0
    subtitle_after: int = 0
    attachments_before: int = 0
    attachments_after: int = 0
    phases_completed: int = 0
    phases_total: int = 0
    total_changes: int = 0
    video_source_codec: str | None = None
    video_target_codec: str | None = None
    video_transcode_skipped: bool = False
    video_skip_reason: str | None = None
    hash_before: str | None = None
    hash_after: str | None = None
    encoder_type: str | None = None
    job_id: str | None = None
    phases: list[Phase] = field(default_factory=list)

    @property
    def size_change(self) -> int:
        """Before minus after, as VPO stores it."""
        return self.size_before - self.size_after


def create_vpo_db(path: Path, version: int, *, wal: bool = True) -> Path:
    """Create an empty VPO database of ``version`` at ``path``."""
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(schema_sql(version))
        conn.execute("INSERT INTO _meta (key, value) VALUES ('schema_version', ?)", (str(version),))
        conn.commit()
    finally:
        conn.close()
    return path


def vpo_connect(path: Path) -> sqlite3.Connection:
    """A writer connection set up the way VPO sets up its own."""
    conn = sqlite3.connect(path, timeout=10)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _file_id(conn: sqlite3.Connection, path: str, when: str) -> int:
    found = conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
    if found:
        return found[0]
    p = Path(path)
    cur = conn.execute(
        "INSERT INTO files (path, filename, directory, extension, size_bytes, modified_at,"
        " scanned_at, scan_status) VALUES (?, ?, ?, ?, ?, ?, ?, 'ok')",
        (path, p.name, str(p.parent), p.suffix.lstrip("."), 1, when, when),
    )
    return int(cur.lastrowid)


def insert_row(conn: sqlite3.Connection, row: VpoRow) -> None:
    """Insert ``row`` (file, job, stats, phases) as VPO does: one transaction, no commit here."""
    stats_cols = _columns(conn, "processing_stats")
    file_id = _file_id(conn, row.path, row.processed_at)
    if row.job_id and "job_id" in stats_cols:
        conn.execute(
            "INSERT OR IGNORE INTO jobs (id, file_id, file_path, job_type, status, policy_name,"
            " created_at) VALUES (?, ?, ?, 'process', 'completed', ?, ?)",
            (row.job_id, file_id, row.path, row.policy_name, row.processed_at),
        )
    values = {
        "id": row.id,
        "file_id": file_id,
        "processed_at": row.processed_at,
        "policy_name": row.policy_name,
        "size_before": row.size_before,
        "size_after": row.size_after,
        "size_change": row.size_change,
        "audio_tracks_before": row.audio_before,
        "subtitle_tracks_before": row.subtitle_before,
        "attachments_before": row.attachments_before,
        "audio_tracks_after": row.audio_after,
        "subtitle_tracks_after": row.subtitle_after,
        "attachments_after": row.attachments_after,
        "audio_tracks_removed": max(0, row.audio_before - row.audio_after),
        "subtitle_tracks_removed": max(0, row.subtitle_before - row.subtitle_after),
        "attachments_removed": max(0, row.attachments_before - row.attachments_after),
        "duration_seconds": row.duration_seconds,
        "phases_completed": row.phases_completed,
        "phases_total": row.phases_total,
        "total_changes": row.total_changes,
        "video_source_codec": row.video_source_codec,
        "video_target_codec": row.video_target_codec,
        "video_transcode_skipped": int(row.video_transcode_skipped),
        "video_skip_reason": row.video_skip_reason,
        "audio_tracks_transcoded": 0,
        "audio_tracks_preserved": 0,
        "hash_before": row.hash_before,
        "hash_after": row.hash_after,
        "success": int(row.success),
        "error_message": row.error_message,
        "encoder_type": row.encoder_type,
        "job_id": row.job_id,
    }
    values = {k: v for k, v in values.items() if k in stats_cols}
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO processing_stats ({names}) VALUES ({marks})", list(values.values()))
    for phase in row.phases:
        conn.execute(
            "INSERT INTO performance_metrics (stats_id, phase_name, wall_time_seconds, bytes_read,"
            " bytes_written, encoding_fps, encoding_bitrate) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                phase.name,
                phase.wall_time_seconds,
                phase.bytes_read,
                phase.bytes_written,
                phase.encoding_fps,
                phase.encoding_bitrate_kbps,
            ),
        )


def add_rows(path: Path, rows: Iterable[VpoRow]) -> None:
    """Append ``rows`` to the VPO database at ``path``, one VPO-style transaction each."""
    conn = vpo_connect(path)
    try:
        for row in rows:
            insert_row(conn, row)
            conn.commit()
    finally:
        conn.close()


POLICIES = (
    "normalize.yaml",
    "strip commentary",
    "Entfernen: Kommentar ✂ (de)",
    "embedded",
    "日本語 ポリシー",
)
_CODECS = ("h264", "hevc", "mpeg2video", "vp9", None)
_ERRORS = (
    "mkvmerge failed: exit code 2",
    "FFmpeg error: Invalid data found when processing input",
    "Disk full: 'No space left on device'",
)


def vpo_time(moment: datetime) -> str:
    """A timestamp the way VPO writes ``processed_at`` (``isoformat()`` of an aware UTC time)."""
    return moment.astimezone(timezone.utc).isoformat()


def make_rows(
    count: int, version: int, *, seed: int = 1, start: datetime | None = None
) -> list[VpoRow]:
    """``count`` varied rows fit for ``version``: failures, NULL codecs, unicode, no phases."""
    rnd = random.Random(seed)
    start = start or datetime(2025, 10, 30, 21, 0, tzinfo=timezone.utc)
    rows: list[VpoRow] = []
    paths = [
        f"/media/library/Show {i:02d}/Épisode {i} – ünïcode.mkv" for i in range(count // 2 + 1)
    ]
    for i in range(count):
        moment = start + timedelta(hours=7 * i, seconds=rnd.randint(0, 3000))
        moment = moment.replace(microsecond=0 if i % 9 == 4 else rnd.randint(1, 999_999))
        success = i % 5 != 3
        before = rnd.randint(200_000_000, 9_000_000_000)
        if not success:
            after = before if i % 2 else before - rnd.randint(0, 10_000)
        elif i % 7 == 6:
            after = before + rnd.randint(1, 50_000_000)  # the file grew
        else:
            after = before - rnd.randint(0, before // 3)
        audio_b, sub_b, att_b = rnd.randint(1, 6), rnd.randint(0, 12), rnd.randint(0, 3)
        source = _CODECS[i % len(_CODECS)]
        transcoded = success and source is not None and i % 3 == 0
        skipped = success and source == "hevc" and not transcoded
        phases = []
        if i % 4 != 2:  # some rows have no performance metrics at all
            phases.append(Phase("analyze", round(rnd.uniform(0.1, 5), 3)))
            if transcoded:
                phases.append(
                    Phase(
                        "transcode",
                        round(rnd.uniform(60, 4000), 3),
                        encoding_fps=round(rnd.uniform(20, 300), 2),
                        encoding_bitrate_kbps=rnd.randint(800, 12_000),
                    )
                )
            phases.append(Phase("remux ✓", round(rnd.uniform(1, 90), 3)))
        rows.append(
            VpoRow(
                id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                path=paths[i % len(paths)],
                processed_at=vpo_time(moment),
                policy_name=POLICIES[i % len(POLICIES)],
                size_before=before,
                size_after=after,
                duration_seconds=round(rnd.uniform(0.5, 7200), 6),
                success=success,
                error_message=None if success else _ERRORS[i % len(_ERRORS)],
                audio_before=audio_b,
                audio_after=audio_b if not success else rnd.randint(1, audio_b),
                subtitle_before=sub_b,
                subtitle_after=sub_b if not success else rnd.randint(0, sub_b),
                attachments_before=att_b,
                attachments_after=att_b if not success else 0,
                phases_completed=len(phases) if success else max(0, len(phases) - 1),
                phases_total=max(len(phases), 1),
                total_changes=rnd.randint(0, 9) if success else 0,
                video_source_codec=source,
                video_target_codec="hevc" if transcoded else None,
                video_transcode_skipped=skipped,
                video_skip_reason="codec_matches" if skipped else None,
                hash_before=f"{rnd.getrandbits(256):064x}",
                hash_after=f"{rnd.getrandbits(256):064x}" if i % 6 else None,
                encoder_type=(
                    ("hardware" if i % 2 else "software") if transcoded and version >= 21 else None
                ),
                job_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4))
                if version >= 23 and i % 3
                else None,
                phases=phases,
            )
        )
    return rows


def build_vpo_db(path: Path, version: int, rows: Iterable[VpoRow] = ()) -> Path:
    """Create a VPO database of ``version`` at ``path`` and fill it with ``rows``."""
    create_vpo_db(path, version)
    add_rows(path, rows)
    return path
