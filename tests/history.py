"""Varied run histories for the CLI tests, and an independent calculator of what they must show.

``make_history(now)`` builds runs in the export shape (CONTRACT section 4) spanning fourteen
months before ``now``: four policies (one None, one with unicode and spaces), three nodes,
every status, repeated files, paths with spaces, commas, quotes and CJK, null fields of every
kind, negative savings, timestamps with UTC offsets and on day boundaries, runs still running
and runs that died. ``Expected`` answers the reading questions from the same dicts in plain
Python: it never calls the store, so a wrong rollup, filter or sum shows as a difference.

Runs start whole minutes and 30 seconds before ``now``, so a relative filter (``--since 7d``)
that the CLI computes a moment later selects the same runs (tests check the moment anyway).
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

UTC = timezone.utc
STORED = "%Y-%m-%dT%H:%M:%S.%fZ"
MiB = 1024 * 1024
GiB = 1024 * MiB
TRACK_TYPES = ("video", "audio", "subtitle", "attachment")
STATUSES = ("running", "succeeded", "failed", "interrupted")

POLICIES = ("strip-foreign-audio", "Anime — 日本語 subs", "hevc everything", None)
NODES = ("nas-1", "worker 2", "ノード3")
PATHS = (
    "/media/movies/Heat (1995)/Heat.mkv",
    "/media/movies/Amélie (2001)/Amélie.mkv",
    "/media/anime/進撃の巨人/S01E01 – To You, in 2000 Years.mkv",
    '/media/tv/The "Wire"/S01E01, The Target.mkv',
    "/media/tv/Dark/S01E01.mp4",
    "/media/home videos/birthday 2019.mov",
    "/media/movies/Alien.mkv",
    "/media/movies/Aliens.mkv",
    "/media/movies/Ran.mkv",
    "/media/movies/M.mkv",
    *(f"/media/library/{n:03d}/file {n}.mkv" for n in range(40)),
)
ACTION_TYPES = ("remove_track", "set_default", "set_language", "transcode", "remux", None)


def stored(moment: datetime) -> str:
    """A time in the stored form (UTC, microseconds, Z)."""
    return moment.astimezone(UTC).strftime(STORED)


def parse_time(text: str) -> datetime:
    """Any ISO-8601 time of these histories, as aware UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _tracks(rng: random.Random) -> dict[str, int | None]:
    return {
        "video": rng.choice((1, 1, 1, None)),
        "audio": rng.randint(1, 5),
        "subtitle": rng.randint(0, 8),
        "attachment": rng.randint(0, 3),
    }


def _after_tracks(before: dict[str, int | None], rng: random.Random) -> dict[str, int | None]:
    return {
        "video": before["video"],
        "audio": rng.randint(1, before["audio"] or 1),
        "subtitle": rng.randint(0, min(2, before["subtitle"] or 0)),
        "attachment": rng.choice((0, before["attachment"])),
    }


def _actions(rng: random.Random, status: str) -> list[dict[str, Any]]:
    actions = []
    for index in range(rng.choice((0, 1, 2, 3, 4))):
        kind = rng.choice(ACTION_TYPES)
        success = not (status == "failed" and index == 0) and rng.random() > 0.08
        actions.append(
            {
                "type": kind,
                "track_type": rng.choice(("audio", "subtitle", "attachment", None)),
                "track_index": rng.choice((None, index, index + 1)),
                "before": {"language": "fra", "default": True} if rng.random() < 0.5 else None,
                "after": {"title": "Kommentar — ü"} if rng.random() < 0.5 else None,
                "success": success,
                "duration_ms": rng.choice((None, 12.5, 250.0, 1337.25)),
                "rule": rng.choice((None, "keep eng", "drop commentary, all")),
                "message": None if success else "ffmpeg said:\nInvalid data found\n",
                "phase": rng.choice((None, "apply", "transcode")),
            }
        )
    return actions


def _phases(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "wall_time_seconds": rng.choice((None, 0.5, 12.25, 3600.0)),
            "bytes_read": rng.choice((None, 0, 5 * GiB + 17)),
            "bytes_written": rng.choice((None, 0, 3 * GiB + 5)),
            "encoding_fps": rng.choice((None, 24.0, 87.5)),
            "encoding_bitrate": rng.choice((None, 4_500_000, 12_000_000)),
        }
        for name in rng.sample(("analyze", "apply", "transcode", "verify"), rng.randint(0, 3))
    ]


def _age(rng: random.Random, i: int) -> timedelta:
    """How long before ``now`` run ``i`` started: some hours, some days, most months."""
    bucket = i % 10
    if bucket == 0:
        days = 0
        hours = rng.randint(0, 11)
    elif bucket in (1, 2):
        days, hours = rng.randint(1, 20), rng.randint(0, 23)
    else:
        days, hours = rng.randint(21, 420), rng.randint(0, 23)
    return timedelta(days=days, hours=hours, minutes=rng.randint(1, 58), seconds=30)


def make_run(rng: random.Random, i: int, started: datetime) -> dict[str, Any]:
    """One finished run (succeeded, failed or interrupted) in the export shape."""
    roll = rng.random()
    status = "succeeded" if roll < 0.7 else "failed" if roll < 0.87 else "interrupted"
    path = PATHS[rng.randrange(len(PATHS))] if i % 4 else PATHS[i % 7]
    before = None if rng.random() < 0.05 else rng.randint(50 * MiB, 8 * GiB)
    tracks_before: dict[str, int | None] | None = _tracks(rng)
    tracks_after: dict[str, int | None] | None = None
    after: int | None = None
    source_codec = rng.choice(("h264", "hevc", "mpeg4", None))
    target, skipped, reason = None, None, None
    if status == "succeeded":
        tracks_after = _after_tracks(tracks_before, rng)
        if before is not None:
            after = before - int(before * rng.uniform(-0.05, 0.6))
        pick = rng.random()
        if pick < 0.3:
            target, skipped = "hevc", False
        elif pick < 0.5:
            target, skipped, reason = "hevc", True, "already hevc"
    elif status == "failed":
        after = before if rng.random() < 0.6 else None
        tracks_after = dict(tracks_before) if rng.random() < 0.5 else None
        if rng.random() < 0.3:
            skipped, reason = True, "codec not supported, 日本"
    if rng.random() < 0.1:
        tracks_before = None
    duration = None if rng.random() < 0.1 else rng.randint(1, 4 * 3600 * 4) / 4
    finished = started + timedelta(seconds=duration or 0) if status != "interrupted" else None
    # a few times written with an offset (Paris summer time), as another exporter might
    offset = i % 17 == 5
    started_text = (
        started.astimezone(timezone(timedelta(hours=2))).isoformat() if offset else stored(started)
    )
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "job_id": f"job-{i}" if rng.random() < 0.8 else None,
        "file_id": rng.choice((i, f"lib:{i}", None)),
        "path": path,
        "output_path": rng.choice((path, path.rsplit(".", 1)[0] + ".mkv", None)),
        "policy": POLICIES[i % len(POLICIES)],
        "node": NODES[rng.randrange(len(NODES))],
        "status": status,
        "started_at": started_text,
        "finished_at": None if finished is None else stored(finished),
        "duration_seconds": duration,
        "size_before_bytes": before,
        "size_after_bytes": after,
        "saved_bytes": None if before is None or after is None else before - after,
        "tracks_before": tracks_before,
        "tracks_after": tracks_after,
        "video_source_codec": source_codec,
        "video_target_codec": target,
        "video_transcode_skipped": skipped,
        "video_skip_reason": reason,
        "audio_tracks_transcoded": rng.choice((None, 0, 1, 2)),
        "audio_tracks_preserved": rng.choice((None, 0, 1, 3)),
        "encoder_type": rng.choice(("hardware", "software", None)),
        "phases_completed": rng.choice((None, 1, 2)),
        "phases_total": rng.choice((None, 2, 3)),
        "total_changes": rng.choice((None, 0, 3)),
        "hash_before": rng.choice((None, "partial:" + "ab" * 16)),
        "hash_after": rng.choice((None, "partial:" + "cd" * 16)),
        "error": (
            "ffmpeg exited with 1:\n[matroska] Invalid EBML — données corrompues\n"
            if status == "failed"
            else None
        ),
        "source": rng.choice(("hooks", "hooks", "vpo")),
        "actions": _actions(rng, status),
        "phases": _phases(rng),
    }


def make_history(now: datetime, count: int = 240, seed: int = 5) -> list[dict[str, Any]]:
    """``count`` varied runs before ``now`` plus the special cases, oldest first."""
    rng = random.Random(seed)
    runs = [make_run(rng, i, now - _age(rng, i)) for i in range(count)]
    # runs on the edges of one UTC day, for --since/--until with bare dates
    edge = (now - timedelta(days=40)).date()
    first = datetime(edge.year, edge.month, edge.day, tzinfo=UTC)
    for i, moment in enumerate(
        (first, first + timedelta(days=1) - timedelta(microseconds=1)), count
    ):
        run = make_run(rng, i, moment)
        run["started_at"] = stored(moment)
        runs.append(run)
    # still running on another node (a recent heartbeat), one of them already carrying sizes
    for i, minutes in enumerate((20, 45), count + 2):
        run = make_run(rng, i, now - timedelta(minutes=minutes, seconds=30))
        run.update(status="running", finished_at=None, duration_seconds=None, error=None)
        run.update(node=NODES[1], tracks_after=None, video_transcode_skipped=None)
        run["size_after_bytes"] = run["size_before_bytes"] if minutes == 45 else None
        run["saved_bytes"] = 0 if minutes == 45 and run["size_before_bytes"] else None
        runs.append(run)
    # left running three days ago on another node: stale, so it reads as interrupted
    run = make_run(rng, count + 4, now - timedelta(days=3, minutes=7, seconds=30))
    run.update(status="running", finished_at=None, error=None, node=NODES[2])
    runs.append(run)
    runs.sort(key=lambda r: (parse_time(r["started_at"]), r["id"]))
    return runs


# ----------------------------------------------------------------------------- the calculator


def run_from_row(row: sqlite3.Row, actions: list[dict], phases: list[dict]) -> dict[str, Any]:
    """A row of the ``runs`` table (read with plain sqlite3) as a run dict of this module."""
    run = {k: v for k, v in dict(row).items() if not k.startswith(("tracks_", "pid", "process_"))}
    for when in ("before", "after"):
        run[f"tracks_{when}"] = {k: row[f"tracks_{when}_{k}"] for k in TRACK_TYPES}
    if run["video_transcode_skipped"] is not None:
        run["video_transcode_skipped"] = bool(run["video_transcode_skipped"])
    run["actions"], run["phases"] = actions, phases
    return run


def read_raw(db: Path) -> list[dict[str, Any]]:
    """Every run of a database as the host wrote it, read with plain SQL (no store code)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        actions: dict[str, list[dict]] = defaultdict(list)
        for a in conn.execute("SELECT * FROM actions ORDER BY run_id, seq"):
            item = {k: v for k, v in dict(a).items() if k not in ("run_id", "seq")}
            item["success"] = bool(item["success"])
            for key in ("before", "after"):  # kept as JSON text
                item[key] = None if item[key] is None else json.loads(item[key])
            actions[a["run_id"]].append(item)
        phases: dict[str, list[dict]] = defaultdict(list)
        for p in conn.execute("SELECT * FROM phases ORDER BY run_id, seq"):
            phases[p["run_id"]].append(
                {k: v for k, v in dict(p).items() if k not in ("run_id", "seq")}
            )
        return [
            run_from_row(r, actions[r["id"]], phases[r["id"]])
            for r in conn.execute("SELECT * FROM runs")
        ]
    finally:
        conn.close()


class Expected:
    """What the CLI must answer for ``runs``, worked out in plain Python.

    ``node`` is the name of the machine the CLI runs on and ``now`` when it runs: a run left
    ``running`` counts as ``interrupted`` when it belongs to this node (its process is gone) or
    has shown no activity for ``stale_after`` seconds (CONTRACT section 2).
    """

    def __init__(
        self, runs: list[dict[str, Any]], node: str, now: datetime, stale_after: float = 86400
    ) -> None:
        self.runs = [self._effective(r, node, now, stale_after) for r in runs]

    @staticmethod
    def _effective(run: dict[str, Any], node: str, now: datetime, stale: float) -> dict[str, Any]:
        run = dict(run)
        run["_started"] = parse_time(run["started_at"])
        if run["status"] == "running":
            activity = parse_time(run.get("finished_at") or run["started_at"])
            if run["node"] == node or activity < now - timedelta(seconds=stale):
                run["status"] = "interrupted"
                run["error"] = run.get("error") or (
                    "interrupted: the processing stopped before the file was done"
                )
        return run

    def select(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        policy: str | None = None,
        node: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """The runs a filter selects: bounds inclusive, on started_at."""
        return [
            r
            for r in self.runs
            if (since is None or r["_started"] >= since)
            and (until is None or r["_started"] <= until)
            and (policy is None or r["policy"] == policy)
            and (node is None or r["node"] == node)
            and (status is None or r["status"] == status)
        ]

    # ---- pieces

    @staticmethod
    def _sized(r: dict[str, Any]) -> bool:
        return (
            r["status"] != "running"
            and r.get("size_before_bytes") is not None
            and r.get("size_after_bytes") is not None
        )

    @classmethod
    def sizes(cls, runs: list[dict[str, Any]]) -> dict[str, Any]:
        before = sum(r["size_before_bytes"] for r in runs if cls._sized(r))
        after = sum(r["size_after_bytes"] for r in runs if cls._sized(r))
        return {
            "size_before_bytes": before,
            "size_after_bytes": after,
            "saved_bytes": before - after,
            "saved_percent": round((before - after) * 100.0 / before, 2) if before else 0.0,
        }

    @staticmethod
    def counts(runs: list[dict[str, Any]]) -> dict[str, int]:
        out = {"runs": len(runs)}
        for status in ("succeeded", "failed", "interrupted", "running"):
            out[status] = sum(1 for r in runs if r["status"] == status)
        return out

    @staticmethod
    def _start(run: dict[str, Any]) -> datetime:
        return run.get("_started") or parse_time(run["started_at"])

    @classmethod
    def _stamp(cls, runs: list[dict[str, Any]], pick: Any) -> str | None:
        return stored(pick(map(cls._start, runs))) if runs else None

    # ---- answers, for runs already selected (in the Run shape, with actions)

    @classmethod
    def summary(cls, runs: list[dict[str, Any]], filters: dict[str, Any]) -> dict[str, Any]:
        def removed(kind: str) -> int:
            total = 0
            for r in runs:
                b = (r.get("tracks_before") or {}).get(kind)
                a = (r.get("tracks_after") or {}).get(kind)
                if a is not None and b is not None and b > a:
                    total += b - a
            return total

        timed = [r["duration_seconds"] for r in runs if r.get("duration_seconds") is not None]
        total = sum(timed)
        c = cls.counts(runs)
        return {
            "runs": c["runs"],
            "succeeded": c["succeeded"],
            "failed": c["failed"],
            "interrupted": c["interrupted"],
            "running": c["running"],
            "files": len({r["path"] for r in runs}),
            **cls.sizes(runs),
            "tracks_removed": {k: removed(k) for k in ("audio", "subtitle", "attachment")},
            "videos_transcoded": sum(
                1
                for r in runs
                if r["status"] == "succeeded"
                and r.get("video_target_codec") is not None
                and not r.get("video_transcode_skipped")
            ),
            "videos_transcode_skipped": sum(1 for r in runs if r.get("video_transcode_skipped")),
            "audio_tracks_transcoded": sum(r.get("audio_tracks_transcoded") or 0 for r in runs),
            "audio_tracks_preserved": sum(r.get("audio_tracks_preserved") or 0 for r in runs),
            "duration_seconds": {
                "total": round(total, 3),
                "mean": round(total / len(timed), 3) if timed else 0.0,
            },
            "first_run_at": cls._stamp(runs, min),
            "last_run_at": cls._stamp(runs, max),
            "filters": filters,
        }

    @classmethod
    def group_row(cls, key: str, name: str | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            key: name,
            **cls.counts(runs),
            **cls.sizes(runs),
            "last_run_at": cls._stamp(runs, max),
        }

    @classmethod
    def grouped(cls, key: str, runs: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
        """One row per value of ``key`` (policy or node), ordered as ``--sort`` says."""
        groups: dict[str | None, list] = defaultdict(list)
        for r in runs:
            groups[r[key]].append(r)
        rows = sorted(
            (cls.group_row(key, name, items) for name, items in groups.items()),
            key=lambda row: row[key] or "",
        )
        if sort == "runs":
            rows.sort(key=lambda row: -row["runs"])
        elif sort == "saved":
            rows.sort(key=lambda row: -row["saved_bytes"])
        return rows

    @classmethod
    def policies(
        cls, runs: list[dict[str, Any]], filters: dict[str, Any], sort: str = "runs"
    ) -> dict[str, Any]:
        return {"policies": cls.grouped("policy", runs, sort), "filters": filters}

    @classmethod
    def nodes(
        cls, runs: list[dict[str, Any]], filters: dict[str, Any], sort: str = "runs"
    ) -> dict[str, Any]:
        return {"nodes": cls.grouped("node", runs, sort), "filters": filters}

    @classmethod
    def policy(cls, name: str, runs: list[dict[str, Any]], filters: dict) -> dict[str, Any]:
        mine = [r for r in runs if r["policy"] == name]
        types: dict[str | None, dict[str, Any]] = {}
        for r in mine:
            for a in r.get("actions") or []:
                entry = types.setdefault(a["type"], {"type": a["type"], "count": 0, "failed": 0})
                entry["count"] += 1
                entry["failed"] += 0 if a["success"] else 1
        actions = sorted(types.values(), key=lambda a: (-a["count"], a["type"] or ""))
        return {**cls.group_row("policy", name, mine), "actions": actions, "filters": filters}

    @staticmethod
    def period(moment: datetime, by: str) -> str:
        day = moment.date()
        if by == "month":
            return day.isoformat()[:7]
        if by == "week":
            return (day - timedelta(days=day.weekday())).isoformat()
        return day.isoformat()

    @classmethod
    def trend(cls, runs: list[dict[str, Any]], filters: dict, by: str = "day") -> dict[str, Any]:
        groups: dict[str, list] = defaultdict(list)
        for r in runs:
            groups[cls.period(cls._start(r), by)].append(r)
        points = []
        for period in sorted(groups):
            sizes = cls.sizes(groups[period])
            del sizes["saved_percent"]
            points.append({"period": period, **cls.counts(groups[period]), **sizes})
        return {"by": by, "points": points, "filters": filters}

    @staticmethod
    def recent_ids(runs: list[dict[str, Any]], limit: int = 20) -> list[str]:
        ordered = sorted(runs, key=lambda r: r["id"])
        ordered.sort(key=lambda r: r["_started"], reverse=True)
        return [r["id"] for r in ordered[:limit]]

    @staticmethod
    def file_ids(runs: list[dict[str, Any]], path: str) -> list[str]:
        mine = [r for r in runs if path in (r["path"], r.get("output_path"))]
        return [r["id"] for r in sorted(mine, key=lambda r: (r["_started"], r["id"]))]

    def run_json(self, run_id: str) -> dict[str, Any]:
        """The Run shape (with actions and phases) that detail and export answer for one run."""
        (r,) = [r for r in self.runs if r["id"] == run_id]
        out: dict[str, Any] = {}
        for name in ("id", "job_id", "file_id", "path", "output_path", "policy", "node"):
            out[name] = r.get(name)
        out["status"] = r["status"]
        out["started_at"] = stored(r["_started"])
        out["finished_at"] = stored(parse_time(r["finished_at"])) if r.get("finished_at") else None
        out["duration_seconds"] = r.get("duration_seconds")
        before, after = r.get("size_before_bytes"), r.get("size_after_bytes")
        out.update(size_before_bytes=before, size_after_bytes=after)
        out["saved_bytes"] = None if before is None or after is None else before - after
        for when in ("before", "after"):
            given = r.get(f"tracks_{when}") or {}
            out[f"tracks_{when}"] = {k: given.get(k) for k in TRACK_TYPES}
        for name in (
            "video_source_codec", "video_target_codec", "video_transcode_skipped",
            "video_skip_reason", "audio_tracks_transcoded", "audio_tracks_preserved",
            "encoder_type", "phases_completed", "phases_total", "total_changes", "hash_before",
            "hash_after", "error",
        ):  # fmt: skip
            out[name] = r.get(name)
        out["source"] = r.get("source") or "hooks"
        action_keys = ("type", "track_type", "track_index", "before", "after", "success")
        action_keys += ("duration_ms", "rule", "message", "phase")
        out["actions"] = [{k: a.get(k) for k in action_keys} for a in r.get("actions") or []]
        phase_keys = ("name", "wall_time_seconds", "bytes_read", "bytes_written")
        phase_keys += ("encoding_fps", "encoding_bitrate")
        out["phases"] = [{k: p.get(k) for k in phase_keys} for p in r.get("phases") or []]
        return out


def day_start(day: date) -> datetime:
    """The first moment of a UTC day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The last microsecond of a UTC day."""
    return day_start(day) + timedelta(days=1, microseconds=-1)


# ------------------------------------------------------------------------- shared test helpers


def vpo_stats_script() -> str:
    """The checkout's own `vpo-stats`: the one beside this Python, never one found on PATH."""
    import sys

    beside = Path(sys.executable).parent / "vpo-stats"
    if not beside.exists():
        raise AssertionError(f"{beside} is missing: run the tests with scripts/test.sh")
    return str(beside)


def invoke(runner: Any, db: Path, *args: str, **kwargs: Any) -> Any:
    """Run `vpo-stats --db DB ARGS...` in process (the standalone group) and return the result."""
    from vpo_stats_plugin.cli import standalone_group

    return runner.invoke(
        standalone_group(),
        ["--db", str(db), *args],
        prog_name="vpo-stats",
        catch_exceptions=False,
        **kwargs,
    )


def json_of(result: Any) -> Any:
    """The JSON a command printed, after checking it exited 0."""
    import json

    assert result.exit_code == 0, (result.exit_code, result.output, result.stderr)
    return json.loads(result.stdout)


def import_runs(db: Path, runs: list[dict[str, Any]]) -> dict[str, int]:
    """Put ``runs`` into the database at ``db`` the way `vpo-stats import` does."""
    from vpo_stats_plugin.store import open_store

    with open_store(db) as store:
        return store.import_runs(runs)


_RECORDED: dict[str, Path] = {}


def recorded_history(base: Path) -> Path:
    """A database recorded live through the reference host (a subprocess with this plugin
    loaded from its entry points): real media made with ffmpeg, two policies, one failure.
    Made once per test process under ``base``; callers copy it."""
    import os
    import shutil
    import subprocess
    import sys

    if "db" in _RECORDED:
        return _RECORDED["db"]
    from media import make_media, make_too_wide

    media, out, db = base / "media", base / "out", base / "recorded.db"
    media.mkdir(parents=True)
    english = [
        make_media(
            media / "multi lingual.mkv", audio=("eng", "fra", "deu"), subtitles=("eng", "spa")
        ),
        make_media(media / "phone.mp4", video="h264", audio=(None,), subtitles=("eng",)),
        make_too_wide(media / "wide.mkv"),
    ]
    anime = [make_media(media / "アニメ.mkv", audio=("jpn", "eng"), subtitles=("eng", "jpn"))]
    env = {**os.environ, "VPO_STATS_DATABASE": str(db), "HOME": str(base)}
    host = [sys.executable, "-m", "vpo_stats_plugin.refhost", "process"]
    runs = [
        ["--policy", "english", "--keep-audio", "eng", "--keep-subs", "eng"]
        + ["--video-codec", "mpeg4", "--output-dir", str(out), *map(str, english)],
        ["--policy", "Anime — 日本語 subs", "--keep-audio", "jpn", "--keep-subs", "eng"]
        + ["--output-dir", str(out), *map(str, anime)],
    ]
    for args in runs:
        done = subprocess.run([*host, *args], env=env, capture_output=True, text=True)
        assert done.returncode in (0, 1), done.stdout + done.stderr
    shutil.rmtree(out)
    _RECORDED["db"] = db
    return db


def copy_db(source: Path, dest: Path) -> Path:
    """A copy of a database (with whatever its WAL holds) by SQLite's own backup."""
    src, dst = sqlite3.connect(source), sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return dest


def rollup_rows(db: Path | Any) -> dict[str, list[tuple]]:
    """Every rollup table's rows (floats rounded: sums may be added in another order), of a
    SQLite file or a store's connection (either engine)."""
    conn = sqlite3.connect(db) if isinstance(db, (str, Path)) else db
    tables_sql = (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_name LIKE 'rollup%'"
        if getattr(getattr(conn, "dialect", None), "name", "sqlite") == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rollup%'"
    )
    try:
        tables = [r[0] for r in conn.execute(tables_sql)]
        return {
            t: sorted(
                tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                for row in conn.execute(f"SELECT * FROM {t}")
            )
            for t in tables
        }
    finally:
        if conn is not db:
            conn.close()
