// Small DOM and number helpers shared by the portal's modules.
import { numberLocale, problemText } from "./i18n.js";

/** Create an element: el("a", {href: "/x", class: "y"}, "text", child, ...). Text is never HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    // Through the CSSOM: the Content-Security-Policy blocks style attributes, not this.
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatNumber(value, language) {
  if (typeof value !== "number") return String(value);
  // The page's language code is enough: no country formats these numbers differently.
  return value.toLocaleString(numberLocale(language), { maximumFractionDigits: 2 });
}

/** An absolute URL for a same-origin path (tile templates keep their {z}/{x}/{y} as is). */
export function absolute(path) {
  return location.origin + path;
}

/** fetch() that returns parsed JSON, or throws an Error carrying the server's refusal (`problem`)
 * and its text in the page's language. */
export async function getJson(url, options = {}) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(problemText(body) || `HTTP ${response.status}`);
    error.status = response.status;
    error.problem = body;
    throw error;
  }
  return body;
}
