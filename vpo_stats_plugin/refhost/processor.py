"""Process one file under a policy: probe, plan, one ffmpeg pass to Matroska, and the three hooks.

The file is rewritten into a temporary file beside the target and checked with ffprobe before it
replaces anything, so a failure leaves the original as it was. Whatever happens, the plugins get
``vpo_after_file`` exactly once per ``vpo_before_file``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from vpo_stats_plugin.refhost.media import (
    PassStats,
    Probe,
    ProcessingError,
    Stream,
    ToolFailed,
    Tools,
    probe,
    run_ffmpeg,
)
from vpo_stats_plugin.refhost.policy import VIDEO_ENCODERS, Policy

# Subtitle codecs Matroska cannot carry, and what the host converts them to.
SUBTITLE_CONVERSIONS = {"mov_text": "subrip"}
CONTAINER_RULE = "container=mkv"


@dataclass
class Job:
    """The ``job`` every hook of one file receives."""

    id: str
    path: str
    policy: str
    file_id: str
    phases_total: int | None = None
    tracks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Action:
    """The ``action`` of ``vpo_after_action``."""

    type: str
    success: bool
    track_type: str | None = None
    track_index: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    duration_ms: float | None = None
    rule: str | None = None
    message: str | None = None
    phase: str | None = None


@dataclass
class Result:
    """The ``result`` of ``vpo_after_file``."""

    success: bool
    error: str | None = None
    output_path: str | None = None
    phases_completed: int = 0
    tracks: list[dict[str, Any]] | None = None
    video_source_codec: str | None = None
    video_target_codec: str | None = None
    video_transcode_skipped: bool | None = None
    video_skip_reason: str | None = None
    audio_tracks_transcoded: int | None = None
    audio_tracks_preserved: int | None = None
    encoder_type: str | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    """What the policy asks of one probed file."""

    keep: list[Stream]
    remove: list[tuple[Stream, str]]
    transcode: list[Stream]
    convert: list[Stream]
    remux: bool
    skip_reason: str | None

    @property
    def needs_pass(self) -> bool:
        """Whether anything has to be rewritten."""
        return bool(self.remove or self.transcode or self.convert or self.remux)


@dataclass
class Outcome:
    """What the host learnt from one file, for its progress line."""

    job: Job
    result: Result
    actions: list[Action]
    size_before: int | None
    size_after: int | None
    wall_time_seconds: float
    hook_errors: list[str]


def make_plan(probed: Probe, policy: Policy) -> Plan:
    """Decide which streams stay, go, or are converted; data streams never fit in Matroska."""
    keep: list[Stream] = []
    remove: list[tuple[Stream, str]] = []
    audio = probed.of_type("audio")
    kept_audio = [s for s in audio if policy.keeps("audio", s.language)]
    if audio and not kept_audio:
        kept_audio = [next((s for s in audio if s.default), audio[0])]
    for stream in probed.streams:
        if stream.type in ("video", "attachment") or stream in kept_audio:
            keep.append(stream)
        elif stream.type == "audio":
            remove.append((stream, policy.rule("audio")))
        elif stream.type == "subtitle":
            if policy.keeps("subtitle", stream.language):
                keep.append(stream)
            else:
                remove.append((stream, policy.rule("subtitle")))
    videos = [s for s in probed.of_type("video") if not s.attached_pic]
    transcode = [s for s in videos if policy.video_codec and s.codec != policy.video_codec]
    skip_reason = None
    if policy.video_codec and not videos:
        skip_reason = "no video stream"
    elif policy.video_codec and not transcode:
        skip_reason = f"already {policy.video_codec}"
    return Plan(
        keep=keep,
        remove=remove,
        transcode=transcode,
        convert=[s for s in keep if s.codec in SUBTITLE_CONVERSIONS],
        remux=not probed.format_name.startswith("matroska"),
        skip_reason=skip_reason,
    )


def ffmpeg_args(source: Path, plan: Plan, policy: Policy, output: Path) -> list[str]:
    """The ffmpeg arguments of the single pass that carries out ``plan``."""
    args = ["-i", str(source)]
    for stream in plan.keep:
        args += ["-map", f"0:{stream.index}"]
    args += ["-c", "copy"]
    for out_index, stream in enumerate(plan.keep):
        if stream in plan.transcode and policy.video_codec:
            encoder, *options = VIDEO_ENCODERS[policy.video_codec]
            args += [f"-c:{out_index}", encoder]
            for flag, value in zip(options[::2], options[1::2], strict=True):
                args += [f"{flag}:{out_index}", value]
        elif stream in plan.convert:
            args += [f"-c:{out_index}", SUBTITLE_CONVERSIONS[stream.codec or ""]]
    return [*args, "-f", "matroska", str(output)]


def file_id_for(path: Path) -> str:
    """A stable stand-in for a library id: the refhost has no library, so it hashes the path."""
    return hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class _Work:
    """The state of one file's processing: hook calls, actions, phases, temporary files."""

    def __init__(self, pm: pluggy.PluginManager, job: Job) -> None:
        self.pm = pm
        self.job = job
        self.actions: list[Action] = []
        self.phases: list[dict[str, Any]] = []
        self.completed = 0
        self.fields: dict[str, Any] = {}
        self.temps: list[Path] = []
        self.hook_errors: list[str] = []
        self.before_called = False

    def before(self) -> None:
        self.before_called = True
        self.pm.hook.vpo_before_file(job=self.job)

    def action(self, action: Action) -> None:
        self.actions.append(action)
        self.pm.hook.vpo_after_action(job=self.job, action=action)

    def phase(self, name: str, started: float, ok: bool, **measures: Any) -> None:
        entry = {
            "name": name,
            "wall_time_seconds": round(time.monotonic() - started, 4),
            "bytes_read": None,
            "bytes_written": None,
            "encoding_fps": None,
            "encoding_bitrate": None,
        }
        entry.update(measures)
        self.phases.append(entry)
        self.completed += ok

    def temp_for(self, target: Path) -> Path:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
        os.close(fd)
        self.temps.append(Path(name))
        return Path(name)

    def result(self, success: bool, **values: Any) -> Result:
        base = {"phases_completed": self.completed, "phases": self.phases, **self.fields}
        return Result(success=success, **{**base, **values})

    def failure(self, error: str) -> Result:
        return self.result(
            False, error=error, output_path=self.job.path, tracks=self.job.tracks or None
        )

    def finish(self, result: Result) -> None:
        for temp in self.temps:
            temp.unlink(missing_ok=True)
        if not self.before_called:
            self._guarded("vpo_before_file", job=self.job)
        self._guarded("vpo_after_file", job=self.job, result=result)

    def _guarded(self, hook: str, **kwargs: Any) -> None:
        try:
            getattr(self.pm.hook, hook)(**kwargs)
        except Exception as exc:  # a plugin's failure must not stop the host
            self.hook_errors.append(f"{hook}: {exc!r}")


def process_file(
    pm: pluggy.PluginManager,
    path: str | Path,
    policy: Policy,
    *,
    output_dir: str | Path | None = None,
    tools: Tools | None = None,
) -> Outcome:
    """Process one file and call the hooks; never raises for a bad file or a failing plugin."""
    source = Path(os.path.abspath(path))
    job = Job(
        id=str(uuid.uuid4()), path=str(source), policy=policy.name, file_id=file_id_for(source)
    )
    work = _Work(pm, job)
    started = time.monotonic()
    size_before = _size(source)
    result: Result | None = None
    try:
        result = _process(work, source, policy, output_dir, tools or Tools.find())
    except ToolFailed as exc:
        result = work.failure(exc.tail)
    except ProcessingError as exc:
        result = work.failure(str(exc))
    except Exception as exc:  # the host carries on with the next file whatever went wrong
        result = work.failure(repr(exc))
    finally:
        if result is None:  # KeyboardInterrupt and the like: record, then let it through
            result = work.failure("processing was interrupted")
        work.finish(result)
    output = Path(result.output_path) if result.output_path else source
    return Outcome(
        job=job,
        result=result,
        actions=work.actions,
        size_before=size_before,
        size_after=_size(output) if result.success else size_before,
        wall_time_seconds=time.monotonic() - started,
        hook_errors=work.hook_errors,
    )


def _process(
    work: _Work, source: Path, policy: Policy, output_dir: str | Path | None, tools: Tools
) -> Result:
    if not source.is_file():
        raise ProcessingError(f"{source} does not exist or is not a file")
    started = time.monotonic()
    probed = probe(source, tools.ffprobe)
    work.phase("analyze", started, ok=True)
    plan = make_plan(probed, policy)
    videos = [s for s in probed.of_type("video") if not s.attached_pic]
    work.job.tracks = probed.tracks()
    work.job.phases_total = 2 if plan.needs_pass else 1
    work.fields.update(
        video_source_codec=videos[0].codec if videos else None,
        video_target_codec=policy.video_codec,
        video_transcode_skipped=bool(plan.skip_reason) if policy.video_codec else None,
        video_skip_reason=plan.skip_reason,
    )
    work.before()

    target = (Path(output_dir).absolute() if output_dir else source.parent) / f"{source.stem}.mkv"
    in_place = output_dir is None or target == source
    if in_place and target != source and target.exists():
        raise ProcessingError(f"{target} already exists; process into another --output-dir")
    kept_audio = sum(1 for s in plan.keep if s.type == "audio")
    if not plan.needs_pass:
        if target != source:
            temp = work.temp_for(target)
            shutil.copy2(source, temp)  # copies the mode too
            os.replace(temp, target)
        return work.result(
            True,
            output_path=str(target),
            tracks=work.job.tracks,
            audio_tracks_transcoded=0,
            audio_tracks_preserved=kept_audio,
        )

    phase = "transcode" if plan.transcode else "apply"
    temp = work.temp_for(target)
    started = time.monotonic()
    try:
        stats = run_ffmpeg(tools.ffmpeg, ffmpeg_args(source, plan, policy, temp))
        written = probe(temp, tools.ffprobe)
        if len(written.streams) != len(plan.keep):
            raise ProcessingError(
                f"ffmpeg wrote {len(written.streams)} streams, {len(plan.keep)} were expected"
            )
    except ProcessingError as exc:
        work.phase(phase, started, ok=False, bytes_read=_size(source), bytes_written=_size(temp))
        message = (exc.tail if isinstance(exc, ToolFailed) else str(exc))[-1000:]
        elapsed = time.monotonic() - started
        _report_actions(work, plan, probed, policy, phase, elapsed, success=False, message=message)
        raise
    work.phase(phase, started, ok=True, **_measures(stats, _size(source), _size(temp)))
    _report_actions(
        work, plan, probed, policy, phase, stats.wall_time_seconds, success=True, message=None
    )
    shutil.copymode(source, temp)  # mkstemp made it owner-only
    os.replace(temp, target)
    if in_place and target != source:
        source.unlink()
    return work.result(
        True,
        output_path=str(target),
        tracks=written.tracks(),
        audio_tracks_transcoded=0,
        audio_tracks_preserved=kept_audio,
        encoder_type="software" if plan.transcode else None,
    )


def _measures(stats: PassStats, read: int | None, written: int | None) -> dict[str, Any]:
    return {
        "bytes_read": read,
        "bytes_written": written,
        "encoding_fps": stats.encoding_fps,
        "encoding_bitrate": stats.encoding_bitrate,
    }


def _report_actions(
    work: _Work,
    plan: Plan,
    probed: Probe,
    policy: Policy,
    phase: str,
    elapsed: float,
    *,
    success: bool,
    message: str | None,
) -> None:
    """One action per change of the pass; the pass's time goes to its main action."""

    def on(stream: Stream, kind: str, rule: str, after: dict[str, Any] | None = None) -> Action:
        before = stream.describe()
        return Action(kind, success, stream.type, stream.index, before, after, rule=rule)

    actions = [on(stream, "remove_track", rule) for stream, rule in plan.remove]
    for stream in plan.convert:
        after = {"codec": SUBTITLE_CONVERSIONS[stream.codec or ""]}
        actions.append(on(stream, "transcode", CONTAINER_RULE, after))
    for stream in plan.transcode:
        after = {"codec": policy.video_codec}
        actions.append(on(stream, "transcode", policy.rule("video"), after))
    if plan.remux:
        before, after = {"container": probed.format_name}, {"container": "matroska"}
        actions.append(Action("remux", success, before=before, after=after, rule=CONTAINER_RULE))
    carrier = next((a for a in actions if a.type == "transcode" and a.track_type == "video"), None)
    carrier = carrier or next((a for a in actions if a.type == "remux"), None)
    total_ms = round(elapsed * 1000, 1)
    for action in actions:
        action.phase, action.message = phase, message
        share = 0.0 if carrier else round(total_ms / len(actions), 1)
        action.duration_ms = total_ms if action is carrier else share
        work.action(action)
