"""The OpenAPI document is the real description of the API: checked route by route and fuzzed."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import positive_data_acceptance
from web_history import make_history, record, serve_in_thread

from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.filters import STATUSES, parse_when
from vpo_stats_plugin.web import create_app
from vpo_stats_plugin.web.openapi import openapi_document


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


@pytest.fixture(scope="module")
def api_schema(live_api: str) -> Any:
    """The document as the server serves it, for schemathesis."""
    return schemathesis.openapi.from_url(live_api + "/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_document(case: Any, live_api: str) -> None:
    # Every check but "schema-valid data is accepted": the document cannot say that since must
    # not be after until, nor which strings are real dates; the test below covers valid input.
    case.call_and_validate(base_url=live_api, excluded_checks=[positive_data_acceptance])


WHEN = st.one_of(
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 500), st.sampled_from("smhdwy")),
    st.builds(lambda n: f"{n}mo", st.integers(0, 100)),
    st.dates(date(2000, 1, 1), date(2100, 12, 31)).map(date.isoformat),
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.isoformat() + "Z"),
)


@given(
    route=st.sampled_from(["summary", "policies", "recent", "trend", "codecs"]),
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
    since, until = values["since"], values["until"]
    if since and until and parse_when(since) > parse_when(until, end_of_day=True):
        values["since"] = None  # a range that ends before it starts is rightly refused
    query = urlencode({k: v for k, v in values.items() if v is not None})
    with urllib.request.urlopen(f"{live_api}/api/{route}?{query}") as answer:
        assert answer.status == 200
        body = json.load(answer)
    for name in ("policy", "node", "status"):
        assert body["filters"][name] == values[name]
