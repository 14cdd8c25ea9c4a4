"""Small but real sample media made with ffmpeg: test pattern video, tones, SRT subtitles."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vpo_stats_plugin.refhost.media import ToolFailed, find_tool

_ENCODERS = {"h264": ["libx264", "-preset", "ultrafast"], "mpeg4": ["mpeg4"], "ffv1": ["ffv1"]}
_GREETINGS = {
    "eng": "Hello",
    "fra": "Bonjour",
    "deu": "Hallo",
    "spa": "Hola",
    "ita": "Ciao",
    "jpn": "Konnichiwa",
    "por": "Ola",
}


@dataclass(frozen=True)
class MediaSpec:
    """One file to make; a language of None makes an untagged track."""

    name: str
    video_codec: str | None = "mpeg4"
    audio: tuple[str | None, ...] = ("eng",)
    subtitles: tuple[str | None, ...] = ()
    attachments: int = 0
    size: str = "320x240"
    duration: float = 4.0
    rate: int = 15


# Chosen so a "keep English" policy meets each case: already clean, many languages, an untagged
# MP4 to remux, a file with no English audio (the first audio stays), and one with many tracks.
DEMO_SPECS: tuple[MediaSpec, ...] = (
    MediaSpec("already-clean.mkv", "h264", ("eng",), ("eng",)),
    MediaSpec("multilingual.mkv", "mpeg4", ("eng", "fra", "deu"), ("eng", "fra", "deu", "spa")),
    MediaSpec("anime.mkv", "h264", ("jpn", "eng"), ("eng", "jpn"), attachments=1),
    MediaSpec("phone-video.mp4", "h264", (None,), ("eng",)),
    MediaSpec("french-only.mkv", "mpeg4", ("fra",), ("fra",)),
    MediaSpec(
        "many-tracks.mkv",
        "mpeg4",
        ("eng", "fra", "deu", "jpn", "spa", "ita"),
        ("eng", "fra", "deu", "jpn", "spa", "ita", "por", None),
        attachments=2,
    ),
)


def _srt(language: str | None, duration: float) -> str:
    text = _GREETINGS.get(language or "", "...")
    cues, step = [], max(duration / 2, 0.5)
    for number in range(2):
        start, end = number * step, number * step + step * 0.9
        cues.append(f"{number + 1}\n{_stamp(start)} --> {_stamp(end)}\n{text} ({number + 1})\n")
    return "\n".join(cues)


def _stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"


def make_media(path: str | Path, spec: MediaSpec, *, ffmpeg: str | None = None) -> Path:
    """Write the file ``spec`` describes at ``path`` with ffmpeg; answers the path."""
    path = Path(path)
    ffmpeg = ffmpeg or find_tool("ffmpeg")
    mp4 = path.suffix.lower() in (".mp4", ".m4v", ".mov")
    args: list[str] = []
    maps: list[str] = []
    meta: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vpo-sample-") as scratch:
        inputs = 0
        if spec.video_codec:
            src = f"testsrc2=size={spec.size}:rate={spec.rate}:duration={spec.duration}"
            args += ["-f", "lavfi", "-i", src]
            maps += ["-map", f"{inputs}:v"]
            inputs += 1
        for n, language in enumerate(spec.audio):
            tone = f"sine=frequency={220 * (n + 2)}:sample_rate=48000:duration={spec.duration}"
            args += ["-f", "lavfi", "-i", tone]
            maps += ["-map", f"{inputs}:a"]
            meta += _language(f"a:{n}", language)
            inputs += 1
        for n, language in enumerate(spec.subtitles):
            srt = Path(scratch, f"sub{n}.srt")
            srt.write_text(_srt(language, spec.duration), encoding="utf-8")
            args += ["-i", str(srt)]
            maps += ["-map", f"{inputs}:s"]
            meta += _language(f"s:{n}", language)
            inputs += 1
        for n in range(0 if mp4 else spec.attachments):
            note = Path(scratch, f"notes{n}.txt")
            note.write_text(f"attachment {n} of {path.name}\n", encoding="utf-8")
            args += ["-attach", str(note)]
            meta += [f"-metadata:s:t:{n}", "mimetype=text/plain"]
        codecs = ["-c:a", "aac", "-b:a", "64k", "-c:s", "mov_text" if mp4 else "srt"]
        if spec.video_codec:
            codecs = ["-c:v", *_ENCODERS[spec.video_codec], *codecs]
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, *maps]
        proc = subprocess.run(
            [*cmd, *codecs, *meta, str(path)], capture_output=True, text=True, errors="replace"
        )
    if proc.returncode != 0:
        raise ToolFailed("ffmpeg", proc.returncode, proc.stderr)
    return path


def _language(specifier: str, language: str | None) -> list[str]:
    return [f"-metadata:s:{specifier}", f"language={language}"] if language else []


def make_sample_media(
    directory: str | Path,
    count: int = len(DEMO_SPECS),
    *,
    size: str | None = None,
    duration: float | None = None,
    on_file: Callable[[Path], None] | None = None,
    specs: Sequence[MediaSpec] = DEMO_SPECS,
) -> list[Path]:
    """Make ``count`` sample files in ``directory`` (cycling through ``specs``); answers the paths."""
    ffmpeg = find_tool("ffmpeg")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        spec = specs[n % len(specs)]
        changes = {k: v for k, v in (("size", size), ("duration", duration)) if v is not None}
        spec = replace(spec, **changes)
        path = make_media(directory / f"{n + 1:02}-{spec.name}", spec, ffmpeg=ffmpeg)
        paths.append(path)
        if on_file:
            on_file(path)
    return paths
