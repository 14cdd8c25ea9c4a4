/* Charts (Chart.js, vendored) and the trend's periods. */

import { fmtBytes } from "./format.js";

export var COLORS = {
  ok: "#2e7d32",
  bad: "#c62828",
  warn: "#e69a28",
  saved: "#1f5fbf",
  grey: "#9aa5b1",
  tracks: ["#1f5fbf", "#7b4fc9", "#0f8f8a"],
};

var charts = {};

/** Draw a chart on canvas ``id``; with ``empty`` true, remove it and hide its box instead. */
export function drawChart(id, config, empty) {
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

export function bytesAxis(stacked) {
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

export function bytesTooltip(context) {
  return context.dataset.label + ": " + fmtBytes(context.parsed.y ?? context.parsed.x);
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

export function fillPeriods(points, by) {
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

