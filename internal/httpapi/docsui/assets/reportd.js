// reportd's Swagger UI configuration. It is a file of its own, not an inline script, so that the page's
// Content-Security-Policy can allow scripts from this origin only.
"use strict";
window.ui = SwaggerUIBundle({
  // The contract as committed, from the same origin. The spec declares no servers, so "Try it out"
  // sends its requests to this origin too.
  url: "/openapi.yaml",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  // BaseLayout has no top bar: the bar's box would load any other spec into this page.
  layout: "BaseLayout",
  deepLinking: true,
  // Swagger UI would otherwise send the spec to an online validator.
  validatorUrl: null,
  // Generated clients name their methods after the operation ids.
  displayOperationId: true,
  displayRequestDuration: true,
  showExtensions: true,
  showCommonExtensions: true,
  defaultModelsExpandDepth: 1,
  // The API key stays in this page, not in the browser's storage.
  persistAuthorization: false,
});
