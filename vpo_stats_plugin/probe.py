"""What the plugin can find out about a file by itself: size, hash, track counts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import threading

import xxhash

MIB = 1024 * 1024
PARTIAL_PREFIX = "partial-xxh3:"
TRACK_TYPES = ("video", "audio", "subtitle", "attachment")
_CODEC_TYPES = {
    "video": "video",
    "audio": "audio",
    "subtitle": "subtitle",
    "attachment": "attachment",
}
PROBE_TIMEOUT_S = 30


def file_stat(path: str | os.PathLike[str]) -> tuple[int | None, bool]:
    """Size in bytes (None when the file is not there), and whether it is a regular file: only
    a regular file is read (hashed, probed), as a FIFO or a device could block the host."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None, False
    return found.st_size, stat.S_ISREG(found.st_mode)


_buffers = threading.local()


def _buffer() -> memoryview:
    """This thread's 1 MiB read buffer: a fresh one per read costs more than hashing it."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(MIB))
    return buffer


def _read_up_to_a_mib(handle: io.RawIOBase, buffer: memoryview) -> memoryview:
    """The next MiB of ``handle`` (less only at its end): a read may return less on some
    file systems (network ones), so read until the buffer is full."""
    filled = 0
    while filled < MIB and (count := handle.readinto(buffer[filled:])):
        filled += count
    return buffer[:filled]


def partial_hash(path: str | os.PathLike[str]) -> str:
    """XXH3-128 of the size plus the first and last MiB: the same cost whatever the file size.

    A checksum, not a cryptographic hash: it tells whether a file changed, at memory speed.
    """
    buffer = _buffer()
    digest = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(_read_up_to_a_mib(handle, buffer))
        if size > MIB:
            handle.seek(max(MIB, size - MIB))
            digest.update(_read_up_to_a_mib(handle, buffer))
    return PARTIAL_PREFIX + digest.hexdigest()


def full_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the whole file (what `sha256sum` prints)."""
    buffer = _buffer()
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(buffer[:count])
    return "sha256:" + digest.hexdigest()


def file_hash(path: str | os.PathLike[str], mode: str) -> str | None:
    """The hash the config asks for (`off`, `partial`, `full`), or None."""
    if mode == "off":
        return None
    try:
        return full_hash(path) if mode == "full" else partial_hash(path)
    except (OSError, ValueError):
        return None


def probe_tracks(path: str | os.PathLike[str]) -> list[dict[str, str | None]] | None:
    """Tracks of a media file by ffprobe (type, codec, language), or None when it cannot tell."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None or file_stat(path)[0] is None:
        return None
    try:
        done = subprocess.run(
            [ffprobe, "-v", "error", "-print_format", "json", "-show_streams", os.fspath(path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
        streams = json.loads(done.stdout or b"{}").get("streams", [])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    tracks = []
    for stream in streams:
        kind = _CODEC_TYPES.get(stream.get("codec_type", ""))
        if kind is None:
            continue
        if kind == "video" and (stream.get("disposition") or {}).get("attached_pic"):
            kind = "attachment"
        tags = stream.get("tags") or {}
        tracks.append(
            {"type": kind, "codec": stream.get("codec_name"), "language": tags.get("language")}
        )
    return tracks


def count_tracks(tracks: list[dict] | None) -> dict[str, int | None]:
    """Counts per track type; all None when the tracks are unknown."""
    if tracks is None:
        return dict.fromkeys(TRACK_TYPES)
    counts = dict.fromkeys(TRACK_TYPES, 0)
    for track in tracks:
        kind = track.get("type") if isinstance(track, dict) else None
        if kind in counts:
            counts[kind] += 1
    return counts
