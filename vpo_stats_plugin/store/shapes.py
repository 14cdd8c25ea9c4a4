"""Mapping between stored rows and the JSON shapes of CONTRACT section 4."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

TRACK_TYPES = ("video", "audio", "subtitle", "attachment")

# Run fields stored as they are, in the order the Run shape lists them.
PLAIN_FIELDS = (
    "id",
    "job_id",
    "file_id",
    "path",
    "output_path",
    "policy",
    "node",
    "status",
    "started_at",
    "finished_at",
    "duration_seconds",
    "size_before_bytes",
    "size_after_bytes",
)
DETAIL_FIELDS = (
    "video_source_codec",
    "video_target_codec",
    "video_transcode_skipped",
    "video_skip_reason",
    "audio_tracks_transcoded",
    "audio_tracks_preserved",
    "encoder_type",
    "phases_completed",
    "phases_total",
    "total_changes",
    "hash_before",
    "hash_after",
    "error",
    "source",
)
TRACK_COLUMNS = tuple(
    f"tracks_{when}_{kind}" for when in ("before", "after") for kind in TRACK_TYPES
)
RUN_COLUMNS = (*PLAIN_FIELDS, *TRACK_COLUMNS, *DETAIL_FIELDS)
ACTION_FIELDS = (
    "type",
    "track_type",
    "track_index",
    "before",
    "after",
    "success",
    "duration_ms",
    "rule",
    "message",
    "phase",
)
PHASE_FIELDS = (
    "name",
    "wall_time_seconds",
    "bytes_read",
    "bytes_written",
    "encoding_fps",
    "encoding_bitrate",
)


def saved(before: int | None, after: int | None) -> int | None:
    """Bytes saved: before minus after, when both are known."""
    return None if before is None or after is None else before - after


def run_json(row: sqlite3.Row | dict) -> dict[str, Any]:
    """A stored run as the Run shape."""
    out: dict[str, Any] = {name: row[name] for name in PLAIN_FIELDS}
    out["saved_bytes"] = saved(row["size_before_bytes"], row["size_after_bytes"])
    for when in ("before", "after"):
        out[f"tracks_{when}"] = {kind: row[f"tracks_{when}_{kind}"] for kind in TRACK_TYPES}
    for name in DETAIL_FIELDS:
        out[name] = row[name]
    skipped = out["video_transcode_skipped"]
    out["video_transcode_skipped"] = None if skipped is None else bool(skipped)
    return out


def run_columns(run: dict[str, Any]) -> dict[str, Any]:
    """The Run shape (as exported or built by the recorder) as stored columns."""
    columns = {name: run.get(name) for name in (*PLAIN_FIELDS, *DETAIL_FIELDS)}
    for when in ("before", "after"):
        counts = run.get(f"tracks_{when}") or {}
        for kind in TRACK_TYPES:
            columns[f"tracks_{when}_{kind}"] = counts.get(kind)
    if columns["video_transcode_skipped"] is not None:
        columns["video_transcode_skipped"] = int(bool(columns["video_transcode_skipped"]))
    columns["source"] = columns["source"] or "hooks"
    return columns


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def action_columns(action: dict[str, Any]) -> dict[str, Any]:
    """An action as stored columns (``before``/``after`` kept as JSON text)."""
    columns = {name: action.get(name) for name in ACTION_FIELDS}
    columns["before"] = _dump(columns["before"])
    columns["after"] = _dump(columns["after"])
    columns["success"] = int(bool(columns["success"]))
    return columns


def action_json(row: sqlite3.Row) -> dict[str, Any]:
    """A stored action as the action fields of CONTRACT section 2."""
    out = {name: row[name] for name in ACTION_FIELDS}
    out["before"] = _load(out["before"])
    out["after"] = _load(out["after"])
    out["success"] = bool(out["success"])
    return out


def phase_json(row: sqlite3.Row) -> dict[str, Any]:
    """A stored phase as the phase fields of CONTRACT section 2."""
    return {name: row[name] for name in PHASE_FIELDS}
