"""The dashboard's API while another process holds the database locked: it waits for the lock
like any reader and answers; it never fails because a host is writing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hostproc import hold_lock
from web_history import make_history, record

from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.web import create_app


@pytest.fixture
async def client(aiohttp_client: Any, db_path: Path) -> Any:
    record(db_path, make_history())
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    return await aiohttp_client(create_app(settings))


@pytest.mark.parametrize("exclusive", [False, True], ids=["write-lock", "exclusive-lock"])
async def test_api_answers_while_the_database_is_locked(
    client: Any, db_path: Path, exclusive: bool
) -> None:
    expected = await (await client.get("/api/summary")).json()
    locker = hold_lock(db_path, 1.0, exclusive=exclusive)
    started = time.monotonic()
    try:
        for url in ("/api/summary", "/api/recent?limit=5", "/api/policies", "/api/trend"):
            response = await client.get(url)
            assert response.status == 200, await response.text()
        summary = await (await client.get("/api/summary")).json()
        waited = time.monotonic() - started
    finally:
        locker.wait()
    assert summary == expected
    # readers go on beside a writer (WAL); an exclusive lock makes them wait for it, no more
    assert waited < 0.9 if not exclusive else 0.5 < waited < 4
