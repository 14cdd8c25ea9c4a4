/* Purge: preview what the filters select, then delete after an explicit confirmation: exactly
 * the runs previewed (the preview's token goes back with the confirm), or nothing when they
 * changed meanwhile. */

import { $, setText, state } from "./dom.js";
import { fmtInt } from "./format.js";
import { api, filterParams, FILTERS, params } from "./nav.js";

var rerender = function () {};

/** Set what a purge calls once it deleted runs: the app's render. */
export function onPurged(fn) {
  rerender = fn;
}

var purgePreview = null;
var purgeToken = null;

function purgeBody(filters, dryRun, token) {
  var body = { dry_run: dryRun };
  if (token) body.token = token;
  FILTERS.forEach(function (name) {
    var value = filters.get(name);
    if (value) body[name] = value;
  });
  if (!filters.toString()) body.all = $("#purge-all").checked;
  return body;
}

export function resetPurge() {
  purgePreview = null;
  purgeToken = null;
  $("#purge-confirm").hidden = true;
  $("#purge-cancel").hidden = true;
  $("#purge-preview").disabled = false;
}

export function updatePurgeScope(filters) {
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

export function previewPurge() {
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
      purgeToken = answer.token;
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

export function confirmPurge() {
  var filters = filterParams(params());
  if (purgePreview !== filters.toString() + "|" + $("#purge-all").checked) {
    resetPurge();
    setText($("#purge-result"), "The filters changed since the preview: preview again.");
    return;
  }
  $("#purge-confirm").disabled = true;
  api("api/purge", null, purgeBody(filters, false, purgeToken))
    .then(function (answer) {
      $("#purge-confirm").disabled = false;
      rerender();
      $("#purge-result").classList.remove("error");
      setText(
        $("#purge-result"),
        "Deleted " + fmtInt(answer.deleted) + (answer.deleted === 1 ? " run." : " runs.")
      );
    })
    .catch(function (error) {
      $("#purge-confirm").disabled = false;
      $("#purge-result").classList.add("error");
      if (error.status === 409) {
        // the runs changed since the preview: nothing was deleted, and this preview is spent
        resetPurge();
        var why = error.message.charAt(0).toUpperCase() + error.message.slice(1);
        setText($("#purge-result"), why + ".");
        return;
      }
      setText($("#purge-result"), "Could not purge: " + error.message);
    });
}
