// Starts the vendored Swagger UI on /api/docs. No network access beyond this app:
// the validator badge (validator.swagger.io) is off.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrf = root.getAttribute("data-csrf-token");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      if (csrf && !request.headers["X-CSRFToken"]) {
        request.headers["X-CSRFToken"] = csrf;
      }
      return request;
    },
  });
})();
