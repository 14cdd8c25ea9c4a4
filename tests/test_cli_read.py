"""The reading commands against a history recorded through the reference host plus an imported
one spanning fourteen months; every expected number is worked out by tests/history.py from the
runs themselves, never by the store."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import vpo_fixtures as vf
from click.testing import CliRunner
from conftest import engine_database
from history import (
    NODES,
    POLICIES,
    Expected,
    copy_db,
    day_end,
    day_start,
    import_runs,
    invoke,
    json_of,
    make_history,
    read_raw,
)
from hostproc import cli

from vpo_stats_plugin.cli import standalone_group
from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.refhost.host import make_plugin_manager
from vpo_stats_plugin.web import create_app

UTC = timezone.utc
ANIME = POLICIES[1]
NO_FILTERS = {"since": None, "until": None, "policy": None, "node": None, "status": None}


class World:
    """A database and the runs that went into it."""

    def __init__(self, db: Path, expected: Expected, now: datetime) -> None:
        self.db, self.expected, self.now = db, expected, now
        self.edge_day = (now - timedelta(days=40)).date()


@pytest.fixture
def world(recorded: Path, tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> World:
    """Runs recorded through the reference host plus a year of imported ones, in a SQLite file
    or moved into PostgreSQL with `import SOURCE`."""
    db = copy_db(recorded, tmp_path / "history.db")
    live = read_raw(db)
    now = datetime.now(UTC)
    imported = make_history(now)
    counts = import_runs(db, imported)
    assert counts["imported"] == len(imported)
    where = engine_database(request, engine, db)
    if where != str(db):
        moved = CliRunner().invoke(standalone_group(), ["--db", where, "import", str(db)])
        assert moved.exit_code == 0, moved.output
    return World(where, Expected(live + imported, socket.gethostname(), now), now)


def filters(**given: Any) -> dict[str, Any]:
    return {**NO_FILTERS, **given}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_world_is_varied(world: World) -> None:
    runs = world.expected.runs
    assert {r["status"] for r in runs} == {"succeeded", "failed", "interrupted", "running"}
    assert {r["policy"] for r in runs} >= {*POLICIES, "english"}
    assert {r["node"] for r in runs} >= {*NODES, socket.gethostname()}
    assert {r["source"] for r in runs} == {"hooks", "vpo"}
    span = max(r["_started"] for r in runs) - min(r["_started"] for r in runs)
    assert span > timedelta(days=365)
    live = [r for r in runs if r["node"] == socket.gethostname()]
    assert sorted(r["status"] for r in live) == ["failed", "succeeded", "succeeded", "succeeded"]


def test_recorded_runs_match_the_files(world: World, recorded: Path) -> None:
    """The live part: sizes before are the real files' sizes (checked against the disk)."""
    media = recorded.parent / "media"
    for run in world.expected.runs:
        if run["node"] == socket.gethostname():
            source = Path(run["path"])
            assert source.parent == media
            assert run["size_before_bytes"] == source.stat().st_size


def test_summary_of_everything(world: World, runner: Any) -> None:
    body = json_of(invoke(runner, world.db, "summary", "--format", "json"))
    e = world.expected
    assert body == e.summary(e.runs, filters())


def _when_cases(world: World) -> list[tuple[list[str], dict[str, Any], dict[str, Any]]]:
    """(CLI arguments, select() arguments, the filters echoed back)."""
    day = world.edge_day
    other = day - timedelta(days=100)
    paris = timezone(timedelta(hours=2))
    moment = datetime(other.year, other.month, other.day, 15, 45, tzinfo=paris)
    return [
        (
            ["--since", day.isoformat()],
            {"since": day_start(day)},
            {"since": stamp(day_start(day))},
        ),
        (
            ["--until", day.isoformat()],
            {"until": day_end(day)},
            {"until": stamp(day_end(day))},
        ),
        (
            ["--since", day.isoformat(), "--until", day.isoformat()],
            {"since": day_start(day), "until": day_end(day)},
            {"since": stamp(day_start(day)), "until": stamp(day_end(day))},
        ),
        (
            ["--since", moment.isoformat(), "--until", day.isoformat() + "T12:00:00"],
            {"since": moment, "until": day_start(day) + timedelta(hours=12)},
            {"since": stamp(moment), "until": stamp(day_start(day) + timedelta(hours=12))},
        ),
        (
            ["--since", other.isoformat() + "T06:30:00Z", "--until", other.isoformat() + "T23:00"],
            {
                "since": day_start(other) + timedelta(hours=6, minutes=30),
                "until": day_start(other) + timedelta(hours=23),
            },
            {
                "since": stamp(day_start(other) + timedelta(hours=6, minutes=30)),
                "until": stamp(day_start(other) + timedelta(hours=23)),
            },
        ),
    ]


SIMPLE = [
    (["--policy", ANIME], {"policy": ANIME}),
    (["--policy", "english"], {"policy": "english"}),
    (["--node", "worker 2"], {"node": "worker 2"}),
    (["--node", "ノード3", "--status", "interrupted"], {"node": "ノード3", "status": "interrupted"}),
    *[(["--status", s], {"status": s}) for s in ("running", "succeeded", "failed", "interrupted")],
    (["--policy", "strip-foreign-audio", "--status", "failed"], {"policy": "strip-foreign-audio", "status": "failed"}),
    (["--policy", "no such policy"], {"policy": "no such policy"}),
]  # fmt: skip


@pytest.mark.parametrize("args, chosen", SIMPLE)
def test_summary_simple_filters(world: World, runner: Any, args: list[str], chosen: dict) -> None:
    body = json_of(invoke(runner, world.db, "summary", *args, "--format", "json"))
    e = world.expected
    assert body == e.summary(e.select(**chosen), filters(**chosen))


def test_summary_absolute_times(world: World, runner: Any) -> None:
    e = world.expected
    for args, chosen, echoed in _when_cases(world):
        body = json_of(invoke(runner, world.db, "summary", *args, "--format", "json"))
        assert body == e.summary(e.select(**chosen), filters(**echoed)), args
    # the two runs at the very edges of the edge day are inside it
    edge = e.select(since=day_start(world.edge_day), until=day_end(world.edge_day))
    stamps = {stamp(r["_started"])[11:] for r in edge}
    assert {"00:00:00.000000Z", "23:59:59.999999Z"} <= stamps


def relative(
    world: World, run: Callable[[], Any], ages: dict[str, timedelta]
) -> tuple[Any, dict[str, datetime]]:
    """Run a command with relative ages and return its result with the bounds it must have
    used: the bounds are taken just before and just after, and must select the same runs."""
    for _ in range(3):
        before = datetime.now(UTC)
        result = run()
        after = datetime.now(UTC)
        low = {k: before - v for k, v in ages.items()}
        high = {k: after - v for k, v in ages.items()}
        e = world.expected
        if [r["id"] for r in e.select(**low)] == [r["id"] for r in e.select(**high)]:
            return result, low
    raise AssertionError("a run sits on the boundary three times running")


@pytest.mark.parametrize(
    "age, delta",
    [
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("3mo", timedelta(days=90)),
        ("1y", timedelta(days=365)),
    ],
)
def test_summary_relative_ages(world: World, runner: Any, age: str, delta: timedelta) -> None:
    e = world.expected
    result, bounds = relative(
        world,
        lambda: invoke(runner, world.db, "summary", "--since", age, "--format", "json"),
        {"since": delta},
    )
    body = json_of(result)
    chosen = e.select(**bounds)
    assert 0 < len(chosen) < len(e.runs)
    since = body["filters"]["since"]
    assert abs(datetime.fromisoformat(since.replace("Z", "+00:00")) - bounds["since"]) < timedelta(
        seconds=30
    )
    assert body == e.summary(chosen, filters(since=since))


def test_until_relative_and_both(world: World, runner: Any) -> None:
    e = world.expected
    result, bounds = relative(
        world,
        lambda: invoke(
            runner, world.db, "summary", "--since", "3mo", "--until", "2w", "--format", "json"
        ),
        {"since": timedelta(days=90), "until": timedelta(days=14)},
    )
    body = json_of(result)
    chosen = e.select(**bounds)
    assert chosen
    body.pop("filters")
    expected = e.summary(chosen, {})
    expected.pop("filters")
    assert body == expected


@pytest.mark.parametrize("sort", ["runs", "saved", "name"])
def test_policies(world: World, runner: Any, sort: str) -> None:
    e = world.expected
    body = json_of(invoke(runner, world.db, "policies", "--sort", sort, "--format", "json"))
    assert body == e.policies(e.runs, filters(), sort)
    same = json_of(invoke(runner, world.db, "policy", "--sort", sort, "--format", "json"))
    assert same == body


def test_policies_filtered(world: World, runner: Any) -> None:
    e = world.expected
    for args, chosen, echoed in _when_cases(world):
        body = json_of(invoke(runner, world.db, "policies", *args, "--format", "json"))
        assert body == e.policies(e.select(**chosen), filters(**echoed)), args
    for args, chosen in SIMPLE:
        body = json_of(invoke(runner, world.db, "policies", *args, "--format", "json"))
        assert body == e.policies(e.select(**chosen), filters(**chosen)), args


@pytest.mark.parametrize("sort", ["runs", "saved", "name"])
def test_nodes(world: World, runner: Any, sort: str) -> None:
    e = world.expected
    body = json_of(invoke(runner, world.db, "nodes", "--sort", sort, "--format", "json"))
    assert body == e.nodes(e.runs, filters(), sort)
    assert len(body["nodes"]) >= 3, "the history has several nodes"


def test_nodes_filtered(world: World, runner: Any) -> None:
    e = world.expected
    for args, chosen, echoed in _when_cases(world):
        body = json_of(invoke(runner, world.db, "nodes", *args, "--format", "json"))
        assert body == e.nodes(e.select(**chosen), filters(**echoed)), args
    for args, chosen in SIMPLE:
        body = json_of(invoke(runner, world.db, "nodes", *args, "--format", "json"))
        assert body == e.nodes(e.select(**chosen), filters(**chosen)), args


def test_nodes_agree_with_summary(world: World, runner: Any) -> None:
    """Each node's row is the summary with that node as the filter."""
    rows = json_of(invoke(runner, world.db, "nodes", "--format", "json"))["nodes"]
    for row in rows:
        one = json_of(
            invoke(runner, world.db, "summary", "--node", row["node"], "--format", "json")
        )
        for key in ("runs", "succeeded", "failed", "interrupted", "running", "saved_bytes"):
            assert row[key] == one[key], (row["node"], key)
    total = json_of(invoke(runner, world.db, "summary", "--format", "json"))
    assert sum(r["runs"] for r in rows) == total["runs"]


def test_nodes_table_and_csv(world: World, runner: Any) -> None:
    e = world.expected.nodes(world.expected.runs, filters())["nodes"]
    table = invoke(runner, world.db, "nodes")
    assert table.exit_code == 0, table.output
    for row in e:
        assert row["node"] in table.output
    lines = invoke(runner, world.db, "nodes", "--format", "csv").output.splitlines()
    assert lines[0].split(",")[:3] == ["node", "runs", "succeeded"]
    assert len(lines) == 1 + len(e)
    empty = invoke(runner, world.db, "nodes", "--policy", "no such policy", "--format", "csv")
    assert empty.output.splitlines() == [lines[0]], "an empty answer still has its header"


@pytest.mark.parametrize("name", ["english", *POLICIES[:3]])
def test_one_policy(world: World, runner: Any, name: str) -> None:
    e = world.expected
    body = json_of(invoke(runner, world.db, "policy", name, "--format", "json"))
    assert body == e.policy(name, e.runs, filters())
    assert body["actions"], "each policy did something"
    failed = json_of(
        invoke(runner, world.db, "policy", name, "--status", "failed", "--format", "json")
    )
    assert failed == e.policy(name, e.select(status="failed"), filters(status="failed"))
    day = world.edge_day
    args = ["--since", (day - timedelta(days=200)).isoformat(), "--until", day.isoformat()]
    ranged = invoke(runner, world.db, "policy", name, *args, "--format", "json")
    chosen = e.select(since=day_start(day - timedelta(days=200)), until=day_end(day))
    echoed = filters(since=stamp(day_start(day - timedelta(days=200))), until=stamp(day_end(day)))
    if any(r["policy"] == name for r in chosen):
        assert json_of(ranged) == e.policy(name, chosen, echoed)
    else:  # the recorded policy only has today's runs
        assert name == "english" and ranged.exit_code == 64


def test_policy_without_runs_is_64(world: World, runner: Any) -> None:
    result = invoke(runner, world.db, "policy", "nothing by that name")
    assert result.exit_code == 64
    assert "nothing by that name" in result.stderr and "vpo-stats policies" in result.stderr
    assert result.stdout == ""
    # a policy that has runs, but none in the filtered range
    old = invoke(runner, world.db, "policy", "english", "--until", "2000-01-01")
    assert old.exit_code == 64 and "with these filters" in old.stderr


def test_policy_with_a_contradicting_filter_is_usage(world: World, runner: Any) -> None:
    result = invoke(runner, world.db, "policy", "english", "--policy", ANIME)
    assert result.exit_code == 2 and "'--policy'" in result.stderr


@pytest.mark.parametrize("limit", [1, 7, 20, 1000])
def test_recent(world: World, runner: Any, limit: int) -> None:
    e = world.expected
    body = json_of(invoke(runner, world.db, "recent", "--limit", str(limit), "--format", "json"))
    assert [r["id"] for r in body["runs"]] == e.recent_ids(e.runs, limit)
    assert body["filters"] == filters()
    for run in body["runs"][:5]:
        assert run == {
            k: v for k, v in e.run_json(run["id"]).items() if k not in ("actions", "phases")
        }


def test_recent_default_limit_and_filters(world: World, runner: Any) -> None:
    e = world.expected
    body = json_of(invoke(runner, world.db, "recent", "--format", "json"))
    assert len(body["runs"]) == 20
    for args, chosen in SIMPLE:
        body = json_of(
            invoke(runner, world.db, "recent", *args, "--limit", "50", "--format", "json")
        )
        assert [r["id"] for r in body["runs"]] == e.recent_ids(e.select(**chosen), 50), args
        assert body["filters"] == filters(**chosen)
    for args, chosen, echoed in _when_cases(world):
        body = json_of(
            invoke(runner, world.db, "recent", *args, "--limit", "1000", "--format", "json")
        )
        assert [r["id"] for r in body["runs"]] == e.recent_ids(e.select(**chosen), 1000), args
        assert body["filters"] == filters(**echoed)


def test_file_history(world: World, runner: Any) -> None:
    e = world.expected
    counts: dict[str, int] = {}
    for run in e.runs:
        counts[run["path"]] = counts.get(run["path"], 0) + 1
    paths = sorted(counts, key=lambda p: -counts[p])[:3]
    paths += [p for p in counts if "Wire" in p or "進撃" in p or "アニメ" in p]
    for path in paths:
        body = json_of(invoke(runner, world.db, "file", path, "--format", "json"))
        assert body["path"] == path and body["filters"] == filters()
        assert [r["id"] for r in body["runs"]] == e.file_ids(e.runs, path)
        starts = [r["started_at"] for r in body["runs"]]
        assert starts == sorted(starts)


def test_file_by_output_path_and_relative_path(
    world: World, runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = world.expected
    moved = next(r for r in e.runs if r.get("output_path") and r["output_path"] != r["path"])
    body = json_of(invoke(runner, world.db, "file", moved["output_path"], "--format", "json"))
    assert moved["id"] in [r["id"] for r in body["runs"]]
    live = next(r for r in e.runs if r["node"] == socket.gethostname())
    source = Path(live["path"])
    monkeypatch.chdir(source.parent)
    body = json_of(invoke(runner, world.db, "file", source.name, "--format", "json"))
    assert body["path"] == str(source)
    assert [r["id"] for r in body["runs"]] == e.file_ids(e.runs, str(source))


def test_file_without_runs_is_64(world: World, runner: Any) -> None:
    result = invoke(runner, world.db, "file", "/nowhere/nothing.mkv")
    assert result.exit_code == 64 and "/nowhere/nothing.mkv" in result.stderr
    path = world.expected.runs[0]["path"]
    filtered = invoke(
        runner, world.db, "file", path, "--since", "2000-01-01", "--until", "2000-01-02"
    )
    assert filtered.exit_code == 64


def test_detail_by_id_and_prefix(world: World, runner: Any) -> None:
    e = world.expected
    picks = [r for r in e.runs if r["actions"] and r["phases"]][:3]
    picks += [r for r in e.runs if r["status"] == "interrupted" and r["node"] == NODES[2]][:1]
    picks += [r for r in e.runs if r["node"] == socket.gethostname()]
    for run in picks:
        whole = json_of(invoke(runner, world.db, "detail", run["id"], "--format", "json"))
        assert whole == e.run_json(run["id"])
        prefix = json_of(
            invoke(runner, world.db, "detail", run["id"][:8].upper(), "--format", "json")
        )
        assert prefix == whole


def test_detail_unknown_short_and_ambiguous(world: World, runner: Any, tmp_path: Path) -> None:
    missing = invoke(runner, world.db, "detail", "ffffffff-0000-4000-8000-000000000000")
    assert missing.exit_code == 64 and "vpo-stats recent" in missing.stderr
    short = invoke(runner, world.db, "detail", "abc")
    assert short.exit_code == 2 and "RUN_ID" in short.stderr and "8" in short.stderr
    twins = [dict(world.expected.runs[0]), dict(world.expected.runs[1])]
    twins[0]["id"] = "abcdef12-0000-4000-8000-000000000001"
    twins[1]["id"] = "abcdef12-0000-4000-8000-000000000002"
    import_runs(world.db, [{k: v for k, v in t.items() if not k.startswith("_")} for t in twins])
    both = invoke(runner, world.db, "detail", "abcdef12")
    assert both.exit_code == 2 and "several runs" in both.stderr
    one = json_of(
        invoke(
            runner, world.db, "detail", "abcdef12-0000-4000-8000-000000000002", "--format", "json"
        )
    )
    assert one["id"].endswith("2")


@pytest.mark.parametrize("by", ["day", "week", "month"])
def test_trend(world: World, runner: Any, by: str) -> None:
    e = world.expected
    body = json_of(invoke(runner, world.db, "trend", "--by", by, "--format", "json"))
    assert body == e.trend(e.runs, filters(), by)
    if by == "month":
        assert len(body["points"]) >= 13
    if by == "week":
        assert all(datetime.fromisoformat(p["period"]).weekday() == 0 for p in body["points"])


def test_trend_filtered(world: World, runner: Any) -> None:
    e = world.expected
    for args, chosen, echoed in _when_cases(world):
        for by in ("day", "week", "month"):
            body = json_of(invoke(runner, world.db, "trend", "--by", by, *args, "--format", "json"))
            assert body == e.trend(e.select(**chosen), filters(**echoed), by), (args, by)
    for args, chosen in SIMPLE:
        body = json_of(
            invoke(runner, world.db, "trend", "--by", "month", *args, "--format", "json")
        )
        assert body == e.trend(e.select(**chosen), filters(**chosen), "month"), args
    result, bounds = relative(
        world,
        lambda: invoke(runner, world.db, "trend", "--since", "2w", "--format", "json"),
        {"since": timedelta(weeks=2)},
    )
    body = json_of(result)
    assert body["points"] == e.trend(e.select(**bounds), {}, "day")["points"]


def test_default_trend_is_by_day(world: World, runner: Any) -> None:
    body = json_of(invoke(runner, world.db, "trend", "--format", "json"))
    assert body["by"] == "day"


# ------------------------------------------------------------------------------------ csv


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _flat(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = _as_csv(value)
    return out


def test_csv_summary_is_one_flat_row(world: World, runner: Any) -> None:
    e = world.expected
    result = invoke(runner, world.db, "summary", "--policy", ANIME, "--format", "csv")
    assert result.exit_code == 0
    (row,) = _csv(result.stdout)
    expected = _flat(e.summary(e.select(policy=ANIME), filters(policy=ANIME)))
    assert row == expected
    assert {"tracks_removed_audio", "duration_seconds_total", "filters_policy"} <= set(row)
    assert "\x1b" not in result.stdout and int(row["size_before_bytes"]) > 10**9


def test_csv_lists(world: World, runner: Any) -> None:
    e = world.expected
    rows = _csv(invoke(runner, world.db, "policies", "--format", "csv").stdout)
    assert rows == [_flat(p) for p in e.policies(e.runs, filters())["policies"]]
    rows = _csv(invoke(runner, world.db, "trend", "--by", "week", "--format", "csv").stdout)
    assert rows == [_flat(p) for p in e.trend(e.runs, filters(), "week")["points"]]
    rows = _csv(invoke(runner, world.db, "recent", "--limit", "30", "--format", "csv").stdout)
    expected = [e.run_json(i) for i in e.recent_ids(e.runs, 30)]
    assert rows == [
        _flat({k: v for k, v in r.items() if k not in ("actions", "phases")}) for r in expected
    ]
    # a quoted, comma'd path survives
    wire = next(r for r in e.runs if "Wire" in r["path"])
    rows = _csv(invoke(runner, world.db, "file", wire["path"], "--format", "csv").stdout)
    assert {row["path"] for row in rows} == {wire["path"]}
    one = _csv(invoke(runner, world.db, "policy", "english", "--format", "csv").stdout)
    assert json.loads(one[0]["actions"]) == e.policy("english", e.runs, {})["actions"]


def test_empty_csv_keeps_its_header(world: World, runner: Any) -> None:
    for command in (["recent"], ["policies"], ["trend"]):
        full = invoke(runner, world.db, *command, "--format", "csv").stdout.splitlines()[0]
        empty = invoke(runner, world.db, *command, "--until", "2000-01-01", "--format", "csv")
        assert empty.exit_code == 0 and empty.stdout.splitlines() == [full], command


# --------------------------------------------------------------------------------- tables


def test_summary_table_reads_well(world: World, runner: Any) -> None:
    e = world.expected
    result = invoke(runner, world.db, "summary")
    assert result.exit_code == 0 and "\x1b" not in result.stdout
    text = result.stdout
    expect = e.summary(e.runs, {})
    assert f"runs              {expect['runs']} (" in text
    assert f"failed            {expect['failed']}\n" in text
    assert "GiB" in text and "audio, " in text and "(mean " in text
    coloured = invoke(runner, world.db, "summary", color=True)
    assert "\x1b[31m" in coloured.stdout  # failures in red on a terminal


def _columns_line_up(lines: list[str]) -> None:
    """Every row has its cells where the header's dashes say (wide characters count two)."""
    from vpo_stats_plugin.cli.output import _width

    dashes = lines[1]
    starts = [i for i, ch in enumerate(dashes) if ch == "-" and (i == 0 or dashes[i - 1] == " ")]
    for line in lines[2:]:
        # the display position of each column start must be a space-to-text boundary or text
        cells = []
        position = 0
        for ch in line:
            cells.append(position)
            position += _width(ch)
        for start in starts[1:]:
            index = next((i for i, p in enumerate(cells) if p >= start), None)
            if index is None:
                break
            assert cells[index] == start, (line, start)
            assert line[index - 1] == " ", (line, start)


def test_tables_line_up(world: World, runner: Any) -> None:
    for args in (["policies"], ["recent", "--limit", "40"], ["trend", "--by", "month"]):
        result = invoke(runner, world.db, *args)
        assert result.exit_code == 0 and "\x1b" not in result.stdout
        lines = [line for line in result.stdout.splitlines() if line][:42]
        table = lines[
            : next((i for i, line in enumerate(lines) if line.startswith("errors:")), len(lines))
        ]
        _columns_line_up(table)
    policies = invoke(runner, world.db, "policies").stdout
    assert ANIME in policies and "(none)" in policies and "GiB" in policies


def test_recent_table_shows_failures_and_nodes(world: World, runner: Any) -> None:
    text = invoke(runner, world.db, "recent", "--status", "failed", "--limit", "5").stdout
    assert "errors:" in text and "données corrompues" in text
    assert "node" in text.splitlines()[0]
    one_node = invoke(runner, world.db, "recent", "--node", "nas-1").stdout
    assert "node" not in one_node.splitlines()[0]


def test_detail_table(world: World, runner: Any) -> None:
    e = world.expected
    run = next(
        r
        for r in e.runs
        if r["status"] == "failed" and r["actions"] and r["phases"] and r["node"] in NODES
    )
    text = invoke(runner, world.db, "detail", run["id"]).stdout
    assert run["id"] in text and "actions" in text and "phases" in text
    assert "Invalid EBML" in text  # every line of a multi-line error
    assert "ffmpeg exited with 1:" in text


def test_empty_answers(tmp_path: Path, runner: Any) -> None:
    from vpo_stats_plugin.store import open_store

    db = tmp_path / "empty.db"
    open_store(db).close()  # a database with no runs yet (where there is none: exit 66)
    for args in (["summary"], ["policies"], ["recent"], ["trend"], ["policy"]):
        result = invoke(runner, db, *args)
        assert result.exit_code == 0, args
        assert "No runs" in result.stdout
        body = json_of(invoke(runner, db, *args, "--format", "json"))
        assert body.get("runs", 0) in (0, []) and body.get("points", []) == []
    filtered = invoke(runner, db, "summary", "--policy", "x")
    assert "No runs match these filters" in filtered.stdout


def test_hostile_strings_stay_off_the_terminal(tmp_path: Path, runner: Any) -> None:
    """Escape sequences stored in names never reach a terminal raw; json and csv keep them."""
    db = tmp_path / "hostile.db"
    runs = make_history(datetime.now(UTC), count=3, seed=9)[:1]
    evil = "\x1b]0;pwned\x07\x1b[2Jred\nline"
    runs[0].update(policy=evil, path="/m/" + evil + ".mkv", status="succeeded")
    import_runs(db, runs)
    for args in (
        ["recent"],
        ["policies"],
        ["detail", runs[0]["id"]],
        ["summary", "--policy", evil],
    ):
        result = invoke(runner, db, *args, color=True)
        assert result.exit_code == 0
        assert (
            "\x1b]" not in result.stdout
            and "\x1b[2J" not in result.stdout
            and "\x07" not in result.stdout
        )
        assert "\\x1b]0;pwned" in result.stdout, args
    body = json_of(invoke(runner, db, "recent", "--format", "json"))
    assert body["runs"][0]["policy"] == evil
    (row,) = _csv(invoke(runner, db, "recent", "--format", "csv").stdout)
    assert row["policy"] == evil


def test_no_color_is_respected(world: World, runner: Any) -> None:
    coloured = invoke(runner, world.db, "recent", color=True)
    assert "\x1b[" in coloured.stdout
    plain = invoke(runner, world.db, "recent", color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain.stdout and plain.stdout == invoke(runner, world.db, "recent").stdout


def test_an_empty_name_is_no_filter(world: World, runner: Any) -> None:
    """As an empty --since is: the same answer everywhere, not a policy called ''."""
    e = world.expected
    for command in (["summary"], ["recent", "--limit", "1000"], ["trend"]):
        body = json_of(
            invoke(runner, world.db, *command, "--policy", "", "--node", "", "--format", "json")
        )
        assert body == json_of(invoke(runner, world.db, *command, "--format", "json"))
    assert json_of(invoke(runner, world.db, "summary", "--policy", "", "--format", "json"))[
        "runs"
    ] == len(e.runs)


# --- names that are not UTF-8 -----------------------------------------------------------------


async def test_a_name_that_is_not_utf8_and_its_escaped_look_alike_stay_apart(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    """Two real files: one named by the bytes bad\\xff\\xfe (not UTF-8), one whose name is the
    text those bytes are shown as. Two files in storage, each found by its own name on the
    command line, by the path the API shows, and again after export and import."""
    raw = os.fsdecode(os.fsencode(tmp_path) + b"/bad\xff\xfe.mkv")
    literal = str(tmp_path / "bad\\xff\\xfe.mkv")
    for n, name in enumerate((raw, literal)):
        with open(os.fsencode(name), "wb") as file:
            file.write(b"\0" * (1000 + n))
    monkeypatch.setenv("VPO_STATS_PROBE_TRACKS", "false")
    pm = make_plugin_manager()  # the plugin through its installed entry point
    for job_id, name in (("raw", raw), ("literal", literal)):
        job = {"id": job_id, "path": name, "policy": "p"}
        pm.hook.vpo_before_file(job=job)
        pm.hook.vpo_after_file(job=job, result={"success": True})

    def file_runs(db: Path, name: str) -> dict[str, Any]:
        done = cli("--db", str(db), "file", name, "--format", "json")  # argv bytes as given
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def check(db: Path) -> dict[str, dict[str, Any]]:
        summary = json.loads(cli("--db", str(db), "summary", "--format", "json").stdout)
        assert (summary["runs"], summary["files"]) == (2, 2)
        bodies = {name: file_runs(db, name) for name in (raw, literal)}
        for name, body in bodies.items():
            (run,) = body["runs"]
            assert run["size_before_bytes"] == os.stat(os.fsencode(name)).st_size
        assert bodies[raw]["path"] == f"{tmp_path}/bad\\xff\\xfe.mkv"  # as shown until now
        return bodies

    bodies = check(db_path)
    shown = cli("--db", str(db_path), "file", f"{tmp_path}/bad\\xfe.mkv")  # no such file
    assert shown.returncode == 64 and "not UTF-8: give its real name" in shown.stderr
    client = await aiohttp_client(
        create_app(load_settings(overrides={"database": (str(db_path), "test")}))
    )
    for body in bodies.values():  # the path as the answers show it finds the same runs
        response = await client.get("/api/files", params={"path": body["path"]})
        assert response.status == 200
        assert await response.json() == body

    dump, copy = tmp_path / "runs.ndjson", tmp_path / "copy.db"
    assert cli("--db", str(db_path), "export", "--output", str(dump)).returncode == 0
    assert cli("--db", str(copy), "import", str(dump)).returncode == 0
    assert check(copy) == bodies


def test_import_vpo_stores_a_path_as_a_hook_stores_the_same_file(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VPO's path is a name: its run and a hook's run of that file are one file's runs, and a
    file named by undecodable bytes that VPO's text looks like is another."""
    literal = "/media/bad\\xff.mkv"
    raw = os.fsdecode(b"/media/bad\xff.mkv")
    (row,) = vf.make_rows(1, 27)
    vpo = vf.build_vpo_db(tmp_path / "library.db", 27, [dataclasses.replace(row, path=literal)])
    monkeypatch.setenv("VPO_STATS_PROBE_TRACKS", "false")
    pm = make_plugin_manager()
    for job_id, name in (("literal", literal), ("raw", raw)):
        job = {"id": job_id, "path": name}
        pm.hook.vpo_before_file(job=job)
        pm.hook.vpo_after_file(job=job, result={"success": True})
    assert cli("--db", str(db_path), "import-vpo", str(vpo)).returncode == 0

    def sources(name: str) -> list[str]:
        done = cli("--db", str(db_path), "file", name, "--format", "json")
        assert done.returncode == 0, done.stderr
        return sorted(run["source"] for run in json.loads(done.stdout)["runs"])

    assert sources(literal) == ["hooks", "vpo"]
    assert sources(raw) == ["hooks"]
