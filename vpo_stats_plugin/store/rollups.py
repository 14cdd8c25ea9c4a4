"""Rollups: finished runs summed per key, at several levels, in the same transaction as each write.

One table of per-run SQL expressions drives everything: adding a run to its rollup rows,
taking runs out again (purge, a second finish), rebuilding rollups from raw rows, and summing
the raw runs of the edge days that a filter cuts in two. So an answer read from rollups and one
computed from raw rows cannot drift apart.

Three families of sums, each kept at levels that differ only in their key:

| family  | summed over                       | levels (table: key)                                   |
|---------|-----------------------------------|-------------------------------------------------------|
| runs    | finished runs                     | rollup_daily: day, policy, node, status               |
|         |                                   | rollup_total: policy, node, status (all time)         |
|         |                                   | rollup_day_node: day, node, status                    |
| actions | actions of finished runs          | rollup_actions: day, policy, node, status, type       |
|         |                                   | rollup_actions_total: policy, node, status, type      |
| codecs  | succeeded runs naming a codec     | rollup_codecs: day, policy, node, status, source, target |
|         |                                   | rollup_codecs_total: policy, node, status, source, target |
| durations | finished runs with a duration   | rollup_durations: policy, node, status (all time)     |

A question reads the smallest level whose key holds what it filters and groups by (see
``aggregate.py``), so whole-history answers read rows that do not grow with history.
``rollup_paths`` (runs per path, running ones included) counts distinct files, and
``rollup_files`` how many paths it holds, in shards by path.

No row is one that every node's runs update (CONTRACT 7: nodes sharing a server would queue on
it): each runs level has the node in its key, and a new file adds to its own shard.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .dialect import SQLITE, SQLiteDialect, dialect_of

KEY = ("day", "policy", "node", "status")
KEY_EXPR = {
    "day": "substr(r.started_at, 1, 10)",
    "policy": "COALESCE(r.policy, '')",
    "node": "r.node",
    "status": "r.status",
}
FINISHED = "r.status != 'running'"
DAY_START = "T00:00:00.000000Z"
DAY_END = "T23:59:59.999999Z"


def _removed(kind: str) -> str:
    before, after = f"r.tracks_before_{kind}", f"r.tracks_after_{kind}"
    return f"CASE WHEN {before} > {after} THEN {before} - {after} ELSE 0 END"


# CONTRACT 4: sizes count over finished runs whose size after is known (a running run that
# already carries a size, as an imported one may, waits until it is finished)
_SIZED = (
    "r.status != 'running' AND r.size_before_bytes IS NOT NULL AND r.size_after_bytes IS NOT NULL"
)

# Summed columns of the runs family: name -> expression over one run row ``r``.
SUMS = {
    "runs": "1",
    "sized_runs": f"CASE WHEN {_SIZED} THEN 1 ELSE 0 END",
    "size_before_bytes": f"CASE WHEN {_SIZED} THEN r.size_before_bytes ELSE 0 END",
    "size_after_bytes": f"CASE WHEN {_SIZED} THEN r.size_after_bytes ELSE 0 END",
    "removed_audio": _removed("audio"),
    "removed_subtitle": _removed("subtitle"),
    "removed_attachment": _removed("attachment"),
    "videos_transcoded": (
        "CASE WHEN r.status = 'succeeded' AND r.video_target_codec IS NOT NULL "
        "AND COALESCE(r.video_transcode_skipped, 0) = 0 THEN 1 ELSE 0 END"
    ),
    "videos_transcode_skipped": "CASE WHEN r.video_transcode_skipped = 1 THEN 1 ELSE 0 END",
    "audio_tracks_transcoded": "COALESCE(r.audio_tracks_transcoded, 0)",
    "audio_tracks_preserved": "COALESCE(r.audio_tracks_preserved, 0)",
    "timed_runs": "CASE WHEN r.duration_seconds IS NOT NULL THEN 1 ELSE 0 END",
    "duration_seconds": "COALESCE(r.duration_seconds, 0)",
}
# Extremes: name -> (aggregate, expression).
EXTREMES = {"first_run_at": ("MIN", "r.started_at"), "last_run_at": ("MAX", "r.started_at")}
COLUMNS = (*SUMS, *EXTREMES)


@dataclass(frozen=True)
class Family:
    """Sums of one kind of source row, with the extra key columns that split them."""

    name: str
    join: str  # what is joined to the runs ``r`` to reach the summed rows ("" for runs)
    sums: dict[str, str]
    extremes: dict[str, tuple[str, str]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # key column -> expression
    condition: str = "TRUE"  # which source rows count (besides the run being finished)

    @property
    def counter(self) -> str:
        """The summed column that says whether a rollup row still counts anything."""
        return next(iter(self.sums))


RUNS = Family("runs", "", SUMS, EXTREMES)
ACTIONS = Family(
    "actions",
    # CROSS JOIN: SQLite keeps runs as the outer loop (else a batch may scan every action)
    " CROSS JOIN actions a",
    {"count": "1", "failed": "CASE WHEN a.success != 0 THEN 0 ELSE 1 END"},
    extra={"type": "COALESCE(a.type, '')"},
    condition="a.run_id = r.id",
)
CODECS = Family(
    "codecs",
    "",
    {
        "runs": "1",
        "saved_bytes": (
            "CASE WHEN r.size_before_bytes IS NOT NULL AND r.size_after_bytes IS NOT NULL "
            "THEN r.size_before_bytes - r.size_after_bytes ELSE 0 END"
        ),
    },
    extra={
        "source": "COALESCE(r.video_source_codec, '')",
        "target": (
            "CASE WHEN r.video_transcode_skipped = 1 THEN '' "
            "ELSE COALESCE(r.video_target_codec, '') END"
        ),
    },
    condition=(
        "r.status = 'succeeded' AND "
        "(r.video_source_codec IS NOT NULL OR r.video_target_codec IS NOT NULL)"
    ),
)

# The run-time histogram of GET /metrics: fixed upper bounds in seconds, from a quick remux to a
# long transcode (docs/metrics.md); each ``le_N`` column counts the runs that took at most N
# seconds (cumulative, as Prometheus buckets are), ``timed_runs`` is the +Inf bucket.
DURATION_BOUNDS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
DURATIONS = Family(
    "durations",
    "",
    {
        "timed_runs": "1",
        **{
            f"le_{b}": f"CASE WHEN r.duration_seconds <= {b} THEN 1 ELSE 0 END"
            for b in DURATION_BOUNDS
        },
    },
    condition="r.duration_seconds IS NOT NULL",
)
FAMILIES = (RUNS, ACTIONS, CODECS, DURATIONS)


@dataclass(frozen=True)
class Level:
    """One rollup table: a family summed by ``key`` (a subset of KEY, in table order)."""

    table: str
    family: Family
    key: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every key column, the family's extra ones last."""
        return (*self.key, *self.family.extra)

    def key_exprs(self) -> list[str]:
        return [KEY_EXPR[k] for k in self.key] + list(self.family.extra.values())


LEVELS = (
    Level("rollup_daily", RUNS, KEY),
    Level("rollup_total", RUNS, ("policy", "node", "status")),
    Level("rollup_day_node", RUNS, ("day", "node", "status")),
    Level("rollup_actions", ACTIONS, KEY),
    Level("rollup_actions_total", ACTIONS, ("policy", "node", "status")),
    Level("rollup_codecs", CODECS, KEY),
    Level("rollup_codecs_total", CODECS, ("policy", "node", "status")),
    Level("rollup_durations", DURATIONS, ("policy", "node", "status")),
)


def levels(family: Family) -> list[Level]:
    """The levels of ``family``, fewest rows first: all-time ones, then by key length."""
    return sorted(
        (lv for lv in LEVELS if lv.family is family),
        key=lambda lv: ("day" in lv.key, len(lv.key)),
    )


# --- per-run contributions ------------------------------------------------------------------


def contributions(level: Level, where: str, runs: str = "runs r") -> str:
    """SELECT the sums of the finished source rows matching ``where``, grouped by ``level``.

    ``runs`` is the FROM clause that yields the runs ``r`` (a batch can drive it).
    """
    fam = level.family
    keys = ", ".join(f"{expr} AS {name}" for name, expr in zip(level.columns, level.key_exprs()))
    values = [f"SUM({expr}) AS {name}" for name, expr in fam.sums.items()]
    values += [f"{agg}({expr}) AS {name}" for name, (agg, expr) in fam.extremes.items()]
    return (
        f"SELECT {keys}, {', '.join(values)} FROM {runs}{fam.join} "
        f"WHERE ({where}) AND {FINISHED} AND {fam.condition} "
        f"GROUP BY {', '.join(level.key_exprs())}"
    )


def _value_names(level: Level) -> list[str]:
    return [*level.family.sums, *level.family.extremes]


def _upsert(level: Level, select_sql: str, dialect: SQLiteDialect = SQLITE) -> str:
    fam = level.family
    updates = [f"{c} = {level.table}.{c} + excluded.{c}" for c in fam.sums]
    updates += [
        f"{c} = {dialect.pair(agg, f'{level.table}.{c}', f'excluded.{c}')}"
        for c, (agg, _) in fam.extremes.items()
    ]
    columns = ", ".join([*level.columns, *_value_names(level)])
    return (
        f"INSERT INTO {level.table} ({columns}) {select_sql} "
        f"ON CONFLICT ({', '.join(level.columns)}) DO UPDATE SET {', '.join(updates)}"
    )


def adding_sql(
    level: Level, where: str, dialect: SQLiteDialect = SQLITE, runs: str = "runs r"
) -> str:
    """The upsert that adds the finished runs ``where`` selects (from ``runs``, one run
    here) to ``level``, its rows taken in key order as every writer takes them, so that no
    two deadlock."""
    select = contributions(level, where, runs)
    if level.family.join:  # one run gives several rows only through what is joined to it
        select += f" ORDER BY {', '.join(level.key_exprs())}"
    return _upsert(level, select, dialect)


@cache
def _add_run(dialect: SQLiteDialect) -> list[str]:
    return [adding_sql(lv, "r.id = ?", dialect) for lv in LEVELS]


@cache
def _add_action(dialect: SQLiteDialect) -> list[str]:
    return [
        adding_sql(lv, "r.id = ? AND a.seq = ?", dialect) for lv in LEVELS if lv.family is ACTIONS
    ]


def add_run(conn: sqlite3.Connection, run_id: str) -> None:
    """Add one just-finished run (its actions and codecs too) to every rollup level."""
    for sql in _add_run(dialect_of(conn)):
        conn.execute(sql, (run_id,))
    conn.execute(count_ended_sql("r.id = ?"), (run_id,))


def count_ended_sql(where: str, runs: str = "runs r") -> str:
    """The files of the finished runs ``where`` selects, counted within their end status."""
    return (
        "INSERT INTO rollup_path_keys (dim, value, path, runs) SELECT 'status', r.status, "
        f"r.path, COUNT(*) FROM {runs} WHERE ({where}) AND r.status != 'running' "
        "GROUP BY r.status, r.path ORDER BY r.status, r.path ON CONFLICT (dim, value, path) "
        "DO UPDATE SET runs = rollup_path_keys.runs + excluded.runs"
    )


# A batch: the runs just inserted (``dialect.batch_where`` finds them); each family is summed
# once at its finest level into a scratch table that every level of the family is upserted from.


def _from_scratch(level: Level) -> str:
    fam = level.family
    keys = ", ".join(level.columns)
    values = [f"SUM({c})" for c in fam.sums]
    values += [f"{agg}({c})" for c, (agg, _) in fam.extremes.items()]
    # in key order: every writer takes a level's rows in the same order, so none deadlock
    return (
        f"SELECT {keys}, {', '.join(values)} FROM rollup_scratch WHERE TRUE GROUP BY {keys} "
        f"ORDER BY {keys}"
    )


def add_batch(conn: sqlite3.Connection, where: str, params: list[Any]) -> None:
    """Add the finished runs ``where`` selects (a batch just inserted) to every rollup level."""
    dialect = dialect_of(conn)
    for family in FAMILIES:
        finest = max(levels(family), key=lambda lv: len(lv.key))
        conn.execute("DROP TABLE IF EXISTS rollup_scratch")
        conn.execute("CREATE TEMP TABLE rollup_scratch AS " + contributions(finest, where), params)
        for level in (lv for lv in LEVELS if lv.family is family):  # LEVELS order, as all
            conn.execute(_upsert(level, _from_scratch(level), dialect))
    conn.execute("DROP TABLE IF EXISTS rollup_scratch")
    conn.execute(count_ended_sql(where), params)


def add_action(conn: sqlite3.Connection, run_id: str, seq: int) -> None:
    """Add one action recorded after its run was finished (a late report)."""
    for sql in _add_action(dialect_of(conn)):
        conn.execute(sql, (run_id, seq))


# --- paths ---------------------------------------------------------------------------------

PATH_CHUNK = 500
# which of rollup_files' rows counts a path (an SQL expression over ``path``, as m006 made them)
FILE_SHARD = "length(path) % 64"


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), PATH_CHUNK):
        yield items[i : i + PATH_CHUNK]


def add_paths(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Count ``counts[path]`` more runs of each path (running ones included), and new paths.

    A path another node adds at the same moment is waited for, never inserted twice; paths
    and shards are locked in sorted order, the same for every writer, so no two deadlock.
    """
    shards: dict[int, int] = {}
    for chunk in _chunks(sorted(counts)):
        values = ", ".join("(?, ?)" for _ in chunk)
        made = conn.execute(
            f"INSERT INTO rollup_paths (path, runs) VALUES {values} ON CONFLICT (path) "
            f"DO NOTHING RETURNING path, {FILE_SHARD}",
            [v for path in chunk for v in (path, counts[path])],
        ).fetchall()
        for _, shard in made:
            shards[shard] = shards.get(shard, 0) + 1
        new = {row[0] for row in made}
        conn.executemany(
            "UPDATE rollup_paths SET runs = runs + ? WHERE path = ?",
            [(counts[p], p) for p in chunk if p not in new],
        )
    conn.executemany(
        "INSERT INTO rollup_files (shard, files) VALUES (?, ?) ON CONFLICT (shard) "
        "DO UPDATE SET files = rollup_files.files + excluded.files",
        sorted(shards.items()),
    )


# the groups a file is also counted in when its run begins (rollup_path_keys.dim), and each
# run's value there; the end status ('status') is counted when the run ends (add_run)
PATH_KEYS = (("policy", "COALESCE(r.policy, '')"), ("node", "r.node"))
Files = dict[tuple[str, str | None, str], int]  # (path, policy, node) -> runs


def _keyed(runs: Files) -> tuple[dict[str, int], dict[tuple[str, str, str], int]]:
    by_path: dict[str, int] = {}
    keyed: dict[tuple[str, str, str], int] = {}
    for (path, policy, node), n in runs.items():
        by_path[path] = by_path.get(path, 0) + n
        for key in (("policy", policy or "", path), ("node", node, path)):
            keyed[key] = keyed.get(key, 0) + n
    return by_path, keyed


def count_files(conn: sqlite3.Connection, runs: Files) -> None:
    """Count ``runs[(path, policy, node)]`` more runs of each path (new files too), within the
    whole history and within its policy and its node."""
    by_path, keyed = _keyed(runs)
    add_paths(conn, by_path)
    conn.executemany(
        "INSERT INTO rollup_path_keys (dim, value, path, runs) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (dim, value, path) DO UPDATE SET runs = rollup_path_keys.runs + excluded.runs",
        [(*key, n) for key, n in sorted(keyed.items())],
    )


def uncount_files(conn: sqlite3.Connection, runs: Files) -> None:
    """Count fewer runs, as ``count_files`` counted them; a file left with none is forgotten."""
    by_path, keyed = _keyed(runs)
    remove_paths(conn, by_path)
    _uncount_keys(conn, keyed)


def _uncount_keys(conn: sqlite3.Connection, keyed: dict[tuple[str, str, str], int]) -> None:
    ordered = sorted(keyed.items())
    conn.executemany(
        "UPDATE rollup_path_keys SET runs = runs - ? WHERE dim = ? AND value = ? AND path = ?",
        [(n, *key) for key, n in ordered],
    )
    conn.executemany(
        "DELETE FROM rollup_path_keys WHERE dim = ? AND value = ? AND path = ? AND runs <= 0",
        [key for key, _ in ordered],
    )


def files_within(conn: sqlite3.Connection, dim: str, value: str) -> int:
    """How many files have runs within one policy, one node, or one end status."""
    return conn.execute(
        "SELECT COUNT(*) FROM rollup_path_keys WHERE dim = ? AND value = ?", (dim, value)
    ).fetchone()[0]


def remove_paths(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Count ``counts[path]`` fewer runs of each path; a path left with none is forgotten."""
    ordered = sorted(counts)
    conn.executemany(
        "UPDATE rollup_paths SET runs = runs - ? WHERE path = ?", [(counts[p], p) for p in ordered]
    )
    shards: dict[int, int] = {}
    for chunk in _chunks(ordered):
        marks = ", ".join("?" * len(chunk))
        for (shard,) in conn.execute(
            f"DELETE FROM rollup_paths WHERE runs <= 0 AND path IN ({marks}) "
            f"RETURNING {FILE_SHARD}",
            chunk,
        ).fetchall():
            shards[shard] = shards.get(shard, 0) + 1
    conn.executemany(
        "UPDATE rollup_files SET files = files - ? WHERE shard = ?",
        [(n, shard) for shard, n in sorted(shards.items())],
    )
    if shards:  # as rebuild leaves them: no row for a shard without files
        conn.execute("DELETE FROM rollup_files WHERE files <= 0")


def files(conn: sqlite3.Connection) -> int:
    """How many distinct paths have runs."""
    return conn.execute("SELECT COALESCE(SUM(files), 0) FROM rollup_files").fetchone()[0]


# --- taking runs out ------------------------------------------------------------------------


@contextmanager
def removing(conn: sqlite3.Connection, where: str, params: Iterable[Any]) -> Iterator[None]:
    """Take the finished runs matching ``where`` (over ``r``) out of every level, around a change.

    Their sums are subtracted before the body runs (it deletes or rewrites those runs); after
    it, rows left counting nothing are deleted and the first/last times of rows that may have
    lost their extreme run are read again from the raw rows.
    """
    params = list(params)
    suspects: list[tuple[Level, dict[str, Any]]] = []
    touched: list[tuple[Level, list[list[Any]]]] = []
    for level in LEVELS:
        names = _value_names(level)
        rows = conn.execute(contributions(level, where), params).fetchall()
        if not rows:
            continue
        # in key order, as add_batch takes them: a purge and an import never deadlock
        rows.sort(key=lambda row: tuple("" if row[c] is None else row[c] for c in level.columns))
        key_match = " AND ".join(f"{c} = ?" for c in level.columns)
        current = f"SELECT {', '.join(names)} FROM {level.table} WHERE {key_match}"
        sets = ", ".join(f"{c} = {c} - ?" for c in level.family.sums)
        update = f"UPDATE {level.table} SET {sets} WHERE {key_match}"
        keys = []
        for row in rows:
            key = [row[c] for c in level.columns]
            keys.append(key)
            if level.family.extremes:
                before = conn.execute(current, key).fetchone()
                counter = level.family.counter
                # a row left counting nothing is deleted below: no times to read again (a
                # purge of everything: every row; on a server the runs just deleted are
                # still in the indexes those reads walk)
                if (
                    before is not None
                    and before[counter] > row[counter]
                    and any(before[c] == row[c] for c in level.family.extremes)
                ):
                    suspects.append((level, dict(zip(level.columns, key))))
            conn.execute(update, [row[c] for c in level.family.sums] + key)
        touched.append((level, keys))
    ended = conn.execute(
        f"SELECT r.status, r.path, COUNT(*) FROM runs r WHERE ({where}) "
        "AND r.status != 'running' GROUP BY r.status, r.path",
        params,
    ).fetchall()
    _uncount_keys(conn, {("status", status, path): n for status, path, n in ended})
    yield
    for level, keys in touched:  # rows left counting nothing go
        key_match = " AND ".join(f"{c} = ?" for c in level.columns)
        conn.executemany(
            f"DELETE FROM {level.table} WHERE {key_match} AND {level.family.counter} <= 0", keys
        )
    for level, key in suspects:
        _reread_extremes(conn, level, key)


def _reread_extremes(conn: sqlite3.Connection, level: Level, key: dict[str, Any]) -> None:
    """Set a rollup row's first/last run times from the raw runs it sums (if it still exists)."""
    clauses, params = [FINISHED], []
    for name, value in key.items():
        if name == "day":
            clauses.append("r.started_at >= ? AND r.started_at <= ?")
            params += [value + DAY_START, value + DAY_END]
        elif name == "policy":
            # keeps an index on policy usable where the policy is not empty
            clauses.append("(r.policy = ? OR (? = '' AND r.policy IS NULL))")
            params += [value, value]
        else:
            clauses.append(f"{KEY_EXPR[name]} = ?")
            params.append(value)
    where = " AND ".join(clauses)
    # ORDER BY ... LIMIT 1 walks an index on (x, started_at) from one end
    first = conn.execute(
        f"SELECT r.started_at FROM runs r WHERE {where} ORDER BY r.started_at LIMIT 1", params
    ).fetchone()
    last = conn.execute(
        f"SELECT r.started_at FROM runs r WHERE {where} ORDER BY r.started_at DESC LIMIT 1", params
    ).fetchone()
    key_match = " AND ".join(f"{c} = ?" for c in key)
    conn.execute(
        f"UPDATE {level.table} SET first_run_at = ?, last_run_at = ? WHERE {key_match}",
        [first and first[0], last and last[0], *key.values()],
    )


# --- rebuilding -----------------------------------------------------------------------------


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the raw rows (inside the caller's transaction).

    The daily level of each family is summed from the raw rows; coarser levels from it.
    """
    dialect = dialect_of(conn)
    for level in LEVELS:
        conn.execute(f"DELETE FROM {level.table}")
    conn.execute("DELETE FROM rollup_paths")
    conn.execute("DELETE FROM rollup_files")
    conn.execute("DELETE FROM rollup_path_keys")
    for family in FAMILIES:
        daily, *coarser = sorted(levels(family), key=lambda lv: -len(lv.key))
        conn.execute(_upsert(daily, contributions(daily, "TRUE"), dialect))
        for level in coarser:
            keys = ", ".join(level.columns)
            values = [f"SUM({c})" for c in family.sums]
            values += [f"{agg}({c})" for c, (agg, _) in family.extremes.items()]
            conn.execute(
                f"INSERT INTO {level.table} ({keys}, {', '.join(_value_names(level))}) "
                f"SELECT {keys}, {', '.join(values)} FROM {daily.table} GROUP BY {keys}"
            )
    conn.execute(
        "INSERT INTO rollup_paths (path, runs) SELECT path, COUNT(*) FROM runs GROUP BY path"
    )
    conn.execute(
        f"INSERT INTO rollup_files (shard, files) SELECT {FILE_SHARD}, COUNT(*) "
        f"FROM rollup_paths GROUP BY {FILE_SHARD}"
    )
    for dim, value in PATH_KEYS:
        conn.execute(
            f"INSERT INTO rollup_path_keys (dim, value, path, runs) SELECT '{dim}', {value}, "
            f"r.path, COUNT(*) FROM runs r GROUP BY {value}, r.path"
        )
    conn.execute(count_ended_sql("TRUE"))


TABLES = (*(level.table for level in LEVELS), "rollup_paths", "rollup_files", "rollup_path_keys")


def _copy(conn: sqlite3.Connection, prefix: str, filled: tuple[str, ...]) -> None:
    """Each rollup table as a temporary ``<prefix><table>``, keys included; those in
    ``filled`` with their rows."""
    dialect = dialect_of(conn)
    for table in TABLES:
        dialect.copy_table(conn, table, f"{prefix}{table}", rows=table in filled)


def keep_copy(conn: sqlite3.Connection) -> None:
    """Copy every rollup table into ``temp.before_<table>``, keys included (for ``differences``)."""
    _copy(conn, "before_", TABLES)


def shadow(conn: sqlite3.Connection) -> None:
    """Temporary twins of the rollup tables, which hide them from unqualified names: ``rebuild``
    then writes only there, so a check needs no write access (drop them with ``unshadow``)."""
    _copy(conn, "", ())


def unshadow(conn: sqlite3.Connection) -> None:
    """Drop the twins ``shadow`` made: the stored rollup tables are seen again."""
    temp = dialect_of(conn).temp
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {temp}{table}")


def differences(conn: sqlite3.Connection) -> dict[str, int]:
    """Per rollup table, its rows that are not in the copy ``keep_copy`` made, or not the same
    (sums of seconds within a billionth: added run by run or all at once, floats differ in the
    last bits), plus the copy's rows that are gone; the copies are dropped."""
    out = {}
    dialect = dialect_of(conn)
    for table in TABLES:
        columns = dialect.columns(conn, table)
        same_key = " AND ".join(f"a.{c.name} = b.{c.name}" for c in columns if c.in_key)
        differ = " OR ".join(
            f"(a.{c.name} IS NULL) != (b.{c.name} IS NULL) OR abs(a.{c.name} - b.{c.name}) > "
            f"1e-9 * {dialect.greatest(f'abs(a.{c.name})', f'abs(b.{c.name})', '1')}"
            if c.is_real
            else dialect.distinct(f"a.{c.name}", f"b.{c.name}")
            for c in columns
            if not c.in_key
        )
        before = f"{dialect.temp}before_{table}"
        out[table] = sum(
            conn.execute(sql).fetchone()[0]
            for sql in (
                f"SELECT COUNT(*) FROM {table} a WHERE NOT EXISTS "
                f"(SELECT 1 FROM {before} b WHERE {same_key})",
                f"SELECT COUNT(*) FROM {before} b WHERE NOT EXISTS "
                f"(SELECT 1 FROM {table} a WHERE {same_key})",
                f"SELECT COUNT(*) FROM {table} a JOIN {before} b ON {same_key} WHERE {differ}",
            )
        )
        conn.execute(f"DROP TABLE {before}")
    return out


# --- reading --------------------------------------------------------------------------------


def _wanted(family: Family, columns: tuple[str, ...] | None) -> tuple[dict, dict]:
    if columns is None:
        return family.sums, family.extremes
    sums = {n: e for n, e in family.sums.items() if n in columns or n == family.counter}
    return sums, {n: e for n, e in family.extremes.items() if n in columns}


def _split(counter: str, statuses: tuple[str, ...]) -> list[str]:
    """The counter summed once per status, in a column named after the status."""
    return [f"SUM(CASE WHEN r.status = '{s}' THEN {counter} ELSE 0 END) AS {s}" for s in statuses]


def raw_select(
    where: str,
    group: tuple[str, ...],
    family: Family = RUNS,
    columns: tuple[str, ...] | None = None,
    split: tuple[str, ...] = (),
) -> str:
    """Sum the raw rows of runs matching ``where`` (running ones too), grouped by ``group``.

    ``columns`` limits the sums to those (the family's counter is always there); each status
    in ``split`` adds a column counting the rows of that status.
    """
    sums, extremes = _wanted(family, columns)
    exprs = [KEY_EXPR.get(k) or family.extra[k] for k in group]
    keys = [f"{expr} AS {k}" for expr, k in zip(exprs, group)]
    values = [f"SUM({expr}) AS {name}" for name, expr in sums.items()]
    values += _split(family.sums[family.counter], split)
    values += [f"{agg}({expr}) AS {name}" for name, (agg, expr) in extremes.items()]
    group_sql = f" GROUP BY {', '.join(exprs)}" if group else ""
    return (
        f"SELECT {', '.join(keys + values)} FROM runs r{family.join} "
        f"WHERE ({where}) AND {family.condition}{group_sql}"
    )


def rollup_select(
    level: Level,
    where: str,
    group: tuple[str, ...],
    columns: tuple[str, ...] | None = None,
    split: tuple[str, ...] = (),
) -> str:
    """Sum the rows of ``level`` matching ``where`` (over alias ``r``), grouped by ``group``."""
    sums, extremes = _wanted(level.family, columns)
    keys = [f"r.{k} AS {k}" for k in group]
    values = [f"SUM(r.{name}) AS {name}" for name in sums]
    values += _split(f"r.{level.family.counter}", split)
    values += [f"{agg}(r.{name}) AS {name}" for name, (agg, _) in extremes.items()]
    group_sql = (" GROUP BY " + ", ".join(f"r.{k}" for k in group)) if group else ""
    return f"SELECT {', '.join(keys + values)} FROM {level.table} r WHERE {where}{group_sql}"
