"""Rollups agree with the raw rows: every aggregate equals a naive pure-Python computation.

Hypothesis builds histories (live runs that finish, fail, die or finish late; imports with
every status; purges; reaps) on a real SQLite file, keeps a plain-Python model of the same
runs, then asks ``summary``, ``policies``, ``policy``, ``trend`` and ``codecs`` under random
filters whose ``since``/``until`` cut days in two near midnight. ``rebuild_rollups()`` must give
the very rollup rows the incremental path kept.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_db_path
from history import Expected, rollup_rows
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pgserver import PgServer

from vpo_stats_plugin.errors import NotFound
from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.liveness import this_process
from vpo_stats_plugin.purging import Token, set_digest
from vpo_stats_plugin.store import Store, open_store

NODE = "node-a"
NODES = (NODE, "node-b")
POLICIES = (None, "strip", "hevc", 'o\'dd "name"')
STATUSES = ("running", "succeeded", "failed", "interrupted")
DAYS = ("2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-03", "2024-03-04")
TIMES = (
    "00:00:00.000000",
    "00:00:00.000001",
    "00:00:01.500000",
    "11:59:59.999999",
    "12:00:00.000000",
    "23:59:59.000000",
    "23:59:59.999998",
    "23:59:59.999999",
)
PATHS = tuple(f"/media/film-{i}.mkv" for i in range(6))
KINDS = ("video", "audio", "subtitle", "attachment")
ACTION_TYPES = ("remove_track", "transcode", "set_default", None)
CODECS = (None, "h264", "hevc")
DEAD_PID = 2**22 + 12345  # above Linux's pid_max: never a live process
STALE_AFTER = 100 * 365 * 86400.0  # nothing generated here is ever stale by age

# ---------------------------------------------------------------------------------------------
# strategies

small = st.one_of(st.none(), st.integers(0, 5))
sizes = st.one_of(st.none(), st.integers(0, 10**12))
# multiples of 1/8: sums are exact in binary floating point, whatever their order
durations = st.one_of(st.none(), st.integers(0, 8000).map(lambda n: n / 8))
stamps = st.builds(lambda d, t: f"{d}T{t}Z", st.sampled_from(DAYS), st.sampled_from(TIMES))


@st.composite
def tracks(draw: st.DrawFn) -> dict[str, int | None]:
    return {kind: draw(small) for kind in KINDS}


@st.composite
def actions(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [
        {
            "type": draw(st.sampled_from(ACTION_TYPES)),
            "track_type": draw(st.sampled_from(("audio", "subtitle", None))),
            "track_index": draw(st.one_of(st.none(), st.integers(0, 9))),
            "success": draw(st.booleans()),
            "duration_ms": draw(st.one_of(st.none(), st.integers(0, 100))),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]


@st.composite
def outcomes(draw: st.DrawFn, statuses: tuple[str, ...]) -> dict[str, Any]:
    """The fields a finished (or imported) run may carry."""
    return {
        "status": draw(st.sampled_from(statuses)),
        "duration_seconds": draw(durations),
        "size_after_bytes": draw(sizes),
        "tracks_after": draw(tracks()),
        "video_source_codec": draw(st.sampled_from(CODECS)),
        "video_target_codec": draw(st.sampled_from(CODECS)),
        "video_transcode_skipped": draw(st.sampled_from((None, True, False))),
        "audio_tracks_transcoded": draw(small),
        "audio_tracks_preserved": draw(small),
    }


@st.composite
def new_run(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=draw(st.integers(0, 2**122)), version=4)),
        "path": draw(st.sampled_from(PATHS)),
        "policy": draw(st.sampled_from(POLICIES)),
        "node": draw(st.sampled_from(NODES)),
        "started_at": draw(stamps),
        "size_before_bytes": draw(sizes),
        "tracks_before": draw(tracks()),
    }


@st.composite
def live_op(draw: st.DrawFn) -> tuple:
    """A run recorded by the hooks: begun, actions, then finished, left running, or died."""
    run = draw(new_run())
    end = draw(st.sampled_from(("finish", "finish", "running", "dies", "dies-then-finishes")))
    return (
        "live",
        run,
        draw(actions()),
        end,
        draw(outcomes(("succeeded", "failed"))),
        draw(actions()),  # actions that arrive after the end (a late or repeated report)
        draw(st.booleans()),  # finished twice
    )


@st.composite
def import_op(draw: st.DrawFn) -> tuple:
    runs = []
    for _ in range(draw(st.integers(1, 6))):
        run = {**draw(new_run()), **draw(outcomes(STATUSES))}
        if run["status"] == "running":
            run["size_after_bytes"] = draw(st.sampled_from((None, run["size_after_bytes"])))
        run["actions"] = draw(actions())
        runs.append(run)
    return ("import", runs, draw(st.integers(1, 4)), draw(st.booleans()))


@st.composite
def filters(draw: st.DrawFn, allow_empty: bool = True) -> dict[str, str | None]:
    def bound() -> str | None:
        kind = draw(st.sampled_from(("none", "date", "stamp")))
        if kind == "none":
            return None
        if kind == "date":
            return draw(st.sampled_from((*DAYS, "2024-03-02")))
        return draw(stamps)

    since, until = bound(), bound()
    if since and until and Filters.parse(since=since).since > Filters.parse(until=until).until:
        since, until = until, since
        if Filters.parse(since=since).since > Filters.parse(until=until).until:
            since = None
    values = {
        "since": since,
        "until": until,
        "policy": draw(st.sampled_from((None, *POLICIES[1:], "nobody"))),
        "node": draw(st.sampled_from((None, *NODES))),
        "status": draw(st.sampled_from((None, *STATUSES))),
    }
    if not allow_empty and not any(values.values()):
        values["policy"] = "strip"
    return values


ops = st.lists(
    st.one_of(
        live_op(),
        live_op(),
        import_op(),
        st.tuples(st.just("purge"), filters(allow_empty=False), st.booleans()),
        st.just(("reap",)),
    ),
    min_size=1,
    max_size=14,
)

# ---------------------------------------------------------------------------------------------
# the model: runs as plain dicts, and the answers computed from them naively


class Model:
    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.pids: dict[str, int] = {}

    def matching(self, f: Filters) -> list[dict[str, Any]]:
        out = []
        for run in self.runs.values():
            if f.since is not None and run["started_at"] < f.since:
                continue
            if f.until is not None and run["started_at"] > f.until:
                continue
            if any(
                getattr(f, k) is not None and run[k] != getattr(f, k)
                for k in ("policy", "node", "status")
            ):
                continue
            out.append(run)
        return out

    def reap(self, live_pid: int) -> None:
        for run_id, run in self.runs.items():
            dead = run["node"] == NODE and self.pids.get(run_id) != live_pid
            if run["status"] == "running" and dead:
                run["status"] = "interrupted"


def naive_codecs(runs: list[dict[str, Any]], f: Filters) -> dict[str, Any]:
    totals: dict[tuple, dict[str, Any]] = {}
    for run in runs:
        if run["status"] != "succeeded":
            continue
        source, target = run.get("video_source_codec"), run.get("video_target_codec")
        if source is None and target is None:
            continue
        if run.get("video_transcode_skipped"):
            target = None
        entry = totals.setdefault(
            (source, target), {"source": source, "target": target, "runs": 0, "saved_bytes": 0}
        )
        entry["runs"] += 1
        before, after = run.get("size_before_bytes"), run.get("size_after_bytes")
        entry["saved_bytes"] += before - after if before is not None and after is not None else 0
    rows = sorted(totals.values(), key=lambda e: (-e["runs"], e["source"] or "", e["target"] or ""))
    return {"transitions": rows, "filters": f.as_json()}


# ---------------------------------------------------------------------------------------------
# applying operations to the store and to the model alike


def _finish_fields(outcome: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in outcome.items() if k != "tracks_after"}
    for kind in KINDS:
        fields[f"tracks_after_{kind}"] = outcome["tracks_after"][kind]
    skipped = fields["video_transcode_skipped"]
    fields["video_transcode_skipped"] = None if skipped is None else int(skipped)
    fields["finished_at"] = fields["last_activity_at"] = "2024-03-05T00:00:00.000000Z"
    return fields


def apply(store: Store, model: Model, op: tuple, live: tuple[int, float | None]) -> None:
    kind = op[0]
    if kind == "live":
        _, run, first, end, outcome, late, twice = op
        if run["id"] in model.runs:
            return
        pid, started = live if end in ("finish", "running") else (DEAD_PID, None)
        store.begin_run(
            {**run, "status": "running", "source": "hooks", "pid": pid, "process_started": started}
        )
        model.runs[run["id"]] = {**run, "status": "running", "actions": []}
        model.pids[run["id"]] = pid
        for action in first:
            assert store.record_action(run["id"], action)
            model.runs[run["id"]]["actions"].append(action)
        if end == "running":
            return
        if end.startswith("dies"):
            if run["node"] != NODE:
                return  # another node's dead run is only reaped when stale
            store.reap_interrupted()
            model.reap(live[0])
            if end == "dies":
                return
        for _ in range(2 if twice else 1):
            assert store.finish_run(run["id"], _finish_fields(outcome), [])
            model.runs[run["id"]].update(outcome)
        for action in late:
            assert store.record_action(run["id"], action)
            model.runs[run["id"]]["actions"].append(action)
    elif kind == "import":
        _, runs, batch_size, again = op
        counts = store.import_runs(runs, batch_size=batch_size)
        fresh = 0
        for run in runs:
            if run["id"] not in model.runs:
                model.runs[run["id"]] = dict(run)
                fresh += 1
        assert counts["imported"] == fresh
        if again:
            assert store.import_runs(runs, batch_size=batch_size)["imported"] == 0
    elif kind == "purge":
        _, values, everything = op
        f = Filters() if everything else Filters.parse(**values)
        doomed = [r["id"] for r in model.matching(f) if r["status"] != "running"]
        counted = store.purge(f, all=everything, dry_run=True)
        token = Token.parse(counted.pop("token"))
        assert counted == {"matched": len(doomed), "deleted": 0}
        assert (token.matched, token.digest) == set_digest(doomed)
        assert store.purge(f, all=everything, dry_run=False, expect=token) == {
            "matched": len(doomed),
            "deleted": len(doomed),
            "token": None,
        }
        for run_id in doomed:
            del model.runs[run_id]
    elif kind == "reap":
        store.reap_interrupted()
        model.reap(live[0])


db_path = pytest.fixture(engine_db_path, name="db_path")  # the store fixture, both engines


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> PgServer | None:
    """Where the properties' stores live: None for a SQLite file, else the suite's server
    (session-scoped, as Hypothesis wants what is shared by a test's examples)."""
    return request.getfixturevalue("pg_server") if request.param == "postgresql" else None


@contextmanager
def scratch_store(server: PgServer | None) -> Iterator[Store]:
    """A new empty store for one example: a SQLite file, or a schema of its own."""
    with tempfile.TemporaryDirectory() as scratch:
        schema = f"h_{uuid.uuid4().hex[:20]}"
        database = Path(scratch) / "stats.db" if server is None else server.schema_url(schema)
        store = open_store(database, node=NODE, stale_after=STALE_AFTER)
        try:
            store.summary(Filters())  # the first read reaps; later reaps are explicit
            yield store
        finally:
            store.close()
            if server is not None:
                server.admin(f"DROP SCHEMA {schema} CASCADE", database=server.database)


def check_answers(store: Store, model: Model, values: dict[str, str | None]) -> None:
    f = Filters.parse(**values)
    runs, shown = model.matching(f), f.as_json()
    assert store.summary(f) == Expected.summary(runs, shown)
    for sort in ("runs", "saved", "name"):
        assert store.policies(f, sort=sort) == Expected.policies(runs, shown, sort)
    for by in ("day", "week", "month"):
        assert store.trend(f, by=by) == Expected.trend(runs, shown, by)
    assert store.codecs(f) == naive_codecs(runs, f)
    for name in POLICIES[1:]:
        if f.policy is not None and f.policy != name:
            continue
        if not any(run["policy"] == name for run in runs):
            with pytest.raises(NotFound):
                store.policy(name, f)
        else:
            assert store.policy(name, f) == Expected.policy(name, runs, shown)


# ---------------------------------------------------------------------------------------------
# the properties

PROPERTY = settings(
    max_examples=int(os.environ.get("VPO_STATS_ROLLUP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(history=ops, questions=st.lists(filters(), min_size=1, max_size=8))
def test_aggregates_equal_a_naive_computation(
    server: PgServer | None, history: list[tuple], questions: list
) -> None:
    note(f"history={history!r}")
    live = this_process()
    model = Model()
    with scratch_store(server) as store:
        for op in history:
            apply(store, model, op, live)
        check_answers(store, model, {})
        for values in questions:
            note(f"filters={values!r}")
            check_answers(store, model, values)


@PROPERTY
@given(history=ops)
def test_rebuilt_rollups_equal_the_incremental_ones(
    server: PgServer | None, history: list[tuple]
) -> None:
    note(f"history={history!r}")
    live = this_process()
    model = Model()
    with scratch_store(server) as store:
        for op in history:
            apply(store, model, op, live)
        incremental = rollup_rows(store.conn)
        store.rebuild_rollups()
        assert rollup_rows(store.conn) == incremental


def test_a_run_reaped_then_finished_moves_between_rollup_rows(store: Store) -> None:
    """The late after-file of a run already counted as interrupted replaces it, not adds."""
    run_id = str(uuid.uuid4())
    store.begin_run(
        {
            "id": run_id,
            "path": "/m/a.mkv",
            "policy": "p",
            "node": store.node,
            "status": "running",
            "started_at": "2024-01-01T23:59:59.999999Z",
            "size_before_bytes": 100,
            "pid": DEAD_PID,
        }
    )
    assert store.reap_interrupted() == 1
    assert store.summary(Filters())["interrupted"] == 1
    store.finish_run(run_id, {"status": "succeeded", "size_after_bytes": 40}, [])
    whole = store.summary(Filters())
    assert (whole["runs"], whole["interrupted"], whole["succeeded"]) == (1, 0, 1)
    assert whole["saved_bytes"] == 60
    rows = store.conn.execute("SELECT status, runs FROM rollup_daily").fetchall()
    assert [tuple(r) for r in rows] == [("succeeded", 1)]
