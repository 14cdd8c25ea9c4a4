/* DOM helpers: every stored string reaches the page as text (textContent, DOM properties), never
 * as HTML.
 */

export function $(selector, root) {
  return (root || document).querySelector(selector);
}

/** Create an element; props are DOM properties, children strings or nodes (strings as text). */
export function h(tag, props) {
  var node = document.createElement(tag);
  if (props) {
    Object.keys(props).forEach(function (key) {
      var value = props[key];
      if (value === undefined || value === null) return;
      if (key === "class") node.className = value;
      else if (key === "data") {
        Object.keys(value).forEach(function (d) {
          node.dataset[d] = String(value[d]);
        });
      } else node[key] = value;
    });
  }
  for (var i = 2; i < arguments.length; i++) {
    var child = arguments[i];
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setText(node, value) {
  node.textContent = value === null || value === undefined ? "" : String(value);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function state(name, message, isError) {
  var node = $('[data-state="' + name + '"]');
  if (!node) return;
  setText(node, message || "");
  node.classList.toggle("error", Boolean(isError));
}

export function notice(message, isError) {
  var node = $("#notice");
  setText(node, message || "");
  node.classList.toggle("error", Boolean(isError));
}
