// Page behaviour that must not be inline (the Content-Security-Policy allows scripts from /static only).
(function () {
  "use strict";
  // <form data-confirm="…">: ask before submitting (post_button in _macros.html).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Router link form: TLS uses port 8729 unless the user typed a port; the plaintext-password
  // warning shows only while TLS is off.
  function routerForm() {
    var tls = document.getElementById("mikrotik_use_tls");
    var port = document.getElementById("mikrotik_port");
    if (!tls || !port) {
      return;
    }
    var touched = port.value !== "" && port.value !== "8728" && port.value !== "8729";
    port.addEventListener("input", function () { touched = true; });
    function sync() {
      if (!touched) {
        port.value = tls.checked ? "8729" : "8728";
      }
      var warning = document.getElementById("plaintext-api-warning");
      if (warning) {
        warning.hidden = tls.checked;
      }
    }
    tls.addEventListener("change", sync);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", routerForm);
  } else {
    routerForm();
  }
})();
