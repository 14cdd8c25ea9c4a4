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

var UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Round ticks for bytes from ``low`` to ``high``: steps of 1, 2 or 5 times a power of ten of
 * one binary unit (0 B, 1 GiB, 2 GiB, ...), about ``count`` of them; all zeros give one, 0 B. */
export function byteTicks(low, high, count) {
  low = Math.min(0, low);
  high = Math.max(0, high);
  if (low === high) return { min: 0, max: 1, values: [0], labels: ["0 B"] };
  var u = 0;
  while (u < UNITS.length - 1 && Math.max(-low, high) >= Math.pow(1024, u + 1)) u++;
  for (;;) {
    var unit = Math.pow(1024, u);
    var raw = (high - low) / unit / (count || 5);
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (f) {
      return f * magnitude;
    }).find(function (candidate) {
      return candidate >= raw * (1 - 1e-9);
    });
    if (u === 0) step = Math.max(1, step); // no fractions of a byte
    var first = Math.floor(low / unit / step + 1e-9);
    var last = Math.ceil(high / unit / step - 1e-9);
    // ticks up to 1000 of a unit or more (1000 MiB, 1500 MiB) read better in the next one
    if (Math.max(-first, last) * step < 1000 || u === UNITS.length - 1) break;
    u++;
  }
  var decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  var values = [];
  var labels = [];
  for (var i = first; i <= last; i++) {
    var n = Number((i * step).toFixed(decimals));
    values.push(n * unit);
    labels.push(n === 0 ? "0 B" : String(n) + " " + UNITS[u]);
  }
  return { min: values[0], max: values[values.length - 1], values: values, labels: labels };
}

/** A value axis in bytes over ``values`` (the plotted numbers), with round binary ticks. */
export function bytesAxis(values) {
  var finite = values.filter(Number.isFinite);
  var nice = byteTicks(Math.min.apply(null, finite.concat(0)), Math.max.apply(null, finite.concat(0)));
  return {
    min: nice.min,
    max: nice.max,
    afterBuildTicks: function (axis) {
      axis.ticks = nice.values.map(function (value) {
        return { value: value };
      });
    },
    ticks: {
      callback: function (value) {
        var at = nice.values.indexOf(value);
        return at < 0 ? fmtBytes(value) : nice.labels[at];
      },
    },
  };
}

export function bytesTooltip(context) {
  return context.dataset.label + ": " + fmtBytes(context.parsed.y ?? context.parsed.x);
}

/** The period that keeps the trend readable over runs from ``first`` to ``last`` (ISO
 * times): days up to two months, weeks up to a year, months beyond. */
export function autoPeriod(first, last) {
  if (!first || !last) return "day";
  var days = (Date.parse(last) - Date.parse(first)) / 86400000;
  return days <= 62 ? "day" : days <= 366 ? "week" : "month";
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

