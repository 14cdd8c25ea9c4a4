"""Recording through the installed entry point, on real media made by ffmpeg."""

from __future__ import annotations

import io
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
import pytest
import xxhash
from conftest import engine_db_path

import vpo_stats_plugin.hookspecs
from vpo_stats_plugin import probe, recorder
from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.probe import MIB, full_hash, partial_hash
from vpo_stats_plugin.samples import MediaSpec, make_media
from vpo_stats_plugin.store import open_store


def ffprobe_counts(path: Path) -> dict[str, int]:
    """Track counts straight from ffprobe, independent of the plugin's own probing."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True,
        check=True,
    )
    counts = {"video": 0, "audio": 0, "subtitle": 0, "attachment": 0}
    for stream in json.loads(out.stdout)["streams"]:
        kind = stream["codec_type"]
        if kind == "video" and stream.get("disposition", {}).get("attached_pic"):
            kind = "attachment"
        counts[kind] += 1
    return counts


db_path = pytest.fixture(engine_db_path, name="db_path")  # both engines


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A real host's plugin manager, the plugin arriving only through its entry point."""
    manager = pluggy.PluginManager("vpo")
    manager.add_hookspecs(vpo_stats_plugin.hookspecs)
    manager.load_setuptools_entrypoints("vpo")
    return manager


@pytest.fixture
def movie(tmp_path: Path) -> Path:
    spec = MediaSpec(
        "movie.mkv", "mpeg4", ("eng", "fra", "deu"), ("eng", "fra"), size="64x48", duration=1.0
    )
    return make_media(tmp_path / "movie.mkv", spec)


@dataclass
class HostJob:
    """A host's own job object: the plugin reads attributes, not only mappings."""

    id: str
    path: Path
    policy: str = "english only"
    file_id: int = 7
    extra: Any = field(default_factory=object)


def drop_tracks(src: Path, dst: Path) -> None:
    """Keep video, the first audio and the first subtitle track."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", "0:v", "-map", "0:a:0"]
        + ["-map", "0:s:0", "-c", "copy", str(dst)],
        check=True,
    )


def test_plugin_arrives_through_its_entry_point(pm: pluggy.PluginManager) -> None:
    plugin = pm.get_plugin("stats")
    assert plugin is not None
    assert plugin.__name__ == "vpo_stats_plugin.hooks"
    names = {
        impl.plugin_name for hook in pm.get_hookcallers(plugin) for impl in hook.get_hookimpls()
    }
    hooks = {hook.name for hook in pm.get_hookcallers(plugin)}
    assert hooks == {"vpo_before_file", "vpo_after_action", "vpo_after_file"}
    assert "stats" in names
    dist = dict(pm.list_plugin_distinfo())
    assert dist[plugin].project_name == "vpo-stats-plugin"


def test_a_processed_file_is_recorded_exactly(
    pm: pluggy.PluginManager, movie: Path, tmp_path: Path, db_path: Path
) -> None:
    before_size, before_tracks = movie.stat().st_size, ffprobe_counts(movie)
    job = HostJob(id="job-1", path=movie)
    pm.hook.vpo_before_file(job=job)
    output = tmp_path / "movie.out.mkv"
    drop_tracks(movie, output)
    for index in (1, 2):
        pm.hook.vpo_after_action(
            job=job,
            action={
                "type": "remove_track",
                "track_type": "audio",
                "track_index": index,
                "success": True,
                "rule": "keep eng",
                "duration_ms": 3.5,
                "before": {"language": "fra"},
            },
        )
    pm.hook.vpo_after_action(job=job, action={"type": "remove_track", "success": False})
    pm.hook.vpo_after_file(
        job=job,
        result={
            "success": True,
            "output_path": str(output),
            "phases": [{"name": "apply", "wall_time_seconds": 0.25, "encoding_bitrate": 1.5e6}],
        },
    )

    with open_store(db_path) as store:
        [run] = store.recent(Filters())["runs"]
        detail = store.run(run["id"])
    assert detail["status"] == "succeeded"
    assert detail["job_id"] == "job-1" and detail["file_id"] == 7
    assert detail["policy"] == "english only"
    assert detail["size_before_bytes"] == before_size
    assert detail["size_after_bytes"] == output.stat().st_size
    assert detail["saved_bytes"] == before_size - output.stat().st_size
    assert (
        detail["tracks_before"]
        == before_tracks
        == {
            "video": 1,
            "audio": 3,
            "subtitle": 2,
            "attachment": 0,
        }
    )
    assert detail["tracks_after"] == ffprobe_counts(output)
    assert detail["hash_before"] == partial_hash(movie)
    assert detail["hash_after"] == partial_hash(output)
    assert detail["total_changes"] == 2  # successful actions, when the host gives no count
    assert [a["success"] for a in detail["actions"]] == [True, True, False]
    assert detail["actions"][0]["before"] == {"language": "fra"}
    assert detail["phases"] == [
        {
            "name": "apply",
            "wall_time_seconds": 0.25,
            "bytes_read": None,
            "bytes_written": None,
            "encoding_fps": None,
            "encoding_bitrate": 1.5e6,
        }
    ]
    assert detail["started_at"] <= detail["finished_at"]
    assert detail["started_at"].endswith("Z") and detail["duration_seconds"] >= 0


def test_a_file_failing_halfway_keeps_partial_stats(
    pm: pluggy.PluginManager, movie: Path, db_path: Path
) -> None:
    job = {"id": "job-2", "path": str(movie), "policy": "transcode", "phases_total": 3}
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_after_action(job=job, action={"type": "remux", "success": True, "phase": "one"})
    pm.hook.vpo_after_action(job=job, action={"type": "transcode", "success": False})
    pm.hook.vpo_after_file(
        job=job,
        result={
            "success": False,
            "error": "ffmpeg: Conversion failed!",
            "output_path": str(movie.with_suffix(".never-written.mkv")),
            "phases_completed": 1,
            "video_source_codec": "mpeg4",
            "video_target_codec": "hevc",
        },
    )
    with open_store(db_path) as store:
        [run] = store.recent(Filters())["runs"]
        summary = store.summary(Filters())
    assert run["status"] == "failed"
    assert run["error"] == "ffmpeg: Conversion failed!"
    assert run["phases_completed"] == 1 and run["phases_total"] == 3
    # the output never appeared: the file was left as it was, so it saved nothing
    assert run["output_path"] == str(movie)
    assert run["size_after_bytes"] == run["size_before_bytes"] == movie.stat().st_size
    assert run["video_target_codec"] == "hevc"
    assert summary["failed"] == 1 and summary["saved_bytes"] == 0


def test_a_host_exception_path_still_finishes_the_run(
    pm: pluggy.PluginManager, movie: Path, db_path: Path
) -> None:
    job = {"id": "job-3", "path": str(movie)}
    pm.hook.vpo_before_file(job=job)
    with open_store(db_path) as store:
        assert store.recent(Filters())["runs"][0]["status"] == "running"
    try:
        raise RuntimeError("disk vanished")
    except RuntimeError as err:
        pm.hook.vpo_after_file(job=job, result={"success": False, "error": repr(err)})
    with open_store(db_path) as store:
        run = store.recent(Filters())["runs"][0]
    assert run["status"] == "failed" and "disk vanished" in run["error"]


def _only_run(db_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one run in the database, with actions, and the summary (which reads the rollups)."""
    with open_store(db_path) as store:
        [run] = store.recent(Filters())["runs"]
        assert store.rebuild_rollups(check=True)["differing_rows"] == 0  # rollups agree
        return store.run(run["id"]), store.summary(Filters())


@pytest.mark.parametrize("unreadable", [None, {"success": "maybe"}], ids=["none", "maybe"])
def test_a_retry_after_an_unreadable_result_finishes_the_same_run(
    pm: pluggy.PluginManager, movie: Path, db_path: Path, unreadable: Any
) -> None:
    job = HostJob("job-retry", movie)
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_after_action(job=job, action={"type": "remove_track", "success": True})
    pm.hook.vpo_after_file(job=job, result=unreadable)
    run, summary = _only_run(db_path)
    assert run["status"] == "interrupted" and "could not be read" in run["error"]
    assert summary["interrupted"] == 1

    pm.hook.vpo_after_action(job=job, action={"type": "set_default", "success": True})
    pm.hook.vpo_after_file(job=job, result={"success": True})
    run, summary = _only_run(db_path)
    assert run["status"] == "succeeded" and run["error"] is None
    assert [a["type"] for a in run["actions"]] == ["remove_track", "set_default"]
    assert run["total_changes"] == 2
    assert (summary["runs"], summary["succeeded"], summary["interrupted"]) == (1, 1, 0)


def test_a_job_started_again_is_the_same_run(
    pm: pluggy.PluginManager, movie: Path, db_path: Path
) -> None:
    """Started twice, ended with an unreadable result, started again: one run, running again
    while the host works on it, finished by its usable result."""
    job = {"id": "job-again", "path": str(movie), "policy": "p"}
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_after_file(job=job, result={"success": "maybe"})
    pm.hook.vpo_before_file(job=job)
    run, summary = _only_run(db_path)
    assert run["status"] == "running" and run["error"] is None and run["finished_at"] is None
    assert (summary["runs"], summary["running"], summary["interrupted"]) == (1, 1, 0)

    pm.hook.vpo_after_file(job=job, result={"success": True})
    run, summary = _only_run(db_path)
    assert run["status"] == "succeeded" and run["finished_at"] is not None
    assert (summary["runs"], summary["succeeded"], summary["interrupted"]) == (1, 1, 0)


def test_runs_kept_for_a_retry_are_bounded(
    pm: pluggy.PluginManager, tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host whose every result is unreadable does not grow the process without end: past
    the bound, the oldest such run is forgotten and a late retry of it is a run of its own."""
    monkeypatch.setattr(recorder, "ENDED_KEPT", 2)
    jobs = [{"id": f"job-{n}", "path": str(tmp_path / f"f{n}.mkv")} for n in range(3)]
    for job in jobs:
        pm.hook.vpo_before_file(job=job)
        pm.hook.vpo_after_file(job=job, result=None)
    for job in jobs:
        pm.hook.vpo_after_file(job=job, result={"success": True})
    with open_store(db_path) as store:
        runs = store.recent(Filters(), limit=10)["runs"]
    statuses = sorted((r["job_id"], r["status"]) for r in runs)
    assert statuses == [
        ("job-0", "interrupted"),
        ("job-0", "succeeded"),
        ("job-1", "succeeded"),
        ("job-2", "succeeded"),
    ]


@pytest.mark.parametrize(
    "job, action, result",
    [
        (None, None, None),
        ("a string", 42, ["a", "list"]),
        ({"path": "/no/id"}, {"success": "maybe"}, {"error": "no success field"}),
        ({"id": "", "path": ""}, {}, {}),
        (
            {"id": "x", "path": "/nope", "tracks": "many"},
            {"success": True, "track_index": "two"},
            {"success": True, "phases": [1, {"name": 2}]},
        ),
    ],
)
def test_malformed_payloads_never_reach_the_host(
    pm: pluggy.PluginManager, job: Any, action: Any, result: Any
) -> None:
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_after_action(job=job, action=action)
    pm.hook.vpo_after_file(job=job, result=result)


def test_bad_optional_fields_are_dropped_and_the_rest_kept(
    pm: pluggy.PluginManager, movie: Path, db_path: Path
) -> None:
    job = {"id": "job-4", "path": str(movie), "phases_total": "lots", "policy": "p"}
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_after_file(
        job=job, result={"success": True, "encoder_type": "quantum", "phases_completed": 2}
    )
    with open_store(db_path) as store:
        [run] = store.recent(Filters())["runs"]
        status = store.status()
    assert run["status"] == "succeeded" and run["policy"] == "p"
    assert run["phases_total"] is None and run["encoder_type"] is None
    assert run["phases_completed"] == 2
    causes = {e["cause"] for e in status["recording_error_causes"]}
    assert {"bad-job-fields", "bad-result-fields"} <= causes


def test_an_unusable_database_path_changes_nothing_for_the_host(
    pm: pluggy.PluginManager, movie: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("VPO_STATS_DATABASE", str(blocker / "stats.db"))
    job = {"id": "job-5", "path": str(movie)}
    pm.hook.vpo_before_file(job=job)
    pm.hook.vpo_after_file(job=job, result={"success": True})
    assert blocker.read_text() == "not a directory"


def test_partial_hash_is_xxh3_of_the_size_and_the_first_and_last_mib(tmp_path: Path) -> None:
    for size in (0, 10, MIB, MIB + 1, 3 * MIB + 5):
        data = os.urandom(size)
        path = tmp_path / f"{size}.bin"
        path.write_bytes(data)
        tail = data[max(MIB, size - MIB) :] if size > MIB else b""
        expected = xxhash.xxh3_128(str(size).encode() + data[:MIB] + tail).hexdigest()
        assert partial_hash(path) == f"partial-xxh3:{expected}"


def test_a_file_system_that_returns_short_reads_is_read_to_the_full_mib() -> None:
    class Trickle(io.RawIOBase):  # what a network file system may do: a little at a time
        def __init__(self, data: bytes) -> None:
            self.data, self.at = data, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.data[self.at : self.at + min(4000, len(buffer))]
            buffer[: len(chunk)] = chunk
            self.at += len(chunk)
            return len(chunk)

    data = os.urandom(MIB + 5000)
    buffer = memoryview(bytearray(MIB))
    handle = Trickle(data)
    assert bytes(probe._read_up_to_a_mib(handle, buffer)) == data[:MIB]
    assert bytes(probe._read_up_to_a_mib(handle, buffer)) == data[MIB:]
    assert bytes(probe._read_up_to_a_mib(handle, buffer)) == b""


def test_full_hash_is_what_sha256sum_prints(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(2 * MIB + 3))
    printed = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    assert full_hash(path) == "sha256:" + printed.stdout.split()[0]


def test_partial_hash_reads_the_same_bytes_whatever_the_size(tmp_path: Path) -> None:
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(os.urandom(3 * MIB))
    with big.open("wb") as handle:  # sparse: 8 GiB on paper, nothing on disk
        handle.write(b"head")
        handle.truncate(8 * 1024 * MIB)
    assert partial_hash(big).startswith("partial-xxh3:")
    copy = tmp_path / "copy.bin"
    copy.write_bytes(small.read_bytes())
    assert partial_hash(copy) == partial_hash(small)
    with copy.open("r+b") as handle:  # a change in the middle is not seen: by design
        handle.seek(int(1.5 * MIB))
        handle.write(b"\x00\x01")
    assert partial_hash(copy) == partial_hash(small)
    with copy.open("ab") as handle:  # a change of size or of the tail is
        handle.write(b"!")
    assert partial_hash(copy) != partial_hash(small)
