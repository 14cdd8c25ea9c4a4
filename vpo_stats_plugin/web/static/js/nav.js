/* The view and the filters live in the query string; links keep them. API calls are relative to
 * the page, so the dashboard works wherever it is mounted.
 */

import { h } from "./dom.js";

export var FILTERS = ["since", "until", "policy", "node", "status"];

var navigated = null; // what to do when the URL changed: the app's render
var token = 0; // increases on every render; answers for an older render are dropped

/** Set what ``go`` calls once the URL has changed. */
export function onNavigate(fn) {
  navigated = fn;
}

/** Start a render: answers that arrive for an older one are dropped (see ``isCurrent``). */
export function beginRender() {
  token += 1;
  return token;
}

export function isCurrent(mine) {
  return mine === token;
}

export function params() {
  return new URLSearchParams(window.location.search);
}

export function filterParams(from) {
  var out = new URLSearchParams();
  FILTERS.forEach(function (name) {
    var value = from.get(name);
    if (value) out.set(name, value);
  });
  return out;
}

/** A page link (relative: "?view=..."), keeping the current filters unless overridden. */
export function pageHref(changes) {
  return withChanges(filterParams(params()), changes);
}

/** The current URL with ``changes`` (view, by and sort kept unless changed). */
export function currentHref(changes) {
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

export function go(href, replace) {
  if (replace) window.history.replaceState(null, "", href);
  else window.history.pushState(null, "", href);
  if (navigated) navigated();
}

/** GET (or POST with a JSON body) a relative API path; rejects with the API's error message. */
export function api(path, query, body) {
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

export function link(text, href, props) {
  var a = h("a", Object.assign({ href: href }, props || {}), text);
  a.dataset.nav = "1";
  return a;
}

export function policyLink(name) {
  if (name === null || name === undefined) return h("span", { class: "muted" }, "(no policy)");
  // the policy view is scoped to its policy: a policy filter would contradict it
  return link(name, pageHref({ view: "policy", name: name, policy: null }));
}

export function nodeLink(name) {
  if (name === null || name === undefined) return h("span", { class: "muted" }, "(no node)");
  // a node is a filter, not a view of its own: the same page, scoped to it
  return link(name, currentHref({ node: name }), { title: "Show only the runs of " + name });
}
