"""Import's one-pass check: its fast paths decide exactly as the general check does, and the rows
it makes hold what the run said."""

from __future__ import annotations

import copy
import gc
import math
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpo_stats_plugin.errors import StatsError
from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.store.importing import (
    ACTION_TEXTS,
    COUNTS,
    PHASE_NUMBERS,
    TEXTS,
    check_value,
    run_rows,
)
from vpo_stats_plugin.store.shapes import ACTION_FIELDS, PHASE_FIELDS, RUN_COLUMNS

GOOD: dict[str, Any] = {
    "id": "6f1c2d3e-0000-4000-8000-000000000001",
    "job_id": "job-1",
    "file_id": 42,
    "path": "/library/Film (é).mkv",
    "output_path": None,
    "policy": "english",
    "node": "n1",
    "status": "succeeded",
    "started_at": "2025-03-01T09:00:00.000000Z",
    "finished_at": "2025-03-01T10:05:00+01:00",
    "duration_seconds": 300.5,
    "size_before_bytes": 1000,
    "size_after_bytes": 600,
    "tracks_before": {"video": 1, "audio": 3, "subtitle": 2, "attachment": 0},
    "tracks_after": {"video": 1, "audio": 1, "subtitle": 1},
    "video_transcode_skipped": True,
    "hash_before": "partial-xxh3:00",
    "source": None,
    "actions": [
        {"type": "remove_track", "track_index": 2, "before": {"language": "fra"}, "success": True},
        {"type": "transcode", "duration_ms": 12, "success": False, "message": "no"},
    ],
    "phases": [{"name": "tracks", "wall_time_seconds": 1.5, "bytes_read": 10}],
}

UTC = timezone.utc
SETTINGS = ("cache_size", "foreign_keys", "wal_autocheckpoint")

# where a value can go in a run, and the kind the general check holds it to
PLACES = (
    [((f,), "count") for f in COUNTS]
    + [((f,), "text") for f in TEXTS]
    + [(("duration_seconds",), "number"), (("video_transcode_skipped",), "bool")]
    + [(("file_id",), "file_id"), (("tracks_before", "audio"), "count")]
    + [(("actions", 0, f), "text") for f in ACTION_TEXTS]
    + [(("actions", 1, "track_index"), "int"), (("actions", 0, "duration_ms"), "number")]
    + [(("actions", 1, "success"), "bool"), (("phases", 0, "name"), "text")]
    + [(("phases", 0, f), "number") for f in PHASE_NUMBERS]
)

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) + 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([9.3e18, -9.3e18, 9.2e18]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _accepted(kind: str, value: Any) -> bool:
    """What the general check says of ``value`` as ``kind``."""
    if kind == "file_id":
        return value is None or isinstance(value, str) or _accepted("int", value)
    try:
        check_value("x", value, kind)
    except ValueError:
        return False
    return True


def _put(run: dict[str, Any], where: tuple, value: Any) -> None:
    target = run
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value


@settings(max_examples=600, deadline=None)
@given(place=st.sampled_from(PLACES), value=VALUES)
def test_the_fast_paths_decide_as_the_general_check(place: tuple, value: Any) -> None:
    where, kind = place
    run = copy.deepcopy(GOOD)
    _put(run, where, value)
    try:
        run_rows(run)
    except ValueError as err:
        assert not _accepted(kind, value), (where, value, err)
        named = where[-1] if where[0] not in ("actions", "phases") else f"].{where[-1]}"
        assert str(named) in str(err), (where, err)
    else:
        assert _accepted(kind, value), (where, value)


def _is_uuid(text: str) -> bool:
    """The general check of a run id: a UUID as the uuid module reads and prints it (any case)."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _spelled(value: uuid.UUID, how: str) -> str:
    text = str(value)
    return {
        "plain": text,
        "upper": text.upper(),
        "hex": value.hex,
        "braces": "{" + text + "}",
        "urn": value.urn,
        "short": text[:-1],
        "long": text + "0",
        "moved": text[:9] + text[10] + "-" + text[11:],
        "arabic": text.replace("3", "\u0663"),  # int() reads it as 3; a UUID it is not
        "underscore": text[:-2] + "_" + text[-1],
    }[how]


IDS = st.one_of(
    st.builds(
        _spelled,
        st.uuids(),
        st.sampled_from(
            ["plain", "upper", "hex", "braces", "urn", "short", "long", "moved", "arabic"]
            + ["underscore"]
        ),
    ),
    st.text(alphabet="0123456789abcdefABCDEF-{}", min_size=30, max_size=40),
    st.text(max_size=40).filter(bool),
)


@settings(max_examples=400, deadline=None)
@given(ident=IDS)
def test_the_id_check_is_the_uuid_modules(ident: str) -> None:
    run = copy.deepcopy(GOOD)
    run["id"] = ident
    try:
        run_rows(run)
    except ValueError as err:
        assert not _is_uuid(ident), (ident, err)
        assert str(err).startswith(f"id {ident!r} is not a UUID"), err
    else:
        assert _is_uuid(ident), ident


MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
OFFSETS = st.sampled_from([None, 0, 60, -300, 330, 840]).map(
    lambda m: None if m is None else timezone(timedelta(minutes=m))
)


def _written(moment: datetime, offset: timezone | None) -> str:
    """``moment`` as an export has it (None: the stored form, the fast path) or in an offset."""
    if offset is None:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.astimezone(offset).isoformat()


@settings(max_examples=400, deadline=None)
@given(
    started=MOMENTS,
    gap=st.one_of(
        st.just(timedelta(0)),
        st.timedeltas(min_value=timedelta(microseconds=-3), max_value=timedelta(microseconds=3)),
        st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
    ),
    offsets=st.tuples(OFFSETS, OFFSETS),
)
def test_a_run_never_finishes_before_it_started(
    started: datetime, gap: timedelta, offsets: tuple
) -> None:
    """Whatever the offsets either time is written in: rejected exactly when it is earlier."""
    finished = started + gap
    run = copy.deepcopy(GOOD)
    run["started_at"], run["finished_at"] = (
        _written(started, offsets[0]),
        _written(finished, offsets[1]),
    )
    try:
        run_rows(run)
    except ValueError as err:
        assert finished < started, (run["started_at"], run["finished_at"], err)
        assert "finished_at" in str(err) and "earlier than started_at" in str(err)
    else:
        assert finished >= started


def _levels(value: Any) -> int:
    """Levels of lists and objects in ``value``, counted plainly."""
    if isinstance(value, dict):
        return 1 + max(map(_levels, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_levels, value), default=0)
    return 0


LEAVES = st.one_of(st.integers(), st.text(alphabet="[]{}a", max_size=6), st.none())
TREES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    tree=TREES,
    wraps=st.lists(st.sampled_from(["list", "dict"]), max_size=40),
    where=st.sampled_from(["before", "after"]),
)
def test_stored_values_are_as_deep_as_the_recorder_keeps_them(
    tree: Any, wraps: list[str], where: str
) -> None:
    """Brackets inside text (counted by the cheap check) never decide; the depth does."""
    value = tree
    for wrap in wraps:
        value = [value] if wrap == "list" else {"k": value}
    run = copy.deepcopy(GOOD)
    run["actions"][0][where] = value
    try:
        run_rows(run)
    except ValueError as err:
        assert _levels(value) > 32, err
        assert f"actions[1].{where} is nested more than 32 levels deep" in str(err)
    else:
        assert _levels(value) <= 32


def test_rows_hold_what_the_run_said() -> None:
    row, actions, phases = run_rows(copy.deepcopy(GOOD))
    stored = dict(zip((*RUN_COLUMNS, "last_activity_at", "pid", "process_started"), row))
    assert stored["id"] == GOOD["id"] and stored["file_id"] == 42
    assert stored["finished_at"] == "2025-03-01T09:05:00.000000Z"  # UTC, as stored
    assert stored["started_at"] == GOOD["started_at"]
    assert stored["last_activity_at"] == stored["finished_at"]
    assert stored["tracks_before_audio"] == 3 and stored["tracks_after_attachment"] is None
    assert stored["video_transcode_skipped"] == 1 and stored["source"] == "hooks"
    assert stored["pid"] is None and stored["process_started"] is None
    first = dict(zip(("run_id", "seq", *ACTION_FIELDS), actions[0]))
    assert first["seq"] == 1 and first["before"] == '{"language": "fra"}'
    assert first["success"] == 1 and first["after"] is None
    second = dict(zip(("run_id", "seq", *ACTION_FIELDS), actions[1]))
    assert second["success"] == 0 and second["duration_ms"] == 12
    assert phases == [[GOOD["id"], 1, "tracks", 1.5, 10, None, None, None]]
    assert len(phases[0]) == 2 + len(PHASE_FIELDS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"started_at": "2025-13-01"}, "started_at '2025-13-01' is not an ISO-8601 time"),
        ({"finished_at": 5}, "finished_at 5 is not an ISO-8601 time"),
        ({"status": "done"}, "status 'done' is not one of"),
        ({"tracks_after": [1]}, "tracks_after must be an object"),
        ({"actions": {"a": 1}}, "actions must be a list"),
        ({"phases": [1]}, "phases[1] must be an object"),
        ({"size_after_bytes": math.nan}, "size_after_bytes is nan"),
    ],
)
def test_bad_runs_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        run_rows({**copy.deepcopy(GOOD), **change})
    assert message in str(caught.value)


def test_an_import_that_fails_on_the_database_leaves_the_process_as_it_was(
    tmp_path: Path,
) -> None:
    with open_store(tmp_path / "s.db") as store:
        conn = store.conn
        before = [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in SETTINGS]
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON phases BEGIN SELECT RAISE(FAIL, 'no'); END"
        )
        with pytest.raises(StatsError):
            store.import_runs([copy.deepcopy(GOOD)])
        assert gc.isenabled()
        assert [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in SETTINGS] == before
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0  # rolled back whole
