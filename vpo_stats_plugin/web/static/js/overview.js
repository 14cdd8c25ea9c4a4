/* The overview: headline cards, trend, policies, nodes, codecs, tracks removed, recent runs. */

import { autoPeriod, bytesAxis, bytesTooltip, COLORS, drawChart, fillPeriods } from "./charts.js";
import { $, clear, h, notice, setText, state } from "./dom.js";
import { fmtBytes, fmtDuration, fmtInt, fmtPct, fmtTime, shorten } from "./format.js";
import { api, filterParams, isCurrent, nodeLink, policyLink } from "./nav.js";
import { updatePurgeScope } from "./purge.js";
import { fillRuns } from "./runs.js";

var EMPTY_HINT =
  "No runs yet: process a file with the plugin enabled (install vpo-stats-plugin where VPO " +
  "runs), import VPO's own history with `vpo-stats import-vpo`, or try `vpo-stats demo`.";
var NO_MATCH_HINT =
  "No runs match these filters: widen the dates, pick another policy or node, or press Clear.";
var TOP_POLICIES = 15;
// what a section shows besides its state line: hidden when the section could not load
var SECTION_PARTS = {
  trend: ["chart-saved", "chart-runs"],
  policies: ["#policies-table", "chart-policies"],
  nodes: ["#nodes-table"],
  codecs: ["#codecs-table"],
  tracks: ["chart-tracks"],
  recent: ["#recent-table"],
};

function card(key, text, value, title) {
  var node = $('#cards [data-key="' + key + '"]');
  setText(node, text);
  if (value !== undefined) node.dataset.value = value === null ? "" : String(value);
  node.title = title || "";
  return node;
}

function renderSummary(s) {
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
      scales: {
        y: bytesAxis(t.points.map(function (p) {
          return p.saved_bytes;
        })),
      },
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
  // the chart: the policies that saved most, every bar labelled, whatever the table's sort
  var top = rows.slice().sort(function (a, b) {
    return b.saved_bytes - a.saved_bytes;
  }).slice(0, TOP_POLICIES);
  setText(
    $("#policies-caption"),
    rows.length > top.length
      ? "Space saved by policy: the " + top.length + " that saved most, of " + fmtInt(rows.length)
      : "Space saved by policy"
  );
  $("#chart-policies").parentNode.style.height = Math.max(240, 24 * top.length + 60) + "px";
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
      scales: {
        x: bytesAxis(top.map(function (p) {
          return p.saved_bytes;
        })),
        y: { ticks: { autoSkip: false } },
      },
    },
  }, rows.length === 0);
  var names = $("#policy-names");
  clear(names);
  rows.forEach(function (p) {
    if (p.policy !== null) names.appendChild(h("option", { value: p.policy }));
  });
}

function renderNodes(list) {
  var body = $("#nodes-table tbody");
  clear(body);
  list.nodes.forEach(function (n) {
    var tr = h("tr", { class: n.failed ? "has-failures" : "" });
    tr.appendChild(h("td", { class: "node" }, nodeLink(n.node)));
    tr.appendChild(h("td", { class: "num" }, fmtInt(n.runs)));
    tr.appendChild(h("td", { class: "num" + (n.failed ? " bad" : "") }, fmtInt(n.failed)));
    tr.appendChild(h("td", { class: "num" }, fmtInt(n.interrupted)));
    tr.appendChild(h("td", { class: "num" }, fmtInt(n.running)));
    tr.appendChild(h("td", { class: "num", title: fmtInt(n.saved_bytes) + " bytes" }, fmtBytes(n.saved_bytes)));
    tr.appendChild(h("td", { class: "num" }, fmtPct(n.saved_percent)));
    tr.appendChild(h("td", null, fmtTime(n.last_run_at)));
    body.appendChild(tr);
  });
  $("#nodes-table").hidden = list.nodes.length === 0;
  state("nodes", list.nodes.length ? "" : "No node has runs here yet.");
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

function blankCards() {
  document.querySelectorAll("#cards [data-key]").forEach(function (node) {
    setText(node, node.classList.contains("big") ? "–" : "");
    node.dataset.value = "";
    node.title = "";
    node.classList.remove("nonzero");
  });
}

export function loadOverview(p, mine) {
  var filters = filterParams(p);
  var filtered = filters.toString() !== "";
  var chosenBy = p.get("by") || ""; // "" is auto: a period that suits the span shown
  var sort = p.get("sort") || "runs";
  $("#trend-by").value = chosenBy;
  setText($('#trend-by option[value=""]'), "auto");
  $("#policy-sort").value = sort;
  Object.keys(SECTION_PARTS).forEach(function (name) {
    state(name, "Loading…");
  });
  updatePurgeScope(filters);
  var badRequest = false;

  function withParams(extra) {
    var q = new URLSearchParams(filters);
    Object.keys(extra).forEach(function (k) {
      q.set(k, extra[k]);
    });
    return q;
  }
  // A bad parameter fails every section alike: it is said once, in the notice, and the
  // sections go blank; other failures are the section's own.
  function failed(section) {
    return function (error) {
      if (!isCurrent(mine)) return;
      SECTION_PARTS[section].forEach(function (part) {
        if (part.charAt(0) === "#") $(part).hidden = true;
        else drawChart(part, null, true);
      });
      if (error.status === 400) {
        badRequest = true;
        state(section, "");
        notice(error.message + ". Correct the filter and apply again.", true);
      } else state(section, "Could not load: " + error.message, true);
    };
  }

  var summary = api("api/summary", filters);
  summary
    .then(function (s) {
      if (!isCurrent(mine)) return;
      renderSummary(s);
      if (!badRequest) notice(s.runs === 0 ? (filtered ? NO_MATCH_HINT : EMPTY_HINT) : "");
    })
    .catch(function (error) {
      if (!isCurrent(mine)) return;
      blankCards();
      failed("tracks")(error);
      if (error.status !== 400) notice("Could not load the summary: " + error.message, true);
    });
  var by = chosenBy
    ? Promise.resolve(chosenBy)
    : summary.then(function (s) {
        return autoPeriod(s.first_run_at, s.last_run_at);
      });
  by.then(function (period) {
    if (isCurrent(mine) && !chosenBy) setText($('#trend-by option[value=""]'), "auto (" + period + ")");
    return api("api/trend", withParams({ by: period }));
  })
    .then(function (t) {
      if (isCurrent(mine)) renderTrend(t);
    })
    .catch(failed("trend"));
  api("api/policies", withParams({ sort: sort }))
    .then(function (list) {
      if (isCurrent(mine)) renderPolicies(list);
    })
    .catch(failed("policies"));
  api("api/nodes", filters)
    .then(function (list) {
      if (isCurrent(mine)) renderNodes(list);
    })
    .catch(failed("nodes"));
  api("api/codecs", filters)
    .then(function (data) {
      if (isCurrent(mine)) renderCodecs(data);
    })
    .catch(failed("codecs"));
  api("api/recent", withParams({ limit: "25" }))
    .then(function (list) {
      if (!isCurrent(mine)) return;
      fillRuns($("#recent-table"), list.runs);
      state("recent", list.runs.length ? "" : filtered ? NO_MATCH_HINT : EMPTY_HINT);
    })
    .catch(failed("recent"));
}
