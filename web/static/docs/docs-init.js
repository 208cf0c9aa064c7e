// Starts Swagger UI from an external file, so /docs needs no inline script (CSP script-src 'self').
const el = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: el.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: false, // a deep link is an <a> inside the summary <button>: axe "nested-interactive"
  showExtensions: true,
  showCommonExtensions: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
});
