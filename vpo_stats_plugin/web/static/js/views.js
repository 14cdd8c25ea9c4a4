/* The drill-down views: one policy, one run, one file's history. */

import { $, clear, h, notice, setText, state } from "./dom.js";
import { basename, fmtBytes, fmtDuration, fmtInt, fmtPct, fmtTime } from "./format.js";
import { api, filterParams, isCurrent, link, pageHref, policyLink } from "./nav.js";
import { fillRuns } from "./runs.js";

export function loadPolicy(p, mine) {
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
  var policyQuery = new URLSearchParams(filters);
  policyQuery.set("name", name); // a query parameter: a path would lose "." and ".."
  api("api/policy", policyQuery)
    .then(function (row) {
      if (!isCurrent(mine)) return;
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
      if (!isCurrent(mine)) return;
      state("policy-actions", "");
      $("#policy-actions").hidden = true;
      if (error.status === 404) notice(error.message + ". Go back to the overview to pick a policy.", true);
      else if (error.status === 400) notice(error.message + ". Correct the filter and apply again.", true);
      else notice("Could not load the policy: " + error.message, true);
    });
  api("api/recent", runsQuery)
    .then(function (list) {
      if (!isCurrent(mine)) return;
      fillRuns($("#policy-runs"), list.runs);
      state("policy-runs", list.runs.length ? (list.runs.length === 200 ? "The newest 200 runs." : "") : "No runs of this policy match the filters.");
    })
    .catch(function (error) {
      if (!isCurrent(mine)) return;
      $("#policy-runs").hidden = true;
      // a bad filter is said once, by the policy's own answer
      state("policy-runs", error.status === 400 ? "" : "Could not load: " + error.message, error.status !== 400);
    });
}

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

export function loadRun(p, mine) {
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
      if (!isCurrent(mine)) return;
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
      if (!isCurrent(mine)) return;
      state("run-actions", "");
      notice(error.status === 404 ? error.message + ". The run may have been purged." : "Could not load the run: " + error.message, true);
    });
}

export function loadFile(p, mine) {
  var path = p.get("path") || "";
  setText($("#file-path"), path);
  document.title = basename(path) + " · VPO stats";
  clear($("#file-runs tbody"));
  state("file-runs", "Loading…");
  var query = filterParams(p);
  query.set("path", path);
  api("api/files", query)
    .then(function (answer) {
      if (!isCurrent(mine)) return;
      notice("");
      fillRuns($("#file-runs"), answer.runs);
      state("file-runs", "");
    })
    .catch(function (error) {
      if (!isCurrent(mine)) return;
      state("file-runs", "");
      $("#file-runs").hidden = true;
      notice(error.status === 404 ? error.message + ". Check the path: it must be the path as VPO processed it." : "Could not load the file: " + error.message, true);
    });
}
