// WireWAN's only script of its own (loaded from /static, so a strict CSP allows it): copy buttons.
// A button with data-copy-target="#id" copies that element's text (or an input's value) to the
// clipboard and says so for a moment. Nothing else; pages work without it.
(function () {
  "use strict";

  function textOf(selector) {
    var el = document.querySelector(selector);
    if (!el) return null;
    return "value" in el && typeof el.value === "string" ? el.value : el.textContent;
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-scratch";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  function say(button, message, cls) {
    var label = button.getAttribute("data-copy-label") || button.textContent;
    button.setAttribute("data-copy-label", label);
    button.textContent = message;
    button.classList.add(cls);
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove(cls);
    }, 1800);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy-target]") : null;
    if (!button) return;
    event.preventDefault();
    var text = textOf(button.getAttribute("data-copy-target"));
    if (text === null) return;
    copy(text.trim() + (button.hasAttribute("data-copy-newline") ? "\n" : "")).then(
      function () {
        say(button, "Copied", "copied");
      },
      function () {
        say(button, "Select and copy", "copy-failed");
      }
    );
  });
})();

// Downloads that change what the page shows: a form with data-download is posted with fetch, the
// file is saved from the answer, and the answer's HX-Trigger events are fired on <body> so the
// parts of the page that listen (hx-trigger="config-applied from:body") fetch themselves again.
// Without this script the form posts normally and the page is simply current on the next visit.
(function () {
  "use strict";

  function filenameOf(resp) {
    var header = resp.headers.get("Content-Disposition") || "";
    var match = /filename="?([^";]+)"?/.exec(header);
    return match ? match[1] : "download";
  }

  function fire(resp) {
    var names = resp.headers.get("HX-Trigger");
    if (!names) return;
    names.split(",").forEach(function (name) {
      name = name.trim();
      if (name) document.body.dispatchEvent(new CustomEvent(name, { bubbles: true }));
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-download") || !window.fetch) return;
    event.preventDefault();
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.blob().then(function (blob) {
          var link = document.createElement("a");
          link.href = URL.createObjectURL(blob);
          link.download = filenameOf(resp);
          document.body.appendChild(link);
          link.click();
          document.body.removeChild(link);
          window.setTimeout(function () {
            URL.revokeObjectURL(link.href);
          }, 10000);
          fire(resp);
        });
      })
      .catch(function () {
        form.submit(); // the server explains (login expired, no rights…) in a normal page
      });
  });
})();
