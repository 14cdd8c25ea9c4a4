"""Test helpers for the web tests: a recorded history, expected numbers by hand, a live server.

The history goes into a real SQLite file through the store's import; the expected numbers are
computed here from the runs themselves, not by the store's queries.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from vpo_stats_plugin.store import open_store

HOSTILE = '<img src=x onerror="window.__pwned=1">\'&amp;<script>window.__pwned=2</script>'
POLICIES = ("strip-foreign-audio", "hevc-everything", HOSTILE)
BASE = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)  # a Monday
FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
MiB = 1024 * 1024


def stamp(moment: datetime) -> str:
    """The stored form of a time."""
    return moment.astimezone(timezone.utc).strftime(FMT)


def make_history(count: int = 60, seed: int = 7) -> list[dict[str, Any]]:
    """Runs in the export shape: three policies (one named like HTML), two nodes, repeats of
    the same file, failures, interrupted runs, transcodes and skips; one run still running."""
    rng = random.Random(seed)
    runs: list[dict[str, Any]] = []
    for i in range(count):
        policy = POLICIES[i % 3]
        started = BASE + timedelta(hours=9 * i, minutes=rng.randint(0, 50))
        status = "failed" if i % 7 == 3 else "interrupted" if i % 11 == 5 else "succeeded"
        before = rng.randint(300, 4000) * MiB + rng.randint(0, MiB)
        tracks_before = {
            "video": 1,
            "audio": rng.randint(2, 4),
            "subtitle": rng.randint(0, 6),
            "attachment": rng.randint(0, 2),
        }
        if status == "succeeded":
            tracks_after = {
                "video": 1,
                "audio": 1,
                "subtitle": min(1, tracks_before["subtitle"]),
                "attachment": 0,
            }
            after: int | None = before - rng.randint(0, before // 2)
        elif status == "failed":
            tracks_after = dict(tracks_before)
            after = before if i % 2 else None  # left as it was, or never measured
        else:
            tracks_after = {"video": None, "audio": None, "subtitle": None, "attachment": None}
            after = None
        hevc = policy == "hevc-everything"
        skipped = hevc and i % 4 == 0
        duration = round(rng.uniform(5, 900), 3)
        actions = [
            {
                "type": "remove_track",
                "track_type": "audio",
                "track_index": 2,
                "before": {"lang": "fra"},
                "after": None,
                "success": True,
                "duration_ms": 12.5,
                "rule": "keep eng audio",
                "message": None,
                "phase": "tracks",
            },
            {
                "type": "set_default",
                "track_type": "subtitle",
                "track_index": 0,
                "before": {"default": False},
                "after": {"default": True},
                "success": status != "failed",
                "duration_ms": 3.0,
                "rule": "default subs",
                "message": None if status != "failed" else "mkvpropedit exited 2",
                "phase": "tracks",
            },
        ]
        if hevc and not skipped:
            actions.append(
                {
                    "type": "transcode",
                    "track_type": "video",
                    "track_index": 0,
                    "before": {"codec": "h264"},
                    "after": {"codec": "hevc"},
                    "success": status == "succeeded",
                    "duration_ms": duration * 900,
                    "rule": "hevc",
                    "message": None,
                    "phase": "transcode",
                }
            )
        runs.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "job_id": f"job-{i}",
                "file_id": i,
                "path": f"/media/show/Episode {i % 40:02d}.mkv",
                "output_path": f"/media/show/Episode {i % 40:02d}.mkv",
                "policy": policy,
                "node": "node-a" if i % 2 else "node-b",
                "status": status,
                "started_at": stamp(started),
                "finished_at": stamp(started + timedelta(seconds=duration)),
                "duration_seconds": duration,
                "size_before_bytes": before,
                "size_after_bytes": after,
                "tracks_before": tracks_before,
                "tracks_after": tracks_after,
                "video_source_codec": "h264",
                "video_target_codec": "hevc" if hevc else None,
                "video_transcode_skipped": skipped if hevc else None,
                "video_skip_reason": "already small enough" if skipped else None,
                "audio_tracks_transcoded": 1 if hevc else 0,
                "audio_tracks_preserved": 1,
                "encoder_type": "software" if hevc else None,
                "phases_completed": 2 if status == "succeeded" else 1,
                "phases_total": 2,
                "total_changes": sum(a["success"] for a in actions),
                "hash_before": f"partial:{i:08x}",
                "hash_after": f"partial:{i + 1000:08x}" if after is not None else None,
                "error": f'ffmpeg failed on <b>{i}</b>: "disk full" & more'
                if status == "failed"
                else None,
                "source": "hooks",
                "actions": actions,
                "phases": [
                    {
                        "name": "tracks",
                        "wall_time_seconds": 1.5,
                        "bytes_read": before,
                        "bytes_written": after,
                        "encoding_fps": None,
                        "encoding_bitrate": None,
                    },
                    {
                        "name": "transcode",
                        "wall_time_seconds": duration - 1.5,
                        "bytes_read": before,
                        "bytes_written": after,
                        "encoding_fps": 48.2,
                        "encoding_bitrate": 2_500_000,
                    },
                ],
            }
        )
    # one run still going on another node (recent activity, so it is not reaped)
    now = datetime.now(timezone.utc) - timedelta(minutes=30)
    runs.append(
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "path": "/media/show/Now Playing.mkv",
            "policy": POLICIES[0],
            "node": "node-b",
            "status": "running",
            "started_at": stamp(now),
            "size_before_bytes": 900 * MiB,
            "tracks_before": {"video": 1, "audio": 2, "subtitle": 2, "attachment": 0},
            "source": "hooks",
            "actions": [],
            "phases": [],
        }
    )
    return runs


def record(path: Path, runs: list[dict[str, Any]]) -> None:
    """Write ``runs`` into the stats database at ``path`` through the store's import."""
    with open_store(path) as store:
        counts = store.import_runs(runs)
    assert counts["imported"] == len(runs), counts


# ------------------------------------------------------------------ expected values, by hand


def expected_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Summary computed straight from the runs given (CONTRACT section 4)."""
    by_status = Counter(r["status"] for r in runs)
    sized = [
        r
        for r in runs
        if r["status"] != "running"
        and r.get("size_before_bytes") is not None
        and r.get("size_after_bytes") is not None
    ]
    before = sum(r["size_before_bytes"] for r in sized)
    after = sum(r["size_after_bytes"] for r in sized)
    removed = dict.fromkeys(("audio", "subtitle", "attachment"), 0)
    for r in runs:
        for kind in removed:
            b = (r.get("tracks_before") or {}).get(kind)
            a = (r.get("tracks_after") or {}).get(kind)
            if b is not None and a is not None and b > a:
                removed[kind] += b - a
    timed = [r["duration_seconds"] for r in runs if r.get("duration_seconds") is not None]
    return {
        "runs": len(runs),
        "succeeded": by_status["succeeded"],
        "failed": by_status["failed"],
        "interrupted": by_status["interrupted"],
        "running": by_status["running"],
        "files": len({r["path"] for r in runs}),
        "size_before_bytes": before,
        "size_after_bytes": after,
        "saved_bytes": before - after,
        "saved_percent": round((before - after) * 100 / before, 2) if before else 0.0,
        "tracks_removed": removed,
        "videos_transcoded": sum(
            1
            for r in runs
            if r["status"] == "succeeded"
            and r.get("video_target_codec")
            and not r.get("video_transcode_skipped")
        ),
        "videos_transcode_skipped": sum(1 for r in runs if r.get("video_transcode_skipped")),
        "audio_tracks_transcoded": sum(r.get("audio_tracks_transcoded") or 0 for r in runs),
        "audio_tracks_preserved": sum(r.get("audio_tracks_preserved") or 0 for r in runs),
        "duration_total": sum(timed),
        "first_run_at": min(r["started_at"] for r in runs) if runs else None,
        "last_run_at": max(r["started_at"] for r in runs) if runs else None,
    }


def check_summary(body: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """``body`` (the API's summary) agrees with the runs it is about."""
    want = expected_summary(runs)
    assert body["duration_seconds"]["total"] == pytest.approx(want.pop("duration_total"), abs=0.01)
    for key, value in want.items():
        assert body[key] == value, key


# ------------------------------------------------------------------ a live server in a thread


@contextmanager
def serve_in_thread(app: web.Application, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` on ``host`` (a free port) from its own thread; yields ``http://host:port``."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()
    port: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, host, 0)
        loop.run_until_complete(site.start())
        port.append(runner.addresses[0][1])
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="web-test-server", daemon=True)
    thread.start()
    assert ready.wait(10), "the test server did not start"
    try:
        yield f"http://{host}:{port[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def get_when_up(url: str, timeout: float = 15.0) -> str:
    """GET ``url`` once a server (in another process, still starting) answers; its body."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fmt_bytes(n: int) -> str:
    """The dashboard's byte format (IEC units, one decimal under 100), for comparing text."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    value, i = float(abs(n)), 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    digits = 0 if i == 0 or value >= 100 else 1
    return f"{'-' if n < 0 else ''}{value:.{digits}f} {units[i]}"
