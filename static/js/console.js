// The little behaviour htmx does not cover. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // Forms marked data-autosubmit submit when one of their fields changes
  // (the site picker), so no "Go" button is needed when JavaScript runs.
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-autosubmit]");
    if (form) {
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  });

  // Polling pauses while the tab is hidden: htmx triggers carry
  // "[document.visibilityState === 'visible']"-free filters, so we cancel the
  // request here instead, and refresh every polled panel when the tab returns.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && window.htmx) {
      document.querySelectorAll("[data-poll]").forEach(function (elt) {
        window.htmx.trigger(elt, "refresh");
      });
    }
  });

  // On a phone the list filters start folded behind their summary, so the first rows
  // are on the first screen. They are sent open (no JavaScript: nothing hidden), and a
  // form showing an error stays open.
  if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches) {
    document.addEventListener("DOMContentLoaded", function () {
      document.querySelectorAll("details[data-fold-on-phone]").forEach(function (fold) {
        if (!fold.querySelector(".errorlist")) { fold.open = false; }
      });
    });
  }

  // "Select all" checkboxes for bulk actions: <input type=checkbox data-select-all="name">.
  document.addEventListener("change", function (event) {
    var name = event.target.getAttribute && event.target.getAttribute("data-select-all");
    if (name) {
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
  });
})();
