"""ffprobe and ffmpeg as the reference host uses them: find the tools, probe a file, run a pass."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TRACK_TYPES = ("video", "audio", "subtitle", "attachment")
_INSTALL_HINT = "install FFmpeg (Debian/Ubuntu: apt install ffmpeg; macOS: brew install ffmpeg)"


class ProcessingError(Exception):
    """An expected reason a file could not be processed; the message is shown as is."""


class ToolMissing(ProcessingError):
    """ffmpeg or ffprobe is not on PATH."""


class ToolFailed(ProcessingError):
    """ffmpeg or ffprobe exited with an error; ``tail`` is the end of what it printed."""

    def __init__(self, tool: str, returncode: int, stderr: str) -> None:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        self.tail = "\n".join(lines[-15:])[-2000:] or f"(no output, exit status {returncode})"
        self.returncode = returncode
        super().__init__(f"{tool} failed (exit status {returncode}): {self.tail}")


def find_tool(name: str) -> str:
    """The full path of ``ffmpeg``/``ffprobe``, or ToolMissing saying how to install it."""
    found = shutil.which(name)
    if not found:
        raise ToolMissing(f"{name} not found on PATH: {_INSTALL_HINT}, then try again")
    return found


@dataclass(frozen=True)
class Tools:
    """Paths of the two FFmpeg programs the host runs."""

    ffmpeg: str
    ffprobe: str

    @classmethod
    def find(cls) -> Tools:
        """Look both up on PATH."""
        return cls(ffmpeg=find_tool("ffmpeg"), ffprobe=find_tool("ffprobe"))


@dataclass(frozen=True)
class Stream:
    """One stream of a probed file."""

    index: int
    type: str
    codec: str | None
    language: str | None
    default: bool = False
    attached_pic: bool = False
    width: int | None = None
    height: int | None = None

    def track(self) -> dict[str, str | None]:
        """The contract's track shape: type, codec, language."""
        return {"type": self.type, "codec": self.codec, "language": self.language}

    def describe(self) -> dict[str, object]:
        """What an action's ``before`` says about this stream."""
        info: dict[str, object] = {"codec": self.codec, "language": self.language}
        if self.width:
            info.update(width=self.width, height=self.height)
        return info


@dataclass(frozen=True)
class Probe:
    """What ffprobe says about a file."""

    streams: list[Stream]
    format_name: str
    duration: float | None

    def tracks(self) -> list[dict[str, str | None]]:
        """Video, audio, subtitle and attachment streams in the contract's track shape."""
        return [s.track() for s in self.streams if s.type in TRACK_TYPES]

    def of_type(self, track_type: str) -> list[Stream]:
        """The streams of one type, in file order."""
        return [s for s in self.streams if s.type == track_type]


def _stream(raw: dict) -> Stream:
    tags = {str(k).lower(): v for k, v in (raw.get("tags") or {}).items()}
    disposition = raw.get("disposition") or {}
    return Stream(
        index=int(raw["index"]),
        type=str(raw.get("codec_type") or "data"),
        codec=raw.get("codec_name"),
        language=tags.get("language") or None,
        default=bool(disposition.get("default")),
        attached_pic=bool(disposition.get("attached_pic")),
        width=raw.get("width"),
        height=raw.get("height"),
    )


def probe(path: str | Path, ffprobe: str) -> Probe:
    """Run ffprobe on ``path``; ToolFailed when it is not a media file ffprobe can read."""
    cmd = [ffprobe, "-v", "error", "-of", "json", "-show_streams", "-show_format", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise ToolFailed("ffprobe", proc.returncode, proc.stderr)
    data = json.loads(proc.stdout or "{}")
    fmt = data.get("format") or {}
    try:
        duration: float | None = float(fmt["duration"])
    except (KeyError, TypeError, ValueError):
        duration = None
    return Probe(
        streams=[_stream(s) for s in data.get("streams", [])],
        format_name=str(fmt.get("format_name") or "unknown"),
        duration=duration,
    )


@dataclass(frozen=True)
class PassStats:
    """Measurements of one ffmpeg run, from its ``-progress`` report."""

    wall_time_seconds: float
    frames: int | None
    bytes_written: int | None
    encoding_fps: float | None
    encoding_bitrate: float | None


def _progress(report: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in report.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def run_ffmpeg(ffmpeg: str, args: list[str]) -> PassStats:
    """Run one ffmpeg pass with ``args``; ToolFailed (with the stderr tail) on a non-zero exit."""
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    cmd[-1:-1] = ["-progress", "pipe:1", "-nostats"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise ToolFailed("ffmpeg", proc.returncode, proc.stderr)
    values = _progress(proc.stdout)
    frames = _int(values.get("frame"))
    size = _int(values.get("total_size"))
    out_us = _int(values.get("out_time_us")) or _int(values.get("out_time_ms"))
    return PassStats(
        wall_time_seconds=wall,
        frames=frames,
        bytes_written=size,
        encoding_fps=round(frames / wall, 2) if frames and wall > 0 else None,
        encoding_bitrate=round(size * 8 / (out_us / 1e6)) if size and out_us else None,
    )
