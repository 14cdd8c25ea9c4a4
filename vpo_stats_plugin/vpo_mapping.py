"""Maps one row of VPO's ``processing_stats`` (with its phases and actions) to a run (stdlib only).

The run is in the Run shape of CONTRACT section 4. VPO's values are taken as they come: a value
of the wrong type becomes None, and a row that cannot be a run at all raises ``SkipRow``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .filters import iso
from .store.names import stored_name

HASH_SCHEME = "sha256-16k:"  # VPO hashes the first 16 KiB; not comparable with our hashes

_FRACTION = re.compile(r"\.(\d+)")


def parse_vpo_time(value: Any) -> datetime | None:
    """VPO's ``processed_at`` (``isoformat()`` of UTC, maybe ``Z`` or naive) as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    if raw[-1] in "Zz":
        raw = raw[:-1] + "+00:00"
    raw = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], raw, count=1)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class SkipRow(Exception):
    """A VPO row that cannot be a run; the message says why."""


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    try:
        number = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    return number if number is None or math.isfinite(number) else None


def _hash(value: Any) -> str | None:
    return f"{HASH_SCHEME}{value}" if isinstance(value, str) and value else None


def _state(text: Any) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {"text": str(text)}


def map_phase(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``performance_metrics`` row as a phase; VPO's kbps bitrate becomes bits/s."""
    kbps = _float(row.get("encoding_bitrate"))
    return {
        "name": row.get("phase_name"),
        "wall_time_seconds": _float(row.get("wall_time_seconds")),
        "bytes_read": _int(row.get("bytes_read")),
        "bytes_written": _int(row.get("bytes_written")),
        "encoding_fps": _float(row.get("encoding_fps")),
        "encoding_bitrate": None if kbps is None else round(kbps * 1000),
    }


def map_action(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``action_results`` row (VPO as shipped writes none) as an action."""
    return {
        "type": row.get("action_type"),
        "track_type": row.get("track_type"),
        "track_index": _int(row.get("track_index")),
        "before": _state(row.get("before_state")),
        "after": _state(row.get("after_state")),
        "success": bool(row.get("success")),
        "duration_ms": _int(row.get("duration_ms")),
        "rule": row.get("rule_reference"),
        "message": row.get("message"),
        "phase": None,
    }


def _unknown_if_zero(value: Any) -> int | None:
    # VPO as shipped always writes 0 here: a 0 means "never counted", a non-zero value is real
    number = _int(value)
    return number if number else None


def map_row(
    row: Mapping[str, Any],
    *,
    node: str,
    phases: Iterable[Mapping[str, Any]] = (),
    actions: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One ``processing_stats`` row (with ``path`` from ``files``) as a run; raises ``SkipRow``."""
    run_id = row.get("id")
    if not isinstance(run_id, str) or not run_id.strip():
        raise SkipRow(f"its id {run_id!r} is not text")
    finished = parse_vpo_time(row.get("processed_at"))
    if finished is None:
        raise SkipRow(f"processed_at {row.get('processed_at')!r} is not an ISO-8601 time")
    path = row.get("path")
    if not isinstance(path, str) or not path:
        raise SkipRow(f"file_id {row.get('file_id')!r} is not in VPO's files table: no path")
    success = row.get("success")
    if success not in (0, 1, True, False):
        raise SkipRow(f"success is {success!r}, not 0 or 1")
    duration = _float(row.get("duration_seconds"))
    started = finished - timedelta(seconds=duration) if duration and duration > 0 else finished
    before, after = _int(row.get("size_before")), _int(row.get("size_after"))
    if before is not None and after is not None:
        saved = before - after
    else:
        saved = _int(row.get("size_change"))
    skipped = row.get("video_transcode_skipped")

    def tracks(when: str) -> dict[str, int | None]:
        return {
            "video": None,  # VPO does not count video tracks
            "audio": _int(row.get(f"audio_tracks_{when}")),
            "subtitle": _int(row.get(f"subtitle_tracks_{when}")),
            "attachment": _int(row.get(f"attachments_{when}")),
        }

    return {
        "id": run_id,
        "job_id": row.get("job_id"),
        "file_id": row.get("file_id"),
        "path": stored_name(path),  # a name, stored as a hook stores the same file's
        "output_path": None,  # VPO does not record where the output went
        "policy": row.get("policy_name"),
        "node": node,
        "status": "succeeded" if success else "failed",
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_seconds": duration,
        "size_before_bytes": before,
        "size_after_bytes": after,
        "saved_bytes": saved,
        "tracks_before": tracks("before"),
        "tracks_after": tracks("after"),
        "video_source_codec": row.get("video_source_codec"),
        "video_target_codec": row.get("video_target_codec"),
        "video_transcode_skipped": None if skipped is None else bool(skipped),
        "video_skip_reason": row.get("video_skip_reason"),
        "audio_tracks_transcoded": _unknown_if_zero(row.get("audio_tracks_transcoded")),
        "audio_tracks_preserved": _unknown_if_zero(row.get("audio_tracks_preserved")),
        "encoder_type": row.get("encoder_type"),
        "phases_completed": _int(row.get("phases_completed")),
        "phases_total": _int(row.get("phases_total")),
        "total_changes": _int(row.get("total_changes")),
        "hash_before": _hash(row.get("hash_before")),
        "hash_after": _hash(row.get("hash_after")),
        "error": row.get("error_message"),
        "source": "vpo",
        "actions": [map_action(a) for a in actions],
        "phases": [map_phase(p) for p in phases],
    }
