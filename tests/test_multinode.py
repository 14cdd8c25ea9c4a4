"""Several processing nodes, one history: hosts in their own processes recording into the suite's
PostgreSQL server (CONTRACT section 7), read back through the CLI as a user would."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_database
from hostproc import cli, host_env, run_host, start_host, wait_for
from media import make_media
from pgserver import running_server

from vpo_stats_plugin import spool
from vpo_stats_plugin.store.engines import server_url

NODES = ("nas-1", "nas-2", "gpu-box")
STALE = 2.0  # seconds without activity after which another node's run reads as interrupted


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """This test's own stats store on the suite's server (a schema of its own)."""
    return engine_database(request, "postgresql", Path("unused"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    media = tmp_path_factory.mktemp("media")
    return [
        str(make_media(media / "two-languages.mkv", audio=("eng", "fre"), subtitles=("eng",))),
        str(make_media(media / "english.mkv", audio=("eng",))),
        str(make_media(media / "phone.mp4", audio=("eng", None))),
    ]


def env_of(url: str, node: str, **settings: Any) -> dict[str, str]:
    return host_env(url, node=node, stale_after=STALE, **settings)  # type: ignore[arg-type]


def ask(url: str, *args: str, node: str = "reader") -> Any:
    """`vpo-stats ARGS --format json` on another machine (node), its answer."""
    done = cli(*args, "--format", "json", env=env_of(url, node))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_three_nodes_record_real_media_into_one_server(
    url: str, clips: list[str], tmp_path: Path
) -> None:
    hosts = {
        node: start_host(
            {
                "mode": "refhost",
                "files": clips * 2,
                "out_dir": str(tmp_path / node),
                "policy": "remux" if n % 2 else "english",
            },
            env_of(url, node),
        )
        for n, node in enumerate(NODES)
    }
    outputs = {node: proc.communicate(timeout=120) for node, proc in hosts.items()}
    for node, proc in hosts.items():
        assert proc.returncode == 0, outputs[node][1]
        files = [json.loads(line) for line in outputs[node][0].splitlines() if '"file"' in line]
        assert len(files) == len(clips) * 2 and all(f["success"] for f in files), files

    said = {node: (out.splitlines()[-1:], err) for node, (out, err) in outputs.items()}
    per_node = {row["node"]: row for row in ask(url, "nodes")["nodes"]}
    assert set(per_node) == set(NODES), said
    summary = ask(url, "summary")
    assert summary["runs"] == summary["succeeded"] == len(NODES) * len(clips) * 2, said
    for node in NODES:
        row = per_node[node]
        assert row["runs"] == row["succeeded"] == len(clips) * 2, row
        assert row["saved_bytes"] == ask(url, "summary", "--node", node)["saved_bytes"]
    assert sum(r["saved_bytes"] for r in per_node.values()) == summary["saved_bytes"] > 0
    policies = {row["policy"]: row["runs"] for row in ask(url, "policies")["policies"]}
    assert policies == {"english": 2 * len(clips) * 2, "remux": len(clips) * 2}
    # the totals kept run by run equal those summed again from the runs
    check = ask(url, "rebuild", "--check")
    assert check["differing_rows"] == 0, check
    status = ask(url, "status")
    assert status["engine"] == "postgresql" and status["server_version"]
    assert status["runs"] == summary["runs"] and "***" in status["path"]
    shown = cli("status", env=env_of(url, "reader")).stdout
    assert f"postgresql {status['server_version']}" in shown and "***" in shown


def test_a_node_killed_mid_file_is_interrupted_seen_from_another(
    url: str, clips: list[str]
) -> None:
    host = start_host({"files": [clips[0]], "actions": 2, "hang": 0}, env_of(url, "nas-1"))
    try:
        job = wait_for(host, "hanging")["job"]
        runs = {r["job_id"]: r for r in ask(url, "recent", node="nas-2")["runs"]}
        assert runs[job]["status"] == "running"  # alive: its keeper touches it
    finally:
        os.kill(host.pid, signal.SIGKILL)
        host.wait()
    deadline = time.monotonic() + 30
    while True:
        status = {r["job_id"]: r for r in ask(url, "recent", node="nas-2")["runs"]}[job]["status"]
        if status == "interrupted" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == "interrupted"
    assert ask(url, "nodes", node="nas-2")["nodes"][0]["interrupted"] == 1


@pytest.mark.parametrize("wrong", ["password", "database"])
def test_a_wrong_password_or_database_names_the_server_not_the_password(
    pg_server: Any, clips: list[str], tmp_path: Path, wrong: str
) -> None:
    if wrong == "password":
        secret = "Wr0ng-s3cret"
        bad = pg_server.url(password=secret)
    else:  # the right password, for a database that is not there
        secret = pg_server.password
        bad = pg_server.url(database="no_such_db")
    env = env_of(bad, "nas-1", HOME=str(tmp_path))
    host = run_host({"files": clips, "actions": 2}, env)
    assert host.returncode == 0 and host.raised == [], host.stderr  # the host goes on
    assert len(host.of("file")) == len(clips)
    assert secret not in host.stderr
    for args in (["summary"], ["nodes"], ["status"], ["recent"]):
        done = cli(*args, env=env)
        assert done.returncode == 65, (args, done.stderr)
        assert f"127.0.0.1:{pg_server.port}" in done.stderr
        assert secret not in done.stderr + done.stdout
    kept = [p for p in tmp_path.rglob("*") if p.is_file()]
    for path in kept:
        assert secret not in path.read_text(errors="replace"), path


def test_two_nodes_create_the_schema_at_once(url: str, clips: list[str]) -> None:
    hosts = [start_host({"files": clips, "actions": 1}, env_of(url, node)) for node in NODES[:2]]
    said = []  # what each host printed, to show when the count is off
    for proc in hosts:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        said.append((out.splitlines()[-1:], err))
    status = ask(url, "status")
    assert status["pending_migrations"] == [] and len(status["migrations"]) == len(
        set(status["migrations"])
    )
    assert status["runs"] == 2 * len(clips), said
    assert status["recording_errors"] == 0, (status["recording_error_causes"], said)


def test_a_sqlite_history_moves_to_postgresql_and_back(
    url: str, clips: list[str], tmp_path: Path
) -> None:
    """Real media recorded into SQLite on two nodes, merged into PostgreSQL with `import`,
    then written back out with `backup`: the same answers all along."""
    files = []
    for node in NODES[:2]:
        db = tmp_path / f"{node}.db"
        spec = {"mode": "refhost", "files": clips, "out_dir": str(tmp_path / node)}
        assert run_host(spec, env_of(str(db), node)).returncode == 0
        files.append(db)
    merged = tmp_path / "merged.db"
    for db in files:
        for target in (url, str(merged)):
            done = cli("--db", target, "import", str(db), env=env_of(target, "reader"))
            assert done.returncode == 0, done.stderr
    back = tmp_path / "back.db"
    done = cli("backup", str(back), env=env_of(url, "reader"))
    assert done.returncode == 0, done.stderr
    assert sqlite3.connect(back).execute("PRAGMA application_id").fetchone()[0] != 0
    questions = [
        ["summary"],
        ["policies", "--sort", "name"],
        ["trend", "--by", "day"],
        ["nodes", "--sort", "name"],
        ["recent", "--limit", "50"],
    ]
    for question in questions:
        answers = [ask(where, *question) for where in (str(merged), url, str(back))]
        assert answers[0] == answers[1] == answers[2], question
    assert ask(url, "summary")["runs"] == 2 * len(clips)
    exports = [
        cli("export", env=env_of(where, "reader")).stdout for where in (str(merged), url, str(back))
    ]
    assert exports[0] == exports[1] == exports[2] and exports[0].count("\n") == 2 * len(clips)


def test_the_server_away_while_a_host_records_loses_nothing(
    clips: list[str], tmp_path: Path
) -> None:
    """The server stops while a node processes files and comes back after the host has ended:
    the writes were kept on the node's disk, and the next command there saves them, once."""
    with running_server("away") as server:
        url = server.url()
        first = run_host({"files": clips[:1], "actions": 2}, env_of(url, "nas-1"))
        assert first.returncode == 0 and first.done["errors"] == {}, first.stderr
        server.stop()
        host = run_host({"files": clips * 2, "actions": 2}, env_of(url, "nas-1"))
        assert host.returncode == 0 and host.raised == [], host.stderr
        assert len(host.of("file")) == len(clips) * 2
        assert max(host.hook_ms) < 1000, host.hook_ms  # refused at once, then queued
        assert server.password not in host.stderr
        writes = len(clips) * 2 * (2 + 2)  # begin, two actions, finish
        assert f"{writes} writes kept in " in host.stderr, host.stderr
        assert spool.waiting(server_url(url))
        kept = spool.spool_file(server_url(url)).read_text()
        assert server.password not in kept and "postgresql://vpo_stats:***@" in kept

        down = cli("summary", env=env_of(url, "nas-1"))  # still away: kept, and a clear error
        assert down.returncode == 65 and spool.waiting(server_url(url))
        server.start()
        summary = ask(url, "summary", node="nas-1")  # any command on that node saves them
        assert summary["runs"] == summary["succeeded"] == 1 + len(clips) * 2
        assert not spool.waiting(server_url(url))
        exported = [
            json.loads(line) for line in cli("export", env=env_of(url, "x")).stdout.splitlines()
        ]
        assert len(exported) == 1 + len(clips) * 2
        assert all(len(run["actions"]) == 2 for run in exported)
        again = ask(url, "summary", node="nas-1")
        assert again == summary
        causes = {e["cause"]: e["count"] for e in ask(url, "status")["recording_error_causes"]}
        assert causes["writes-kept"] == writes and causes["database-unwritable"] == writes
        assert ask(url, "rebuild", "--check")["differing_rows"] == 0
