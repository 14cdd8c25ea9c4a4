/* Numbers, sizes, durations and times as the dashboard shows them. */

export function fmtInt(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

export function fmtBytes(n) {
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

export function fmtPct(p) {
  return p === null || p === undefined ? "–" : Number(p).toFixed(1) + " %";
}

/** Seconds as the CLI shows them ("59.9s", "2m 00s", "1h 05m", "2d 03h"): rounded once, then
 * split, so no lower unit ever reads 60. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  var s = Number(seconds);
  if (Math.round(s * 10) < 600) return (Math.round(s * 10) / 10).toFixed(1) + "s";
  var whole = Math.round(s);
  var m = Math.floor(whole / 60);
  if (m < 60) return m + "m " + pad2(whole % 60) + "s";
  var hours = Math.floor(m / 60);
  if (hours < 48) return hours + "h " + pad2(m % 60) + "m";
  return Math.floor(hours / 24) + "d " + pad2(hours % 24) + "h";
}

function pad2(n) {
  return (n < 10 ? "0" : "") + n;
}

export function fmtTime(iso) {
  return iso ? String(iso).slice(0, 19).replace("T", " ") : "–";
}

export function basename(path) {
  var parts = String(path || "").split(/[\\/]/);
  return parts[parts.length - 1] || String(path || "");
}

export function shorten(text, max) {
  text = String(text || "");
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
