/* Tables of runs (recent, a policy's, a file's): a row a run, failures highlighted. */

import { $, clear, h } from "./dom.js";
import { basename, fmtBytes, fmtDuration, fmtTime, shorten } from "./format.js";
import { link, pageHref, policyLink } from "./nav.js";

export function runRow(run, withPolicy) {
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

export function fillRuns(table, runs) {
  var body = $("tbody", table);
  clear(body);
  var withPolicy = table.dataset.omit !== "policy";
  runs.forEach(function (run) {
    body.appendChild(runRow(run, withPolicy));
  });
  table.hidden = runs.length === 0;
}
