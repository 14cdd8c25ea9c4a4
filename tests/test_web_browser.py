"""The dashboard in Debian's chromium, driven by playwright, against a real server and database."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from aiohttp import web
from conftest import engine_db_path
from hostproc import record_files
from playwright import sync_api
from web_history import BASE, HOSTILE, fmt_bytes, make_history, record, serve_in_thread, stamp

from vpo_stats_plugin.cli.output import human_duration
from vpo_stats_plugin.cli.serve import make_root_app
from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.web import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# no skip when chromium is missing: scripts/test.sh installs it, and a skipped browser test
# would let a broken dashboard pass
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium for the module (the test-installed one, never a download)."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


class Page:
    """A browser tab that records console errors, page errors and every request it makes."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.problems: list[str] = []
        self.hosts: set[str] = set()
        self.tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        self.tab.on("request", lambda req: self.hosts.add(urlsplit(req.url).netloc))
        self.tab.on("requestfailed", lambda req: self.problems.append(f"failed: {req.url}"))
        self.tab.on("dialog", lambda dialog: self.problems.append(f"dialog: {dialog.message}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def open(self, query: dict[str, str] | None = None) -> None:
        """Load the dashboard with ``query`` and wait until nothing is loading."""
        self.tab.goto(self.base + ("?" + urlencode(query) if query else ""))
        self.settle()

    def settle(self) -> None:
        """Wait until no section says Loading…"""
        self.tab.wait_for_load_state("networkidle")
        self.tab.wait_for_function(
            "() => ![...document.querySelectorAll('.state, #notice')]"
            ".some(e => e.offsetParent !== null && e.textContent === 'Loading…')"
        )

    def text(self, selector: str) -> str:
        return self.tab.locator(selector).first.text_content() or ""

    def card(self, key: str) -> str:
        """The raw number behind a headline card."""
        return self.tab.locator(f'#cards [data-key="{key}"]').get_attribute("data-value") or ""


def api(base: str, path: str, query: dict[str, str] | None = None) -> Any:
    """GET an API path relative to the dashboard, outside the browser."""
    url = base + path + ("?" + urlencode(query) if query else "")
    with urllib.request.urlopen(url) as answer:
        return json.load(answer)


db_path = pytest.fixture(engine_db_path, name="db_path")  # both engines


@pytest.fixture
def history(db_path: Path) -> list[dict[str, Any]]:
    runs = make_history()
    record(db_path, runs)
    return runs


@pytest.fixture
def dashboard(history: list[dict], db_path: Path) -> Iterator[str]:
    """``vpo-stats serve``'s app on loopback; yields the dashboard URL (``.../stats/``)."""
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    with serve_in_thread(make_root_app(settings)) as root:
        yield root + "/stats/"


def check_headline(page: Page, summary: dict[str, Any]) -> None:
    """The headline cards show the API's numbers, as raw values and as text."""
    finished = summary["succeeded"] + summary["failed"] + summary["interrupted"]
    assert int(page.card("files")) == summary["files"]
    assert int(page.card("runs-line")) == summary["runs"]
    assert int(page.card("saved_bytes")) == summary["saved_bytes"]
    assert float(page.card("saved_percent")) == summary["saved_percent"]
    assert int(page.card("failed")) == summary["failed"]
    assert int(page.card("interrupted-line")) == summary["interrupted"]
    assert float(page.card("duration_total")) == pytest.approx(summary["duration_seconds"]["total"])
    removed = sum(summary["tracks_removed"].values())
    assert int(page.card("tracks_removed_total")) == removed
    if finished:
        assert float(page.card("success_rate")) == pytest.approx(summary["succeeded"] / finished)
    assert page.text('#cards [data-key="saved_bytes"]') == fmt_bytes(summary["saved_bytes"])
    assert page.text('#cards [data-key="files"]') == f"{summary['files']:,}"
    assert page.text('#cards [data-key="failed"]') == f"{summary['failed']:,}"


def test_dashboard_numbers_drill_down_and_hostile_names(
    browser: Any, dashboard: str, history: list[dict]
) -> None:
    page = Page(browser, dashboard)
    page.open()
    tab = page.tab

    # headline numbers equal the API's
    summary = api(dashboard, "api/summary")
    assert summary["runs"] == len(history)
    check_headline(page, summary)
    assert tab.locator("#notice").is_hidden()

    # the per-policy table lists every policy, the hostile name as plain text
    policies = api(dashboard, "api/policies")["policies"]
    rows = tab.locator("#policies-table tbody tr")
    assert rows.count() == len(policies)
    assert tab.locator("#policies-table tbody a", has_text="strip-foreign-audio").count() == 1
    hostile_links = tab.locator("#policies-table tbody a").filter(has_text="onerror")
    assert hostile_links.count() == 1 and hostile_links.text_content() == HOSTILE
    assert tab.evaluate("() => window.__pwned") is None
    assert tab.locator("img").count() == 0  # no markup from stored text became an element
    assert tab.locator("script").count() == 2  # only the page's own two
    recent = api(dashboard, "api/recent", {"limit": "25"})["runs"]
    assert tab.locator("#recent-table tbody tr").count() == len(recent)
    assert tab.locator("#recent-table tbody tr.failed").count() == sum(
        r["status"] == "failed" for r in recent
    )
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # click the hostile policy: its page, its runs
    hostile_links.click()
    page.settle()
    assert "view=policy" in tab.url
    assert page.text("#policy-name") == HOSTILE
    runs = [r for r in history if r["policy"] == HOSTILE]
    assert tab.locator("#policy-runs tbody tr").count() == len(runs)
    assert page.text('#policy-cards [data-key="runs"]') == str(len(runs))

    # click a failed run: its detail with actions, phases, sizes and the error as text
    tab.locator("#policy-runs tbody tr.failed a").first.click()
    page.settle()
    assert "view=run" in tab.url
    shown = page.text("#run-id")
    run = next(r for r in history if r["id"] == shown)
    assert run["status"] == "failed" and run["policy"] == HOSTILE
    assert page.text("#run-error") == run["error"]  # "<b>..</b>" shown, not bold
    assert tab.locator("#run-error b").count() == 0
    assert tab.locator("#run-actions tbody tr").count() == len(run["actions"])
    assert tab.locator("#run-phases tbody tr").count() == len(run["phases"])
    assert page.text("#run-status") == "failed"
    tab.screenshot(path=str(ARTIFACTS / "run-detail.png"), full_page=True)

    # back goes to the policy, the file link to the file's whole history
    tab.go_back()
    page.settle()
    assert page.text("#policy-name") == HOSTILE
    tab.go_forward()
    page.settle()
    tab.locator("#run-fields a", has_text=run["path"]).click()
    page.settle()
    assert "view=file" in tab.url and page.text("#file-path") == run["path"]
    assert tab.locator("#file-runs tbody tr").count() == sum(
        r["path"] == run["path"] for r in history
    )
    assert page.problems == []
    assert page.hosts == {urlsplit(dashboard).netloc}  # nothing fetched from anywhere else


def test_filters_live_in_the_url(browser: Any, dashboard: str) -> None:
    page = Page(browser, dashboard)
    query = {"policy": "hevc-everything", "since": "2026-03-05", "until": "2026-03-15"}
    page.open(query)
    check_headline(page, api(dashboard, "api/summary", query))
    assert page.tab.locator('#filters input[name="policy"]').input_value() == "hevc-everything"
    trend = api(dashboard, "api/trend", query)
    chart = page.tab.evaluate(
        "() => { const d = Chart.getChart('chart-saved').data;"
        " return {labels: d.labels, saved: d.datasets[0].data}; }"
    )
    # every day from the first to the last with runs; the days without any are zeros
    first, last = (date.fromisoformat(trend["points"][i]["period"]) for i in (0, -1))
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    saved = {p["period"]: p["saved_bytes"] for p in trend["points"]}
    assert chart == {"labels": days, "saved": [saved.get(day, 0) for day in days]}
    assert len(days) > len(saved) >= 2, "the history should have a quiet day in this range"

    # changing a filter in the form rewrites the URL, so the view can be shared
    page.tab.fill('#filters input[name="node"]', "node-a")
    page.tab.select_option('#filters select[name="status"]', "succeeded")
    page.tab.click('#filters button[type="submit"]')
    page.settle()
    assert "node=node-a" in page.tab.url and "status=succeeded" in page.tab.url
    shared = Page(page.tab.context.browser, page.tab.url.split("?")[0])
    shared.tab.goto(page.tab.url)
    shared.settle()
    check_headline(
        shared, api(dashboard, "api/summary", {**query, "node": "node-a", "status": "succeeded"})
    )

    # in a policy's view a filter narrows that policy's runs and keeps the view
    page.open({"view": "policy", "name": "hevc-everything"})
    page.tab.select_option('#filters select[name="status"]', "failed")
    page.tab.click('#filters button[type="submit"]')
    page.settle()
    assert "view=policy" in page.tab.url and "status=failed" in page.tab.url
    failed = api(dashboard, "api/recent", {"policy": "hevc-everything", "status": "failed"})
    assert page.tab.locator("#policy-runs tbody tr").count() == len(failed["runs"]) > 0
    assert page.tab.locator("#policy-runs tbody tr.failed").count() == len(failed["runs"])
    page.tab.click('.crumbs a[data-nav="overview"] >> visible=true')
    page.settle()
    assert "status=failed" in page.tab.url and "view=" not in page.tab.url
    assert (
        int(page.card("runs-line")) == api(dashboard, "api/summary", {"status": "failed"})["runs"]
    )

    # a bad filter says which one is wrong
    page.open({"since": "yesterday"})
    assert "since" in page.text("#notice")
    assert "error" in (page.tab.locator("#notice").get_attribute("class") or "")


def test_file_lookup_and_purge_with_preview(
    browser: Any, dashboard: str, history: list[dict]
) -> None:
    page = Page(browser, dashboard)
    page.open()
    page.tab.fill('#file-lookup input[name="path"]', "/media/show/Episode 07.mkv")
    page.tab.click('#file-lookup button[type="submit"]')
    page.settle()
    assert page.tab.locator("#file-runs tbody tr").count() == 2

    failed = sum(r["status"] == "failed" for r in history)
    page.open({"status": "failed"})
    assert page.text("#purge-scope") == "Runs matching: status failed"
    page.tab.click("#purge-preview")
    page.tab.wait_for_selector("#purge-confirm:visible")
    assert page.text("#purge-result").startswith(f"{failed} runs match")
    assert page.text("#purge-confirm") == f"Delete {failed} runs"
    assert api(dashboard, "api/summary")["failed"] == failed  # the preview deleted nothing
    page.tab.click("#purge-confirm")
    page.tab.wait_for_function(
        "() => document.querySelector('#purge-result').textContent.startsWith('Deleted')"
    )
    page.settle()
    assert page.text("#purge-result") == f"Deleted {failed} runs."
    assert api(dashboard, "api/summary")["failed"] == 0
    assert api(dashboard, "api/summary")["runs"] == len(history) - failed

    # no filter: purge asks for an explicit "every run" first
    page.open()
    assert page.tab.locator("#purge-all-label").is_visible()
    page.tab.click("#purge-preview")
    assert "Set a filter" in page.text("#purge-result")
    assert page.tab.locator("#purge-confirm").is_hidden()
    assert page.problems == []


def test_purge_refuses_when_runs_were_recorded_after_the_preview(
    browser: Any, dashboard: str, history: list[dict], db_path: Path, tmp_path: Path
) -> None:
    """Preview "Delete 20 runs", a host records 3 more of that policy, confirm: refused with a
    clear message, nothing deleted (it used to say "Deleted 23 runs")."""
    policy = "hevc-everything"
    mine = sum(r["policy"] == policy and r["status"] != "running" for r in history)
    page = Page(browser, dashboard)
    page.open({"policy": policy})
    page.tab.click("#purge-preview")
    page.tab.wait_for_selector("#purge-confirm:visible")
    assert page.text("#purge-confirm") == f"Delete {mine} runs"
    record_files(tmp_path, db_path, policy, 3)
    page.tab.click("#purge-confirm")
    page.tab.wait_for_function(
        "() => document.querySelector('#purge-result').textContent.includes('preview')"
    )
    result = page.text("#purge-result")
    assert result == (
        f"The runs to delete changed since the preview: it counted {mine}, {mine + 3} match "
        "now; nothing was deleted. Preview again to see what would go."
    )
    assert "error" in (page.tab.locator("#purge-result").get_attribute("class") or "")
    assert page.tab.locator("#purge-confirm").is_hidden()  # that preview is spent
    assert api(dashboard, "api/summary")["runs"] == len(history) + 3
    # previewed again, the confirm deletes what that preview counted
    page.tab.click("#purge-preview")
    page.tab.wait_for_selector("#purge-confirm:visible")
    assert page.text("#purge-confirm") == f"Delete {mine + 3} runs"
    page.tab.click("#purge-confirm")
    page.tab.wait_for_function(
        "() => document.querySelector('#purge-result').textContent.startsWith('Deleted')"
    )
    assert page.text("#purge-result") == f"Deleted {mine + 3} runs."
    assert api(dashboard, "api/summary", {"policy": policy})["runs"] == 0
    assert api(dashboard, "api/summary")["runs"] == len(history) - mine
    assert [p for p in page.problems if "409" not in p] == []


def test_empty_database_says_what_to_do(browser: Any, tmp_path: Path) -> None:
    settings = load_settings(overrides={"database": (str(tmp_path / "empty.db"), "test")})
    with serve_in_thread(make_root_app(settings)) as root:
        page = Page(browser, root + "/stats/")
        page.open()
        assert page.text("#notice").startswith(
            "No runs yet: process a file with the plugin enabled"
        )
        assert page.card("files") == "0"
        ARTIFACTS.mkdir(exist_ok=True)
        page.tab.screenshot(path=str(ARTIFACTS / "empty.png"))
        assert page.problems == []


def test_works_under_any_mount_point(browser: Any, history: list[dict], db_path: Path) -> None:
    host = web.Application()
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    host.add_subapp("/tools/vpo-stats", create_app(settings))
    with serve_in_thread(host) as root:
        page = Page(browser, root + "/tools/vpo-stats")  # without the slash: redirected
        page.open()
        assert page.tab.url.startswith(root + "/tools/vpo-stats/")
        check_headline(page, api(root + "/tools/vpo-stats/", "api/summary"))
        assert page.problems == []


@contextmanager
def dashboard_of(db_path: Path, runs: list[dict[str, Any]]) -> Iterator[str]:
    """The dashboard over exactly ``runs``; yields its URL."""
    record(db_path, runs)
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    with serve_in_thread(make_root_app(settings)) as root:
        yield root + "/stats/"


def finished_runs(count: int) -> list[dict[str, Any]]:
    """``count`` runs of ``make_history`` without its running one."""
    return [r for r in make_history(count + 1) if r["status"] != "running"][:count]


def at(run: dict[str, Any], started: datetime) -> dict[str, Any]:
    """``run`` moved to start at ``started`` (its duration kept)."""
    seconds = run["duration_seconds"]
    return {
        **run,
        "started_at": stamp(started),
        "finished_at": stamp(started + timedelta(seconds=seconds)),
    }


def module_call(page: Page, module: str, expression: str) -> Any:
    """Evaluate ``expression`` (a JS function of the module ``m``) on the served ES module."""
    url = json.dumps(page.base + "static/js/" + module)
    return page.tab.evaluate(f"async () => ({expression})(await import({url}))")


def chart_ticks(page: Page, chart: str, axis: str) -> list[str]:
    return page.tab.evaluate(
        "([c, a]) => Chart.getChart(c).scales[a].ticks.map(t => t.label)", [chart, axis]
    )


# --------------------------------------------------------------- issue 14: what users hit


def test_durations_are_rounded_once_and_read_as_the_cli(browser: Any, dashboard: str) -> None:
    page = Page(browser, dashboard)
    page.open()
    values = [0.04, 9.96, 42.0, 59.94, 59.96, 60.0, 75.2, 119.4, 119.6, 3599.6, 3600.0]
    values += [5400.0, 7199.7, 86399.6, 172799.6, 200000.0, 1e6]
    shown = module_call(page, "format.js", f"m => {json.dumps(values)}.map(m.fmtDuration)")
    assert shown == [human_duration(v) for v in values]
    assert dict(zip(values, shown))[119.6] == "2m 00s"
    assert dict(zip(values, shown))[59.96] == "1m 00s"
    assert not [s for s in shown if re.search(r"\b60[smh]", s)], shown
    assert page.problems == []


def test_byte_axes_have_round_binary_ticks(browser: Any, dashboard: str) -> None:
    page = Page(browser, dashboard)
    page.open()
    gib, mib = 1024**3, 1024**2
    cases = [(0, 0), (0, 3.7 * gib), (0, 1.2 * gib), (-300 * mib, 900 * mib), (0, 999), (0, 3)]
    cases += [(0, 5 * 1024**4), (-2 * gib, 0), (0, 1023 * mib), (0, 1024 * mib), (0, 17)]
    ticks = module_call(
        page, "charts.js", f"m => {json.dumps(cases)}.map(c => m.byteTicks(c[0], c[1]))"
    )
    assert ticks[0]["labels"] == ["0 B"]  # all zeros: one tick, not "1 B 1 B 0 B"
    assert ticks[1]["labels"] == ["0 B", "1 GiB", "2 GiB", "3 GiB", "4 GiB"]
    assert ticks[2]["labels"] == ["0 B", "0.5 GiB", "1 GiB", "1.5 GiB"]
    assert ticks[8]["labels"][-1] == "1 GiB"  # not "1000 MiB"
    for (low, high), t in zip(cases[1:], ticks[1:]):
        values = t["values"]
        assert values[0] <= low and values[-1] >= high and 0 in values, (low, high, t)
        steps = {round(b - a, 3) for a, b in zip(values, values[1:])}
        assert len(steps) == 1, t  # evenly spaced
        step = steps.pop()
        units = {label.split()[1] for label in t["labels"] if label != "0 B"}
        assert len(units) == 1, t  # one unit along the axis
        unit = 1024 ** ["B", "KiB", "MiB", "GiB", "TiB"].index(units.pop())
        mantissa = step / unit
        assert any(mantissa == pytest.approx(f * 10**k) for f in (1, 2, 5) for k in range(-2, 4))
        assert 3 <= len(values) <= 12 and len(set(t["labels"])) == len(values), t
        for value, label in zip(values, t["labels"]):
            number = float(label.split()[0])
            assert number * (unit if number else 1) == pytest.approx(value), (value, label)

    # in the charts: an all-zero trend axis reads 0 B; the policy axis in round steps
    page.open({"status": "interrupted"})  # their saved bytes are all 0
    assert chart_ticks(page, "chart-saved", "y") == ["0 B"]
    page.open()
    labels = chart_ticks(page, "chart-policies", "x")
    numbers = [float(label.split()[0]) for label in labels]
    assert labels[0] == "0 B" and {label.split()[1] for label in labels[1:]} == {"GiB"}, labels
    assert len({round(b - a, 6) for a, b in zip(numbers, numbers[1:])}) == 1, labels
    assert page.problems == []


def test_space_by_policy_labels_every_bar_and_says_it_shows_the_top(
    browser: Any, db_path: Path
) -> None:
    runs = [{**r, "policy": f"policy-{i % 20:02d}"} for i, r in enumerate(finished_runs(60))]
    with dashboard_of(db_path, runs) as url:
        page = Page(browser, url)
        page.open({"sort": "name"})
        rows = api(url, "api/policies", {"sort": "saved"})["policies"]
        assert len(rows) == 20
        assert page.text("#policies-caption") == (
            "Space saved by policy: the 15 that saved most, of 20"
        )
        bars = page.tab.evaluate("() => Chart.getChart('chart-policies').data.labels")
        assert bars == [r["policy"] for r in rows[:15]]  # the most saved, whatever the sort
        assert chart_ticks(page, "chart-policies", "y") == bars  # every bar has its label
        page.open({"policy": "policy-03"})
        assert page.text("#policies-caption") == "Space saved by policy"
        assert page.problems == []


def test_the_trend_picks_a_readable_period(browser: Any, db_path: Path) -> None:
    runs = finished_runs(110)
    # one run a month for six years, and one a day through February 2026
    runs = [at(r, BASE - timedelta(days=30 * i)) for i, r in enumerate(runs[:73])] + [
        at(r, datetime(2026, 2, 1, 8, tzinfo=timezone.utc) + timedelta(days=i))
        for i, r in enumerate(runs[73:101])
    ]
    with dashboard_of(db_path, runs) as url:
        page = Page(browser, url)

        def labels() -> list[str]:
            return page.tab.evaluate("() => Chart.getChart('chart-runs').data.labels")

        page.open()
        months = labels()
        assert all(re.fullmatch(r"\d{4}-\d{2}", m) for m in months) and 70 <= len(months) <= 75
        assert page.tab.locator("#trend-by option:checked").text_content() == "auto (month)"
        page.open({"since": "2026-02-01", "until": "2026-02-20"})
        assert labels() == [f"2026-02-{d:02d}" for d in range(1, 21)]
        page.open({"since": "2025-09-01", "until": "2026-02-28"})
        weeks = labels()
        assert 20 <= len(weeks) <= 28, weeks
        assert all(date.fromisoformat(w).weekday() == 0 for w in weeks)  # Mondays

        # a period the user picks is kept, six years of days included
        page.open()
        page.tab.select_option("#trend-by", "day")
        page.settle()
        assert "by=day" in page.tab.url and len(labels()) > 2000
        page.tab.select_option("#trend-by", "")
        page.settle()
        assert "by=" not in page.tab.url and len(labels()) == len(months)
        assert page.problems == []


def test_a_bad_filter_is_one_error_in_one_place(browser: Any, dashboard: str) -> None:
    page = Page(browser, dashboard)
    for query in (
        {"since": "yesterday"},
        {"view": "policy", "name": "hevc-everything", "since": "x"},
    ):
        page.open()  # cards with numbers first: they must not keep them either
        page.open(query)
        errors = page.tab.evaluate(
            "() => [...document.querySelectorAll('.error, .state, #notice')]"
            ".filter(e => e.offsetParent !== null && e.textContent.trim())"
            ".map(e => e.textContent)"
        )
        assert len(errors) == 1 and "since" in errors[0], errors
        assert "error" in (page.tab.locator("#notice").get_attribute("class") or "")
        visible_tables = page.tab.locator("table:visible").count()
        assert visible_tables == 0
    page.open({"until": "2026-13-40"})
    cards = page.tab.locator("#cards .big").all_text_contents()
    assert len(cards) == 6 and set(cards) == {"–"}, cards  # a dash, never a "…" left loading
    assert "…" not in page.tab.locator("#cards").inner_text()
    assert [p for p in page.problems if "status of 400" not in p] == []


def test_the_licence_link_shows_the_text(browser: Any, dashboard: str) -> None:
    page = Page(browser, dashboard)
    page.open()
    assert page.problems == []
    page.tab.click("footer a:has-text('MIT')")
    page.tab.wait_for_url("**/LICENSE.md")
    assert page.tab.locator("body").inner_text().startswith("The MIT License")
    with urllib.request.urlopen(dashboard + "static/vendor/chartjs/LICENSE.md") as answer:
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert answer.headers["Content-Disposition"] is None


def test_policies_named_dot_and_dot_dot_open(browser: Any, db_path: Path) -> None:
    names = [".", "..", "a/b", "hevc"]
    runs = [{**r, "policy": names[i % 4]} for i, r in enumerate(finished_runs(24))]
    with dashboard_of(db_path, runs) as url:
        page = Page(browser, url)
        for name in names:
            page.open()
            page.tab.locator("#policies-table tbody a").filter(
                has_text=re.compile("^" + re.escape(name) + "$")
            ).click()
            page.settle()
            assert page.text("#policy-name") == name
            assert page.text('#policy-cards [data-key="runs"]') == "6"
            assert page.tab.locator("#policy-runs tbody tr").count() == 6
            assert page.text("#notice") == ""
        assert page.problems == []


def test_the_policy_field_switches_the_policy_view(browser: Any, dashboard: str) -> None:
    page = Page(browser, dashboard)
    page.open({"view": "policy", "name": "hevc-everything", "status": "failed"})
    field = page.tab.locator('#filters input[name="policy"]')
    assert field.input_value() == "hevc-everything"
    field.fill("strip-foreign-audio")
    page.tab.click('#filters button[type="submit"]')
    page.settle()
    assert page.text("#policy-name") == "strip-foreign-audio"
    assert "name=strip-foreign-audio" in page.tab.url and "policy=" not in page.tab.url
    assert "status=failed" in page.tab.url and page.text("#notice") == ""
    failed = api(dashboard, "api/recent", {"policy": "strip-foreign-audio", "status": "failed"})
    assert page.tab.locator("#policy-runs tbody tr").count() == len(failed["runs"]) > 0

    # a link naming both shows the policy the filter names; an emptied field leaves the view
    page.open({"view": "policy", "name": "hevc-everything", "policy": "strip-foreign-audio"})
    assert page.text("#policy-name") == "strip-foreign-audio" and page.text("#notice") == ""
    field.fill("")
    page.tab.click('#filters button[type="submit"]')
    page.settle()
    assert page.tab.locator("#view-overview").is_visible() and "name=" not in page.tab.url
    assert page.problems == []


def test_nodes_table_filters_by_node(
    browser: Any, dashboard: str, history: list[dict], db_path: Path
) -> None:
    """Each node's row equals the API's; choosing one scopes every section to it."""
    extra = {**history[0], "id": "0f6c2d3e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "node": HOSTILE}
    record(db_path, [extra])
    page = Page(browser, dashboard)
    page.open()
    tab = page.tab
    nodes = api(dashboard, "api/nodes")["nodes"]
    assert {n["node"] for n in nodes} == {"node-a", "node-b", HOSTILE}
    rows = tab.locator("#nodes-table tbody tr")
    assert rows.count() == len(nodes)
    for i, node in enumerate(nodes):  # the API's order: most runs first
        cells = rows.nth(i).locator("td")
        assert cells.nth(0).text_content() == node["node"]  # the hostile name as text
        assert cells.nth(1).text_content() == f"{node['runs']:,}"
        assert cells.nth(2).text_content() == f"{node['failed']:,}"
        assert cells.nth(4).text_content() == f"{node['running']:,}"
        assert cells.nth(5).text_content() == fmt_bytes(node["saved_bytes"])
    assert tab.evaluate("() => window.__pwned") is None and tab.locator("img").count() == 0

    # choose node-b: the URL, the filter form, the cards and the tables follow it
    tab.locator("#nodes-table tbody a", has_text="node-b").click()
    page.settle()
    assert "node=node-b" in tab.url
    assert tab.locator('#filters input[name="node"]').input_value() == "node-b"
    only_b = api(dashboard, "api/summary", {"node": "node-b"})
    assert only_b["runs"] == sum(r["node"] == "node-b" for r in history)
    check_headline(page, only_b)
    assert tab.locator("#nodes-table tbody tr").count() == 1
    assert tab.locator("#recent-table tbody tr").count() == min(25, only_b["runs"])
    assert page.problems == []
