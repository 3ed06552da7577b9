// Starts Swagger UI (vendored swagger-ui-dist globals) on the page's OpenAPI document.
/* global SwaggerUIBundle, SwaggerUIStandalonePreset */

// The top bar's logo is an SVG carrying a <style> element, which the Content-Security-Policy
// refuses (style-src 'self'): show the name as text instead.
const textLogo = (system) => ({
  components: { Logo: () => system.React.createElement("span", { className: "ogc-swagger-name" }, "Swagger UI") },
});

const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: new URL(root.dataset.url, location.href).pathname + "?f=json", // same origin (connect-src)
  domNode: root,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl, textLogo],
  layout: "StandaloneLayout",
  validatorUrl: null, // the default sends the document to validator.swagger.io
});
