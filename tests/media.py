"""Tiny real media for the tests, and an ffprobe reading that does not go through our code."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from vpo_stats_plugin.samples import MediaSpec
from vpo_stats_plugin.samples import make_media as _make

TRACK_TYPES = ("video", "audio", "subtitle", "attachment")


def make_media(
    path: Path,
    *,
    video: str | None = "mpeg4",
    audio: tuple[str | None, ...] = ("eng",),
    subtitles: tuple[str | None, ...] = (),
    attachments: int = 0,
    size: str = "64x48",
    duration: float = 1.0,
) -> Path:
    """A small real file at ``path`` (the extension picks the container: .mkv or .mp4)."""
    spec = MediaSpec(path.name, video, audio, subtitles, attachments, size, duration, rate=10)
    return _make(path, spec)


def make_too_wide(path: Path) -> Path:
    """A one-frame FFV1 video 8200 pixels wide: ffprobe reads it, the mpeg4 encoder refuses it."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"]
    cmd += ["-i", "color=size=8200x16:rate=1:duration=1", "-c:v", "ffv1", str(path)]
    subprocess.run(cmd, check=True)
    return path


def ffprobe_streams(path: Path) -> list[dict]:
    """The streams of ``path`` as ffprobe reports them."""
    cmd = ["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"]


def track_counts(path: Path) -> dict[str, int]:
    """``{video, audio, subtitle, attachment}`` counts of ``path``, by ffprobe."""
    counts = Counter(s["codec_type"] for s in ffprobe_streams(path))
    return {kind: counts.get(kind, 0) for kind in TRACK_TYPES}


def languages(path: Path, kind: str) -> list[str | None]:
    """The language tags of the streams of one type, in order (None when untagged)."""
    return [
        (s.get("tags") or {}).get("language")
        for s in ffprobe_streams(path)
        if s["codec_type"] == kind
    ]
