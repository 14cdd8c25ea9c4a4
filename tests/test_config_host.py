"""Each config key, set in the file and in the environment, changes what a real host records.

Every test runs a real pluggy host in its own process (``HOST`` below): it loads the plugin
through the installed ``vpo`` entry point and calls the three hooks with keyword arguments on a
real file made by ffmpeg, then prints ``HOST-DONE``. HOME, PATH and every ``VPO_STATS_*`` of
the subprocess are set here explicitly.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from history import vpo_stats_script

HOST = r"""
import json, logging, sys, time
import pluggy
import vpo_stats_plugin.hookspecs

spec = json.loads(sys.argv[1])
if spec.get("log_file"):
    logging.basicConfig(filename=spec["log_file"], level=logging.INFO)
pm = pluggy.PluginManager("vpo")
pm.add_hookspecs(vpo_stats_plugin.hookspecs)
pm.load_setuptools_entrypoints("vpo")
if spec.get("configure") is not None:
    from vpo_stats_plugin import config
    config.configure(**spec["configure"])

def timed(hook, **kwargs):
    started = time.perf_counter()
    getattr(pm.hook, hook)(**kwargs)
    print(json.dumps({"hook": hook, "ms": (time.perf_counter() - started) * 1000}), flush=True)

for i in range(spec.get("files", 1)):
    job = {"id": f"job-{i}", "path": spec["media"], "policy": "tidy"}
    timed("vpo_before_file", job=job)
    action = {"type": "remove_track", "track_type": "audio", "track_index": 1, "success": True}
    timed("vpo_after_action", job=job, action=action)
    if spec.get("finish", True):
        phase = {"name": "remux", "wall_time_seconds": 0.5, "bytes_read": 10, "bytes_written": 9}
        timed("vpo_after_file", job=job, result={"success": True, "phases": [phase]})
    if i == 0 and spec.get("rewrite"):
        with open(spec["rewrite"]["path"], "w") as handle:
            handle.write(spec["rewrite"]["text"])
print("HOST-DONE", flush=True)
"""


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-second Matroska file with one video and one English audio track."""
    out = tmp_path_factory.mktemp("media") / "out.mkv"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=64x48:duration=1", "-f", "lavfi", "-i", "sine", "-map", "0", "-map", "1",
         "-metadata:s:a:0", "language=eng", "-t", "1", str(out)],
        check=True,
    )  # fmt: skip
    return out


class Host:
    """One test's world: a HOME, a config file, an environment, a fake-ffprobe marker."""

    def __init__(self, root: Path, media: Path) -> None:
        self.root = root
        self.media = media
        self.home = root / "home"
        (self.home / ".vpo").mkdir(parents=True)
        self.config = self.home / ".vpo" / "config.toml"
        self.db = self.home / ".vpo" / "stats.db"  # the default database
        self.marker = root / "ffprobe-ran"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        real = subprocess.run(["which", "ffprobe"], capture_output=True, text=True).stdout.strip()
        fake = bin_dir / "ffprobe"
        fake.write_text(f'#!/bin/sh\necho "$@" >> "{self.marker}"\nexec "{real}" "$@"\n')
        fake.chmod(0o755)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("VPO_STATS_") and k not in ("VPO_CONFIG_PATH", "HOME")
        }
        self.env["HOME"] = str(self.home)
        self.env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"

    def write_config(self, text: str) -> None:
        self.config.write_text(text, encoding="utf-8")

    def set(self, via: str, key: str, value: Any) -> None:
        """Set one key through the config file (`file`) or its environment variable (`env`)."""
        if via == "file":
            self.write_config(f"[plugins.stats]\n{key} = {json.dumps(value)}\n")
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            self.env[f"VPO_STATS_{key.upper()}"] = text

    def run(self, **spec: Any) -> subprocess.CompletedProcess[str]:
        """Run the host to its end; it must finish its own work whatever the plugin does."""
        spec.setdefault("media", str(self.media))
        done = subprocess.run(
            [sys.executable, "-c", HOST, json.dumps(spec)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith("HOST-DONE"), done.stdout + done.stderr
        return done

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [vpo_stats_script(), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def rows(self, sql: str, db: Path | None = None) -> list[sqlite3.Row]:
        path = db or self.db
        if not path.exists():
            return []
        conn = sqlite3.connect(path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def runs(self, db: Path | None = None) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM runs ORDER BY started_at", db)


@pytest.fixture
def host(tmp_path: Path, media: Path) -> Host:
    return Host(tmp_path, media)


VIA = pytest.mark.parametrize("via", ["file", "env"])


def _hook_times(done: subprocess.CompletedProcess[str]) -> list[float]:
    return [json.loads(line)["ms"] for line in done.stdout.splitlines() if line.startswith("{")]


# --- each key, through the file and through the environment ------------------------------------


def test_defaults_record_everything(host: Host) -> None:
    done = host.run()
    assert done.stderr == ""
    (run,) = host.runs()
    assert run["status"] == "succeeded"
    assert run["hash_before"].startswith("partial-xxh3:")
    assert (run["tracks_before_video"], run["tracks_before_audio"]) == (1, 1)
    assert len(host.rows("SELECT * FROM actions")) == 1
    assert len(host.rows("SELECT * FROM phases")) == 1


@VIA
def test_enabled_false_records_nothing_and_reading_still_works(host: Host, via: str) -> None:
    host.run()  # one run recorded while enabled
    host.set(via, "enabled", False)
    done = host.run(files=3)
    assert done.stderr == ""
    assert len(host.runs()) == 1
    assert host.marker.read_text().count("\n") == 2  # only the enabled run probed (before, after)
    read = host.cli("summary", "--format", "json")
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["runs"] == 1


@pytest.mark.parametrize("word", ["0", "false", "no", "off", "FALSE", " Off "])
def test_enabled_env_words_for_false(host: Host, word: str) -> None:
    host.env["VPO_STATS_ENABLED"] = word
    assert host.run().stderr == ""
    assert not host.db.exists()


@pytest.mark.parametrize("word", ["1", "true", "yes", "on", "True"])
def test_enabled_env_words_for_true(host: Host, word: str) -> None:
    host.write_config("[plugins.stats]\nenabled = false\n")
    host.env["VPO_STATS_ENABLED"] = word  # the environment overrides the file
    host.run()
    assert len(host.runs()) == 1


@VIA
def test_record_actions_false_keeps_no_action_rows(host: Host, via: str) -> None:
    host.set(via, "record_actions", False)
    host.run(files=2)
    runs = host.runs()
    assert len(runs) == 2
    assert host.rows("SELECT * FROM actions") == []
    assert [r["total_changes"] for r in runs] == [1, 1]  # still counted
    assert len(host.rows("SELECT * FROM phases")) == 2


@VIA
def test_record_performance_false_keeps_no_phase_rows(host: Host, via: str) -> None:
    host.set(via, "record_performance", False)
    host.run(files=2)
    assert len(host.runs()) == 2
    assert host.rows("SELECT * FROM phases") == []
    assert len(host.rows("SELECT * FROM actions")) == 2


@VIA
@pytest.mark.parametrize("mode", ["off", "partial", "full"])
def test_hash_chooses_the_hash_kept(host: Host, via: str, mode: str) -> None:
    host.set(via, "hash", mode)
    host.run()
    (run,) = host.runs()
    if mode == "off":
        assert run["hash_before"] is None and run["hash_after"] is None
    elif mode == "partial":
        assert run["hash_before"].startswith("partial-xxh3:")
        assert run["hash_after"] == run["hash_before"]
    else:
        whole = hashlib.sha256(host.media.read_bytes()).hexdigest()
        assert run["hash_before"] == run["hash_after"] == f"sha256:{whole}"


@VIA
def test_probe_tracks_false_never_runs_ffprobe(host: Host, via: str) -> None:
    host.set(via, "probe_tracks", False)
    host.run(files=2)
    runs = host.runs()
    assert len(runs) == 2
    assert not host.marker.exists(), "ffprobe ran although probe_tracks is off"
    for run in runs:
        for when in ("before", "after"):
            for kind in ("video", "audio", "subtitle", "attachment"):
                assert run[f"tracks_{when}_{kind}"] is None


@VIA
def test_probe_tracks_true_counts_tracks_with_ffprobe(host: Host, via: str) -> None:
    host.set(via, "probe_tracks", True)
    host.run()
    (run,) = host.runs()
    assert host.marker.exists()
    before = [run[f"tracks_before_{k}"] for k in ("video", "audio", "subtitle", "attachment")]
    assert before == [1, 1, 0, 0]


@VIA
def test_node_is_stored_on_each_run(host: Host, via: str) -> None:
    host.set(via, "node", "worker-7")
    host.run(files=2)
    assert [r["node"] for r in host.runs()] == ["worker-7", "worker-7"]
    read = host.cli("summary", "--format", "json", "--node", "worker-7")
    assert json.loads(read.stdout)["runs"] == 2


@VIA
def test_database_chooses_where_runs_go(host: Host, via: str) -> None:
    target = host.root / "elsewhere" / "mine.db"
    target.parent.mkdir()
    host.set(via, "database", str(target))
    host.run()
    assert len(host.runs(target)) == 1
    assert not host.db.exists()
    read = host.cli("path")
    assert read.stdout.strip() == str(target)


def test_a_relative_database_in_the_file_is_beside_the_file(host: Host) -> None:
    host.write_config('[plugins.stats]\ndatabase = "data/stats.db"\n')
    (host.config.parent / "data").mkdir()
    host.run()
    assert len(host.runs(host.config.parent / "data" / "stats.db")) == 1


@VIA
def test_stale_after_decides_when_another_nodes_run_is_interrupted(host: Host, via: str) -> None:
    host.env["VPO_STATS_NODE"] = "far-away"
    host.run(finish=False)  # the host stops mid-file: its run stays running
    del host.env["VPO_STATS_NODE"]  # the reader is this machine, another node
    time.sleep(1.2)
    default = host.cli("recent", "--format", "json")
    assert [r["status"] for r in json.loads(default.stdout)["runs"]] == ["running"]
    host.set(via, "stale_after", "1s")
    read = host.cli("recent", "--format", "json")
    assert read.returncode == 0, read.stderr
    assert [r["status"] for r in json.loads(read.stdout)["runs"]] == ["interrupted"]


# --- where the config comes from -----------------------------------------------------------------


def test_vpo_stats_config_names_another_file(host: Host) -> None:
    other = host.root / "other.toml"
    other.write_text('[plugins.stats]\nnode = "from-other"\n')
    host.write_config('[plugins.stats]\nnode = "from-home"\n')
    host.env["VPO_STATS_CONFIG"] = str(other)
    host.run()
    assert [r["node"] for r in host.runs()] == ["from-other"]


def test_vpo_config_path_is_honoured(host: Host) -> None:
    other = host.root / "vpo.toml"
    other.write_text('[plugins.stats]\nnode = "from-vpo-config"\n')
    host.env["VPO_CONFIG_PATH"] = str(other)
    host.run()
    assert [r["node"] for r in host.runs()] == ["from-vpo-config"]


def test_a_host_hands_its_section(host: Host) -> None:
    host.write_config('[plugins.stats]\nnode = "from-home"\n')
    host.env["VPO_STATS_HASH"] = "off"  # the environment still overrides single keys
    host.run(configure={"section": {"node": "from-host", "record_actions": False}})
    (run,) = host.runs()
    assert (run["node"], run["hash_before"]) == ("from-host", None)
    assert host.rows("SELECT * FROM actions") == []


def test_a_host_hands_its_file(host: Host) -> None:
    own = host.root / "host.toml"
    own.write_text('[core]\nx = 1\n[plugins.stats]\nnode = "host-file"\n')
    host.run(configure={"path": str(own)})
    assert [r["node"] for r in host.runs()] == ["host-file"]


def test_vpo_stats_config_wins_over_what_the_host_hands(host: Host) -> None:
    other = host.root / "other.toml"
    other.write_text('[plugins.stats]\nnode = "from-env-file"\n')
    host.env["VPO_STATS_CONFIG"] = str(other)
    host.run(configure={"section": {"node": "from-host"}})
    assert [r["node"] for r in host.runs()] == ["from-env-file"]


def test_a_missing_file_is_simply_defaults(host: Host) -> None:
    host.env["VPO_STATS_CONFIG"] = str(host.root / "nowhere.toml")
    done = host.run()
    assert done.stderr == ""
    (run,) = host.runs()
    assert run["hash_before"].startswith("partial-xxh3:")


def test_the_config_is_read_once_per_process(host: Host) -> None:
    host.write_config('[plugins.stats]\nnode = "first"\n')
    # after the first file the host breaks the file: the process keeps what it read
    done = host.run(files=3, rewrite={"path": str(host.config), "text": "this is [ not toml"})
    assert done.stderr == ""
    assert [r["node"] for r in host.runs()] == ["first"] * 3


def test_disabled_plugin_costs_nothing_more_than_a_check(host: Host) -> None:
    host.env["VPO_STATS_ENABLED"] = "false"
    probe = (
        "import sys, pluggy, vpo_stats_plugin.hookspecs\n"
        "pm = pluggy.PluginManager('vpo'); pm.add_hookspecs(vpo_stats_plugin.hookspecs)\n"
        "pm.load_setuptools_entrypoints('vpo')\n"
        "pm.hook.vpo_before_file(job={'id': 'a', 'path': sys.argv[1]})\n"
        "print(sorted(m for m in ('pydantic', 'sqlite3') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(host.media)],
        env=host.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"


# --- bad configs: one clear message, an untouched host ------------------------------------------

BAD = {
    "bad hash in the file": (
        {"file": '[plugins.stats]\nhash = "fast"\n'},
        ["hash = 'fast'", "config.toml", "off, partial or full"],
    ),
    "bad boolean in the file": (
        {"file": '[plugins.stats]\nrecord_actions = "sometimes"\n'},
        ["record_actions = 'sometimes'", "config.toml", "true or false"],
    ),
    "bad boolean in the environment": (
        {"env": {"VPO_STATS_ENABLED": "maybe"}},
        ["enabled = 'maybe'", "VPO_STATS_ENABLED", "true or false"],
    ),
    "bad hash in the environment": (
        {"env": {"VPO_STATS_HASH": "md5"}},
        ["hash = 'md5'", "VPO_STATS_HASH", "off, partial or full"],
    ),
    "bad duration": (
        {"file": '[plugins.stats]\nstale_after = "soon"\n'},
        ["stale_after = 'soon'", "config.toml", "30m, 24h or 7d"],
    ),
    "empty node": (
        {"file": '[plugins.stats]\nnode = "  "\n'},
        ["node = '  '", "config.toml", "non-empty name"],
    ),
    "database not a path": (
        {"file": "[plugins.stats]\ndatabase = 5\n"},
        ["database = 5", "config.toml", "a file path"],
    ),
    "unknown key": (
        {"file": "[plugins.stats]\nrecord_action = false\n"},
        ["unknown key 'record_action'", "config.toml", "did you mean 'record_actions'", "hash"],
    ),
    "invalid TOML": (
        {"file": "[plugins.stats]\nhash = partial\n"},
        ["config.toml is not valid TOML", "line 2"],
    ),
    "section not a table": (
        {"file": 'plugins.stats = "on"\n'},
        ["[plugins.stats]", "config.toml", "must be a table"],
    ),
    "config file is a directory": (
        {"dir": True},
        ["cannot read the config file", "config.toml"],
    ),
    "host section not a table": (
        {"configure": {"section": ["hash", "off"]}},
        ["the [plugins.stats] the host gave is a list"],
    ),
    "host path not a path": (
        {"configure": {"path": 5}},
        ["the config path the host gave is not a path: 5"],
    ),
    "bad value in the host's section": (
        {"configure": {"section": {"hash": 3}}},
        ["hash = 3", "the [plugins.stats] the host gave", "off, partial or full"],
    ),
}


def _break(host: Host, how: dict[str, Any]) -> dict[str, Any]:
    if "file" in how:
        host.write_config(how["file"])
    if how.get("dir"):
        host.config.mkdir()
    host.env.update(how.get("env", {}))
    return {"configure": how["configure"]} if "configure" in how else {}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_config_is_reported_once_and_the_host_is_untouched(host: Host, case: str) -> None:
    how, expected = BAD[case]
    spec = _break(host, how)
    done = host.run(files=3, **spec)  # nine hook calls; the host prints HOST-DONE
    assert done.stderr.count("vpo-stats: recording is off: bad plugin config") == 1, done.stderr
    message = done.stderr
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert host.runs() == [] and not host.db.exists()
    assert not host.marker.exists()
    times = _hook_times(done)
    assert len(times) == 9
    assert max(times[1:]) < 50, times  # after the first call, a disabled plugin costs nothing


def test_a_bad_config_goes_once_to_the_hosts_own_log(host: Host) -> None:
    host.write_config('[plugins.stats]\nhash = "fast"\n')
    log = host.root / "host.log"
    done = host.run(files=3, log_file=str(log))
    text = log.read_text()
    assert text.count("recording is off") == 1
    assert "ERROR:vpo_stats_plugin" in text and "off, partial or full" in text
    assert "recording is off" not in done.stderr  # the host's logging took it
    assert not host.db.exists()


def test_every_problem_is_named_in_the_one_message(host: Host) -> None:
    host.write_config('[plugins.stats]\nhash = "fast"\ncolour = "red"\n')
    host.env["VPO_STATS_NODE"] = ""  # empty: as if unset
    host.env["VPO_STATS_RECORD_PERFORMANCE"] = "perhaps"
    done = host.run(files=2)
    assert done.stderr.count("recording is off") == 1
    for part in ("hash = 'fast'", "unknown key 'colour'", "VPO_STATS_RECORD_PERFORMANCE"):
        assert part in done.stderr
    assert "node = " not in done.stderr


def test_vpo_stats_config_inside_a_host(host: Host) -> None:
    host.write_config('[plugins.stats]\nnode = "n1"\n')
    host.env["VPO_STATS_HASH"] = "off"
    cmd = [sys.executable, "-m", "vpo_stats_plugin.refhost", "stats", "config", "--format", "json"]
    done = subprocess.run(cmd, env=host.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {r["key"]: r for r in json.loads(done.stdout)["config"]}
    assert (rows["node"]["value"], rows["node"]["source"]) == ("n1", f"file {host.config}")
    assert (rows["hash"]["value"], rows["hash"]["source"]) == ("off", "env VPO_STATS_HASH")
    host.env["VPO_STATS_HASH"] = "sometimes"
    bad = subprocess.run(cmd, env=host.env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.count("hash = 'sometimes' from VPO_STATS_HASH") == 1
    assert json.loads(bad.stdout)["problems"]
