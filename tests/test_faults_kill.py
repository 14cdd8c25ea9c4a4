"""Fault: a host killed with SIGKILL mid-file. Its run shows as `interrupted`; a live process's
run, on this node or another, is never taken for a dead one (several processes, two nodes)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hostproc import cli, host_env, run_host, start_host, wait_for
from media import make_media

from vpo_stats_plugin.liveness import process_start_ticks
from vpo_stats_plugin.store import open_store

STALE = 3.0  # seconds: stale_after for these tests (the default is 24h)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_media(tmp_path_factory.mktemp("media") / "clip.mkv", duration=1.0))


def _env(db: Path, node: str) -> dict[str, str]:
    return host_env(db, node=node, stale_after=STALE)


def _runs(db: Path, node: str) -> dict[str, dict[str, Any]]:
    """The runs as a reader on ``node`` sees them (`vpo-stats recent`), by job id."""
    done = cli("recent", "--limit", "100", "--format", "json", env=_env(db, node))
    assert done.returncode == 0, done.stderr
    return {run["job_id"]: run for run in json.loads(done.stdout)["runs"]}


def _statuses(db: Path, node: str) -> dict[str, str]:
    return {job: run["status"] for job, run in _runs(db, node).items()}


def _kill(proc: subprocess.Popen[str], pid: int | None = None) -> None:
    os.kill(pid or proc.pid, signal.SIGKILL)
    if pid is None:
        proc.wait()


def test_killed_mid_file_shows_interrupted(tmp_path: Path, clip: str) -> None:
    db = tmp_path / "stats.db"
    host = start_host({"files": [clip], "actions": 3, "hang": 0}, _env(db, "n1"))
    try:
        job = wait_for(host, "hanging")["job"]
        assert _statuses(db, "n1") == {job: "running"}
    finally:
        _kill(host)
    run = _runs(db, "n1")[job]
    assert run["status"] == "interrupted"
    assert run["finished_at"] is None and "interrupted" in run["error"]
    detail = cli("detail", run["id"], "--format", "json", env=_env(db, "n1"))
    assert [a["type"] for a in json.loads(detail.stdout)["actions"]] == ["remove_track"]
    summary = json.loads(cli("summary", "--format", "json", env=_env(db, "n1")).stdout)
    assert (summary["runs"], summary["interrupted"], summary["running"]) == (1, 1, 0)


def test_several_processes_on_two_nodes(tmp_path: Path, clip: str) -> None:
    """A, B (node n1) and C (node n2) hang mid-file, D (n1) finishes; they die one by one."""
    db = tmp_path / "stats.db"
    open_store(db).close()
    spec = {"files": [clip], "actions": 1, "hang": 0}
    hosts = {
        "A": start_host({**spec, "prefix": "A"}, _env(db, "n1")),
        "B": start_host({**spec, "prefix": "B"}, _env(db, "n1")),
        "C": start_host({**spec, "prefix": "C"}, _env(db, "n2")),
    }
    try:
        jobs = {name: wait_for(proc, "hanging")["job"] for name, proc in hosts.items()}
        done = run_host({"files": [clip, clip], "prefix": "D"}, _env(db, "n1"))
        assert done.returncode == 0
        job_of = {**{j: "D" for j in _statuses(db, "n1")}, **{j: n for n, j in jobs.items()}}

        def view(node: str) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for job, status in _statuses(db, node).items():
                out.setdefault(job_of[job], []).append(status)
            return out

        running = {"A": ["running"], "B": ["running"], "C": ["running"], "D": ["succeeded"] * 2}
        assert view("n1") == running and view("n2") == running

        _kill(hosts["A"])
        time.sleep(STALE * 1.3)  # C's heartbeat keeps it alive for n1, longer than stale_after
        after_a = {**running, "A": ["interrupted"]}
        assert view("n1") == after_a and view("n2") == after_a

        _kill(hosts["C"])
        assert view("n1") == after_a  # n1 cannot see n2's processes: C is not stale yet
        assert view("n2")["C"] == ["interrupted"]  # C's own node knows at once
        _kill(hosts["B"])
        assert view("n1")["B"] == ["interrupted"]
    finally:
        for proc in hosts.values():
            if proc.poll() is None:
                _kill(proc)


def test_another_node_reaps_after_stale_after(tmp_path: Path, clip: str) -> None:
    db = tmp_path / "stats.db"
    host = start_host({"files": [clip], "actions": 1, "hang": 0}, _env(db, "n2"))
    try:
        job = wait_for(host, "hanging")["job"]
    finally:
        _kill(host)
    assert _statuses(db, "n1") == {job: "running"}  # its last sign of life is fresh
    time.sleep(STALE + 0.5)
    assert _statuses(db, "n1") == {job: "interrupted"}


def test_a_reused_process_id_is_not_the_run_s_process(tmp_path: Path) -> None:
    """A run whose pid now belongs to another process (other start time), or whose process is
    gone or a zombie (killed, its parent not having waited for it yet), is dead."""
    db = tmp_path / "stats.db"
    me = os.getpid()
    ticks = process_start_ticks(me)
    exited = subprocess.Popen(["true"])
    exited.wait()
    zombie = subprocess.Popen(["sleep", "60"])  # killed, and not waited for (yet)
    zombie.kill()
    time.sleep(0.2)
    rows = {
        "mine": (me, ticks),
        "reused-pid": (me, (ticks or 0) - 1000),
        "exited": (exited.pid, None),
        "zombie": (zombie.pid, process_start_ticks(zombie.pid)),
        "no-pid": (None, None),
    }
    with open_store(db, node="n1") as store:
        for run_id, (pid, started) in rows.items():
            store.begin_run(
                {
                    "id": run_id,
                    "path": f"/library/{run_id}.mkv",
                    "node": "n1",
                    "status": "running",
                    "started_at": "2025-01-01T00:00:00Z",
                    "pid": pid,
                    "process_started": started,
                }
            )
        store.reap_interrupted()
    zombie.wait()
    conn = sqlite3.connect(db)
    statuses = dict(conn.execute("SELECT id, status FROM runs").fetchall())
    conn.close()
    assert statuses == {
        "mine": "running",
        "reused-pid": "interrupted",
        "exited": "interrupted",
        "zombie": "interrupted",
        "no-pid": "interrupted",
    }


def test_a_forked_worker_records_its_own_process(tmp_path: Path, clip: str) -> None:
    """The host records a file, then forks a worker that records the next and is killed."""
    db = tmp_path / "stats.db"
    spec = {"files": [clip, clip], "fork": True, "hang": 1, "linger": 30}
    host = start_host(spec, _env(db, "n1"))
    try:
        child = wait_for(host, "forked")["child"]
        hanging = wait_for(host, "hanging")
        assert hanging["pid"] == child
        conn = sqlite3.connect(db)
        pids = dict(conn.execute("SELECT job_id, pid FROM runs").fetchall())
        conn.close()
        assert pids[hanging["job"]] == child and len(set(pids.values())) == 2
        _kill(host, child)
        wait_for(host, "lingering")  # the parent goes on
        assert sorted(_statuses(db, "n1").values()) == ["interrupted", "succeeded"]
        assert host.poll() is None
    finally:
        _kill(host)
