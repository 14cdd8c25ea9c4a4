"""The reference host: policy, processor and hook calls, CLI and web mounts, end to end."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest
from click.testing import CliRunner
from media import ffprobe_streams, languages, make_media, make_too_wide, track_counts
from web_history import get_when_up

from vpo_stats_plugin.refhost.cli import make_root
from vpo_stats_plugin.refhost.host import list_plugins, make_plugin_manager
from vpo_stats_plugin.refhost.media import Probe, Stream
from vpo_stats_plugin.refhost.policy import (
    Policy,
    PolicyError,
    load_policy,
    parse_languages,
)
from vpo_stats_plugin.refhost.processor import make_plan, process_file

impl = pluggy.HookimplMarker("vpo")
ENGLISH = Policy("english", keep_audio=("eng",), keep_subtitles=("eng",))
HOST = [sys.executable, "-m", "vpo_stats_plugin.refhost"]


class CallLog:
    """A test plugin that keeps every hook call it gets (no properties: pluggy reads them all)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, object]] = []

    @impl
    def vpo_before_file(self, job: object) -> None:
        self.calls.append(("before", job, list(job.tracks)))  # type: ignore[attr-defined]

    @impl
    def vpo_after_action(self, job: object, action: object) -> None:
        self.calls.append(("action", job, action))

    @impl
    def vpo_after_file(self, job: object, result: object) -> None:
        self.calls.append(("after", job, result))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def actions(self) -> list:
        return [payload for name, _, payload in self.calls if name == "action"]

    def result(self) -> object:
        (result,) = [payload for name, _, payload in self.calls if name == "after"]
        return result


@pytest.fixture
def log() -> CallLog:
    return CallLog()


@pytest.fixture
def pm(log: CallLog) -> pluggy.PluginManager:
    return make_plugin_manager(entry_points=False, plugins=[log])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory of its own (tmp_path also holds the test's HOME)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Policy and plan: pure decisions, no ffmpeg.


def streams(*specs: tuple[str, str | None]) -> Probe:
    made = [Stream(i, kind, "aac", lang) for i, (kind, lang) in enumerate(specs)]
    return Probe(streams=made, format_name="matroska,webm", duration=1.0)


def test_plan_keeps_listed_and_untagged_languages() -> None:
    probed = streams(("video", None), ("audio", "eng"), ("audio", "fra"), ("audio", None))
    plan = make_plan(probed, ENGLISH)
    assert [s.index for s in plan.keep] == [0, 1, 3]
    assert [(s.index, rule) for s, rule in plan.remove] == [(2, "keep_audio=eng")]
    strict = Policy("strict", keep_audio=("eng",), keep_untagged=False)
    assert [s.index for s, _ in make_plan(probed, strict).remove] == [2, 3]


def test_plan_never_leaves_a_file_without_audio() -> None:
    probed = streams(("audio", "fra"), ("audio", "deu"), ("subtitle", "fra"))
    plan = make_plan(probed, ENGLISH)
    assert [s.index for s in plan.keep] == [0]
    assert [s.index for s, _ in plan.remove] == [1, 2]


def test_plan_keep_lists_all_and_none() -> None:
    probed = streams(("audio", "fra"), ("subtitle", "fra"), ("subtitle", "eng"))
    assert make_plan(probed, Policy("keep-all")).remove == []
    plan = make_plan(probed, Policy("no-subs", keep_subtitles=parse_languages("none")))
    assert [s.index for s, _ in plan.remove] == [1, 2]
    assert parse_languages("all") is None
    assert parse_languages(" ENG, fra ") == ("eng", "fra")
    assert not make_plan(probed, Policy("keep-all")).needs_pass


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "english.toml"
    path.write_text('keep_audio = ["eng", "JPN"]\nkeep_subtitles = []\nvideo_codec = "h264"\n')
    policy = load_policy(path)
    assert policy == Policy("english", ("eng", "jpn"), (), True, "h264")
    path.write_text('[policy]\nname = "anime"\nkeep_untagged = false\n')
    assert load_policy(path) == Policy("anime", keep_untagged=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('keep_audo = ["eng"]', "unknown key 'keep_audo'"),
        ('video_codec = "divx"', "video_codec 'divx' is not supported"),
        ('keep_audio = "eng"', "keep_audio must be a list"),
        ("keep_audio = [", "cannot be read"),
    ],
)
def test_policy_file_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(path)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "missing.toml")


# The processor and its hook calls, with a test plugin registered directly.


def test_success_calls_the_hooks_in_order_with_full_payloads(
    work: Path, pm: pluggy.PluginManager, log: CallLog
) -> None:
    source = make_media(
        work / "in.mkv",
        audio=("eng", "fra", None),
        subtitles=("eng", "fra", "deu"),
        attachments=1,
    )
    before_digest = digest(source)
    out = work / "out"
    out.mkdir()
    outcome = process_file(pm, source, ENGLISH, output_dir=out)

    assert log.names() == ["before"] + ["action"] * 3 + ["after"]
    jobs = {id(job) for _, job, _ in log.calls}
    assert len(jobs) == 1
    job = log.calls[0][1]
    assert job.path == str(source) and job.policy == "english" and job.phases_total == 2
    assert len(job.id) == 36 and job.file_id
    assert log.calls[0][2] == [
        {"type": "video", "codec": "mpeg4", "language": None},
        {"type": "audio", "codec": "aac", "language": "eng"},
        {"type": "audio", "codec": "aac", "language": "fra"},
        {"type": "audio", "codec": "aac", "language": None},
        {"type": "subtitle", "codec": "subrip", "language": "eng"},
        {"type": "subtitle", "codec": "subrip", "language": "fra"},
        {"type": "subtitle", "codec": "subrip", "language": "deu"},
        {"type": "attachment", "codec": None, "language": None},
    ]
    removed = [(a.type, a.track_type, a.track_index, a.before["language"]) for a in log.actions()]
    assert removed == [
        ("remove_track", "audio", 2, "fra"),
        ("remove_track", "subtitle", 5, "fra"),
        ("remove_track", "subtitle", 6, "deu"),
    ]
    assert all(a.success and a.phase == "apply" and a.rule for a in log.actions())
    assert sum(a.duration_ms for a in log.actions()) > 0

    result = log.result()
    output = out / "in.mkv"
    assert result.success and result.error is None and result.output_path == str(output)
    assert digest(source) == before_digest
    assert track_counts(output) == {"video": 1, "audio": 2, "subtitle": 1, "attachment": 1}
    assert languages(output, "audio") == ["eng", None]
    assert [t["type"] for t in result.tracks] == [
        "video",
        "audio",
        "audio",
        "subtitle",
        "attachment",
    ]
    assert result.phases_completed == 2
    assert [p["name"] for p in result.phases] == ["analyze", "apply"]
    apply = result.phases[1]
    assert apply["bytes_read"] == source.stat().st_size
    assert apply["bytes_written"] == output.stat().st_size
    assert apply["encoding_fps"] > 0 and apply["encoding_bitrate"] > 0
    assert result.video_transcode_skipped is None and result.audio_tracks_preserved == 2
    assert outcome.size_before == source.stat().st_size
    assert outcome.size_after == output.stat().st_size < outcome.size_before
    assert oct(output.stat().st_mode & 0o777) == oct(source.stat().st_mode & 0o777)


def test_mp4_is_remuxed_in_place(work: Path, pm: pluggy.PluginManager, log: CallLog) -> None:
    source = make_media(work / "clip.mp4", video="h264", audio=(None,), subtitles=("eng",))
    process_file(pm, source, Policy("h264", video_codec="h264"))
    output = work / "clip.mkv"
    assert not source.exists() and sorted(os.listdir(work)) == ["clip.mkv"]
    assert [(a.type, a.track_type) for a in log.actions()] == [
        ("transcode", "subtitle"),
        ("remux", None),
    ]
    assert log.actions()[1].before["container"].startswith("mov,mp4")
    result = log.result()
    assert result.success and result.output_path == str(output)
    assert result.video_transcode_skipped is True and result.video_skip_reason == "already h264"
    assert [s["codec_name"] for s in ffprobe_streams(output)] == ["h264", "aac", "subrip"]


def test_video_transcode(work: Path, pm: pluggy.PluginManager, log: CallLog) -> None:
    source = make_media(work / "a.mkv", video="mpeg4", audio=("eng", "fra"))
    process_file(pm, source, Policy("h264", ("eng",), video_codec="h264"))
    assert [(a.type, a.track_type, a.phase) for a in log.actions()] == [
        ("remove_track", "audio", "transcode"),
        ("transcode", "video", "transcode"),
    ]
    transcode = log.actions()[1]
    assert transcode.before["codec"] == "mpeg4" and transcode.after == {"codec": "h264"}
    assert transcode.duration_ms > 0 and log.actions()[0].duration_ms == 0
    result = log.result()
    assert (result.video_source_codec, result.video_target_codec) == ("mpeg4", "h264")
    assert result.video_transcode_skipped is False and result.encoder_type == "software"
    assert [s["codec_name"] for s in ffprobe_streams(source)] == ["h264", "aac"]
    assert [p["name"] for p in result.phases] == ["analyze", "transcode"]


def test_already_clean_file_has_no_actions(
    work: Path, pm: pluggy.PluginManager, log: CallLog
) -> None:
    source = make_media(work / "clean.mkv", audio=("eng",), subtitles=("eng",))
    before = digest(source)
    process_file(pm, source, ENGLISH)
    assert log.names() == ["before", "after"]
    assert log.result().success and log.result().phases_completed == 1
    assert log.calls[0][1].phases_total == 1
    assert digest(source) == before


def test_ffmpeg_failure_leaves_the_original(
    work: Path, pm: pluggy.PluginManager, log: CallLog
) -> None:
    source = make_too_wide(work / "wide.mkv")
    before = digest(source)
    outcome = process_file(pm, source, Policy("mpeg4", video_codec="mpeg4"))
    assert log.names() == ["before", "action", "after"]
    (action,) = log.actions()
    assert action.type == "transcode" and action.success is False
    assert "too large" in action.message
    result = log.result()
    assert result.success is False and "dimensions too large for MPEG-4" in result.error
    assert result.output_path == str(source) and result.phases_completed == 1
    assert [p["name"] for p in result.phases] == ["analyze", "transcode"]
    assert digest(source) == before and os.listdir(work) == ["wide.mkv"]
    assert outcome.size_after == outcome.size_before == source.stat().st_size


def test_unreadable_media_is_reported_not_raised(
    work: Path, pm: pluggy.PluginManager, log: CallLog
) -> None:
    source = work / "notes.mkv"
    source.write_text("not a video\n")
    process_file(pm, source, ENGLISH)
    assert log.names() == ["before", "after"]
    assert log.result().success is False and "Invalid data" in log.result().error
    assert source.read_text() == "not a video\n"


def test_python_exception_still_ends_the_run(
    work: Path, pm: pluggy.PluginManager, log: CallLog
) -> None:
    source = make_media(work / "a.mkv", audio=("eng", "fra"))
    not_a_dir = work / "out"
    not_a_dir.write_text("a file where a directory should be")
    outcome = process_file(pm, source, ENGLISH, output_dir=not_a_dir)
    assert log.names() == ["before", "after"]
    assert log.result().success is False
    assert log.result().error.startswith("NotADirectoryError(")
    assert outcome.result is log.result() and sorted(os.listdir(work)) == ["a.mkv", "out"]


def test_a_raising_plugin_does_not_stop_the_host(
    work: Path, pm: pluggy.PluginManager, log: CallLog
) -> None:
    class Broken:
        @impl
        def vpo_after_action(self, job: object, action: object) -> None:
            raise RuntimeError("plugin bug")

    pm.register(Broken())
    first = make_media(work / "a.mkv", audio=("eng", "fra"))
    second = make_media(work / "b.mkv", audio=("eng",))
    bad = process_file(pm, first, ENGLISH)
    good = process_file(pm, second, ENGLISH)
    assert bad.result.success is False and "plugin bug" in bad.result.error
    assert track_counts(first)["audio"] == 2  # not replaced
    assert good.result.success is True
    assert log.names().count("after") == 2 and log.names().count("before") == 2


# The plugin manager and the CLI.


def test_plugins_listing_finds_the_stats_plugin_by_entry_point() -> None:
    listing = list_plugins(make_plugin_manager())
    (stats,) = [p for p in listing if p["name"] == "stats"]
    assert stats["distribution"] == "vpo-stats-plugin"
    assert stats["module"] == "vpo_stats_plugin.hooks"
    assert stats["hooks"] == ["vpo_after_action", "vpo_after_file", "vpo_before_file"]


def test_plugins_command(runner: CliRunner) -> None:
    result = runner.invoke(make_root(), ["plugins", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert any(p["name"] == "stats" for p in json.loads(result.output))
    table = runner.invoke(make_root(), ["plugins"])
    assert "stats  (vpo-stats-plugin " in table.output


@pytest.mark.parametrize("command", [[], ["process"], ["plugins"], ["serve"], ["stats"]])
def test_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(make_root(), [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: vpo" in result.output


def test_root_mounts_the_stats_group() -> None:
    done = subprocess.run([*HOST, "--help"], capture_output=True, text=True, check=True)
    assert "stats" in done.stdout and done.stderr == ""
    assert "stats" in make_root().commands


def test_process_command_reports_each_file_and_counts(tmp_path: Path, runner: CliRunner) -> None:
    good = make_media(tmp_path / "good.mkv", audio=("eng", "fra"))
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"\0" * 100)
    args = ["process", "--policy", "english", "--keep-audio", "eng"]
    args += ["--output-dir", str(tmp_path / "out"), str(good), str(broken), str(tmp_path / "nope")]
    result = runner.invoke(make_root(), args)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"[1/3] {good} ... ok: 1 track removed")
    assert lines[1].startswith(f"[2/3] {broken} ... FAILED: ")
    assert lines[2] == f"[3/3] {tmp_path / 'nope'} ... FAILED: no such file; check the path"
    assert lines[3].startswith("3 files with policy 'english': 1 succeeded, 2 failed;")


def test_process_policy_errors(tmp_path: Path, runner: CliRunner) -> None:
    media = str(tmp_path / "x.mkv")
    missing = runner.invoke(make_root(), ["process", "--policy-file", "/no/such.toml", media])
    assert missing.exit_code == 1 and "/no/such.toml does not exist" in missing.output
    empty = runner.invoke(make_root(), ["process", "--policy", " ", media])
    assert empty.exit_code == 1 and "policy name must not be empty" in empty.output


def test_ffmpeg_missing_is_explained(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run(
        [*HOST, "process", str(tmp_path / "x.mkv")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "ffmpeg not found on PATH: install FFmpeg" in done.stderr


def broken_distribution(tmp_path: Path) -> dict[str, str]:
    """An installed-looking distribution whose vpo.cli and vpo.web entry points cannot load."""
    info = tmp_path / "site" / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vpo.cli]\nbroken = no_such_module:cli\n\n[vpo.web]\nbroken = no_such_module:app\n"
    )
    return {**os.environ, "PYTHONPATH": str(tmp_path / "site")}


def test_a_broken_cli_entry_point_is_reported_not_fatal(tmp_path: Path) -> None:
    env = broken_distribution(tmp_path)
    done = subprocess.run([*HOST, "--help"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "stats" in done.stdout
    assert "skipped command 'broken' from no_such_module:cli" in done.stderr


# The web app, mounted and served.


async def test_host_app_mounts_the_stats_app(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    from vpo_stats_plugin.refhost.web import make_host_app

    client = await aiohttp_client(make_host_app())
    index = await client.get("/")
    assert index.status == 200
    text = await index.text()
    assert '<a href="/stats/">stats</a>' in text and "vpo-stats-plugin" in text
    summary = await client.get("/stats/api/summary")
    assert summary.status == 200 and (await summary.json())["runs"] == 0


def test_serve_runs_the_host_app_with_a_broken_web_plugin(tmp_path: Path) -> None:
    port = free_port()
    env = broken_distribution(tmp_path)
    proc = subprocess.Popen(
        [*HOST, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = get_when_up(f"http://127.0.0.1:{port}/stats/api/summary")
        assert json.loads(body)["runs"] == 0
        assert "/broken/" not in get_when_up(f"http://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "skipped web app 'broken'" in err


# End to end: the real plugin through its entry point, read back with vpo-stats.


def test_in_process_host_records_through_the_real_plugin(tmp_path: Path, db_path: Path) -> None:
    source = make_media(tmp_path / "m.mkv", audio=("eng", "jpn"), subtitles=("jpn",))
    size_before = source.stat().st_size
    outcome = process_file(make_plugin_manager(), source, ENGLISH)
    assert outcome.result.success
    run = _vpo_stats(db_path, "detail", _only_run_id(db_path))
    assert run["job_id"] == outcome.job.id and run["status"] == "succeeded"
    assert run["size_before_bytes"] == size_before
    assert run["size_after_bytes"] == source.stat().st_size
    assert run["tracks_before"] == {"video": 1, "audio": 2, "subtitle": 1, "attachment": 0}
    assert run["tracks_after"] == track_counts(source)
    assert [a["type"] for a in run["actions"]] == ["remove_track", "remove_track"]


def _vpo_stats(db: Path, *args: str) -> dict:
    cmd = [sys.executable, "-c", "from vpo_stats_plugin.cli import main; main()", "--db", str(db)]
    done = subprocess.run([*cmd, *args, "--format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _only_run_id(db: Path) -> str:
    (run,) = _vpo_stats(db, "recent")["runs"]
    return run["id"]


def test_host_subprocess_end_to_end(tmp_path: Path) -> None:
    media, out, db = tmp_path / "media", tmp_path / "out", tmp_path / "e2e.db"
    media.mkdir()
    files = [
        make_media(media / "multi.mkv", audio=("eng", "fra", "deu"), subtitles=("eng", "spa")),
        make_media(media / "phone.mp4", video="h264", audio=(None,), subtitles=("eng",)),
        make_too_wide(media / "wide.mkv"),
    ]
    env = {**os.environ, "VPO_STATS_DATABASE": str(db), "HOME": str(tmp_path)}
    cmd = [*HOST, "process", "--policy", "e2e", "--keep-audio", "eng", "--keep-subs", "eng"]
    cmd += ["--video-codec", "mpeg4", "--output-dir", str(out), *map(str, files)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 files with policy 'e2e': 2 succeeded, 1 failed" in done.stdout

    runs = {Path(r["path"]).name: r for r in _vpo_stats(db, "recent")["runs"]}
    assert set(runs) == {"multi.mkv", "phone.mp4", "wide.mkv"}
    for name, source in zip(["multi.mkv", "phone.mp4"], files, strict=False):
        run, output = runs[name], out / f"{source.stem}.mkv"
        assert run["status"] == "succeeded" and run["policy"] == "e2e"
        assert run["output_path"] == str(output)
        assert run["size_before_bytes"] == source.stat().st_size
        assert run["size_after_bytes"] == output.stat().st_size
        assert run["saved_bytes"] == source.stat().st_size - output.stat().st_size
        assert run["tracks_before"] == track_counts(source)
        assert run["tracks_after"] == track_counts(output)
    wide = runs["wide.mkv"]
    assert wide["status"] == "failed" and "dimensions too large" in wide["error"]
    assert wide["size_after_bytes"] == wide["size_before_bytes"] == files[2].stat().st_size

    detail = _vpo_stats(db, "detail", runs["multi.mkv"]["id"][:8])
    kinds = [(a["type"], a["track_type"], a["success"]) for a in detail["actions"]]
    assert kinds == [
        ("remove_track", "audio", True),
        ("remove_track", "audio", True),
        ("remove_track", "subtitle", True),
    ]
    assert [p["name"] for p in detail["phases"]] == ["analyze", "apply"]
    assert detail["total_changes"] == 3 and detail["video_skip_reason"] == "already mpeg4"
    phone = _vpo_stats(db, "detail", runs["phone.mp4"]["id"])
    assert [a["type"] for a in phone["actions"]] == ["transcode", "transcode", "remux"]
    assert (phone["video_source_codec"], phone["video_target_codec"]) == ("h264", "mpeg4")
    assert phone["phases"][1]["bytes_written"] == (out / "phone.mkv").stat().st_size
    failed = _vpo_stats(db, "detail", wide["id"])
    assert [(a["type"], a["success"]) for a in failed["actions"]] == [("transcode", False)]
    summary = _vpo_stats(db, "summary")
    assert (summary["runs"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
