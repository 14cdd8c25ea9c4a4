"""A PostgreSQL URL as `database`: parsed as libpq parses it, never a file, never its password.

The parser is checked against libpq itself (psycopg's `conninfo_to_dict`, the `postgresql`
extra the test extra installs). The commands and a real host run in their own processes, in an
empty current directory, with and without psycopg importable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from history import vpo_stats_script
from hostproc import host_env, run_host
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from vpo_stats_plugin import dburl
from vpo_stats_plugin.dburl import BadURL, DatabaseURL, mask, parse

SECRET = "Pa55-w0rd.sekrit"
URL = f"postgres://user:{SECRET}@127.0.0.1:1/stats"
INSTALL = "pip install 'vpo-stats-plugin[postgresql]'"
NO_PSYCOPG = "import sys; sys.modules['psycopg'] = None\n"  # a Python without the extra


# --- the parser agrees with libpq ------------------------------------------------------------

AGREED = [
    URL,
    "postgresql://",
    "postgresql://db.lan",
    "postgresql://db.lan:5433",
    "postgresql://vpo@db.lan/vpo_stats",
    "postgresql://vpo:p%40ss%2Fw%25rd@db.lan/vpo_stats",
    "postgresql://:only-a-password@db.lan/x",
    "postgresql://vpo:@db.lan/x",
    "postgresql://u:p?ss@h/d",
    "postgresql://[::1]:5432/stats",
    "postgresql://[2001:db8::7]/stats?connect_timeout=3",
    "postgresql://h1:5432,h2:5433,[::1]/stats?target_session_attrs=read-write",
    "postgresql://h1,h2:5433/stats",
    "postgresql:///stats?host=/var/run/postgresql",
    "postgresql://%2Fvar%2Frun%2Fpostgresql/stats",
    "postgresql://h/stats?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=vpo%20stats",
    "postgresql://h/stats?ssl=true",
    "postgresql://u@h/stats?password=from%20query&options=-csearch_path%3Dstats",
    "postgresql://u@h/stats?user=other&dbname=else&port=6000",
    "postgresql://h/stats?",
    "postgresql://h/stats?application_name=&",
    "postgresql:// h /stats?application_name= x ",  # spaces around a part are dropped
    "postgresql://h:abc/stats",  # libpq leaves the port to the connection attempt
    "postgresql://h/st%C3%A4ts",
    "postgresql://h/?application_name=x",
]


@pytest.mark.parametrize("text", AGREED)
def test_the_parser_reads_what_libpq_reads(text: str) -> None:
    assert parse(text).params == conninfo_to_dict(text)


REFUSED_BY_BOTH = [
    "postgresql://u:p%zz@h/d",
    "postgresql://u:p%4@h/d",
    "postgresql://u:p%00@h/d",
    "postgresql://[::1/d",
    "postgresql://[]/d",
    "postgresql://[::1]x/d",
    "postgresql://h/d?sslmode",
    "postgresql://h/d?password=a=b",
    "postgresql://h/d?sslmode=require&&application_name=x",
    "postgresql://u:p w@h/d",  # spaces inside a part are refused
    "postgresql://h/%C3",  # not UTF-8 (psycopg: a UnicodeDecodeError)
]


@pytest.mark.parametrize("text", REFUSED_BY_BOTH)
def test_what_libpq_refuses_is_refused(text: str) -> None:
    with pytest.raises((ProgrammingError, UnicodeDecodeError)):
        conninfo_to_dict(text)
    with pytest.raises(BadURL):
        parse(text)


PART = st.none() | st.text(alphabet="aZ9-._~:@/?&=%,[]+ !$", max_size=8)


def _url(user: str | None, password: str | None, host: str | None, dbname: str | None,
         query: str | None) -> str:  # fmt: skip
    auth = "" if user is None else user + ("" if password is None else f":{password}") + "@"
    tail = ("" if dbname is None else f"/{dbname}") + ("" if query is None else f"?{query}")
    # spaces around the whole value are dropped before it goes to libpq, as conninfo() does
    return f"postgresql://{auth}{host or ''}{tail}".strip()


@settings(max_examples=500, deadline=None)
@given(user=PART, password=PART, host=PART, dbname=PART, query=PART)
def test_the_parser_and_libpq_agree_on_anything(
    user: str | None, password: str | None, host: str | None, dbname: str | None,
    query: str | None,
) -> None:  # fmt: skip
    text = _url(user, password, host, dbname, query)
    try:
        theirs: Any = conninfo_to_dict(text)
    except ProgrammingError as err:
        theirs, why = None, str(err).strip()
    except UnicodeDecodeError:  # psycopg cannot give libpq's answer as text: refused too
        theirs, why = None, None
    try:
        mine: Any = parse(text).params
    except BadURL:
        mine = None
    if mine is None and theirs is not None:
        # stricter on purpose: an unencoded @ or / that would put a password in sight
        assert "@" in theirs.get("host", "") + theirs.get("dbname", ""), (text, theirs)
    elif theirs is None and mine is not None:
        # only libpq knows its option names: refused through validate(), in libpq's words
        with pytest.raises(BadURL) as caught:
            dburl.validate(parse(text))
        assert why is None or str(caught.value) == parse(text).scrub(why)
    else:
        assert mine == theirs, text
    if mine is not None:  # the masked text is the same URL with *** for each secret
        masked = parse(parse(text).masked).params
        for key in dburl.SECRET_KEYS:
            assert masked.pop(key, "") in ("", dburl.MASK), text
            mine.pop(key, None)
        assert masked == mine, text


# --- the password is never shown -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (URL, "postgres://user:***@127.0.0.1:1/stats"),
        ("POSTGRESQL://u:pw@h/d", "POSTGRESQL://u:***@h/d"),
        ("postgresql://u@h/d?password=pw&sslpassword=k3y&sslmode=require",
         "postgresql://u@h/d?password=***&sslpassword=***&sslmode=require"),
        ("postgresql://:pw@h", "postgresql://:***@h"),
        ("postgresql://u:@h/d", "postgresql://u:@h/d"),
    ],
)  # fmt: skip
def test_shown_with_the_password_masked(text: str, shown: str) -> None:
    url = parse(text)
    assert str(url) == url.masked == shown == mask(text)
    assert repr(url) == f"DatabaseURL({shown!r})"
    assert url.conninfo().lower() == text.lower()  # what psycopg gets: all of it


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://u:{SECRET}@ss@h/d",  # @ in the password, not encoded
        f"postgresql://u:{SECRET}/x@h/d",  # / in the password, not encoded
        f"postgresql://u:{SECRET}%zz@h/d",
        f"postgresql://h/d?password={SECRET}=x",
        f"mysql://u:{SECRET}@h/d",
        f"postgresql:/u:{SECRET}@h/d",  # one slash: what a Path makes of a URL
        f"Postgres:u:{SECRET}@h/d",
    ],
)
def test_a_url_that_cannot_be_used_is_refused_without_its_password(text: str) -> None:
    with pytest.raises(BadURL) as caught:
        parse(text)
    assert SECRET not in str(caught.value)
    assert SECRET not in mask(text)


def test_scrub_takes_the_password_out_of_any_message() -> None:
    url = parse("postgresql://vpo:p%40ss@h/d?sslpassword=k3y")
    said = f"FATAL: password p@ss for {url.conninfo()} refused (p%40ss, k3y)"
    assert url.scrub(said) == "FATAL: password *** for *** refused (***, ***)"


def test_server_names_the_database_host_port_and_user_only() -> None:
    assert parse(URL).server == "PostgreSQL database stats on 127.0.0.1:1 as user"
    assert parse("postgresql://h1,[::1]:6000/s").server == (
        "PostgreSQL database s on h1:5432, [::1]:6000"
    )
    assert parse("postgresql:///s?host=/run/pg").server == (
        "PostgreSQL database s on the socket in /run/pg"
    )


def test_a_url_with_one_slash_is_a_bad_url_not_a_file(tmp_path: Path) -> None:
    """str(Path("postgresql://u:pw@h/d")) is "postgresql:/u:pw@h/d": a SQLite file there kept
    the password in a directory name."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_")}
    env["HOME"] = str(cwd)
    env["VPO_STATS_DATABASE"] = f"postgresql:/u:{SECRET}@127.0.0.1:1/stats"
    done = _cli(cwd, env, ["summary"], psycopg=True)
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert "postgresql:// (two slashes)" in done.stderr and SECRET not in done.stderr
    assert os.listdir(cwd) == []


def test_as_database_keeps_paths_and_urls_apart(tmp_path: Path) -> None:
    assert dburl.as_database(str(tmp_path / "s.db")) == tmp_path / "s.db"
    assert isinstance(dburl.as_database(URL), DatabaseURL)
    assert dburl.as_database(Path("~/x.db")) == Path.home() / "x.db"


# --- the commands: a URL is never a file, its password never shown ---------------------------


def _cli(cwd: Path, env: dict[str, str], args: list[str], psycopg: bool) -> Any:
    if psycopg:
        command = [vpo_stats_script(), *args]
    else:
        code = NO_PSYCOPG + "from vpo_stats_plugin.cli import main\nsys.exit(main())"
        command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


READERS = [["status"], ["summary"], ["recent"], ["summary", "--format", "json"], ["policies"]]


@pytest.mark.parametrize("psycopg", [True, False], ids=["extra", "no-extra"])
@pytest.mark.parametrize("given_by", ["env", "option", "file"])
def test_a_url_is_never_a_file_and_its_password_never_shown(
    tmp_path: Path, psycopg: bool, given_by: str
) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    (home / ".vpo").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_")}
    env["HOME"] = str(home)
    before: list[str] = []
    if given_by == "env":  # (the bug: this was a SQLite file at ./postgres:/user:...)
        env["VPO_STATS_DATABASE"] = URL
    elif given_by == "option":
        before = ["--db", URL]
    else:
        (home / ".vpo" / "config.toml").write_text(f'[plugins.stats]\ndatabase = "{URL}"\n')
    shown = "postgres://user:***@127.0.0.1:1/stats"

    path = _cli(cwd, env, [*before, "path"], psycopg)
    if psycopg:
        assert (path.returncode, path.stdout) == (0, shown + "\n"), path.stderr
    else:
        assert path.returncode == 1 and INSTALL in path.stderr
    config = _cli(cwd, env, [*before, "config", "--format", "json"], psycopg)
    row = next(r for r in json.loads(config.stdout)["config"] if r["key"] == "database")
    assert row["value"] == shown
    table = _cli(cwd, env, [*before, "config"], psycopg)
    assert shown in table.stdout
    outputs = [path, config, table]
    for args in READERS:
        done = _cli(cwd, env, [*before, *args], psycopg)
        outputs.append(done)
        assert done.stdout == "", (args, done.stdout)
        if psycopg:  # no server there: the reader stops, naming the server
            assert done.returncode == 65, (args, done.stderr)
            assert "cannot use the PostgreSQL database stats on 127.0.0.1:1 as user" in done.stderr
            assert "Check that the server runs" in done.stderr
        else:  # a bad config value naming the install command
            assert done.returncode == 1, (args, done.stderr)
            assert done.stderr.count("Error: bad plugin config: database = ") == 1
            assert INSTALL in done.stderr
    if psycopg:
        assert config.returncode == 0 and row["problem"] is None
    else:
        assert config.returncode == 1 and INSTALL in row["problem"]
        assert INSTALL in config.stderr and "(bad)" in table.stdout
    for done in outputs:
        assert SECRET not in done.stdout + done.stderr, done.args
    assert os.listdir(cwd) == []  # no ./postgres:/user:pw@127.0.0.1:1/stats
    assert sorted(os.listdir(home / ".vpo")) == (["config.toml"] if given_by == "file" else [])


def test_the_web_app_refuses_a_url_without_its_password(tmp_path: Path) -> None:
    code = (
        "import asyncio, json\n"
        "from aiohttp.test_utils import TestClient, TestServer\n"
        "from vpo_stats_plugin.web import create_app\n"
        "async def main():\n"
        "    async with TestClient(TestServer(create_app(), host='127.0.0.1')) as client:\n"
        "        response = await client.get('/api/summary')\n"
        "        print(response.status, json.dumps(await response.json()))\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_")}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env.update(HOME=str(cwd), VPO_STATS_DATABASE=URL)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    status, _, body = done.stdout.partition(" ")
    assert status == "500", done.stderr
    assert "PostgreSQL database stats on 127.0.0.1:1" in json.loads(body)["error"]
    assert SECRET not in done.stdout + done.stderr
    assert os.listdir(cwd) == []


@pytest.mark.parametrize("psycopg", [True, False], ids=["extra", "no-extra"])
def test_a_host_goes_on_and_no_password_is_logged_or_kept(
    tmp_path: Path, media_file: Path, psycopg: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = host_env(Path("unused"), HOME=str(tmp_path))
    env.update(HOME=str(tmp_path), VPO_STATS_DATABASE=URL)
    if not psycopg:  # tests/hostproc.py in a Python where psycopg cannot be imported
        blocker = tmp_path / "blocker"
        blocker.mkdir()
        (blocker / "sitecustomize.py").write_text(NO_PSYCOPG)
        env["PYTHONPATH"] = os.pathsep.join([str(blocker), env.get("PYTHONPATH", "")])
    monkeypatch.chdir(tmp_path)  # the host's current directory: no file may appear in it
    run = run_host({"files": [str(media_file)] * 2, "actions": 2}, env)
    assert run.returncode == 0, run.stderr
    assert run.raised == [] and len(run.of("file")) == 2
    assert SECRET not in run.stderr
    if psycopg:  # no server there: the writes are kept and retried, the failures counted
        assert run.done["recording"] is True
        assert "database-unwritable" in run.done["errors"], run.done
        assert "PostgreSQL database stats on 127.0.0.1:1" in run.stderr
    else:  # a bad config: said once, recording off
        assert run.done["recording"] is False
        assert run.stderr.count("recording is off") == 1 and INSTALL in run.stderr
    kept = [p for p in tmp_path.rglob("*") if p.is_file() and "blocker" not in p.parts]
    for path in kept:
        assert SECRET not in path.read_text(errors="replace"), path
    assert not any(p.name.startswith("postgres:") for p in tmp_path.rglob("*"))


@pytest.fixture
def media_file(tmp_path: Path) -> Path:
    out = tmp_path / "in.mkv"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=32x24:duration=0.2", "-t", "0.2", str(out)],
        check=True,
    )  # fmt: skip
    return out
