// Starts Swagger UI (vendored swagger-ui-dist globals) on the page's OpenAPI document, in its
// base layout: the page's own top bar (the catalog's) stands where Swagger UI's would be,
// whose logo is an SVG carrying a <style> element that the Content-Security-Policy refuses.
/* global SwaggerUIBundle */

// pygeoapi's document refers to definitions on other hosts (schemas.opengis.net), which this
// page may not fetch (connect-src 'self'): each such reference is shown as its URL instead.
function withoutExternalReferences(node) {
  if (Array.isArray(node)) return node.map(withoutExternalReferences);
  if (node === null || typeof node !== "object") return node;
  if (typeof node.$ref === "string" && !node.$ref.startsWith("#")) return { description: node.$ref };
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, withoutExternalReferences(value)]));
}

const root = document.getElementById("swagger-ui");
const url = new URL(root.dataset.url, location.href);
const response = await fetch(url.pathname + url.search, { headers: { Accept: "application/json" } });
window.ui = SwaggerUIBundle({
  spec: withoutExternalReferences(await response.json()),
  domNode: root,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null, // the default sends the document to validator.swagger.io
});
