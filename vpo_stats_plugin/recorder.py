"""Turns before-file / after-action / after-file into one run: its fields, sizes and hashes.

Each hook call becomes a write, handed to the recorder's `WriteQueue` (writequeue.py), which
gets it into the store in order even while the database is locked. See docs/reliability.md.
"""

from __future__ import annotations

import os
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import probe
from .config import Settings
from .dburl import as_database
from .filters import iso, utcnow
from .liveness import this_process
from .models import Action, Job, Result, job_id, parse
from .store.connection import storable
from .store.names import stored_names
from .writequeue import ErrorTally, WriteQueue

_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()
ENDED_KEPT = 1000  # runs kept for a retry after the host's result could not be read


@dataclass
class _Live:
    """What the recorder remembers of a run between its hooks."""

    run_id: str
    path: str
    started_at: str
    started_clock: float
    successful_actions: int = 0
    actions: int = 0  # recorded so far: the sequence number of the last one
    ended: bool = False  # its result could not be read: interrupted until a usable one comes


class Recorder:
    """One per process: records runs for the settings it was made with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        database = as_database(settings.database)  # a URL stays a URL, never a file name
        self.database = database.absolute() if isinstance(database, Path) else database
        self._live: dict[str, _Live] = {}
        self._writes = WriteQueue(
            self.database,
            node=settings.node,
            stale_after=settings.stale_after,
            runs_in_flight=self._runs_in_flight,
        )
        self._pid, self._process_started = this_process()
        _recorders.add(self)

    def _forked(self) -> None:
        """In a forked child: the parent's queue, runs and connections stay the parent's."""
        self._live.clear()
        self._writes.forked()
        self._pid, self._process_started = this_process()

    @property
    def errors(self) -> ErrorTally:
        """Recording failures by cause, for this process."""
        return self._writes.errors

    @property
    def pending(self) -> int:
        """Writes waiting for the database."""
        return self._writes.pending

    def close(self) -> None:
        """Last chance at exit: wait for a lock to clear, then count what could not be saved."""
        self._writes.close()

    # --- the three hooks -------------------------------------------------------------------

    def before_file(self, job_payload: Any) -> None:
        job, dropped = parse(Job, job_payload)
        self._note_dropped("job", dropped)
        earlier = self._live.get(job.id)
        if earlier is not None and earlier.path == job.path:
            # the host tries this job again: the same run goes on (running again if it ended)
            if earlier.ended:
                self._reopen(earlier)
            return
        if earlier is not None and not earlier.ended:  # the same id for another file
            self._interrupt(earlier, "vpo_before_file came again, for another path")
        now = utcnow()
        live = _Live(str(uuid.uuid4()), job.path, iso(now), time.monotonic())
        self._live[job.id] = live
        size, regular = probe.file_stat(job.path)
        tracks = [t.model_dump() for t in job.tracks] if job.tracks is not None else None
        if tracks is None:
            tracks = self._probe_tracks(job.path, regular)
        run = {
            "id": live.run_id,
            "job_id": job.id,
            "file_id": job.file_id,
            "path": job.path,
            "policy": job.policy,
            "node": job.node or self.settings.node,
            "status": "running",
            "started_at": live.started_at,
            "size_before_bytes": size,
            "tracks_before": probe.count_tracks(tracks),
            "phases_total": job.phases_total,
            "hash_before": self._hash(job.path, regular),
            "source": "hooks",
            "pid": self._pid,
            "process_started": self._process_started,
        }
        run = storable(stored_names(run))
        self._writes.submit(f"begin {live.run_id}", "begin_run", run)
        self._writes.ensure_keeper()  # for the heartbeat

    def after_action(self, job_payload: Any, action_payload: Any) -> None:
        _, live = self._live_for(job_payload)
        action, dropped = parse(Action, action_payload)
        self._note_dropped("action", dropped)
        if action.success:
            live.successful_actions += 1
        if not self.settings.record_actions:
            return
        data = storable(action.model_dump())
        when = iso(utcnow())
        live.actions += 1  # its identity: a write made twice (replayed) adds it once
        self._writes.submit(
            f"action {live.run_id}", "record_action", live.run_id, data, when, live.actions
        )

    def after_file(self, job_payload: Any, result_payload: Any) -> None:
        key, live = self._live_for(job_payload)
        try:
            result, dropped = parse(Result, result_payload)
        except Exception as err:  # how the file ended is unknown, unless the host tries again
            self._interrupt(live, f"the host's result could not be read: {err}")
            self._keep_for_retry(live)
            raise
        if self._live.get(key) is live:
            del self._live[key]
        self._note_dropped("result", dropped)
        output = result.output_path or live.path
        size_after, regular = probe.file_stat(output)
        if size_after is None and not result.success:
            output = live.path
            size_after, regular = probe.file_stat(output)
        tracks = [t.model_dump() for t in result.tracks] if result.tracks is not None else None
        if tracks is None:
            tracks = self._probe_tracks(output, regular)
        counts = probe.count_tracks(tracks)
        fields: dict[str, Any] = {
            "status": "succeeded" if result.success else "failed",
            "finished_at": iso(utcnow()),
            "last_activity_at": iso(utcnow()),
            "duration_seconds": round(time.monotonic() - live.started_clock, 6),
            "output_path": output,
            "size_after_bytes": size_after,
            **{f"tracks_after_{kind}": n for kind, n in counts.items()},
            "hash_after": self._hash(output, regular),
            "error": result.error
            or (None if result.success else "failed (no error message given)"),
            "total_changes": result.total_changes
            if result.total_changes is not None
            else live.successful_actions,
        }
        for name in (
            "phases_completed",
            "video_source_codec",
            "video_target_codec",
            "video_transcode_skipped",
            "video_skip_reason",
            "audio_tracks_transcoded",
            "audio_tracks_preserved",
            "encoder_type",
        ):
            value = getattr(result, name)
            fields[name] = int(value) if isinstance(value, bool) else value
        phases = (
            [p.model_dump() for p in result.phases or []]
            if self.settings.record_performance
            else []
        )
        fields, phases = storable(stored_names(fields)), storable(phases)
        self._writes.submit(f"finish {live.run_id}", "finish_run", live.run_id, fields, phases)

    # --- helpers ---------------------------------------------------------------------------

    def _interrupt(self, live: _Live, why: str) -> None:
        """End a run whose end the host did not report usably: interrupted, with why."""
        when = iso(utcnow())
        fields = storable({"status": "interrupted", "last_activity_at": when, "error": why})
        self._writes.submit(f"interrupt {live.run_id}", "finish_run", live.run_id, fields, [])

    def _reopen(self, live: _Live) -> None:
        """A run ended as interrupted whose job the host tries again: running again."""
        live.ended = False
        fields = {"status": "running", "finished_at": None, "error": None}
        fields["last_activity_at"] = iso(utcnow())
        # finish_run takes an ended run out of the rollups; a running one is not counted there
        self._writes.submit(f"reopen {live.run_id}", "finish_run", live.run_id, fields, [])

    def _keep_for_retry(self, live: _Live) -> None:
        """Remember an interrupted run, so that the host's retry of its job finishes it."""
        live.ended = True
        ended = [k for k, other in list(self._live.items()) if other.ended]
        for old in ended[:-ENDED_KEPT]:
            self._live.pop(old, None)

    def _live_for(self, job_payload: Any) -> tuple[str, _Live]:
        """This job's id and its run (started now if before-file never came)."""
        key = job_id(job_payload)
        live = self._live.get(key) if key is not None else None
        if live is None:  # before-file never reached us: start the run now, from what we have
            key = parse(Job, job_payload)[0].id  # raises PayloadError for a bad job
            self.errors.add("missing-before-file", f"no vpo_before_file for job {key!r}")
            self.before_file(job_payload)
            live = self._live[key]
        return key, live

    def _hash(self, path: str, regular: bool) -> str | None:
        return probe.file_hash(path, self.settings.hash) if regular else None

    def _probe_tracks(self, path: str, regular: bool) -> list[dict[str, Any]] | None:
        return probe.probe_tracks(path) if self.settings.probe_tracks and regular else None

    def _note_dropped(self, what: str, dropped: list[str]) -> None:
        if dropped:
            self.errors.add(
                f"bad-{what}-fields",
                f"ignored bad {what} fields from the host: {', '.join(dropped)}",
            )

    def _runs_in_flight(self) -> list[str]:
        return [live.run_id for live in list(self._live.values()) if not live.ended]


def _after_fork_in_child() -> None:
    for recorder in list(_recorders):
        recorder._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
