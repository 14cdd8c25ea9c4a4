"""The config itself: resolution order, the rules, the `config` command, reading on a bad config.

What each key does to recording is proved through a real host in test_config_host.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vpo_stats_plugin import config, dburl, hooks
from vpo_stats_plugin.cli import standalone_group
from vpo_stats_plugin.config import ConfigError, resolve
from vpo_stats_plugin.store import open_store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME with an empty ~/.vpo and no VPO_STATS_* set at all; no host configuration."""
    monkeypatch.delenv("VPO_STATS_DATABASE")
    (isolated_home / ".vpo").mkdir()
    config.configure()
    yield isolated_home
    config.configure()


def write(home: Path, text: str) -> Path:
    path = home / ".vpo" / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def invoke(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(standalone_group(), list(args), catch_exceptions=False)


# --- resolution -------------------------------------------------------------------------------


def test_defaults(home: Path) -> None:
    resolved = resolve()
    assert resolved.problems == []
    assert resolved.sources == {}
    assert resolved.values == {
        "enabled": True,
        "database": home / ".vpo" / "stats.db",
        "record_actions": True,
        "record_performance": True,
        "hash": "partial",
        "probe_tracks": True,
        "node": __import__("socket").gethostname(),
        "stale_after": 86400.0,
    }
    assert resolved.file.as_json() == {
        "path": str(home / ".vpo" / "config.toml"),
        "named_by": "default",
        "exists": False,
        "readable": True,
    }


def test_order_defaults_file_env_option(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(home, '[plugins.stats]\nhash = "full"\nnode = "n-file"\nenabled = false\n')
    monkeypatch.setenv("VPO_STATS_NODE", "n-env")
    monkeypatch.setenv("VPO_STATS_DATABASE", "/tmp/env.db")
    resolved = resolve({"database": ("/tmp/opt.db", "option --db")})
    assert (resolved.hash, resolved.node, resolved.enabled) == ("full", "n-env", False)
    assert resolved.database == Path("/tmp/opt.db")
    assert resolved.sources == {
        "hash": f"file {path}",
        "node": "env VPO_STATS_NODE",
        "enabled": f"file {path}",
        "database": "option --db",
    }


def test_file_choice(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    vpo, ours = tmp_path / "vpo.toml", tmp_path / "ours.toml"
    vpo.write_text('[plugins.stats]\nnode = "vpo"\n')
    ours.write_text('[plugins.stats]\nnode = "ours"\n')
    write(home, '[plugins.stats]\nnode = "home"\n')
    assert resolve().node == "home"
    monkeypatch.setenv("VPO_CONFIG_PATH", str(vpo))
    assert resolve().node == "vpo"
    config.configure(section={"node": "host"})
    assert (resolve().node, resolve().sources["node"]) == ("host", "host section")
    config.configure(section={"node": "host"}, path=tmp_path / "host.toml")
    assert resolve().sources["node"] == f"file {tmp_path / 'host.toml'}"
    monkeypatch.setenv("VPO_STATS_CONFIG", str(ours))
    assert (resolve().node, resolve().file.named_by) == ("ours", "VPO_STATS_CONFIG")
    config.configure()
    monkeypatch.delenv("VPO_STATS_CONFIG")
    assert resolve().node == "vpo"


def test_configure_makes_the_next_hook_read_again(home: Path) -> None:
    config.configure(section={"enabled": False})
    assert hooks.get_recorder() is None
    config.configure(section={"node": "again"})
    recorder = hooks.get_recorder()
    assert recorder is not None and recorder.settings.node == "again"


def test_empty_environment_variable_is_unset(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home, '[plugins.stats]\nhash = "off"\n')
    monkeypatch.setenv("VPO_STATS_HASH", "")
    assert resolve().hash == "off"


def test_other_vpo_stats_variables_are_not_keys(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPO_STATS_EXTRAS", "test")  # used by scripts/setup.sh
    assert resolve().problems == []


def test_relative_database(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(home, '[plugins.stats]\ndatabase = "db/s.db"\n')
    assert resolve().database == path.parent / "db" / "s.db"
    monkeypatch.setenv("VPO_STATS_DATABASE", "rel.db")  # from the environment: as given
    assert resolve().database == Path("rel.db")
    monkeypatch.setenv("VPO_STATS_DATABASE", "~/x.db")
    assert resolve().database == home / "x.db"


def test_the_cli_reads_the_database_the_hooks_write(home: Path, runner: CliRunner) -> None:
    path = write(home, '[plugins.stats]\ndatabase = "db/s.db"\n')
    hooks.reset()
    assert hooks.get_recorder().settings.database == path.parent / "db" / "s.db"
    assert invoke(runner, "path").stdout.strip() == str(path.parent / "db" / "s.db")


# --- the rules, shared by resolve() and the pydantic model ----------------------------

CASES = [
    ("enabled", True, True),
    ("enabled", "No", False),
    ("enabled", " on ", True),
    ("enabled", 0, False),
    ("enabled", 2, None),
    ("enabled", "maybe", None),
    ("enabled", "", None),
    ("hash", "FULL", "full"),
    ("hash", "off", "off"),
    ("hash", False, None),
    ("hash", "md5", None),
    ("node", " w1 ", "w1"),
    ("node", "", None),
    ("node", 7, None),
    ("database", "", None),
    ("database", 3, None),
    ("stale_after", "90m", 5400.0),
    ("stale_after", 60, 60.0),
    ("stale_after", "2d", 172800.0),
    ("stale_after", "0", None),
    ("stale_after", "-1h", None),
    ("stale_after", "1000y", None),
    ("stale_after", "inf", None),
    ("stale_after", "nan", None),
    ("stale_after", True, None),
]


@pytest.mark.parametrize(("key", "given", "expected"), CASES)
def test_resolve_and_settings_apply_the_same_rule(
    home: Path, key: str, given: Any, expected: Any
) -> None:
    resolved = resolve(section={key: given})
    settings_error = None
    try:
        settings = config.Settings(**{key: given})
    except Exception as err:
        settings_error = err
    if expected is None:
        assert [p.key for p in resolved.problems] == [key]
        assert resolved.values[key] is None
        assert config.SPEC[key].accepted in resolved.message()
        assert settings_error is not None and config.SPEC[key].accepted in str(settings_error)
        with pytest.raises(ConfigError):
            resolved.settings()
    else:
        assert resolved.problems == [] and resolved.values[key] == expected
        assert settings_error is None and getattr(settings, key) == expected
        assert getattr(resolved.settings(), key) == expected


URL = "postgresql://vpo:Se%40cret-9@db.lan:5433/vpo_stats?sslmode=require"


@pytest.mark.parametrize("where", ["section", "env"])
def test_a_postgresql_url_is_a_url_never_a_path(
    home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "env":
        monkeypatch.setenv("VPO_STATS_DATABASE", URL)
        resolved = resolve()
    else:  # not made relative to the file's folder either
        resolved = resolve(section={"database": URL}, config_path=home / ".vpo" / "config.toml")
    assert resolved.problems == []
    assert resolved.database == dburl.parse(URL) == config.Settings(database=URL).database
    assert resolved.settings().database.conninfo() == URL
    shown = "postgresql://vpo:***@db.lan:5433/vpo_stats?sslmode=require"
    assert {r["key"]: r["value"] for r in resolved.rows()}["database"] == shown
    assert "Se%40cret" not in json.dumps(resolved.as_json()) + repr(resolved.settings())


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("mysql://u:Se%40cret-9@h/d", "mysql:// is not a database URL this plugin knows"),
        ("postgresql://u:Se%40cret-9@h/d?sslmode", "the query option 'sslmode' has no ="),
        ("postgresql://u:Se%40cret-9@h/d?colour=red", 'invalid URI query parameter: "colour"'),
        ("postgresql://u:Se@cret-9@h/d", "percent-encode an @"),
    ],
)
def test_a_bad_url_is_a_bad_value_shown_without_its_password(
    home: Path, given: str, why: str
) -> None:
    resolved = resolve(section={"database": given})
    assert [p.key for p in resolved.problems] == ["database"]
    assert why in resolved.message()
    with pytest.raises(ValueError) as caught:
        config.Settings(database=given)
    assert why in str(caught.value)
    row = {r["key"]: r for r in resolved.rows()}["database"]
    assert "cret-9" not in resolved.message() + str(caught.value) + json.dumps(row)


def test_without_the_extra_a_url_is_a_bad_value_naming_the_install(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # a Python where psycopg is not importable
    resolved = resolve(section={"database": URL})
    assert [p.key for p in resolved.problems] == ["database"]
    assert "pip install 'vpo-stats-plugin[postgresql]'" in resolved.message()
    assert "Se%40cret" not in resolved.message()
    with pytest.raises(ConfigError):
        resolved.settings()


def test_settings_forbid_unknown_keys() -> None:
    with pytest.raises(ValueError, match="colour"):
        config.Settings(colour="red")


def test_load_settings_raises_naming_file_key_and_values(home: Path) -> None:
    path = write(home, '[plugins.stats]\nhash = "quick"\n')
    with pytest.raises(ConfigError) as caught:
        config.load_settings()
    assert f"hash = 'quick' in {path}: accepted values: off, partial or full" in str(caught.value)
    settings = config.load_settings(section={"hash": "full"})
    assert settings.hash == "full"


# --- `vpo-stats config` -------------------------------------------------------------------------


def test_config_command_table(home: Path, runner: CliRunner, monkeypatch) -> None:
    path = write(home, '[plugins.stats]\nhash = "full"\nstale_after = "2d"\n')
    monkeypatch.setenv("VPO_STATS_RECORD_ACTIONS", "no")
    result = invoke(runner, "config")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {path} (default location; found)"
    table = {line.split()[0]: line.split(None, 2)[1:] for line in lines[3:]}
    assert table["hash"] == ["full", f"file {path}"]
    assert table["stale_after"] == ["2d", f"file {path}"]
    assert table["record_actions"] == ["false", "env VPO_STATS_RECORD_ACTIONS"]
    assert table["enabled"] == ["true", "default"]
    assert set(table) == set(config.KEYS)


def test_config_command_json(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "--db", str(tmp_path / "o.db"), "config", "--format", "json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["problems"] == [] and body["file"]["exists"] is False
    rows = {r["key"]: r for r in body["config"]}
    assert list(rows) == list(config.KEYS)
    assert rows["database"] == {
        "key": "database",
        "value": str(tmp_path / "o.db"),
        "default": "~/.vpo/stats.db",
        "source": "option --db",
        "problem": None,
    }
    assert rows["stale_after"]["value"] == 86400.0 and rows["stale_after"]["default"] == "24h"
    assert rows["enabled"]["value"] is True and rows["enabled"]["source"] == "default"


def test_config_command_csv(home: Path, runner: CliRunner) -> None:
    result = invoke(runner, "config", "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0] == "key,value,default,source,problem"
    assert len(lines) == 1 + len(config.KEYS)


def test_config_command_on_a_bad_config(home: Path, runner: CliRunner) -> None:
    path = write(home, '[plugins.stats]\nhash = "fast"\ncolour = "red"\nnode = "n1"\n')
    result = invoke(runner, "config", "--format", "json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)  # still shows what it can
    rows = {r["key"]: r for r in body["config"]}
    assert rows["node"]["value"] == "n1"
    assert rows["hash"]["value"] == "fast" and "off, partial or full" in rows["hash"]["problem"]
    assert "unknown key 'colour'" in rows["colour"]["problem"]
    assert result.stderr.count("Error: bad plugin config") == 1
    assert f"hash = 'fast' in {path}" in result.stderr
    table = invoke(runner, "config")
    assert table.exit_code == 1 and "'fast' (bad)" in table.stdout


def test_config_command_on_invalid_toml(home: Path, runner: CliRunner) -> None:
    path = write(home, "[plugins.stats\n")
    result = invoke(runner, "config")
    assert result.exit_code == 1
    assert f"config file: {path} (default location; not valid)" in result.stdout
    assert f"{path} is not valid TOML" in result.stderr


# --- reading commands on a bad config --------------------------------------------------------


def test_reading_goes_on_when_only_recording_keys_are_bad(home: Path, runner: CliRunner) -> None:
    write(home, '[plugins.stats]\nhash = "fast"\n')
    open_store(home / ".vpo" / "stats.db").close()
    result = invoke(runner, "summary", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["runs"] == 0
    assert result.stderr.count("warning: recording is off: bad plugin config") == 1


@pytest.mark.parametrize(
    "text", ['database = ""', 'node = ""', 'stale_after = "later"'], ids=lambda t: t.split()[0]
)
def test_reading_stops_when_a_key_it_needs_is_bad(home: Path, runner: CliRunner, text) -> None:
    write(home, f"[plugins.stats]\n{text}\n")
    result = invoke(runner, "summary")
    assert result.exit_code == 1
    assert result.stderr.count("Error: bad plugin config") == 1
    assert text.split()[0] in result.stderr


def test_invalid_toml_stops_reading_unless_the_database_is_given(
    home: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(home, "not toml at all\n")
    refused = invoke(runner, "summary")
    assert refused.exit_code == 1 and "is not valid TOML" in refused.stderr
    open_store(tmp_path / "a.db").close()
    given = invoke(runner, "--db", str(tmp_path / "a.db"), "summary", "--format", "json")
    assert given.exit_code == 0 and json.loads(given.stdout)["runs"] == 0
    assert given.stderr.count("warning: recording is off") == 1
    monkeypatch.setenv("VPO_STATS_DATABASE", str(tmp_path / "b.db"))
    assert invoke(runner, "path").stdout.strip() == str(tmp_path / "b.db")


# --- cost -------------------------------------------------------------------------------------


def _modules_after(code: str, env: dict[str, str]) -> list[str]:
    probe = f"import sys\n{code}\nprint('MODULES', *(m for m in ('pydantic',) if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()[-1].split()[1:]


def test_reading_commands_never_import_pydantic(home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(home)}
    code = (
        "from vpo_stats_plugin.cli import main\n"
        f"try:\n    main(['--db', {str(tmp_path / 's.db')!r}, 'summary'])\n"
        "except SystemExit:\n    pass"
    )
    assert _modules_after(code, env) == []


def test_importing_config_is_cheap(home: Path) -> None:
    assert _modules_after("import vpo_stats_plugin.config", dict(os.environ)) == []
    assert _modules_after("from vpo_stats_plugin.config import Settings", dict(os.environ)) == [
        "pydantic",
    ]


# --- docs --------------------------------------------------------------------------------------


def test_the_configuration_page_has_every_key_default_and_accepted_values() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    for spec in config.KEYS_SPEC:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{spec.name}`")), "")
        assert row, f"{spec.name} has no row in docs/configuration.md"
        assert spec.shown_default in row and spec.accepted in row
        assert f"VPO_STATS_{spec.name.upper()}" in page
    for name in ("configure(", "VPO_STATS_CONFIG", "VPO_CONFIG_PATH", "[plugins.stats]"):
        assert name in page
