/* vpo-stats dashboard: the entry module (render by the URL, events).
 *
 * Every stored string (policy names, paths, errors) reaches the page through textContent or
 * DOM properties, never through innerHTML, so it is always shown as text. URLs are relative to
 * the page, so the dashboard works wherever the sub-application is mounted. The view and the
 * filters live in the query string, so any view can be bookmarked and shared.
 */

import { $, notice, setText } from "./js/dom.js";
import { beginRender, currentHref, FILTERS, go, onNavigate, pageHref, params } from "./js/nav.js";
import { loadOverview } from "./js/overview.js";
import { confirmPurge, onPurged, previewPurge, resetPurge } from "./js/purge.js";
import { loadFile, loadPolicy, loadRun } from "./js/views.js";

function fillFilterForm(p, view) {
  var form = $("#filters");
  FILTERS.forEach(function (name) {
    form.elements[name].value = p.get(name) || "";
  });
  // a policy's view is scoped to it: the Policy field shows which, and changing it switches
  if (view === "policy") form.elements.policy.value = p.get("name") || "";
}

function render() {
  var mine = beginRender();
  var p = params();
  var view = p.get("view") || "overview";
  if (["overview", "policy", "run", "file"].indexOf(view) < 0) view = "overview";
  if (view === "policy" && p.get("policy")) {
    // a link or bookmark with both: the policy filter names the policy to show
    window.history.replaceState(null, "", currentHref({ name: p.get("policy"), policy: null }));
    p = params();
  }
  fillFilterForm(p, view);
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
  var view = params().get("view");
  if (view === "run") {
    // filters do not apply to one run: show what they select instead
    changes.view = null;
    changes.id = null;
  } else if (view === "policy") {
    // the Policy field names the policy shown; emptied, it leaves for every policy
    if (changes.policy) changes.name = changes.policy;
    else changes.view = changes.name = null;
    changes.policy = null;
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
    go(currentHref({ by: e.target.value || null }), true);
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

onNavigate(render);
onPurged(render);
init(); // a module runs once the page is parsed
