"""Synthetic processing histories for the benchmark: realistic runs, written in bulk.

``build(path, runs)`` writes ``runs`` runs (with their actions and phases) straight into the
real schema with large ``executemany`` transactions, then rebuilds the rollups through
``Store.rebuild_rollups()``. ``export_runs(n)`` yields the same kind of runs in the export
shape, for timing ``Store.import_runs``. Deterministic for a given seed and end day.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.store.shapes import ACTION_FIELDS, PHASE_FIELDS, RUN_COLUMNS
from vpo_stats_plugin.store.writes import INSERT_ACTION, INSERT_PHASE, INSERT_RUN

GENERATOR_VERSION = 1  # bump when the generated data changes: cached databases are rebuilt
YEARS = 3
BATCH = 50_000
POLICIES = (
    ("english-only", 40),
    ("strip-foreign-audio", 25),
    ("hevc-everything", 15),
    ("anime-keep-jpn", 10),
    ("remux-to-mkv", 7),
    ("drop-attachments", 3),
)
NODES = (("tower", 60), ("nas", 30), ("laptop", 10))
SHOWS = ("Films", "Series/Columbo", "Series/Taskmaster", "Anime/Mushishi", "Docs/Planet Earth")
FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
GIB = 1024**3


def files_for(runs: int) -> int:
    """Library size for a history: each file processed about five times over the years."""
    return max(500, runs // 5)


def _weighted(pairs: tuple[tuple[str, int], ...]) -> list[str]:
    return [name for name, weight in pairs for _ in range(weight)]


class Generator:
    """Makes run rows oldest first, ending at ``end``, ``years`` of history.

    Runs are drawn from a pool of a few thousand outcome templates (policy, status, sizes,
    tracks, codecs, actions, phases); each run gets its own id, time, node, file and hashes.
    """

    POOL = 4096

    def __init__(self, runs: int, *, seed: int = 42, end: datetime | None = None) -> None:
        self.total = runs
        self.rng = random.Random(seed)
        self.end = (end or datetime.now(timezone.utc)).replace(microsecond=0)
        self.start = self.end - timedelta(days=365 * YEARS)
        self.files = files_for(runs)
        self.policies = _weighted(POLICIES)
        self.nodes = _weighted(NODES)
        self.paths = [self.path(n) for n in range(self.files)]
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        self.t0 = (self.start - epoch).total_seconds()
        self.day0 = int(self.t0 // 86400)
        last_day = int((self.end - epoch).total_seconds() // 86400) + 2
        self.days = [
            (epoch + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(self.day0, last_day)
        ]
        self.templates = [self._template() for _ in range(self.POOL)]

    def path(self, number: int) -> str:
        show = SHOWS[number % len(SHOWS)]
        return f"/media/library/{show}/title-{number:07d}.mkv"

    def stamp(self, seconds: float) -> str:
        """The stored form of a time given in seconds since the epoch."""
        day, rest = divmod(seconds, 86400)
        micros = int(rest * 1_000_000)
        sec, micro = divmod(micros, 1_000_000)
        hour, sec = divmod(sec, 3600)
        minute, sec = divmod(sec, 60)
        return f"{self.days[int(day) - self.day0]}T{hour:02d}:{minute:02d}:{sec:02d}.{micro:06d}Z"

    def _template(self, status: str | None = None) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if status is None:
            status = "failed" if roll < 0.06 else "interrupted" if roll < 0.08 else "succeeded"
        policy = rng.choice(self.policies)
        duration: float | None = round(rng.uniform(20, 3600), 3)
        before = rng.randint(GIB // 2, 8 * GIB)
        tb = {"video": 1, "audio": rng.randint(1, 4), "subtitle": rng.randint(0, 4)}
        tb["attachment"] = rng.randint(0, 2) if policy != "remux-to-mkv" else 0
        transcode = policy == "hevc-everything"
        skipped = transcode and rng.random() < 0.2
        error = None
        if status == "succeeded":
            shrink = rng.uniform(0.0, 0.5 if transcode else 0.15)
            after: int | None = before - int(before * shrink)
            ta: dict[str, int | None] = {
                "video": 1,
                "audio": 1 if policy != "anime-keep-jpn" else min(2, tb["audio"]),
                "subtitle": min(1, tb["subtitle"]),
                "attachment": 0 if policy == "drop-attachments" else tb["attachment"],
            }
        elif status == "failed":
            after, ta = before, dict(tb)
            error = rng.choice(("ffmpeg exited with status 1", "disk full", "unsupported codec"))
        else:
            after, ta, duration = None, dict.fromkeys(tb), None
            if status == "interrupted":
                error = "interrupted: the processing stopped before the file was done"
        row: dict[str, Any] = {
            "policy": policy,
            "status": status,
            "duration_seconds": duration,
            "size_before_bytes": before,
            "size_after_bytes": after,
            "video_source_codec": "h264" if transcode else rng.choice(("h264", "hevc")),
            "video_target_codec": "hevc" if transcode and not skipped else None,
            "video_transcode_skipped": int(skipped) if transcode else None,
            "video_skip_reason": "already hevc" if skipped else None,
            "audio_tracks_transcoded": rng.randint(0, 1) if transcode else 0,
            "audio_tracks_preserved": ta["audio"] or 0,
            "encoder_type": ("hardware" if rng.random() < 0.3 else "software")
            if transcode
            else None,
            "phases_completed": 2 if status == "succeeded" else 1,
            "phases_total": 2,
            "error": error,
            "source": "hooks",
        }
        for kind in ("video", "audio", "subtitle", "attachment"):
            row[f"tracks_before_{kind}"] = tb[kind]
            row[f"tracks_after_{kind}"] = ta[kind]
        actions: list[list[Any]] = []
        if status == "succeeded":
            for kind in ("audio", "subtitle"):
                for index in range(tb[kind] - (ta[kind] or 0)):
                    actions.append(
                        ["remove_track", kind, index + 1, '{"language": "fra"}', None, 1]
                        + [round(rng.uniform(1, 40), 2), f"keep only eng {kind}", None, "tracks"]
                    )
        if transcode and not skipped and status != "interrupted":
            ok = status == "succeeded"
            actions.append(
                ["transcode", "video", 0, '{"codec": "h264"}', '{"codec": "hevc"}' if ok else None]
                + [int(ok), (duration or 0) * 900, "hevc everything", None if ok else error]
                + ["transcode"]
            )
        row["total_changes"] = sum(a[5] for a in actions)
        phases = [["analyze", round(rng.uniform(0.2, 3), 3), 2 * 1024**2, 0, None, None]]
        if status in ("succeeded", "failed"):
            phases.append(
                ["transcode" if transcode else "remux", duration, before, after or 0]
                + [round(rng.uniform(20, 200), 1) if transcode else None, None]
            )
        return {
            "row": row,
            "after_known": after is not None,
            "duration": duration,
            "actions": [[i, *a] for i, a in enumerate(actions, 1)],
            "phases": [[i, *p] for i, p in enumerate(phases, 1)],
        }

    def rows(self) -> Iterator[tuple[list[Any], list[list[Any]], list[list[Any]]]]:
        """(run columns + last_activity_at, pid, process_started), action rows, phase rows."""
        rng = self.rng
        getrandbits, randrange = rng.getrandbits, rng.randrange
        step = 365 * YEARS * 86400 / max(1, self.total)
        running = self._template("running")
        columns = RUN_COLUMNS
        nodes, n_nodes = self.nodes, len(self.nodes)
        templates, paths, n_files = self.templates, self.paths, self.files
        for i in range(self.total):
            run_id = str(uuid.UUID(int=getrandbits(128), version=4))
            started = self.t0 + (i + rng.random()) * step
            t = running if i >= self.total - 2 else templates[randrange(self.POOL)]
            path = paths[randrange(n_files)]
            stamp = self.stamp(started)
            finished = None if t["duration"] is None else self.stamp(started + t["duration"])
            row = t["row"]
            values = {
                **row,
                "id": run_id,
                "job_id": f"job-{i}",
                "file_id": i % n_files,
                "path": path,
                "output_path": path if t["after_known"] else None,
                "node": nodes[randrange(n_nodes)],
                "started_at": stamp,
                "finished_at": finished,
                "hash_before": f"partial:{getrandbits(256):064x}",
                "hash_after": f"partial:{getrandbits(256):064x}" if t["after_known"] else None,
            }
            pid = 4242 if row["status"] == "running" else None
            yield (
                [values[c] for c in columns] + [finished or stamp, pid, None],
                [[run_id, *a] for a in t["actions"]],
                [[run_id, *p] for p in t["phases"]],
            )

    def export_runs(self) -> Iterator[dict[str, Any]]:
        """The same runs in the export shape (what ``import`` reads)."""
        kinds = ("video", "audio", "subtitle", "attachment")
        for columns, actions, phases in self.rows():
            row = dict(zip(RUN_COLUMNS, columns))
            run = {k: v for k, v in row.items() if not k.startswith("tracks_")}
            for when in ("before", "after"):
                run[f"tracks_{when}"] = {k: row[f"tracks_{when}_{k}"] for k in kinds}
            skipped = run["video_transcode_skipped"]
            run["video_transcode_skipped"] = None if skipped is None else bool(skipped)
            run["actions"] = [
                {**dict(zip(ACTION_FIELDS, a[2:])), "success": bool(a[7])} for a in actions
            ]
            run["phases"] = [dict(zip(PHASE_FIELDS, p[2:])) for p in phases]
            yield run


def build(path: Path, runs: int, *, seed: int = 42, progress: Any = None) -> dict[str, Any]:
    """Write a history of ``runs`` runs into a new database at ``path``; rollups rebuilt."""
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    gen = Generator(runs, seed=seed)
    store = open_store(path)
    conn = store.conn
    # a bulk load into a scratch file: a big page cache; durability comes from the final commit
    conn.execute("PRAGMA cache_size = -1048576")
    conn.execute("PRAGMA synchronous = OFF")
    done = 0
    rows = gen.rows()
    while done < runs:
        run_rows, action_rows, phase_rows = [], [], []
        for run, actions, phases in _take(rows, BATCH):
            run_rows.append(run)
            action_rows += actions
            phase_rows += phases
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_RUN, run_rows)
        conn.executemany(INSERT_ACTION, action_rows)
        conn.executemany(INSERT_PHASE, phase_rows)
        conn.execute("COMMIT")
        done += len(run_rows)
        if progress:
            progress(done, runs)
    store.rebuild_rollups()
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {
        "runs": runs,
        "files": gen.files,
        "end": gen.end.strftime(FORMAT),
        "seed": seed,
        "version": GENERATOR_VERSION,
    }


def _take(iterator: Iterator[Any], n: int) -> Iterator[Any]:
    for _ in range(n):
        try:
            yield next(iterator)
        except StopIteration:
            return
