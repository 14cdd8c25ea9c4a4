"""Video codec transitions (source -> target) over filtered runs: a dashboard-only answer."""

from __future__ import annotations

from typing import Any

from ..filters import Filters
from ..store import Store


def codec_transitions(store: Store, filters: Filters) -> dict[str, Any]:
    """``{"transitions": [{source, target, runs, saved_bytes}], "filters"}``, most runs first.

    Counts succeeded runs that recorded a video codec; ``target`` is null when the video was
    not transcoded (skipped, or no target recorded). Uses ``Store.codecs`` when the store has
    it; otherwise it reads the matching runs (a scan: fine for thousands of runs, slow for
    millions).
    """
    native = getattr(store, "codecs", None)
    if callable(native):
        return native(filters)
    totals: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for run in store.iter_runs(filters):
        if run["status"] != "succeeded":
            continue
        source, target = run["video_source_codec"], run["video_target_codec"]
        if source is None and target is None:
            continue
        if run["video_transcode_skipped"]:
            target = None
        entry = totals.setdefault(
            (source, target), {"source": source, "target": target, "runs": 0, "saved_bytes": 0}
        )
        entry["runs"] += 1
        entry["saved_bytes"] += run["saved_bytes"] or 0
    rows = sorted(totals.values(), key=lambda e: (-e["runs"], e["source"] or "", e["target"] or ""))
    return {"transitions": rows, "filters": filters.as_json()}
