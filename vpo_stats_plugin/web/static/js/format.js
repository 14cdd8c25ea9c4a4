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

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  var s = Number(seconds);
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  var m = Math.floor(s / 60);
  if (m < 60) return m + " min " + Math.round(s - m * 60) + " s";
  var hours = Math.floor(m / 60);
  if (hours < 48) return hours + " h " + (m - hours * 60) + " min";
  return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
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
