"""The JSON API on a real aiohttp server on loopback, over a history recorded in real SQLite
or on the suite's PostgreSQL server (each test that uses ``db_path`` runs on both)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from click.testing import CliRunner
from conftest import engine_db_path
from hostproc import record_files
from web_history import (
    HOSTILE,
    POLICIES,
    check_summary,
    expected_summary,
    make_history,
    record,
    stamp,
)

import vpo_stats_plugin.web
from vpo_stats_plugin.cli import stats as cli_main
from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.purging import Token, set_digest
from vpo_stats_plugin.refhost.web import make_host_app
from vpo_stats_plugin.web import create_app

UTC = timezone.utc

# ------------------------------------------------------------------ fixtures


db_path = pytest.fixture(engine_db_path, name="db_path")  # both engines


@pytest.fixture
def history(db_path: Path) -> list[dict[str, Any]]:
    """The recorded history (also in the database at ``db_path``)."""
    runs = make_history()
    record(db_path, runs)
    return runs


@pytest.fixture
async def client(aiohttp_client: Any, db_path: Path) -> Any:
    """A client of the sub-app served by a real aiohttp server on 127.0.0.1."""
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    return await aiohttp_client(create_app(settings))


async def get_json(client: Any, url: str, status: int = 200, **kwargs: Any) -> Any:
    """GET ``url``, check the status and that the answer is JSON, return the body."""
    response = await client.get(url, **kwargs)
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    assert "Traceback" not in text
    return json.loads(text)


# ------------------------------------------------------------------ reading routes


async def test_empty_database_answers_zeros(client: Any) -> None:
    body = await get_json(client, "/api/summary")
    assert body["runs"] == 0 and body["saved_bytes"] == 0 and body["first_run_at"] is None
    assert (await get_json(client, "/api/policies"))["policies"] == []
    assert (await get_json(client, "/api/nodes"))["nodes"] == []
    assert (await get_json(client, "/api/recent"))["runs"] == []
    assert (await get_json(client, "/api/trend"))["points"] == []
    assert (await get_json(client, "/api/codecs"))["transitions"] == []


async def test_summary_matches_the_recorded_runs(client: Any, history: list[dict]) -> None:
    body = await get_json(client, "/api/summary")
    check_summary(body, history)
    assert body["filters"] == dict.fromkeys(("since", "until", "policy", "node", "status"))


@pytest.mark.parametrize(
    "query, keep",
    [
        ({"policy": "hevc-everything"}, lambda r: r["policy"] == "hevc-everything"),
        ({"policy": HOSTILE}, lambda r: r["policy"] == HOSTILE),
        ({"node": "node-a"}, lambda r: r["node"] == "node-a"),
        ({"status": "failed"}, lambda r: r["status"] == "failed"),
        # a bare --until date includes that whole day; since is inclusive
        (
            {"since": "2026-03-05", "until": "2026-03-09"},
            lambda r: "2026-03-05" <= r["started_at"][:10] <= "2026-03-09",
        ),
        (
            {"since": "2026-03-05T12:00:00Z", "until": "2026-03-09T08:30:00+02:00"},
            lambda r: "2026-03-05T12:00:00" <= r["started_at"] <= "2026-03-09T06:30:00.000000Z",
        ),
        (
            {"since": "2026-03-04", "policy": "strip-foreign-audio", "node": "node-b"},
            lambda r: (
                r["started_at"] >= "2026-03-04"
                and r["policy"] == "strip-foreign-audio"
                and r["node"] == "node-b"
            ),
        ),
    ],
)
async def test_summary_filters(client: Any, history: list[dict], query: dict, keep: Any) -> None:
    runs = [r for r in history if keep(r)]
    assert runs, "the filter should select something"
    body = await get_json(client, "/api/summary", params=query)
    check_summary(body, runs)


async def test_policies_rows_and_sorts(client: Any, history: list[dict]) -> None:
    body = await get_json(client, "/api/policies")
    rows = {row["policy"]: row for row in body["policies"]}
    assert set(rows) == set(POLICIES)
    for name in POLICIES:
        runs = [r for r in history if r["policy"] == name]
        want = expected_summary(runs)
        row = rows[name]
        assert row["runs"] == len(runs)
        assert row["failed"] == want["failed"] and row["succeeded"] == want["succeeded"]
        assert row["saved_bytes"] == want["saved_bytes"]
        assert row["last_run_at"] == want["last_run_at"]
    by_runs = [r["runs"] for r in body["policies"]]
    assert by_runs == sorted(by_runs, reverse=True)
    saved = (await get_json(client, "/api/policies", params={"sort": "saved"}))["policies"]
    assert [r["saved_bytes"] for r in saved] == sorted(
        (r["saved_bytes"] for r in saved), reverse=True
    )
    named = (await get_json(client, "/api/policies", params={"sort": "name"}))["policies"]
    assert [r["policy"] for r in named] == sorted(POLICIES)


async def test_one_policy_with_its_actions(client: Any, history: list[dict]) -> None:
    from urllib.parse import quote

    for name in POLICIES:
        body = await get_json(client, "/api/policies/" + quote(name, safe=""))
        runs = [r for r in history if r["policy"] == name]
        assert body["policy"] == name and body["runs"] == len(runs)
        counts: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for run in runs:
            for action in run["actions"]:
                counts[action["type"]] += 1
                failed[action["type"]] += not action["success"]
        assert {a["type"]: (a["count"], a["failed"]) for a in body["actions"]} == {
            t: (counts[t], failed[t]) for t in counts
        }
    missing = await get_json(client, "/api/policies/no-such-policy", status=404)
    assert "no-such-policy" in missing["error"]


async def test_one_policy_by_query_parameter_even_dot_names(client: Any, db_path: Path) -> None:
    """``/api/policy?name=``: a path loses "." and ".." (clients collapse them), a query does not."""
    names = [".", "..", "a/b", HOSTILE]
    runs = [{**r, "policy": names[i % 4]} for i, r in enumerate(make_history(24)[:24])]
    record(db_path, runs)
    for name in names:
        body = await get_json(client, "/api/policy", params={"name": name, "since": "2020-01-01"})
        assert body["policy"] == name and body["runs"] == 6
        if name not in (".", ".."):
            path = "/api/policies/" + quote(name, safe="")
            assert body == await get_json(client, path, params={"since": "2020-01-01"})
    assert "name" in (await get_json(client, "/api/policy", status=400))["error"]
    missing = await get_json(client, "/api/policy", params={"name": "..."}, status=404)
    assert "'...'" in missing["error"]


@pytest.mark.parametrize("url", ["/api/policies/..x", "/api/policy?name=..x"])
async def test_a_contradicting_policy_filter_names_the_query_parameter(
    client: Any, history: list[dict], url: str
) -> None:
    body = await get_json(client, url, params={"policy": "hevc-everything"}, status=400)
    assert "query parameter policy='hevc-everything'" in body["error"]
    assert "--policy" not in body["error"]  # the web's words, not the CLI's


@pytest.mark.parametrize(
    "url, params, route",
    [
        ("/api/policy", {"name": "no-such-policy"}, "api/policies"),
        ("/api/runs/0123456789abcdef", {}, "api/recent"),
        ("/api/files", {"path": "/no/such/file.mkv"}, "api/recent"),
    ],
)
async def test_not_found_points_to_a_route_not_a_command(
    client: Any, history: list[dict], url: str, params: dict, route: str
) -> None:
    body = await get_json(client, url, params=params, status=404)
    assert f"GET {route} " in body["error"]
    assert "vpo-stats" not in body["error"] and "vpo stats" not in body["error"]


async def test_recent_newest_first_with_limit_and_status(client: Any, history: list[dict]) -> None:
    body = await get_json(client, "/api/recent", params={"limit": "5"})
    newest = sorted(history, key=lambda r: r["started_at"], reverse=True)[:5]
    assert [r["id"] for r in body["runs"]] == [r["id"] for r in newest]
    assert len((await get_json(client, "/api/recent"))["runs"]) == 20  # the default
    failed = (await get_json(client, "/api/recent", params={"status": "failed", "limit": "1000"}))[
        "runs"
    ]
    assert {r["id"] for r in failed} == {r["id"] for r in history if r["status"] == "failed"}
    assert all(r["error"] for r in failed)


@pytest.mark.parametrize("by", ["day", "week", "month"])
async def test_trend_points_add_up(client: Any, history: list[dict], by: str) -> None:
    body = await get_json(client, "/api/trend", params={"by": by})
    assert body["by"] == by
    periods = [p["period"] for p in body["points"]]
    assert periods == sorted(periods)

    def period(run: dict) -> str:
        day = date.fromisoformat(run["started_at"][:10])
        if by == "week":
            return (day - timedelta(days=day.weekday())).isoformat()
        return day.isoformat()[:7] if by == "month" else day.isoformat()

    grouped: dict[str, list] = defaultdict(list)
    for run in history:
        grouped[period(run)].append(run)
    assert periods == sorted(grouped)
    for point in body["points"]:
        want = expected_summary(grouped[point["period"]])
        assert (point["runs"], point["failed"], point["saved_bytes"]) == (
            want["runs"],
            want["failed"],
            want["saved_bytes"],
        )
        if by == "week":
            assert date.fromisoformat(point["period"]).weekday() == 0


async def test_file_history_oldest_first(client: Any, history: list[dict]) -> None:
    path = "/media/show/Episode 03.mkv"
    body = await get_json(client, "/api/files", params={"path": path})
    want = sorted((r for r in history if r["path"] == path), key=lambda r: r["started_at"])
    assert len(want) == 2
    assert body["path"] == path and [r["id"] for r in body["runs"]] == [r["id"] for r in want]
    error = await get_json(client, "/api/files", params={"path": "/nowhere.mkv"}, status=404)
    assert "/nowhere.mkv" in error["error"]
    error = await get_json(client, "/api/files", status=400)
    assert "path" in error["error"]


async def test_run_detail_by_id_and_prefix(client: Any, history: list[dict]) -> None:
    failed = next(r for r in history if r["status"] == "failed")
    body = await get_json(client, f"/api/runs/{failed['id']}")
    assert body["id"] == failed["id"] and body["error"] == failed["error"]
    assert body["actions"] == failed["actions"]
    assert body["phases"] == failed["phases"]
    assert body["saved_bytes"] == (
        None
        if failed["size_after_bytes"] is None
        else failed["size_before_bytes"] - failed["size_after_bytes"]
    )
    by_prefix = await get_json(client, f"/api/runs/{failed['id'][:8]}")
    assert by_prefix["id"] == failed["id"]
    await get_json(client, "/api/runs/00000000-0000-4000-8000-000000000000", status=404)
    assert "8" in (await get_json(client, "/api/runs/abc", status=400))["error"]


async def test_ambiguous_run_prefix_is_400(client: Any, db_path: Path) -> None:
    runs = make_history(count=2)[:2]
    runs[0]["id"] = "abcdef12-0000-4000-8000-000000000001"
    runs[1]["id"] = "abcdef12-0000-4000-8000-000000000002"
    record(db_path, runs)
    body = await get_json(client, "/api/runs/abcdef12", status=400)
    assert "several" in body["error"]
    assert (await get_json(client, f"/api/runs/{runs[1]['id']}"))["id"] == runs[1]["id"]


async def test_codec_transitions(client: Any, history: list[dict]) -> None:
    body = await get_json(client, "/api/codecs")
    want: Counter[tuple] = Counter()
    for run in history:
        if run["status"] == "succeeded" and run.get("video_source_codec"):
            target = None if run["video_transcode_skipped"] else run["video_target_codec"]
            want[(run["video_source_codec"], target)] += 1
    assert {(t["source"], t["target"]): t["runs"] for t in body["transitions"]} == dict(want)
    assert ("h264", "hevc") in want and ("h264", None) in want


# ------------------------------------------------------------------ the CLI's json is the body


@pytest.mark.parametrize(
    "cli_args, url, query",
    [
        (["summary"], "/api/summary", {}),
        (
            ["summary", "--since", "2026-03-05", "--until", "2026-03-10"],
            "/api/summary",
            {"since": "2026-03-05", "until": "2026-03-10"},
        ),
        (
            ["policies", "--sort", "saved", "--node", "node-a"],
            "/api/policies",
            {"sort": "saved", "node": "node-a"},
        ),
        (["nodes"], "/api/nodes", {}),
        (
            ["nodes", "--sort", "saved", "--policy", "hevc-everything", "--since", "2026-03-06"],
            "/api/nodes",
            {"sort": "saved", "policy": "hevc-everything", "since": "2026-03-06"},
        ),
        (["policy", "hevc-everything"], "/api/policies/hevc-everything", {}),
        (
            ["recent", "--limit", "7", "--status", "succeeded"],
            "/api/recent",
            {"limit": "7", "status": "succeeded"},
        ),
        (["trend", "--by", "week"], "/api/trend", {"by": "week"}),
        (
            ["file", "/media/show/Episode 05.mkv"],
            "/api/files",
            {"path": "/media/show/Episode 05.mkv"},
        ),
    ],
)
async def test_bodies_equal_the_cli_json(
    client: Any,
    history: list[dict],
    db_path: Path,
    runner: Any,
    cli_args: list,
    url: str,
    query: dict,
) -> None:
    result = runner.invoke(
        cli_main,
        ["--db", str(db_path), *cli_args, "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == await get_json(client, url, params=query)


async def test_detail_equals_the_cli_json(
    client: Any, history: list[dict], db_path: Path, runner: Any
) -> None:
    run_id = history[10]["id"]
    result = runner.invoke(
        cli_main,
        ["--db", str(db_path), "detail", run_id, "--format", "json"],
    )
    assert json.loads(result.stdout) == await get_json(client, f"/api/runs/{run_id}")


# ------------------------------------------------------------------ errors: 400 / 404 / 405 / 500


BAD_QUERIES = [
    ("/api/recent", {"limit": "0"}, "limit"),
    ("/api/recent", {"limit": "1001"}, "limit"),
    ("/api/recent", {"limit": "ten"}, "limit"),
    ("/api/recent", {"limit": "1.5"}, "limit"),
    ("/api/recent", {"limit": "5_0"}, "limit"),
    ("/api/trend", {"by": "year"}, "by"),
    ("/api/trend", {"by": ""}, "by"),
    ("/api/recent", {"limit": ""}, "limit"),
    ("/api/policies", {"sort": "size"}, "sort"),
    ("/api/nodes", {"sort": "size"}, "sort"),
    ("/api/nodes", {"status": "done"}, "status"),
    ("/api/summary", {"status": "done"}, "status"),
    ("/api/summary", {"since": "yesterday"}, "since"),
    ("/api/summary", {"until": "2026-13-40"}, "until"),
    ("/api/codecs", {"since": "soon"}, "since"),
    ("/api/summary", {"since": "99999999999y"}, "since"),
    ("/api/summary", {"until": "5000y"}, "until"),
    ("/api/files", {"path": ""}, "path"),
    ("/api/files", {"path": "/x.mkv", "status": "nope"}, "status"),
]


@pytest.mark.parametrize("url, query, param", BAD_QUERIES)
async def test_bad_parameters_are_400_naming_them(
    client: Any, history: list[dict], url: str, query: dict, param: str
) -> None:
    body = await get_json(client, url, params=query, status=400)
    assert set(body) == {"error"}
    assert param in body["error"]


async def test_a_parameter_given_twice_is_400(client: Any) -> None:
    body = await get_json(client, "/api/recent?limit=3&limit=4", status=400)
    assert "limit" in body["error"]


@pytest.mark.parametrize(
    "method, url, status",
    [
        ("GET", "/api/nothing-here", 404),
        ("GET", "/static/nothing.js", 404),
        ("GET", "/static/..%2F__init__.py", 404),
        ("GET", "/static/%2e%2e/%2e%2e/errors.py", 404),
        ("GET", "/api/runs/ffffffff", 404),
        ("GET", "/api/runs/fffffff", 400),
        ("GET", "/api/runs/ffff%20ffff", 400),
        ("GET", "/api/policies/%3Cscript%3E", 404),
        ("POST", "/api/summary", 405),
        ("GET", "/api/purge", 405),
        ("DELETE", "/api/runs/abc", 405),
    ],
)
async def test_error_shape_everywhere(client: Any, method: str, url: str, status: int) -> None:
    response = await client.request(method, url)
    assert response.status == status
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]


async def test_unusable_database_is_500_without_traceback(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database at all" * 100)
    settings = load_settings(overrides={"database": (str(broken), "test")})
    client = await aiohttp_client(create_app(settings))
    body = await get_json(client, "/api/summary", status=500)
    assert str(broken) in body["error"]
    assert broken.read_bytes().startswith(b"this is not")  # never touched


async def test_unexpected_exception_is_a_plain_500(
    aiohttp_client: Any, db_path: Path, caplog: Any
) -> None:
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    app = create_app(settings)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail /etc/passwd")

    app.router.add_get("/api/broken", broken)
    client = await aiohttp_client(app)
    body = await get_json(client, "/api/broken", status=500)
    assert "secret" not in body["error"] and "Traceback" not in body["error"]
    assert "secret internal detail" in caplog.text  # the server log keeps it


# ------------------------------------------------------------------ purge


async def post(
    client: Any, body: Any, status: int = 200, headers: dict | None = None, raw: bytes | None = None
) -> Any:
    """POST /api/purge and return the JSON answer."""
    data = raw if raw is not None else json.dumps(body).encode()
    response = await client.post("/api/purge", data=data, headers=headers or {})
    text = await response.text()
    assert response.status == status, text
    assert "Traceback" not in text
    return json.loads(text)


async def test_purge_is_a_dry_run_unless_told(client: Any, history: list[dict]) -> None:
    failed = [r["id"] for r in history if r["status"] == "failed"]
    counted = await post(client, {"status": "failed"})
    token = Token.parse(counted.pop("token"))
    assert counted == {"matched": len(failed), "deleted": 0}
    assert (token.matched, token.digest) == set_digest(failed)
    assert (await get_json(client, "/api/summary"))["failed"] == len(failed)
    assert await post(client, {"status": "failed", "dry_run": False}) == {
        "matched": len(failed),
        "deleted": len(failed),
        "token": None,
    }
    left = [r for r in history if r["status"] != "failed"]
    check_summary(await get_json(client, "/api/summary"), left)


async def test_purge_by_policy_and_dates_then_all(client: Any, history: list[dict]) -> None:
    body = {"policy": HOSTILE, "until": "2026-03-08", "dry_run": False}
    gone = [r for r in history if r["policy"] == HOSTILE and r["started_at"][:10] <= "2026-03-08"]
    assert (await post(client, body))["deleted"] == len(gone)
    ids = {r["id"] for r in gone}
    check_summary(
        await get_json(client, "/api/summary"), [r for r in history if r["id"] not in ids]
    )
    # everything finished goes; a running run is never purged
    answer = await post(client, {"all": True, "dry_run": False})
    assert answer["deleted"] == len(history) - len(gone) - 1
    assert (await get_json(client, "/api/summary"))["runs"] == 1


async def test_purge_with_the_token_deletes_exactly_what_was_previewed(
    client: Any, history: list[dict]
) -> None:
    counted = await post(client, {"policy": HOSTILE})
    mine = [r for r in history if r["policy"] == HOSTILE and r["status"] != "running"]
    assert counted["matched"] == len(mine)
    done = await post(client, {"policy": HOSTILE, "dry_run": False, "token": counted["token"]})
    assert done == {"matched": len(mine), "deleted": len(mine), "token": None}
    check_summary(await get_json(client, "/api/summary"), [r for r in history if r not in mine])
    # the same token again: the set it counted is gone, so nothing more goes
    again = await post(
        client, {"policy": HOSTILE, "dry_run": False, "token": counted["token"]}, status=409
    )
    assert "nothing was deleted" in again["error"]


async def test_purge_refuses_when_a_host_recorded_runs_since_the_preview(
    client: Any, history: list[dict], db_path: Path, tmp_path: Path
) -> None:
    """Preview "10 runs", a host records 3 more of that policy, confirm: 409, nothing deleted
    (it used to delete 13)."""
    policy = "strip-foreign-audio"
    counted = await post(client, {"policy": policy})
    record_files(tmp_path, db_path, policy, 3)
    confirm = {"policy": policy, "dry_run": False, "token": counted["token"]}
    refused = await post(client, confirm, status=409)
    assert set(refused) == {"error"}
    assert (
        f"it counted {counted['matched']}, {counted['matched'] + 3} match now" in (refused["error"])
    )
    assert (await get_json(client, "/api/summary"))["runs"] == len(history) + 3
    # one run deleted and another recorded: as many runs as counted, but not the same ones
    again = await post(client, {"policy": policy})
    first = {"policy": policy, "until": history[0]["started_at"], "dry_run": False}
    assert (await post(client, first))["deleted"] == 1
    record(db_path, [started_now(history[0])])
    assert (await post(client, {"policy": policy}))["matched"] == again["matched"]
    refused = await post(client, {**confirm, "token": again["token"]}, status=409)
    assert "as many match now but not the same ones" in refused["error"]
    assert (await get_json(client, "/api/summary"))["runs"] == len(history) + 3


def started_now(run: dict[str, Any]) -> dict[str, Any]:
    """A new run like ``run``, started now (and finished as long after as ``run`` was)."""
    start, now = datetime.fromisoformat(run["started_at"]), datetime.now(UTC)
    again = dict(run, id=str(uuid.uuid4()), started_at=stamp(now))
    if run.get("finished_at"):
        again["finished_at"] = stamp(now + (datetime.fromisoformat(run["finished_at"]) - start))
    return again


async def test_purge_with_the_token_resolves_relative_times_as_the_preview_did(
    client: Any, history: list[dict], db_path: Path
) -> None:
    """until=3s means 3 s before the preview, also when the confirm comes later: a run that
    started just before the preview is not swept in by the confirm."""
    fresh = started_now(history[1])
    record(db_path, [fresh])
    body = {"policy": fresh["policy"], "until": "3s"}
    counted = await post(client, body)
    old = [r for r in history if r["policy"] == fresh["policy"] and r["status"] != "running"]
    assert counted["matched"] == len(old)
    await asyncio.sleep(3.2)
    assert (await post(client, body))["matched"] == len(old) + 1  # without the token: drifted
    done = await post(client, {**body, "dry_run": False, "token": counted["token"]})
    assert done["deleted"] == len(old)
    left = await get_json(client, "/api/recent", params={"policy": fresh["policy"]})
    assert [r["id"] for r in left["runs"]] == [fresh["id"]]


async def test_purge_takes_before_as_the_cli_does(
    client: Any, history: list[dict], db_path: Path
) -> None:
    day = "2026-03-08"
    older = [r for r in history if r["started_at"] < day and r["status"] != "running"]
    assert older
    answer = await post(client, {"before": day, "policy": None})
    assert answer["matched"] == len(older)
    cli = CliRunner().invoke(
        cli_main,
        ["--db", str(db_path), "purge", "--before", day, "--dry-run", "--format", "json"],
    )
    assert json.loads(cli.output)["matched"] == answer["matched"]
    assert (await post(client, {"before": "2026-03-08T00:00:00Z", "status": "failed"}))[
        "matched"
    ] == sum(r["status"] == "failed" for r in older)
    done = await post(client, {"before": day, "dry_run": False, "token": answer["token"]})
    assert done["deleted"] == len(older)
    assert (await get_json(client, "/api/summary"))["first_run_at"] >= day


@pytest.mark.parametrize(
    "body, why",
    [
        ({"all": True, "policy": "hevc-everything"}, "all deletes every run: give it alone, "),
        ({"all": True, "before": "1d", "status": "failed"}, "alone, without before, status"),
        ({"before": "2026-03-08", "until": "2026-03-09"}, "give before or until, not both"),
    ],
)
async def test_purge_refuses_what_the_cli_refuses(
    client: Any, history: list[dict], body: dict, why: str
) -> None:
    answer = await post(client, {**body, "dry_run": False}, status=400)
    assert why in answer["error"], answer
    assert "--" not in answer["error"]  # the web's names, not the CLI's flags
    assert (await get_json(client, "/api/summary"))["runs"] == len(history)
    # the CLI says no to the same
    flags = [f"--{k}" if v is True else f"--{k}={v}" for k, v in body.items()]
    assert CliRunner().invoke(cli_main, ["purge", *flags, "--dry-run"]).exit_code == 2


@pytest.mark.parametrize("depth", [1000, 100_000])
async def test_a_deeply_nested_purge_body_is_400(
    client: Any, history: list[dict], depth: int
) -> None:
    for raw in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        answer = await post(client, None, status=400, raw=raw)
        assert "body" in answer["error"] and "nested" in answer["error"]
    assert (await get_json(client, "/api/summary"))["runs"] == len(history)


@pytest.mark.parametrize("route", ["summary", "policies", "nodes", "recent", "trend", "codecs"])
async def test_a_range_that_ends_before_it_starts_selects_nothing(
    client: Any, history: list[dict], route: str
) -> None:
    query = {"since": "2026-03-09", "until": "2026-03-05"}
    body = await get_json(client, f"/api/{route}", params=query)
    if route == "summary":
        check_summary(body, [])
    else:
        assert (
            body[
                {"policies": "policies", "nodes": "nodes", "recent": "runs", "trend": "points"}.get(
                    route, "transitions"
                )
            ]
            == []
        )
    assert body["filters"]["since"] > body["filters"]["until"]
    assert (await post(client, query))["matched"] == 0


async def test_times_past_either_end_in_utc_are_the_ends(client: Any, history: list[dict]) -> None:
    """9999-12-31T23:59:59-05:00 is in year 10000 in UTC: later than every run, not an error."""
    query = {"since": "0001-01-01T00:00:00+01:00", "until": "9999-12-31T23:59:59-05:00"}
    body = await get_json(client, "/api/summary", params=query)
    check_summary(body, history)
    assert body["filters"]["since"] == "0001-01-01T00:00:00.000000Z"
    assert body["filters"]["until"] == "9999-12-31T23:59:59.999999Z"


@pytest.mark.parametrize(
    "body, raw, param",
    [
        ({}, None, "all"),
        ({"token": "p1.1.2.3"}, None, "token"),
        ({"policy": "x", "token": 7}, None, "token"),
        ({"before": "soon"}, None, "before"),
        ({"since": "7d "}, None, "since"),
        ({"until": "2026-02-30"}, None, "until"),
        (None, b"", "all"),
        (None, b"{not json", "body"),
        ([1, 2], None, "body"),
        ("policy", None, "body"),
        ({"polcy": "x"}, None, "polcy"),
        ({"policy": 3}, None, "policy"),
        ({"status": "gone"}, None, "status"),
        ({"since": "whenever"}, None, "since"),
        ({"policy": "x", "dry_run": "no"}, None, "dry_run"),
        ({"all": 1}, None, "all"),
        ({"status": "failed", "dry_run": None}, None, "dry_run"),
    ],
)
async def test_bad_purge_bodies_are_400(
    client: Any, history: list[dict], body: Any, raw: bytes | None, param: str
) -> None:
    answer = await post(client, body, status=400, raw=raw)
    assert param in answer["error"]
    assert (await get_json(client, "/api/summary"))["runs"] == len(history)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "{self}"},
    ],
)
async def test_cross_site_purge_is_refused(client: Any, history: list[dict], headers: dict) -> None:
    own = f"http://{client.server.host}:{client.server.port}"
    headers = {k: v.replace("{self}", own) for k, v in headers.items()}
    answer = await post(client, {"all": True, "dry_run": False}, status=403, headers=headers)
    assert "refused" in answer["error"]
    assert (await get_json(client, "/api/summary"))["runs"] == len(history)


async def test_same_origin_and_scripts_may_purge(client: Any, history: list[dict]) -> None:
    own = f"http://{client.server.host}:{client.server.port}"
    for headers in ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, {}):
        answer = await post(client, {"status": "failed"}, headers=headers)
        assert answer["matched"] == sum(r["status"] == "failed" for r in history)


# ------------------------------------------------------------------ page, static, headers


async def test_page_and_assets(client: Any) -> None:
    response = await client.get("/")
    page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in ("static/app.js", "static/app.css", "static/vendor/chartjs/chart.umd.min.js"):
        assert f'"{asset}"' in page  # relative: works under any mount point
        assert (await client.get("/" + asset)).status == 200
    assert "/stats" not in page
    # the entry module and every module it is made of: served, and never handling HTML
    static = Path(vpo_stats_plugin.web.__file__).parent / "static"
    modules = ["app.js", *(f"js/{p.name}" for p in sorted((static / "js").glob("*.js")))]
    assert len(modules) > 5
    for name in modules:
        response = await client.get("/static/" + name)
        assert response.status == 200, name
        # a JavaScript type, or the browser refuses to run it as a module
        assert response.content_type in ("text/javascript", "application/javascript"), name
        js = await response.text()
        lines = js.splitlines()
        code = "\n".join(x for x in lines if not x.lstrip().startswith(("*", "/*")))
        for never in (
            ".innerHTML",
            ".outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "/stats",
        ):
            assert never not in code, (name, never)


def test_vendored_chart_library_is_recorded() -> None:
    """The vendored file is the one README.md names (checksum), its licence ships beside it."""
    import hashlib
    import re

    web_dir = Path(create_app.__code__.co_filename).parent
    vendor = web_dir / "static" / "vendor"
    readme = (vendor / "README.md").read_text()
    digest = hashlib.sha256((vendor / "chartjs" / "chart.umd.min.js").read_bytes()).hexdigest()
    assert f"`chartjs/chart.umd.min.js`: `{digest}`" in readme
    version = re.search(r"\| Chart\.js \| ([0-9.]+) \|", readme).group(1)
    assert f"Chart.js v{version}" in (vendor / "chartjs" / "chart.umd.min.js").read_text()[:200]
    assert f"Chart.js {version} (MIT)" in (web_dir / "templates" / "index.html").read_text()
    assert "MIT License" in (vendor / "chartjs" / "LICENSE.md").read_text()


async def test_many_requests_at_once(client: Any, history: list[dict]) -> None:
    urls = ["/api/summary", "/api/policies", "/api/nodes", "/api/recent", "/api/trend?by=week"]
    urls.append("/api/codecs")
    started = time.perf_counter()
    answers = await asyncio.gather(*(client.get(urls[i % len(urls)]) for i in range(100)))
    elapsed = time.perf_counter() - started
    assert [a.status for a in answers] == [200] * 100
    assert elapsed < 20, elapsed


# ------------------------------------------------------------------ mounted in another app


def host_app_with_entry_point() -> web.Application:
    """A host's web app that mounts every ``vpo.web`` entry point as a host does."""
    host = web.Application()

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="host home")

    host.router.add_get("/", home)
    (ep,) = [e for e in entry_points(group="vpo.web") if e.name == "stats"]
    host.add_subapp("/stats", ep.load()())
    return host


async def test_mounted_through_the_entry_point(aiohttp_client: Any, history: list[dict]) -> None:
    client = await aiohttp_client(host_app_with_entry_point())  # config from VPO_STATS_DATABASE
    assert await (await client.get("/")).text() == "host home"
    check_summary(await get_json(client, "/stats/api/summary"), history)
    page = await client.get("/stats/")
    assert page.status == 200 and "static/app.js" in await page.text()
    redirect = await client.get("/stats?view=run", allow_redirects=False)
    assert redirect.status == 308 and redirect.headers["Location"] == "/stats/?view=run"
    assert (await client.get("/stats/static/app.js")).status == 200
    spec = await get_json(client, "/stats/api/openapi.json")
    assert spec["servers"] == [{"url": "/stats"}]
    await get_json(client, "/stats/api/nothing", status=404)
    assert (await client.get("/elsewhere")).status == 404  # the host's own 404 is its own


async def test_mounted_in_the_reference_host(aiohttp_client: Any, history: list[dict]) -> None:
    client = await aiohttp_client(make_host_app())
    check_summary(await get_json(client, "/stats/api/summary"), history)
    assert (await client.get("/stats/")).status == 200


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_vpo_stats_serve_command(history: list[dict], db_path: Path) -> None:
    """The real command in its own process: serves, answers, stops cleanly on Ctrl-C."""
    import signal
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    command = [sys.executable, "-c", "from vpo_stats_plugin.cli import main; main()"]
    proc = subprocess.Popen(
        [*command, "--db", str(db_path), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(base + "/stats/api/summary", timeout=2) as answer:
                    check_summary(json.load(answer), history)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("vpo-stats serve did not answer: " + proc.stderr.read())
        with urllib.request.urlopen(base + "/") as page:  # / -> /stats/
            assert page.url == base + "/stats/" and b"static/app.js" in page.read()
        # a second server on the same port says what to do
        busy = subprocess.run(
            [*command, "--db", str(db_path), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
        assert "Traceback" not in busy.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/stats/" in out and "Traceback" not in err


async def test_serve_root_app_redirects_and_guards_host_names(
    aiohttp_client: Any, history: list[dict]
) -> None:
    from vpo_stats_plugin.cli.serve import make_root_app

    client = await aiohttp_client(make_root_app(load_settings(), "127.0.0.1"))
    root = await client.get("/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/stats/"
    check_summary(await get_json(client, "/stats/api/summary"), history)
    rebound = await client.get("/stats/api/summary", headers={"Host": "attacker.example:8321"})
    assert rebound.status == 403
    for name in ("localhost:8321", "127.0.0.1", "[::1]:8321"):
        assert (await client.get("/stats/api/summary", headers={"Host": name})).status == 200


# ------------------------------------------------------------------ no database yet (issue 14)


async def test_no_database_yet_answers_empty_and_creates_nothing(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """Before any host recorded, the dashboard's API answers its empty state without making
    the file (or its directory); once a host creates the database it answers from it."""
    db = tmp_path / "not" / "yet" / "stats.db"
    settings = load_settings(overrides={"database": (str(db), "test")})
    client = await aiohttp_client(create_app(settings))
    body = await get_json(client, "/api/summary")
    assert body["runs"] == 0 and body["first_run_at"] is None
    assert (await get_json(client, "/api/policies"))["policies"] == []
    assert (await get_json(client, "/api/recent"))["runs"] == []
    assert (await get_json(client, "/api/trend"))["points"] == []
    assert (await get_json(client, "/api/codecs"))["transitions"] == []
    await get_json(client, "/api/runs/0123456789abcdef", status=404)
    await get_json(client, "/api/policies/x", status=404)
    assert await post(client, {"all": True, "dry_run": False}) == {
        "matched": 0,
        "deleted": 0,
        "token": None,
    }
    assert (await client.get("/")).status == 200
    scraped = await client.get("/metrics")
    assert scraped.status == 200 and "vpo_stats_runs_total" in await scraped.text()
    assert not (tmp_path / "not").exists()

    runs = make_history()
    record(db, runs)  # as a host's first write would
    check_summary(await get_json(client, "/api/summary"), runs)


def test_serve_port_0_prints_the_port_it_bound(tmp_path: Path) -> None:
    """`serve --port 0` says which port the system chose, once it listens there; on a database
    that does not exist yet it serves the empty state and creates nothing."""
    import signal
    import subprocess
    import sys
    import urllib.request

    db = tmp_path / "later" / "stats.db"
    command = [sys.executable, "-c", "from vpo_stats_plugin.cli import main; main()"]
    proc = subprocess.Popen(
        [*command, "--db", str(db), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Dashboard: http://127.0.0.1:"), (first, proc.stderr.read())
        url = first.split()[1]
        port = int(url.split(":")[2].split("/")[0])
        assert port != 0 and url == f"http://127.0.0.1:{port}/stats/"
        with urllib.request.urlopen(url + "api/summary", timeout=10) as answer:
            assert json.load(answer)["runs"] == 0
        assert not (tmp_path / "later").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err


@pytest.mark.parametrize(
    "host, says",
    [
        ("no-such-host.invalid", "no such host or address"),
        ("192.0.2.7", "not an address of this machine"),  # TEST-NET-1: never this machine's
    ],
)
def test_serve_on_a_bad_host_says_so(tmp_path: Path, host: str, says: str) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-c", "from vpo_stats_plugin.cli import main; main()"]
    done = subprocess.run(
        [*command, "--db", str(tmp_path / "s.db"), "serve", "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert f"--host {host}" in done.stderr and says in done.stderr, done.stderr
    assert "--port" not in done.stderr and "Traceback" not in done.stderr
