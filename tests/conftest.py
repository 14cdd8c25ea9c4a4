"""Shared fixtures: every test gets its own HOME and stats database under tmp_path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from vpo_stats_plugin import hooks
from vpo_stats_plugin.store import Store, open_store

DECOY_EXIT = 97

pytest_plugins = ["pgserver"]  # the `pg_server` fixture: a throwaway PostgreSQL server


@pytest.fixture(autouse=True, scope="session")
def decoy_scripts_on_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `vpo-stats` and a `vpo` first on PATH that only fail: the suite must use its own."""
    decoys = tmp_path_factory.mktemp("decoys")
    for name in ("vpo-stats", "vpo"):
        script = decoys / name
        script.write_text(f"#!/bin/sh\necho 'decoy {name} from PATH' >&2\nexit {DECOY_EXIT}\n")
        script.chmod(0o755)
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{decoys}{os.pathsep}{before}"
    yield decoys
    os.environ["PATH"] = before


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HOME, the database and the config file all live in this test's tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("VPO_STATS_") or name in ("VPO_CONFIG_PATH", "VPO_DATABASE_PATH"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VPO_STATS_DATABASE", str(tmp_path / "stats.db"))
    hooks.reset()
    yield home
    hooks.reset()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The database path the plugin uses in this test."""
    return tmp_path / "stats.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """An open store on this test's database."""
    with open_store(db_path) as opened:
        yield opened


ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The store engine a shared-behaviour test runs on (each test runs on both)."""
    return request.param


def engine_database(request: pytest.FixtureRequest, engine: str, sqlite_path: Path) -> str:
    """Where a test of ``engine`` keeps its stats: ``sqlite_path``, or a schema of its own on
    the suite's PostgreSQL server (started only when a test asks for it)."""
    if engine == "sqlite":
        return str(sqlite_path)
    import hashlib

    server = request.getfixturevalue("pg_server")
    name = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:20]
    return server.schema_url(name)


def engine_db_path(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A module's ``db_path`` on both engines: ``db_path = pytest.fixture(engine_db_path,
    name="db_path")``. The test's stats database (a SQLite file, or a schema on the suite's
    server), also the plugin's configured one (``VPO_STATS_DATABASE``)."""
    database = engine_database(request, engine, tmp_path / "stats.db")
    monkeypatch.setenv("VPO_STATS_DATABASE", database)
    return database


@pytest.fixture
def runner() -> CliRunner:
    """A click runner; stderr is kept apart from stdout."""
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database recorded live through the reference host (tests/history.py); copy it to use."""
    from history import recorded_history

    return recorded_history(tmp_path_factory.mktemp("recorded"))


def pytest_configure(config: pytest.Config) -> None:
    sys._called_from_test = True  # type: ignore[attr-defined]
