"""The PostgreSQL bodies of the migrations (their names and order are ``migrations.MIGRATIONS``).

PostgreSQL starts at the schema SQLite reached with m005: m001 creates all of it, and m002 to
m005 have nothing left to do there. Every later migration (m006 on) gets a body here as well. Types
differ from SQLite's where SQLite's are looser: BIGINT for every integer (sizes pass 2^31),
DOUBLE PRECISION for every real, JSONB for ``file_id`` (a number or a text, kept as it came),
and text compared byte by byte (``COLLATE "C"``), as SQLite compares it, whatever the
database's locale: ids, paths and times then sort the same on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

T = 'TEXT COLLATE "C"'
I = "BIGINT"  # noqa: E741
R = "DOUBLE PRECISION"

_RUN_SUMS = f"""
    runs {I} NOT NULL DEFAULT 0,
    sized_runs {I} NOT NULL DEFAULT 0,
    size_before_bytes {I} NOT NULL DEFAULT 0,
    size_after_bytes {I} NOT NULL DEFAULT 0,
    removed_audio {I} NOT NULL DEFAULT 0,
    removed_subtitle {I} NOT NULL DEFAULT 0,
    removed_attachment {I} NOT NULL DEFAULT 0,
    videos_transcoded {I} NOT NULL DEFAULT 0,
    videos_transcode_skipped {I} NOT NULL DEFAULT 0,
    audio_tracks_transcoded {I} NOT NULL DEFAULT 0,
    audio_tracks_preserved {I} NOT NULL DEFAULT 0,
    timed_runs {I} NOT NULL DEFAULT 0,
    duration_seconds {R} NOT NULL DEFAULT 0,
    first_run_at {T},
    last_run_at {T},"""
_CODEC_SUMS = f"runs {I} NOT NULL DEFAULT 0, saved_bytes {I} NOT NULL DEFAULT 0"
_PNS = f"policy {T} NOT NULL, node {T} NOT NULL, status {T} NOT NULL"
_DPNS = f"day {T} NOT NULL, {_PNS}"

# frozen here, as in migrations.m005 (a later change of the bounds gets a migration of its own)
_M005_BOUNDS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

_TRACKS = ", ".join(
    f"tracks_{w}_{k} {I}"
    for w in ("before", "after")
    for k in ("video", "audio", "subtitle", "attachment")
)

SCHEMA = [
    f"""CREATE TABLE runs (
        id {T} PRIMARY KEY, job_id {T}, file_id JSONB, path {T} NOT NULL, output_path {T},
        policy {T}, node {T} NOT NULL, status {T} NOT NULL, started_at {T} NOT NULL,
        finished_at {T}, last_activity_at {T}, duration_seconds {R}, size_before_bytes {I},
        size_after_bytes {I}, {_TRACKS}, video_source_codec {T}, video_target_codec {T},
        video_transcode_skipped {I}, video_skip_reason {T}, audio_tracks_transcoded {I},
        audio_tracks_preserved {I}, encoder_type {T}, phases_completed {I}, phases_total {I},
        total_changes {I}, hash_before {T}, hash_after {T}, error {T},
        source {T} NOT NULL DEFAULT 'hooks', pid {I}, process_started {R})""",
    "CREATE INDEX runs_started_path ON runs (started_at, path)",
    "CREATE INDEX runs_path_filters ON runs (path, started_at, policy, node, status)",
    "CREATE INDEX runs_output_path ON runs (output_path, started_at)",
    "CREATE INDEX runs_policy ON runs (policy, started_at)",
    "CREATE INDEX runs_node ON runs (node, started_at)",
    "CREATE INDEX runs_status ON runs (status, started_at)",
    f"""CREATE TABLE actions (
        run_id {T} NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq {I} NOT NULL,
        type {T}, track_type {T}, track_index {I}, before {T}, after {T}, success {I} NOT NULL,
        duration_ms {R}, rule {T}, message {T}, phase {T}, PRIMARY KEY (run_id, seq))""",
    f"""CREATE TABLE phases (
        run_id {T} NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq {I} NOT NULL,
        name {T}, wall_time_seconds {R}, bytes_read {I}, bytes_written {I}, encoding_fps {R},
        encoding_bitrate {R}, PRIMARY KEY (run_id, seq))""",
    f"""CREATE TABLE recording_errors (
        cause {T} PRIMARY KEY, count {I} NOT NULL, first_at {T} NOT NULL,
        last_at {T} NOT NULL, last_message {T})""",
    f"CREATE TABLE rollup_daily ({_DPNS}, {_RUN_SUMS} PRIMARY KEY (day, policy, node, status))",
    f"CREATE TABLE rollup_total ({_PNS}, {_RUN_SUMS} PRIMARY KEY (policy, node, status))",
    f"CREATE TABLE rollup_day_status (day {T} NOT NULL, status {T} NOT NULL, {_RUN_SUMS} "
    "PRIMARY KEY (day, status))",
    f"CREATE TABLE rollup_actions ({_DPNS}, type {T} NOT NULL, count {I} NOT NULL DEFAULT 0, "
    f"failed {I} NOT NULL DEFAULT 0, PRIMARY KEY (day, policy, node, status, type))",
    f"CREATE TABLE rollup_actions_total ({_PNS}, type {T} NOT NULL, "
    f"count {I} NOT NULL DEFAULT 0, failed {I} NOT NULL DEFAULT 0, "
    "PRIMARY KEY (policy, node, status, type))",
    f"CREATE TABLE rollup_codecs ({_DPNS}, source {T} NOT NULL, target {T} NOT NULL, "
    f"{_CODEC_SUMS}, PRIMARY KEY (day, policy, node, status, source, target))",
    f"CREATE TABLE rollup_codecs_total ({_PNS}, source {T} NOT NULL, target {T} NOT NULL, "
    f"{_CODEC_SUMS}, PRIMARY KEY (policy, node, status, source, target))",
    f"CREATE TABLE rollup_paths (path {T} PRIMARY KEY, runs {I} NOT NULL)",
    f"CREATE TABLE rollup_counts (name {T} PRIMARY KEY, value {I} NOT NULL)",
    "INSERT INTO rollup_counts (name, value) VALUES ('files', 0)",
    f"CREATE TABLE rollup_durations ({_PNS}, timed_runs {I} NOT NULL DEFAULT 0, "
    + ", ".join(f"le_{b} {I} NOT NULL DEFAULT 0" for b in _M005_BOUNDS)
    + ", PRIMARY KEY (policy, node, status))",
]


def m001_initial(conn: Any) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


def _already_in_m001(conn: Any) -> None:
    """Nothing to do: PostgreSQL's m001 made the schema these SQLite steps reach."""


def m006_no_row_all_nodes_write(conn: Any) -> None:
    from ..migrations import m006_fill

    conn.execute(
        f"CREATE TABLE rollup_day_node (day {T} NOT NULL, node {T} NOT NULL, "
        f"status {T} NOT NULL, {_RUN_SUMS} PRIMARY KEY (day, node, status))"
    )
    conn.execute(f"CREATE TABLE rollup_files (shard {I} PRIMARY KEY, files {I} NOT NULL)")
    m006_fill(conn)


def m007_files_by_policy_node_status(conn: Any) -> None:
    from ..migrations import m007_fill

    conn.execute(
        f"CREATE TABLE rollup_path_keys (dim {T} NOT NULL, value {T} NOT NULL, "
        f"path {T} NOT NULL, runs {I} NOT NULL, PRIMARY KEY (dim, value, path))"
    )
    m007_fill(conn)


BODIES: dict[str, Callable[[Any], None]] = {
    "m001_initial": m001_initial,
    "m002_rollup_levels": _already_in_m001,
    "m003_started_path_index": _already_in_m001,
    "m004_drop_job_index": _already_in_m001,
    "m005_duration_buckets": _already_in_m001,
    "m006_no_row_all_nodes_write": m006_no_row_all_nodes_write,
    "m007_files_by_policy_node_status": m007_files_by_policy_node_status,
}
