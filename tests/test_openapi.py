"""The OpenAPI document is the real description of the API: checked route by route and fuzzed."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from history import vpo_stats_script
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from web_history import get_when_up, make_history, record, serve_in_thread

from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.errors import BadParameter
from vpo_stats_plugin.filters import STATUSES
from vpo_stats_plugin.web import create_app
from vpo_stats_plugin.web.openapi import openapi_document
from vpo_stats_plugin.web.params import WHEN_PATTERN, parse_filters

FUZZ_EXAMPLES = 25  # per operation and phase: under a minute here on 2 loaded cores


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of the sub-app, HEAD and the static files left out."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and not route.resource.canonical.startswith("/static")
    }


def test_document_is_valid_openapi() -> None:
    validate(openapi_document())


def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    app = create_app(load_settings(overrides={"database": (str(tmp_path / "s.db"), "test")}))
    described = {
        (method, path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }
    assert described == app_routes(app)


def test_every_operation_documents_its_errors() -> None:
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            takes_input = operation.get("parameters") or "requestBody" in operation
            if takes_input:
                assert "400" in responses, (method, path)
            if "{" in path or any(p.get("required") for p in operation.get("parameters", [])):
                assert "404" in responses, (method, path)


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sub-app mounted at /stats on loopback over a recorded history; yields its base URL."""
    db = tmp_path_factory.mktemp("openapi") / "stats.db"
    record(db, make_history(count=40, seed=3))
    host = web.Application()
    host.add_subapp("/stats", create_app(load_settings(overrides={"database": (str(db), "t")})))
    with serve_in_thread(host) as root:
        yield root + "/stats"


def test_served_document_names_its_mount_point(live_api: str) -> None:
    with urllib.request.urlopen(live_api + "/api/openapi.json") as answer:
        served = json.load(answer)
    assert served["servers"] == [{"url": "/stats"}]
    assert served["paths"] == openapi_document()["paths"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``vpo-stats serve`` in its own process on loopback over a recorded history; yields the
    document's URL. Fails the test if the server logged an unexpected error."""
    db = tmp_path / "stats.db"
    record(db, make_history(count=40, seed=3))
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [vpo_stats_script(), "--db", str(db), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/stats/api/openapi.json"
        get_when_up(url)
        yield url
    finally:
        server.terminate()
        server.wait(10)
    assert "unexpected error" not in log.read_text(), log.read_text()


def test_schemathesis_every_check_against_the_real_server(served: str, tmp_path: Path) -> None:
    """`schemathesis run --checks all` (its CLI, every check in the suite, all phases it
    has for this document) against `vpo-stats serve`: the reading routes first, over the whole
    history, then purge, whose fuzzing deletes runs."""
    seed = os.environ.get("VPO_STATS_FUZZ_SEED", "20261202")
    for selection in (["--exclude-method", "POST"], ["--include-method", "POST"]):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                served,
                "--checks",
                "all",
                "--max-examples",
                str(FUZZ_EXAMPLES),
                "--seed",
                seed,
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                *selection,
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
        report = done.stdout + done.stderr
        assert done.returncode == 0, report[-8000:]
        assert re.search(r"Test cases:\s+\d+ generated, (\d+) passed", report), report[-3000:]


@given(st.from_regex(WHEN_PATTERN, fullmatch=True), st.sampled_from(["since", "until"]))
@settings(max_examples=400, deadline=None)
def test_every_when_the_document_allows_is_taken(when: str, name: str) -> None:
    """The document's WHEN pattern promises no more than the API takes."""
    filters = parse_filters({name: when})
    assert (getattr(filters, name) is None) == (when == "")


@given(st.text(max_size=30))
@settings(max_examples=400, deadline=None)
def test_a_when_outside_the_pattern_is_refused(text: str) -> None:
    assume(not re.search(WHEN_PATTERN, text))
    with pytest.raises(BadParameter, match="since"):
        parse_filters({"since": text})


WHEN = st.one_of(
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 500), st.sampled_from("smhdwy")),
    st.builds(lambda n: f"{n}mo", st.integers(0, 100)),
    st.dates(date(2000, 1, 1), date(2100, 12, 31)).map(date.isoformat),
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.isoformat() + "Z"),
)


@given(
    route=st.sampled_from(["summary", "policies", "nodes", "recent", "trend", "codecs"]),
    since=st.none() | WHEN,
    until=st.none() | st.dates(date(2026, 3, 20), date(2100, 1, 1)).map(date.isoformat),
    policy=st.none() | st.text(min_size=1, max_size=30),
    node=st.none() | st.sampled_from(["node-a", "node-b", "elsewhere"]),
    status=st.none() | st.sampled_from(list(STATUSES)),
    limit=st.none() | st.integers(1, 1000),
    by=st.none() | st.sampled_from(["day", "week", "month"]),
    sort=st.none() | st.sampled_from(["runs", "saved", "name"]),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_parameters_are_accepted(live_api: str, route: str, **values: Any) -> None:
    # a range that ends before it starts is taken too: it selects nothing
    query = urlencode({k: v for k, v in values.items() if v is not None})
    with urllib.request.urlopen(f"{live_api}/api/{route}?{query}") as answer:
        assert answer.status == 200
        body = json.load(answer)
    for name in ("policy", "node", "status"):
        assert body["filters"][name] == values[name]
