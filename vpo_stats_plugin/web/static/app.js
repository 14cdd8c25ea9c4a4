/* vpo-stats dashboard.
 *
 * Every stored string (policy names, paths, errors) reaches the page through textContent or
 * DOM properties, never through innerHTML, so it is always shown as text. URLs are relative to
 * the page, so the dashboard works wherever the sub-application is mounted. The view and the
 * filters live in the query string, so any view can be bookmarked and shared.
 */
(function () {
  "use strict";

  var FILTERS = ["since", "until", "policy", "node", "status"];
  var COLORS = {
    ok: "#2e7d32",
    bad: "#c62828",
    warn: "#e69a28",
    saved: "#1f5fbf",
    grey: "#9aa5b1",
    tracks: ["#1f5fbf", "#7b4fc9", "#0f8f8a"],
  };
  var EMPTY_HINT =
    "No runs yet: process a file with the plugin enabled (install vpo-stats-plugin where VPO " +
    "runs), import VPO's own history with `vpo-stats import-vpo`, or try `vpo-stats demo`.";
  var NO_MATCH_HINT =
    "No runs match these filters: widen the dates, pick another policy or node, or press Clear.";

  var charts = {};
  var token = 0; // increases on every render; answers for an older render are dropped

  // ---------------------------------------------------------------- DOM helpers

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  /** Create an element; props are DOM properties, children strings or nodes (strings as text). */
  function h(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === undefined || value === null) return;
        if (key === "class") node.className = value;
        else if (key === "data") {
          Object.keys(value).forEach(function (d) {
            node.dataset[d] = String(value[d]);
          });
        } else node[key] = value;
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(node, value) {
    node.textContent = value === null || value === undefined ? "" : String(value);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function state(name, message, isError) {
    var node = $('[data-state="' + name + '"]');
    if (!node) return;
    setText(node, message || "");
    node.classList.toggle("error", Boolean(isError));
  }

  function notice(message, isError) {
    var node = $("#notice");
    setText(node, message || "");
    node.classList.toggle("error", Boolean(isError));
  }

  // ---------------------------------------------------------------- formatting

  function fmtInt(n) {
    return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var value = Math.abs(n);
    var i = 0;
    while (value >= 1024 && i < units.length - 1) {
      value /= 1024;
      i++;
    }
    var digits = i === 0 || value >= 100 ? 0 : 1;
    return (n < 0 ? "-" : "") + value.toFixed(digits) + " " + units[i];
  }

  function fmtPct(p) {
    return p === null || p === undefined ? "–" : Number(p).toFixed(1) + " %";
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var s = Number(seconds);
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.round(s - m * 60) + " s";
    var hours = Math.floor(m / 60);
    if (hours < 48) return hours + " h " + (m - hours * 60) + " min";
    return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  }

  function fmtTime(iso) {
    return iso ? String(iso).slice(0, 19).replace("T", " ") : "–";
  }

  function basename(path) {
    var parts = String(path || "").split(/[\\/]/);
    return parts[parts.length - 1] || String(path || "");
  }

  function shorten(text, max) {
    text = String(text || "");
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  // ---------------------------------------------------------------- URL state and API

  function params() {
    return new URLSearchParams(window.location.search);
  }

  function filterParams(from) {
    var out = new URLSearchParams();
    FILTERS.forEach(function (name) {
      var value = from.get(name);
      if (value) out.set(name, value);
    });
    return out;
  }

  /** A page link (relative: "?view=..."), keeping the current filters unless overridden. */
  function pageHref(changes) {
    return withChanges(filterParams(params()), changes);
  }

  /** The current URL with ``changes`` (view, by and sort kept unless changed). */
  function currentHref(changes) {
    return withChanges(params(), changes);
  }

  function withChanges(next, changes) {
    Object.keys(changes).forEach(function (key) {
      var value = changes[key];
      if (value === null || value === undefined || value === "") next.delete(key);
      else next.set(key, value);
    });
    var query = next.toString();
    return query ? "?" + query : window.location.pathname;
  }

  function go(href, replace) {
    if (replace) window.history.replaceState(null, "", href);
    else window.history.pushState(null, "", href);
    render();
  }

  /** GET (or POST with a JSON body) a relative API path; rejects with the API's error message. */
  function api(path, query, body) {
    var url = new URL(path, document.baseURI);
    if (query) url.search = query.toString();
    var options = { headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (data) {
          if (!response.ok) {
            var error = new Error(
              (data && data.error) || "the server answered " + response.status
            );
            error.status = response.status;
            throw error;
          }
          return data;
        });
    });
  }

  function link(text, href, props) {
    var a = h("a", Object.assign({ href: href }, props || {}), text);
    a.dataset.nav = "1";
    return a;
  }

  function policyLink(name) {
    if (name === null || name === undefined) return h("span", { class: "muted" }, "(no policy)");
    // the policy view is scoped to its policy: a policy filter would contradict it
    return link(name, pageHref({ view: "policy", name: name, policy: null }));
  }

  // ---------------------------------------------------------------- charts

  /** Draw a chart on canvas ``id``; with ``empty`` true, remove it and hide its box instead. */
  function drawChart(id, config, empty) {
    if (charts[id]) {
      charts[id].destroy();
      delete charts[id];
    }
    var canvas = document.getElementById(id);
    (canvas.closest("figure") || canvas.closest(".chart-box")).hidden = Boolean(empty);
    if (empty || !window.Chart) return;
    config.options = Object.assign(
      { responsive: true, maintainAspectRatio: false, animation: false },
      config.options || {}
    );
    charts[id] = new window.Chart(canvas, config);
  }

  function bytesAxis(stacked) {
    return {
      beginAtZero: true,
      stacked: Boolean(stacked),
      ticks: {
        callback: function (value) {
          return fmtBytes(value);
        },
      },
    };
  }

  function bytesTooltip(context) {
    return context.dataset.label + ": " + fmtBytes(context.parsed.y ?? context.parsed.x);
  }

  // ---------------------------------------------------------------- run tables

  function runRow(run, withPolicy) {
    var tr = h("tr", { class: run.status });
    tr.dataset.runId = run.id;
    tr.appendChild(h("td", null, link(fmtTime(run.started_at), pageHref({ view: "run", id: run.id }), { title: "run " + run.id })));
    tr.appendChild(h("td", null, h("span", { class: "badge " + run.status }, run.status)));
    if (withPolicy) tr.appendChild(h("td", { class: "policy" }, policyLink(run.policy)));
    tr.appendChild(
      h(
        "td",
        { class: "path" },
        link(basename(run.path), pageHref({ view: "file", path: run.path }), {
          title: run.path,
        })
      )
    );
    tr.appendChild(h("td", { class: "num" }, fmtBytes(run.size_before_bytes)));
    tr.appendChild(h("td", { class: "num" }, fmtBytes(run.size_after_bytes)));
    tr.appendChild(h("td", { class: "num" }, fmtBytes(run.saved_bytes)));
    tr.appendChild(h("td", { class: "num" }, fmtDuration(run.duration_seconds)));
    tr.appendChild(h("td", { class: "err", title: run.error || "" }, shorten(run.error, 120)));
    return tr;
  }

  function fillRuns(table, runs) {
    var body = $("tbody", table);
    clear(body);
    var withPolicy = table.dataset.omit !== "policy";
    runs.forEach(function (run) {
      body.appendChild(runRow(run, withPolicy));
    });
    table.hidden = runs.length === 0;
  }

  // ---------------------------------------------------------------- overview

  function card(key, text, value, title) {
    var node = $('#cards [data-key="' + key + '"]');
    setText(node, text);
    if (value !== undefined) node.dataset.value = value === null ? "" : String(value);
    node.title = title || "";
    return node;
  }

  function renderSummary(s, filtered) {
    var finished = s.succeeded + s.failed + s.interrupted;
    var rate = finished ? s.succeeded / finished : null;
    var removed = s.tracks_removed.audio + s.tracks_removed.subtitle + s.tracks_removed.attachment;
    card("files", fmtInt(s.files), s.files);
    card("runs-line", fmtInt(s.runs) + " runs", s.runs);
    card("saved_bytes", fmtBytes(s.saved_bytes), s.saved_bytes, fmtInt(s.saved_bytes) + " bytes");
    card(
      "saved_percent",
      fmtPct(s.saved_percent) + " of " + fmtBytes(s.size_before_bytes),
      s.saved_percent
    );
    card("success_rate", rate === null ? "–" : fmtPct(rate * 100), rate === null ? null : rate);
    card("succeeded-line", fmtInt(s.succeeded) + " of " + fmtInt(finished) + " finished runs", s.succeeded);
    card("failed", fmtInt(s.failed), s.failed).classList.toggle("nonzero", s.failed > 0);
    card(
      "interrupted-line",
      fmtInt(s.interrupted) + " interrupted · " + fmtInt(s.running) + " running",
      s.interrupted
    );
    card("duration_total", fmtDuration(s.duration_seconds.total), s.duration_seconds.total);
    card("duration-line", "mean " + fmtDuration(s.duration_seconds.mean) + " per run", s.duration_seconds.mean);
    card("tracks_removed_total", fmtInt(removed), removed);
    card(
      "transcode-line",
      fmtInt(s.videos_transcoded) + " videos transcoded · " + fmtInt(s.videos_transcode_skipped) + " skipped",
      s.videos_transcoded
    );
    if (s.runs === 0) notice(filtered ? NO_MATCH_HINT : EMPTY_HINT);
    else notice("");

    var tr = s.tracks_removed;
    if (removed === 0) state("tracks", s.runs ? "No tracks removed in these runs." : "Nothing yet.");
    else state("tracks", "");
    drawChart("chart-tracks", {
      type: "bar",
      data: {
        labels: ["audio", "subtitle", "attachment"],
        datasets: [{ label: "tracks removed", data: [tr.audio, tr.subtitle, tr.attachment], backgroundColor: COLORS.tracks }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    }, removed === 0);
  }

  // Every period from the first to the last, those without runs as zeros, so that a quiet
  // stretch shows as one and not as two neighbouring bars. Past MAX_FILLED periods (ten years
  // of days) the points are drawn as they come.
  var MAX_FILLED = 3660;

  function periodDate(period) {
    var parts = period.split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2] || 1));
  }

  function periodKey(date, by) {
    var month = date.toISOString().slice(0, 7);
    return by === "month" ? month : date.toISOString().slice(0, 10);
  }

  function fillPeriods(points, by) {
    if (points.length < 2) return points;
    var known = {};
    points.forEach(function (p) {
      known[p.period] = p;
    });
    var last = points[points.length - 1].period;
    var cursor = periodDate(points[0].period);
    var filled = [];
    while (filled.length < MAX_FILLED) {
      var key = periodKey(cursor, by);
      filled.push(
        known[key] || {
          period: key, runs: 0, succeeded: 0, failed: 0,
          size_before_bytes: 0, size_after_bytes: 0, saved_bytes: 0,
        }
      );
      if (key >= last) return filled;
      if (by === "month") cursor.setUTCMonth(cursor.getUTCMonth() + 1);
      else cursor.setUTCDate(cursor.getUTCDate() + (by === "week" ? 7 : 1));
    }
    return points;
  }

  function renderTrend(trend) {
    var t = { by: trend.by, points: fillPeriods(trend.points, trend.by) };
    var labels = t.points.map(function (p) {
      return p.period;
    });
    state("trend", t.points.length ? "" : "No runs in this period yet.");
    drawChart("chart-saved", {
      type: "bar",
      data: {
        labels: labels,
        datasets: [
          {
            label: "saved",
            data: t.points.map(function (p) {
              return p.saved_bytes;
            }),
            backgroundColor: COLORS.saved,
          },
        ],
      },
      options: {
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: bytesTooltip } } },
        scales: { y: bytesAxis(false) },
      },
    }, t.points.length === 0);
    drawChart("chart-runs", {
      type: "bar",
      data: {
        labels: labels,
        datasets: [
          { label: "succeeded", data: t.points.map(function (p) { return p.succeeded; }), backgroundColor: COLORS.ok },
          { label: "failed", data: t.points.map(function (p) { return p.failed; }), backgroundColor: COLORS.bad },
          {
            label: "interrupted or running",
            data: t.points.map(function (p) {
              return p.runs - p.succeeded - p.failed;
            }),
            backgroundColor: COLORS.warn,
          },
        ],
      },
      options: {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      },
    }, t.points.length === 0);
  }

  function renderPolicies(list) {
    var rows = list.policies;
    var body = $("#policies-table tbody");
    clear(body);
    rows.forEach(function (p) {
      var failure = p.runs ? p.failed / p.runs : 0;
      var tr = h("tr", { class: p.failed ? "has-failures" : "" });
      tr.appendChild(h("td", { class: "policy" }, policyLink(p.policy)));
      tr.appendChild(h("td", { class: "num" }, fmtInt(p.runs)));
      tr.appendChild(h("td", { class: "num" }, fmtInt(p.failed)));
      tr.appendChild(h("td", { class: "num" + (p.failed ? " bad" : "") }, fmtPct(failure * 100)));
      tr.appendChild(h("td", { class: "num", title: fmtInt(p.saved_bytes) + " bytes" }, fmtBytes(p.saved_bytes)));
      tr.appendChild(h("td", { class: "num" }, fmtPct(p.saved_percent)));
      tr.appendChild(h("td", null, fmtTime(p.last_run_at)));
      body.appendChild(tr);
    });
    $("#policies-table").hidden = rows.length === 0;
    state("policies", rows.length ? "" : "No policy has runs here yet.");
    var top = rows.slice(0, 15);
    drawChart("chart-policies", {
      type: "bar",
      data: {
        labels: top.map(function (p) {
          return p.policy === null ? "(no policy)" : shorten(p.policy, 40);
        }),
        datasets: [
          {
            label: "saved",
            data: top.map(function (p) {
              return p.saved_bytes;
            }),
            backgroundColor: COLORS.saved,
          },
        ],
      },
      options: {
        indexAxis: "y",
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (context) {
                var p = top[context.dataIndex];
                return [
                  "saved: " + fmtBytes(p.saved_bytes),
                  "runs: " + fmtInt(p.runs) + ", failed: " + fmtInt(p.failed),
                ];
              },
            },
          },
        },
        scales: { x: bytesAxis(false) },
      },
    }, rows.length === 0);
    var names = $("#policy-names");
    clear(names);
    rows.forEach(function (p) {
      if (p.policy !== null) names.appendChild(h("option", { value: p.policy }));
    });
  }

  function renderCodecs(data) {
    var body = $("#codecs-table tbody");
    clear(body);
    data.transitions.forEach(function (t) {
      var tr = h("tr");
      tr.appendChild(h("td", null, t.source === null ? "unknown" : t.source));
      tr.appendChild(h("td", null, "→"));
      tr.appendChild(h("td", null, t.target === null ? "kept (not transcoded)" : t.target));
      tr.appendChild(h("td", { class: "num" }, fmtInt(t.runs)));
      tr.appendChild(h("td", { class: "num" }, fmtBytes(t.saved_bytes)));
      body.appendChild(tr);
    });
    $("#codecs-table").hidden = data.transitions.length === 0;
    state("codecs", data.transitions.length ? "" : "No video codec recorded in these runs.");
  }

  function loadOverview(p, mine) {
    var filters = filterParams(p);
    var filtered = filters.toString() !== "";
    var by = p.get("by") || "day";
    var sort = p.get("sort") || "runs";
    $("#trend-by").value = by;
    $("#policy-sort").value = sort;
    ["trend", "policies", "codecs", "tracks", "recent"].forEach(function (name) {
      state(name, "Loading…");
    });
    updatePurgeScope(filters);

    function withParams(extra) {
      var q = new URLSearchParams(filters);
      Object.keys(extra).forEach(function (k) {
        q.set(k, extra[k]);
      });
      return q;
    }
    function failed(section) {
      return function (error) {
        if (mine !== token) return;
        state(section, "Could not load: " + error.message, true);
        if (error.status === 400) notice(error.message + ". Correct the filter and apply again.", true);
      };
    }

    api("api/summary", filters)
      .then(function (s) {
        if (mine === token) renderSummary(s, filtered);
      })
      .catch(function (error) {
        if (mine !== token) return;
        notice(
          error.status === 400
            ? error.message + ". Correct the filter and apply again."
            : "Could not load the summary: " + error.message,
          true
        );
        state("tracks", "Could not load: " + error.message, true);
      });
    api("api/trend", withParams({ by: by }))
      .then(function (t) {
        if (mine === token) renderTrend(t);
      })
      .catch(failed("trend"));
    api("api/policies", withParams({ sort: sort }))
      .then(function (list) {
        if (mine === token) renderPolicies(list);
      })
      .catch(failed("policies"));
    api("api/codecs", filters)
      .then(function (data) {
        if (mine === token) renderCodecs(data);
      })
      .catch(failed("codecs"));
    api("api/recent", withParams({ limit: "25" }))
      .then(function (list) {
        if (mine !== token) return;
        fillRuns($("#recent-table"), list.runs);
        state("recent", list.runs.length ? "" : filtered ? NO_MATCH_HINT : EMPTY_HINT);
      })
      .catch(failed("recent"));
  }

  // ---------------------------------------------------------------- purge

  var purgePreview = null;

  function purgeBody(filters, dryRun) {
    var body = { dry_run: dryRun };
    FILTERS.forEach(function (name) {
      var value = filters.get(name);
      if (value) body[name] = value;
    });
    if (!filters.toString()) body.all = $("#purge-all").checked;
    return body;
  }

  function resetPurge() {
    purgePreview = null;
    $("#purge-confirm").hidden = true;
    $("#purge-cancel").hidden = true;
    $("#purge-preview").disabled = false;
  }

  function updatePurgeScope(filters) {
    resetPurge();
    state("purge-result", "");
    var parts = [];
    FILTERS.forEach(function (name) {
      var value = filters.get(name);
      if (value) parts.push(name + " " + value);
    });
    setText($("#purge-scope"), parts.length ? "Runs matching: " + parts.join(", ") : "No filter is set.");
    $("#purge-all-label").hidden = parts.length !== 0;
    if (parts.length) $("#purge-all").checked = false;
  }

  function previewPurge() {
    var filters = filterParams(params());
    if (!filters.toString() && !$("#purge-all").checked) {
      $("#purge-result").classList.remove("error");
      setText(
        $("#purge-result"),
        "Set a filter above (since, until, policy, node, status), or tick “purge every run”."
      );
      return;
    }
    $("#purge-preview").disabled = true;
    setText($("#purge-result"), "Counting…");
    api("api/purge", null, purgeBody(filters, true))
      .then(function (answer) {
        purgePreview = filters.toString() + "|" + $("#purge-all").checked;
        $("#purge-preview").disabled = false;
        $("#purge-result").classList.remove("error");
        if (answer.matched === 0) {
          setText($("#purge-result"), "No run matches: nothing would be deleted.");
          return;
        }
        setText(
          $("#purge-result"),
          fmtInt(answer.matched) +
            (answer.matched === 1 ? " run matches" : " runs match") +
            " and would be deleted, with their actions and phases. This cannot be undone."
        );
        setText($("#purge-confirm"), "Delete " + fmtInt(answer.matched) + (answer.matched === 1 ? " run" : " runs"));
        $("#purge-confirm").hidden = false;
        $("#purge-cancel").hidden = false;
      })
      .catch(function (error) {
        $("#purge-preview").disabled = false;
        $("#purge-result").classList.add("error");
        setText($("#purge-result"), "Could not preview: " + error.message);
      });
  }

  function confirmPurge() {
    var filters = filterParams(params());
    if (purgePreview !== filters.toString() + "|" + $("#purge-all").checked) {
      resetPurge();
      setText($("#purge-result"), "The filters changed since the preview: preview again.");
      return;
    }
    $("#purge-confirm").disabled = true;
    api("api/purge", null, purgeBody(filters, false))
      .then(function (answer) {
        $("#purge-confirm").disabled = false;
        render();
        $("#purge-result").classList.remove("error");
        setText(
          $("#purge-result"),
          "Deleted " + fmtInt(answer.deleted) + (answer.deleted === 1 ? " run." : " runs.")
        );
      })
      .catch(function (error) {
        $("#purge-confirm").disabled = false;
        $("#purge-result").classList.add("error");
        setText($("#purge-result"), "Could not purge: " + error.message);
      });
  }

  // ---------------------------------------------------------------- policy view

  function loadPolicy(p, mine) {
    var name = p.get("name") || "";
    setText($("#policy-name"), name);
    document.title = "Policy " + name + " · VPO stats";
    var filters = filterParams(p);
    var runsQuery = new URLSearchParams(filters);
    runsQuery.set("policy", name);
    runsQuery.set("limit", "200");
    var cards = $("#policy-cards");
    clear(cards);
    clear($("#policy-actions tbody"));
    clear($("#policy-runs tbody"));
    state("policy-actions", "Loading…");
    state("policy-runs", "Loading…");
    api("api/policies/" + encodeURIComponent(name), filters)
      .then(function (row) {
        if (mine !== token) return;
        notice("");
        var failure = row.runs ? row.failed / row.runs : 0;
        [
          ["Runs", fmtInt(row.runs), "runs"],
          ["Succeeded", fmtInt(row.succeeded), "succeeded"],
          ["Failed", fmtInt(row.failed) + " (" + fmtPct(failure * 100) + ")", "failed"],
          ["Space saved", fmtBytes(row.saved_bytes) + " · " + fmtPct(row.saved_percent), "saved_bytes"],
          ["Last run (UTC)", fmtTime(row.last_run_at), "last_run_at"],
        ].forEach(function (c) {
          cards.appendChild(h("div", { class: "card" }, h("h2", null, c[0]), h("p", { class: "big", data: { key: c[2], value: row[c[2]] } }, c[1])));
        });
        var body = $("#policy-actions tbody");
        row.actions.forEach(function (a) {
          body.appendChild(
            h("tr", { class: a.failed ? "failed" : "" }, h("td", null, a.type), h("td", { class: "num" }, fmtInt(a.count)), h("td", { class: "num" }, fmtInt(a.failed)))
          );
        });
        $("#policy-actions").hidden = row.actions.length === 0;
        state("policy-actions", row.actions.length ? "" : "No actions recorded for this policy.");
      })
      .catch(function (error) {
        if (mine !== token) return;
        state("policy-actions", "");
        notice(error.status === 404 ? error.message + ". Go back to the overview to pick a policy." : "Could not load the policy: " + error.message, true);
      });
    api("api/recent", runsQuery)
      .then(function (list) {
        if (mine !== token) return;
        fillRuns($("#policy-runs"), list.runs);
        state("policy-runs", list.runs.length ? (list.runs.length === 200 ? "The newest 200 runs." : "") : "No runs of this policy match the filters.");
      })
      .catch(function (error) {
        if (mine === token) state("policy-runs", "Could not load: " + error.message, true);
      });
  }

  // ---------------------------------------------------------------- run view

  function kvRow(body, label, value) {
    var cell = typeof value === "object" && value !== null ? h("td", null, value) : h("td", null, value === null || value === undefined || value === "" ? "–" : String(value));
    body.appendChild(h("tr", null, h("th", null, label), cell));
  }

  function jsonText(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function codecText(run) {
    var source = run.video_source_codec;
    if (!source && !run.video_target_codec) return null;
    if (run.video_transcode_skipped) return (source || "?") + " (kept: transcode skipped)";
    if (!run.video_target_codec) return source + " (not transcoded)";
    return (source || "?") + " → " + run.video_target_codec;
  }

  function loadRun(p, mine) {
    var id = p.get("id") || "";
    setText($("#run-id"), id);
    document.title = "Run " + id.slice(0, 8) + " · VPO stats";
    ["#run-fields tbody", "#run-sizes tbody", "#run-tracks tbody", "#run-actions tbody", "#run-phases tbody"].forEach(function (s) {
      clear($(s));
    });
    setText($("#run-status"), "");
    $("#run-error").hidden = true;
    state("run-actions", "Loading…");
    state("run-phases", "");
    api("api/runs/" + encodeURIComponent(id))
      .then(function (run) {
        if (mine !== token) return;
        notice("");
        setText($("#run-id"), run.id);
        var badge = $("#run-status");
        setText(badge, run.status);
        badge.className = "badge " + run.status;
        if (run.error) {
          setText($("#run-error"), run.error);
          $("#run-error").hidden = false;
        }
        var f = $("#run-fields tbody");
        kvRow(f, "File", link(run.path, pageHref({ view: "file", path: run.path })));
        if (run.output_path && run.output_path !== run.path) kvRow(f, "Output", run.output_path);
        kvRow(f, "Policy", policyLink(run.policy));
        kvRow(f, "Node", run.node);
        kvRow(f, "Started (UTC)", fmtTime(run.started_at));
        kvRow(f, "Finished (UTC)", fmtTime(run.finished_at));
        kvRow(f, "Duration", fmtDuration(run.duration_seconds));
        kvRow(f, "Phases", run.phases_total === null ? run.phases_completed : fmtInt(run.phases_completed) + " of " + fmtInt(run.phases_total));
        kvRow(f, "Changes", run.total_changes);
        kvRow(f, "Video codec", codecText(run));
        if (run.video_transcode_skipped) kvRow(f, "Transcode skipped", run.video_skip_reason || "yes");
        kvRow(f, "Audio tracks", run.audio_tracks_transcoded === null && run.audio_tracks_preserved === null ? null : fmtInt(run.audio_tracks_transcoded) + " transcoded, " + fmtInt(run.audio_tracks_preserved) + " preserved");
        kvRow(f, "Encoder", run.encoder_type);
        kvRow(f, "Job id", run.job_id);
        kvRow(f, "File id", run.file_id);
        kvRow(f, "Recorded by", run.source === "vpo" ? "VPO's own history (import-vpo)" : "plugin hooks");

        var s = $("#run-sizes tbody");
        kvRow(s, "Size before", run.size_before_bytes === null ? null : fmtBytes(run.size_before_bytes) + " (" + fmtInt(run.size_before_bytes) + " bytes)");
        kvRow(s, "Size after", run.size_after_bytes === null ? null : fmtBytes(run.size_after_bytes) + " (" + fmtInt(run.size_after_bytes) + " bytes)");
        kvRow(s, "Saved", run.saved_bytes === null ? null : fmtBytes(run.saved_bytes) + (run.size_before_bytes ? " (" + fmtPct((100 * run.saved_bytes) / run.size_before_bytes) + ")" : ""));
        kvRow(s, "Hash before", run.hash_before);
        kvRow(s, "Hash after", run.hash_after);
        var t = $("#run-tracks tbody");
        [["before", run.tracks_before], ["after", run.tracks_after]].forEach(function (pair) {
          var c = pair[1] || {};
          t.appendChild(h("tr", null, h("th", null, pair[0]), h("td", { class: "num" }, fmtInt(c.video)), h("td", { class: "num" }, fmtInt(c.audio)), h("td", { class: "num" }, fmtInt(c.subtitle)), h("td", { class: "num" }, fmtInt(c.attachment))));
        });

        var a = $("#run-actions tbody");
        run.actions.forEach(function (act) {
          var track = act.track_type === null && act.track_index === null ? "" : (act.track_type || "") + (act.track_index === null ? "" : " #" + act.track_index);
          a.appendChild(
            h(
              "tr",
              { class: act.success ? "" : "failed" },
              h("td", null, act.phase || ""),
              h("td", null, act.type),
              h("td", null, track),
              h("td", { class: "mono" }, jsonText(act.before)),
              h("td", { class: "mono" }, jsonText(act.after)),
              h("td", null, h("span", { class: "badge " + (act.success ? "succeeded" : "failed") }, act.success ? "ok" : "failed")),
              h("td", { class: "num" }, act.duration_ms === null ? "" : fmtInt(Math.round(act.duration_ms))),
              h("td", null, act.rule || ""),
              h("td", { class: act.success ? "" : "err" }, act.message || "")
            )
          );
        });
        $("#run-actions").hidden = run.actions.length === 0;
        state("run-actions", run.actions.length ? "" : "No actions recorded for this run (recording of actions may be off).");
        var ph = $("#run-phases tbody");
        run.phases.forEach(function (phase) {
          ph.appendChild(
            h(
              "tr",
              null,
              h("td", null, phase.name || ""),
              h("td", { class: "num" }, fmtDuration(phase.wall_time_seconds)),
              h("td", { class: "num" }, fmtBytes(phase.bytes_read)),
              h("td", { class: "num" }, fmtBytes(phase.bytes_written)),
              h("td", { class: "num" }, phase.encoding_fps === null ? "–" : Number(phase.encoding_fps).toFixed(1)),
              h("td", { class: "num" }, phase.encoding_bitrate === null ? "–" : (phase.encoding_bitrate / 1e6).toFixed(2) + " Mbit/s")
            )
          );
        });
        $("#run-phases").hidden = run.phases.length === 0;
        state("run-phases", run.phases.length ? "" : "No phases recorded for this run.");
      })
      .catch(function (error) {
        if (mine !== token) return;
        state("run-actions", "");
        notice(error.status === 404 ? error.message + ". The run may have been purged." : "Could not load the run: " + error.message, true);
      });
  }

  // ---------------------------------------------------------------- file view

  function loadFile(p, mine) {
    var path = p.get("path") || "";
    setText($("#file-path"), path);
    document.title = basename(path) + " · VPO stats";
    clear($("#file-runs tbody"));
    state("file-runs", "Loading…");
    var query = filterParams(p);
    query.set("path", path);
    api("api/files", query)
      .then(function (answer) {
        if (mine !== token) return;
        notice("");
        fillRuns($("#file-runs"), answer.runs);
        state("file-runs", "");
      })
      .catch(function (error) {
        if (mine !== token) return;
        state("file-runs", "");
        $("#file-runs").hidden = true;
        notice(error.status === 404 ? error.message + ". Check the path: it must be the path as VPO processed it." : "Could not load the file: " + error.message, true);
      });
  }

  // ---------------------------------------------------------------- render and events

  function fillFilterForm(p) {
    var form = $("#filters");
    FILTERS.forEach(function (name) {
      form.elements[name].value = p.get(name) || "";
    });
  }

  function render() {
    token += 1;
    var mine = token;
    var p = params();
    fillFilterForm(p);
    var view = p.get("view") || "overview";
    if (["overview", "policy", "run", "file"].indexOf(view) < 0) view = "overview";
    document.querySelectorAll(".view").forEach(function (section) {
      section.hidden = section.id !== "view-" + view;
    });
    document.querySelectorAll('a[data-nav="overview"]').forEach(function (a) {
      a.href = pageHref({});
    });
    notice("Loading…");
    if (view === "overview") {
      document.title = "VPO stats";
      loadOverview(p, mine);
    } else if (view === "policy") loadPolicy(p, mine);
    else if (view === "run") loadRun(p, mine);
    else loadFile(p, mine);
    document.body.dataset.view = view;
  }

  function applyFilters(event) {
    if (event) event.preventDefault();
    var form = $("#filters");
    var changes = {};
    FILTERS.forEach(function (name) {
      changes[name] = form.elements[name].value.trim();
    });
    if (params().get("view") === "run") {
      // filters do not apply to one run: show what they select instead
      changes.view = null;
      changes.id = null;
    }
    go(currentHref(changes), true);
  }

  function init() {
    $("#filters").addEventListener("submit", applyFilters);
    $("#clear-filters").addEventListener("click", function () {
      var changes = {};
      FILTERS.forEach(function (name) {
        changes[name] = null;
      });
      go(currentHref(changes), true);
    });
    document.querySelectorAll(".quick button").forEach(function (button) {
      button.addEventListener("click", function () {
        $("#filters").elements.since.value = button.dataset.since;
        $("#filters").elements.until.value = "";
        applyFilters();
      });
    });
    $("#trend-by").addEventListener("change", function (e) {
      go(currentHref({ by: e.target.value === "day" ? null : e.target.value }), true);
    });
    $("#policy-sort").addEventListener("change", function (e) {
      go(currentHref({ sort: e.target.value === "runs" ? null : e.target.value }), true);
    });
    $("#file-lookup").addEventListener("submit", function (e) {
      e.preventDefault();
      var path = e.target.elements.path.value.trim();
      if (path) go(pageHref({ view: "file", path: path }));
    });
    $("#purge-preview").addEventListener("click", previewPurge);
    $("#purge-confirm").addEventListener("click", confirmPurge);
    $("#purge-cancel").addEventListener("click", function () {
      resetPurge();
      setText($("#purge-result"), "Cancelled: nothing was deleted.");
    });
    $("#purge-all").addEventListener("change", resetPurge);
    // in-page links: follow them without reloading (new tabs and modified clicks work as usual)
    document.addEventListener("click", function (e) {
      var a = e.target.closest ? e.target.closest("a[data-nav]") : null;
      if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      go(a.getAttribute("href"));
    });
    window.addEventListener("popstate", render);
    render();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
